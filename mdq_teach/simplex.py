"""Small convex problems on the probability simplex, for the mirror-descent chapter.

On the simplex, mirror descent with the negative entropy (the softmax mirror map, Eq. 19) is the
exponentiated gradient method (Eq. 20 with beta = 1), and mirror descent with the squared Euclidean
norm is projected gradient descent (the remark after Eq. 5). This module runs both on the same
problem so their optimality-gap curves can be compared.

The problem used in the book is a zero-sum matrix game: minimise f(x) = max_j (A^T x)_j over mixed
strategies x in the simplex. f is convex, piecewise linear and not smooth, its subgradients are
columns of A, and f* is the value of a linear programme. With entries of A in [-1, 1] every
subgradient has infinity-norm at most 1 but Euclidean norm up to sqrt(d): exactly the situation in
which the entropic geometry pays off (bound sqrt(2 log d / t) against sqrt(d / t) for projected
gradient).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import linprog

from mdq_teach import _validate as v
from mdq_teach.maps import exponentiated_gradient
from mdq_teach.theory import md_bound, md_step_size

METHODS = ("eg", "pgd")


def _check_vector(name: str, value) -> np.ndarray:
    arr = v.as_finite(name, value)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError(f"{name} must be a non-empty 1-D array, got shape {arr.shape}")
    return arr


def _check_simplex(name: str, x: np.ndarray, atol: float = 1e-9) -> None:
    if np.any(x < -atol) or abs(x.sum() - 1.0) > 1e-6:
        raise ValueError(f"{name} must lie in the probability simplex (x >= 0, sum(x) = 1)")


def _check_positive(name: str, value: float) -> float:
    return v.check_scalar(name, value, 0.0, lo_open=True)


def project_simplex(v) -> np.ndarray:
    """Euclidean projection of ``v`` onto the probability simplex {x >= 0, sum(x) = 1}.

    The minimiser of ||x - v||^2 over the simplex is max(v - tau, 0) for the unique threshold tau
    that makes the result sum to one; tau is found exactly by sorting v (Held, Wolfe and Crowder,
    1974), so the cost is O(d log d).
    """
    v = _check_vector("v", v)
    u = np.sort(v)[::-1]
    cumulative = np.cumsum(u) - 1.0
    ranks = np.arange(1, v.size + 1)
    # rho + 1 coordinates stay positive: rho is the last rank with u_k > (cumsum_k - 1) / k.
    rho = np.nonzero(u * ranks > cumulative)[0][-1]
    tau = cumulative[rho] / (rho + 1)
    return np.maximum(v - tau, 0.0)


def eg_step(x, g, eta: float) -> np.ndarray:
    """One exponentiated-gradient step, x_i exp(-eta g_i) / sum_j x_j exp(-eta g_j) (Eq. 20, b=1).

    Computed in log space with the maximum subtracted, so large eta * g cannot overflow.
    """
    x, g = _check_vector("x", x), _check_vector("g", g)
    if x.shape != g.shape:
        raise ValueError(f"x and g must have the same shape, got {x.shape} and {g.shape}")
    _check_simplex("x", x)
    eta = _check_positive("eta", eta)
    # Floor 0: an entry at zero stays there (exact EG); Softmax.md_step lets it grow again.
    return exponentiated_gradient(x, eta * g, 0.0)


def pgd_step(x, g, eta: float) -> np.ndarray:
    """One projected-gradient step, the Euclidean projection of x - eta g onto the simplex (Eq. 5
    with Phi = ||x||^2 / 2)."""
    x, g = _check_vector("x", x), _check_vector("g", g)
    if x.shape != g.shape:
        raise ValueError(f"x and g must have the same shape, got {x.shape} and {g.shape}")
    eta = _check_positive("eta", eta)
    return project_simplex(x - eta * g)


@dataclass(frozen=True)
class MatrixGame:
    """f(x) = max_j (A^T x)_j on the simplex in R^d, for a payoff matrix A of shape (d, n).

    ``optimum`` is f* computed once by a linear programme (scipy's HiGHS): minimise v subject to
    A^T x <= v, x in the simplex.
    """

    payoff: np.ndarray
    optimum: float = field(init=False)

    def __post_init__(self):
        a = v.as_finite("payoff", self.payoff)
        if a.ndim != 2 or min(a.shape) == 0:
            raise ValueError(f"payoff must be a non-empty 2-D array (d, n), got shape {a.shape}")
        d, n = a.shape
        object.__setattr__(self, "payoff", a)
        cost = np.r_[np.zeros(d), 1.0]
        a_ub = np.c_[a.T, -np.ones(n)]
        a_eq = np.r_[np.ones(d), 0.0][None, :]
        bounds = [(0, None)] * d + [(None, None)]
        res = linprog(cost, A_ub=a_ub, b_ub=np.zeros(n), A_eq=a_eq, b_eq=[1.0], bounds=bounds)
        if res.status != 0:  # pragma: no cover - a feasible bounded LP always solves
            raise RuntimeError(f"linear programme for f* failed: {res.message}")
        object.__setattr__(self, "optimum", float(res.fun))

    @classmethod
    def random(cls, d: int, n: int, seed: int = 0) -> MatrixGame:
        """A game with payoffs drawn uniformly from [-1, 1]."""
        if int(d) < 2 or int(n) < 1:
            raise ValueError(f"need d >= 2 strategies and n >= 1 columns, got d={d}, n={n}")
        rng = np.random.default_rng(seed)
        return cls(rng.uniform(-1.0, 1.0, size=(int(d), int(n))))

    @property
    def dim(self) -> int:
        return self.payoff.shape[0]

    def value(self, x) -> float:
        return float(np.max(self.payoff.T @ np.asarray(x, dtype=float)))

    def subgradient(self, x) -> np.ndarray:
        """A column of A achieving the maximum: a subgradient of the max of linear functions."""
        return self.payoff[:, int(np.argmax(self.payoff.T @ np.asarray(x, dtype=float)))]

    @property
    def lipschitz(self) -> dict:
        """Bounds on the subgradient norms: 'inf' (the dual norm for EG) and '2' (for PGD)."""
        return {
            "inf": float(np.abs(self.payoff).max()),
            "2": float(np.linalg.norm(self.payoff, axis=0).max()),
        }


def theory_step(method: str, problem: MatrixGame, steps: int) -> float:
    """The fixed step that minimises the textbook bound on the averaged iterate after ``steps``.

    EG: Phi = negative entropy, 1-strongly convex w.r.t. ||.||_1, R^2 = log d from the uniform
    start, eta = sqrt(2 log d / t) / L_inf. PGD: Phi = ||x||^2 / 2,
    R^2 = max ||x - x0||^2 / 2 = (1 - 1/d) / 2, eta = sqrt(2 R^2 / t) / L_2
    (Bubeck 2015, Thm. 4.2 and 3.2). Both are Theorem 2's step (``theory.md_step_size``) with
    no annealing, B = 1, and rho = 1.
    """
    _check_method(method)
    t = _check_steps(steps)
    R, L = _radius_and_lipschitz(method, problem)
    return float(md_step_size(R, L, 1.0, 1.0, t))


def theory_bound(method: str, problem: MatrixGame, steps) -> np.ndarray:
    """The guaranteed gap of the averaged iterate, R L sqrt(2 / (rho t)), at each t in ``steps``:
    Theorem 2's bound (``theory.md_bound``) with B = 1 and rho = 1, R and L as in
    ``theory_step``."""
    _check_method(method)
    t = v.as_finite("steps", steps)
    if np.any(t < 1):
        raise ValueError(f"steps must all be >= 1, got min {t.min()}")
    R, L = _radius_and_lipschitz(method, problem)
    return np.asarray(md_bound(R, L, 1.0, 1.0, t))


def _radius_and_lipschitz(method: str, problem: MatrixGame) -> tuple[float, float]:
    d = problem.dim
    if method == "eg":
        return float(np.sqrt(np.log(d))), problem.lipschitz["inf"]
    return float(np.sqrt(0.5 * (1.0 - 1.0 / d))), problem.lipschitz["2"]


def _check_method(method: str) -> None:
    v.check_choice("method", method, METHODS)


def _check_steps(steps) -> int:
    return v.check_count("steps", steps, minimum=1)


def run(method: str, problem: MatrixGame, eta: float, steps: int, x0=None) -> dict:
    """Run ``steps`` iterations of EG or PGD with fixed step ``eta`` from ``x0`` (default uniform).

    Returns a dict with 'gap_last' (f(x^k) - f*) and 'gap_avg' (f of the running average of
    x^0..x^k, minus f*), each of length steps + 1, and the final iterate 'x'.
    """
    _check_method(method)
    steps = _check_steps(steps)
    eta = _check_positive("eta", eta)
    d = problem.dim
    x = np.full(d, 1.0 / d) if x0 is None else _check_vector("x0", x0)
    if x.shape != (d,):
        raise ValueError(f"x0 must have shape ({d},), got {x.shape}")
    _check_simplex("x0", x)
    step = eg_step if method == "eg" else pgd_step
    gap_last = np.empty(steps + 1)
    gap_avg = np.empty(steps + 1)
    total = np.zeros(d)
    for k in range(steps + 1):
        total += x
        gap_last[k] = problem.value(x) - problem.optimum
        gap_avg[k] = problem.value(total / (k + 1)) - problem.optimum
        if k < steps:
            x = step(x, problem.subgradient(x), eta)
    return {"gap_last": gap_last, "gap_avg": gap_avg, "x": x}


def tune_step(method: str, problem: MatrixGame, steps: int, etas) -> dict:
    """Grid search for the fixed step with the smallest final gap of the averaged iterate.

    Returns {'eta': best step, 'etas': the grid, 'final_gap': final averaged gap for each eta}.
    """
    etas = _check_vector("etas", etas)
    if np.any(etas <= 0):
        raise ValueError("etas must all be > 0")
    finals = np.array([run(method, problem, eta, steps)["gap_avg"][-1] for eta in etas])
    return {"eta": float(etas[np.argmin(finals)]), "etas": etas, "final_gap": finals}

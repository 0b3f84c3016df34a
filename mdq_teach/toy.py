"""Small convex problems and every method's trajectory on them (the paper's Fig. 3 and Theorem 2).

One function, :func:`run`, drives every method through the same loop::

    start:  (stored variable, primal point x^0) from the auxiliary start x_tilde0
    step:   g = grad f(x^k); the method's route moves its stored variable; x^{k+1} is read off

and returns the primal iterates x^0, ..., x^steps. A method is one entry of :data:`METHODS`, a pair
of small functions (``start``, ``step``), so adding a method is adding one entry.

How each method reads the auxiliary start ``x_tilde0`` (the paper's Fig. 3 uses x_tilde0 = 1.2 and
beta = 4 "for all algorithms"):

=============  =====================  =====================================================
method         stored variable        primal point of the start, x^0
=============  =====================  =====================================================
md-tanh        x (Eq. 15)             tanh(beta x_tilde0), then x is stored and x_tilde
                                      forgotten (Algorithm 1, lines 1-2)
md-tanh-s      x_tilde (Eq. 23)       tanh(beta x_tilde0) (Algorithm 2)
gd-tanh        x_tilde                tanh(beta x_tilde0)
pq-l1, pq-l2   x (Eq. 24)             prox_{eta lambda R}(x_tilde0): Eq. 24 calls the point
                                      before the proximal map x_tilde, so x_tilde0 is read
                                      the same way, with lambda = beta (Sec. 3.3); clamped to
                                      [q_min, q_max] unless clamp=False
bc             x_tilde                the nearest level of x_tilde0, sign(0) = +1
proxconnect    theta = x_tilde        quantizer(x_tilde0, beta)
=============  =====================  =====================================================

Annealing: ``beta_growth`` and ``beta_max`` give the paper's schedule beta_k = min(beta rho^k, B)
(Algorithms 1 and 2, beta <- rho beta, capped as Theorem 2 requires). Iterate x^k uses beta_k;
the step from x^k to x^{k+1} uses beta_k in its mirror map (Eq. 15, 24), and the methods that store
x_tilde read x^{k+1} = P_{beta_{k+1}}(x_tilde^{k+1}).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from mdq_teach import _validate as v
from mdq_teach.maps import (
    round_to_levels,
    shrink_to_nearest_level,
    tanh_md_step,
    tanh_projection,
)

BINARY = (-1.0, 1.0)


# --------------------------------------------------------------------------------------------------
# Problems


@dataclass(frozen=True)
class Quadratic:
    """f(x) = (x - center)^2 on X = [-1, 1], coordinate-wise (the paper's Fig. 3 uses center = -1).

    ``f`` and ``grad`` act element by element, so ``f`` of a grid of points is the curve to plot.
    """

    center: float = -1.0
    name: str = field(default="quadratic", init=False)

    def __post_init__(self):
        object.__setattr__(self, "center", v.check_real("center", self.center))

    def f(self, x):
        return (np.asarray(x, dtype=float) - self.center) ** 2

    def grad(self, x):
        return 2.0 * (np.asarray(x, dtype=float) - self.center)

    @property
    def minimizer(self) -> float:
        """The minimiser over [-1, 1]: the center clipped to the interval."""
        return float(np.clip(self.center, -1.0, 1.0))

    @property
    def optimum(self) -> float:
        return float(self.f(self.minimizer))

    @property
    def lipschitz(self) -> float:
        """max |f'| over [-1, 1], reached at the end of the interval farthest from the center."""
        return 2.0 * (1.0 + abs(self.center))


@dataclass(frozen=True)
class BoxQuadratic:
    """f(x) = ||x - a||^2 / 2 on the box X = [-1, 1]^n, a convex problem with an exact optimum.

    The minimiser over the box is clip(a, -1, 1) (the problem separates by coordinate), and the
    gradient x - a has Euclidean norm at most ||1 + |a| ||_2 on the box (at the vertex -sign(a)),
    which is the Lipschitz constant L of Theorem 2. ``f`` sums over the last axis, so a stack of
    iterates of shape (t, n) gives t values.
    """

    target: np.ndarray
    name: str = field(default="box-quadratic", init=False)

    def __post_init__(self):
        a = v.as_finite("target", self.target)
        if a.ndim != 1 or a.size == 0:
            raise ValueError(f"target must be a non-empty 1-D array, got shape {a.shape}")
        object.__setattr__(self, "target", a)

    @classmethod
    def random(cls, n: int, scale: float = 2.0, seed: int = 0) -> BoxQuadratic:
        """A target drawn uniformly from [-scale, scale]^n: some coordinates of the optimum sit on
        the boundary of the box, the others inside."""
        n = v.check_count("n", n, minimum=1)
        scale = v.check_scalar("scale", scale, 0.0, lo_open=True)
        rng = np.random.default_rng(seed)
        return cls(rng.uniform(-scale, scale, size=n))

    @property
    def dim(self) -> int:
        return self.target.size

    def f(self, x):
        return 0.5 * np.sum((np.asarray(x, dtype=float) - self.target) ** 2, axis=-1)

    def grad(self, x):
        return np.asarray(x, dtype=float) - self.target

    @property
    def minimizer(self) -> np.ndarray:
        return np.clip(self.target, -1.0, 1.0)

    @property
    def optimum(self) -> float:
        return float(self.f(self.minimizer))

    @property
    def lipschitz(self) -> float:
        return float(np.linalg.norm(1.0 + np.abs(self.target)))


PROBLEMS: dict[str, Callable[[], object]] = {"quadratic": Quadratic}


def get_problem(problem):
    """A problem object from itself or its name in :data:`PROBLEMS`."""
    if isinstance(problem, str) or problem is None or isinstance(problem, int | float):
        return PROBLEMS[v.check_choice("problem", problem, sorted(PROBLEMS))]()
    if not (callable(getattr(problem, "f", None)) and callable(getattr(problem, "grad", None))):
        raise ValueError(
            "problem must be a name in toy.PROBLEMS or an object with f(x) and grad(x)"
        )
    return problem


# --------------------------------------------------------------------------------------------------
# ProxQuant's W-shaped regulariser and its exact proximal map


def nearest_level(v, levels=BINARY) -> np.ndarray:
    """The level of ``levels`` nearest to each entry of ``v``; a tie goes to the upper level, so for
    the binary levels this is sign with sign(0) = +1 (``maps.round_to_levels``, validated)."""
    return round_to_levels(_finite("v", v), _levels(levels))


def w_regularizer(x, levels=BINARY, form: str = "l1") -> np.ndarray:
    """ProxQuant's W-shaped regulariser, R(x) = min over levels q of |x - q| ("l1") or
    (x - q)^2 ("l2", no factor 1/2: the convention of this book), element by element
    (Sec. 3.3, Eq. 25; Bai et al. 2019)."""
    _check_form(form)
    x = _finite("x", x)
    d = np.abs(x - round_to_levels(x, _levels(levels)))
    return d if form == "l1" else d**2


def prox_w(v, tau: float, levels=BINARY, form: str = "l1") -> np.ndarray:
    """The exact proximal map argmin_x (x - v)^2 / 2 + tau R(x) of the W-shaped regulariser.

    The minimum over x of a minimum over levels is the minimum over levels of the one-level
    problems. For one level q the solution is soft thresholding towards q ("l1":
    q + sign(v - q) max(|v - q| - tau, 0)) or shrinkage towards q ("l2":
    (v + 2 tau q) / (1 + 2 tau)), and both optimal values grow with |v - q|, so the winning level
    is the one nearest to v. With R_2 = (x - q)^2 (no 1/2), the L2 prox of strength tau is
    (v + 2 tau q) / (1 + 2 tau); ProxQuant's clamp to [q_min, q_max] is not applied here (it is a
    separate step of the method, see ``run``).
    """
    _check_form(form)
    return _prox_w(_finite("v", v), _positive("tau", tau), _levels(levels), form)


def _prox_w(v: np.ndarray, tau: float, levels: np.ndarray, form: str) -> np.ndarray:
    if form == "l1":
        q = round_to_levels(v, levels)
        return q + np.sign(v - q) * np.maximum(np.abs(v - q) - tau, 0.0)
    return shrink_to_nearest_level(v, 2.0 * tau, levels)


def pq_objective(problem, x, beta: float, form: str = "l1", levels=BINARY) -> np.ndarray:
    """The composite objective f(x) + beta R(x) that ProxQuant minimises at fixed beta (Eq. 25)."""
    problem = get_problem(problem)
    x = _finite("x", x)
    return problem.f(x) + _positive("beta", beta) * w_regularizer(x, levels, form)


# --------------------------------------------------------------------------------------------------
# Methods: each is a start and a step. The state is (stored variable, primal point).


@dataclass(frozen=True)
class Method:
    """One training method on the toy problems.

    ``start(x_tilde0, beta, eta, opts) -> (stored, x)`` reads the auxiliary start;
    ``step(stored, x, g, eta, beta, beta_next, opts) -> (stored, x)`` is one iteration.
    ``options`` names the extra keyword arguments the method accepts, with their defaults.
    """

    start: Callable
    step: Callable
    stores: str
    options: dict = field(default_factory=dict)


# The tanh steps call the unvalidated kernels of mdq_teach.maps rather than maps.Tanh, whose
# validated methods cost far more than the arithmetic; the widgets need whole trajectories
# within milliseconds. The formulas themselves live only in maps.


def _project_start(x_tilde0, beta, eta, opts):
    return x_tilde0, tanh_projection(x_tilde0, beta)


def _md_tanh_start(x_tilde0, beta, eta, opts):
    x = tanh_projection(x_tilde0, beta)
    return x, x


def _md_tanh_step(stored, x, g, eta, beta, beta_next, opts):
    # Eq. 15 in its stable form; the mirror map of step k is Phi/beta_k.
    x = tanh_md_step(x, beta * eta * g)
    return x, x


def _md_tanh_s_step(x_tilde, x, g, eta, beta, beta_next, opts):
    # Eq. 23: a plain gradient step on the stored auxiliary variable, then the projection.
    x_tilde = x_tilde - eta * g
    return x_tilde, tanh_projection(x_tilde, beta_next)


def _gd_tanh_step(x_tilde, x, g, eta, beta, beta_next, opts):
    # The chain rule through P: d tanh(beta x_tilde) / d x_tilde = beta (1 - x^2), which vanishes
    # as x approaches a level. This Jacobian is what MD-tanh-S (the STE) replaces by the identity.
    x_tilde = x_tilde - eta * beta * (1.0 - x**2) * g
    return x_tilde, tanh_projection(x_tilde, beta_next)


def _pq_prox(v, tau, opts, form):
    x = _prox_w(v, tau, opts["levels"], form)
    if opts["clamp"]:
        # ProxQuant's released code clips the weights to [-1, 1] after every proximal step.
        x = np.clip(x, opts["levels"][0], opts["levels"][-1])
    return x


def _pq_start(form):
    def start(x_tilde0, beta, eta, opts):
        x = _pq_prox(x_tilde0, eta * beta, opts, form)
        return x, x

    return start


def _pq_step(form):
    def step(x_stored, x, g, eta, beta, beta_next, opts):
        # Eq. 24: a Euclidean gradient step on x itself, then the prox of eta * lambda * R.
        x = _pq_prox(x - eta * g, eta * beta, opts, form)
        return x, x

    return step


def _bc_start(x_tilde0, beta, eta, opts):
    return x_tilde0, round_to_levels(x_tilde0, opts["levels"])


def _bc_step(x_tilde, x, g, eta, beta, beta_next, opts):
    if opts["cancel_gradient"]:
        # BinaryConnect's straight-through gradient 1{q_min <= x_tilde <= q_max} (1{|x~| <= 1}
        # for the binary levels): no push beyond the hull of the levels.
        q = opts["levels"]
        g = np.where((x_tilde < q[0]) | (x_tilde > q[-1]), 0.0, g)
    x_tilde = x_tilde - eta * g
    return x_tilde, round_to_levels(x_tilde, opts["levels"])


def _proxconnect_start(x_tilde0, beta, eta, opts):
    return x_tilde0, _quantize(opts["quantizer"], x_tilde0, beta)


def _proxconnect_step(theta, x, g, eta, beta, beta_next, opts):
    theta = theta - eta * g
    return theta, _quantize(opts["quantizer"], theta, beta_next)


def _quantize(quantizer, theta, beta):
    w = np.asarray(quantizer(theta, beta), dtype=float)
    if w.shape != np.shape(theta):
        raise ValueError(
            f"quantizer must return the shape of theta {np.shape(theta)}, got {w.shape}"
        )
    return w


METHODS: dict[str, Method] = {
    "md-tanh": Method(_md_tanh_start, _md_tanh_step, stores="x"),
    "md-tanh-s": Method(_project_start, _md_tanh_s_step, stores="x_tilde"),
    "gd-tanh": Method(_project_start, _gd_tanh_step, stores="x_tilde"),
    "pq-l1": Method(
        _pq_start("l1"), _pq_step("l1"), stores="x", options={"levels": BINARY, "clamp": True}
    ),
    "pq-l2": Method(
        _pq_start("l2"), _pq_step("l2"), stores="x", options={"levels": BINARY, "clamp": True}
    ),
    "bc": Method(
        _bc_start, _bc_step, stores="x_tilde", options={"levels": BINARY, "cancel_gradient": True}
    ),
    "proxconnect": Method(
        _proxconnect_start, _proxconnect_step, stores="theta", options={"quantizer": None}
    ),
}


def betas(beta: float, steps: int, beta_growth: float = 1.0, beta_max: float = np.inf):
    """The annealing schedule beta_k = min(beta * beta_growth^k, beta_max) for k = 0..steps.

    Raises ValueError if an uncapped schedule would pass the largest float64 (it would be inf and
    every step after it NaN): pass a finite ``beta_max``.
    """
    beta = _positive("beta", beta)
    steps = v.check_count("steps", steps)
    growth = v.check_scalar("beta_growth", beta_growth, 1.0)
    cap = v.check_scalar("beta_max", beta_max, beta, allow_inf=True)
    k = np.arange(steps + 1)
    with np.errstate(over="ignore"):
        out = np.minimum(beta * growth ** k.astype(float), cap)
    if not np.all(np.isfinite(out)):
        first = int(np.argmax(~np.isfinite(out)))
        raise ValueError(
            f"beta * beta_growth^k overflows float64 at step k = {first} (beta = {beta}, "
            f"beta_growth = {growth}); pass a finite beta_max to cap the schedule"
        )
    return out


def run(
    method: str,
    problem,
    x_tilde0,
    beta: float,
    eta: float,
    steps: int,
    *,
    beta_growth: float = 1.0,
    beta_max: float = np.inf,
    **options,
) -> np.ndarray:
    """The primal iterates x^0, ..., x^steps of ``method`` on ``problem``.

    ``x_tilde0`` is the auxiliary start (a number, or a 1-D array for a problem in R^n), read by
    each method as the module docstring's table says. ``beta`` is the annealing hyperparameter
    (ProxQuant's lambda for "pq-l1"/"pq-l2"), fixed unless ``beta_growth`` > 1 (see :func:`betas`);
    ``eta`` is the fixed step size. Method options: ``levels`` (pq-*, bc), ``cancel_gradient`` (bc,
    default True: the gradient is zeroed where x_tilde lies outside [q_min, q_max]), ``clamp``
    (pq-*, default True: clip to [q_min, q_max] after every proximal step, as ProxQuant's code
    does; False gives the unclamped Eq. 24), ``quantizer`` (proxconnect, required: any callable
    quantizer(theta, beta) -> w).

    Returns an array of shape (steps + 1,) + shape(x_tilde0). Raises ValueError for an unknown
    method, bad arguments, or iterates that leave the finite numbers (a step size too large).
    """
    v.check_choice("method", method, sorted(METHODS))
    spec = METHODS[method]
    unknown = set(options) - set(spec.options)
    if unknown:
        allowed = sorted(spec.options) or "none"
        raise ValueError(f"method {method!r} takes options {allowed}, got {sorted(unknown)}")
    opts = {**spec.options, **options}
    if method == "proxconnect" and not callable(opts["quantizer"]):
        raise ValueError("proxconnect needs quantizer=, a callable quantizer(theta, beta) -> w")
    if "levels" in opts:
        opts["levels"] = _levels(opts["levels"])
    for name in ("cancel_gradient", "clamp"):
        if name in opts and not isinstance(opts[name], bool | np.bool_):
            raise ValueError(f"{name} must be True or False, got {opts[name]!r}")
    problem = get_problem(problem)
    x_tilde = v.as_finite("x_tilde0", x_tilde0)
    if x_tilde.ndim > 1:
        raise ValueError(f"x_tilde0 must be a number or a 1-D array, got shape {x_tilde.shape}")
    eta = _positive("eta", eta)
    steps = v.check_count("steps", steps)
    schedule = betas(beta, steps, beta_growth, beta_max)

    out = np.empty((steps + 1,) + x_tilde.shape)
    stored, x = spec.start(x_tilde, schedule[0], eta, opts)
    out[0] = x
    # Overflow is caught below and reported as a ValueError naming eta, not as a numpy warning.
    with np.errstate(over="ignore", invalid="ignore"):
        for k in range(steps):
            g = problem.grad(x)
            stored, x = spec.step(stored, x, g, eta, schedule[k], schedule[k + 1], opts)
            if not np.isfinite(np.sum(x) + np.sum(stored)):
                raise ValueError(
                    f"{method} left the finite numbers at step {k + 1}: eta = {eta} is too large"
                )
            out[k + 1] = x
    return out


def averaged_gap(problem, iterates) -> np.ndarray:
    """f(mean of x^0..x^{t-1}) - f* for t = 1, ..., len(iterates): the left side of Eq. 22.

    ``iterates`` has shape (T,) or (T, n); the result has one entry per t (for ``Quadratic``, which
    acts coordinate by coordinate, one row of per-coordinate gaps per t).
    """
    problem = get_problem(problem)
    x = _finite("iterates", iterates)
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError(f"iterates must have shape (T,) or (T, n) with T >= 1, got {x.shape}")
    t = np.arange(1, x.shape[0] + 1).reshape((-1,) + (1,) * (x.ndim - 1))
    return problem.f(np.cumsum(x, axis=0) / t) - problem.optimum


# --------------------------------------------------------------------------------------------------
# Argument checks


def _finite(name, value) -> np.ndarray:
    return v.as_finite(name, value)


def _positive(name, value) -> float:
    return v.check_scalar(name, value, 0.0, lo_open=True)


def _levels(levels) -> np.ndarray:
    return v.check_levels(levels)


def _check_form(form: str) -> None:
    v.check_choice("form", form, ("l1", "l2"))

"""mdq_teach.simplex: the exact simplex projection, the EG step, the matrix game, EG/PGD runs."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from scipy.optimize import linprog, minimize

from mdq_teach import simplex

vectors = arrays(
    np.float64,
    st.integers(2, 12),
    elements=st.floats(-5, 5, allow_nan=False, allow_infinity=False),
)


def _qp_projection(v):
    """The projection as a constrained QP solved by scipy, independent of the sorting algorithm."""
    d = v.size
    # Shifting v by a constant leaves the argmin on the simplex unchanged and helps SLSQP's scaling.
    v = v - v.mean()
    res = minimize(
        lambda x: 0.5 * np.sum((x - v) ** 2),
        np.full(d, 1.0 / d),
        jac=lambda x: x - v,
        method="SLSQP",
        bounds=[(0, None)] * d,
        constraints=[{"type": "eq", "fun": lambda x: x.sum() - 1.0, "jac": lambda x: np.ones(d)}],
        options={"ftol": 1e-12, "maxiter": 500},
    )
    # status 8 is SLSQP stopping at the limit of its line search, which also happens at the optimum
    assert res.status in (0, 8), res.message
    return res.x


@given(vectors)
def test_projection_matches_a_scipy_qp_solve(v):
    ours, qp = simplex.project_simplex(v), _qp_projection(v)
    assert np.all(ours >= 0) and np.isclose(ours.sum(), 1.0)
    assert np.all(qp >= -1e-9) and np.isclose(qp.sum(), 1.0)
    # feasible and no worse than the QP solver: by strong convexity, the unique minimiser
    assert np.sum((ours - v) ** 2) <= np.sum((qp - v) ** 2) + 1e-9
    np.testing.assert_allclose(ours, qp, atol=1e-5)


@given(vectors)
def test_projection_lands_on_the_simplex_and_is_idempotent(v):
    x = simplex.project_simplex(v)
    assert np.all(x >= 0) and np.isclose(x.sum(), 1.0)
    np.testing.assert_allclose(simplex.project_simplex(x), x, atol=1e-12)


@given(vectors, st.floats(1e-3, 50))
def test_eg_step_stays_on_the_simplex_and_matches_the_multiplicative_formula(g, eta):
    rng = np.random.default_rng(g.size)
    x = rng.dirichlet(np.ones(g.size))
    new = simplex.eg_step(x, g, eta)
    assert np.all(new >= 0) and np.isclose(new.sum(), 1.0)
    # Eq. 20 evaluated directly (safe here: eta * |g| <= 250 does not overflow in float64).
    direct = x * np.exp(-eta * g)
    np.testing.assert_allclose(new, direct / direct.sum(), rtol=1e-9, atol=1e-300)


def test_eg_step_is_stable_for_huge_steps():
    x = np.array([0.2, 0.3, 0.5])
    new = simplex.eg_step(x, np.array([1.0, -1.0, 0.0]), 1e6)
    np.testing.assert_allclose(new, [0.0, 1.0, 0.0])


def test_eg_run_keeps_every_iterate_on_the_simplex():
    game = simplex.MatrixGame.random(30, 5, seed=1)
    x = np.full(30, 1 / 30)
    for _ in range(200):
        x = simplex.eg_step(x, game.subgradient(x), 2.0)
        assert np.all(x >= 0) and np.isclose(x.sum(), 1.0)


def test_game_optimum_equals_the_column_players_value():
    """Minimax theorem: min_x max_j (A^T x)_j = max_y min_i (A y)_i, the right side solved here."""
    game = simplex.MatrixGame.random(15, 7, seed=3)
    a = game.payoff
    d, n = a.shape
    # maximise w subject to A y >= w, y in the simplex (as a minimisation of -w).
    res = linprog(
        np.r_[np.zeros(n), -1.0],
        A_ub=np.c_[-a, np.ones(d)],
        b_ub=np.zeros(d),
        A_eq=np.r_[np.ones(n), 0.0][None, :],
        b_eq=[1.0],
        bounds=[(0, None)] * n + [(None, None)],
    )
    assert np.isclose(game.optimum, -res.fun, atol=1e-8)
    # and no point of the simplex does better
    rng = np.random.default_rng(0)
    assert all(game.value(x) >= game.optimum - 1e-9 for x in rng.dirichlet(np.ones(d), 500))


def test_subgradient_satisfies_the_subgradient_inequality():
    game = simplex.MatrixGame.random(10, 4, seed=2)
    rng = np.random.default_rng(1)
    for x, y in zip(rng.dirichlet(np.ones(10), 50), rng.dirichlet(np.ones(10), 50), strict=True):
        assert game.value(y) >= game.value(x) + game.subgradient(x) @ (y - x) - 1e-12


def _hand_radius_and_lipschitz(method, payoff):
    """R and L of Theorem 2 for the matrix game, written out here rather than read from the library.

    EG: Phi = sum x log x, x^0 = uniform, R^2 = max Phi - Phi(x^0) = 0 - (-log d) = log d; the
    norm is ||.||_1, whose dual bounds the subgradients (columns of A) by max |A_ij|.
    PGD: Phi = ||x||^2 / 2, x^0 = uniform, R^2 = 1/2 (at a vertex) - 1/(2d); the norm is ||.||_2,
    so L is the largest Euclidean norm of a column of A.
    """
    d = payoff.shape[0]
    if method == "eg":
        return np.sqrt(np.log(d)), np.abs(payoff).max()
    return np.sqrt(0.5 - 0.5 / d), max(np.sqrt(np.sum(col**2)) for col in payoff.T)


@pytest.mark.parametrize("method", simplex.METHODS)
@pytest.mark.fidelity("md:eq34")
def test_theory_step_meets_the_textbook_bound(method):
    game = simplex.MatrixGame.random(200, 10, seed=4)
    steps = 200
    R, L = _hand_radius_and_lipschitz(method, game.payoff)
    # Theorem 2 with rho = 1, B = 1 (no annealing): eta = (R / L) sqrt(2 / t), bound R L sqrt(2 / t)
    eta = R / L * np.sqrt(2.0 / steps)
    bound = R * L * np.sqrt(2.0 / steps)
    assert np.isclose(simplex.theory_step(method, game, steps), eta, rtol=1e-12)
    assert np.isclose(simplex.theory_bound(method, game, steps), bound, rtol=1e-12)
    result = simplex.run(method, game, eta, steps)
    # the bound is for the average of x^0..x^{t-1}, which is gap_avg[t - 1]
    assert result["gap_avg"][steps - 1] <= bound
    assert np.all(result["gap_last"] >= -1e-9)


def test_eg_beats_pgd_on_a_high_dimensional_game_with_tuned_steps():
    game = simplex.MatrixGame.random(400, 10, seed=0)
    etas = np.geomspace(1e-4, 10, 11)
    eg = simplex.tune_step("eg", game, 100, etas)
    pgd = simplex.tune_step("pgd", game, 100, etas)
    assert eg["final_gap"].min() < pgd["final_gap"].min()


def test_pgd_step_is_mirror_descent_with_the_euclidean_map():
    """Eq. 5 with Phi = |x|^2/2: argmin over the simplex of <eta g, x> + |x - x_k|^2 / 2."""
    rng = np.random.default_rng(5)
    x, g = rng.dirichlet(np.ones(6)), rng.normal(size=6)
    np.testing.assert_allclose(simplex.pgd_step(x, g, 0.7), _qp_projection(x - 0.7 * g), atol=1e-6)


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: simplex.project_simplex([1.0, np.nan]), "v must be finite"),
        (lambda: simplex.project_simplex(np.ones((2, 2))), "v must be a non-empty 1-D"),
        (lambda: simplex.eg_step([0.5, 0.5], [1.0, 0.0], -1.0), r"eta must lie in \(0.0, inf\)"),
        (lambda: simplex.eg_step([0.7, 0.7], [1.0, 0.0], 1.0), "x must lie in the probability"),
        (lambda: simplex.eg_step([0.5, 0.5], [1.0], 1.0), "same shape"),
        (lambda: simplex.run("sgd", simplex.MatrixGame.random(3, 2), 1.0, 5), "one of"),
        (
            lambda: simplex.run("eg", simplex.MatrixGame.random(3, 2), 1.0, 0),
            r"steps must be an integer in \[1, ",
        ),
        (lambda: simplex.MatrixGame.random(1, 2), "d >= 2"),
        (lambda: simplex.MatrixGame([1.0, 2.0]), "payoff must be"),
        (lambda: simplex.tune_step("eg", simplex.MatrixGame.random(3, 2), 5, [0.1, -1]), "> 0"),
    ],
)
def test_bad_input_raises_a_named_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _eg_step_as_written_before(x, g, eta):
    # simplex.eg_step's own arithmetic before it called maps.exponentiated_gradient.
    with np.errstate(divide="ignore"):
        logits = np.log(x) - eta * g
    logits -= logits.max()
    w = np.exp(logits)
    return w / w.sum()


def test_eg_step_and_softmax_md_step_are_one_formula():
    """One EG kernel (maps.exponentiated_gradient) for both: bit for bit the old eg_step, zeros
    kept at zero; on positive points with beta = 1 the same as maps.Softmax.md_step."""
    from mdq_teach import maps

    rng = np.random.default_rng(3)
    for i in range(300):
        d = int(rng.integers(2, 9))
        x = rng.dirichlet(np.full(d, rng.uniform(0.05, 3.0)))
        if i % 4 == 0:
            x[0] = 0.0
            x /= x.sum()
        g = rng.normal(size=d) * 10 ** rng.uniform(-3, 3)
        eta = 10 ** rng.uniform(-3, 1)
        new = simplex.eg_step(x, g, eta)
        assert np.array_equal(new, _eg_step_as_written_before(x, g, eta))
        if x.min() > 0:
            softmax = maps.Softmax(np.arange(d, dtype=float)).md_step(x, g, eta, 1.0)
            assert np.array_equal(new, softmax)
        else:
            assert new[0] == 0.0  # exact EG: a zero stays zero (Softmax's floor would regrow it)

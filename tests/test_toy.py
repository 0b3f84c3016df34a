"""mdq_teach.toy: the toy problems, ProxQuant's prox, and every method's trajectory (Fig. 3)."""

import itertools

import mpmath
import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.optimize import minimize, minimize_scalar

from mdq_teach import theory, toy

FIG3 = dict(problem=toy.Quadratic(center=-1.0), x_tilde0=1.2, beta=4.0, eta=0.1)
TERNARY = (-1.0, 0.0, 1.0)


def fig3(method, steps=300, **kwargs):
    return toy.run(method, steps=steps, **{**FIG3, **kwargs})


# ---------------------------------------------------------------- the W-shaped regulariser and prox


def test_w_regularizer_binary_closed_form():
    x = np.linspace(-3, 3, 601)
    np.testing.assert_allclose(toy.w_regularizer(x, form="l1"), np.abs(np.abs(x) - 1.0))
    np.testing.assert_allclose(toy.w_regularizer(x, form="l2"), (np.abs(x) - 1.0) ** 2)


def _numerical_prox(v, tau, levels, form):
    """argmin_x (x - v)^2 / 2 + tau R(x), by scipy on every piece where R is smooth.

    R is smooth between consecutive breakpoints (levels and the midpoints between them), so the
    objective is a convex quadratic on each piece; the best piece minimum is the global one.
    """
    q = np.asarray(levels)
    mids = (q[1:] + q[:-1]) / 2
    r = lambda x: np.min(np.abs(x - q)) ** (1 if form == "l1" else 2)
    obj = lambda x: 0.5 * (x - v) ** 2 + tau * r(x)
    cuts = np.sort(np.r_[q, mids, v - 10.0, v + 10.0, q[0] - 10.0, q[-1] + 10.0])
    best = min(
        (
            minimize_scalar(obj, bounds=(a, b), method="bounded", options={"xatol": 1e-12}).x
            for a, b in itertools.pairwise(cuts)
            if b > a
        ),
        key=obj,
    )
    best = min([best, *q, *mids], key=obj)
    return best, obj


@given(
    v=st.floats(-3, 3),
    tau=st.floats(0.01, 2.0),
    levels=st.sampled_from([toy.BINARY, TERNARY, (-1.0, -0.2, 0.5, 2.0)]),
    form=st.sampled_from(["l1", "l2"]),
)
@pytest.mark.fidelity("md:eq24")
def test_prox_w_matches_scipy_argmin(v, tau, levels, form):
    x = float(toy.prox_w(v, tau, levels, form))
    x_num, obj = _numerical_prox(v, tau, levels, form)
    assert obj(x) <= obj(x_num) + 1e-9
    # The argmin is unique except at ties between two levels, where both objectives agree.
    assert abs(x - x_num) < 1e-5 or abs(obj(x) - obj(x_num)) < 1e-9


def test_prox_w_ties_go_up_and_inputs_are_checked():
    assert toy.prox_w(0.0, 0.1) == pytest.approx(0.1)  # sign(0) = +1: shrink towards +1
    assert toy.nearest_level(0.0) == 1.0
    with pytest.raises(ValueError, match="tau"):
        toy.prox_w(0.3, 0.0)
    with pytest.raises(ValueError, match="form"):
        toy.prox_w(0.3, 0.1, form="l3")
    with pytest.raises(ValueError, match="levels"):
        toy.prox_w(0.3, 0.1, levels=(1.0, -1.0))


# ---------------------------------------------------------------- problems


def test_quadratic_is_the_papers_f_and_its_constants_are_right():
    p = toy.Quadratic(center=-1.0)
    x = np.linspace(-1, 1, 2001)
    np.testing.assert_allclose(p.f(x), (x + 1) ** 2)
    h = 1e-6
    np.testing.assert_allclose(p.grad(x), (p.f(x + h) - p.f(x - h)) / (2 * h), atol=1e-6)
    assert p.minimizer == -1.0 and p.optimum == 0.0
    assert p.lipschitz == pytest.approx(np.abs(p.grad(x)).max())
    assert toy.get_problem("quadratic") == p


@pytest.mark.fidelity("md:eq2", "md:eq11")
def test_box_quadratic_optimum_and_lipschitz_against_scipy_and_vertices():
    p = toy.BoxQuadratic.random(4, seed=3)
    res = minimize(p.f, np.zeros(4), jac=p.grad, bounds=[(-1, 1)] * 4, method="L-BFGS-B")
    np.testing.assert_allclose(p.minimizer, res.x, atol=1e-6)
    assert p.optimum == pytest.approx(res.fun, abs=1e-10)
    # ||grad f|| = ||x - a|| is convex in x, so its maximum over the box is at a vertex.
    vertices = np.array(list(itertools.product([-1.0, 1.0], repeat=4)))
    assert p.lipschitz == pytest.approx(np.linalg.norm(p.grad(vertices), axis=1).max())


def test_averaged_gap_matches_a_direct_loop():
    p = toy.BoxQuadratic.random(3, seed=1)
    xs = np.random.default_rng(0).uniform(-1, 1, size=(7, 3))
    direct = [p.f(xs[:t].mean(axis=0)) - p.optimum for t in range(1, 8)]
    np.testing.assert_allclose(toy.averaged_gap(p, xs), direct)


# ---------------------------------------------------------------- Fig. 3: every method


@pytest.mark.parametrize("method", ["md-tanh", "md-tanh-s"])
@pytest.mark.fidelity("md:fig3")
def test_md_variants_reach_the_optimum_in_the_fig3_setting(method):
    xs = fig3(method)
    assert xs.shape == (301,)
    assert xs[0] == pytest.approx(np.tanh(4.0 * 1.2))
    assert abs(xs[-1] + 1.0) < 1e-2
    assert np.all(np.diff(xs) <= 1e-12)  # f decreases monotonically along the way


@given(x0=st.floats(-2, 2), beta=st.floats(0.5, 8), eta=st.floats(0.01, 0.3))
def test_md_tanh_and_md_tanh_s_are_the_same_algorithm_at_fixed_beta(x0, beta, eta):
    kw = dict(problem=FIG3["problem"], x_tilde0=x0, beta=beta, eta=eta, steps=40)
    np.testing.assert_allclose(toy.run("md-tanh", **kw), toy.run("md-tanh-s", **kw), atol=1e-8)


def _pq_objective_independent(x, lam, form):
    r = np.abs(np.abs(x) - 1.0)
    return (x + 1.0) ** 2 + lam * (r if form == "l1" else r**2)


@pytest.mark.fidelity("md:fig3", "md:eq25")
def test_pq_l2_stops_at_a_nondiscrete_stationary_point():
    xs = fig3("pq-l2")
    x = xs[-1]
    assert -1.0 < x < 1.0 and abs(abs(x) - 1.0) > 0.1
    # A stationary point of f + beta R (central differences of an independent formula) ...
    h = 1e-6
    slope = _pq_objective_independent(x + h, 4.0, "l2") - _pq_objective_independent(
        x - h, 4.0, "l2"
    )
    assert abs(slope / (2 * h)) < 1e-6
    # ... whose objective is worse than the global minimum at -1.
    assert _pq_objective_independent(x, 4.0, "l2") > _pq_objective_independent(-1.0, 4.0, "l2") + 1


@pytest.mark.fidelity("md:fig3", "md:eq25")
def test_pq_l1_stops_at_the_wrong_level():
    x = fig3("pq-l1")[-1]
    assert x == pytest.approx(1.0, abs=1e-9)
    assert FIG3["problem"].f(x) > FIG3["problem"].optimum + 1
    for h in (1e-3, -1e-3):  # a local minimum of the composite objective
        assert _pq_objective_independent(x + h, 4.0, "l1") >= _pq_objective_independent(
            x, 4.0, "l1"
        )


def test_pq_start_is_the_prox_of_the_auxiliary_start():
    unclamped = (1.2 + 2 * 0.4 * 1.0) / (1 + 2 * 0.4)  # the L2 prox (v + 2 tau q) / (1 + 2 tau)
    assert fig3("pq-l2", steps=0, clamp=False)[0] == pytest.approx(unclamped)
    assert fig3("pq-l2", steps=0)[0] == 1.0  # ProxQuant's clamp to [-1, 1], the default
    assert fig3("pq-l1", steps=0)[0] == 1.0  # |1.2 - 1| <= eta * beta: thresholded onto the level


@pytest.mark.fidelity("md:eq1")
def test_gd_tanh_step_is_gradient_descent_on_f_of_tanh():
    p, beta, eta, x0 = FIG3["problem"], 2.0, 0.05, 0.3
    x1 = toy.run("gd-tanh", p, x0, beta, eta, steps=1)[1]
    h = 1e-6
    comp = lambda xt: p.f(np.tanh(beta * xt))
    xt1 = x0 - eta * (comp(x0 + h) - comp(x0 - h)) / (2 * h)
    assert x1 == pytest.approx(np.tanh(beta * xt1), abs=1e-8)


def test_gd_tanh_gradient_vanishes_where_md_tanh_s_moves():
    gd, ste = fig3("gd-tanh", steps=20), fig3("md-tanh-s", steps=20)
    assert gd[-1] > 0.99 and ste[-1] < -0.9


def test_bc_reaches_the_optimum_unless_its_gradient_is_cancelled():
    assert fig3("bc", cancel_gradient=False)[-1] == -1.0
    assert np.all(fig3("bc")[1:] == 1.0)  # |x_tilde0| = 1.2 > 1: BC's clipped STE never moves
    assert fig3("bc", x_tilde0=0.5)[-1] == -1.0
    assert set(np.unique(fig3("bc", cancel_gradient=False))) <= {-1.0, 1.0}


# ---------------------------------------------------------------- ProxConnect equivalences


@pytest.mark.parametrize("growth", [1.0, 1.05])
def test_proxconnect_with_tanh_is_md_tanh_s_step_for_step(growth):
    kw = dict(steps=200, beta=1.0, beta_growth=growth, beta_max=20.0)
    pc = fig3("proxconnect", quantizer=lambda th, b: np.tanh(b * th), **kw)
    np.testing.assert_allclose(pc, fig3("md-tanh-s", **kw), rtol=0, atol=1e-15)


@pytest.mark.fidelity("pc:d1")
def test_proxconnect_with_the_hard_quantizer_is_bc_without_cancellation():
    hard = lambda th, b: np.where(th >= 0, 1.0, -1.0)
    for x0 in (1.2, 0.5, -0.3, 0.0):
        pc = fig3("proxconnect", quantizer=hard, x_tilde0=x0)
        np.testing.assert_array_equal(pc, fig3("bc", x_tilde0=x0, cancel_gradient=False))


# ---------------------------------------------------------------- Theorem 2 on a box problem


@given(cap=st.sampled_from([1.0, 3.0, 10.0, 50.0]), t=st.integers(5, 300), seed=st.integers(0, 9))
@pytest.mark.fidelity("md:thm2", "md:eq22", "md:thm4", "md:eq33")
def test_annealed_md_tanh_respects_theorem_2(cap, t, seed):
    p = toy.BoxQuadratic.random(5, seed=seed)
    R, L, rho = np.sqrt(p.dim * np.log(2.0)), p.lipschitz, 1.0
    eta = theory.md_step_size(R, L, rho, cap, t)
    xs = toy.run("md-tanh", p, np.zeros(p.dim), 1.0, eta, t - 1, beta_growth=1.1, beta_max=cap)
    assert toy.averaged_gap(p, xs)[-1] <= theory.md_bound(R, L, rho, cap, t)


def test_schedule_is_geometric_and_capped():
    np.testing.assert_allclose(toy.betas(1.0, 4, 2.0, 5.0), [1, 2, 4, 5, 5])
    with pytest.raises(ValueError, match="beta_growth"):
        toy.betas(1.0, 4, 0.5)
    with pytest.raises(ValueError, match="beta_max"):
        toy.betas(2.0, 4, 1.5, beta_max=1.0)


# ---------------------------------------------------------------- shapes and bad input


def test_vector_start_gives_a_stack_of_iterates():
    p = toy.BoxQuadratic.random(3)
    xs = toy.run("md-tanh-s", p, np.zeros(3), 1.0, 0.1, 10)
    assert xs.shape == (11, 3)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(method="adam"), "md-tanh"),
        (dict(beta=0.0), "beta"),
        (dict(beta=np.nan), "beta"),
        (dict(eta=-1.0), "eta"),
        (dict(steps=-1), "steps"),
        (dict(steps=2.5), "steps"),
        (dict(x_tilde0=np.nan), "x_tilde0"),
        (dict(x_tilde0=np.zeros((2, 2))), "x_tilde0"),
        (dict(problem="cubic"), "quadratic"),
        (dict(problem=object()), "problem"),
        (dict(quantizer=np.sign), "quantizer"),
        (dict(method="proxconnect"), "quantizer"),
        (dict(method="proxconnect", quantizer=lambda th, b: np.zeros(3)), "shape"),
        (dict(method="pq-l1", beta=0.01, eta=5.0, clamp=False), "eta"),
    ],
)
def test_bad_input_raises_value_error(kwargs, match):
    args = {**FIG3, "method": "md-tanh", "steps": 400, **kwargs}
    with pytest.raises(ValueError, match=match):
        toy.run(**args)


@given(
    x_tilde0=st.floats(-3, 3),
    beta=st.floats(0.5, 20),
    eta=st.floats(0.001, 0.5),
    growth=st.sampled_from([1.0, 1.3]),
)
def test_tanh_steps_are_eq_15_and_eq_23(x_tilde0, beta, eta, growth):
    """Each MD-tanh step against Eq. 15 exactly as printed, evaluated in 50-digit arithmetic
    from the same float64 iterate; each MD-tanh-S step against Eq. 23 written out here."""
    p = FIG3["problem"]
    kw = dict(problem=p, x_tilde0=x_tilde0, beta=beta, eta=eta, steps=5, beta_growth=growth)
    b = beta * growth ** np.arange(6.0)
    md, ste = toy.run("md-tanh", **kw), toy.run("md-tanh-s", **kw)
    assert md[0] == ste[0] == np.tanh(beta * x_tilde0)
    x_tilde = x_tilde0
    for k in range(5):
        if abs(md[k]) < 1:  # on +-1 the stored point is moved inside first (boundary policy)
            with mpmath.workdps(50):
                x, move = mpmath.mpf(float(md[k])), 2 * b[k] * eta * mpmath.mpf(p.grad(md[k]))
                ratio = (1 + x) / (1 - x) * mpmath.exp(-move)
                assert md[k + 1] == pytest.approx(float((ratio - 1) / (ratio + 1)), abs=1e-13)
        x_tilde = x_tilde - eta * p.grad(ste[k])
        assert ste[k + 1] == np.tanh(b[k + 1] * x_tilde)


# ------------------------------------------------------------ conventions (COMMON.md, issue 8)


def test_bc_cancels_the_gradient_outside_the_hull_of_asymmetric_levels():
    # Levels (0, 1, 3): x~ = -0.5 lies outside [q_min, q_max] = [0, 3] although |x~| <= max |q|.
    # The loss pulls towards 2, so the uncancelled auxiliary variable climbs through 0.5 (x = 1).
    kw = dict(problem=toy.Quadratic(center=2.0), x_tilde0=-0.5, beta=1.0, eta=0.1, steps=30)
    stuck = toy.run("bc", levels=(0.0, 1.0, 3.0), **kw)
    assert np.all(stuck == 0.0)
    moving = toy.run("bc", levels=(0.0, 1.0, 3.0), cancel_gradient=False, **kw)
    x_tilde, expected = -0.5, [0.0]
    for _ in range(30):  # BC written out: a plain step on x~, then the nearest of (0, 1, 3)
        x_tilde -= 0.1 * 2 * (expected[-1] - 2.0)
        expected.append(0.0 if x_tilde < 0.5 else (1.0 if x_tilde < 2.0 else 3.0))
    np.testing.assert_array_equal(moving, expected)
    assert np.any(moving != 0.0)  # without cancellation the weight leaves the level 0


@pytest.mark.parametrize("form", ["l1", "l2"])
def test_proxquant_clamps_to_the_hull_of_the_levels_unless_told_not_to(form):
    kw = dict(problem=toy.Quadratic(center=3.0), x_tilde0=0.5, beta=0.5, eta=0.2, steps=40)
    clamped = toy.run(f"pq-{form}", **kw)
    free = toy.run(f"pq-{form}", clamp=False, **kw)
    tau = 0.2 * 0.5

    def prox(v):  # Eq. 24's proximal map for the levels (-1, 1), written out
        q = 1.0 if v >= 0 else -1.0
        if form == "l1":
            return q + np.sign(v - q) * max(abs(v - q) - tau, 0.0)
        return (v + 2 * tau * q) / (1 + 2 * tau)

    for run, clip in ((clamped, True), (free, False)):
        x = prox(0.5)
        x = min(max(x, -1.0), 1.0) if clip else x
        for k in range(40):
            assert run[k] == pytest.approx(x, abs=1e-12)
            x = prox(x - 0.2 * 2 * (x - 3.0))
            x = min(max(x, -1.0), 1.0) if clip else x
    assert clamped.max() == 1.0 and free.max() > 1.0


def test_toy_writes_no_formula_of_its_own_for_the_tanh_projection():
    """The formulas live in mdq_teach.maps (its kernels); toy calls them."""
    import inspect

    source = inspect.getsource(toy)
    assert "np.tanh(" not in source and "np.arctanh(" not in source
    x = np.linspace(-3, 3, 13)
    from mdq_teach import maps

    assert np.array_equal(toy.run("md-tanh-s", "quadratic", x, 2.0, 0.1, 3)[0],
                          maps.tanh_projection(x, 2.0))

"""mdq_teach.prox: proximal quantizers, their recovered regularisers, and ProxConnect."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st
from scipy.optimize import brentq, minimize_scalar

from mdq_teach import maps, prox, theory, toy

NAMES = sorted(prox.QUANTIZERS)
TERNARY = (-1.0, 0.0, 1.0)
UNEVEN = (-1.0, -0.2, 0.5, 2.0)


@st.composite
def level_sets(draw):
    """2 to 5 sorted levels in [-3, 3], consecutive gaps at least 0.1."""
    n = draw(st.integers(2, 5))
    start = draw(st.floats(-3.0, 0.0))
    gaps = draw(st.lists(st.floats(0.1, 1.5), min_size=n - 1, max_size=n - 1))
    return tuple(start + np.concatenate([[0.0], np.cumsum(gaps)]))


def nearest(theta, levels):
    """Nearest level by brute force; a tie goes to the upper level."""
    q = np.asarray(levels)
    d = np.abs(np.asarray(theta, dtype=float)[..., None] - q)
    # Reversed order so that argmin's first hit is the larger of two equidistant levels.
    return q[::-1][np.argmin(d[..., ::-1], axis=-1)]


# ---------------------------------------------------------------- shape of the quantizers


@given(
    name=st.sampled_from(NAMES),
    levels=level_sets(),
    beta=st.floats(1.0, 50.0),
    a=st.floats(-6, 6),
    b=st.floats(-6, 6),
)
@pytest.mark.fidelity("pc:b")
def test_every_quantizer_is_monotone(name, levels, beta, a, b):
    P = prox.get_quantizer(name, levels)
    lo, hi = min(a, b), max(a, b)
    assert P(lo, beta) <= P(hi, beta)


@given(beta=st.floats(0.01, 1.0), a=st.floats(-6, 6), b=st.floats(-6, 6))
def test_tanh_is_monotone_below_beta_one(beta, a, b):
    P = prox.TanhQuantizer()
    assert P(min(a, b), beta) <= P(max(a, b), beta)


@given(levels=level_sets(), beta=st.floats(0.01, 1e6), theta=st.floats(-10, 10))
def test_hard_quantizer_is_the_nearest_level_at_any_beta(levels, beta, theta):
    w = prox.HardQuantizer(levels)(theta, beta)
    assert w in levels
    assert w == nearest(theta, levels)


def test_hard_quantizer_ties_go_up():
    P = prox.HardQuantizer(TERNARY)
    np.testing.assert_array_equal(P([-0.5, 0.5], 1.0), [0.0, 1.0])
    assert prox.HardQuantizer()(0.0, 1.0) == 1.0  # sign(0) = +1


@given(
    name=st.sampled_from(["linear", "tanh"]),
    levels=st.sampled_from([(-1.0, 1.0), TERNARY, (0.0, 1.0), (-2.0, -1.0, 0.0, 1.0, 2.0)]),
    theta=st.floats(-5, 5),
)
def test_end_of_annealing_lands_exactly_on_the_levels(name, levels, theta):
    P = prox.get_quantizer(name, levels)
    mids = (np.asarray(levels[1:]) + levels[:-1]) / 2
    assume(np.min(np.abs(theta - mids)) > 1e-3)
    w = P(theta, 1e6)
    assert w in levels
    assert w == nearest(theta, levels)


@given(levels=level_sets(), theta=st.floats(-5, 5), beta=st.floats(1.0, 1e8))
def test_binaryrelax_approaches_the_nearest_level_at_rate_one_over_beta(levels, theta, beta):
    P = prox.BinaryRelaxQuantizer(levels)
    q = nearest(theta, levels)
    assert abs(P(theta, beta) - q) <= abs(theta - q) / (1.0 + beta) * (1 + 1e-12) + 1e-15


@given(name=st.sampled_from(NAMES), levels=level_sets(), theta=st.floats(-10, 10))
def test_beta_inf_is_the_hard_quantizer(name, levels, theta):
    w = prox.get_quantizer(name, levels)(theta, np.inf)
    assert w in levels and w == nearest(theta, levels)


@given(levels=level_sets(), beta=st.floats(1.0, 20.0), x=st.floats(-6, 6), dx=st.floats(0, 0.1))
def test_linear_quantizer_is_continuous_with_slope_beta(levels, beta, x, dx):
    P = prox.PiecewiseLinearQuantizer(levels)
    step = P(x + dx, beta) - P(x, beta)
    assert -1e-12 <= step <= beta * dx + 1e-9


@given(levels=level_sets(), theta=st.floats(-6, 6))
def test_linear_quantizer_at_beta_one_is_the_projection_onto_the_hull(levels, theta):
    w = prox.PiecewiseLinearQuantizer(levels)(theta, 1.0)
    assert w == pytest.approx(np.clip(theta, levels[0], levels[-1]), abs=1e-12)


def test_linear_quantizer_is_the_sum_of_ramps():
    # The docstring's second form, the one the regulariser's antiderivative integrates.
    q = np.asarray(UNEVEN)
    m, h = (q[1:] + q[:-1]) / 2, np.diff(q)
    theta = np.linspace(-3, 3, 1001)
    for beta in (1.0, 2.5, 40.0):
        ramps = np.clip(h / 2 + beta * (theta[:, None] - m), 0.0, h).sum(axis=1)
        np.testing.assert_allclose(
            prox.PiecewiseLinearQuantizer(q)(theta, beta), q[0] + ramps, atol=1e-14
        )


def test_tanh_quantizer_formulas():
    theta = np.linspace(-3, 3, 101)
    np.testing.assert_array_equal(prox.TanhQuantizer()(theta, 2.5), np.tanh(2.5 * theta))
    eq21 = 0.5 * (np.tanh(3.0 * (theta + 0.5)) + np.tanh(3.0 * (theta - 0.5)))
    np.testing.assert_allclose(prox.TanhQuantizer(TERNARY)(theta, 3.0), eq21, atol=1e-15)
    # Two levels {0, 1}: the tanh curve moved to the midpoint 1/2 and scaled by h/2 = 1/2.
    np.testing.assert_allclose(
        prox.TanhQuantizer((0.0, 1.0))(theta, 2.0), 0.5 + 0.5 * np.tanh(2.0 * (theta - 0.5))
    )


def test_binaryrelax_formula():
    theta = np.linspace(-3, 3, 101)
    expected = (theta + 4.0 * nearest(theta, UNEVEN)) / 5.0
    np.testing.assert_allclose(prox.BinaryRelaxQuantizer(UNEVEN)(theta, 4.0), expected)


# ---------------------------------------------------------------- the regulariser


def numerical_prox(r, theta, grid):
    """argmin_w (w - theta)^2 / 2 + r(w): a search over ``grid`` (r already evaluated there as
    ``r_grid``), then scipy's bounded minimiser between the best point's finite neighbours."""
    grid, r_grid = grid
    vals = 0.5 * (grid - theta) ** 2 + r_grid
    k = int(np.argmin(vals))
    lo = grid[k - 1] if k > 0 and np.isfinite(r_grid[k - 1]) else grid[k]
    hi = grid[k + 1] if k + 1 < grid.size and np.isfinite(r_grid[k + 1]) else grid[k]
    if hi == lo:
        return grid[k]
    obj = lambda w: 0.5 * (w - theta) ** 2 + float(r(np.array([w]))[0])
    res = minimize_scalar(obj, bounds=(lo, hi), method="bounded", options={"xatol": 1e-12})
    return res.x if res.fun < vals[k] else grid[k]


CASES = [
    ("hard", (-1.0, 1.0), 1.0),
    ("hard", UNEVEN, 1.0),
    ("linear", TERNARY, 1.0),
    ("linear", TERNARY, 3.0),
    ("linear", UNEVEN, 8.0),
    ("binaryrelax", (-1.0, 1.0), 0.5),
    ("binaryrelax", UNEVEN, 3.0),
    ("tanh", (-1.0, 1.0), 0.7),
    ("tanh", (-1.0, 1.0), 4.0),
    ("tanh", TERNARY, 3.0),
    ("tanh", UNEVEN, 2.0),
]


@pytest.mark.parametrize("name, levels, beta", CASES)
@pytest.mark.fidelity("pc:b")
def test_recovered_regulariser_reproduces_the_quantizer_through_a_numerical_prox(
    name, levels, beta
):
    P = prox.get_quantizer(name, levels)
    r = lambda w: P.regulariser(w, beta)
    lo, hi = levels[0] - 5.0, levels[-1] + 5.0
    grid = np.union1d(np.linspace(lo, hi, 20001), levels)
    grid = (grid, r(grid))
    mids = (np.asarray(levels[1:]) + levels[:-1]) / 2
    rng = np.random.default_rng(0)
    thetas = rng.uniform(levels[0] - 3.0, levels[-1] + 3.0, 12)
    # Away from the jumps of hard and BinaryRelax, where the prox is set-valued.
    thetas = thetas[np.min(np.abs(thetas[:, None] - mids), axis=1) > 1e-2]
    for theta in thetas:
        w = numerical_prox(r, theta, grid)
        assert w == pytest.approx(float(P(theta, beta)), abs=2e-6), theta


@pytest.mark.parametrize("beta", [0.3, 1.0, 4.0])
def test_tanh_regulariser_is_eq14_minus_the_square(beta):
    w = np.linspace(-1.0, 1.0, 201)
    r = prox.TanhQuantizer().regulariser(w, beta)
    phi = maps.Tanh().potential(w, beta)  # Eq. 14
    expected = phi - w**2 / 2
    np.testing.assert_allclose(r, expected - expected[0], atol=1e-12)
    np.testing.assert_allclose(
        prox.TanhQuantizer().mirror_map(w, beta) - phi, np.zeros_like(w) + r[0] - expected[0]
    )


def test_shifted_tanh_regulariser_matches_the_maps_potential():
    w = np.linspace(-0.999, 0.999, 101)
    r = prox.TanhQuantizer(TERNARY).regulariser(w, 3.0)
    expected = maps.ShiftedTanh(TERNARY).potential(w, 3.0) - w**2 / 2
    np.testing.assert_allclose(r - r[50], expected - expected[50], atol=1e-9)


@pytest.mark.parametrize("beta", [1.0, 2.0, 10.0])
def test_linear_regulariser_closed_form(beta):
    q = np.asarray(UNEVEN)
    w = np.linspace(q[0], q[-1], 301)
    i = np.clip(np.searchsorted(q, w, side="right") - 1, 0, q.size - 2)
    expected = (1 - 1 / beta) / 2 * (w - q[i]) * (q[i + 1] - w)
    np.testing.assert_allclose(
        prox.PiecewiseLinearQuantizer(q).regulariser(w, beta), expected, atol=1e-12
    )
    outside = prox.PiecewiseLinearQuantizer(q).regulariser([q[0] - 0.1, q[-1] + 0.1], beta)
    assert np.all(np.isinf(outside))


def test_binaryrelax_regulariser_is_half_beta_dist_squared_on_the_range():
    beta, P = 3.0, prox.BinaryRelaxQuantizer(UNEVEN)
    w = P(np.linspace(-4, 4, 2001), beta)  # points of the range
    d = np.min(np.abs(w[:, None] - np.asarray(UNEVEN)), axis=1)
    np.testing.assert_allclose(P.regulariser(w, beta), beta / 2 * d**2, atol=1e-10)
    # The jump at the midpoint 0.15 of (-0.2, 0.5) skips (0.0875, 0.3125): r = inf there.
    assert np.all(np.isinf(P.regulariser([0.1, 0.2, 0.3], beta)))


def test_hard_regulariser_is_the_indicator_of_the_levels():
    P = prox.HardQuantizer(UNEVEN)
    np.testing.assert_allclose(P.regulariser(UNEVEN, 1.0), 0.0, atol=1e-12)
    assert np.all(np.isinf(P.regulariser([-0.5, 0.0, 1.0, 3.0], 1.0)))


@pytest.mark.parametrize("name, levels, beta", [("tanh", TERNARY, 3.0), ("linear", UNEVEN, 4.0)])
def test_regulariser_derivative_is_inverse_minus_identity(name, levels, beta):
    # r' = P^{-1} - identity, P^{-1} found here by scipy's brentq on P itself.
    P = prox.get_quantizer(name, levels)
    h = 1e-6
    for w in np.linspace(levels[0] + 0.05, levels[-1] - 0.05, 17):
        if name == "linear" and np.min(np.abs(w - np.asarray(levels))) < 2 * h:
            continue
        theta = brentq(
            lambda t, w=w: float(P(t, beta)) - w, levels[0] - 10, levels[-1] + 10, xtol=1e-14
        )
        fd = (P.regulariser(w + h, beta) - P.regulariser(w - h, beta)) / (2 * h)
        assert fd == pytest.approx(theta - w, abs=1e-5)


@pytest.mark.parametrize("name", NAMES)
def test_regulariser_vanishes_at_the_lowest_level_and_rejects_nan(name):
    P = prox.get_quantizer(name, TERNARY)
    assert P.regulariser([-1.0], 2.0)[0] == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError, match="w"):
        P.regulariser([np.nan], 2.0)


# ---------------------------------------------------------------- which maps are proximal


@pytest.mark.fidelity("pc:b")
def test_is_proximal_map_verdicts():
    tanh = prox.TanhQuantizer()
    for beta in (0.5, 1.0):
        rep = theory.is_proximal_map(lambda t, b=beta: tanh(t, b), -4.0, 4.0)
        assert rep.proximal and rep.convex_regulariser
    rep = theory.is_proximal_map(lambda t: tanh(t, 3.0), -4.0, 4.0)
    assert rep.proximal and not rep.convex_regulariser
    rep = theory.is_proximal_map(lambda t: -tanh(t, 1.0), -4.0, 4.0)
    assert not rep.proximal
    linear = prox.PiecewiseLinearQuantizer()
    assert theory.is_proximal_map(lambda t: linear(t, 1.0), -3.0, 3.0).convex_regulariser
    rep = theory.is_proximal_map(lambda t: linear(t, 4.0), -3.0, 3.0)
    assert rep.proximal and not rep.convex_regulariser
    for name in ("hard", "binaryrelax"):
        P = prox.get_quantizer(name)
        rep = theory.is_proximal_map(lambda t, P=P: P(t, 2.0), -3.0, 3.0)
        assert rep.proximal and not rep.convex_regulariser


# ---------------------------------------------------------------- ProxConnect


@given(
    theta=st.lists(st.floats(-3, 3), min_size=1, max_size=8),
    g=st.floats(-5, 5),
    eta=st.floats(0.001, 1.0),
)
@pytest.mark.fidelity("pc:c1", "pc:d1")
def test_proxconnect_with_hard_quantizer_is_a_bc_step(theta, g, eta):
    theta = np.asarray(theta)
    grad = np.full_like(theta, g)
    new_theta, w = prox.proxconnect_step(theta, grad, eta, prox.HardQuantizer(), 1.0)
    bc_theta = theta - eta * grad
    np.testing.assert_array_equal(new_theta, bc_theta)
    np.testing.assert_array_equal(w, np.where(bc_theta >= 0, 1.0, -1.0))


@given(
    theta=st.lists(st.floats(-3, 3), min_size=1, max_size=8),
    g=st.floats(-5, 5),
    eta=st.floats(0.001, 1.0),
    beta=st.floats(0.1, 20.0),
)
def test_proxconnect_with_tanh_is_an_md_tanh_s_step(theta, g, eta, beta):
    theta = np.asarray(theta)
    grad = np.full_like(theta, g)
    new_theta, w = prox.proxconnect_step(theta, grad, eta, prox.TanhQuantizer(), beta)
    # Eq. 23 written out here: a plain gradient step on theta, then w = tanh(beta theta).
    np.testing.assert_array_equal(new_theta, theta - eta * grad)
    np.testing.assert_array_equal(w, np.tanh(beta * (theta - eta * grad)))


@pytest.mark.fidelity("pc:d1")
def test_proxconnect_trajectories_on_the_toy_equal_bc_and_md_tanh_s():
    kw = dict(problem=toy.Quadratic(center=-0.3), x_tilde0=0.8, beta=2.0, eta=0.05, steps=200)
    pc_hard = toy.run("proxconnect", quantizer=prox.HardQuantizer(), **kw)
    np.testing.assert_array_equal(pc_hard, toy.run("bc", cancel_gradient=False, **kw))
    pc_tanh = toy.run("proxconnect", quantizer=prox.TanhQuantizer(), beta_growth=1.02, **kw)
    np.testing.assert_array_equal(pc_tanh, toy.run("md-tanh-s", beta_growth=1.02, **kw))


@pytest.mark.fidelity("pc:c1")
def test_dual_averaging_is_bc_step_for_step():
    rng = np.random.default_rng(1)
    etas = rng.uniform(0.01, 0.2, 60)
    grad = lambda w: 2 * (w - np.array([-0.3, 0.4, 2.0]))
    theta0 = np.array([0.7, -0.2, 0.05])
    da = prox.dual_averaging(grad, theta0, etas, lambda c: np.zeros_like(c), (-1.0, 1.0))
    theta, w = theta0, prox.HardQuantizer()(theta0, 1.0)
    np.testing.assert_array_equal(da[0], w)
    for t, eta in enumerate(etas):
        theta, w = prox.proxconnect_step(theta, grad(w), eta, prox.HardQuantizer(), 1.0)
        np.testing.assert_array_equal(da[t + 1], w)


@pytest.mark.fidelity("pc:c1", "pc:d1")
def test_dual_averaging_with_binaryrelax_regulariser_is_pc_with_beta_the_sum_of_steps():
    # r = dist(w, Q)^2 / 2, so mu r has prox (theta + mu Q(theta)) / (1 + mu): beta_t = mu_t.
    etas = np.full(40, 0.1)
    grad = lambda w: 2 * (w - 0.35)
    grid = np.linspace(-2, 2, 40001)
    r = lambda c: 0.5 * np.min(np.abs(c[:, None] - np.array([-1.0, 1.0])), axis=1) ** 2
    da = prox.dual_averaging(grad, np.array([0.6]), etas, r, grid)
    P = prox.BinaryRelaxQuantizer()
    theta, w = np.array([0.6]), np.array([0.6])
    for t, eta in enumerate(etas):
        theta, w = prox.proxconnect_step(theta, grad(w), eta, P, etas[: t + 1].sum())
        assert da[t + 1][0] == pytest.approx(w[0], abs=2e-4)


@given(levels=level_sets(), w=st.lists(st.floats(-10, 10), min_size=1, max_size=20))
@pytest.mark.fidelity("pc:a")
def test_post_training_quantize_lands_on_the_levels(levels, w):
    out = prox.post_training_quantize(np.asarray(w), prox.TanhQuantizer(levels))
    assert np.all(np.isin(out, levels))
    np.testing.assert_array_equal(out, nearest(w, levels))


# ---------------------------------------------------------------- bad input


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="hard.*linear|binaryrelax"):
        prox.get_quantizer("sigmoid")
    with pytest.raises(ValueError, match="levels"):
        prox.HardQuantizer((1.0, -1.0))
    with pytest.raises(ValueError, match="levels"):
        prox.HardQuantizer((1.0,))
    with pytest.raises(ValueError, match="beta"):
        prox.TanhQuantizer()(0.3, 0.0)
    with pytest.raises(ValueError, match="beta"):
        prox.TanhQuantizer()(0.3, np.nan)
    with pytest.raises(ValueError, match="beta must be a number >= 1"):
        prox.PiecewiseLinearQuantizer()(0.3, 0.5)
    with pytest.raises(ValueError, match="theta"):
        prox.HardQuantizer()(np.inf, 1.0)
    with pytest.raises(ValueError, match="eta"):
        prox.proxconnect_step([0.1], [1.0], -0.1, prox.HardQuantizer(), 1.0)
    with pytest.raises(ValueError, match="grad"):
        prox.proxconnect_step([0.1, 0.2], [1.0], 0.1, prox.HardQuantizer(), 1.0)
    with pytest.raises(ValueError, match="etas"):
        prox.dual_averaging(lambda w: w, [0.1], [0.1, -0.1], lambda c: 0 * c, (-1.0, 1.0))


@given(
    levels=level_sets(),
    beta=st.floats(0.05, 1e4),
    w=st.lists(st.floats(-3, 3), min_size=1, max_size=20),
)
def test_tanh_inverse_agrees_with_the_bisection(levels, beta, w):
    """The tanh quantizer inverts P through the shifted tanh's inverse (closed form or Halley);
    the generic bisection every other family uses is the independent reference: the same
    'in the closure of the range', and a regulariser equal to float64 roundoff."""
    q = prox.get_quantizer("tanh", levels)
    w = np.concatenate([np.asarray(w), q.levels, q.levels + 1e-12, q.levels - 1e-12])
    theta, in_range = q._inverse(w, beta)
    ref_theta, ref_in = prox._Quantizer._inverse(q, w, beta)
    assert np.array_equal(in_range, ref_in)
    assert np.all(np.isinf(theta[~in_range]))
    r = q._unnormalised_r(w, beta)
    ref = q._young(ref_theta[ref_in], w[ref_in], beta) - 0.5 * w[ref_in] ** 2
    scale = 1.0 + np.abs(q.levels).max() ** 2
    np.testing.assert_allclose(r[in_range], ref, rtol=0, atol=1e-12 * scale)
    assert np.all(np.isinf(r[~in_range]))
    # Inside the open range P(theta) = w to roundoff.
    inner = (w > q.levels[0]) & (w < q.levels[-1])
    np.testing.assert_allclose(q._project(theta[inner], beta), w[inner], rtol=0, atol=1e-12)


def test_binaryrelax_is_proxquants_l2_prox_one_kernel():
    """BinaryRelax at beta = 2 tau and ProxQuant's L2 prox of strength tau (toy.prox_w) call one
    function (maps.shrink_to_nearest_level): bit for bit equal, and equal to the formula they
    each wrote before."""
    rng = np.random.default_rng(5)
    for _ in range(200):
        levels = np.sort(rng.choice(np.linspace(-2, 2, 41), size=int(rng.integers(2, 6)),
                                    replace=False))
        v = rng.normal(size=64) * 3
        tau = 10 ** rng.uniform(-3, 2)
        q = maps.round_to_levels(v, levels)
        pq = toy.prox_w(v, tau, levels, "l2")
        br = prox.BinaryRelaxQuantizer(levels)(v, 2 * tau)
        assert np.array_equal(pq, br)
        assert np.array_equal(pq, (v + 2.0 * tau * q) / (1.0 + 2.0 * tau))
        assert np.array_equal(br, (v + 2 * tau * q) / (1.0 + 2 * tau))

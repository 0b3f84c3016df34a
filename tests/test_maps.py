"""Projections, inverses and mirror maps of mdq_teach.maps against independent computations."""

import mpmath
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import optimize

from mdq_teach.maps import Euclidean, ShiftedTanh, Sigmoid, Softmax, Tanh, get_map, shifted_tanh

INTERVAL_MAPS = [
    Tanh(),
    Sigmoid(),
    ShiftedTanh(),
    ShiftedTanh((0.0, 1.0, 2.0, 5.0)),
    ShiftedTanh((-1.0, -0.5, 0.5, 1.0)),
]
THEOREM1_IDS = [repr(m) for m in INTERVAL_MAPS]
betas = st.floats(0.5, 20.0)
fractions = st.floats(0.001, 0.999)


def _point(m, fraction):
    return m.lo + fraction * (m.hi - m.lo)


# -- the formulas of the paper, written out independently of the library ------------------------


@given(st.floats(-5, 5), betas)
@pytest.mark.fidelity("md:ex1", "md:eq12", "md:eq13", "md:eq14", "md:eq26")
def test_tanh_projection_inverse_and_potential_are_eq_12_13_14(s, beta):
    m = Tanh()
    assert m.project(s, beta) == pytest.approx(np.tanh(beta * s), abs=1e-15)
    w = np.tanh(s / 3)  # any interior point
    assert m.inverse(w, beta) == pytest.approx(np.log((1 + w) / (1 - w)) / (2 * beta), rel=1e-12)
    eq14 = ((1 + w) * np.log(1 + w) + (1 - w) * np.log(1 - w)) / (2 * beta)
    assert m.potential(w, beta) == pytest.approx(eq14, rel=1e-12, abs=1e-15)


@given(st.floats(-3, 3), betas)
@pytest.mark.fidelity("md:ex3", "md:eq21")
def test_shifted_tanh_default_is_eq_21(s, beta):
    eq21 = 0.5 * (np.tanh(beta * (s + 0.5)) + np.tanh(beta * (s - 0.5)))
    assert ShiftedTanh().project(s, beta) == pytest.approx(eq21, abs=1e-14)


@given(st.floats(-3, 3), st.floats(0.01, 0.99), betas)
def test_shifted_tanh_with_two_levels_is_tanh(s, fraction, beta):
    two, tanh = ShiftedTanh((-1, 1)), Tanh()
    x = -1 + 2 * fraction
    assert two.project(s, beta) == pytest.approx(tanh.project(s, beta), abs=1e-14)
    assert two.inverse(x, beta) == pytest.approx(tanh.inverse(x, beta), rel=1e-10, abs=1e-13)
    assert two.potential(x, beta) == pytest.approx(tanh.potential(x, beta), abs=1e-12)
    y = 0.3 - 0.5 * fraction
    assert two.bregman(x, y, beta) == pytest.approx(tanh.bregman(x, y, beta), rel=1e-8, abs=1e-13)


@given(st.floats(-5, 5), betas)
def test_sigmoid_projection_and_potential(s, beta):
    m = Sigmoid()
    assert m.project(s, beta) == pytest.approx(1 / (1 + np.exp(-beta * s)), abs=1e-15)
    w = 1 / (1 + np.exp(-s))
    expected = (w * np.log(w) + (1 - w) * np.log(1 - w)) / beta
    assert m.potential(w, beta) == pytest.approx(expected, rel=1e-10, abs=1e-14)


# -- properties every interval map must have -----------------------------------------------------


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=THEOREM1_IDS)
@given(fraction=fractions, beta=st.floats(0.1, 50.0))
def test_project_inverts_inverse_on_the_open_domain(m, fraction, beta):
    x = _point(m, fraction)
    assert m.project(m.inverse(x, beta), beta) == pytest.approx(x, abs=1e-10 * (m.hi - m.lo))


@pytest.mark.parametrize("m", INTERVAL_MAPS + [Euclidean(-1, 2)], ids=THEOREM1_IDS + ["Euclid"])
@given(fraction=st.floats(0.01, 0.99), beta=st.floats(0.5, 5.0))
@pytest.mark.fidelity("md:def1", "md:thm1", "md:thm3")
def test_derivative_of_potential_is_inverse(m, fraction, beta):
    # Central differences: truncation h^2 Phi'''/6 <= ~1e-7 at 1% from the boundary, roundoff
    # eps |Phi| / h ~ 1e-11, so 1e-6 relative is a safe margin.
    x, h = _point(m, fraction), 1e-5 * (m.hi - m.lo)
    fd = (m.potential(x + h, beta) - m.potential(x - h, beta)) / (2 * h)
    assert fd == pytest.approx(m.inverse(x, beta), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=THEOREM1_IDS)
@pytest.mark.parametrize("beta", [0.5, 3.0])
@pytest.mark.fidelity("md:thm1", "md:thm3")
def test_potential_differences_are_integrals_of_the_inverse(m, beta):
    # Theorem 1: Phi(b) - Phi(a) = integral_a^b P^{-1}(y) dy. Substituting y = P(s) turns it into
    # the Stieltjes integral of s dP(s), summed here with the midpoint rule on 2e5 cells
    # (error ~1e-9); this uses only the projection, not the potential's Legendre formula.
    for fa, fb in [(0.05, 0.5), (0.3, 0.9), (0.001, 0.999)]:
        a, b = _point(m, fa), _point(m, fb)
        s = np.linspace(m.inverse(a, beta), m.inverse(b, beta), 200_001)
        integral = np.sum(0.5 * (s[1:] + s[:-1]) * np.diff(m.project(s, beta)))
        assert m.potential(b, beta) - m.potential(a, beta) == pytest.approx(integral, abs=1e-7)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=THEOREM1_IDS)
@pytest.mark.fidelity("md:def1")
def test_inverse_is_infinite_exactly_on_the_boundary(m):
    out = m.inverse(np.array([m.lo, m.hi]), 2.0)
    assert out[0] == -np.inf and out[1] == np.inf
    assert np.all(np.isfinite(m.potential(np.array([m.lo, m.hi]), 2.0)))


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=THEOREM1_IDS)
def test_projection_is_increasing_and_inside_the_domain(m):
    s = np.linspace(-4, 4, 2001)
    x = m.project(s, 2.0)
    assert np.all(np.diff(x) > 0)
    assert np.all((x > m.lo) & (x < m.hi))


def test_tanh_inverse_of_projection_recovers_the_auxiliary_value():
    s = np.linspace(-2, 2, 101)
    assert np.allclose(Tanh().inverse(Tanh().project(s, 2.0), 2.0), s, rtol=0, atol=1e-10)


# -- Euclidean: projected gradient descent ---------------------------------------------------


@given(st.floats(-1, 2), st.floats(-50, 50), st.floats(0, 3), betas)
def test_euclidean_md_is_a_clipped_gradient_step(x, g, eta, beta):
    m = Euclidean(-1, 2)
    assert m.md_step(x, g, eta, beta) == np.clip(x - eta * g, -1, 2)
    assert m.project(x - eta * g, beta) == np.clip(x - eta * g, -1, 2)
    assert m.inverse(x, beta) == x
    assert m.bregman(x, 0.5, beta) == pytest.approx(0.5 * (x - 0.5) ** 2)


# -- Softmax (u-space) ------------------------------------------------------------------------


@given(st.lists(st.floats(-5, 5), min_size=3, max_size=3), betas, st.floats(-1000, 1000))
@pytest.mark.fidelity("md:ex2", "md:eq16", "md:eq17", "md:eq18")
def test_softmax_projection_and_inverse_are_eq_16_and_18(u_tilde, beta, shift):
    m = Softmax((-1, 0, 1))
    u_tilde = np.array(u_tilde)
    expected = np.exp(beta * u_tilde) / np.exp(beta * u_tilde).sum()
    u = m.project(u_tilde, beta)
    assert np.allclose(u, expected, rtol=1e-12, atol=1e-15)
    # Eq. 16 ignores a constant added to every entry (the reason Eq. 17 must pick a
    # representative), even one for which exp(beta (u~ + c)) overflows or underflows.
    assert np.allclose(m.project(u_tilde + shift, beta), expected, rtol=1e-9, atol=1e-12)
    # Eq. 17/18: the inverse is the representative with log-sum-exp zero; it maps back to u.
    v = m.inverse(u, beta)
    assert np.allclose(m.project(v, beta), u, rtol=1e-10, atol=1e-15)
    assert np.allclose(v, np.log(u) / beta)


@given(st.lists(st.floats(0.05, 1), min_size=4, max_size=4), st.floats(-1, 1), betas)
@pytest.mark.fidelity("md:eq19")
def test_softmax_potential_gradient_along_the_simplex_is_the_inverse(raw, tilt, beta):
    m = Softmax((-1, 0, 1, 2))
    u = np.array(raw) / np.sum(raw)
    direction = np.array([1.0, -1.0, 0.5, -0.5]) * tilt  # sums to zero: stays on the simplex
    h = 1e-6
    fd = (m.potential(u + h * direction, beta) - m.potential(u - h * direction, beta)) / (2 * h)
    assert fd == pytest.approx(np.dot(m.inverse(u, beta), direction), rel=1e-6, abs=1e-7)
    eq19 = np.sum(u * np.log(u) - u) / beta
    assert m.potential(u, beta) == pytest.approx(eq19, rel=1e-12)


@given(
    st.floats(-4, 4),
    st.floats(-4, 4),
    st.floats(-5, 5),
    st.floats(0, 2),
    st.floats(0.1, 5),
)
def test_two_level_softmax_is_tanh_at_half_beta(a0, a1, g_w, eta, beta):
    """levels (-1, 1): w = u_1 - u_0 = tanh(beta (u~_1 - u~_0) / 2).

    One EG step with g_u = g_w * levels multiplies u_1 / u_0 by exp(-2 beta eta g_w); since
    u_1 / u_0 = (1 + w) / (1 - w) that is Eq. 15 at beta, or the stored-auxiliary step of a tanh
    at beta / 2 with step 2 eta (the difference u~_1 - u~_0 moves by 2 eta g_w).
    """
    sm, tanh = Softmax((-1, 1)), Tanh()
    u = sm.project(np.array([a0, a1]), beta)
    w = sm.weights(u)
    assert w == pytest.approx(tanh.project(a1 - a0, beta / 2), abs=1e-12)
    stepped = sm.weights(sm.md_step(u, sm.lift_gradient(g_w), eta, beta))
    assert stepped == pytest.approx(tanh.md_step(w, g_w, eta, beta), abs=1e-9)
    assert stepped == pytest.approx(tanh.md_step(w, g_w, 2 * eta, beta / 2), abs=1e-9)
    # The two mirror maps differ by a constant, so their divergences agree.
    v = sm.project(np.array([0.3, -0.2]), beta)
    assert sm.bregman(u, v, beta) == pytest.approx(
        tanh.bregman(w, sm.weights(v), beta), rel=1e-7, abs=1e-12
    )
    assert np.array_equal(sm.weights(sm.round(u)), tanh.round(w))


@pytest.mark.fidelity("md:eq8")
def test_softmax_weights_and_lifted_gradient_follow_eq_8():
    m = Softmax((-1, 0, 1))
    u = np.array([[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]])
    assert np.allclose(m.weights(u), [0.3, -1.0])
    g_u = m.lift_gradient(np.array([2.0, -1.0]))
    assert np.allclose(g_u, [[-2.0, 0.0, 2.0], [1.0, 0.0, -1.0]])


# -- rounding ----------------------------------------------------------------------------------


def test_round_goes_to_the_nearest_level_with_ties_up():
    assert Tanh().round(0.0) == 1.0 and Tanh().round(-0.0) == 1.0
    assert np.array_equal(Tanh().round(np.array([-0.3, 2.5, -7.0])), [-1.0, 1.0, -1.0])
    assert Sigmoid().round(0.5) == 1.0 and Sigmoid().round(0.49) == 0.0
    st3 = ShiftedTanh()
    assert np.array_equal(st3.round(np.array([-0.5, -0.49, 0.49, 0.5])), [0.0, 0.0, 0.0, 1.0])
    uneven = ShiftedTanh((0, 1, 2, 5))
    assert np.array_equal(uneven.round(np.array([3.49, 3.5, 4.0])), [2.0, 5.0, 5.0])
    sm = Softmax((-1, 0, 1))
    assert np.array_equal(sm.round(np.array([0.5, 0.0, 0.5])), [0.0, 0.0, 1.0])
    assert np.array_equal(sm.round(np.array([[0.2, 0.7, 0.1]])), [[0.0, 1.0, 0.0]])


# -- factory and metadata ------------------------------------------------------------------------


def test_get_map_builds_every_map_and_lists_names_on_error():
    assert isinstance(get_map("tanh"), Tanh)
    assert np.array_equal(get_map("shifted_tanh", (0, 1, 3)).levels, [0, 1, 3])
    assert get_map("euclidean", (0, 2)).domain == (0.0, 2.0)
    assert get_map("softmax", (-1, 0, 1)).domain == "simplex"
    assert Tanh().domain == (-1.0, 1.0) and Sigmoid().domain == (0.0, 1.0)
    assert [m.name for m in (Tanh(), Sigmoid(), Softmax(), ShiftedTanh(), Euclidean())] == [
        "tanh",
        "sigmoid",
        "softmax",
        "shifted_tanh",
        "euclidean",
    ]
    with pytest.raises(ValueError, match="euclidean.*shifted_tanh.*sigmoid.*softmax.*tanh"):
        get_map("sign")
    with pytest.raises(ValueError, match="levels of tanh are fixed"):
        get_map("tanh", (0, 1))


# -- precision -----------------------------------------------------------------------------------


@pytest.mark.parametrize("m", INTERVAL_MAPS + [Euclidean()], ids=THEOREM1_IDS + ["Euclid"])
@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_interval_maps_keep_the_callers_precision(m, dtype):
    x = np.linspace(m.lo, m.hi, 5).astype(dtype)
    g = np.ones(5, dtype=dtype)
    for out in (
        m.project(x, 2.0),
        m.inverse(x, 2.0),
        m.potential(x, 2.0),
        m.bregman(x, x[::-1], 2.0),
        m.md_step(x, g, 0.1, 2.0),
        m.round(x),
    ):
        assert out.dtype == dtype
    assert isinstance(m.md_step(0.0 if m.lo < 0 else 0.5, 1.0, 0.1, 2.0), np.float64)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64])
def test_softmax_keeps_the_callers_precision(dtype):
    m = Softmax((-1, 0, 1))
    u = np.array([[0.25, 0.25, 0.5]], dtype=dtype)
    g = np.ones((1, 3), dtype=dtype)
    for out in (
        m.project(u, 2.0),
        m.inverse(u, 2.0),
        m.potential(u, 2.0),
        m.bregman(u, u, 2.0),
        m.md_step(u, g, 0.1, 2.0),
        m.weights(u),
        m.round(u),
    ):
        assert out.dtype == dtype


# -- properties over wide ranges: float32, float64, beta up to 1e4, references in mpmath ----------

ALL_INTERVAL = INTERVAL_MAPS + [Euclidean(-1.0, 2.0)]
ALL_IDS = THEOREM1_IDS + ["Euclid"]
wide_betas = st.floats(1e-3, 1e4)
dtypes = st.sampled_from([np.float32, np.float64])


@pytest.mark.parametrize("m", ALL_INTERVAL, ids=ALL_IDS)
@settings(max_examples=60, deadline=None)
@given(
    x_tilde=st.lists(st.floats(-1e6, 1e6), min_size=1, max_size=6),
    fraction=st.lists(st.floats(0, 1), min_size=1, max_size=6),
    g=st.floats(-1e3, 1e3),
    eta=st.floats(0, 10),
    beta=wide_betas,
    dtype=dtypes,
)
def test_projection_and_md_step_stay_in_the_closed_domain_and_finite(
    m, x_tilde, fraction, g, eta, beta, dtype
):
    s = np.asarray(x_tilde, dtype=dtype)
    p = m.project(s, beta)
    assert p.dtype == dtype and np.all((p >= m.lo) & (p <= m.hi))
    x = np.asarray(_point(m, np.asarray(fraction)), dtype=dtype)
    step = m.md_step(x, np.full(x.shape, g, dtype), eta, beta)
    assert step.dtype == dtype and np.all(np.isfinite(step))
    assert np.all((step >= m.lo) & (step <= m.hi))


def _mp_tanh_md(x, move):
    """Eq. 15 as printed, in 60 digits: ((1+x)/(1-x) e^{-2 move} - 1) / (... + 1)."""
    with mpmath.workdps(60):
        x = mpmath.mpf(float(x))
        ratio = (1 + x) / (1 - x) * mpmath.exp(-2 * mpmath.mpf(move))
        return float((ratio - 1) / (ratio + 1))


@settings(max_examples=150, deadline=None)
@given(
    fraction=st.floats(1e-6, 1 - 1e-6),
    g=st.floats(-10, 10),
    eta=st.floats(0, 1),
    beta=wide_betas,
    dtype=dtypes,
)
def test_tanh_md_step_matches_eq_15_in_mpmath_for_large_beta(fraction, g, eta, beta, dtype):
    x = dtype(2 * fraction - 1)
    g = dtype(g)
    move = float(beta) * float(eta) * float(g)
    expected = _mp_tanh_md(x, move)
    got = Tanh().md_step(x, g, eta, beta)
    # float64 evaluates atanh(x) - move with an absolute error of a few ulp of its size; the
    # result then carries that error times tanh' <= 1. float32 results add their own rounding.
    size = abs(float(np.arctanh(np.float64(x)))) + abs(move)
    tol = 8 * np.finfo(np.float64).eps * max(1.0, size) + 2 * float(np.finfo(dtype).eps)
    assert got.dtype == dtype
    assert abs(float(got) - expected) <= tol


@settings(max_examples=100, deadline=None)
@given(
    u=st.lists(st.floats(1e-6, 1.0), min_size=3, max_size=3),
    g=st.lists(st.floats(-10, 10), min_size=3, max_size=3),
    eta=st.floats(0, 1),
    beta=wide_betas,
)
def test_softmax_md_step_matches_eq_20_in_mpmath_for_large_beta(u, g, eta, beta):
    u = np.asarray(u) / np.sum(u)
    got = Softmax((-1.0, 0.0, 1.0)).md_step(u, np.asarray(g), eta, beta)
    with mpmath.workdps(60):
        w = [
            mpmath.mpf(float(a)) * mpmath.exp(-mpmath.mpf(beta) * eta * b)
            for a, b in zip(u, g, strict=True)
        ]
        expected = [float(a / sum(w)) for a in w]
    np.testing.assert_allclose(got, expected, rtol=1e-12, atol=1e-300)


def _mp_shifted_tanh(s, beta, levels):
    """Eq. 21's staircase q_0 + sum_i h_i / 2 (1 + tanh(beta (s - c_i))) in 60 digits."""
    with mpmath.workdps(60):
        q = [mpmath.mpf(float(a)) for a in levels]
        total = q[0]
        for lo, hi in zip(q[:-1], q[1:], strict=True):
            a = mpmath.mpf(beta) * (mpmath.mpf(s) - (lo + hi) / 2)
            total += (hi - lo) / 2 * (1 + mpmath.tanh(a))
        return float(total)


@pytest.mark.parametrize(
    "levels", [(-1.0, 0.0, 1.0), (0.0, 1.0, 2.0, 5.0), (-1.0, 1.0), (0.1, 0.7)]
)
@settings(max_examples=80, deadline=None)
@given(s=st.floats(-10, 10), beta=wide_betas)
def test_shifted_tanh_kernel_matches_eq_21_in_mpmath(levels, s, beta):
    expected = _mp_shifted_tanh(s, beta, levels)
    got = float(shifted_tanh(s, beta, np.asarray(levels)))
    span = levels[-1] - levels[0]
    assert abs(got - expected) <= 4 * np.finfo(float).eps * span * len(levels)


def _assert_roots_of_the_staircase(m, x, s, beta):
    """P(s) = x up to what one rounding of s can move P (its slope times an ulp of s), checked
    with the 60-digit staircase and its derivative (independent of the library)."""
    assert np.all(np.isfinite(s))
    eps = np.finfo(float).eps
    for xi, si in zip(x, s, strict=True):
        with mpmath.workdps(60):
            slope = sum(
                (hi - lo) / 2 * beta * mpmath.sech(beta * (mpmath.mpf(si) - (lo + hi) / 2)) ** 2
                for lo, hi in zip(m.levels[:-1], m.levels[1:], strict=True)
            )
        tol = 16 * eps * (m.hi - m.lo) + 4 * eps * max(abs(si), 1.0) * float(slope)
        assert abs(_mp_shifted_tanh(si, beta, m.levels) - xi) <= tol, (xi, si, beta)


@pytest.mark.parametrize("m", [ShiftedTanh(), ShiftedTanh((0.0, 1.0, 2.0, 5.0))], ids=repr)
@settings(max_examples=60, deadline=None)
@given(fraction=st.lists(st.floats(1e-6, 1 - 1e-6), min_size=1, max_size=20), beta=wide_betas)
def test_shifted_tanh_inverse_is_a_root_of_the_projection_for_any_beta(m, fraction, beta):
    x = _point(m, np.asarray(fraction))
    _assert_roots_of_the_staircase(m, x, m.inverse(x, beta), beta)


@settings(max_examples=80, deadline=None)
@given(
    q1=st.floats(-0.99, 0.99),
    exponents=st.lists(st.floats(-300, -0.01), min_size=1, max_size=8),
    beta=wide_betas,
)
def test_three_level_closed_form_inverse_holds_at_its_hard_points(q1, exponents, beta):
    # Three levels take a closed-form root (a quadratic in exp(2 beta s)), not the iteration:
    # checked at the middle level (flat to the last digit for large beta), at tiny and at
    # subnormal-free distances from both boundaries and from q1, for uneven steps.
    m = ShiftedTanh((-1.0, q1, 1.0))
    d = 10.0 ** np.asarray(exponents)
    x = np.concatenate([[q1], -1.0 + 2 * d, 1.0 - 2 * d, q1 + d * (1 - q1), q1 - d * (1 + q1)])
    x = x[(x > m.lo) & (x < m.hi)]
    _assert_roots_of_the_staircase(m, x, m.inverse(x, beta), beta)


def test_three_level_inverse_at_the_middle_level_is_the_symmetric_point():
    # The root is 0 by symmetry. Its error is a few ulps of log(kappa) / (2 beta), so s beta,
    # which is what moves P, stays at roundoff; once kappa underflows (beta above about 370,
    # where every s near 0 gives P = 0 in float64) the large-beta root is exactly 0.
    eps = np.finfo(float).eps
    for beta in (1e-3, 1.0, 50.0, 300.0):
        assert abs(ShiftedTanh().inverse(np.array([0.0]), beta)[0]) * beta <= 4 * eps
    for beta in (400.0, 1e4, 1e300):
        assert ShiftedTanh().inverse(np.array([0.0]), beta)[0] == 0.0


def test_three_level_inverse_next_to_the_boundary_keeps_its_digits():
    # x one ulp inside the boundary: s is found to full relative precision, checked against a
    # 60-digit root of Eq. 21 (a formula in tanh of s around the map's centre would lose
    # about beta (c2 - c1) / ln 2 bits here, as the outer step is flat relative to it).
    for beta in (0.5, 3.0, 40.0):
        for x in (np.nextafter(1.0, 0.0), np.nextafter(-1.0, 0.0), 1 - 1e-9):
            got = ShiftedTanh().inverse(np.array([x]), beta)[0]
            with mpmath.workdps(60):
                expected = mpmath.findroot(
                    lambda s, b=beta, w=x: (
                        sum((1 + mpmath.tanh(b * (s - c))) / 2 for c in (-0.5, 0.5))
                        - 1
                        - mpmath.mpf(w)
                    ),
                    mpmath.mpf(got),
                )
            assert got == pytest.approx(float(expected), rel=1e-13), (beta, x)


@settings(max_examples=100, deadline=None)
@given(
    p=st.floats(0, 1),
    q_exp=st.floats(-320, 0),
    beta=wide_betas,
    which=st.sampled_from(["sigmoid", "tanh"]),
)
def test_divergences_match_mpmath_even_next_to_the_boundary(p, q_exp, beta, which):
    q = 10.0**q_exp  # down to subnormal distances from the boundary
    if which == "sigmoid":
        m, pp, qq = Sigmoid(), p, q
        parts = [(pp, qq), (1 - pp, 1 - qq)]
        scale = 1.0
    else:
        m, pp, qq = Tanh(), 2 * p - 1, q - 1  # q - 1 rounds: use the float64 value as given
        parts = [(1 + pp, 1 + qq), (1 - pp, 1 - qq)]
        scale = 0.5
    if qq in (m.lo, m.hi):
        return  # rounded onto the boundary: +inf or 0, covered elsewhere
    got = m.bregman(pp, qq, beta)
    with mpmath.workdps(60):
        total = mpmath.mpf(0)
        for a, b in parts:
            a, b = mpmath.mpf(float(a)), mpmath.mpf(float(b))
            total += (a * mpmath.log(a / b) if a > 0 else 0) - a + b
        expected = float(total * scale / mpmath.mpf(beta))
    assert np.isfinite(got)
    assert got == pytest.approx(expected, rel=1e-9, abs=1e-300)


@settings(max_examples=60, deadline=None)
@given(fraction=st.floats(0.001, 0.999), beta=st.floats(0.05, 20))
def test_chapter_3_closed_form_of_the_shifted_tanh_inverse(fraction, beta):
    # Eq. (eq-shifted-tanh-inverse) of chapter 3 as printed, against a bracketing root of Eq. 21
    # (scipy's brentq) and against the library's per-step form of the same quadratic.
    # The printed form is evaluated in 60 digits: in float64 its 1 - t^2 cancels for large beta,
    # which is why the library solves the quadratic in another variable.
    w = -1 + 2 * fraction
    with mpmath.workdps(60):
        t = mpmath.tanh(mpmath.mpf(beta) / 2)
        ws = mpmath.mpf(w)
        printed = float(
            mpmath.atanh(2 * ws / ((1 - t**2) + mpmath.sqrt((1 - t**2) ** 2 + 4 * t**2 * ws**2)))
            / beta
        )

    def eq21(s):
        return 0.5 * (np.tanh(beta * (s + 0.5)) + np.tanh(beta * (s - 0.5))) - w

    root = optimize.brentq(eq21, -60 / beta - 1, 60 / beta + 1, xtol=1e-15, rtol=1e-15)
    slope = 0.5 * beta * sum(1 / np.cosh(beta * (root - c)) ** 2 for c in (-0.5, 0.5))
    # both are roots to what the conditioning of P allows: 1e-12 in w, divided by the slope
    assert abs(printed - root) <= 1e-12 / slope + 1e-12
    assert abs(ShiftedTanh().inverse(np.array([w]), beta)[0] - root) <= 1e-12 / slope + 1e-12


@pytest.mark.parametrize("levels", [(-1.0, 0.99, 1.0), (-1.0, -0.999, 1.0), (0.0, 1e-6, 1.0)])
def test_three_level_inverse_at_the_middle_level_where_kappa_turns_subnormal(levels):
    # Around beta (c2 - c1) = 354..372 kappa = exp(-2 beta (c2 - c1)) is subnormal: the middle
    # level must still map back onto its own plateau (an earlier form landed on a step there).
    m = ShiftedTanh(levels)
    c = m._midpoints
    for scale in np.linspace(340, 380, 41):
        beta = scale / (c[1] - c[0])
        x = np.array([levels[1]])
        s = m.inverse(x, beta)
        assert m.project(s, beta)[0] == pytest.approx(levels[1], abs=1e-12), beta
        assert m.md_step(x, np.zeros(1), 0.1, beta)[0] == pytest.approx(levels[1], abs=1e-12)


def test_shifted_tanh_is_finite_and_right_up_to_the_largest_beta():
    # 2 beta and 1 / (2 beta) are never formed: beta = 1.7e308 still inverts, and the potential
    # and divergence keep their large-beta limits (Phi -> the piecewise-linear x s at the plateaus).
    m, uneven = ShiftedTanh(), ShiftedTanh((-1.0, 1.0, 5.0))
    x = np.array([-0.5, 0.3, 0.9])
    for beta in (1e300, 1e308, 1.7e308):
        assert uneven.project(uneven.inverse(np.array([0.5]), beta), beta)[0] == 0.5
        np.testing.assert_allclose(m.potential(x, beta), m.potential(x, 1e6), atol=1e-5)
        assert np.all(np.isfinite(m.bregman(x, x[::-1], beta)))

"""Every closed-form MD step against the numerical solution of Eq. 5, and their numerics."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from mdq_teach.maps import Euclidean, ShiftedTanh, Sigmoid, Softmax, Tanh
from mdq_teach.updates import md_step, md_step_numeric, md_step_stored

INTERVAL_MAPS = [
    Tanh(),
    Sigmoid(),
    ShiftedTanh(),
    ShiftedTanh((0.0, 1.0, 2.0, 5.0)),
    Euclidean(-1.0, 2.0),
]
IDS = [repr(m) for m in INTERVAL_MAPS]

# Tolerance for closed form vs numerical argmin: a bounded Brent search or SLSQP locates the
# minimiser of a smooth objective to about sqrt(machine eps) ~ 1.5e-8 on the scale of the
# problem, and Theorem 1's divergences are well conditioned away from the boundary. 1e-6 leaves
# two orders of magnitude of margin while still catching any wrong formula (a wrong factor of
# beta or sign moves the result by ~1e-1).
ATOL = 1e-6


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
@pytest.mark.parametrize("beta", [0.5, 2.0, 20.0])
@pytest.mark.fidelity("md:eq5", "md:eq28")
def test_closed_form_step_equals_the_numerical_argmin_of_eq_5(m, beta):
    rng = np.random.default_rng(int(beta * 10))
    x = m.lo + (m.hi - m.lo) * np.concatenate([rng.uniform(0, 1, 8), [0.0, 1.0, 1e-3, 0.999]])
    g = rng.normal(0, 2, x.size)
    eta = 0.1
    closed = m.md_step(x, g, eta, beta)
    numeric = md_step_numeric(m, x, g, eta, beta)
    assert np.allclose(closed, numeric, rtol=0, atol=ATOL * (m.hi - m.lo))
    # The module-level md_step (what the chapters call) against the same independent argmin.
    assert np.allclose(md_step(m, x, g, eta, beta), numeric, rtol=0, atol=ATOL * (m.hi - m.lo))


@pytest.mark.parametrize("beta", [0.5, 5.0, 30.0])
@pytest.mark.fidelity("md:eq5")
def test_exponentiated_gradient_equals_the_numerical_argmin_on_the_simplex(beta):
    m = Softmax((-1.0, 0.0, 1.0, 2.0))
    rng = np.random.default_rng(int(beta))
    u = rng.dirichlet(np.ones(4), size=6)
    g = rng.normal(0, 3, (6, 4))
    closed = m.md_step(u, g, 0.2, beta)
    numeric = md_step_numeric(m, u, g, 0.2, beta)
    assert np.allclose(closed, numeric, rtol=0, atol=ATOL)
    assert np.allclose(closed.sum(axis=-1), 1.0, atol=1e-15)


@given(
    st.lists(st.floats(0.01, 1.0), min_size=3, max_size=3),
    st.lists(st.floats(-5, 5), min_size=3, max_size=3),
    st.floats(0, 1),
    st.floats(0.1, 10),
)
@pytest.mark.fidelity("md:eq20")
def test_exponentiated_gradient_is_eq_20(raw, g, eta, beta):
    m = Softmax((-1.0, 0.0, 1.0))
    u, g = np.array(raw) / np.sum(raw), np.array(g)
    eq20 = u * np.exp(-beta * eta * g) / np.sum(u * np.exp(-beta * eta * g))
    assert np.allclose(m.md_step(u, g, eta, beta), eq20, rtol=1e-10, atol=1e-15)
    assert np.allclose(m.md_step_literal(u, g, eta, beta), eq20, rtol=1e-12, atol=1e-15)


@given(st.floats(-0.999, 0.999), st.floats(-5, 5), st.floats(0, 1), st.floats(0.1, 10))
@pytest.mark.fidelity("md:eq15")
def test_stable_tanh_step_is_eq_15(x, g, eta, beta):
    ratio = (1 + x) / (1 - x) * np.exp(-2 * beta * eta * g)
    eq15 = (ratio - 1) / (ratio + 1)
    assert Tanh().md_step(x, g, eta, beta) == pytest.approx(eq15, abs=1e-12)
    assert Tanh().md_step_literal(x, g, eta, beta) == pytest.approx(eq15, abs=1e-15)


@pytest.mark.parametrize("m", INTERVAL_MAPS[:4], ids=IDS[:4])
@given(x_tilde=st.floats(-2, 2), g=st.floats(-3, 3), eta=st.floats(0, 0.5), beta=st.floats(0.5, 3))
@pytest.mark.fidelity("md:eq23", "md:fig1")
def test_stored_auxiliary_step_eq_23_equals_the_primal_step(m, x_tilde, g, eta, beta):
    x_tilde_new, x_new = md_step_stored(m, x_tilde, g, eta, beta)
    assert x_tilde_new == x_tilde - eta * g
    assert x_new == pytest.approx(m.md_step(m.project(x_tilde, beta), g, eta, beta), abs=1e-9)


def test_stored_and_primal_forms_differ_once_beta_changes():
    # Annealing moves x under the stored form (x~ kept) but not under the primal form (x kept).
    m, x_tilde = Tanh(), 0.3
    x_beta1 = m.project(x_tilde, 1.0)
    _, stored = md_step_stored(m, x_tilde, 0.0, 0.1, 4.0)
    assert stored == pytest.approx(np.tanh(4.0 * 0.3))
    assert m.md_step(x_beta1, 0.0, 0.1, 4.0) == pytest.approx(x_beta1)


# -- stability: beta up to 1e4, |eta g| up to 1e3, boundary points, float32 and float64 -----------

ALL_MAPS = INTERVAL_MAPS + [Softmax((-1.0, 0.0, 1.0))]


def _points(m, dtype):
    if isinstance(m, Softmax):
        u = np.array(
            [[1, 0, 0], [0, 0, 1], [0.5, 0.5, 0], [1 / 3, 1 / 3, 1 / 3], [1e-30, 0.5, 0.5]]
        )
        return u.astype(dtype)
    fractions = np.array([0.0, 1e-7, 0.25, 0.5, 0.75, 1 - 1e-7, 1.0])
    return (m.lo + (m.hi - m.lo) * fractions).astype(dtype)


@pytest.mark.parametrize("m", ALL_MAPS, ids=IDS + ["Softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("beta", [1e-3, 1.0, 1e2, 1e4])
@pytest.mark.parametrize("eta_g", [-1e3, -1.0, -1e-3, 0.0, 1e-3, 1.0, 1e3])
def test_md_step_is_finite_and_stays_in_the_closed_domain(m, dtype, beta, eta_g):
    x = _points(m, dtype)
    g = np.full(x.shape, eta_g, dtype=dtype)
    if isinstance(m, Softmax):
        g[..., 0] = -eta_g  # opposite pushes on different levels
    out = m.md_step(x, g, 1.0, beta)
    assert out.dtype == dtype and out.shape == x.shape
    assert np.all(np.isfinite(out))
    if isinstance(m, Softmax):
        assert np.all(out >= 0) and np.all(out <= 1)
        assert np.allclose(out.sum(axis=-1), 1, atol=8 * np.finfo(dtype).eps)
    else:
        assert np.all(out >= m.lo) and np.all(out <= m.hi)


@given(st.floats(-1, 1, width=32), st.floats(-1e3, 1e3, width=32), st.floats(1, 1e4))
def test_float32_tanh_step_matches_a_float64_reference(x, g, beta):
    x32, g32 = np.float32(x), np.float32(g)
    out = Tanh().md_step(x32, g32, 1.0, beta)
    assert out.dtype == np.float32
    # Reference: the same clamping rule (boundary -> nearest interior float32) done by hand.
    x_in = np.clip(float(x32), -1 + 2.0**-24, 1 - 2.0**-24)
    ref = np.tanh(np.arctanh(x_in) - beta * float(g32))
    assert float(out) == pytest.approx(ref, abs=2 * 2.0**-24)


def test_a_boundary_point_can_move_back_inside():
    assert Tanh().md_step(1.0, 1e3, 1.0, 1.0) == -1.0
    assert 0 < Sigmoid().md_step(0.0, -1.0, 1.0, 700.0) < 1  # logit(tiny) = -708
    u = Softmax((-1, 0, 1)).md_step(np.array([1.0, 0.0, 0.0]), np.array([1.0, 0.0, 0.0]), 1.0, 1e3)
    assert u[0] < 1e-100 and u[1] == pytest.approx(0.5)  # logits -1000, -708, -708


@pytest.mark.fidelity("md:eq15")
def test_literal_eq_15_breaks_where_the_stable_form_does_not():
    m = Tanh()
    x = np.array([0.5, 1.0], dtype=np.float32)
    g = np.array([-30.0, 0.1], dtype=np.float32)
    literal = m.md_step_literal(x, g, 1.0, 10.0)
    # exp(600) overflows float32 -> inf / inf; x = 1 divides by zero -> inf / inf.
    assert np.all(np.isnan(literal))
    stable = m.md_step(x, g, 1.0, 10.0)
    assert np.all(np.isfinite(stable)) and stable.dtype == np.float32
    assert stable[0] == 1.0 and stable[1] < 1.0


def test_literal_eq_20_underflows_where_the_stable_form_does_not():
    m = Softmax((-1, 0, 1))
    u = np.array([0.2, 0.3, 0.5], dtype=np.float32)
    g = np.full(3, 200.0, dtype=np.float32)
    assert np.all(np.isnan(m.md_step_literal(u, g, 1.0, 1.0)))
    assert np.allclose(m.md_step(u, g, 1.0, 1.0), u)  # a constant gradient does not move u


def test_md_step_broadcasts_and_keeps_shapes():
    m = Tanh()
    out = m.md_step(np.zeros((2, 3)), np.array([1.0, 0.0, -1.0]), np.array([[0.1], [0.2]]), 2.0)
    assert out.shape == (2, 3)
    assert out[1, 0] == pytest.approx(np.tanh(-0.4)) and out[0, 1] == 0.0
    numeric = md_step_numeric(m, np.zeros((2, 3)), np.array([1.0, 0.0, -1.0]), 0.1, 2.0)
    assert numeric.shape == (2, 3)


@pytest.mark.filterwarnings("error")  # a RuntimeWarning would break the book's -W build
@pytest.mark.parametrize("m", ALL_MAPS, ids=IDS + ["Softmax"])
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_extreme_inputs_give_limits_without_warnings(m, dtype):
    big = np.finfo(dtype).max
    x = _points(m, dtype)
    if isinstance(m, Softmax):
        huge = np.array([[big, -big, 0.0], [big, big, -big]], dtype=dtype)
        assert np.allclose(m.project(huge, 1e4), [[1, 0, 0], [0.5, 0.5, 0]])
    else:
        huge = np.array([big, -big], dtype=dtype)
        assert np.array_equal(m.project(huge, 1e4), [m.hi, m.lo])
    for out in (m.inverse(x, 1e4), m.potential(x, 1e-3), m.bregman(x, x, 1e4), m.round(x)):
        assert not np.any(np.isnan(out))

"""Bad input raises ValueError naming the argument and its allowed range; nothing returns NaN."""

import numpy as np
import pytest

from mdq_teach.maps import Euclidean, ShiftedTanh, Sigmoid, Softmax, Tanh, get_map
from mdq_teach.theory import check_projection, is_proximal_map, md_bound, md_step_size
from mdq_teach.updates import md_step_numeric, md_step_stored

INTERVAL_MAPS = [Tanh(), Sigmoid(), ShiftedTanh(), Euclidean()]
IDS = ["tanh", "sigmoid", "shifted_tanh", "euclidean"]
ALL_MAPS = INTERVAL_MAPS + [Softmax((-1, 0, 1))]
ALL_IDS = IDS + ["softmax"]


def _inside(m):
    return np.array([1 / 3, 1 / 3, 1 / 3]) if isinstance(m, Softmax) else 0.5 * (m.lo + m.hi)


def _every_method(m, x=None, g=None, eta=0.1, beta=1.0):
    """Call every beta-taking method of m with the given (possibly bad) arguments."""
    x = _inside(m) if x is None else x
    g = np.zeros_like(_inside(m)) if g is None else g
    calls = [
        lambda: m.inverse(x, beta),
        lambda: m.potential(x, beta),
        lambda: m.bregman(x, _inside(m), beta),
        lambda: m.md_step(x, g, eta, beta),
        lambda: md_step_numeric(m, x, g, eta, beta),
    ]
    if hasattr(m, "md_step_literal"):
        calls.append(lambda: m.md_step_literal(x, g, eta, beta))
    return calls


@pytest.mark.parametrize("m", ALL_MAPS, ids=ALL_IDS)
@pytest.mark.parametrize("beta", [0.0, -1.0, np.nan, np.inf, [1.0, 2.0]])
def test_beta_must_be_a_positive_finite_scalar(m, beta):
    for call in [*_every_method(m, beta=beta), lambda: m.project(_inside(m), beta)]:
        with pytest.raises(ValueError, match="beta"):
            call()


@pytest.mark.parametrize("m", ALL_MAPS, ids=ALL_IDS)
def test_beta_message_states_the_allowed_range(m):
    with pytest.raises(ValueError, match=r"beta must be > 0 \(allowed range: \(0, inf\)\)"):
        m.md_step(_inside(m), np.zeros_like(_inside(m)), 0.1, 0.0)


@pytest.mark.parametrize("m", ALL_MAPS, ids=ALL_IDS)
@pytest.mark.parametrize("eta", [-0.1, np.nan, -np.inf])
def test_eta_must_be_non_negative_and_finite(m, eta):
    with pytest.raises(ValueError, match="eta"):
        m.md_step(_inside(m), np.zeros_like(_inside(m)), eta, 1.0)
    with pytest.raises(ValueError, match="eta"):
        md_step_numeric(m, _inside(m), np.zeros_like(_inside(m)), eta, 1.0)
    with pytest.raises(ValueError, match=r"eta must be >= 0|eta must be finite"):
        md_step_stored(Tanh(), 0.0, 0.0, eta, 1.0)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
def test_points_outside_the_domain_are_rejected_with_the_domain(m):
    outside = m.hi + 0.01 * (m.hi - m.lo)
    for call in _every_method(m, x=outside):
        with pytest.raises(ValueError, match=r"[xp] must lie in the domain \["):
            call()
    with pytest.raises(ValueError, match="q must lie in the domain"):
        m.bregman(_inside(m), m.lo - 1.0, 1.0)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_rounding_overshoot_of_the_boundary_is_tolerated(m, dtype):
    eps = np.finfo(dtype).eps
    x = np.array([m.hi + 4 * eps * max(1, abs(m.hi)), m.lo - 4 * eps * max(1, abs(m.lo))], dtype)
    out = m.md_step(x, np.zeros(2, dtype), 0.1, 1.0)
    assert np.all((out >= m.lo) & (out <= m.hi))


@pytest.mark.parametrize("m", ALL_MAPS, ids=ALL_IDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_rejected_in_every_input(m, bad):
    x_bad = np.where(np.arange(np.size(_inside(m))) == 0, bad, _inside(m))
    if not isinstance(m, Softmax):
        x_bad = x_bad[0]
    for call in _every_method(m, x=x_bad):
        with pytest.raises(ValueError, match="finite"):
            call()
    g_bad = np.full(np.shape(_inside(m)), bad)
    with pytest.raises(ValueError, match="g must be finite"):
        m.md_step(_inside(m), g_bad, 0.1, 1.0)
    with pytest.raises(ValueError, match="x_tilde must be finite|u_tilde must be finite"):
        m.project(g_bad, 1.0)
    with pytest.raises(ValueError, match="x must be finite|u must be finite"):
        m.round(x_bad)


@pytest.mark.parametrize(
    "levels",
    [(1, -1), (-1, 0, 0, 1), (0,), (), ((0, 1), (1, 2)), (0, np.nan), (0, np.inf), "ab"],
)
def test_levels_must_be_sorted_distinct_finite_and_at_least_two(levels):
    for make in (ShiftedTanh, Softmax, lambda q: get_map("euclidean", q)):
        with pytest.raises(ValueError, match="levels"):
            make(levels)
    with pytest.raises(ValueError, match="levels"):
        Euclidean(1.0, -1.0)


@pytest.mark.parametrize("m", INTERVAL_MAPS, ids=IDS)
def test_shapes_that_do_not_broadcast_are_rejected(m):
    x = np.full(3, _inside(m))
    with pytest.raises(ValueError, match=r"shapes do not broadcast: x \(3,\), g \(2,\)"):
        m.md_step(x, np.zeros(2), 0.1, 1.0)
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        m.md_step(x, np.zeros(3), np.full(2, 0.1), 1.0)
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        m.bregman(x, np.full(2, _inside(m)), 1.0)
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        md_step_numeric(m, x, np.zeros(2), 0.1, 1.0)
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        md_step_stored(m, x, np.zeros(2), 0.1, 1.0)


def test_softmax_inputs_must_be_probability_vectors_of_the_right_length():
    m = Softmax((-1, 0, 1))
    with pytest.raises(ValueError, match="u must sum to 1 along the last axis"):
        m.md_step(np.array([0.5, 0.5, 0.5]), np.zeros(3), 0.1, 1.0)
    with pytest.raises(ValueError, match="u must be non-negative"):
        m.md_step(np.array([1.5, -0.5, 0.0]), np.zeros(3), 0.1, 1.0)
    with pytest.raises(ValueError, match="last axis of length 3"):
        m.md_step(np.array([0.5, 0.5]), np.zeros(2), 0.1, 1.0)
    with pytest.raises(ValueError, match="g must have a last axis of length 3"):
        m.md_step(np.ones(3) / 3, np.zeros(2), 0.1, 1.0)
    with pytest.raises(ValueError, match="p must sum to 1"):
        m.bregman(np.array([0.2, 0.2, 0.2]), np.ones(3) / 3, 1.0)
    with pytest.raises(ValueError, match="u must sum to 1"):
        m.weights(np.array([[0.2, 0.2, 0.2]]))
    with pytest.raises(ValueError, match="shapes do not broadcast"):
        m.md_step(np.ones((2, 3)) / 3, np.zeros((3, 3)), 0.1, 1.0)
    with pytest.raises(ValueError, match="u_tilde must have a last axis of length 3"):
        m.project(np.zeros(4), 1.0)
    # Rounding error of a float32 normalisation is accepted.
    u32 = (np.array([1, 2, 4], np.float32) / np.float32(7)).astype(np.float32)
    assert np.isfinite(m.md_step(u32, np.zeros(3, np.float32), 0.1, 1.0)).all()


def test_unknown_map_names_list_the_valid_ones():
    with pytest.raises(ValueError, match="name must be one of 'euclidean', 'shifted_tanh'.*'relu'"):
        get_map("relu")


@pytest.mark.parametrize("fn", [md_bound, md_step_size])
def test_theorem_2_arguments_must_be_positive(fn):
    good = {"R": 1.0, "L": 1.0, "rho": 1.0, "B": 2.0, "t": 10}
    for name, bad in [("R", 0.0), ("L", -1.0), ("rho", 0.0), ("t", 0), ("R", np.nan)]:
        with pytest.raises(ValueError, match=name):
            fn(**{**good, name: bad})
    with pytest.raises(ValueError, match=r"B must lie in \[1.0, inf\)"):
        fn(**{**good, "B": 0.5})


def test_theory_checks_reject_bad_intervals():
    with pytest.raises(ValueError, match="lo must be < hi"):
        check_projection(np.tanh, 1, -1)
    with pytest.raises(ValueError, match="hi must be finite"):
        check_projection(np.tanh, -1, np.inf)
    with pytest.raises(ValueError, match="lo must be < hi"):
        is_proximal_map(np.tanh, 0, 0)
    with pytest.raises(ValueError, match="NaN or inf"), np.errstate(all="ignore"):
        is_proximal_map(np.log, -1, 1)


def test_non_finite_projection_values_fail_the_check_instead_of_crashing():
    with np.errstate(all="ignore"):
        report = check_projection(lambda s: np.tanh(s) / (s != 0), -1, 1)
    assert not report.valid and "non_finite_at" in report.details

"""Bad input raises ValueError naming the argument and its allowed range; nothing returns NaN."""

import warnings

import mpmath
import numpy as np
import pytest

from mdq_support import bad_input_sweep as SWEEP
from mdq_teach._validate import check_range
from mdq_teach.bregman import kl
from mdq_teach.maps import Euclidean, ShiftedTanh, Sigmoid, Softmax, Tanh, get_map
from mdq_teach.theory import check_projection, is_proximal_map, md_bound, md_step_size
from mdq_teach.toy import betas
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


# ------------------------------------------------------------------ the bad-input sweep, as tests
# mdq_support.bad_input_sweep holds the list of bad inputs (so the benchmark's count and these
# tests never drift apart); every one must be refused with a ValueError or TypeError naming the
# argument.
SWEEP_CASES = SWEEP.cases()
LOW_PRECISION_CASES = SWEEP.low_precision_cases()


@pytest.mark.parametrize(
    "label, arg, kind, call",
    SWEEP_CASES,
    ids=[f"{label}-{arg}={kind}" for label, arg, kind, _ in SWEEP_CASES],
)
def test_every_bad_input_of_the_sweep_names_its_argument(label, arg, kind, call):
    with pytest.raises((ValueError, TypeError)) as info, warnings.catch_warnings():
        warnings.simplefilter("error")  # a ComplexWarning or overflow warning is not an answer
        call()
    assert arg in str(info.value), f"{label}({arg}={kind}) raised without naming {arg!r}"


def test_the_sweep_is_large_and_covers_every_kind_of_bad_value():
    kinds = {kind for _, _, kind, _ in SWEEP_CASES}
    assert len(SWEEP_CASES) > 1000
    assert {"0", "-1", "nan", "inf", "str", "None", "complex", "ragged", "above domain",
            "unknown", "wrong shape", "unsorted", "overflows", "datetime64", "timedelta64"} <= kinds


@pytest.mark.parametrize("value", [np.datetime64("2020-01-01"), np.timedelta64(5, "s"),
                                   np.array([1, 2], dtype="timedelta64[ms]")])
def test_dates_and_durations_are_not_numbers(value):
    # numpy converts them to counts of their unit (18262.0 days, 5.0 s): they used to pass.
    with pytest.raises(ValueError, match="eta must be a real number"):
        md_step_stored(Tanh(), 0.0, 0.0, value, 1.0)
    with pytest.raises(ValueError, match="beta must be a single finite real number"):
        check_range("beta", value, {"beta": (0.1, 1e9)})


@pytest.mark.parametrize(
    "label, dtype, call",
    LOW_PRECISION_CASES,
    ids=[f"{label}-{np.dtype(d).name}" for label, d, _ in LOW_PRECISION_CASES],
)
def test_valid_float16_and_float32_inputs_give_finite_results_in_their_dtype(label, dtype, call):
    out = np.asarray(call())
    assert np.all(np.isfinite(out))
    assert out.dtype == dtype


# ------------------------------------------------------------------ silent wrong answers, fixed


def test_md_step_numeric_refuses_a_nan_tolerance_instead_of_returning_a_wrong_step():
    # With xatol = nan scipy stopped at its first golden-section point, -0.2361 for a true -0.0902.
    message = r"xatol must be a single finite real number in \(0.0, 1.0\], got nan"
    with pytest.raises(ValueError, match=message):
        md_step_numeric(Tanh(), 0.0, 1.0, 0.1, 1.0, xatol=np.nan)
    assert md_step_numeric(Tanh(), 0.0, 1.0, 0.1, 1.0) == pytest.approx(np.tanh(-0.1), abs=1e-9)


def _mp_relative_entropy(a, b):
    a, b = mpmath.mpf(a), mpmath.mpf(b)
    return a * mpmath.log(a / b) - a + b if a > 0 else b


@pytest.mark.parametrize("q", [1e-310, 1e-300, 5e-324, 1e-20])
def test_sigmoid_divergence_to_a_tiny_point_matches_mpmath(q):
    # kl_div formed p / q = 0.5 / 1e-310, which overflows; the true value is about 356.
    with mpmath.workdps(50):
        exact = (_mp_relative_entropy(0.5, q) + _mp_relative_entropy(0.5, 1 - mpmath.mpf(q))) / 1
        expected = float(exact)
    got = Sigmoid().bregman(0.5, q, 1.0)
    assert np.isfinite(got) and got == pytest.approx(expected, rel=1e-14)


def test_softmax_divergence_and_kl_to_a_tiny_probability_match_mpmath():
    p = np.array([0.5, 0.5])
    q = np.array([1e-310, 1.0])  # sums to 1 in float64
    with mpmath.workdps(50):
        expected = float(sum(_mp_relative_entropy(a, b) for a, b in zip(p, q, strict=True)))
    assert Softmax((0.0, 1.0)).bregman(p, q, 2.0) == pytest.approx(expected / 2, rel=1e-14)
    assert kl(p, q) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("dtype", [np.float16, np.float32])
def test_kl_accepts_low_precision_probability_vectors_and_keeps_their_dtype(dtype):
    p = (np.array([1, 2, 4], dtype) / dtype(7)).astype(dtype)  # sums to 1 only up to rounding
    q = np.full(3, 1 / 3, dtype)
    out = kl(p, q)
    assert out.dtype == dtype
    reference = float(np.sum(p.astype(np.float64) * np.log(p.astype(np.float64) / (1 / 3))))
    assert float(out) == pytest.approx(reference, abs=10 * float(np.finfo(dtype).eps))
    with pytest.raises(ValueError, match="p must sum to 1"):
        kl(np.array([0.5, 0.6, 0.1], dtype), q)  # off by far more than rounding


def test_an_uncapped_schedule_that_overflows_is_refused_with_the_step():
    with pytest.raises(ValueError, match=r"overflows float64 at step k = 2 .* beta_max"):
        betas(1.0, 10, beta_growth=1e300)
    assert np.all(np.isfinite(betas(1.0, 10, beta_growth=1e300, beta_max=1e6)))


def test_check_range_names_the_setting_for_non_numbers():
    message = r"beta must be a single finite real number in \[0.1, 10.0\]"
    with pytest.raises(ValueError, match=message):
        check_range("beta", "abc", {"beta": (0.1, 10.0)})

"""Theorem 1 checker, proximal-map criterion, Theorem 2 bound and step size."""

import math

import numpy as np
import pytest

from mdq_teach.maps import ShiftedTanh, Sigmoid, Tanh
from mdq_teach.theory import check_projection, is_proximal_map, md_bound, md_step_size

VALID = {
    "tanh": (np.tanh, -1, 1),
    "tanh beta=5": (lambda s: Tanh().project(s, 5.0), -1, 1),
    "tanh beta=0.2": (lambda s: np.tanh(0.2 * s), -1, 1),
    "sigmoid": (lambda s: Sigmoid().project(s, 2.0), 0, 1),
    "shifted tanh": (lambda s: ShiftedTanh().project(s, 2.0), -1, 1),
    "shifted tanh, uneven": (lambda s: ShiftedTanh((0, 1, 2, 5)).project(s, 3.0), 0, 5),
    "algebraic s/sqrt(1+s^2)": (lambda s: s / np.sqrt(1 + s * s), -1, 1),
    "scalar-only math.tanh": (math.tanh, -1, 1),
}


@pytest.mark.parametrize("name", VALID)
@pytest.mark.fidelity("md:thm1", "md:thm3")
def test_valid_projections_pass_every_condition(name):
    P, lo, hi = VALID[name]
    report = check_projection(P, lo, hi)
    assert report.valid, str(report)
    assert report.strictly_increasing and report.maps_into_open_interval
    assert report.limits_are_boundary and report.inverse_diverges_at_boundary


def test_non_monotone_map_fails_condition_1_only():
    # s - 0.8 sin(2 s) decreases where cos(2 s) > 1/1.6, yet still tends to +-inf.
    report = check_projection(lambda s: np.tanh(s - 0.8 * np.sin(2 * s)), -1, 1)
    assert not report.valid
    assert not report.strictly_increasing
    assert report.limits_are_boundary and report.inverse_diverges_at_boundary


def test_hard_tanh_reaches_the_boundary_and_has_a_bounded_inverse():
    report = check_projection(lambda s: np.clip(s, -1, 1), -1, 1)
    assert not report.valid
    assert not report.inverse_diverges_at_boundary
    assert not report.maps_into_open_interval  # P(1) = 1 at a finite input
    assert not report.strictly_increasing  # constant on [1, inf)
    assert report.limits_are_boundary
    # Its inverse near 1 converges to 1: growth per decade ~ 0.1.
    assert report.details["growth_hi"] == pytest.approx(0.1, rel=1e-3)
    assert report.details["inverse_near_hi"][-1] == pytest.approx(1.0, abs=1e-10)


def test_smooth_map_reaching_the_boundary_at_a_finite_input_is_rejected():
    quartic = lambda s: np.sign(s) * (1 - (1 - np.minimum(np.abs(s), 1)) ** 4)  # noqa: E731
    report = check_projection(quartic, -1, 1)
    assert not report.inverse_diverges_at_boundary and not report.valid


def test_map_onto_a_smaller_interval_does_not_reach_the_boundary():
    report = check_projection(lambda s: 0.9 * np.tanh(s), -1, 1)
    assert not report.limits_are_boundary and not report.valid


def test_tanh_inverse_probe_matches_atanh():
    report = check_projection(np.tanh, -1, 1)
    distances = report.details["distances"]
    expected = np.arctanh(1 - distances)
    # One ulp of tanh near 1 is worth eps / (1 - x^2) ~ eps / (2 distance) in the input.
    allowed = 1e-9 + 4 * np.finfo(float).eps / (2 * distances)
    assert np.all(np.abs(report.details["inverse_near_hi"] - expected) <= allowed)
    assert report.details["growth_hi"] == pytest.approx(1.0, abs=0.01)


def test_report_renders_as_text_and_html():
    good, bad = check_projection(np.tanh, -1, 1), check_projection(np.sign, -1, 1)
    assert "valid projection" in str(good) and "NOT" in str(bad)
    html = bad._repr_html_()
    assert html.startswith("<table>") and "diverges" in html and "&#10008;" in html


@pytest.mark.parametrize(
    ("P", "monotone", "nonexpansive"),
    [
        (np.tanh, True, True),  # slope <= 1: prox of a convex r
        (lambda s: np.tanh(3 * s), True, False),  # slope 3 at 0: prox of a nonconvex r
        (lambda s: np.clip(s, -1, 1), True, True),  # prox of the indicator of [-1, 1]
        (np.sign, True, False),  # jump: prox of the (nonconvex) indicator of {-1, 1}
        (lambda s: np.sin(3 * s), False, False),
        (lambda s: 0.5 * s, True, True),
    ],
)
@pytest.mark.fidelity("pc:b")
def test_proximal_map_criterion(P, monotone, nonexpansive):
    report = is_proximal_map(P, -2, 2)
    assert report.monotone == monotone and report.proximal == monotone
    assert report.nonexpansive == nonexpansive
    assert report.convex_regulariser == (monotone and nonexpansive)
    assert "Proximal-map test" in str(report) and "<table>" in report._repr_html_()


def test_proximal_map_max_slope_is_measured():
    assert is_proximal_map(lambda s: np.tanh(3 * s), -1, 1).max_slope == pytest.approx(3, 1e-6)


@pytest.mark.fidelity("md:thm2", "md:eq22")
def test_theorem_2_bound_and_step_size():
    R, L, rho, B, t = math.sqrt(math.log(2)), 2.0, 1.0, 10.0, 1000
    assert md_bound(R, L, rho, B, t) == pytest.approx(R * L * math.sqrt(2 * B / (rho * t)))
    eta = md_step_size(R, L, rho, B, t)
    assert eta == pytest.approx(R / L * math.sqrt(2 * rho / (B * t)))
    # The step size balances the two terms of the proof, R^2 / (eta t) + eta B L^2 / (2 rho),
    # and their sum is the bound.
    assert R**2 / (eta * t) == pytest.approx(eta * B * L**2 / (2 * rho))
    assert R**2 / (eta * t) + eta * B * L**2 / (2 * rho) == pytest.approx(md_bound(R, L, rho, B, t))
    ts = np.array([10, 1000])
    assert np.allclose(md_bound(R, L, rho, B, ts), R * L * np.sqrt(2 * B / (rho * ts)))


@pytest.mark.fidelity("md:thm2")
def test_theorem_2_bound_is_the_minimum_over_step_sizes():
    R, L, rho, B, t = 1.3, 0.7, 0.5, 4.0, 200
    etas = np.logspace(-4, 1, 2001)
    total = R**2 / (etas * t) + etas * B * L**2 / (2 * rho)
    assert total.min() == pytest.approx(md_bound(R, L, rho, B, t), rel=1e-5)
    assert etas[total.argmin()] == pytest.approx(md_step_size(R, L, rho, B, t), rel=1e-2)

"""The pure update functions of the chapter 5 and 7 explorers (widgets/annealing.py and toy.py)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402
from scipy.optimize import minimize_scalar  # noqa: E402

from mdq_teach import theory, toy  # noqa: E402
from mdq_teach.widgets import annealing  # noqa: E402
from mdq_teach.widgets import toy_explorer as toy_widget  # noqa: E402

# ---------------------------------------------------------------- chapter 7: PQ against MD


def test_toy_update_reproduces_fig3():
    d = toy_widget.update(beta=4.0, x_tilde0=1.2, eta=0.1, steps=200)
    assert set(d["trajectories"]) == set(toy_widget.METHODS)
    assert all(xs.shape == (201,) for xs in d["trajectories"].values())
    assert d["final"]["md-tanh"] == pytest.approx(-1, abs=1e-2)
    assert d["final"]["md-tanh-s"] == pytest.approx(-1, abs=1e-2)
    assert d["final"]["pq-l1"] == pytest.approx(1.0)
    assert d["final"]["pq-l2"] == pytest.approx(3 / 5)  # (beta - 1) / (beta + 1)
    assert d["stuck"] == {"md-tanh": False, "md-tanh-s": False, "pq-l1": True, "pq-l2": True}
    np.testing.assert_array_equal(
        d["trajectories"]["pq-l2"], toy.run("pq-l2", "quadratic", 1.2, 4.0, 0.1, 200)
    )


def test_toy_update_objectives_are_f_plus_beta_w():
    beta = 2.5
    d = toy_widget.update(beta=beta)
    x = d["grid"]
    dist = np.abs(np.abs(x) - 1)
    np.testing.assert_allclose(d["objectives"]["f"], (x + 1) ** 2)
    np.testing.assert_allclose(d["objectives"]["pq-l1"], (x + 1) ** 2 + beta * dist)
    np.testing.assert_allclose(d["objectives"]["pq-l2"], (x + 1) ** 2 + beta * dist**2)


@pytest.mark.parametrize(
    "beta, l1_end, l2_end",
    [
        (0.75, -1.0, -1.0),  # beta <= 1: no valley on the right for either form
        (3.0, 0.5, 0.5),  # 2 < beta < 4: the L1 valley is beta / 2 - 1, the L2 one (b-1)/(b+1)
        (8.0, 1.0, 7 / 9),
    ],
)
def test_toy_update_finds_the_valleys_derived_by_hand(beta, l1_end, l2_end):
    d = toy_widget.update(beta=beta, x_tilde0=1.2, eta=0.05, steps=2000)
    assert d["final"]["pq-l1"] == pytest.approx(l1_end, abs=1e-6)
    assert d["final"]["pq-l2"] == pytest.approx(l2_end, abs=1e-6)
    assert d["final"]["md-tanh-s"] == pytest.approx(-1, abs=1e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(beta=0.0), "beta"),
        (dict(beta=np.nan), "beta"),
        (dict(x_tilde0=5.0), "x_tilde0"),
        (dict(eta=-0.1), "eta"),
        (dict(steps=0), "steps"),
        (dict(steps=2.5), "steps"),
    ],
)
def test_toy_update_rejects_bad_sliders(kwargs, match):
    with pytest.raises(ValueError, match=match):
        toy_widget.update(**kwargs)


def test_toy_sweep_matches_single_runs():
    starts, betas = [-0.5, 0.4, 1.2], [0.75, 4.0]
    ends = toy_widget.sweep(starts, betas, eta=0.1, steps=50)
    for m in toy_widget.METHODS:
        assert ends[m].shape == (2, 3)
        for i, b in enumerate(betas):
            for j, s in enumerate(starts):
                assert ends[m][i, j] == pytest.approx(toy.run(m, "quadratic", s, b, 0.1, 50)[-1])
    with pytest.raises(ValueError, match="x_tilde0"):
        toy_widget.sweep([3.0], betas)


def test_toy_draw_and_explorer_build():
    fig = toy_widget.draw(toy_widget.update(steps=20))
    assert len(fig.axes) == 2
    plt.close(fig)
    box = toy_widget.explorer(canvas="png")
    assert len(box.children) == 5  # two rows of sliders, readout, figure, error area
    assert len(box.sliders) == 4


# ---------------------------------------------------------------- chapter 5: Theorem 2


def test_constants_of_the_tanh_mirror_map():
    c = annealing.constants()
    assert c["R"] ** 2 == pytest.approx(annealing.PROBLEM.dim * np.log(2.0))
    assert c["rho"] == 1.0
    assert c["L"] == pytest.approx(np.linalg.norm(1 + np.abs(annealing.PROBLEM.target)))


@given(cap=st.floats(1.0, 100.0), t=st.integers(1, 10_000))
def test_fixed_step_bound_is_minimised_by_the_theorem_step(cap, t):
    c = annealing.constants()
    args = (c["R"], c["L"], c["rho"], cap, t)
    res = minimize_scalar(
        lambda log_eta: annealing.fixed_step_bound(*args, np.exp(log_eta)),
        bracket=(-12, 0),
        tol=1e-12,
    )
    assert np.exp(res.x) == pytest.approx(theory.md_step_size(*args), rel=1e-4)
    assert res.fun == pytest.approx(theory.md_bound(*args), rel=1e-8)


@given(cap=st.floats(1.0, 1000.0), log_eta=st.floats(-4, 1))
def test_measured_gap_never_exceeds_the_fixed_step_bound(cap, log_eta):
    # The proof of Theorem 2 (Appendix A.3) before eta is tuned: for any fixed eta,
    # gap(t) <= R^2 / (eta t) + eta B L^2 / (2 rho), with R^2 = n log 2 (Phi_1(+-1) - Phi_1(0) per
    # coordinate of Eq. 14), rho = 1 and L = max over the box of ||x - a|| = ||1 + |a|||.
    p, eta, t = annealing.PROBLEM, 10.0**log_eta, np.arange(1, 151)
    r2, l2 = p.dim * np.log(2.0), np.sum((1.0 + np.abs(p.target)) ** 2)
    bound = r2 / (eta * t) + eta * cap * l2 / 2.0
    d = annealing.update(cap=cap, eta=eta, steps=150)
    np.testing.assert_allclose(d["bound_eta"], bound, rtol=1e-10)
    assert np.all(d["gap"] <= bound)
    assert d["holds"]


def test_annealing_update_data():
    d = annealing.update(cap=16.0, steps=300)
    p = annealing.PROBLEM
    c = annealing.constants()
    assert (
        d["eta"]
        == d["eta_theorem"]
        == pytest.approx(theory.md_step_size(c["R"], c["L"], 1.0, 16.0, 300))
    )
    np.testing.assert_array_equal(d["t"], np.arange(1, 301))
    assert d["gap"][0] == pytest.approx(p.f(np.zeros(p.dim)) - p.optimum)  # x^0 = argmin Phi = 0
    assert d["gap"][-1] <= d["bound_theorem"][-1]
    assert d["betas"][0] == 1.0 and d["betas"].max() == 16.0 and np.all(np.diff(d["betas"]) >= 0)
    xs = toy.run("md-tanh", p, np.zeros(p.dim), 1.0, d["eta"], 299, beta_growth=1.1, beta_max=16)
    np.testing.assert_allclose(d["gap"], toy.averaged_gap(p, xs))


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cap=0.5), "cap"),
        (dict(cap=np.inf), "cap"),
        (dict(eta=0.0), "eta"),
        (dict(eta=np.nan), "eta"),
        (dict(steps=1), "steps"),
        (dict(steps=10.5), "steps"),
    ],
)
def test_annealing_update_rejects_bad_sliders(kwargs, match):
    with pytest.raises(ValueError, match=match):
        annealing.update(**kwargs)


def test_annealing_draw_and_explorer_build():
    data = annealing.update(steps=20)
    artists = annealing.draw(data)
    assert len(artists["gap"].figure.axes) == 1
    np.testing.assert_array_equal(artists["bound_eta"].get_ydata(), data["bound_eta"])
    box = annealing.explorer(canvas="png")
    assert len(box.children) == 4  # sliders, readout, figure, error area

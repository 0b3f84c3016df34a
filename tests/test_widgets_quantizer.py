"""The chapter 9 explorer: its pure update, the drawing, and the widget wiring."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mdq_teach import maps  # noqa: E402
from mdq_teach.widgets import quantizer  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_update_tanh_curve_regulariser_and_trajectory_written_out_here():
    beta, center, eta = 0.8, -0.3, 0.05
    data = quantizer.update("tanh", beta, center=center, x_tilde0=0.8, eta=eta, steps=30, n=201)
    theta = data["theta"]
    np.testing.assert_array_equal(data["w"], np.tanh(beta * theta))
    np.testing.assert_array_equal(data["limit"], np.where(theta >= 0, 1.0, -1.0))
    # r = Phi - w^2/2 with Phi of Eq. 14 (up to a constant), +inf outside [-1, 1].
    w = data["w_grid"]
    inside = np.abs(w) <= 1
    phi = maps.Tanh().potential(w[inside], beta)
    r, expected = data["r"][inside], phi - w[inside] ** 2 / 2
    np.testing.assert_allclose(r - r[0], expected - expected[0], atol=1e-12)
    assert np.all(np.isinf(data["r"][~inside]))
    np.testing.assert_allclose(data["phi"][inside], w[inside] ** 2 / 2 + r)
    # ProxConnect on f(w) = (w - center)^2: theta -= eta f'(w); w = tanh(beta theta).
    t, ws = 0.8, [np.tanh(beta * 0.8)]
    for _ in range(30):
        t = t - eta * 2 * (ws[-1] - center)
        ws.append(np.tanh(beta * t))
    np.testing.assert_allclose(data["trajectory"], ws, rtol=1e-14)


@settings(max_examples=15)
@given(beta=st.floats(0.1, 1.0))
def test_tanh_is_convex_up_to_beta_one(beta):
    assert quantizer.update("tanh", beta, steps=1, n=101)["convex"]


@pytest.mark.parametrize(
    "family, beta, convex",
    [("tanh", 3.0, False), ("linear", 1.0, True), ("linear", 2.0, False), ("hard", 1.0, False)]
    + [("binaryrelax", 0.5, False)],
)
def test_convexity_flag(family, beta, convex):
    data = quantizer.update(family, beta, steps=1, n=201)
    assert data["convex"] is convex
    if family == "linear":  # slope beta on the ramps: the largest slope is beta itself
        assert data["max_slope"] == pytest.approx(beta, rel=1e-6)


def test_hard_quantizer_regulariser_is_finite_only_on_the_levels():
    data = quantizer.update("hard", 1.0, levels=(-1.0, 0.0, 1.0), steps=1, n=401)
    finite = data["w_grid"][np.isfinite(data["r"])]
    np.testing.assert_allclose(finite, [-1.0, 0.0, 1.0])


def test_bad_input_raises_value_error():
    with pytest.raises(ValueError, match="family must be one of"):
        quantizer.update("sign")
    with pytest.raises(ValueError, match="beta must lie in"):
        quantizer.update("tanh", 1000.0)
    with pytest.raises(ValueError, match="beta must be a number >= 1"):
        quantizer.update("linear", 0.5)
    with pytest.raises(ValueError, match="eta"):
        quantizer.update("tanh", 1.0, eta=0.0)
    with pytest.raises(ValueError, match="steps"):
        quantizer.update("tanh", 1.0, steps=2.5)


def test_draw_overlays_and_explorer_redraws():
    fig, axes = plt.subplots(1, 3)
    a = quantizer.draw(axes, quantizer.update("linear", 1.0, steps=5), color="C0")
    b = quantizer.draw(axes, quantizer.update("linear", 8.0, steps=5), color="C1", frame=False)
    assert not np.array_equal(a["p"].get_ydata(), b["p"].get_ydata())
    box = quantizer.quantizer_explorer("tanh", 0.5, canvas="png")
    before = [line.get_ydata().copy() for line in box.figure.axes[0].lines]
    box.slider.value = 8.0
    after = [line.get_ydata() for line in box.figure.axes[0].lines]
    assert any(not np.array_equal(x, y) for x, y in zip(before, after, strict=True))

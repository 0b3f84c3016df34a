"""The chapter 3 explorer: its pure update, the drawing it drives, and the slider wiring."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from hypothesis import given  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from mdq_teach.widgets import projections  # noqa: E402


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def test_update_evaluates_each_projection_written_out_here():
    data = projections.update(3.0, span=2.0, n=101)
    xt = data["x_tilde"]
    np.testing.assert_allclose(xt, np.linspace(-2, 2, 101))
    np.testing.assert_allclose(data["curves"]["tanh"], np.tanh(3 * xt), atol=1e-15)
    np.testing.assert_allclose(data["curves"]["sigmoid"], 1 / (1 + np.exp(-3 * xt)), atol=1e-15)
    # Eq. 21
    shifted = 0.5 * (np.tanh(3 * (xt + 0.5)) + np.tanh(3 * (xt - 0.5)))
    np.testing.assert_allclose(data["curves"]["shifted_tanh"], shifted, atol=1e-15)


def test_limits_are_the_hard_quantizers():
    data = projections.update(1.0, n=400)  # an even n keeps the grid off 0 and off +-0.5
    xt = data["x_tilde"]
    np.testing.assert_array_equal(data["limits"]["tanh"], np.sign(xt))
    np.testing.assert_array_equal(data["limits"]["sigmoid"], (xt > 0).astype(float))
    staircase = np.where(xt > 0.5, 1.0, np.where(xt < -0.5, -1.0, 0.0))
    np.testing.assert_array_equal(data["limits"]["shifted_tanh"], staircase)


@given(st.floats(0.5, 200.0))
def test_tanh_soft_width_matches_its_closed_form(beta):
    tol = 0.05
    data = projections.update(beta, ("tanh",), span=4.0, n=4001, tol=tol)
    dx = data["x_tilde"][1] - data["x_tilde"][0]
    # |tanh(beta x)| < 1 - 2 tol  <=>  |x| < atanh(1 - 2 tol) / beta (level spacing 2)
    exact = 2 * np.arctanh(1 - 2 * tol) / beta
    assert abs(data["soft_width"]["tanh"] - exact) <= 2 * dx


def test_soft_width_shrinks_as_beta_grows_for_every_map():
    betas = [2, 4, 8, 16, 32, 64]  # below 2 the sigmoid is soft on the whole grid
    widths = [projections.update(b)["soft_width"] for b in betas]
    for name in projections.MAP_NAMES:
        series = [w[name] for w in widths]
        assert all(a > b for a, b in zip(series, series[1:], strict=False)), (name, series)


def test_redraw_moves_the_artists_to_the_new_data():
    fig, axes = plt.subplots(1, 3)
    artists = projections.draw(axes, projections.update(1.0))
    new = projections.update(8.0)
    projections.redraw(artists, new)
    for name in projections.MAP_NAMES:
        np.testing.assert_allclose(artists[name]["line"].get_ydata(), new["curves"][name])
        assert f"{new['soft_width'][name]:.2f}" in artists[name]["ax"].get_title()


def test_explorer_slider_redraws_the_figure():
    pytest.importorskip("ipywidgets")
    box = projections.projection_explorer(beta=1.0, canvas="png")
    line = box.figure.axes[0].lines[-1]
    box.slider.value = 16.0
    data = projections.update(16.0)
    np.testing.assert_allclose(line.get_ydata(), data["curves"]["tanh"])
    assert f"tanh {data['soft_width']['tanh']:.2f}" in box.live.readout.value


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"beta": 0.0}, "beta must be"),
        ({"beta": np.inf}, "beta must be"),
        ({"beta": 1.0, "names": ("tanh", "relu")}, "names must be a non-empty subset"),
        ({"beta": 1.0, "names": ()}, "names must be"),
        ({"beta": 1.0, "span": -1.0}, "span must be"),
        ({"beta": 1.0, "n": 2}, "n must be"),
        ({"beta": 1.0, "tol": 0.5}, "tol must lie"),
    ],
)
def test_update_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        projections.update(**kwargs)


def test_draw_needs_one_axes_per_map():
    fig, axes = plt.subplots(1, 2)
    with pytest.raises(ValueError, match="one axes per map"):
        projections.draw(axes, projections.update(1.0))

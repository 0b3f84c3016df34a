"""The explorers' live machinery (``widgets/_live.py``): one figure, moved in place, not leaked,
sliders that keep their start values, coalesced events and the projector scale."""

import asyncio
import gc
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

ipywidgets = pytest.importorskip("ipywidgets")

from mdq_support.explorers import controls, option_values  # noqa: E402
from mdq_teach import widgets  # noqa: E402
from mdq_teach.widgets import _live, annealing, projections, quantizer  # noqa: E402
from mdq_teach.widgets import toy_explorer as toy_widget  # noqa: E402


@pytest.fixture(autouse=True)
def _reset():
    yield
    _live.set_scale(1.0)
    plt.close("all")
    ipywidgets.Widget.close_all()  # so the projector test rescales only its own explorers
    gc.collect()


EXPLORERS = {
    "ch3": lambda **kw: projections.projection_explorer(beta=1.0, **kw),
    "ch5": lambda **kw: annealing.explorer(cap=16.0, eta=0.05, **kw),
    "ch7": lambda **kw: toy_widget.explorer(beta=4.0, x_tilde0=1.2, eta=0.1, **kw),
    "ch9": lambda **kw: quantizer.quantizer_explorer("tanh", beta=0.8, level_set="ternary", **kw),
}


def _other(widget):
    options = option_values(widget)
    i = options.index(widget.value)
    return options[(i + min(3, len(options) - 1)) % len(options)]


@pytest.mark.parametrize("chapter", sorted(EXPLORERS))
def test_every_control_changes_the_picture_and_leaks_no_pyplot_figure(chapter):
    box = EXPLORERS[chapter](canvas="png")
    assert plt.get_fignums() == []  # nothing a later cell or the inline backend could draw again
    live = box.live
    assert live.renders == 0  # creation draws once, without an extra event
    for name, widget in controls(box):
        before = live.widget.value
        widget.value = _other(widget)
        assert live.renders >= 1, name
        assert live.widget.value != before, f"{chapter}: moving {name} left the PNG unchanged"
    assert live.errors.outputs == ()
    assert plt.get_fignums() == []


@pytest.mark.parametrize("chapter", sorted(EXPLORERS))
def test_layout_is_frozen_after_creation(chapter):
    box = EXPLORERS[chapter](canvas="png")
    positions = [ax.get_position().bounds for ax in box.figure.axes]
    assert box.figure.get_layout_engine() is None or not box.figure.get_constrained_layout()
    for _, widget in controls(box):
        widget.value = _other(widget)
    assert [ax.get_position().bounds for ax in box.figure.axes] == positions


def test_start_values_are_kept_exactly_and_readouts_show_them():
    box = annealing.explorer(cap=16.0, eta=0.05, canvas="png")
    assert box.sliders["cap"].value == 16.0 and box.sliders["eta"].value == 0.05
    assert box.sliders["cap"].label == "16" and box.sliders["eta"].label == "0.05"
    assert "B = 16, η = 0.05 " in box.live.readout.value
    box = toy_widget.explorer(beta=4.0, x_tilde0=1.2, eta=0.1, steps=100, canvas="png")
    assert {k: s.value for k, s in box.sliders.items()} == dict(
        beta=4.0, x_tilde0=1.2, eta=0.1, steps=100
    )
    q = quantizer.quantizer_explorer("tanh", beta=0.8, canvas="png")
    assert q.slider.value == 0.8 and "beta = 0.8:" in q.live.readout.value


def test_slider_moves_artists_to_the_data_of_update():
    box = annealing.explorer(canvas="png")
    box.sliders["cap"].value = 100.0
    box.sliders["eta"].value = 0.2
    expected = annealing.update(cap=100.0, eta=0.2)
    gap, bound, _ = box.figure.axes[0].lines
    np.testing.assert_array_equal(gap.get_ydata(), expected["gap"])
    np.testing.assert_array_equal(bound.get_ydata(), expected["bound_eta"])
    assert "B = 100, η = 0.2 " in box.live.readout.value


def test_linear_family_slider_offers_only_betas_it_accepts():
    box = quantizer.quantizer_explorer("tanh", beta=0.1, canvas="png")
    box.family.value = "linear"
    values = [v for _, v in box.slider.options]
    assert min(values) == 1.0 and box.slider.value == 1.0  # nearest accepted value, shown
    assert "linear, beta = 1:" in box.live.readout.value
    box.family.value = "tanh"
    assert min(v for _, v in box.slider.options) == quantizer.RANGES["beta"][0]
    with pytest.raises(ValueError, match="beta must be a number >= 1"):
        quantizer.quantizer_explorer("linear", beta=0.5, canvas="png")


def test_new_level_set_redraws_the_frame():
    box = quantizer.quantizer_explorer("hard", beta=2.0, level_set="binary", canvas="png")
    box.levels.value = "uneven"
    data = quantizer.update("hard", 2.0, quantizer.LEVEL_SETS["uneven"])
    staircase = [line for line in box.figure.axes[0].lines if line.get_linestyle() == "--"]
    np.testing.assert_array_equal(staircase[0].get_ydata(), data["limit"])


def test_new_level_set_or_family_is_drawn_without_a_new_range():
    # A full draw per dropdown change cost 150-350 ms in JupyterLab: the explorer must blit.
    box = quantizer.quantizer_explorer("tanh", beta=2.0, level_set="binary", canvas="png")
    limits = [(ax.get_xlim(), ax.get_ylim()) for ax in box.figure.axes]
    box.levels.value = "uneven"
    assert [(ax.get_xlim(), ax.get_ylim()) for ax in box.figure.axes] == limits
    for ax in box.figure.axes:  # the grey level lines: one NaN-broken line per panel
        grid = [line for line in ax.lines if line.get_zorder() == 0]
        y = grid[0].get_ydata()
        assert sorted(set(y[np.isfinite(y)])) == [-1.0, -0.2, 0.5, 1.0]
    box.family.value = "hard"
    assert box.live.renders == 2


def test_steps_slider_keeps_the_iteration_axis():
    box = toy_widget.explorer(beta=4.0, x_tilde0=1.2, eta=0.1, steps=100, canvas="png")
    right = box.figure.axes[1]
    assert right.get_xlim() == (0.0, 300.0)  # the steps slider's largest value
    for steps in (10, 300, 150):
        box.sliders["steps"].value = steps
        assert right.get_xlim() == (0.0, 300.0)
        assert right.lines[0].get_xdata()[-1] == steps


def test_fit_limits_without_shrink_only_widens():
    fig, ax = plt.subplots()
    ax.set_ylim(0, 10)
    assert not _live.fit_limits(ax, "y", 5.0, 5.5, shrink=False)
    assert _live.fit_limits(ax, "y", -2.0, 5.0, shrink=False)
    lo, hi = ax.get_ylim()
    assert lo < -2.0 and hi >= 10.0


def test_png_rgba_decodes_to_the_same_pixels():
    from io import BytesIO

    from PIL import Image

    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, size=(7, 13, 4), dtype=np.uint8)
    pixels[2:5] = 0  # a diff image is mostly transparent zeros
    decoded = np.asarray(Image.open(BytesIO(_live.png_rgba(pixels))).convert("RGBA"))
    np.testing.assert_array_equal(decoded, pixels)
    with pytest.raises(ValueError, match="pixels must be"):
        _live.png_rgba(np.zeros((4, 4, 3), np.uint8))


def test_memo_returns_kept_results_and_forgets_the_oldest():
    calls = []

    def f(a, b=0):
        calls.append((a, b))
        return [a + b]

    memo = _live.Memo(f, size=2)
    assert memo(a=1, b=2) == [3] and memo(b=2, a=1) == [3] and calls == [(1, 2)]
    memo(a=2)
    memo(a=3)  # drops (1, 2), the least recently used
    memo(a=1, b=2)
    assert calls == [(1, 2), (2, 0), (3, 0), (1, 2)]
    with pytest.raises(ValueError, match="size must be"):
        _live.Memo(f, size=0)


def test_events_in_a_running_loop_are_coalesced_to_the_newest_value():
    box = projections.projection_explorer(beta=1.0, canvas="png")
    values = [v for _, v in box.slider.options][:12]

    async def drag():
        for v in values:  # as fast as the browser would send them
            box.slider.value = v
        await asyncio.sleep(0.2)

    asyncio.run(drag())
    assert box.live.renders == 1
    line = box.figure.axes[0].lines[-1]
    np.testing.assert_allclose(line.get_ydata(), projections.update(values[-1])["curves"]["tanh"])


def test_projector_scales_existing_and_new_explorers():
    box = projections.projection_explorer(canvas="png")
    w0, h0 = box.figure.get_size_inches()
    title0 = box.figure.axes[0].title.get_fontsize()
    assert widgets.projector(True) == 1.0
    w1, h1 = box.figure.get_size_inches()
    assert (w1 / w0, h1 / h0) == pytest.approx((1.5, 1.5))
    assert box.figure.axes[0].title.get_fontsize() == pytest.approx(1.5 * title0)
    new = annealing.explorer(canvas="png")
    assert new.figure.get_size_inches()[0] == pytest.approx(1.5 * _live.COLUMN_PX / _live.DPI)
    widgets.projector(False)
    assert box.figure.get_size_inches() == pytest.approx((w0, h0))
    with pytest.raises(ValueError, match=r"scale must be a number in \[0.5, 3.0\]"):
        widgets.set_scale(10)
    with pytest.raises(ValueError, match="on must be True or False"):
        widgets.projector("yes")


def test_figures_use_the_notebook_column():
    for make in EXPLORERS.values():
        box = make(canvas="png")
        assert box.figure.get_size_inches()[0] * box.figure.dpi == pytest.approx(_live.COLUMN_PX)


def test_grids_hold_their_values_as_short_decimals():
    assert _live.linear_grid(-1.5, 1.5, 0.05)[54] == 1.2  # not 1.2000000000000002
    grid = _live.log_grid(1e-4, 10.0)
    assert {1e-4, 0.05, 0.1, 1.6, 10.0} <= set(grid) and grid == sorted(grid)
    assert 0.07 in _live.log_grid(0.01, 1.0, include=[0.07])
    with pytest.raises(ValueError, match="lo < hi"):
        _live.log_grid(1.0, 1.0)
    with pytest.raises(ValueError, match="must be one of the slider's values"):
        _live.slider("beta", 0.3, [0.1, 0.2])


def test_fit_limits_changes_the_range_only_when_needed():
    fig, ax = plt.subplots()
    ax.set_ylim(0, 10)
    assert not _live.fit_limits(ax, "y", 2.0, 9.0)
    assert _live.fit_limits(ax, "y", 2.0, 12.0)  # data leave the range
    lo, hi = ax.get_ylim()
    assert lo < 2.0 and hi > 12.0
    assert _live.fit_limits(ax, "y", 5.0, 5.5)  # data fill under a quarter of it
    ax.set_yscale("log")
    ax.set_ylim(1e-3, 1.0)
    assert _live.fit_limits(ax, "y", 1e-6, 1e-2, log=True)
    assert ax.get_ylim()[0] < 1e-6


def test_ipympl_canvas_builds_without_a_browser():
    pytest.importorskip("ipympl")
    box = projections.projection_explorer(beta=1.0, canvas="ipympl")
    from ipympl.backend_nbagg import Canvas

    assert isinstance(box.live.widget, Canvas) and plt.get_fignums() == []
    box.slider.value = 8.0
    assert box.live.renders == 1
    line = box.figure.axes[0].lines[-1]
    np.testing.assert_allclose(line.get_ydata(), projections.update(8.0)["curves"]["tanh"])
    with pytest.raises(ValueError, match="canvas must be"):
        projections.projection_explorer(canvas="svg")


def _decode(png: bytes) -> np.ndarray:
    from PIL import Image

    with Image.open(io.BytesIO(png)) as image:
        return np.asarray(image.convert("RGBA"))


def _inflate(content, buffer) -> np.ndarray:
    """What the page's DecompressionStream("deflate") and ImageData make of a patch."""
    import zlib

    pixels = np.frombuffer(zlib.decompress(buffer), np.uint8)
    return pixels.reshape(content["h"], content["w"], 4)


@pytest.mark.parametrize("chapter", sorted(EXPLORERS))
def test_web_canvas_patches_rebuild_the_figure_pixel_for_pixel(chapter):
    # What the browser does with the messages (put each patch's pixels at its x, y over the
    # frame) must give exactly the figure's pixels, and a patch must be smaller than the figure.
    pytest.importorskip("anywidget")
    box = EXPLORERS[chapter](canvas="web")
    live = box.live
    sent = []  # in order: patches, and new whole frames (after a new axis range)
    live.widget.send = lambda content, buffers=None: sent.append((content, buffers))
    live.widget.observe(lambda change: sent.append(({"type": "frame"}, [change["new"]])), "frame")
    screen = _decode(live.widget.frame).copy()
    assert (live.widget.width, live.widget.height) == screen.shape[1::-1]
    for _, widget in controls(box):
        widget.value = _other(widget)
    assert any(content["type"] == "patch" for content, _ in sent), "no patch sent"
    for content, buffers in sent:
        if content["type"] == "frame":
            screen = _decode(buffers[0]).copy()
            continue
        assert content["type"] == "patch"
        patch = _inflate(content, buffers[0])
        assert patch.shape[0] * patch.shape[1] < screen.shape[0] * screen.shape[1]
        y, x = content["y"], content["x"]
        screen[y : y + patch.shape[0], x : x + patch.shape[1]] = patch
    np.testing.assert_array_equal(screen, np.asarray(live.canvas.buffer_rgba()))
    sent.clear()
    live._on_web_message(live.widget, {"type": "refresh"}, [])  # a view opened later
    (content, buffers), = sent
    assert (content["x"], content["y"]) == (0, 0)
    full = _inflate(content, buffers[0])
    np.testing.assert_array_equal(full, np.asarray(live.canvas.buffer_rgba()))


def test_changed_rect_is_the_smallest_rectangle_around_every_change():
    old = np.zeros((6, 8), np.uint32)
    assert _live.changed_rect(old, old.copy()) is None
    new = old.copy()
    new[1, 6] = 5
    new[4, 2] = 7
    assert _live.changed_rect(old, new) == (1, 5, 2, 7)


def test_nearby_states_step_each_control_once():
    import ipywidgets as w

    slider = _live.slider("a", 2.0, [1.0, 2.0, 3.0])
    drop = w.Dropdown(options=("x", "y", "z"), value="x")
    states = _live.nearby_states({"a": slider, "d": drop}, {"a": 2.0, "d": "x", "k": 0},
                                 cyclic=("d",))
    assert states == [
        {"a": 3.0, "d": "x", "k": 0}, {"a": 1.0, "d": "x", "k": 0},
        {"a": 2.0, "d": "y", "k": 0}, {"a": 2.0, "d": "z", "k": 0},
    ]
    edge = _live.nearby_states({"a": slider}, {"a": 3.0})
    assert edge == [{"a": 2.0}]


def test_idle_kernel_computes_the_neighbouring_states_before_they_are_asked_for(monkeypatch):
    calls = []
    original = annealing.update

    def counting(**kwargs):
        calls.append(kwargs)
        return original(**kwargs)

    monkeypatch.setattr(annealing, "update", counting)  # the explorer memoises this one
    box = annealing.explorer(cap=16.0, eta=0.05, canvas="png")

    async def step_and_idle():
        box.sliders["cap"].value = 20.0
        await asyncio.sleep(1.0)  # idle: the kernel computes the neighbours of (20, 0.05)

    asyncio.run(step_and_idle())
    for neighbour in ({"cap": 22.4, "eta": 0.05}, {"cap": 18.0, "eta": 0.05},
                      {"cap": 20.0, "eta": 0.056}, {"cap": 20.0, "eta": 0.045}):
        assert neighbour in calls
    n = len(calls)
    box.sliders["cap"].value = 22.4  # a neighbour: found ready, nothing computed
    assert len(calls) == n and box.live.renders == 2
    assert box.live.errors.outputs == ()


def test_a_sweep_across_a_slider_changes_the_axis_range_a_few_times_only():
    # Each new range is a full draw (100-300 ms on a busy 2-core machine): a drag of chapter 7's
    # beta from end to end, which keeps pushing the objectives up, may widen the axis only a few
    # times; widening by 5% at a time took 7 full draws.
    box = toy_widget.explorer(beta=4.0, x_tilde0=1.2, eta=0.1, steps=100, canvas="png")
    full = []
    original = box.live._full_draw
    box.live._full_draw = lambda: (full.append(1), original())
    values = [v for _, v in box.sliders["beta"].options]
    for v in values + values[::-1]:
        box.sliders["beta"].value = v
    assert box.live.renders == 2 * len(values) - 1
    assert len(full) <= 3
    left = box.figure.axes[0]
    top = max(np.nanmax(np.asarray(line.get_ydata(), float)) for line in left.lines)
    assert left.get_ylim()[1] >= top  # every curve still fits

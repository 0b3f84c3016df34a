"""What every explorer shares: a figure built once, a canvas that sends only what changed, event
coalescing, sliders whose grid holds their starting value, and the projector scale.

A slider event must reach new pixels in well under 100 ms on a slow machine. A full matplotlib
draw of a three-panel figure costs about that much alone (and the constrained layout as much
again), so an explorer

- lays its figure out once (constrained layout at creation, then frozen: ``freeze_layout``);
- marks the artists that move as *animated* and, per event, restores the saved background and draws
  only them (blitting); a full draw happens only when an axis range must change, and it refreshes
  the background through the ``draw_event``;
- shows the figure on the web canvas (a kernel running and ``anywidget`` installed): the whole
  figure once, then per event only the smallest rectangle of changed pixels, as zlib-compressed
  RGBA that the page inflates and puts in place (``web_canvas.js`` says why not PNG). (ipympl,
  the fallback, spends 16-50 ms of the page's main thread per image re-encoding its whole canvas;
  in the book build, tests, or a JupyterLab without either, the figure is PNG bytes in an
  ``ipywidgets.Image``.) Either way the figure is not pyplot's, so no later cell and no inline
  backend draws it a second time;
- has the browser forward its controls' new values to the kernel at once (``watch``), past
  ipywidgets' own channel, which sends a control's next value only once the kernel has reported
  idle for the previous one: on a busy page that round trip held a drag to 7-11 figure updates
  a second;
- coalesces events: a drag sends a value per pixel; the handler only records that the state
  changed, and one render is scheduled on the kernel's event loop. It reads the newest state and
  starts as soon as the previous render has finished (no fixed interval: a render costs more than a
  frame already), so a drag shows as many frames as the kernel can draw, with no backlog;
- computes, while the kernel is idle, the states one step of a control away (``prefetch``,
  memoised), so the next arrow key or dropdown choice finds its mathematics done;
- encodes the changed pixels as a PNG without row filters at zlib level 1 (``png_rgba``): a diff
  image is mostly transparent zeros, which zlib squeezes in a few ms, where PIL's adaptive filters
  cost two to three times that on a busy 2-core machine.
"""

from __future__ import annotations

import asyncio
import collections
import math
import struct
import time
import traceback
import weakref
import zlib
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

# JupyterLab's notebook column is 848 px wide on a 1280 px screen with the file browser open.
COLUMN_PX = 820
DPI = 100
BASE_FONT = 11.0
SCALE_RANGE = (0.5, 3.0)
PROJECTOR_SCALE = 1.5
# Idle time (s) after the last event before the kernel computes neighbouring states.
IDLE_S = 0.04

CANVASES = ("auto", "web", "ipympl", "png")

_scale = [1.0]
_explorers: weakref.WeakSet = weakref.WeakSet()


def get_scale() -> float:
    """The current explorer scale (1 = a laptop screen)."""
    return _scale[0]


def set_scale(scale: float) -> float:
    """Scale fonts and figure sizes of every explorer, the ones on screen and the ones to come.

    Returns the previous scale. ``scale`` must lie in ``SCALE_RANGE``.
    """
    s = float(scale)
    lo, hi = SCALE_RANGE
    if not (math.isfinite(s) and lo <= s <= hi):
        raise ValueError(f"scale must be a number in [{lo}, {hi}], got {scale!r}")
    old, _scale[0] = _scale[0], s
    for live in list(_explorers):
        live.rescale(s)
    return old


def projector(on: bool = True) -> float:
    """One call for a classroom: ``projector()`` enlarges every explorer by ``PROJECTOR_SCALE``,
    ``projector(False)`` goes back to the laptop size. Returns the previous scale."""
    if not isinstance(on, bool):
        raise ValueError(f"on must be True or False, got {on!r}")
    return set_scale(PROJECTOR_SCALE if on else 1.0)


# ------------------------------------------------------------------------------ sliders

# Renard's R20 series: twenty roughly geometric steps per decade, all short decimals (1.6, 2.5,
# 0.8), fine enough that a drag across a slider passes through dozens of values.
_R20 = (1.0, 1.12, 1.25, 1.4, 1.6, 1.8, 2.0, 2.24, 2.5, 2.8, 3.15, 3.55, 4.0, 4.5, 5.0, 5.6, 6.3,
        7.1, 8.0, 9.0)


def log_grid(lo: float, hi: float, include=()) -> list[float]:
    """R20 values in [lo, hi], with ``lo``, ``hi`` and the values of ``include`` added."""
    if not (0 < lo < hi and math.isfinite(hi)):
        raise ValueError(f"a log grid needs 0 < lo < hi, got lo={lo}, hi={hi}")
    values = {float(lo), float(hi), *map(float, include)}
    for k in range(math.floor(math.log10(lo)) - 1, math.ceil(math.log10(hi)) + 1):
        values.update(float(f"{m * 10.0**k:.6g}") for m in _R20)
    return sorted(v for v in values if lo <= v <= hi)


def linear_grid(lo: float, hi: float, step: float, include=()) -> list[float]:
    """lo, lo + step, ..., hi as short decimals (no 1.2000000000000002), with ``include`` added."""
    n = int(round((hi - lo) / step))
    values = {round(lo + k * step, 10) for k in range(n + 1)} | set(map(float, include))
    return sorted(v for v in values if lo <= v <= hi)


def slider(description: str, value: float, grid, fmt: str = "{:g}"):
    """A ``SelectionSlider`` over ``grid``: the browser moves an integer index, so the starting
    value is shown and kept exactly (no snapping, no extra event at creation), and the readout is
    the value as set. ``value`` must be on the grid."""
    import ipywidgets

    grid = list(grid)
    if value not in grid:
        raise ValueError(f"{description} must be one of the slider's values {grid}, got {value!r}")
    return ipywidgets.SelectionSlider(
        options=[(fmt.format(v), v) for v in grid],
        value=value,
        description=description,
        continuous_update=True,
        layout=ipywidgets.Layout(width="auto", min_width="300px", flex="1 1 auto"),
        style={"description_width": "initial"},
    )


# ------------------------------------------------------------------------------ figures


def new_figure(height: float, **subplots) -> tuple[Figure, np.ndarray]:
    """A Figure (not pyplot's) as wide as the notebook column at the current scale, with axes."""
    s = get_scale()
    fig = Figure(figsize=(COLUMN_PX / DPI * s, height * s), dpi=DPI, layout="constrained")
    with _fonts(s):
        axes = fig.subplots(**subplots, squeeze=False)
    return fig, axes.ravel()


def _fonts(scale: float):
    import matplotlib as mpl

    return mpl.rc_context({"font.size": BASE_FONT * scale, "legend.fontsize": "small"})


def freeze_layout(fig: Figure) -> None:
    """Run the constrained layout once and keep its result: no layout work per event."""
    fig.set_layout_engine("constrained")
    fig.draw_without_rendering()
    fig.set_layout_engine("none")


def in_kernel() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


def _ipympl_available() -> bool:
    try:
        import ipympl.backend_nbagg  # noqa: F401
    except ImportError:
        return False
    return True


class LiveFigure:
    """A figure with animated artists, a widget showing it, and a coalesced ``request`` to redraw.

    ``render(state)`` (given by the explorer) moves the artists to the newest state and returns
    True when an axis range changed (then the whole figure is drawn, else only the animated
    artists). ``canvas``: "auto" (in a kernel the web canvas, else ipympl, else PNG; PNG
    outside a kernel), "web", "ipympl" or "png". ``prefetch``: see ``_warm``."""

    def __init__(self, fig: Figure, animated, render, canvas: str = "auto", prefetch=None):
        import ipywidgets

        if canvas not in CANVASES:
            raise ValueError(f"canvas must be one of {CANVASES}, got {canvas!r}")
        if canvas == "auto":
            canvas = "png"
            if in_kernel():
                canvas = "web" if _web_available() else "ipympl" if _ipympl_available() else "png"
        self.fig, self.animated, self._render = fig, list(animated), render
        self.mode = canvas
        self.renders = 0  # how many renders ran (tests and the benchmark read it)
        self.render_ms: list[float] = []  # kernel time of each render, for the benchmark
        # Per render, wall-clock ms (comparable with the browser's on one machine): when the
        # first event it serves arrived, and when the render started and ended. The benchmark
        # splits "slider to pixels" into its phases with them.
        self.timeline: collections.deque = collections.deque(maxlen=4096)
        self._arrived = None
        self._background = None
        self._pending = None
        self._held_readout = None
        # prefetch() -> zero-argument callables that compute (and memoise) the states one step
        # away; they run while the kernel is idle, so the next arrow key finds its data ready.
        self._prefetch, self._warming, self._last_event = prefetch, None, 0.0
        self.errors = ipywidgets.Output()
        self._watched: dict = {}  # model id -> control whose values the page forwards (watch)
        for artist in self.animated:
            artist.set_animated(True)
        freeze_layout(fig)
        self.readout = ipywidgets.HTML()  # the numbers that change: text in the page, not pixels
        if canvas == "ipympl":
            from ipympl.backend_nbagg import FigureManager

            self.canvas = _fast_canvas_class()(fig)
            FigureManager(self.canvas, id(self))  # not registered with pyplot
            self.canvas.header_visible = False
            self.canvas.footer_visible = False
            self.canvas.toolbar_visible = False
            self.canvas.resizable = False
            self.canvas.capture_scroll = False
            self.widget = self.canvas
        else:
            from matplotlib.backends.backend_agg import FigureCanvasAgg

            self.canvas = FigureCanvasAgg(fig)
            if canvas == "web":
                self.widget = _web_canvas_class()()
                self.widget.on_msg(self._on_web_message)
                self._shown = None  # the pixels the browser holds (uint32 per pixel)
            else:
                self.widget = ipywidgets.Image(format="png")
        self.widget.layout = ipywidgets.Layout(max_width="100%")
        self.canvas.mpl_connect("draw_event", self._on_draw)
        _explorers.add(self)
        if canvas != "ipympl":
            self._full_draw()
        # ipympl draws when the browser's view asks for it: a canvas drawn before its view exists
        # and shown inside a box stays blank (ipympl 0.10).

    # -- drawing
    def _on_draw(self, event) -> None:
        # A full draw skips the animated artists: keep the background, then draw them on top.
        self._background = self.canvas.copy_from_bbox(self.fig.bbox)
        self._draw_animated()

    def _draw_animated(self) -> None:
        for artist in self.animated:
            artist.axes.draw_artist(artist) if artist.axes else self.fig.draw_artist(artist)

    def _full_draw(self) -> None:
        self.canvas.draw()  # ipympl: draws and sends the changed pixels; Agg: draws only
        if self.mode == "png":
            self._send_png()
        elif self.mode == "web":
            self._send_patch()  # a whole new frame only when the size changed

    def _blit(self) -> None:
        if self._background is None:
            return self._full_draw()
        self.canvas.restore_region(self._background)
        self._draw_animated()
        if self.mode == "ipympl":
            self.canvas.blit(self.fig.bbox)
        elif self.mode == "web":
            self._send_patch()
        else:
            self._send_png()

    def _send_png(self) -> None:
        self.widget.value = png_rgba(np.asarray(self.canvas.buffer_rgba()))

    # -- the web canvas: a whole frame in the widget's state, then only changed rectangles
    def _pixels(self) -> np.ndarray:
        return np.asarray(self.canvas.buffer_rgba()).view(np.uint32)[:, :, 0]

    def _send_frame(self) -> None:
        """The whole figure as the widget's ``frame`` (a view opened later starts from it)."""
        pixels = self._pixels()
        self._shown = pixels.copy()
        h, w = pixels.shape
        with self.widget.hold_sync():
            self.widget.width, self.widget.height = w, h
            self.widget.frame = png_rgba(pixels.view(np.uint8).reshape(h, w, 4))

    def _send_patch(self, everything: bool = False) -> None:
        """The smallest rectangle holding every pixel that changed since the last one sent, as
        a custom message ``{"type": "patch", "x", "y", "w", "h"}`` whose buffer is its RGBA
        pixels, row by row, compressed with zlib (level 1: a few ms)."""
        pixels = self._pixels()
        if self._shown is None or self._shown.shape != pixels.shape:
            return self._send_frame()
        rect = (0, pixels.shape[0], 0, pixels.shape[1]) if everything else changed_rect(
            self._shown, pixels
        )
        if rect is None:
            return
        r0, r1, c0, c1 = rect
        crop = np.ascontiguousarray(pixels[r0:r1, c0:c1])
        self._shown[r0:r1, c0:c1] = crop
        self.widget.send(
            {"type": "patch", "x": int(c0), "y": int(r0), "w": int(c1 - c0), "h": int(r1 - r0)},
            buffers=[zlib.compress(crop.tobytes(), 1)],
        )

    def _on_web_message(self, widget, content, buffers) -> None:
        if not isinstance(content, dict):
            return
        if content.get("type") == "refresh":
            self._send_patch(everything=True)  # a new view: the pixels as they are now
        elif content.get("type") == "controls":
            control = self._watched.get(content.get("id"))
            if control is not None and isinstance(content.get("state"), dict):
                apply_browser_state(control, content["state"])

    def watch(self, *controls) -> None:
        """Let the page forward every new value of ``controls`` (ipywidgets with an ``index``
        or a ``value``) to the kernel at once, as a message of the web canvas (other canvases:
        nothing changes). Such a message sets the control as ipywidgets would on its own message,
        which arrives later with the same or a newer value (both travel in order on the kernel's
        shell channel), so a state is never shown twice nor out of order."""
        self._watched.update((c.model_id, c) for c in controls)
        if self.mode == "web":
            self.widget.controls = list(self._watched.values())

    # -- events
    def request(self) -> None:
        """Ask for a render of the newest state; in a running kernel the requests that arrive
        before the render starts become one render, elsewhere it renders at once."""
        if self._arrived is None:
            self._arrived = time.time()
        self._last_event, self._warming = time.monotonic(), None
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return self._run()
        if self._pending is not None:
            return  # the scheduled render will read the newest state
        # The loop runs it once the messages already received are handled: the render starts
        # right after the previous one (renders block the loop) and reads the newest value.
        self._pending = loop.call_soon(self._run)

    def _run(self) -> None:
        self._pending = None
        arrived, self._arrived = self._arrived, None
        start, wall = time.monotonic(), time.time()
        try:
            self._held_readout = []  # the pixels go out first, the readout's text after them
            try:
                changed_range = self._render()
                self._full_draw() if changed_range else self._blit()
            finally:
                held, self._held_readout = self._held_readout, None
                if held:
                    self._set_readout(held[-1])
            self.renders += 1
            ms = 1e3 * (time.monotonic() - start)
            self.render_ms.append(ms)
            self.timeline.append((1e3 * (arrived or wall), 1e3 * wall, 1e3 * wall + ms))
            self._start_warming()
        except Exception:  # shown under the figure: an event handler has no cell to report to
            with self.errors:
                traceback.print_exc()

    def _start_warming(self) -> None:
        if self._prefetch is None:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return  # no kernel: nothing is idle time
        self._warming = iter(self._prefetch())
        loop.call_later(IDLE_S, self._warm, loop, self._warming)

    def _warm(self, loop, thunks) -> None:
        """One neighbouring state per call, only while no event came for ``IDLE_S``: a thunk
        blocks the kernel for one update (5-40 ms), so it must not start during a drag."""
        if thunks is not self._warming or self._pending is not None:
            return  # a newer state took over; it warms its own neighbours
        quiet = time.monotonic() - self._last_event
        if quiet < IDLE_S:
            loop.call_later(IDLE_S - quiet, self._warm, loop, thunks)
            return
        thunk = next(thunks, None)
        if thunk is None:
            self._warming = None
            return
        try:
            thunk()
        except Exception:  # noqa: BLE001 (the render of that state will show the error)
            self._warming = None
            return
        loop.call_later(0.001, self._warm, loop, thunks)  # let waiting messages in first

    # -- projector
    def show_readout(self, text: str) -> None:
        if self._held_readout is not None:
            self._held_readout.append(text)  # during a render: sent once the pixels are
        else:
            self._set_readout(text)

    def _set_readout(self, text: str) -> None:
        size = round(100 * get_scale())
        self.readout.value = f'<span style="font-size:{size}%">{text}</span>'

    def rescale(self, scale: float) -> None:
        from matplotlib.text import Text

        w, h = self.fig.get_size_inches()
        old = w / (COLUMN_PX / DPI)
        ratio = scale / old
        if abs(ratio - 1) < 1e-9:
            return
        for text in self.fig.findobj(Text):
            text.set_fontsize(text.get_fontsize() * ratio)
        for ax in self.fig.axes:
            ax.tick_params(which="both", labelsize=BASE_FONT * scale * 0.9)
        self.fig.set_size_inches(w * ratio, h * ratio)
        freeze_layout(self.fig)
        if self.mode == "ipympl":
            self.canvas.manager.resize(*self.fig.bbox.size)
        self._full_draw()
        if self.readout.value:
            self.show_readout(self.readout.value.split(">", 1)[1].rsplit("<", 1)[0])


def changed_rect(old: np.ndarray, new: np.ndarray):
    """(row0, row1, col0, col1), half-open, of the smallest rectangle holding every entry where
    the 2-d arrays ``old`` and ``new`` differ; None when they are equal."""
    diff = old != new
    rows = np.flatnonzero(diff.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(diff[rows[0] : rows[-1] + 1].any(axis=0))
    return int(rows[0]), int(rows[-1]) + 1, int(cols[0]), int(cols[-1]) + 1


_FORWARDED = ("index", "value")


def apply_browser_state(control, state: dict) -> bool:
    """Set ``control``'s ``index`` or ``value`` from ``state`` (JSON, as the page holds it) the
    way ipywidgets applies a message from the page: the observers run, and nothing is sent back,
    neither an update nor an echo (an echo of a value the handle has already left would pull it
    back during a drag). Returns False (and changes nothing) for other keys or an ipywidgets
    without the property lock this relies on."""
    keys = {k: v for k, v in state.items() if k in _FORWARDED and k in control.keys}
    lock = getattr(control, "_lock_property", None)  # ipywidgets' own guard against echoes
    if not keys or len(keys) != len(state) or lock is None:
        return False
    with lock(**keys), control.hold_trait_notifications():
        for name, value in keys.items():
            from_json = control.trait_metadata(name, "from_json", control._trait_from_json)
            control.set_trait(name, from_json(value, control))
    return True


# The browser side of the web canvas (anywidget's ES module), shipped as package data: its
# header says why patches are raw RGBA, not PNG.
WEB_CANVAS_JS = Path(__file__).with_name("web_canvas.js")

_web_canvas = []


def _web_available() -> bool:
    try:
        import anywidget  # noqa: F401
    except ImportError:
        return False
    return True


def _web_canvas_class():
    """The web canvas widget (anywidget: its JavaScript travels with it, no extension to build)."""
    if not _web_canvas:
        import anywidget
        import ipywidgets
        import traitlets

        class WebCanvas(anywidget.AnyWidget):
            _esm = WEB_CANVAS_JS.read_text(encoding="utf-8")
            width = traitlets.Int(0).tag(sync=True)
            height = traitlets.Int(0).tag(sync=True)
            frame = traitlets.Bytes(b"").tag(sync=True)
            controls = traitlets.List(traitlets.Instance(ipywidgets.Widget)).tag(
                sync=True, **ipywidgets.widget_serialization
            )

        _web_canvas.append(WebCanvas)
    return _web_canvas[0]


def _fast_canvas_class():
    """ipympl's canvas with a faster PNG: the diff images it sends are shown once, not kept, so
    ``png_rgba`` (no filters, zlib level 1: a few ms) beats PIL at level 6 (about 40 ms on a busy
    2-core machine)."""
    from ipympl.backend_nbagg import Canvas

    class FastCanvas(Canvas):
        def get_diff_image(self):
            # matplotlib's FigureCanvasWebAggCore.get_diff_image with compress_level=1
            if not self._png_is_old:
                return None
            buff = np.asarray(self.get_renderer().buffer_rgba()).view(np.uint32).squeeze(2)
            pixels = buff.view(np.uint8).reshape((*buff.shape, 4))
            if (
                self._force_full
                or buff.shape != self._last_buff.shape
                or (pixels[:, :, 3] != 255).any()
            ):
                self.set_image_mode("full")
                output = buff
            else:
                self.set_image_mode("diff")
                output = np.where(buff != self._last_buff, buff, 0)
            self._last_buff = buff.copy()
            self._force_full = False
            self._png_is_old = False
            return png_rgba(output.view(dtype=np.uint8).reshape((*output.shape, 4)))

    return FastCanvas


def _png_chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data))


def png_rgba(pixels: np.ndarray, level: int = 1) -> bytes:
    """PNG bytes of an (h, w, 4) uint8 RGBA array: filter type 0 on every row, zlib ``level``."""
    pixels = np.asarray(pixels)
    if pixels.ndim != 3 or pixels.shape[2] != 4 or pixels.dtype != np.uint8:
        raise ValueError(
            f"pixels must be an (h, w, 4) uint8 array, got shape {pixels.shape} of {pixels.dtype}"
        )
    h, w, _ = pixels.shape
    rows = np.zeros((h, 1 + 4 * w), np.uint8)  # each row: filter byte 0, then the pixels
    rows[:, 1:] = pixels.reshape(h, 4 * w)
    header = struct.pack(">IIBBBBB", w, h, 8, 6, 0, 0, 0)  # 8 bits, RGBA, no interlace
    return (
        b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", zlib.compress(rows.tobytes(), level)) + _png_chunk(b"IEND", b"")
    )


def nearby_states(controls: dict, state: dict, cyclic=()) -> list[dict]:
    """The states one step of one control away from ``state`` (control name -> value): the next
    and the previous value of each control's options, wrapping around for the names in
    ``cyclic`` (dropdowns). Controls whose name is not in ``state`` are skipped."""
    out = []
    for name, widget in controls.items():
        if name not in state:
            continue
        values = [o[1] if isinstance(o, tuple) else o for o in widget.options]
        i, n = values.index(state[name]), len(values)
        for j in (i + 1, i - 1):
            if name in cyclic:
                j %= n
            if 0 <= j < n and j != i:
                out.append({**state, name: values[j]})
    return out


class Memo:
    """``fn`` with its last ``size`` results kept by keyword arguments: moving a slider back over
    values already shown costs no recomputation (``fn`` must be pure)."""

    def __init__(self, fn, size: int = 256):
        if int(size) != size or size < 1:
            raise ValueError(f"size must be an integer >= 1, got {size!r}")
        self.fn, self.size, self._kept = fn, int(size), {}

    def __call__(self, **kwargs):
        key = tuple(sorted(kwargs.items()))
        if key in self._kept:
            self._kept[key] = self._kept.pop(key)  # most recent last
        else:
            self._kept[key] = self.fn(**kwargs)
            if len(self._kept) > self.size:
                self._kept.pop(next(iter(self._kept)))
        return self._kept[key]


def fit_limits(
    ax, axis: str, lo: float, hi: float, *, log: bool = False, pad: float = 0.05,
    shrink: bool = True,
):
    """Keep ``[lo, hi]`` visible on ``axis`` ("x" or "y") of ``ax`` without a new range per event.

    The range changes (and True is returned) only when the data leave it or, with ``shrink``,
    fill less than a quarter of it; the new range has headroom, so a drag changes it a few times,
    not every event. ``shrink=False`` only ever widens it (a new range costs a full draw).
    """
    if not (np.isfinite(lo) and np.isfinite(hi)):
        return False
    get, set_ = (ax.get_xlim, ax.set_xlim) if axis == "x" else (ax.get_ylim, ax.set_ylim)
    f, finv = (np.log10, lambda v: 10.0**v) if log else ((lambda v: v), (lambda v: v))
    if log and lo <= 0:
        return False
    a, b = f(lo), f(hi)
    span = max(b - a, 1e-12 if not log else 1e-3)
    cur_a, cur_b = (f(v) for v in get())
    inside = cur_a <= a and b <= cur_b
    if inside and (not shrink or span >= 0.25 * (cur_b - cur_a)):
        return False
    if not shrink:
        # Only the side the data left moves, with a quarter of the new span as headroom: a drag
        # that keeps pushing the data out (ch. 7's objectives grow with beta) widens the range a
        # few times, not at every step (each new range is a full draw, 100-300 ms).
        span = max(b, cur_b) - min(a, cur_a)
        lo = a - 0.25 * span if a < cur_a else cur_a
        hi = b + 0.25 * span if b > cur_b else cur_b
        set_(finv(lo), finv(hi))
        return True
    extra = (pad + 0.25) * span
    set_(finv(a - extra), finv(b + extra))
    return True

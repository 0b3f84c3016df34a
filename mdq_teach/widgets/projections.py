"""Chapter 3 explorer: a beta slider that sharpens each projection P_beta into a step.

``update(beta)`` is pure: it evaluates each projection on a grid of auxiliary values, its limit as
beta -> infinity (the hard quantizer the annealing of Sec. 3.1 aims at), and the *soft width*, the
length of the stretch of x~ where P_beta(x~) is still farther than ``tol`` times the level spacing
from every level. For tanh (spacing 2) the soft width is 2 atanh(1 - 2 tol) / beta: the transition
shrinks like 1 / beta. ``draw`` and
``redraw`` turn that data into matplotlib artists; ``projection_explorer`` wires them to ipywidgets.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from mdq_teach import maps

MAP_NAMES = ("tanh", "sigmoid", "shifted_tanh")
# A point counts as quantized once it is within this fraction of the level spacing of a level.
SOFT_TOL = 0.05
# Large enough that P at this beta equals its limit to float64 precision on any plotting grid
# whose points are not closer than 1e-4 to a jump.
LIMIT_BETA = 1e6


def _check(beta, names, span, n, tol):
    beta = float(beta)
    if not np.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    unknown = [name for name in names if name not in MAP_NAMES]
    if unknown or not names:
        raise ValueError(f"names must be a non-empty subset of {MAP_NAMES}, got {tuple(names)}")
    if not (np.isfinite(span) and span > 0):
        raise ValueError(f"span must be a finite number > 0, got {span}")
    if int(n) < 3:
        raise ValueError(f"n must be an integer >= 3, got {n}")
    if not 0 < tol < 0.5:
        raise ValueError(f"tol must lie in (0, 0.5), got {tol}")
    return beta


def update(
    beta, names=MAP_NAMES, *, span: float = 2.0, n: int = 400, tol: float = SOFT_TOL
) -> dict:
    """Everything the explorer shows at one beta, as arrays (no plotting).

    Returns a dict with 'beta', 'x_tilde' (n points on [-span, span]) and, keyed by map name,
    'curves' (P_beta on the grid), 'limits' (P at ``LIMIT_BETA``), 'levels', and 'soft' (boolean
    mask of grid points farther than ``tol`` times the level spacing from every level) with its
    length 'soft_width'.
    """
    beta = _check(beta, names, span, n, tol)
    x_tilde = np.linspace(-span, span, int(n))
    dx = x_tilde[1] - x_tilde[0]
    out = {"beta": beta, "x_tilde": x_tilde, "curves": {}, "limits": {}, "levels": {}, "soft": {}}
    out["soft_width"] = {}
    for name in names:
        m = maps.get_map(name)
        x = m.project(x_tilde, beta)
        gap = np.min(np.abs(x[:, None] - m.levels[None, :]), axis=1)
        soft = gap > tol * np.min(np.diff(m.levels))
        out["curves"][name] = x
        out["limits"][name] = m.project(x_tilde, LIMIT_BETA)
        out["levels"][name] = m.levels
        out["soft"][name] = soft
        out["soft_width"][name] = float(soft.sum() * dx)
    return out


def _title(name: str, data: dict) -> str:
    return f"{name}: soft width {data['soft_width'][name]:.2f}"


def _soft_spans(x_tilde, soft):
    """Rectangles (in x data, y axes coordinates) over each run of True in ``soft``."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], soft.astype(np.int8), [0]])))
    return [
        [(x_tilde[a], 0.0), (x_tilde[b - 1], 0.0), (x_tilde[b - 1], 1.0), (x_tilde[a], 1.0)]
        for a, b in zip(edges[::2], edges[1::2], strict=True)
    ]


def draw(axes, data: dict) -> dict:
    """Draw one panel per map of ``data`` on ``axes``; returns the artists ``redraw`` moves."""
    from matplotlib.collections import PolyCollection

    names = list(data["curves"])
    if len(axes) != len(names):
        raise ValueError(f"need one axes per map: {len(names)} maps, got {len(axes)} axes")
    artists = {}
    xt = data["x_tilde"]
    for ax, name in zip(axes, names, strict=True):
        for level in data["levels"][name]:
            ax.axhline(level, color="0.8", lw=0.8, zorder=0)
        ax.plot(xt, data["limits"][name], color="k", ls="--", lw=1, label=r"$\beta \to \infty$")
        (line,) = ax.plot(xt, data["curves"][name], color="C0", lw=2, label=r"$P_\beta$")
        # One collection whose rectangles move with beta (no new artist per slider event).
        band = PolyCollection(
            _soft_spans(xt, data["soft"][name]),
            facecolor="C1",
            alpha=0.2,
            edgecolor="none",
            transform=ax.get_xaxis_transform(),
            label="soft region",
        )
        ax.add_collection(band, autolim=False)
        ax.set_title(_title(name, data), fontsize="medium")
        ax.set_xlabel(r"$\tilde x$")
        artists[name] = {"ax": ax, "line": line, "band": band}
    axes[0].legend(fontsize="small", loc="upper left")
    return artists


def redraw(artists: dict, data: dict, titles: bool = True) -> None:
    """Move the artists made by ``draw`` to the data of another beta (same grid and maps);
    ``titles=False`` leaves the titles alone (the explorer shows the numbers as text)."""
    xt = data["x_tilde"]
    for name, a in artists.items():
        a["line"].set_ydata(data["curves"][name])
        a["band"].set_verts(_soft_spans(xt, data["soft"][name]))
        if titles:
            a["ax"].title.set_text(_title(name, data))


def readout(data: dict) -> str:
    widths = ", ".join(f"{name} {w:.2f}" for name, w in data["soft_width"].items())
    return f"<b>beta = {data['beta']:g}</b> &nbsp; soft width: {widths}"


def projection_explorer(
    beta: float = 1.0, beta_range=(0.25, 64.0), names=MAP_NAMES, canvas: str = "auto"
):
    """An ipywidgets box: a logarithmic beta slider above one panel per projection.

    ``box.figure``, ``box.slider`` and ``box.live`` (the ``_live.LiveFigure``) are handles for
    tests, the benchmark and instructors' tweaks.
    """
    import ipywidgets

    from mdq_teach.widgets import _live

    lo, hi = (float(b) for b in beta_range)
    if not 0 < lo < hi:
        raise ValueError(f"beta_range must be (lo, hi) with 0 < lo < hi, got {beta_range}")
    if not lo <= beta <= hi:
        raise ValueError(f"beta must lie in beta_range [{lo}, {hi}], got {beta}")
    slider = _live.slider("beta", float(beta), _live.log_grid(lo, hi, include=[beta]))
    fig, axes = _live.new_figure(3.2, nrows=1, ncols=len(names), sharey=True)
    data = update(beta, names)
    artists = draw(axes, data)
    for name, a in artists.items():
        a["ax"].set_title(name, fontsize="medium")  # the numbers go to the readout
    moving = [a for art in artists.values() for a in (art["line"], art["band"])]

    cache = _live.Memo(update)  # back and forth across the slider: the curves are kept

    def render():
        data = cache(beta=slider.value, names=tuple(names))
        redraw(artists, data, titles=False)
        live.show_readout(readout(data))
        return False  # fixed axes: only the animated artists are drawn again

    def nearby():
        state = {"beta": slider.value, "names": tuple(names)}
        return [partial(cache, **st) for st in _live.nearby_states({"beta": slider}, state)]

    live = _live.LiveFigure(fig, moving, render, canvas=canvas, prefetch=nearby)
    live.show_readout(readout(data))
    slider.observe(lambda change: live.request(), names="value")
    live.watch(slider)
    box = ipywidgets.VBox([slider, live.readout, live.widget, live.errors])
    box.figure, box.slider, box.live = fig, slider, live
    return box

"""Chapter 9 explorer: draw a proximal quantizer by its parameters, see its regulariser and its run.

``update(family, beta, levels)`` is pure: it evaluates the quantizer P_beta of ``mdq_teach.prox`` on
a grid of stored values theta, the regulariser r it is the proximal map of (r' = P^{-1} - identity),
the mirror map Phi = w^2/2 + r that Theorem 1 derives from the same P, and ProxConnect's trajectory
with this quantizer on the toy problem f(w) = (w - center)^2 (``toy.run("proxconnect", ...)``).
``draw`` turns that data into three panels; ``quantizer_explorer`` wires it to ipywidgets
(imported there only). Overlaying ``draw`` for several betas gives the static figure.
"""

from __future__ import annotations

from functools import partial

import numpy as np

from mdq_teach import prox, toy
from mdq_teach._validate import check_range

FAMILIES = tuple(prox.QUANTIZERS)
LEVEL_SETS = {"binary": (-1.0, 1.0), "ternary": (-1.0, 0.0, 1.0), "uneven": (-1.0, -0.2, 0.5, 1.0)}
# Slider ranges; update() rejects anything outside them with a ValueError naming the range.
RANGES = {"beta": (0.1, 100.0), "x_tilde0": (-2.0, 2.0), "eta": (0.001, 0.5), "center": (-2.0, 2.0)}


def _check(name, value):
    return check_range(name, value, RANGES)


def update(
    family: str = "tanh",
    beta: float = 2.0,
    levels=(-1.0, 1.0),
    *,
    center: float = -0.3,
    x_tilde0: float = 0.8,
    eta: float = 0.05,
    steps: int = 60,
    n: int = 401,
) -> dict:
    """Everything the explorer shows for one setting, as arrays (no plotting).

    Returns a dict with 'family', 'beta', 'levels'; 'theta' (n points around the hull of the levels)
    with 'w' = P_beta(theta) and 'limit' (the hard quantizer, beta -> inf); 'w_grid' (n points on a
    slightly larger interval, and the levels) with 'r' (the regulariser, +inf off the range of P)
    and 'phi' (w^2/2 + r); 'max_slope' (largest slope of P on the theta grid) and 'convex'
    (whether r is convex: P continuous with slope <= 1, up to the grid's resolution); and
    'trajectory' (the iterates w_0..w_steps of ProxConnect on f(w) = (w - center)^2 from
    theta_0 = x_tilde0).
    """
    if family not in prox.QUANTIZERS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    beta, center = _check("beta", beta), _check("center", center)
    x_tilde0, eta = _check("x_tilde0", x_tilde0), _check("eta", eta)
    if int(steps) != steps or not 1 <= steps <= 2000:
        raise ValueError(f"steps must be an integer in [1, 2000], got {steps}")
    if int(n) != n or n < 11:
        raise ValueError(f"n must be an integer >= 11, got {n}")
    P = prox.get_quantizer(family, levels)
    P.check_beta(beta)  # e.g. the linear family needs beta >= 1
    q = P.levels
    span = q[-1] - q[0]
    theta = np.linspace(q[0] - 0.75 * span, q[-1] + 0.75 * span, int(n))
    w = P(theta, beta)
    # The levels are on the grid: that is where the hard quantizer's r is finite.
    w_grid = np.union1d(np.linspace(q[0] - 0.25 * span, q[-1] + 0.25 * span, int(n)), q)
    r = P.regulariser(w_grid, beta)
    slopes = np.diff(w) / np.diff(theta)
    # A jump shows up as one huge slope on the grid: slope <= 1 everywhere means continuous and
    # 1-Lipschitz, i.e. r convex.
    max_slope = float(slopes.max())
    trajectory = toy.run(
        "proxconnect", toy.Quadratic(center=center), x_tilde0, beta, eta, int(steps), quantizer=P
    )
    return {
        "family": family,
        "beta": beta,
        "levels": q,
        "theta": theta,
        "w": w,
        "limit": P.limit(theta),
        "w_grid": w_grid,
        "r": r,
        "phi": 0.5 * w_grid**2 + r,
        "max_slope": max_slope,
        "convex": bool(max_slope <= 1.0 + 1e-9),
        "center": center,
        "trajectory": trajectory,
    }


def _finite(y):
    return np.where(np.isfinite(y), y, np.nan)


def _level_grid(levels):
    """x (axes fraction) and y (data) of one line through every level, broken by NaNs."""
    levels = np.asarray(levels, dtype=float)
    x = np.tile([0.0, 1.0, np.nan], levels.size)
    y = np.repeat(levels, 3)
    y[2::3] = np.nan
    return x, y


def _title(data: dict) -> str:
    kind = "convex r" if data["convex"] else "non-convex r"
    return f"{data['family']}, beta = {data['beta']:g}: {kind}"


def draw(axes, data: dict, *, color: str = "C0", label: str | None = None, frame: bool = True):
    """Draw ``data`` on three axes (quantizer, regulariser and mirror map, trajectory).

    ``frame`` adds what does not change with beta (levels, the staircase, labels); overlay several
    betas by calling ``draw`` again with ``frame=False`` and another color. Returns the lines
    (with ``frame``, also the level lines 'grid_p', 'grid_r', 'grid_t' (one line per panel, so a
    new level set moves three artists), the staircase 'limit' and the 'title').
    """
    if len(axes) != 3:
        raise ValueError(f"need 3 axes (quantizer, regulariser, trajectory), got {len(axes)}")
    ax_p, ax_r, ax_t = axes
    grid = {}
    if frame:
        from matplotlib.transforms import blended_transform_factory

        for key, ax in zip(("grid_p", "grid_r", "grid_t"), axes, strict=True):
            across = blended_transform_factory(ax.transAxes, ax.transData)
            (grid[key],) = ax.plot(
                *_level_grid(data["levels"]), color="0.85", lw=0.8, zorder=0, transform=across
            )
        (limit,) = ax_p.plot(
            data["theta"], data["limit"], color="k", ls="--", lw=0.8, label="hard (BC)"
        )
        # the book's notation (book/notation.md): stored x~, iteration index k
        ax_p.set_xlabel(r"stored $\tilde x$")
        ax_p.set_ylabel(r"$w = P_\beta(\tilde x)$")
        ax_r.set_xlabel("$w$")
        ax_r.set_title(r"$r$ (solid) and $\Phi = w^2/2 + r$ (dotted)", fontsize="medium")
        ax_t.set_xlabel("iteration $k$")
        ax_t.set_ylabel("$w^k$")
        ax_t.axhline(data["center"], color="C3", lw=0.8, ls=":", label="center of $f$")
    (line_p,) = ax_p.plot(data["theta"], data["w"], color=color, lw=1.8, label=label)
    (line_r,) = ax_r.plot(data["w_grid"], _finite(data["r"]), color=color, lw=1.8)
    (line_phi,) = ax_r.plot(data["w_grid"], _finite(data["phi"]), color=color, lw=1.2, ls=":")
    # Where r is finite only at isolated points (the hard quantizer) the line vanishes: mark them.
    (dots,) = ax_r.plot([], [], "o", color=color, ms=4)
    if np.isfinite(data["r"]).sum() <= len(data["levels"]):
        dots.set_data(data["levels"], np.zeros_like(data["levels"]))
    steps = np.arange(data["trajectory"].shape[0])
    (line_t,) = ax_t.plot(steps, data["trajectory"], color=color, lw=1.5, label=label)
    lines = {**grid, "p": line_p, "r": line_r, "phi": line_phi, "dots": dots, "t": line_t}
    if frame:
        ax_p.set_title(_title(data), fontsize="medium")
        lines.update(limit=limit, title=ax_p.title)
    return lines


def redraw(lines: dict, data: dict, titles: bool = True, shrink: bool = True) -> bool:
    """Move the lines of ``draw(..., frame=True)`` to ``data`` (any family and level set); True
    when an axis range had to change. ``titles=False`` leaves the title alone (the explorer shows
    it as text); ``shrink=False`` lets the ranges only widen (fewer full draws in a live figure)."""
    from mdq_teach.widgets._live import fit_limits

    for key in ("grid_p", "grid_r", "grid_t"):
        lines[key].set_data(*_level_grid(data["levels"]))
    lines["p"].set_data(data["theta"], data["w"])
    lines["limit"].set_data(data["theta"], data["limit"])
    lines["r"].set_data(data["w_grid"], _finite(data["r"]))
    lines["phi"].set_data(data["w_grid"], _finite(data["phi"]))
    isolated = np.isfinite(data["r"]).sum() <= len(data["levels"])
    levels = data["levels"] if isolated else []
    lines["dots"].set_data(levels, np.zeros_like(levels))
    lines["t"].set_data(np.arange(data["trajectory"].shape[0]), data["trajectory"])
    if titles:
        lines["title"].set_text(_title(data))
    finite = np.concatenate([_finite(data["r"]), _finite(data["phi"]), [0.0]])
    changed = fit_limits(
        lines["r"].axes, "y", np.nanmin(finite), np.nanmax(finite), shrink=shrink
    )
    traj = np.concatenate([data["trajectory"], data["levels"], [data["center"]]])
    return fit_limits(lines["t"].axes, "y", traj.min(), traj.max(), shrink=shrink) or changed


def beta_grid(family: str) -> list[float]:
    """The explorer's beta values for ``family``: ``RANGES["beta"]`` cut to what it accepts (the
    piecewise-linear family needs beta >= 1)."""
    lo, hi = RANGES["beta"]
    lo = max(lo, prox.get_quantizer(family).beta_min)
    from mdq_teach.widgets._live import log_grid

    return log_grid(lo, hi)


def quantizer_explorer(
    family: str = "tanh", beta: float = 2.0, level_set: str = "binary", canvas: str = "auto"
):
    """An ipywidgets box: family, level set and a logarithmic beta slider above the three panels.

    The slider offers only the betas the chosen family accepts. ``box.figure``, ``box.slider``,
    ``box.family``, ``box.levels`` and ``box.live`` are handles for tests and the benchmark.
    """
    import ipywidgets

    from mdq_teach.widgets import _live

    if family not in prox.QUANTIZERS:
        raise ValueError(f"family must be one of {FAMILIES}, got {family!r}")
    if level_set not in LEVEL_SETS:
        raise ValueError(f"level_set must be one of {tuple(LEVEL_SETS)}, got {level_set!r}")
    beta = _check("beta", beta)
    prox.get_quantizer(family).check_beta(beta)
    family_box = ipywidgets.Dropdown(options=FAMILIES, value=family, description="family")
    levels_box = ipywidgets.Dropdown(
        options=tuple(LEVEL_SETS), value=level_set, description="levels"
    )
    slider = _live.slider("beta", beta, sorted({*beta_grid(family), beta}))
    fig, axes = _live.new_figure(3.4, nrows=1, ncols=3)
    state = {"hold": False}
    # Back and forth across the slider or the dropdowns: the quantizer and the run are kept.
    cache = _live.Memo(update)

    def current():
        return cache(
            family=family_box.value, beta=slider.value, levels=LEVEL_SETS[levels_box.value]
        )

    data = current()
    lines = draw(axes, data)
    lines.pop("title").set_text("quantizer $P_\\beta$")  # the numbers go to the readout
    # Every level set spans [-1, 1], so the theta and w axes never change; the level lines, the
    # staircase and the curves are all animated: a new family or level set is one blit.
    redraw(lines, data, titles=False, shrink=False)

    def render():
        data = current()
        live.show_readout(f"<b>{_title(data)}</b>")
        return redraw(lines, data, titles=False, shrink=False)

    def nearby():
        controls = {"beta": slider, "family": family_box, "levels": levels_box}
        state = {"beta": slider.value, "family": family_box.value, "levels": levels_box.value}
        thunks = []
        for st in _live.nearby_states(controls, state, cyclic=("family", "levels")):
            grid = beta_grid(st["family"])  # a new family moves beta as on_family does
            beta = min(grid, key=lambda v: abs(np.log(v / st["beta"])))
            thunks.append(
                partial(cache, family=st["family"], beta=beta, levels=LEVEL_SETS[st["levels"]])
            )
        return thunks

    live = _live.LiveFigure(fig, list(lines.values()), render, canvas=canvas, prefetch=nearby)
    live.show_readout(f"<b>{_title(data)}</b>")

    def on_family(change):
        grid = beta_grid(change["new"])
        if list(slider.options) != [(f"{v:g}", v) for v in grid]:
            value = min(grid, key=lambda v: abs(np.log(v / slider.value)))
            state["hold"] = True  # one render for the new family, not one per trait change
            try:
                slider.options = [(f"{v:g}", v) for v in grid]
                slider.value = value
            finally:
                state["hold"] = False
        live.request()

    def on_value(change):
        if not state["hold"]:
            live.request()

    family_box.observe(on_family, names="value")
    levels_box.observe(on_value, names="value")
    slider.observe(on_value, names="value")
    live.watch(family_box, levels_box, slider)
    box = ipywidgets.VBox(
        [ipywidgets.HBox([family_box, levels_box, slider]), live.readout, live.widget, live.errors]
    )
    box.figure, box.slider, box.family, box.levels, box.live = (
        fig, slider, family_box, levels_box, live
    )
    return box

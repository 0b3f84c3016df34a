"""Chapter 7 explorer: ProxQuant against mirror descent on f(x) = (x + 1)^2 over [-1, 1] (Fig. 3).

``update(beta, x_tilde0, eta)`` is pure: it runs MD-tanh, MD-tanh-S, PQ-L1 and PQ-L2 from the same
auxiliary start and returns the trajectories, the PQ objectives f + beta R on a grid (Eq. 25) and
where each method stopped. ``draw`` turns that into a figure, ``sweep`` computes the static
counterpart (the final point of each method over a grid of starts and betas), and ``explorer``
wires sliders to ``update`` and ``draw`` (ipywidgets is imported there only).
"""

from __future__ import annotations

from functools import partial

import matplotlib.pyplot as plt
import numpy as np

from mdq_teach import toy
from mdq_teach._validate import check_range
from mdq_teach.plots import method_style
from mdq_teach.tables import display_name

METHODS = ("md-tanh", "md-tanh-s", "pq-l1", "pq-l2")
# Each method's colour and line style as in every chapter (plots.method_style); MD-tanh is drawn
# wide under MD-tanh-S, since the two trajectories often coincide.
_WIDTH = {"md-tanh": 2.5, "md-tanh-s": 1.2, "pq-l1": 1.8, "pq-l2": 1.8}
STYLE = {
    m: dict(color=method_style(m)["color"], ls=method_style(m)["linestyle"], lw=_WIDTH[m],
            label=display_name(m))  # fmt: skip
    for m in METHODS
}
# Slider ranges; update() rejects anything outside them with a ValueError naming the range.
RANGES = {"beta": (0.25, 12.0), "x_tilde0": (-1.5, 1.5), "eta": (0.005, 0.6), "steps": (1, 2000)}
PROBLEM = toy.Quadratic(center=-1.0)
GRID = np.linspace(-1.5, 1.5, 301)


def _check(name, value):
    return check_range(name, value, RANGES)


def update(beta: float = 4.0, x_tilde0: float = 1.2, eta: float = 0.1, steps: int = 100) -> dict:
    """Everything the chapter 7 figure shows for one setting of the sliders.

    Returns a dict with 'grid' and 'objectives' (f, and f + beta R for 'pq-l1' and 'pq-l2' on the
    grid), 'trajectories' (method -> primal iterates x^0..x^steps), 'final' (method -> last iterate)
    and 'stuck' (method -> True when the last iterate is farther than 1e-2 from the minimiser -1).
    """
    beta, x_tilde0, eta = _check("beta", beta), _check("x_tilde0", x_tilde0), _check("eta", eta)
    if int(steps) != steps:
        raise ValueError(f"steps must be an integer, got {steps}")
    steps = int(_check("steps", steps))
    trajectories = {m: toy.run(m, PROBLEM, x_tilde0, beta, eta, steps) for m in METHODS}
    final = {m: float(xs[-1]) for m, xs in trajectories.items()}
    return {
        "params": {"beta": beta, "x_tilde0": x_tilde0, "eta": eta, "steps": steps},
        "grid": GRID,
        "objectives": {
            "f": PROBLEM.f(GRID),
            "pq-l1": toy.pq_objective(PROBLEM, GRID, beta, "l1"),
            "pq-l2": toy.pq_objective(PROBLEM, GRID, beta, "l2"),
        },
        "trajectories": trajectories,
        "final": final,
        "stuck": {m: abs(x - PROBLEM.minimizer) > 1e-2 for m, x in final.items()},
    }


def _end_y(data: dict, m: str) -> float:
    x, beta = data["final"][m], data["params"]["beta"]
    return toy.pq_objective(PROBLEM, x, beta, m[3:]) if m.startswith("pq") else PROBLEM.f(x)


def _titles(p: dict) -> tuple[str, str]:
    return (
        rf"objectives at $\beta$ = {p['beta']:g} (dots: ends)",
        rf"start $\tilde x^0$ = {p['x_tilde0']:g}, $\eta$ = {p['eta']:g}, {p['steps']} steps",
    )


def draw_artists(data: dict, axes) -> dict:
    """Draw the figure of ``draw`` on two axes; returns the artists ``redraw`` moves."""
    left, right = axes
    left.plot(data["grid"], data["objectives"]["f"], color="0.4", lw=1, label="$f$")
    artists = {"objective": {}, "end": {}, "trajectory": {}}
    for form, sub in (("pq-l1", 1), ("pq-l2", 2)):
        style = {k: v for k, v in STYLE[form].items() if k != "label"}
        (artists["objective"][form],) = left.plot(
            data["grid"], data["objectives"][form], **style, label=rf"$f + \beta R_{sub}$"
        )
    for m in METHODS:
        (artists["end"][m],) = left.plot(
            [data["final"][m]], [_end_y(data, m)], "o", color=STYLE[m]["color"],
            ms=7 if m == "md-tanh" else 4,
        )
    title_left, title_right = _titles(data["params"])
    left.set(xlabel="$x$", ylabel="objective", title=title_left)
    left.legend(fontsize="small", loc="upper left")
    for m in METHODS:
        (artists["trajectory"][m],) = right.plot(data["trajectories"][m], **STYLE[m])
    right.axhline(PROBLEM.minimizer, color="0.6", lw=0.8, ls=":")
    right.set(xlabel="iteration $k$", ylabel="$x^k$", ylim=(-1.1, 1.6), title=title_right)
    right.legend(fontsize="small", loc="upper right")
    artists["titles"] = (left.title, right.title)
    return artists


def redraw(artists: dict, data: dict, titles: bool = True, steps_max: int | None = None) -> bool:
    """Move the artists of ``draw_artists`` to ``data``; True when an axis range had to change.
    ``titles=False`` leaves the titles alone (the explorer shows the numbers as text).
    ``steps_max`` fixes the iteration axis to [0, steps_max] and lets the objective axis only
    widen: a live figure then changes no range while the steps slider moves."""
    from mdq_teach.widgets._live import fit_limits

    for form, line in artists["objective"].items():
        line.set_ydata(data["objectives"][form])
    for m in METHODS:
        artists["end"][m].set_data([data["final"][m]], [_end_y(data, m)])
        xs = data["trajectories"][m]
        artists["trajectory"][m].set_data(np.arange(xs.size), xs)
    if titles:
        for title, text in zip(artists["titles"], _titles(data["params"]), strict=True):
            title.set_text(text)
    left = artists["objective"]["pq-l1"].axes
    right = artists["trajectory"]["md-tanh"].axes
    objectives = np.concatenate(list(data["objectives"].values()))
    if steps_max is not None:
        if right.get_xlim() != (0.0, float(steps_max)):
            right.set_xlim(0.0, float(steps_max))
            fit_limits(left, "y", 0.0, float(objectives.max()), shrink=False)
            return True
        return fit_limits(left, "y", 0.0, float(objectives.max()), shrink=False)
    changed = fit_limits(left, "y", 0.0, float(objectives.max()))
    return fit_limits(right, "x", 0.0, float(data["params"]["steps"])) or changed


def draw(data: dict, axes=None):
    """Left: f and the two PQ objectives with each method's end point. Right: the trajectories.

    Returns the figure.
    """
    if axes is None:
        _, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    draw_artists(data, axes)
    return axes[0].figure


def sweep(starts, betas, eta: float = 0.1, steps: int = 300) -> dict:
    """The last iterate of every method for each (beta, start): arrays of shape (len(betas),
    len(starts)) keyed by method. Each beta is one run with the starts as a vector, since the
    problem acts coordinate by coordinate."""
    starts = np.asarray(starts, dtype=float)
    for s in starts:
        _check("x_tilde0", s)
    eta = _check("eta", eta)
    return {
        m: np.array([toy.run(m, PROBLEM, starts, _check("beta", b), eta, steps)[-1] for b in betas])
        for m in METHODS
    }


def explorer(
    beta: float = 4.0, x_tilde0: float = 1.2, eta: float = 0.1, steps: int = 100,
    canvas: str = "auto",
):
    """Sliders for beta, the auxiliary start, the step size and the number of steps, moving the
    artists of ``draw_artists``. ``box.figure``, ``box.sliders`` and ``box.live`` are handles for
    tests and the benchmark."""
    import ipywidgets

    from mdq_teach.widgets import _live

    beta, x_tilde0, eta = _check("beta", beta), _check("x_tilde0", x_tilde0), _check("eta", eta)
    steps = int(_check("steps", steps))
    sliders = {
        "beta": _live.slider("beta", beta, _live.linear_grid(0.25, 12.0, 0.25, [beta])),
        "x_tilde0": _live.slider(
            "x~0", x_tilde0, _live.linear_grid(*RANGES["x_tilde0"], 0.05, [x_tilde0])
        ),
        "eta": _live.slider("eta", eta, _live.log_grid(*RANGES["eta"], include=[eta])),
        "steps": _live.slider("steps", steps, sorted({*range(10, 301, 10), steps}), "{:d}"),
    }
    fig, axes = _live.new_figure(3.6, nrows=1, ncols=2)
    data = update(beta, x_tilde0, eta, steps)
    artists = draw_artists(data, axes)
    axes[0].set_title("objectives (dots: where each method ends)")  # numbers: in the readout
    axes[1].set_title("trajectories")
    steps_max = max(v for _, v in sliders["steps"].options)
    # The iteration axis is fixed to the slider's range (no new range, no full draw, when the
    # steps slider moves); symlog keeps the first iterations, where eta and x~0 act, readable
    # next to a run of hundreds of steps.
    axes[1].set_xscale("symlog", linthresh=10, linscale=0.8)
    redraw(artists, data, titles=False, steps_max=steps_max)
    moving = [
        *artists["objective"].values(), *artists["end"].values(),
        *artists["trajectory"].values(),
    ]

    def readout(data):
        p, ends = data["params"], data["final"]
        where = ", ".join(f"{STYLE[m]['label']} {x:+.2f}" for m, x in ends.items())
        return (
            f"<b>beta = {p['beta']:g}, x~0 = {p['x_tilde0']:g}, eta = {p['eta']:g}, "
            f"{p['steps']} steps</b> &nbsp; ends: {where}"
        )

    cache = _live.Memo(update)  # back and forth across a slider: the runs are kept

    def render():
        data = cache(**{k: s.value for k, s in sliders.items()})
        live.show_readout(readout(data))
        return redraw(artists, data, titles=False, steps_max=steps_max)

    def nearby():
        state = {k: s.value for k, s in sliders.items()}
        return [partial(cache, **st) for st in _live.nearby_states(sliders, state)]

    live = _live.LiveFigure(fig, moving, render, canvas=canvas, prefetch=nearby)
    live.show_readout(readout(data))
    for s in sliders.values():
        s.observe(lambda change: live.request(), names="value")
    live.watch(*sliders.values())
    controls = list(sliders.values())
    rows = [ipywidgets.HBox(controls[:2]), ipywidgets.HBox(controls[2:])]
    box = ipywidgets.VBox([*rows, live.readout, live.widget, live.errors])
    box.figure, box.sliders, box.live = fig, sliders, live
    return box

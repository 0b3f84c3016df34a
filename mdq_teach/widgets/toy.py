"""Chapter 7 explorer: ProxQuant against mirror descent on f(x) = (x + 1)^2 over [-1, 1] (Fig. 3).

``update(beta, x_tilde0, eta)`` is pure: it runs MD-tanh, MD-tanh-S, PQ-L1 and PQ-L2 from the same
auxiliary start and returns the trajectories, the PQ objectives f + beta R on a grid (Eq. 25) and
where each method stopped. ``draw`` turns that into a figure, ``sweep`` computes the static
counterpart (the final point of each method over a grid of starts and betas), and ``explorer``
wires sliders to ``update`` and ``draw`` (ipywidgets is imported there only).
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from mdq_teach import toy
from mdq_teach._validate import check_range

METHODS = ("md-tanh", "md-tanh-s", "pq-l1", "pq-l2")
STYLE = {
    "md-tanh": dict(color="C0", lw=2.5, label="MD-tanh"),
    "md-tanh-s": dict(color="C9", lw=1.2, ls="--", label="MD-tanh-S"),
    "pq-l1": dict(color="C3", lw=1.8, label="PQ-L1"),
    "pq-l2": dict(color="C1", lw=1.8, label="PQ-L2"),
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


def draw(data: dict, axes=None):
    """Left: f and the two PQ objectives with each method's end point. Right: the trajectories."""
    if axes is None:
        fig, axes = plt.subplots(1, 2, figsize=(10, 3.6), layout="constrained")
    left, right = axes
    p = data["params"]
    left.plot(data["grid"], data["objectives"]["f"], color="0.4", lw=1, label="$f$")
    for form, sub in (("pq-l1", 1), ("pq-l2", 2)):
        style = {k: v for k, v in STYLE[form].items() if k != "label"}
        left.plot(data["grid"], data["objectives"][form], **style, label=rf"$f + \beta R_{sub}$")
    for m in METHODS:
        x = data["final"][m]
        y = toy.pq_objective(PROBLEM, x, p["beta"], m[3:]) if m.startswith("pq") else PROBLEM.f(x)
        left.plot(x, y, "o", color=STYLE[m]["color"], ms=7 if m == "md-tanh" else 4)
    left.set(
        xlabel="$x$",
        ylabel="objective",
        title=rf"objectives at $\beta$ = {p['beta']:g} (dots: ends)",
    )
    left.legend(fontsize=8)
    for m in METHODS:
        right.plot(data["trajectories"][m], **STYLE[m])
    right.axhline(PROBLEM.minimizer, color="0.6", lw=0.8, ls=":")
    right.set(
        xlabel="iteration $k$",
        ylabel="$x^k$",
        ylim=(-1.1, 1.6),
        title=rf"start $\tilde x^0$ = {p['x_tilde0']:g}, $\eta$ = {p['eta']:g}",
    )
    right.legend(fontsize=8, loc="upper right")
    return left.figure


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


def explorer(beta: float = 4.0, x_tilde0: float = 1.2, eta: float = 0.1, steps: int = 100):
    """Sliders for beta, the auxiliary start and the step size, redrawing ``draw(update(...))``."""
    import ipywidgets as widgets
    from IPython.display import display

    sliders = {
        "beta": widgets.FloatSlider(beta, min=0.25, max=12, step=0.25, description="beta"),
        "x_tilde0": widgets.FloatSlider(x_tilde0, min=-1.5, max=1.5, step=0.05, description="x~0"),
        "eta": widgets.FloatLogSlider(
            eta, base=10, min=-2.3, max=-0.23, step=0.05, description="eta"
        ),
        "steps": widgets.IntSlider(steps, min=10, max=300, step=10, description="steps"),
    }
    out = widgets.Output()

    def redraw(**params):
        with out:
            out.clear_output(wait=True)
            fig = draw(update(**params))
            display(fig)
            plt.close(fig)

    widgets.interactive_output(redraw, sliders)
    return widgets.VBox(
        [widgets.HBox(list(sliders.values())[:2]), widgets.HBox(list(sliders.values())[2:]), out]
    )

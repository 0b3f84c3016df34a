"""Chapter 5 explorer: Theorem 2 on a box-constrained quadratic, over the cap B and the step size.

MD-tanh (Eq. 15) runs with the annealed mirror map Phi_beta = Phi / beta, beta_k = min(rho^k, B),
from x^0 = 0 = argmin Phi, on f(x) = ||x - a||^2 / 2 over [-1, 1]^n (``toy.BoxQuadratic``).
``update(cap, eta)`` is pure: it returns the measured gap of the averaged iterate at every t with
two bounds from the proof: the one for the fixed step eta (``fixed_step_bound``) and Theorem 2's
(Eq. 22, eta tuned to each t). ``draw`` plots them, ``explorer`` wires sliders (ipywidgets is
imported there only).
"""

from __future__ import annotations

from functools import partial

import matplotlib.pyplot as plt
import numpy as np

from mdq_teach import maps, theory, toy
from mdq_teach._validate import check_range

PROBLEM = toy.BoxQuadratic.random(20, scale=2.0, seed=0)
GROWTH = 1.1  # beta_k = min(GROWTH^k, B): the paper's multiplicative schedule with a cap
STEPS = 400
RANGES = {"cap": (1.0, 1000.0), "eta": (1e-4, 10.0), "steps": (2, 5000)}


def constants(problem=PROBLEM) -> dict:
    """R, L and rho of Theorem 2 for the tanh mirror map on [-1, 1]^n with the Euclidean norm.

    Phi(x) = sum_i [(1 + x_i) log(1 + x_i) + (1 - x_i) log(1 - x_i)] / 2 is the beta = 1 mirror
    map (Eq. 14); its Hessian diag(1 / (1 - x_i^2)) is at least the identity, so rho = 1; it is
    smallest at x^0 = 0 and largest at the vertices, so R^2 = n (Phi_1(1) - Phi_1(0)) = n log 2.
    """
    tanh = maps.Tanh()
    r2 = problem.dim * float(tanh.potential(1.0, 1.0) - tanh.potential(0.0, 1.0))
    return {"R": float(np.sqrt(r2)), "L": float(problem.lipschitz), "rho": 1.0}


def fixed_step_bound(R, L, rho, cap, t, eta):
    """R^2 / (eta t) + eta B L^2 / (2 rho): the proof's bound for any fixed step eta.

    Minimising it over eta gives Theorem 2's step size and bound (Eq. 22).
    """
    t = np.asarray(t, dtype=float)
    return R**2 / (eta * t) + eta * cap * L**2 / (2.0 * rho)


def _check(name, value):
    return check_range(name, value, RANGES)


def update(
    cap: float = 16.0, eta: float | None = None, steps: int = STEPS, problem=PROBLEM
) -> dict:
    """The measured gap of the averaged iterate for t = 1..steps, with cap B and fixed step eta.

    ``eta=None`` takes Theorem 2's step size for the horizon ``steps``. Returns a dict with 't',
    'gap' (f(mean of x^0..x^{t-1}) - f*), 'bound_eta' (the fixed-step bound), 'bound_theorem'
    (md_bound at each t, which assumes the step tuned to that t), 'eta', 'eta_theorem', 'betas',
    and 'holds' (the measured gap never exceeds the fixed-step bound).
    """
    cap = _check("cap", cap)
    if int(steps) != steps:
        raise ValueError(f"steps must be an integer, got {steps}")
    steps = int(_check("steps", steps))
    c = constants(problem)
    eta_theorem = float(theory.md_step_size(c["R"], c["L"], c["rho"], cap, steps))
    eta = eta_theorem if eta is None else _check("eta", eta)
    x0 = np.zeros(problem.dim)
    xs = toy.run("md-tanh", problem, x0, 1.0, eta, steps - 1, beta_growth=GROWTH, beta_max=cap)
    t = np.arange(1, steps + 1)
    gap = toy.averaged_gap(problem, xs)
    bound_eta = fixed_step_bound(c["R"], c["L"], c["rho"], cap, t, eta)
    return {
        "t": t,
        "gap": gap,
        "bound_eta": bound_eta,
        "bound_theorem": theory.md_bound(c["R"], c["L"], c["rho"], cap, t),
        "eta": eta,
        "eta_theorem": eta_theorem,
        "cap": cap,
        "betas": toy.betas(1.0, steps - 1, GROWTH, cap),
        "holds": bool(np.all(gap <= bound_eta)),
    }


def _title(data: dict) -> str:
    return f"B = {data['cap']:g}, η = {data['eta']:g} (Theorem 5.1's η: {data['eta_theorem']:.3g})"


def draw(data: dict, ax=None) -> dict:
    """Gap of the averaged iterate and both bounds against t, on log-log axes.

    Returns the artists ``redraw`` moves ('gap', 'bound_eta', 'bound_theorem', 'title');
    ``artists["gap"].figure`` is the figure.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(8.2, 3.6), layout="constrained")
    (gap,) = ax.loglog(
        data["t"], data["gap"], color="C0", lw=2, label="measured gap (averaged iterate)"
    )
    (bound_eta,) = ax.loglog(
        data["t"], data["bound_eta"], color="C3", ls="--", label=r"bound for this fixed $\eta$"
    )
    (bound_theorem,) = ax.loglog(
        data["t"], data["bound_theorem"], color="0.3", ls=":",
        label=r"Theorem 5.1 ($\eta$ tuned to $T$)",
    )
    ax.set(xlabel="horizon T (iterations)", ylabel=r"$f(\bar x^T) - f^*$", title=_title(data))
    ax.legend(fontsize="small", loc="lower left")
    return {"gap": gap, "bound_eta": bound_eta, "bound_theorem": bound_theorem, "title": ax.title}


def redraw(artists: dict, data: dict, titles: bool = True, shrink: bool = True) -> bool:
    """Move the artists of ``draw`` to ``data``; True when the y range had to change.
    ``titles=False`` leaves the title alone (the explorer shows the numbers as text);
    ``shrink=False`` lets the y range only widen (fewer full draws in a live figure)."""
    from mdq_teach.widgets._live import fit_limits

    for key in ("gap", "bound_eta", "bound_theorem"):
        artists[key].set_data(data["t"], data[key])
    if titles:
        artists["title"].set_text(_title(data))
    ys = np.concatenate([data["gap"], data["bound_eta"], data["bound_theorem"]])
    ys = ys[np.isfinite(ys) & (ys > 0)]
    return fit_limits(artists["gap"].axes, "y", ys.min(), ys.max(), log=True, shrink=shrink)


def explorer(cap: float = 16.0, eta: float = 0.05, canvas: str = "auto"):
    """Sliders for the cap B and the step size eta over ``RANGES``, moving the lines of ``draw``.

    ``box.figure``, ``box.sliders`` and ``box.live`` are handles for tests and the benchmark.
    """
    import ipywidgets

    from mdq_teach.widgets import _live

    cap, eta = _check("cap", cap), _check("eta", eta)
    sliders = {
        "cap": _live.slider("cap B", cap, _live.log_grid(*RANGES["cap"], include=[cap])),
        "eta": _live.slider("eta", eta, _live.log_grid(*RANGES["eta"], include=[eta])),
    }
    fig, (ax,) = _live.new_figure(3.6)
    data = update(cap=cap, eta=eta)
    artists = draw(data, ax)
    artists.pop("title").set_text("measured gap and bounds")  # the numbers go to the readout
    redraw(artists, data, titles=False)  # the y range with headroom, before the layout is frozen

    cache = _live.Memo(update)  # back and forth across a slider: the runs are kept

    def render():
        data = cache(cap=sliders["cap"].value, eta=sliders["eta"].value)
        live.show_readout(f"<b>{_title(data)}</b>")
        return redraw(artists, data, titles=False, shrink=False)

    def nearby():
        state = {k: s.value for k, s in sliders.items()}
        return [partial(cache, **st) for st in _live.nearby_states(sliders, state)]

    live = _live.LiveFigure(fig, list(artists.values()), render, canvas=canvas, prefetch=nearby)
    live.show_readout(f"<b>{_title(data)}</b>")
    for s in sliders.values():
        s.observe(lambda change: live.request(), names="value")
    live.watch(*sliders.values())
    box = ipywidgets.VBox(
        [ipywidgets.HBox(list(sliders.values())), live.readout, live.widget, live.errors]
    )
    box.figure, box.sliders, box.live = fig, sliders, live
    return box

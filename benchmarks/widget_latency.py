"""Median latency of every widget's pure ``update`` function, the work behind one slider change.

Finds every module in ``mdq_teach/widgets/`` that defines ``update``, calls it N times with slider
values drawn at random from the ranges its explorer offers (``SLIDERS`` below; a module without an
entry is called with its defaults and marked so), and prints one row per module. The target is a
median under 50 ms, so that dragging a slider feels live.

A second column times what the browser waits for in a kernel-backed notebook: the same update, the
module's own ``draw`` into a figure of the explorer's size, and the PNG the explorer sends. It is
dominated by matplotlib's layout and rasterisation, not by the mathematics, and is reported so
that the two costs are seen side by side.

Usage: .venv/bin/python benchmarks/widget_latency.py [-n 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib
import io
import pkgutil
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import mdq_teach.widgets  # noqa: E402

TARGET_MS = 50.0


def _log_uniform(rng, lo, hi):
    return float(10 ** rng.uniform(np.log10(lo), np.log10(hi)))


def _quantizer_sliders(module, rng):
    return dict(
        family=str(rng.choice(module.FAMILIES)),
        beta=_log_uniform(rng, 1.0, 100.0),  # >= 1: the piecewise-linear family needs it
        levels=module.LEVEL_SETS[str(rng.choice(list(module.LEVEL_SETS)))],
        x_tilde0=float(rng.uniform(*module.RANGES["x_tilde0"])),
        eta=_log_uniform(rng, *module.RANGES["eta"]),
        center=float(rng.uniform(*module.RANGES["center"])),
    )


# Module name -> function (module, rng) -> keyword arguments for one slider setting, over the
# ranges of that module's explorer sliders.
SLIDERS = {
    "annealing": lambda m, rng: dict(
        cap=_log_uniform(rng, 1.0, 1000.0), eta=_log_uniform(rng, 1e-4, 10)
    ),
    "toy": lambda m, rng: dict(
        beta=float(rng.uniform(0.25, 12.0)),
        x_tilde0=float(rng.uniform(-1.5, 1.5)),
        eta=_log_uniform(rng, 0.005, 0.58),
        steps=int(rng.integers(10, 301)),
    ),
    "projections": lambda m, rng: dict(beta=_log_uniform(rng, 0.25, 64.0)),
    "quantizer": _quantizer_sliders,
}


def _png(fig) -> None:
    fig.savefig(io.BytesIO(), format="png", dpi=90)


def _render_new_figure(module, kwargs) -> None:
    # annealing and toy build a fresh figure per slider change, as their explorers do.
    fig = module.draw(module.update(**kwargs))
    _png(fig)
    plt.close(fig)


_FIGURES: dict[str, dict] = {}  # the explorers that keep one figure, by module


def _render_projections(module, kwargs) -> None:
    _cache = _FIGURES.setdefault("projections", {})
    # The projection explorer keeps its figure and moves the lines' data (``redraw``).
    if "artists" not in _cache:
        n = len(module.MAP_NAMES)
        fig, axes = plt.subplots(1, n, figsize=(3.6 * n, 3.2), sharey=True, layout="constrained")
        _cache.update(fig=fig, artists=module.draw(np.atleast_1d(axes), module.update(1.0)))
    module.redraw(_cache["artists"], module.update(**kwargs))
    _png(_cache["fig"])


def _render_quantizer(module, kwargs) -> None:
    _cache = _FIGURES.setdefault("quantizer", {})
    # The quantizer explorer clears its three axes and draws them again.
    if "axes" not in _cache:
        fig, axes = plt.subplots(1, 3, figsize=(11, 3.2), layout="constrained")
        _cache.update(fig=fig, axes=axes)
    for ax in _cache["axes"]:
        ax.clear()
    module.draw(_cache["axes"], module.update(**kwargs))
    _png(_cache["fig"])


RENDER = {
    "annealing": _render_new_figure,
    "toy": _render_new_figure,
    "projections": _render_projections,
    "quantizer": _render_quantizer,
}


def widget_modules():
    """(name, module) for every widget module with an ``update`` function."""
    for info in pkgutil.iter_modules(mdq_teach.widgets.__path__):
        module = importlib.import_module(f"mdq_teach.widgets.{info.name}")
        if callable(getattr(module, "update", None)):
            yield info.name, module


def measure(module, sliders, n: int, rng, call=None) -> np.ndarray:
    """Milliseconds per ``call(module, kwargs)`` (default: ``module.update``) over n settings."""
    call = call or (lambda m, kwargs: m.update(**kwargs))
    draw = (lambda: sliders(module, rng)) if sliders else dict
    call(module, draw())  # warm-up
    times = np.empty(n)
    for i in range(n):
        kwargs = draw()
        start = time.perf_counter()
        call(module, kwargs)
        times[i] = 1e3 * (time.perf_counter() - start)
    return times


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", type=int, default=40, help="calls per module (default 40)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.n < 1:
        parser.error("-n must be >= 1")
    rng = np.random.default_rng(args.seed)
    header = (
        f"{'widget module':<16} {'calls':>5} {'median ms':>10} {'p90 ms':>8} {'max ms':>8}  "
        f"{'target':<8} {'+ draw + PNG, median ms':>24}"
    )
    print(header)
    print("-" * len(header))
    slow = 0
    for name, module in widget_modules():
        sliders = SLIDERS.get(name)
        t = measure(module, sliders, args.n, rng)
        ok = np.median(t) < TARGET_MS
        slow += not ok
        note = "" if sliders else "  (defaults only: no slider ranges known)"
        render = RENDER.get(name)
        full = (
            f"{np.median(measure(module, sliders, max(args.n // 4, 1), rng, render)):>24.1f}"
            if render
            else f"{'(no renderer known)':>24}"
        )
        print(
            f"{name:<16} {args.n:>5} {np.median(t):>10.2f} {np.percentile(t, 90):>8.2f} "
            f"{t.max():>8.2f}  {'< 50 ms' if ok else 'SLOW':<8} {full}{note}"
        )
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())

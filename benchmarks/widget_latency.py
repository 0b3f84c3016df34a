"""Median latency of every widget's pure ``update`` function, the work behind one slider change.

Finds every module in ``mdq_teach/widgets/`` that defines ``update``, calls it N times with slider
values drawn at random from the ranges its explorer offers (``SLIDERS`` below; a module without an
entry is called with its defaults and marked so), and prints one row per module. The target is a
median under 50 ms, so that dragging a slider feels live.

A second column times one control event of the module's explorer as the kernel runs it: the
update, moving the artists, drawing them over the saved background (blitting, no layout) and the
PNG of the figure. The browser's side is measured in a real JupyterLab by
``benchmarks/widget_latency_lab.py``.

Usage: .venv/bin/python benchmarks/widget_latency.py [-n 40] [--seed 0]
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import mdq_teach.widgets  # noqa: E402

# The repository root, found from this file: mdq_support (shared with the tests) is not installed.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mdq_support.explorers import controls as explorer_controls  # noqa: E402
from mdq_support.explorers import option_values  # noqa: E402

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
    "toy_explorer": lambda m, rng: dict(
        beta=float(rng.uniform(0.25, 12.0)),
        x_tilde0=float(rng.uniform(-1.5, 1.5)),
        eta=_log_uniform(rng, 0.005, 0.58),
        steps=int(rng.integers(10, 301)),
    ),
    "projections": lambda m, rng: dict(beta=_log_uniform(rng, 0.25, 64.0)),
    "quantizer": _quantizer_sliders,
}


# Module name -> its explorer, drawing into PNG bytes as it does outside a kernel.
EXPLORERS = {
    "annealing": lambda m: m.explorer(canvas="png"),
    "toy_explorer": lambda m: m.explorer(canvas="png"),
    "projections": lambda m: m.projection_explorer(canvas="png"),
    "quantizer": lambda m: m.quantizer_explorer(canvas="png"),
}


def measure_events(module, name: str, n: int, rng) -> np.ndarray:
    """Milliseconds per control event of the module's explorer: update, moving the artists,
    drawing them over the saved background and encoding the PNG the browser gets."""
    box = EXPLORERS[name](module)
    controls = [widget for _, widget in explorer_controls(box)]
    times = np.empty(n)
    for i in range(n):
        widget = controls[int(rng.integers(len(controls)))]
        options = [v for v in option_values(widget) if v != widget.value]
        value = options[int(rng.integers(len(options)))]
        start = time.perf_counter()
        widget.value = value
        times[i] = 1e3 * (time.perf_counter() - start)
    plt.close("all")
    return times


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
        f"{'target':<8} {'explorer event, median ms':>24}"
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
        full = (
            f"{np.median(measure_events(module, name, max(args.n // 2, 1), rng)):>24.1f}"
            if name in EXPLORERS
            else f"{'(no explorer known)':>24}"
        )
        print(
            f"{name:<16} {args.n:>5} {np.median(t):>10.2f} {np.percentile(t, 90):>8.2f} "
            f"{t.max():>8.2f}  {'< 50 ms' if ok else 'SLOW':<8} {full}{note}"
        )
    return 1 if slow else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Seconds per call of every mirror map's methods on a large array, printed as one table.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/map_speed.py [--n 10000000] [--beta 4] [--repeat 1]

Each interval map gets n points spread over its domain (and n auxiliary points for ``project``);
``Softmax`` gets n / 3 probability vectors of length 3, so the number of floats is the same. The
target of issue 8 is ShiftedTanh's ``inverse`` and ``potential`` within 2 s at n = 1e7 (they took
65 s and 93 s with a 200-pass Newton loop over the whole array, about 2.4 s with Halley's method on
cache-sized blocks, and take a fraction of a second with the closed-form root for three levels;
five levels still iterate). Timings depend on the machine and its load: report them with the
machine.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mdq_teach import maps  # noqa: E402

METHODS = ("project", "inverse", "potential", "bregman", "md_step")


def timed(fn, repeat, clock=time.perf_counter):
    best = np.inf
    for _ in range(repeat):
        t0 = clock()
        fn()
        best = min(best, clock() - t0)
    return best


def calls(m, n, beta, rng):
    if isinstance(m, maps.Softmax):
        u = rng.dirichlet(np.ones(m.d), size=n // m.d)
        g = rng.normal(size=u.shape)
        return {
            "project": lambda: m.project(g, beta),
            "inverse": lambda: m.inverse(u, beta),
            "potential": lambda: m.potential(u, beta),
            "bregman": lambda: m.bregman(u, u[::-1], beta),
            "md_step": lambda: m.md_step(u, g, 0.1, beta),
        }
    x = rng.uniform(m.lo, m.hi, n)
    s = rng.normal(0, 2, n)
    g = rng.normal(size=n)
    return {
        "project": lambda: m.project(s, beta),
        "inverse": lambda: m.inverse(x, beta),
        "potential": lambda: m.potential(x, beta),
        "bregman": lambda: m.bregman(x, x[::-1], beta),
        "md_step": lambda: m.md_step(x, g, 0.1, beta),
    }


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000_000, help="array size (default 1e7)")
    parser.add_argument("--beta", type=float, default=4.0, help="annealing parameter (default 4)")
    parser.add_argument("--repeat", type=int, default=1, help="best of this many runs")
    parser.add_argument(
        "--cpu", action="store_true", help="CPU time of this process instead of wall time"
    )
    args = parser.parse_args(argv)
    clock = time.process_time if args.cpu else time.perf_counter
    rng = np.random.default_rng(0)
    chosen = [maps.Tanh(), maps.Sigmoid(), maps.Euclidean(), maps.ShiftedTanh(),
              maps.ShiftedTanh((-1.0, -0.5, 0.0, 0.5, 1.0)), maps.Softmax((-1.0, 0.0, 1.0))]
    kind = "CPU" if args.cpu else "wall"
    print(f"{kind} seconds per call, n = {args.n:.0e} floats, beta = {args.beta:g}")
    print(f"{'map':<44}" + "".join(f"{name:>11}" for name in METHODS))
    for m in chosen:
        row = calls(m, args.n, args.beta, rng)
        times = [timed(row[name], args.repeat, clock) for name in METHODS]
        print(f"{repr(m):<44}" + "".join(f"{t:>11.2f}" for t in times))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Try bad inputs on the public numpy core API and tabulate how each one is answered.

Run from the repository root::

    OMP_NUM_THREADS=1 python benchmarks/bad_input_sweep.py [--details]

Every public function of ``mdq_teach.{maps,bregman,updates,theory,toy,prox,simplex}`` is called
with valid arguments except one, which is replaced by a bad value of its kind (beta <= 0, NaN,
inf, a point outside a map's domain, a wrong shape, an unknown name, a string, None, ...). Each
call is answered in one of these ways:

* ``clear``: ValueError or TypeError whose message names the bad argument (the convention);
* ``unnamed``: an exception that does not name the argument (or is of another type);
* ``nonfinite``: no error, a result holding NaN or inf (a silent wrong answer);
* ``accepted``: no error and a finite result, for a value that should have been refused.

A second table calls the same functions with float16 and float32 inputs that are valid, and
reports whether a finite result comes back (``ok``) or an error / non-finite value (``fail``).
The cases and their verdicts live in ``mdq_support.bad_input_sweep`` (tests/test_validation.py
turns the same cases into parametrised tests).

A third table (when torch is installed) sweeps the torch part: the trainer's command line,
damaged checkpoints, data files and exported networks, and the optimizer's rounding, each answered
with a clear error, an unclear one, a traceback, or silence (``mdq_support.bad_input_sweep_train``;
tests/test_train_cli.py runs those cases).
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter
from pathlib import Path

import numpy as np

# The repository root, found from this file (not the working directory): mdq_support, the shared
# test and benchmark drivers, is not part of the installed package.
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from mdq_support.bad_input_sweep import cases, classify, low_precision_cases  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--details", action="store_true", help="print every non-clear case")
    parser.add_argument("--no-torch", action="store_true", help="skip the torch part's cases")
    args = parser.parse_args(argv)

    rows = []
    for label, arg, kind, call in cases():
        verdict, what = classify(arg, call)
        rows.append((label, arg, kind, verdict, what))
    verdicts = ("clear", "unnamed", "nonfinite", "accepted")
    by_kind = {}
    for _, _, kind, verdict, _ in rows:
        by_kind.setdefault(kind, Counter())[verdict] += 1
    print(f"bad inputs tried: {len(rows)}")
    print(f"{'bad value':<18}" + "".join(f"{v:>11}" for v in verdicts))
    for kind in sorted(by_kind):
        print(f"{kind:<18}" + "".join(f"{by_kind[kind][v]:>11}" for v in verdicts))
    total = Counter(r[3] for r in rows)
    print(f"{'total':<18}" + "".join(f"{total[v]:>11}" for v in verdicts))

    low = []
    for label, dtype, call in low_precision_cases():
        verdict, what = classify("", call)
        ok = verdict == "accepted"
        low.append((label, np.dtype(dtype).name, "ok" if ok else "fail", what))
    print(f"\nvalid float16/float32 inputs tried: {len(low)}")
    for name in ("float16", "float32"):
        c = Counter(r[2] for r in low if r[1] == name)
        print(f"{name:<10} ok {c['ok']:>4}   fail {c['fail']:>4}")

    if args.details:
        print("\nnot clear:")
        for label, arg, kind, verdict, what in rows:
            if verdict != "clear":
                print(f"  {verdict:<9} {label}({arg}={kind}): {what[:110]}")
        for label, dtype, verdict, what in low:
            if verdict != "ok":
                print(f"  {verdict:<9} {label} [{dtype}]: {what[:110]}")
    if not args.no_torch:
        torch_table(args.details)
    return 0


def torch_table(details: bool) -> None:
    """The torch part's cases (mdq_support.bad_input_sweep_train), counted by area and verdict."""
    try:
        import torch  # noqa: F401
    except ImportError:
        print("\ntorch is not installed: trainer, checkpoint, data and export cases skipped")
        return
    import tempfile

    from mdq_support import bad_input_sweep_train as sweep_train

    with tempfile.TemporaryDirectory() as tmp:
        rows = sweep_train.run_all(Path(tmp))
    verdicts = sweep_train.VERDICTS
    print(f"\ntrainer, checkpoint, data, export and optimizer cases tried: {len(rows)}")
    print(f"{'area':<12}" + "".join(f"{v:>13}" for v in verdicts))
    areas = dict.fromkeys(r[0] for r in rows)
    for area in areas:
        c = Counter(r[2] for r in rows if r[0] == area)
        print(f"{area:<12}" + "".join(f"{c[v]:>13}" for v in verdicts))
    total = Counter(r[2] for r in rows)
    print(f"{'total':<12}" + "".join(f"{total[v]:>13}" for v in verdicts))
    if details:
        print("\ntorch part, every case:")
        for area, label, verdict, what, code in rows:
            status = "" if code is None else f" [exit {code}]"
            print(f"  {verdict:<11} {area}: {label}{status}: {what[:110]}")


if __name__ == "__main__":
    raise SystemExit(main())

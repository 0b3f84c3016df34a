"""Part III's GPU runs: ``python scripts/gpu_suite.py plan | list | run --batch NAME``.

The runs, their settings and batches live in :mod:`mdq_teach.experiments.gpu_suite`; see its
docstring.
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mdq_teach.experiments.gpu_suite import main  # noqa: E402

if __name__ == "__main__":
    raise SystemExit(main())

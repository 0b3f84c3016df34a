"""Execute chapter notebooks (MyST markdown) the way the book build does, failing on any cell error.

Usage: python scripts/run_chapter.py book/03_projections.md [more chapters...]
Prints each chapter's wall time; exits non-zero on the first failing chapter.
"""

import sys
import time
from pathlib import Path

import jupytext
import nbclient

ROOT = Path(__file__).resolve().parents[1]


def run(path: Path, timeout: int = 600) -> float:
    nb = jupytext.read(path)
    start = time.perf_counter()
    # Chapters run from book/, as during `jupyter-book build`, so relative paths (results/) agree.
    nbclient.NotebookClient(
        nb,
        timeout=timeout,
        kernel_name="python3",
        resources={"metadata": {"path": str(path.parent)}},
    ).execute()
    return time.perf_counter() - start


if __name__ == "__main__":
    for arg in sys.argv[1:]:
        path = Path(arg).resolve()
        print(f"{path.relative_to(ROOT)}: {run(path):.1f} s", flush=True)

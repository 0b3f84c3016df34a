"""What the tests and the benchmarks share, and neither owns: the JupyterLab driver
(``jupyterlab_driver``, with its page scripts in ``jupyterlab_*.js``), the bad-input sweeps of
the numpy core (``bad_input_sweep``) and the torch part (``bad_input_sweep_train``), and how to
reach an explorer's controls (``explorers``).

Not part of the installed package (the wheel holds ``mdq_teach`` and ``mdq_lab`` only); pytest
finds it through ``pythonpath`` in pyproject.toml, and each benchmark puts the repository root,
found from its own file, on ``sys.path``.
"""

from __future__ import annotations

from pathlib import Path


def script(name: str, beside: str | Path = __file__) -> str:
    """The JavaScript in the file ``name`` next to the module ``beside`` (default: this package's),
    for a page to run (Playwright's ``evaluate`` takes a function's text)."""
    return Path(beside).resolve().with_name(name).read_text(encoding="utf-8").strip()

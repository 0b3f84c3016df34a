"""Set up a JupyterLab for the book: ``python -m mdq_teach.widgets.labsetup [--prefix PREFIX]``.

Run by ``make`` after installing the package (a fresh clone gets it). It installs, under the
environment's prefix,

- ``share/jupyter/lab/settings/overrides.d/mdq-teach.json``: a double-click on a ``.md`` chapter
  opens it as a notebook through jupytext, and every cell is rendered (``WINDOWING_MODE``), so
  Run All fills in every number of the prose (JupyterLab reads every file in ``overrides.d``, so a
  user's own ``overrides.json`` is left alone);
- the ``python3`` kernel with display name "Python 3", the name in the chapters' headers, so that
  running a chapter does not change its header when JupyterLab saves it;
- ``share/jupyter/labextensions/mdq-teach-citations/`` (``labcite``): each ``{cite}`` reads as in
  the book, "[Ajanthan et al., 2021]" with the reference on hover, where jupyterlab-myst would
  show "Citation Not Found". Built from ``book/references.bib``: run this again after editing it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mdq_teach.widgets import labcite

DEFAULT_VIEWERS = {"markdown": "Jupytext Notebook", "myst": "Jupytext Notebook"}
# Every cell attached to the page: with JupyterLab's default ("contentVisibility") a markdown cell
# far below the screen is not parsed yet when Run All reaches it, and jupyterlab-myst then skips
# its {eval} expressions, so the prose there keeps showing `glued("key")` instead of the number.
WINDOWING_MODE = "none"
SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": DEFAULT_VIEWERS},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": WINDOWING_MODE},
}
KERNEL_DISPLAY_NAME = "Python 3"


def settings_path(prefix: str | Path) -> Path:
    return Path(prefix, "share", "jupyter", "lab", "settings", "overrides.d", "mdq-teach.json")


def install(prefix: str | Path = sys.prefix, kernel: bool = True, citations: bool = True) -> Path:
    """Write the JupyterLab settings (the kernelspec, the citations extension) under ``prefix``;
    returns the settings file. Without the book's bibliography (an installed wheel, no
    checkout) there is nothing to cite and no citations extension."""
    path = settings_path(prefix)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(SETTINGS, indent=2) + "\n")
    tmp.replace(path)
    if kernel:
        from ipykernel.kernelspec import install as install_kernel

        install_kernel(prefix=str(prefix), kernel_name="python3", display_name=KERNEL_DISPLAY_NAME)
    if citations and labcite.BIB.is_file():
        labcite.install(prefix)
    return path


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=sys.prefix, help="environment prefix (default: here)")
    parser.add_argument("--no-kernel", action="store_true", help="no kernelspec")
    parser.add_argument("--no-citations", action="store_true", help="no citations extension")
    args = parser.parse_args(argv)
    path = install(args.prefix, kernel=not args.no_kernel, citations=not args.no_citations)
    print(f"JupyterLab settings: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

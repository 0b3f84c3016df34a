"""Set up a JupyterLab for the book: ``python -m mdq_teach.widgets.labsetup [--prefix PREFIX]``.

Run by ``make`` after installing the package (a fresh clone gets it). It installs, under the
environment's prefix,

- ``share/jupyter/lab/settings/overrides.d/mdq-teach.json``: a double-click on a ``.md`` chapter
  opens it as a notebook through jupytext, and every cell is rendered (``WINDOWING_MODE``), so
  Run All fills in every number of the prose (JupyterLab reads every file in ``overrides.d``, so a
  user's own ``overrides.json`` is left alone);
- ``etc/jupyter/jupyter_server_config.d/mdq-teach.json``: enables the server extension
  ``labserver``, with which the server sends kernel messages to the page without waiting for TCP
  acknowledgements (up to 40 ms saved on every step of a slider drag);
- ``etc/jupyter/labconfig/page_config.json`` (merged into the file if there is one): JupyterLab's
  busy tab icon is off (``QUIET_PLUGINS``). It swaps the page's favicon on every busy and idle
  status of the kernel, four per slider step, and each swap costs the page a fetch and an image
  decode: with it on, a drag across a slider showed 12-15 figure updates a second, without it
  20-25; the kernel's busy state still shows in the notebook's toolbar and status bar;
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
# A module name, not an import: the core of mdq_teach must not need jupyter_server.
SERVER_EXTENSION = "mdq_teach.widgets.labserver"
SERVER_CONFIG = {"ServerApp": {"jpserver_extensions": {SERVER_EXTENSION: True}}}
QUIET_PLUGINS = ("@jupyterlab/application-extension:faviconbusy",)


def settings_path(prefix: str | Path) -> Path:
    return Path(prefix, "share", "jupyter", "lab", "settings", "overrides.d", "mdq-teach.json")


def server_config_path(prefix: str | Path) -> Path:
    return Path(prefix, "etc", "jupyter", "jupyter_server_config.d", "mdq-teach.json")


def page_config_path(prefix: str | Path) -> Path:
    return Path(prefix, "etc", "jupyter", "labconfig", "page_config.json")


def _disable_plugins(path: Path, plugins) -> None:
    """Add ``plugins`` to the ``disabledExtensions`` of JupyterLab's page config at ``path``,
    keeping everything else the file holds (``jupyter labextension disable`` writes the same)."""
    config = json.loads(path.read_text()) if path.is_file() else {}
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    disabled = config.setdefault("disabledExtensions", {})
    if isinstance(disabled, list):  # the older list form
        disabled = config["disabledExtensions"] = {name: True for name in disabled}
    disabled.update((name, True) for name in plugins)
    _write_json(path, config)


def _write_json(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(data, indent=2) + "\n")
    tmp.replace(path)


def install(prefix: str | Path = sys.prefix, kernel: bool = True, citations: bool = True) -> Path:
    """Write the JupyterLab settings, the server's and the page's configuration (the kernelspec,
    the citations extension) under ``prefix``; returns the settings file. Without the book's
    bibliography (an installed wheel, no checkout) there is nothing to cite and no citations
    extension."""
    path = settings_path(prefix)
    _write_json(path, SETTINGS)
    _write_json(server_config_path(prefix), SERVER_CONFIG)
    _disable_plugins(page_config_path(prefix), QUIET_PLUGINS)
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

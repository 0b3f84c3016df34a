"""Set up JupyterLab for the book's chapters, and undo it exactly.

    python -m mdq_lab.install [--prefix PREFIX] [--bib BIB [--style STYLE]]
    python -m mdq_lab.install --uninstall [--prefix PREFIX] [--force]

Run by ``make``. It changes only the JupyterLab of the environment at ``PREFIX`` (default: the
running Python's), through these files under it (``CHANGES``; README.md and book/instructor.md
list the same):

- ``share/jupyter/lab/settings/overrides.d/mdq-teach.json`` (new): a double-click on a ``.md``
  file opens it as a notebook through jupytext (the chapters are ``.md``), and every cell of a
  notebook is rendered (``WINDOWING_MODE``), so Run All fills in every number of the prose;
- ``etc/jupyter/jupyter_server_config.py`` (new, or a marked block appended to the one there):
  enables the server extension ``labserver`` (kernel messages sent without Nagle's delay) only
  while ``mdq_lab`` can be imported, so a JupyterLab started after ``pip uninstall mdq-teach``
  logs no error;
- ``etc/jupyter/labconfig/page_config.json`` (new, or one entry merged into it): the busy tab
  icon is off (``QUIET_PLUGINS``; disabled, not locked: the Plugin Manager can turn it back on).
  It swaps the page's favicon on every busy and idle status of the kernel, four per slider step,
  each a fetch and an image decode: a drag showed 12-15 figure updates a second with it, 20-25
  without; the kernel's state still shows in the toolbar;
- ``share/jupyter/labextensions/mdq-teach-citations/`` (new, only with ``--bib``: it is built from
  that bibliography, e.g. ``--bib book/references.bib`` in a checkout, with the pybtex style
  ``--style``, by default ``_ext/bib_author_year.py`` next to the bibliography; run this again
  after editing either): each ``{cite}`` reads as in the book (``mdq_lab.cite``);
- ``share/mdq-teach/labsetup-manifest.json``: what each of these held before (``labmanifest``).

No kernelspec is written: the chapters' headers name the kernel as ipykernel installs it. Every
module the set-up needs is checked, and every file it merges into is read, before anything is
written; a set-up that fails while writing puts back what it changed. ``--uninstall`` restores
every file as it was before the first set-up (byte for byte) and removes what it created; a file
edited since the set-up is left as it is (and named) unless ``--force``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path

from mdq_lab import cite as labcite
from mdq_lab import manifest as labmanifest

DEFAULT_VIEWERS = {"markdown": "Jupytext Notebook"}
# Every cell attached to the page: with JupyterLab's default ("contentVisibility") a markdown cell
# far below the screen is not parsed yet when Run All reaches it, and jupyterlab-myst then skips
# its {eval} expressions, so the prose there keeps showing `glued("key")` instead of the number.
WINDOWING_MODE = "none"
SETTINGS = {
    "@jupyterlab/docmanager-extension:plugin": {"defaultViewers": DEFAULT_VIEWERS},
    "@jupyterlab/notebook-extension:tracker": {"windowingMode": WINDOWING_MODE},
}
# A module name, not an import: mdq_lab itself must not need jupyter_server to be set up.
SERVER_EXTENSION = "mdq_lab.server"
QUIET_PLUGINS = ("@jupyterlab/application-extension:faviconbusy",)
BEGIN = "# >>> mdq-teach labsetup: `python -m mdq_lab.install --uninstall` removes it\n"
END = "# <<< mdq-teach labsetup\n"
# A JSON config naming a module that is gone makes every server start log a traceback
# (ExtensionModuleNotFound); this Python config asks for the extension only while it exists.
SERVER_BLOCK = (
    BEGIN
    + "try:\n"
    + "    import importlib.util\n"
    + '    _mdq_here = importlib.util.find_spec("mdq_lab") is not None\n'
    + "except Exception:  # a broken installation counts as none\n"
    + "    _mdq_here = False\n"
    + "if _mdq_here:\n"
    + f'    c.ServerApp.jpserver_extensions.update({{"{SERVER_EXTENSION}": True}})\n'
    + END
)
# Module -> what needs it; all checked before anything is written.
REQUIRED = {
    "jupyterlab": "JupyterLab",
    "jupyter_server": "the server extension",
    "jupytext": "opening a chapter (.md) as a notebook",
    "jupyterlab_myst": "the chapters' MyST prose, {eval} and {cite}",
    "ipykernel": "the kernel that runs the chapters",
    "ipywidgets": "the explorers",
    "ipympl": "the explorers' figures",
    "anywidget": "the explorers' canvas",
}
REQUIRED_FOR_CITATIONS = {"pybtex": "the citations, formatted from the bibliography (--bib)"}
EXTRA = "pip install 'mdq-teach[widgets]'"


class MissingDependencies(RuntimeError):
    pass


def settings_path(prefix: str | Path) -> Path:
    return Path(prefix, "share", "jupyter", "lab", "settings", "overrides.d", "mdq-teach.json")


def server_config_path(prefix: str | Path) -> Path:
    return Path(prefix, "etc", "jupyter", "jupyter_server_config.py")


def page_config_path(prefix: str | Path) -> Path:
    return Path(prefix, "etc", "jupyter", "labconfig", "page_config.json")


CHANGES = (
    ("share/jupyter/lab/settings/overrides.d/mdq-teach.json", "new file"),
    ("etc/jupyter/jupyter_server_config.py", "new file, or a marked block appended"),
    ("etc/jupyter/labconfig/page_config.json", "new file, or one entry merged"),
    ("share/jupyter/labextensions/mdq-teach-citations/", "new folder, with --bib"),
    (labmanifest.MANIFEST.as_posix(), "new file: what the others held before"),
)


def _absent(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is None
    except (ImportError, ValueError):
        return True


def check_dependencies(citations: bool) -> None:
    """Raise :class:`MissingDependencies` naming every module the set-up needs and lacks."""
    need = {**REQUIRED, **(REQUIRED_FOR_CITATIONS if citations else {})}
    missing = [f"{m} ({why})" for m, why in need.items() if _absent(m)]
    if missing:
        raise MissingDependencies(
            "JupyterLab was not set up (nothing was written): missing " + ", ".join(missing)
            + f". Install them with: {EXTRA}"
        )


def _json(data: dict) -> bytes:
    return (json.dumps(data, indent=2) + "\n").encode()


def _page_config(path: Path) -> bytes:
    """JupyterLab's page config at ``path`` with ``QUIET_PLUGINS`` added to its
    ``disabledExtensions`` and everything else kept (``jupyter labextension disable`` writes the
    same)."""
    config = json.loads(path.read_text()) if path.is_file() else {}
    if not isinstance(config, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(config).__name__}")
    disabled = config.setdefault("disabledExtensions", {})
    if isinstance(disabled, list):  # the older list form
        disabled = config["disabledExtensions"] = {name: True for name in disabled}
    if "lockedExtensions" not in config:
        # Else JupyterLab's first start rewrites the file (its migration from 4.0 locks every
        # disabled plugin), and the busy icon could not be turned back on from the Plugin
        # Manager: lock what that migration would, the plugins disabled before, and say that
        # ours are not locked (JupyterLab drops an empty mapping and would migrate anyway).
        config["lockedExtensions"] = {**disabled, **dict.fromkeys(QUIET_PLUGINS, False)}
    disabled.update((name, True) for name in QUIET_PLUGINS)
    return _json(config)


def _server_config(path: Path) -> bytes:
    text = path.read_text() if path.is_file() else ""
    if BEGIN in text:  # set up before: the block is replaced, not added twice
        head, _, rest = text.partition(BEGIN)
        text = head + rest.partition(END)[2]
    if text and not text.endswith("\n"):
        text += "\n"
    return (text + SERVER_BLOCK).encode()


def plan(
    prefix: str | Path, bib: str | Path | None = None, style: str | Path | None = None
) -> dict[str, object]:
    """Path under ``prefix`` -> the state the set-up writes there (bytes, or a folder's files);
    reads what it merges into, writes nothing. The citations extension only with ``bib``."""
    prefix = Path(prefix)
    out = {
        CHANGES[0][0]: _json(SETTINGS),
        CHANGES[1][0]: _server_config(server_config_path(prefix)),
        CHANGES[2][0]: _page_config(page_config_path(prefix)),
    }
    if bib is not None:
        out[CHANGES[3][0].rstrip("/")] = labcite.files(bib, style)
    return out


def install(
    prefix: str | Path = sys.prefix, bib: str | Path | None = None, style: str | Path | None = None
) -> Path:
    """Set up JupyterLab under ``prefix`` (see the module's docstring); returns the settings file.
    The citations extension is built from the bibliography ``bib`` and the pybtex style module
    ``style`` (default: ``mdq_lab.cite.default_style(bib)``); without ``bib``, none."""
    prefix = Path(prefix)
    check_dependencies(bib is not None)
    # Missing files stop the set-up here, before anything is written.
    targets = plan(prefix, bib, style)
    manifest = labmanifest.Manifest(prefix)
    keep = [*targets, labmanifest.MANIFEST.as_posix()]
    before = {rel: labmanifest.read_state(prefix / rel) for rel in keep}
    created = [d for rel in keep for d in labmanifest.missing_dirs(prefix, rel)]
    try:
        for rel in targets:
            manifest.record(rel)
        manifest.save()  # first: a set-up stopped half-way can be undone
        for rel, state in targets.items():
            labmanifest.write_state(prefix / rel, state)
            manifest.written(rel)
        manifest.save()
    except BaseException:
        for rel, state in before.items():
            labmanifest.write_state(prefix / rel, state)
        for d in sorted(set(created), key=lambda d: d.count("/"), reverse=True):
            if (prefix / d).is_dir() and not any((prefix / d).iterdir()):
                (prefix / d).rmdir()
        raise
    return settings_path(prefix)


def uninstall(prefix: str | Path = sys.prefix, force: bool = False) -> list[str]:
    """Undo every set-up under ``prefix``; returns the files left because they were edited since
    (all are restored with ``force``)."""
    return labmanifest.Manifest(prefix).restore(force=force)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--prefix", default=sys.prefix, help="environment prefix (default: here)")
    parser.add_argument("--bib", help="bibliography (.bib) for the citations extension "
                        "(e.g. book/references.bib); without it, no citations extension")
    parser.add_argument("--style", help="pybtex style module for --bib (default: "
                        "_ext/bib_author_year.py next to the bibliography)")
    parser.add_argument("--uninstall", action="store_true", help="undo the set-up")
    parser.add_argument("--force", action="store_true",
                        help="with --uninstall: also restore files edited since the set-up")
    args = parser.parse_args(argv)
    if args.force and not args.uninstall:
        parser.error("--force goes with --uninstall")
    if args.uninstall:
        if not labmanifest.Manifest(args.prefix).exists():
            print(f"Nothing to undo: no set-up recorded under {args.prefix}")
            return 0
        left = uninstall(args.prefix, force=args.force)
        for rel in left:
            print(f"left as it is (edited since the set-up; --force restores it): {rel}",
                  file=sys.stderr)
        print("JupyterLab set-up undone" + (", except the files above" if left else ""))
        return 1 if left else 0
    if args.style and not args.bib:
        parser.error("--style goes with --bib")
    citations = args.bib is not None
    try:
        install(args.prefix, bib=args.bib, style=args.style)
    except (MissingDependencies, ValueError, FileNotFoundError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(f"JupyterLab set up under {args.prefix} (undo: python -m mdq_lab.install "
          f"--uninstall --prefix {args.prefix}):")
    for rel, what in CHANGES:
        if citations or "labextensions" not in rel:
            print(f"  {rel} ({what})")
    if not citations:
        print("No citations extension: no bibliography given ({cite} keys show as jupyterlab-myst "
              "draws them; --bib book/references.bib in a checkout adds it)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

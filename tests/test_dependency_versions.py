"""The environment holds the versions the code was written for, and JupyterLab reports no
extension as incompatible (except a report checked here to be false)."""

import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]
# Package -> the code that relies on its private internals or on the page it draws.
WRITTEN_FOR = {
    "ipywidgets": "mdq_teach/widgets/_live.py (comm messages, control forwarding)",
    "ipympl": "mdq_teach/widgets/_live.py (Canvas and FigureManager internals)",
    "jupyter-server": "mdq_lab/server.py (its kernel WebSocket connection class)",
    "jupyterlab-myst": "mdq_lab/cite.js (the DOM of an unresolved {cite})",
    "myst-nb": "book/_ext/glue_eval.py, book/_ext/offline_book.py (glue internals)",
    "sphinx-exercise": "book/_ext/pdf_book.py (its registry and LaTeX labels of exercises)",
}
# Reports of `jupyter labextension list` that are false, and why: the test checks the reason.
FALSE_REPORTS = {
    # jupyterlab-myst 2.7.0's package.json lists "@jupyter/ydoc": "^3.0.0", JupyterLab >= 4.6
    # shares @jupyter/ydoc ^4 as a singleton; its built bundle neither contains nor asks for
    # @jupyter/ydoc, so nothing of either version is loaded for it.
    ("jupyterlab-myst", "@jupyter/ydoc"),
}


def _pins() -> dict[str, set[str]]:
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]
    pins: dict[str, set[str]] = {}
    for reqs in extras.values():
        for text in reqs:
            req = Requirement(text)
            name = req.name.lower().replace("_", "-")
            if name in WRITTEN_FOR:
                pins.setdefault(name, set()).add(str(req.specifier))
    return pins


def test_every_package_whose_internals_are_used_is_pinned_with_an_upper_bound():
    pins = _pins()
    assert set(pins) == set(WRITTEN_FOR)
    for name, specs in pins.items():
        assert len(specs) == 1, f"{name}: different bounds in different extras: {specs}"
        assert any(s.operator == "<" for s in Requirement(f"x{next(iter(specs))}").specifier), name


def _outside(name: str, installed: str) -> str | None:
    """Why ``installed`` of ``name`` is not the version the code was written for, or None."""
    spec = Requirement(f"{name}{next(iter(_pins()[name]))}").specifier
    if spec.contains(Version(installed), prereleases=True):
        return None
    return (
        f"{name} {installed} is installed, but the code was written for {name}{spec}: "
        f"{WRITTEN_FOR[name]} relies on its internals. Install a version in that range "
        f"(pip install '{name}{spec}'), or check that code against {installed}, run "
        "tests/test_jupyterlab.py, and move the bound in pyproject.toml and environment.yml."
    )


@pytest.mark.parametrize("name", sorted(WRITTEN_FOR))
def test_installed_version_is_the_one_the_code_was_written_for(name):
    try:
        installed = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        pytest.skip(f"{name} is not installed")
    problem = _outside(name, installed)
    assert problem is None, problem


def test_a_version_outside_the_range_is_named_with_the_fix():
    message = _outside("ipympl", "0.11.0")
    assert message.startswith("ipympl 0.11.0 is installed, but the code was written for ipympl")
    assert "pip install 'ipympl<0.11,>=0.10'" in message
    assert _outside("ipympl", "0.10.3") is None


def _labextension_list() -> str:
    jupyter = shutil.which("jupyter", path=str(Path(sys.executable).parent))
    if jupyter is None or shutil.which("jupyter-labextension", path=str(Path(jupyter).parent)) \
            is None:
        pytest.skip("JupyterLab is not installed in this environment")
    out = subprocess.run([jupyter, "labextension", "list"], capture_output=True, text=True,
                         env={**os.environ, "NO_COLOR": "1"}, timeout=300)
    assert out.returncode == 0, out.stderr
    return re.sub(r"\x1b\[[0-9;]*m", "", out.stdout + out.stderr)


def _reports(listing: str) -> list[tuple[str, str]]:
    """(extension, package) for every conflict `jupyter labextension list` reports."""
    found = []
    blocks = re.finditer(r'"(.+?)@[^"]+" is not compatible.*?\n(?:.*\n)*?\s*\n', listing + "\n\n")
    for block in blocks:
        rows = block[0].split("Conflicting Dependencies:")[1].strip().splitlines()[1:]
        found += [(block[1], row.split()[-1]) for row in rows if row.strip()]
    assert len(found) >= listing.count("is not compatible"), listing
    return found


def _bundle(extension: str) -> str:
    from jupyter_core.paths import jupyter_path

    for base in jupyter_path("labextensions"):
        folder = Path(base, extension)
        if (folder / "package.json").is_file():
            return "".join(p.read_text(errors="replace") for p in folder.rglob("*.js"))
    raise AssertionError(f"{extension}: no labextension folder")


@pytest.mark.slow
def test_no_labextension_is_reported_incompatible():
    listing = _labextension_list()
    for extension, package in _reports(listing):
        assert (extension, package) in FALSE_REPORTS, (
            f"{extension} is not compatible with this JupyterLab ({package}):\n{listing}"
        )
        # False because the built extension never loads the package: neither bundled nor
        # requested from JupyterLab's shared modules.
        assert package not in _bundle(extension), (
            f"{extension}'s bundle uses {package}: the report is no longer false"
        )


def test_the_report_parser_reads_jupyterlab_s_format():
    listing = (
        "JupyterLab v4.6.6\n/x/share/jupyter/labextensions\n"
        "        jupyterlab-myst v2.7.0 enabled  X (python, jupyterlab_myst)\n\n\n"
        '"jupyterlab-myst@2.7.0" is not compatible with the current JupyterLab\n'
        "Conflicting Dependencies:\nJupyterLab        Extension      Package\n"
        ">=4.0.0-b1 <5.0.0>=3.0.0 <4.0.0    @jupyter/ydoc\n"
        ">=6.0.0 <7.0.0   >=5.0.0 <6.0.0    @lumino/x\n\n"
        '"other@1.0.0" is not compatible with the current JupyterLab\n'
        "Conflicting Dependencies:\nJupyterLab        Extension      Package\n"
        ">=1 <2           >=2 <3            @a/b\n"
    )
    assert _reports(listing) == [
        ("jupyterlab-myst", "@jupyter/ydoc"), ("jupyterlab-myst", "@lumino/x"), ("other", "@a/b"),
    ]

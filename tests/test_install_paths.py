"""Each way of installing says what it needs: without torch one message names the extra and the CPU
wheel; the light ``widgets`` extra covers what the JupyterLab explorers import; a non-editable
build leaves nothing for git to show."""

import ast
import importlib.metadata
import os
import re
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from mdq_teach import _torch_missing

ROOT = Path(__file__).resolve().parents[1]
# What the test's Python finds when torch is not installed: `import torch` fails as it would.
NO_TORCH = (
    "import sys\n"
    "class NoTorch:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] == 'torch':\n"
    "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
    "sys.meta_path.insert(0, NoTorch())\n"
)


def _without_torch(tmp_path, *args):
    (tmp_path / "sitecustomize.py").write_text(NO_TORCH)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(tmp_path), str(ROOT)])}
    return subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                          cwd=tmp_path)


def _says_what_to_install(text: str) -> None:
    assert "mdq-teach[torch]" in text
    assert _torch_missing.CPU_WHEEL in text


def test_import_nn_without_torch_names_the_extra_and_the_cpu_wheel(tmp_path):
    out = _without_torch(tmp_path, "-c", "import mdq_teach.nn")
    assert out.returncode == 1
    last = out.stderr[out.stderr.rindex("TorchMissing"):]
    _says_what_to_install(last)
    assert "ModuleNotFoundError: No module named 'torch'" not in out.stderr
    check = _without_torch(tmp_path, "-c", (
        "import mdq_teach._torch_missing as t\n"
        "try:\n    import mdq_teach.nn\n"
        "except ModuleNotFoundError as e:\n    print(type(e) is t.TorchMissing, e.name)\n"
    ))
    assert check.stdout.split() == ["True", "torch"]  # still a ModuleNotFoundError for torch


@pytest.mark.parametrize("args", [["--help"], ["--dataset", "cifar10"]])
def test_train_command_without_torch_ends_in_one_message(tmp_path, args):
    out = _without_torch(tmp_path, "-m", "mdq_teach.train", *args)
    assert out.returncode == 1
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: mdq_teach.nn and python -m mdq_teach.train need torch")
    _says_what_to_install(out.stderr)
    assert out.stdout == ""


def test_readme_pyproject_and_makefile_give_the_same_cpu_wheel():
    readme = (ROOT / "README.md").read_text()
    assert _torch_missing.CPU_WHEEL in readme
    assert _torch_missing.CPU_WHEEL in (ROOT / "pyproject.toml").read_text()
    pinned = re.search(r"^TORCH\s*\?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.M)[1]
    assert _torch_missing.CPU_WHEEL.split()[2] == pinned


def _extras() -> dict[str, list[str]]:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]


def _name(req: str) -> str:
    return re.match(r"[A-Za-z0-9_.\-]+", req)[0].lower().replace("_", "-").replace(".", "-")


def _imports(path: Path) -> set[str]:
    """Top-level modules ``path`` imports, except those imported inside a ``try`` that catches
    their absence (optional ones)."""
    tree = ast.parse(path.read_text())
    optional = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Try) and any(
            isinstance(h.type, ast.Name) and h.type.id in ("ImportError", "ModuleNotFoundError")
            for h in node.handlers
        ):
            optional |= {id(n) for stmt in node.body for n in ast.walk(stmt)}
    found = set()
    for node in ast.walk(tree):
        if id(node) in optional:
            continue
        if isinstance(node, ast.Import):
            found |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split(".")[0])
    return found - set(sys.stdlib_module_names) - {"mdq_teach", "mdq_lab", "__future__"}


def test_widgets_extra_covers_every_import_of_the_explorers():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    listed = {_name(r) for r in project["dependencies"] + _extras()["widgets"]}
    # What a listed package itself requires comes with it (IPython with ipykernel, ...).
    brought = set()
    for name in listed:
        try:
            requires = importlib.metadata.requires(name) or []
        except importlib.metadata.PackageNotFoundError:
            continue
        brought |= {_name(r) for r in requires if "extra ==" not in r}
    dists = importlib.metadata.packages_distributions()
    # The explorers, the JupyterLab set-up they come with, and glue, which the chapters import.
    sources = sorted((ROOT / "mdq_teach" / "widgets").glob("*.py"))
    sources += sorted((ROOT / "mdq_lab").glob("*.py")) + [ROOT / "mdq_teach" / "glue.py"]
    assert len(sources) >= 12
    uncovered = {}
    for path in sources:
        for module in _imports(path):
            names = {_name(d) for d in dists.get(module, [module])}
            if not names & (listed | brought):
                uncovered[f"{path.name}: {module}"] = sorted(names)
    assert uncovered == {}, "add these to the widgets extra in pyproject.toml"
    # Nothing of the book's Sphinx tool chain.
    assert not {"jupyter-book", "sphinx", "myst-nb"} & listed


def test_book_extra_has_every_widgets_requirement_with_the_same_bounds():
    extras = _extras()
    book = {_name(r): r.replace(" ", "") for r in extras["book"]}
    for req in extras["widgets"]:
        assert book.get(_name(req)) == req.replace(" ", ""), req


def test_glue_works_without_myst_nb(monkeypatch, capsys):
    from mdq_teach import glue

    monkeypatch.setitem(sys.modules, "myst_nb", None)  # `import myst_nb` now fails
    glue.glue("k-widgets", 0.25)
    assert glue.glued("k-widgets:.1%") == "25.0%"
    assert capsys.readouterr().out.strip() == "0.25"  # shown, as myst-nb's glue shows it
    glue.glue("k-hidden", 3, display=False)
    assert capsys.readouterr().out == ""


@pytest.mark.skipif(shutil.which("git") is None, reason="no git")
def test_build_outputs_are_ignored_by_git():
    inside = subprocess.run(["git", "rev-parse", "--is-inside-work-tree"], cwd=ROOT,
                            capture_output=True, text=True)
    if inside.stdout.strip() != "true":
        pytest.skip("not a git checkout")
    paths = ["build/lib/mdq_teach/maps.py", "build/bdist.linux-x86_64", "dist/mdq_teach-0.1.0.whl",
             "mdq_teach.egg-info/PKG-INFO"]
    out = subprocess.run(["git", "check-ignore", "--no-index", *paths], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.stdout.split() == paths
    # Only the top level: a folder called build/ inside the package would still be tracked.
    out = subprocess.run(["git", "check-ignore", "--no-index", "mdq_teach/build/x.py"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 1

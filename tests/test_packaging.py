"""The repository's set-up files agree with each other and the core imports without torch."""

import re
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
# conda-forge names that differ from PyPI's.
CONDA_TO_PYPI = {"pytorch": "torch"}


def _split(req: str) -> tuple[str, str]:
    name = re.match(r"[A-Za-z0-9_.\-]+", req.strip()).group(0)
    return name.lower().replace("_", "-"), req.strip()[len(name) :].replace(" ", "")


def test_environment_yml_lists_the_same_requirements_as_pyproject():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    pyproject = dict(_split(r) for r in project["dependencies"])
    for extra in project["optional-dependencies"].values():
        pyproject.update(_split(r) for r in extra)

    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    conda = {}
    for dep in env["dependencies"]:
        for req in dep["pip"] if isinstance(dep, dict) else [dep]:
            name, spec = _split(req)
            if name in ("python", "pip"):
                continue
            conda[CONDA_TO_PYPI.get(name, name)] = spec
    assert conda == pyproject


def test_core_imports_without_torch():
    # A meta-path hook makes `import torch` fail, as on a machine without it.
    code = (
        "import sys\n"
        "class Block:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name == 'torch' or name.startswith('torch.'):\n"
        "            raise ImportError('torch is blocked for this test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import mdq_teach, pkgutil, importlib\n"
        "for m in pkgutil.walk_packages(mdq_teach.__path__, 'mdq_teach.'):\n"
        "    if not m.name.startswith(('mdq_teach.nn', 'mdq_teach.train')):\n"
        "        importlib.import_module(m.name)\n"
        "assert 'torch' not in sys.modules\n"
        "print('ok')\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_ci_runs_exactly_the_readme_test_command():
    ci = (ROOT / ".ci" / "run").read_text()
    readme = (ROOT / "README.md").read_text()
    assert re.search(r"^make test$", ci, re.M)
    assert "make test" in readme and "make book" in readme


def test_every_chapter_is_in_the_table_of_contents():
    toc = yaml.safe_load((ROOT / "_toc.yml").read_text())
    listed = {c["file"] for part in toc["parts"] for c in part["chapters"]}
    chapters = {f"book/{p.stem}" for p in (ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert chapters <= listed, f"chapters missing from _toc.yml: {sorted(chapters - listed)}"


def test_design_document_exists_and_every_citation_names_one_of_its_sections():
    design = (ROOT / "docs" / "design.md").read_text()
    sections = set(re.findall(r"^## (\d+)\. ", design, re.M))
    assert {"1", "2", "3", "4", "5", "6"} <= sections
    cited = []
    for path in sorted((ROOT / "mdq_teach").rglob("*.py")):
        text = path.read_text()
        assert "DESIGN.md" not in text, f"{path.name} cites DESIGN.md, which is docs/design.md"
        cited += [(path.name, n) for n in re.findall(r"docs/design\.md §(\d+)", text)]
    assert cited, "the code cites the design document by section"
    assert [c for c in cited if c[1] not in sections] == []
    assert "docs/design.md" in (ROOT / "README.md").read_text()


def test_the_wheel_ships_the_javascript_the_packages_read_and_no_support_code(tmp_path):
    """Every .js file inside mdq_teach/ and mdq_lab/ is read at run time (the web canvas, the
    citations extension), so the wheel must carry it; mdq_support, tests and benchmarks stay out."""
    import shutil
    import zipfile

    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "MANIFEST.in"):
        shutil.copy(ROOT / name, src / name)
    for package in ("mdq_teach", "mdq_lab", "mdq_support"):
        shutil.copytree(ROOT / package, src / package,
                        ignore=shutil.ignore_patterns("__pycache__", "_build.json"))
    out = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "--disable-pip-version-check", "-w", str(tmp_path / "dist"), str(src)],
        capture_output=True, text=True,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    shipped_js = {p.relative_to(ROOT).as_posix()
                  for package in ("mdq_teach", "mdq_lab") for p in (ROOT / package).rglob("*.js")}
    assert {"mdq_teach/widgets/web_canvas.js", "mdq_lab/cite.js"} <= shipped_js
    assert shipped_js <= names, sorted(shipped_js - names)
    tops = {n.split("/")[0] for n in names}
    assert not tops & {"mdq_support", "tests", "benchmarks", "book"}, sorted(tops)


def _imports(path: Path) -> set[str]:
    """Every module ``path`` imports (at any depth: lazy imports count too)."""
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
    return found


def test_the_packages_import_as_docs_design_draws_them():
    """docs/design.md §2's picture: the core imports none of widgets, nn, experiments, mdq_lab;
    widgets and nn not each other; mdq_lab nothing of mdq_teach; no shipped module mdq_support."""
    def imports_of(folder, *, recursive=True):
        files = (ROOT / folder).rglob("*.py") if recursive else (ROOT / folder).glob("*.py")
        return {p.relative_to(ROOT).as_posix(): _imports(p) for p in files}

    def hits(modules, forbidden):
        return sorted(f"{path} imports {m}" for path, found in modules.items() for m in found
                      if any(m == f or m.startswith(f + ".") for f in forbidden))

    core = imports_of("mdq_teach", recursive=False)
    # _torch_missing.py tries torch to say what to install when it is absent.
    assert hits({k: v for k, v in core.items() if k != "mdq_teach/_torch_missing.py"},
                ("mdq_teach.widgets", "mdq_teach.experiments", "mdq_lab", "torch")) == []
    # train.py is the command line of nn/trainer.py, loaded when it runs.
    assert hits({k: v for k, v in core.items() if k != "mdq_teach/train.py"},
                ("mdq_teach.nn",)) == []
    assert hits(imports_of("mdq_teach/widgets"),
                ("mdq_teach.nn", "mdq_teach.experiments", "torch", "mdq_lab")) == []
    assert hits(imports_of("mdq_teach/nn"), ("mdq_teach.widgets", "mdq_teach.experiments")) == []
    assert hits(imports_of("mdq_lab"), ("mdq_teach",)) == []
    shipped = {**imports_of("mdq_teach"), **imports_of("mdq_lab")}
    assert hits(shipped, ("mdq_support", "tests", "benchmarks")) == []

"""Sphinx extension: the book serves the wheel and source archive of `mdq_teach`, built with it.

Every chapter imports `mdq_teach`; a reader of the built book (from a web server or a folder) gets
the package from the book itself. At `config-inited` this extension

- copies the repository's sources (not `.git`, `.venv`, `_build`, `node_modules`, data) into a
  temporary folder, writes `mdq_teach/_build.json` there (version and git commit of this build),
- calls setuptools' PEP 517 hooks in that folder with this Python (no build isolation, no network;
  the `book` extra requires a setuptools that builds wheels itself): the source archive
  (`MANIFEST.in` puts the book's sources in it, so `make book` runs from it) and the wheel,
- puts both, with `mdq_teach-build.json` (version, commit, file names, sha256), in
  `_build/html/_downloads/mdq_teach/`,
- sets MyST substitutions that `book/index.md` uses: links to the two files relative to the index
  page (the book is read from file:// and from a server), the install commands, the commit, and
  how to get the sources: `git clone` when `_config.yml` names a repository (`repository.url` with
  `html.use_repository_button`), otherwise the source archive.
"""

import hashlib
import json
import os
import posixpath
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

PACKAGE = "mdq_teach"
DOWNLOADS = "_downloads/mdq_teach"
BUILD_INFO = "mdq_teach-build.json"
TORCH_CPU = "pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
# Not copied into the build folder: git's data, environments, build outputs, data sets, caches.
SKIP = (
    ".git", ".venv", "_build", "node_modules", "data", "runs", "build", "dist", ".whl",
    "__pycache__", "*.egg-info", ".pytest_cache", ".hypothesis", ".ruff_cache",
    ".ipynb_checkpoints", ".jupyter_cache",
)
HOOKS = (
    "import sys\n"
    "from setuptools import build_meta as b\n"
    "out = sys.argv[1]\n"
    "names = [b.build_sdist(out), b.build_wheel(out)]\n"
    "print('MDQ-BUILT', *names)\n"
)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=root, capture_output=True, text=True, timeout=60
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def source_commit(root: Path) -> tuple[str, bool]:
    """The git commit of the checkout and whether it has uncommitted changes (the run records'
    MDQ_GIT_COMMIT / MDQ_GIT_DIRTY where there is no .git, e.g. in an unpacked source archive)."""
    commit = _git(root, "rev-parse", "HEAD")
    if commit:
        status = _git(root, "status", "--porcelain")  # untracked files go into the archive too
        return commit, bool(status)
    if "MDQ_GIT_COMMIT" in os.environ:
        return os.environ["MDQ_GIT_COMMIT"], os.environ.get("MDQ_GIT_DIRTY") == "1"
    # An unpacked source archive the book served carries the commit it was built from.
    try:
        info = json.loads((root / PACKAGE / "_build.json").read_text())
        return info["commit"], bool(info["dirty"])
    except (OSError, ValueError, KeyError):
        return "unknown", False


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_package(root: Path, dest: Path) -> dict:
    """Build the source archive and wheel of the checkout at `root` into `dest`; return the record
    written beside them as mdq_teach-build.json."""
    commit, dirty = source_commit(root)
    with tempfile.TemporaryDirectory(prefix="mdq-package-") as tmp:
        src = Path(tmp, "src")
        shutil.copytree(root, src, ignore=shutil.ignore_patterns(*SKIP), symlinks=True)
        out = Path(tmp, "out")
        out.mkdir()
        # The commit travels inside the package, so an installed wheel says where it came from.
        info = {"commit": commit, "dirty": dirty}
        (src / PACKAGE / "_build.json").write_text(json.dumps(info) + "\n")
        run = subprocess.run(
            [sys.executable, "-c", HOOKS, str(out)], cwd=src, capture_output=True, text=True
        )
        if run.returncode != 0:
            raise ExtensionError(
                "Building the mdq_teach wheel and source archive failed (setuptools>=70.1 is "
                "needed in the book's environment: pip install -e '.[book]'):\n"
                + run.stdout[-3000:] + run.stderr[-3000:]
            )
        built = [line for line in run.stdout.splitlines() if line.startswith("MDQ-BUILT ")]
        sdist_name, wheel_name = built[-1].split()[1:]
        version = wheel_name.split("-")[1]
        if dest.exists():
            shutil.rmtree(dest)
        dest.mkdir(parents=True)
        for name in (sdist_name, wheel_name):
            shutil.copy2(out / name, dest / name)
    record = {
        "package": PACKAGE,
        "version": version,
        "commit": commit,
        "dirty": dirty,
        "wheel": wheel_name,
        "sdist": sdist_name,
        "sha256": {n: _sha256(dest / n) for n in (wheel_name, sdist_name)},
    }
    (dest / BUILD_INFO).write_text(json.dumps(record, indent=2) + "\n")
    return record


def repository_url(config) -> str | None:
    """The public repository named in _config.yml (`repository.url`), when the repository button
    is on; None otherwise (no address is made up)."""
    options = config.html_theme_options or {}
    url = options.get("repository_url")
    return url if url and options.get("use_repository_button") else None


def substitutions(record: dict, root_doc: str, repo: str | None) -> dict:
    base = posixpath.dirname(root_doc)

    def href(name: str) -> str:
        return posixpath.relpath(f"{DOWNLOADS}/{name}", base or ".")

    wheel, sdist = record["wheel"], record["sdist"]
    commit = record["commit"][:12] + (" with uncommitted changes" if record["dirty"] else "")
    if repo:
        get_source = f"```bash\ngit clone {repo} mdq-teach && cd mdq-teach\n"
        source_clause = f"the repository, {repo}"
    else:
        folder = sdist.removesuffix(".tar.gz")
        get_source = f"```bash\ntar xzf {sdist} && cd {folder}\n"
        source_clause = "the source archive above"
    return {
        "mdq_wheel_link": f'<a class="mdq-download" href="{href(wheel)}" download>{wheel}</a>',
        "mdq_sdist_link": f'<a class="mdq-download" href="{href(sdist)}" download>{sdist}</a>',
        "mdq_build_link": f'<a href="{href(BUILD_INFO)}">{BUILD_INFO}</a>',
        "mdq_commit": f"`{commit}`",
        "mdq_version": record["version"],
        "mdq_install_core": f"`pip install {wheel}`",
        "mdq_install": f'```bash\n{TORCH_CPU}\npip install "{wheel}[torch]"\n```',
        "mdq_get_source": get_source
        + "make book   # set-up, then execute every chapter into _build/html\n"
        + "make test   # set-up and book, then the tests (a browser test too)\n```",
        "mdq_source_clause": source_clause,
    }


def package_at_config(app: Sphinx, config) -> None:
    dest = Path(app.outdir) / DOWNLOADS
    record = build_package(Path(app.confdir), dest)
    logger.info(f"mdq_teach: {record['wheel']} and {record['sdist']} in {dest}")
    subs = dict(config.myst_substitutions or {})
    subs.update(substitutions(record, config.root_doc, repository_url(config)))
    config.myst_substitutions = subs


def setup(app: Sphinx) -> dict:
    # After jupyter-book and the theme have set html_theme_options.
    app.connect("config-inited", package_at_config, priority=900)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

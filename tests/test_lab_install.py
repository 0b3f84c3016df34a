"""`python -m mdq_lab.install` can be trusted: it checks before it writes, writes only
the files it lists, and `--uninstall` gives the environment back byte for byte; a JupyterLab
started after the package is gone logs no error."""

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from mdq_lab import install as labsetup
from mdq_lab import manifest as labmanifest

ROOT = Path(__file__).resolve().parents[1]
BIB = ROOT / "book" / "references.bib"
# A user's own configuration, which the set-up merges into and must give back unchanged.
USER_FILES = {
    "etc/jupyter/labconfig/page_config.json": b'{"disabledExtensions": {"their:plugin": true}}',
    "etc/jupyter/jupyter_server_config.py": b"c.ServerApp.shutdown_no_activity_timeout = 7",
    "share/jupyter/lab/settings/overrides.json": b'{"theirs": 1}\n',
    "share/jupyter/kernels/python3/kernel.json": b'{"display_name": "Their Python"}\n',
}


def tree(prefix: Path) -> dict:
    """Every file and folder under ``prefix``: its bytes (None for a folder) and mode."""
    out = {}
    for p in sorted(prefix.rglob("*")):
        out[p.relative_to(prefix).as_posix()] = (
            None if p.is_dir() else p.read_bytes(), p.stat().st_mode
        )
    return out


def _user_prefix(tmp_path: Path) -> Path:
    prefix = tmp_path / "env"
    for rel, data in USER_FILES.items():
        (prefix / rel).parent.mkdir(parents=True, exist_ok=True)
        (prefix / rel).write_bytes(data)
    os.chmod(prefix / "etc/jupyter/jupyter_server_config.py", 0o600)
    (prefix / "bin").mkdir()
    return prefix


@pytest.mark.parametrize("start", ["empty", "user files"])
def test_uninstall_gives_back_the_prefix_byte_for_byte(tmp_path, start):
    if start == "empty":
        prefix = tmp_path / "env"
        prefix.mkdir()
    else:
        prefix = _user_prefix(tmp_path)
    before = tree(prefix)
    labsetup.install(prefix, bib=BIB)
    labsetup.install(prefix, bib=BIB)  # make runs it again when its inputs change
    during = tree(prefix)
    written = {rel.rstrip("/") for rel, _ in labsetup.CHANGES}
    changed = {rel for rel in during if during[rel] != before.get(rel)}
    # Nothing outside the listed files (and the folders above them) changed.
    assert {r for r in changed if during[r][0] is not None and not any(
        r == w or r.startswith(w + "/") for w in written)} == set()
    if start == "user files":
        page = json.loads((prefix / "etc/jupyter/labconfig/page_config.json").read_text())
        assert page["disabledExtensions"]["their:plugin"] is True
        server = (prefix / "etc/jupyter/jupyter_server_config.py").read_text()
        assert server.startswith(USER_FILES["etc/jupyter/jupyter_server_config.py"].decode())
        assert server.count(labsetup.BEGIN) == 1
        assert during["share/jupyter/kernels/python3/kernel.json"] == before[
            "share/jupyter/kernels/python3/kernel.json"]
    assert labsetup.main(["--uninstall", "--prefix", str(prefix)]) == 0
    assert tree(prefix) == before


def test_the_busy_icon_is_disabled_not_locked(tmp_path):
    """JupyterLab locks every disabled plugin of a page config without "lockedExtensions" on its
    first start (its migration from 4.0), rewriting the file: then --uninstall would find it
    edited, and the Plugin Manager could not turn the icon back on."""
    prefix = _user_prefix(tmp_path)
    labsetup.install(prefix)
    page = json.loads((prefix / "etc/jupyter/labconfig/page_config.json").read_text())
    assert page["lockedExtensions"] == {
        "their:plugin": True, **dict.fromkeys(labsetup.QUIET_PLUGINS, False)}
    pytest.importorskip("jupyter_server")
    from jupyter_server.config_manager import recursive_update

    seen = {}  # as JupyterLab reads it: an empty mapping would be dropped
    recursive_update(seen, page)
    assert "lockedExtensions" in seen
    assert set(labsetup.QUIET_PLUGINS) <= set(page["disabledExtensions"])


def test_uninstall_leaves_a_file_edited_since_and_force_restores_it(tmp_path, capsys):
    prefix = _user_prefix(tmp_path)
    before = tree(prefix)
    labsetup.install(prefix)
    page = prefix / "etc/jupyter/labconfig/page_config.json"
    page.write_text('{"edited": "by the teacher"}')
    assert labsetup.main(["--uninstall", "--prefix", str(prefix)]) == 1
    assert "etc/jupyter/labconfig/page_config.json" in capsys.readouterr().err
    assert page.read_text() == '{"edited": "by the teacher"}'
    assert not labsetup.settings_path(prefix).exists()  # the rest is undone
    assert labsetup.main(["--uninstall", "--force", "--prefix", str(prefix)]) == 0
    assert tree(prefix) == before
    assert labsetup.main(["--uninstall", "--prefix", str(prefix)]) == 0  # nothing to undo
    with pytest.raises(SystemExit):
        labsetup.main(["--force", "--prefix", str(prefix)])
    assert tree(prefix) == before


def test_missing_dependencies_are_named_before_anything_is_written(tmp_path, monkeypatch):
    prefix = _user_prefix(tmp_path)
    before = tree(prefix)
    monkeypatch.setattr(labsetup, "_absent", lambda m: m in ("ipykernel", "jupytext"))
    with pytest.raises(labsetup.MissingDependencies) as err:
        labsetup.install(prefix, bib=BIB)
    message = str(err.value)
    assert "nothing was written" in message and labsetup.EXTRA in message
    assert "ipykernel (the kernel" in message and "jupytext (opening" in message
    assert tree(prefix) == before


def test_without_ipykernel_the_command_stops_with_one_message(tmp_path):
    prefix = _user_prefix(tmp_path)
    before = tree(prefix)
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "sitecustomize.py").write_text(
        "import sys\n"
        "class Gone:\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'ipykernel':\n"
        "            raise ModuleNotFoundError(f'No module named {name!r}', name=name)\n"
        "sys.meta_path.insert(0, Gone())\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(hide), str(ROOT)])}
    out = subprocess.run(
        [sys.executable, "-m", "mdq_lab.install", "--prefix", str(prefix)],
        capture_output=True, text=True, env=env,
    )
    assert out.returncode == 2
    assert "Traceback" not in out.stderr
    assert out.stderr.startswith("error: JupyterLab was not set up (nothing was written)")
    assert "ipykernel" in out.stderr and labsetup.EXTRA in out.stderr
    assert tree(prefix) == before


def test_a_bad_file_to_merge_into_stops_the_setup_before_it_writes(tmp_path):
    prefix = _user_prefix(tmp_path)
    (prefix / "etc/jupyter/labconfig/page_config.json").write_text("[1, 2]")
    before = tree(prefix)
    with pytest.raises(ValueError, match="must hold a JSON object"):
        labsetup.install(prefix, bib=BIB)
    assert tree(prefix) == before


def test_a_setup_that_fails_while_writing_puts_back_what_it_changed(tmp_path, monkeypatch):
    prefix = _user_prefix(tmp_path)
    labsetup.install(prefix)  # an earlier set-up, kept as it was
    before = tree(prefix)
    write, calls = labmanifest.write_state, []

    def fail_on_third(path, state):
        calls.append(path)
        if len(calls) == 3:
            raise OSError("disk full")
        write(path, state)

    monkeypatch.setattr(labmanifest, "write_state", fail_on_third)
    with pytest.raises(OSError, match="disk full"):
        labsetup.install(prefix, bib=BIB)
    monkeypatch.setattr(labmanifest, "write_state", write)
    assert tree(prefix) == before
    labsetup.uninstall(prefix)
    assert not (prefix / labmanifest.MANIFEST).exists()


def test_readme_and_instructor_page_list_every_change():
    readme = (ROOT / "README.md").read_text()
    instructor = (ROOT / "book" / "instructor.md").read_text()
    for rel, _ in labsetup.CHANGES:
        assert rel in readme, rel
        assert rel in instructor, rel
    for text in (readme, instructor):
        assert "--uninstall" in text
    # The set-up's own list is the one its docstring gives.
    listed = re.findall(r"^- ``([^`]+)``", labsetup.__doc__, re.M)
    assert listed == [rel for rel, _ in labsetup.CHANGES]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _server_log(tmp_path: Path, prefix: Path, pythonpath: str) -> str:
    """The log of a Jupyter server started with ``prefix``'s configuration until it runs."""
    log = tmp_path / f"server-{len(list(tmp_path.glob('server-*')))}.log"
    env = {
        **os.environ,
        "PYTHONPATH": pythonpath,
        "JUPYTER_CONFIG_PATH": str(prefix / "etc" / "jupyter"),
        "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime"),
    }
    cmd = [str(Path(sys.executable).parent / "jupyter-server"), "--no-browser",
           "--ServerApp.ip=127.0.0.1", f"--ServerApp.port={_free_port()}",
           "--ServerApp.port_retries=0", f"--ServerApp.root_dir={tmp_path}"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        cmd.append("--allow-root")
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.monotonic() + 90
        while "is running at" not in log.read_text() and time.monotonic() < deadline:
            assert proc.poll() is None, log.read_text()[-3000:]
            time.sleep(0.3)
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    return log.read_text()


@pytest.mark.slow
def test_server_loads_the_extension_and_starts_cleanly_once_the_package_is_gone(tmp_path):
    if shutil.which("jupyter-server", path=str(Path(sys.executable).parent)) is None:
        pytest.skip("jupyter_server is not installed in this environment")
    prefix = tmp_path / "env"
    prefix.mkdir()
    labsetup.install(prefix)
    log = _server_log(tmp_path, prefix, str(ROOT))
    assert f"{labsetup.SERVER_EXTENSION} | extension was successfully loaded" in log, log[-3000:]
    # As after `pip uninstall mdq-teach`: mdq_teach cannot be found (here: taken off sys.path and
    # its editable-install finder removed) while the set-up's files stay.
    gone = tmp_path / "gone"
    gone.mkdir()
    (gone / "sitecustomize.py").write_text(
        "import os, sys\n"
        "sys.meta_path[:] = [f for f in sys.meta_path\n"
        "                    if not str(getattr(f, '__module__', '')).startswith('__editable__')]\n"
        "sys.path[:] = [p for p in sys.path\n"
        "               if not os.path.isdir(os.path.join(p or '.', 'mdq_teach'))]\n"
    )
    check = subprocess.run(
        [sys.executable, "-c", "import importlib.util as u; print(u.find_spec('mdq_teach'))"],
        capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(gone)},
        cwd=tmp_path,
    )
    assert check.stdout.strip() == "None", check.stdout + check.stderr
    log = _server_log(tmp_path, prefix, str(gone))
    assert "is running at" in log, log[-3000:]
    for bad in ("Traceback", "ExtensionModuleNotFound", "error adding extension", "mdq_teach"):
        assert bad not in log, log[-3000:]

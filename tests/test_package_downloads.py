"""The built book serves the wheel and source archive of mdq_teach, built from the book's commit.

book/_ext/package_downloads.py builds both during the book build into
_build/html/_downloads/mdq_teach/ with mdq_teach-build.json (version, commit, sha256); the index
page links them by relative URLs and shows the install commands. Needs the built book (`make test`
builds it first) and, for the link test, Chromium at /usr/bin/chromium (or $MDQ_CHROMIUM).
"""

import functools
import hashlib
import http.server
import json
import os
import subprocess
import sys
import tarfile
import threading
from pathlib import Path
from types import SimpleNamespace

import pytest

from mdq_support.jupyterlab_driver import CHROMIUM_ARGS

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
DOWNLOADS = HTML / "_downloads" / "mdq_teach"
INDEX = HTML / "book" / "index.html"
CHROMIUM = os.environ.get("MDQ_CHROMIUM", "/usr/bin/chromium")

sys.path.insert(0, str(ROOT / "book" / "_ext"))
import package_downloads  # noqa: E402


def test_index_names_the_repository_only_when_one_is_configured():
    record = {"version": "0.1.0", "commit": "a" * 40, "dirty": False,
              "wheel": "mdq_teach-0.1.0-py3-none-any.whl", "sdist": "mdq_teach-0.1.0.tar.gz"}
    none = package_downloads.substitutions(record, "book/index", None)
    assert none["mdq_source_clause"] == "the source archive above"
    assert "tar xzf mdq_teach-0.1.0.tar.gz && cd mdq_teach-0.1.0" in none["mdq_get_source"]
    assert "git clone" not in none["mdq_get_source"]
    assert 'href="../_downloads/mdq_teach/mdq_teach-0.1.0-py3-none-any.whl"' in (
        none["mdq_wheel_link"]
    )
    assert 'pip install "mdq_teach-0.1.0-py3-none-any.whl[torch]"' in none["mdq_install"]
    assert "--index-url https://download.pytorch.org/whl/cpu" in none["mdq_install"]

    url = "https://example.org/mdq-teach"
    repo = package_downloads.substitutions(record, "book/index", url)
    assert f"git clone {url} mdq-teach" in repo["mdq_get_source"]
    assert url in repo["mdq_source_clause"]
    # The button's switch decides, not the address alone.
    def config(**options):
        return SimpleNamespace(html_theme_options=options)

    assert package_downloads.repository_url(config(repository_url=url)) is None
    assert package_downloads.repository_url(
        config(repository_url=url, use_repository_button=True)
    ) == url
    # This repository's _config.yml names none today, so no address is shown.
    import yaml

    book = yaml.safe_load((ROOT / "_config.yml").read_text())
    if not book.get("repository", {}).get("url"):
        assert not book["html"].get("use_repository_button")


@pytest.fixture(scope="module")
def record() -> dict:
    path = DOWNLOADS / package_downloads.BUILD_INFO
    if not path.is_file():
        pytest.fail(f"{path} is missing: build the book first (`make book`)")
    return json.loads(path.read_text())


def test_the_book_serves_the_wheel_and_the_source_archive(record):
    for name in (record["wheel"], record["sdist"]):
        data = (DOWNLOADS / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"][name]
    assert record["wheel"] == f"mdq_teach-{record['version']}-py3-none-any.whl"
    with tarfile.open(DOWNLOADS / record["sdist"]) as tar:
        names = set(tar.getnames())
    top = record["sdist"].removesuffix(".tar.gz")
    # The index says `make book` runs from the unpacked archive: the book's sources are in it.
    for path in ("pyproject.toml", "Makefile", "_config.yml", "_toc.yml", "package-lock.json",
                 "book/index.md", "book/_ext/package_downloads.py", "mdq_teach/__init__.py",
                 "mdq_teach/_build.json"):
        assert f"{top}/{path}" in names, path


def test_the_build_record_names_the_book_commit(record):
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True)
    if head.returncode != 0:
        pytest.skip("not a git checkout")
    if record["dirty"]:
        # Built from uncommitted changes on top of that commit: it is at least in this history.
        ancestor = subprocess.run(
            ["git", "merge-base", "--is-ancestor", record["commit"], "HEAD"], cwd=ROOT
        )
        assert ancestor.returncode == 0
    else:
        assert record["commit"] == head.stdout.strip()
    page = INDEX.read_text()
    assert record["commit"][:12] in page


def test_the_wheel_installs_into_a_fresh_venv_and_says_where_it_came_from(record, tmp_path):
    venv = tmp_path / "venv"
    # The fresh environment alone: not the checkout that PYTHONPATH may name.
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    # The index's command, in the download folder (no dependencies: offline, and fast).
    install = subprocess.run(
        [str(venv / "bin" / "pip"), "install", "-q", "--disable-pip-version-check", "--no-deps",
         f"{record['wheel']}[torch]"],
        cwd=DOWNLOADS, capture_output=True, text=True, env=env,
    )
    assert install.returncode == 0, install.stderr
    code = (
        "import json, importlib.metadata, importlib.resources, mdq_teach\n"
        "info = json.loads(importlib.resources.files('mdq_teach').joinpath('_build.json')"
        ".read_text())\n"
        "print(json.dumps({'version': mdq_teach.__version__, "
        "'dist': importlib.metadata.version('mdq-teach'), 'file': mdq_teach.__file__, **info}))\n"
    )
    out = subprocess.run([str(venv / "bin" / "python"), "-c", code], cwd=tmp_path,
                         capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout)
    assert got["file"].startswith(str(venv))
    assert got["version"] == got["dist"] == record["version"]
    assert (got["commit"], got["dirty"]) == (record["commit"], record["dirty"])


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def test_the_index_links_resolve_in_chromium_from_a_folder_and_a_server(record):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Quiet, directory=str(HTML))
    )
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    wanted = {record["wheel"], record["sdist"]}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                context = browser.new_context(accept_downloads=True)
                page = context.new_page()
                # From a folder: each link's target is the served file.
                page.goto(INDEX.as_uri())
                hrefs = page.eval_on_selector_all(
                    "a.mdq-download", "els => els.map(e => e.href)"
                )
                local = {Path(h.removeprefix("file://")).resolve() for h in hrefs}
                assert local == {(DOWNLOADS / n).resolve() for n in wanted}
                # From a server: clicking the wheel's link downloads exactly the served wheel.
                base = f"http://127.0.0.1:{httpd.server_address[1]}"
                page.goto(f"{base}/book/index.html")
                with page.expect_download() as info:
                    page.click(f"a.mdq-download:text('{record['wheel']}')")
                download = info.value
                assert download.suggested_filename == record["wheel"]
                data = Path(download.path()).read_bytes()
                assert hashlib.sha256(data).hexdigest() == record["sha256"][record["wheel"]]
                for href in page.eval_on_selector_all(
                    "a.mdq-download", "els => els.map(e => e.href)"
                ):
                    resp = context.request.get(href)
                    name = href.rsplit("/", 1)[1]
                    assert resp.status == 200, href
                    assert hashlib.sha256(resp.body()).hexdigest() == record["sha256"][name]
                text = page.inner_text("main")
                assert f'pip install "{record["wheel"]}[torch]"' in text
                assert "pip install torch==2.13.0 --index-url" in text
                assert record["commit"][:12] in text
            finally:
                browser.close()
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()

"""A real JupyterLab from this environment, driven by Debian's Chromium: chapters open as notebooks
on double-click, run without errors, their prose shows numbers and formulas (no glue key, no
unevaluated {eval}, no formula KaTeX or MathJax could not typeset, no "Citation Not Found": each
{cite} reads as in the book), every explorer control changes the figure, saving does not rewrite
the chapter, and a downloaded executed .ipynb works in plain JupyterLab too.

Chapter 9's Fashion-MNIST training (a cell calling ``train(``) is not run: the test runs the cells
up to the explorer there, so ``make test`` stays short. Timing lives in
``benchmarks/widget_latency_lab.py``, not here.
"""

import re
import shutil
import sys
import threading
from pathlib import Path

import pytest

from mdq_lab import cite as labcite  # noqa: E402
from mdq_support import jupyterlab_driver as lab_driver
from mdq_support import script

pytestmark = pytest.mark.slow

ROOT = lab_driver.ROOT
BIB = ROOT / "book" / "references.bib"
sync_api = pytest.importorskip("playwright.sync_api")
if not Path(lab_driver.CHROMIUM).exists():
    pytest.skip(
        f"{lab_driver.CHROMIUM} missing (apt-get install -y chromium)", allow_module_level=True
    )
if shutil.which("jupyter-lab", path=str(Path(sys.executable).parent)) is None:
    pytest.skip("jupyter-lab is not installed in this environment", allow_module_level=True)


def _explorer_cell(cells) -> int:
    found = [i for i, c in enumerate(cells) if c["type"] == "code" and "explorer(" in c["source"]]
    assert found, "no explorer cell"
    return found[-1]


def _heavy_after(cells, index) -> bool:
    return any("train(" in c["source"] for c in cells[index + 1 :] if c["type"] == "code")


# What a reader must not see in rendered prose: a glue role, an unevaluated or failed {eval}
# expression (the values show once the cell has run), or a formula KaTeX (jupyterlab-myst) or
# MathJax could not typeset (an undefined macro, say), or a {cite} jupyterlab-myst could not resolve
# (it resolves none: the citations extension of `labsetup` does).
_RAW_MARKUP_JS = script("jupyterlab_raw_markup.js", __file__)


def _exercise_controls(page, cell_index) -> list[str]:
    """Move every control of the explorer in cell ``cell_index``; names of those that did not
    change the figure."""
    output = lab_driver.explorer_output(page, cell_index)
    controls = lab_driver.controls(output)
    assert controls, "the explorer shows no control"
    dead = []
    for k, (kind, control) in enumerate(controls):
        before = lab_driver.pixels(output)
        try:
            lab_driver.time_to_pixels(page, output, kind, control, timeout_s=30)
        except Exception:  # noqa: BLE001 (reported below with the pixels)
            pass
        if lab_driver.pixels(output) == before:
            dead.append(f"control {k} ({kind})")
    text = output.inner_text()
    assert "Traceback" not in text, text[-2000:]
    return dead


@pytest.fixture(scope="module")
def lab_root(tmp_path_factory):
    """A copy of the book and the jupytext settings: the test saves chapters there."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copytree(ROOT / "book", root / "book")
    shutil.copy(ROOT / "jupytext.toml", root / "jupytext.toml")
    return root


@pytest.fixture(scope="module")
def lab_env(tmp_path_factory):
    """JupyterLab with the citations extension `make` installs (`mdq_lab.install --bib`), built
    from this checkout's bibliography; JUPYTER_PATH comes before the environment's own copy."""
    prefix = tmp_path_factory.mktemp("prefix")
    labcite.install(prefix, BIB)
    return {"JUPYTER_PATH": str(prefix / "share" / "jupyter")}


@pytest.fixture(scope="module")
def lab_server(lab_root, lab_env):
    with lab_driver.JupyterLab(lab_root, env=lab_env) as lab:
        yield lab


@pytest.fixture(scope="module")
def browser_page(lab_server):
    with sync_api.sync_playwright() as p:
        browser, page = lab_driver.launch_browser(p)
        try:
            lab_driver.open_lab(page, lab_server)
            yield page
        finally:
            browser.close()


def test_lab_is_set_up_for_live_figures(browser_page, lab_server):
    """What labsetup configures for a fluent drag is in effect in the running JupyterLab: the
    server extension that sends kernel messages without delay is loaded, and the busy tab icon
    (a fetch and an image decode on every kernel status) is off."""
    page = browser_page
    log = lab_server.log.read_text()
    assert "mdq_lab.server | extension was successfully loaded" in log, log[-3000:]
    assert "kernel WebSockets send without delay" in log
    from mdq_lab.install import QUIET_PLUGINS

    for plugin in QUIET_PLUGINS:
        assert not page.evaluate("(id) => window.jupyterapp.hasPlugin(id)", plugin), plugin
    # A plugin that is on, so that the check above can tell "off" from "unknown".
    on = "@jupyterlab/notebook-extension:tracker"
    assert page.evaluate("(id) => window.jupyterapp.hasPlugin(id)", on)


# Counts the messages by which the page forwards a watched control's value to the explorer
# (LiveFigure.watch), past ipywidgets' own one-message-in-flight channel.
_COUNT_FORWARDS_JS = script("jupyterlab_count_forwards.js", __file__)


# Each citation as a reader sees it, in page order: the text of a lone {cite} or of a group of
# keys, with what jupyterlab-myst's CSS adds around and between them (brackets, separators), and
# the key and hover title of each cited work.
_CITATIONS_JS = script("jupyterlab_citations.js", __file__)
_CITE_ROLE = re.compile(r"\{cite(?::[a-z]+)?\}`([^`]+)`")


def test_citations_read_as_in_the_book(browser_page, lab_root):
    """Chapter 1 (lone citations and a group of three) opened by double-click: each {cite} shows
    the book's text, "[Ajanthan et al., 2021]", with the full reference on hover."""
    page = browser_page
    name = "01_quantization.md"
    refs = labcite.citations(BIB)
    keys = [m[1].split(",") for m in _CITE_ROLE.finditer((lab_root / "book" / name).read_text())]
    assert len(keys) >= 5 and any(len(k) > 1 for k in keys)
    expected = ["[" + ", ".join(refs[k.strip()]["label"] for k in group) + "]" for group in keys]
    lab_driver.close_all(page)
    page.locator(".jp-BreadCrumbs-home").click()
    lab_driver.open_by_double_click(page, f"book/{name}")
    # Every cell is rendered on opening (labsetup's windowing mode): no need to run anything.
    page.wait_for_function(
        f"(n) => ({_CITATIONS_JS.strip()})().texts.length >= n", arg=len(expected), timeout=60_000
    )
    page.wait_for_timeout(500)
    seen = page.evaluate(_CITATIONS_JS)
    assert seen["texts"] == expected
    cited = {k.strip() for group in keys for k in group}
    assert {key for key, _ in seen["works"]} == cited
    for key, title in seen["works"]:
        assert title == refs[key]["text"], key
    assert page.locator('.jp-MarkdownCell [title="Citation Not Found"]').count() == 0


@pytest.mark.parametrize("chapter", sorted(lab_driver.WIDGET_CHAPTERS))
def test_chapter_opens_runs_and_every_control_responds(browser_page, lab_root, chapter):
    page = browser_page
    name = lab_driver.WIDGET_CHAPTERS[chapter]
    source = (lab_root / "book" / name).read_bytes()
    lab_driver.close_all(page)
    page.locator(".jp-BreadCrumbs-home").click()  # back to the root folder
    lab_driver.open_by_double_click(page, f"book/{name}")  # a notebook, not a text editor
    cells = lab_driver.notebook_cells(page)
    index = _explorer_cell(cells)
    heavy = _heavy_after(cells, index)
    lab_driver.run_cells(page, upto=index if heavy else None)
    cells = lab_driver.notebook_cells(page)
    assert lab_driver.errors_in(cells) == []
    assert cells[index]["count"] is not None
    ran = index if heavy else len(cells) - 1
    page.wait_for_timeout(1000)  # jupyterlab-myst fills in the {eval} values after the run
    assert page.evaluate(_RAW_MARKUP_JS, ran) == [], f"chapter {chapter}: raw markup in the prose"
    page.evaluate(_COUNT_FORWARDS_JS)
    dead = _exercise_controls(page, index)
    assert dead == [], f"chapter {chapter}: moving {dead} did not change the figure"
    controls = len(lab_driver.controls(lab_driver.explorer_output(page, index)))
    assert page.evaluate("() => window.__mdqForwarded") >= controls, "values not forwarded"
    lab_driver.save(page)
    assert (lab_root / "book" / name).read_bytes() == source, "saving rewrote the chapter"


def _downloaded_notebook(name: str):
    """The executed .ipynb the built book's download menu serves for chapter ``name`` (``make
    test`` builds the book first); without an up-to-date build, the chapter executed here."""
    import jupytext
    import nbformat
    from nbclient import NotebookClient

    source = ROOT / "book" / name
    built = ROOT / "_build" / "html" / "_sources" / "book" / source.with_suffix(".ipynb").name
    if built.is_file() and built.stat().st_mtime >= source.stat().st_mtime:
        return nbformat.read(built, as_version=4)
    nb = jupytext.read(source)
    client = NotebookClient(
        nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(source.parent)}}
    )
    # In a thread: nbclient leaves an event loop behind, which Playwright's sync API refuses.
    worker = threading.Thread(target=client.execute)
    worker.start()
    worker.join()
    return nb


def test_downloaded_executed_ipynb_works_in_plain_jupyterlab(browser_page, lab_root):
    """The .ipynb a reader downloads (executed, outputs included) opens as a plain notebook and
    its explorer responds (in this environment's JupyterLab, citations extension included: its
    citations read as the book's too)."""
    import nbformat

    name = lab_driver.WIDGET_CHAPTERS[5]
    nb = _downloaded_notebook(name)
    assert all(o.get("output_type") != "error" for c in nb.cells for o in c.get("outputs", []))
    assert any(c.get("outputs") for c in nb.cells if c.cell_type == "code"), "not executed"
    target = lab_root / f"downloaded_{Path(name).stem}.ipynb"
    nbformat.write(nb, target)
    page = browser_page
    lab_driver.close_all(page)
    page.locator(".jp-BreadCrumbs-home").click()
    lab_driver.open_by_double_click(page, target.name)
    cells = lab_driver.notebook_cells(page)
    index = _explorer_cell(cells)
    lab_driver.run_cells(page)
    assert lab_driver.errors_in(lab_driver.notebook_cells(page)) == []
    page.wait_for_timeout(1000)
    assert page.evaluate(_RAW_MARKUP_JS, len(cells) - 1) == []
    assert _exercise_controls(page, index) == []

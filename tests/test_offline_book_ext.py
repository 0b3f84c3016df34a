"""The book's Sphinx extension (book/_ext/offline_book.py) on its own, without a book build."""

import json
import sys
from pathlib import Path

import matplotlib
import nbformat
import numpy as np
import pytest
import yaml

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
from matplotlib.animation import FuncAnimation  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import offline_book  # noqa: E402


def _player_html() -> str:
    fig, ax = plt.subplots(figsize=(2, 1.5))
    (line,) = ax.plot([], [])
    x = np.linspace(0.0, 1.0, 20)
    anim = FuncAnimation(fig, lambda k: line.set_data(x, x**k), frames=3)
    html = anim.to_jshtml()
    plt.close(fig)
    return html


def test_player_output_keeps_its_controls_but_loses_its_cdn_link():
    html = _player_html()
    assert "//maxcdn" in html  # matplotlib links Font Awesome from a CDN: the reason for the filter
    clean = offline_book.strip_remote_tags(html)
    assert "//" not in clean.replace("data:image", "").split("<script", 1)[0]
    assert 'type="range"' in clean and clean.count("<script") == html.count("<script")
    removed = len(html) - len(clean)
    link = html[html.index("<link") : html.index(">", html.index("<link")) + 1]
    assert removed == len(link)


@pytest.mark.parametrize(
    "tag",
    [
        '<script src="https://cdn.example.org/x.js"></script>',
        "<script src='//cdn.example.org/x.js' defer></script>",
        '<LINK rel="stylesheet" href="http://cdn.example.org/x.css">',
    ],
)
def test_remote_tags_are_removed_and_local_ones_kept(tag):
    local = '<script src="_static/x.js"></script><link rel="stylesheet" href="_static/x.css">'
    assert offline_book.strip_remote_tags(f"<p>a</p>{tag}{local}") == f"<p>a</p>{local}"


def test_downloaded_notebook_stands_alone():
    nb = nbformat.v4.new_notebook()
    nb.metadata = {
        "jupytext": {"text_representation": {"format_name": "myst"}},
        "source_map": [1, 2],
        "widgets": {offline_book.WIDGET_STATE: {"state": {"m": {}}}},
    }
    out = nbformat.v4.new_output(
        "display_data",
        data={offline_book.WIDGET_VIEW: {"model_id": "m"}, "text/plain": "VBox(...)"},
    )
    nb.cells = [nbformat.v4.new_code_cell("1 + 1", outputs=[out], execution_count=1)]
    before = json.dumps(nb, sort_keys=True)

    clean = offline_book.clean_notebook(nb)

    nbformat.validate(clean)
    assert clean.metadata.kernelspec.name == "python3"
    assert not {"jupytext", "source_map", "widgets"} & set(clean.metadata)
    assert clean.cells[0].outputs[0].data == {"text/plain": "VBox(...)"}
    assert json.dumps(nb, sort_keys=True) == before  # the build's own notebook is left alone


def test_mathjax_is_pinned_and_served_locally():
    package = json.loads((ROOT / "package.json").read_text())["dependencies"]["mathjax"]
    lock = json.loads((ROOT / "package-lock.json").read_text())
    assert lock["packages"]["node_modules/mathjax"]["version"] == package
    config = yaml.safe_load((ROOT / "_config.yml").read_text())["sphinx"]["config"]
    assert config["mathjax_path"] == f"mathjax/{offline_book.MATHJAX_ENTRY}"
    assert config["nb_ipywidgets_js"] == {}
    macros = config["mathjax3_config"]["tex"]["macros"]
    assert {"R", "sign", "argmin", "prox"} <= set(macros)


def test_thebe_scripts_leave_the_page_and_the_others_stay():
    from sphinx.builders.html._assets import _JavaScript

    scripts = [
        _JavaScript("_static/doctools.js"),
        _JavaScript("_static/sphinx-thebe.js", async_="async"),
        _JavaScript(None, body='const THEBE_JS_URL = "https://unpkg.com/thebe"'),
        _JavaScript("_static/mdq-book.js"),
    ]
    context = {"script_files": scripts}
    offline_book.drop_thebe(None, "book/index", "page.html", context, None)
    assert [js.filename for js in context["script_files"]] == [
        "_static/doctools.js", "_static/mdq-book.js"
    ]

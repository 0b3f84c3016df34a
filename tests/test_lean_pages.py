"""book/_ext/lean_pages.py on its own: MathJax only where a page has math, and no Font Awesome
script. tests/test_book_browser.py measures the built pages (bytes before content, icons shown)."""

import sys
from pathlib import Path

import pydata_sphinx_theme
from sphinx.builders.html._assets import _JavaScript

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import lean_pages  # noqa: E402

THEME = Path(pydata_sphinx_theme.__file__).parent / "theme" / "pydata_sphinx_theme"


def test_the_theme_still_adds_font_awesome_by_a_script_tag_the_pattern_matches():
    # The tag lean_pages removes is written by this template of pydata-sphinx-theme (0.17): when
    # a new version writes it otherwise, this fails rather than the script coming back unnoticed.
    macros = (THEME / "static" / "webpack-macros.html").read_text()
    tag = next(line for line in macros.splitlines() if "fontawesome.js" in line)
    written = tag.replace(
        "{{ pathto('_static/scripts/fontawesome.js', 1) }}", "../_static/scripts/fontawesome.js"
    )
    assert "{{" not in written, tag
    page = f"<head>\n  <link rel='stylesheet'>\n{written}\n  <script src='x.js'></script>\n</head>"
    lean = lean_pages.drop_fontawesome_js(page)
    assert "fontawesome" not in lean
    assert lean == "<head>\n  <link rel='stylesheet'>\n  <script src='x.js'></script>\n</head>"
    # ...and its stylesheet draws the icons from the web font it ships.
    css = (THEME / "static" / "styles" / "pydata-sphinx-theme.css").read_text()
    assert ".fa-bars:before" in css and "webfonts/fa-solid-900.woff2" in css


def test_only_the_font_awesome_script_goes():
    other = '<script defer src="../_static/scripts/bootstrap.js?digest=1"></script>\n'
    assert lean_pages.drop_fontawesome_js(other) == other


def _scripts():
    return [
        _JavaScript("_static/documentation_options.js"),
        _JavaScript(None, body="window.MathJax = {tex: {}}"),
        _JavaScript("mathjax/startup.js", defer="defer"),
        _JavaScript("_static/mdq-book.js"),
    ]


def test_mathjax_leaves_a_page_without_math_and_stays_on_one_with_math():
    plain = {"body": "<p>No formulas here.</p>", "script_files": _scripts()}
    lean_pages.mathjax_where_math(None, "index", "page.html", plain, None)
    assert [js.filename for js in plain["script_files"]] == [
        "_static/documentation_options.js",
        "_static/mdq-book.js",
    ]
    for body in (
        '<span class="math notranslate nohighlight">\\(x\\)</span>',
        '<div class="math notranslate nohighlight" id="eq">\\[x\\]</div>',
    ):
        page = {"body": body, "script_files": _scripts()}
        lean_pages.mathjax_where_math(None, "ch", "page.html", page, None)
        assert len(page["script_files"]) == 4, body

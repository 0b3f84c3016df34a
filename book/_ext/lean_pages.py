"""Sphinx extension: a page loads only what it shows.

- MathJax (about 0.75 MB with its font) goes only on pages that have math. myst-nb asks Sphinx to
  put it on every page, since a notebook output might hold LaTeX; the rendered body says whether
  one does (Sphinx marks every formula, inline or display, with the class "math").
- pydata-sphinx-theme adds Font Awesome's JavaScript (1.49 MB, the icons as SVG drawn by script)
  to every page, although its own stylesheet already draws the same icons from Font Awesome's
  web font (``.fa-solid:before`` and the ``@font-face`` rules in pydata-sphinx-theme.css). The
  script tag comes from the theme's template, not from ``script_files``, so it is taken out of the
  written pages at the end of the build. tests/test_book_browser.py checks that every icon still
  shows and measures the bytes each page loads before its content.
"""

import re
from pathlib import Path

from sphinx.application import Sphinx

# The theme's tag, with its cache-busting digest:
# <script defer src="../_static/scripts/fontawesome.js?digest=..."></script>
FONTAWESOME_TAG = re.compile(
    r"""[ \t]*<script\b[^>]*\bsrc=["'][^"']*_static/scripts/fontawesome\.js[^"']*["'][^>]*>"""
    r"""\s*</script>\n?"""
)


def has_math(body: str) -> bool:
    return 'class="math' in body


def _is_mathjax(js) -> bool:
    attributes = getattr(js, "attributes", {}) or {}
    return "mathjax/" in str(
        getattr(js, "filename", js) or ""
    ) or "window.MathJax" in attributes.get("body", "")


def mathjax_where_math(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    scripts = context.get("script_files")
    if scripts is None or has_math(context.get("body", "")):
        return
    context["script_files"] = [js for js in scripts if not _is_mathjax(js)]


def drop_fontawesome_js(html: str) -> str:
    return FONTAWESOME_TAG.sub("", html)


def lean_written_pages(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    for page in Path(app.outdir).rglob("*.html"):
        html = page.read_text(encoding="utf-8")
        lean = drop_fontawesome_js(html)
        if lean != html:
            page.write_text(lean, encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.connect("html-page-context", mathjax_where_math, priority=950)
    app.connect("build-finished", lean_written_pages)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

"""Sphinx extension: every control's accessible name contains the text it shows (axe-core's
``label-content-name-mismatch``, WCAG 2.5.3 "Label in Name"), the bibliography is a list of list
items, and all page content sits in a landmark (axe-core's ``region``).

The themes and myst-nb give some controls an ``aria-label`` that replaces, and differs from, the
words a sighted reader sees on them; a speech-input user who says the visible words then cannot
activate them. The fix is in the written HTML of each page, once the build has written it:

- myst-nb's code-cell toggles (``hide-input`` cells) are ``<summary aria-label="Toggle hidden
  content">`` around "Show code cell source" / "Hide code cell source": without the label the
  summary is named by the words it shows (the theme's CSS shows one of the two at a time).
- pydata-sphinx-theme's search button is labelled "Search" but shows "Search Ctrl+K": named by
  its text instead (Bootstrap's tooltip adds an ``aria-label`` only to a button with no text).
- pydata-sphinx-theme's colour-mode button is labelled "Color mode" but its icons carry titles
  ("Light", "Dark", "System Settings") that Font Awesome turns into text of the button: the icons
  become decorative (``aria-hidden``), and the button keeps its name and its tooltip.
- docutils writes the bibliography as ``role="list"`` whose entries have the deprecated role
  ``doc-biblioentry``, not ``listitem`` (axe-core's critical ``aria-required-children``): each entry
  becomes a ``listitem``.
- sphinx-book-theme's primary sidebar (the book's title, the search button and the chapter list)
  is a plain ``div`` outside every landmark: it becomes a navigation landmark named "Book".

Each rewrite is idempotent (a page that a later, incremental build does not rewrite is already
fixed) and counted: a theme update that changes the markup shows up as a build warning rather
than as a silent regression (tests/test_book_browser.py runs axe-core on every page as well).
"""

import re
from pathlib import Path

from sphinx.application import Sphinx
from sphinx.util import logging

logger = logging.getLogger(__name__)

# (name, pattern, replacement); a pattern matches only markup not yet rewritten.
REWRITES = (
    (
        "code-cell toggle",
        re.compile(r'<summary aria-label="Toggle hidden content">'),
        "<summary>",
    ),
    (
        "search button",
        re.compile(
            r'(<button class="[^"]*\bsearch-button-field\b[^"]*"[^>]*?) aria-label="Search"'
        ),
        r"\1",
    ),
    (
        "colour-mode icon",
        re.compile(r'(<i class="theme-switch [^"]*" data-mode="[a-z]+")\s+title="[^"]*"></i>'),
        r'\1 aria-hidden="true"></i>',
    ),
    (
        "bibliography entry",
        re.compile(r'(<div class="citation" id="[^"]*") role="doc-biblioentry"'),
        r'\1 role="listitem"',
    ),
    (
        "primary sidebar",
        re.compile(r'(<div\b[^>]*\bclass="bd-sidebar-primary bd-sidebar[^"]*")(?![^>]*\brole=)'),
        r'\1 role="navigation" aria-label="Book"',
    ),
)
# Markup a fixed page must no longer contain, whatever the theme version wrote.
LEFT_OVER = re.compile(
    r'<summary aria-label="Toggle hidden content">'
    r'|<i class="theme-switch [^>]*\btitle="'
    r'|<button class="[^"]*\bsearch-button-field\b[^>]*\baria-label="Search"'
    r'|role="doc-biblioentry"'
)


def fix_html(html: str) -> tuple[str, dict[str, int]]:
    """The page with every rewrite applied, and how many times each one applied."""
    counts = {}
    for name, pattern, replacement in REWRITES:
        html, counts[name] = pattern.subn(replacement, html)
    return html, counts


def fix_pages(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    outdir = Path(app.outdir)
    for path in sorted(outdir.rglob("*.html")):
        if any(part.startswith("_") for part in path.relative_to(outdir).parts[:-1]):
            continue  # _static, _sources, _images: no pages of the book
        html = path.read_text(encoding="utf-8")
        fixed, _ = fix_html(html)
        if fixed != html:
            path.write_text(fixed, encoding="utf-8")
        left = LEFT_OVER.search(fixed)
        if left:
            logger.warning(
                f"{path.relative_to(outdir)}: accessible-name markup left unfixed: "
                f"{left.group(0)[:80]!r} (book/_ext/a11y_html.py)"
            )


def setup(app: Sphinx) -> dict:
    app.connect("build-finished", fix_pages)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

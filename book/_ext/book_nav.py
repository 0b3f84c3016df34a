"""Sphinx extension: the sidebar buttons work, on a phone and on a desktop.

sphinx-book-theme (1.3) draws its two sidebar buttons in the article header and leaves the
pydata-sphinx-theme navbar empty (its theme.conf sets every ``navbar_*`` option to nothing).
pydata-sphinx-theme 0.17, on ``builder-inited``, sets ``navbar_persistent`` to
``["search-button-field"]`` whenever the book has not set it itself, which brings the whole navbar
back: a search bar across the top of every page and, before the article header in the page, a
second pair of ``.primary-toggle`` / ``.secondary-toggle`` buttons, which sphinx-book-theme's CSS
hides. Both themes' scripts bind their handlers with ``document.querySelector(".primary-toggle")``
(and ``".secondary-toggle"``), the first such button in the page: the hidden one. The buttons the
reader sees then only show their tooltip: on a phone neither sidebar opens, and on a desktop the
hamburger does not collapse the chapter list.

Setting ``navbar_persistent`` to the empty list sphinx-book-theme means (before the theme reads
it) keeps the navbar out of the page, so each button exists once and both scripts bind the one the
reader taps. The search stays in the primary sidebar and the article header.
"""

from sphinx.application import Sphinx


def keep_navbar_empty(app: Sphinx, config) -> None:
    options = config.html_theme_options
    if options is None:
        options = config.html_theme_options = {}
    # setdefault: a book that asks for a navbar item on purpose still gets it.
    options.setdefault("navbar_persistent", [])


def setup(app: Sphinx) -> dict:
    # config-inited comes before builder-inited, where the HTML builder copies the theme options
    # and pydata-sphinx-theme fills in its default.
    app.connect("config-inited", keep_navbar_empty)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

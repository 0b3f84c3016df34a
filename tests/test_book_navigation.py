"""The book's navigation as a reader uses it: the sidebar buttons on a phone and on a desktop.

On a phone (390 x 844 CSS px, touch) the hamburger opens the chapter list, whose links are tapped to
move to a chapter, and the contents button opens the page's own table of contents; a tap on the
shade beside either closes it. On a desktop (1280 px) the hamburger collapses the chapter list and
brings it back. Both need the built book (`make book`) and Chromium, like
tests/test_book_browser.py, whose local server this reuses. Screenshots go to _build/screenshots/
(nav_*.png).

Why the buttons once did nothing: book/_ext/book_nav.py.
"""

import re
from pathlib import Path

import test_book_browser as browser_test

from mdq_support import script

HTML, SHOTS = browser_test.HTML, browser_test.SHOTS
PAGES = browser_test.PAGES
PHONE = {"width": browser_test.PHONE_WIDTH, "height": browser_test.PHONE_HEIGHT}
DESKTOP = {"width": browser_test.WIDTH, "height": browser_test.HEIGHT}
CHAPTER = "book/09_binaryconnect_demystified"

# the local server of the browser test: 127.0.0.1 only, started once for this module
server = browser_test.server
# ...and its Chromium, launched once for this module
chromium = browser_test.chromium

PRIMARY = "#pst-primary-sidebar-modal"
SECONDARY = "#pst-secondary-sidebar-modal"

# Whether a tap at the centre of each element would reach it (nothing drawn over it), after
# scrolling it into view as a reader's finger would.
REACHABLE_JS = script("book_navigation_reachable.js", __file__)


def _href(page: str) -> str:
    return f"{Path(page).name}.html"


def _open(chromium, server, page_path: str, viewport: dict, touch: bool):
    context = chromium.new_context(viewport=viewport, has_touch=touch, is_mobile=touch)
    context.route(
        "**/*",
        lambda r: r.continue_()
        if r.request.url.startswith((server, "data:", "blob:"))
        else r.abort(),
    )
    page = context.new_page()
    errors = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(f"{server}/{page_path}.html", wait_until="load", timeout=180_000)
    return context, page, errors


def _dialog_open(page, selector: str) -> bool:
    return page.evaluate("(s) => !!document.querySelector(s)?.open", selector)


def _tap_beside(page, selector: str) -> None:
    """Tap the shade to the side of an open sidebar dialog, as a reader closes it."""
    box = page.locator(selector).bounding_box()
    width = page.viewport_size["width"]
    x = box["x"] + box["width"] + 10 if box["x"] + box["width"] + 20 < width else box["x"] - 10
    assert 0 < x < width, f"{selector} covers the whole width ({box}): no shade to tap beside it"
    page.touchscreen.tap(x, page.viewport_size["height"] / 2)


def _wait_off_screen(page, selector: str) -> None:
    """Once its dialog has closed, the narrow layout's sidebar covers none of the page again."""
    page.wait_for_function(
        "(s) => { const r = document.querySelector(s).getBoundingClientRect();"
        " return r.width === 0 || r.left >= innerWidth || r.right <= 0; }",
        arg=selector,
    )


def test_each_page_has_one_pair_of_sidebar_buttons():
    """A second, hidden .primary-toggle earlier in the page is what the themes' scripts bound."""
    for page in PAGES:
        html = (HTML / f"{page}.html").read_text()
        primary = re.findall(r"<button[^>]*\bprimary-toggle\b", html)
        secondary = re.findall(r"<button[^>]*\bsecondary-toggle\b", html)
        assert len(primary) == 1, f"{page}: {len(primary)} .primary-toggle buttons"
        assert len(secondary) <= 1, f"{page}: {len(secondary)} .secondary-toggle buttons"


def test_phone_hamburger_opens_the_chapter_list_and_a_tap_moves_to_a_chapter(chromium, server):
    context, page, errors = _open(chromium, server, PAGES[0], PHONE, touch=True)
    try:
        chapters = [p for p in PAGES if p != PAGES[0]]
        links = [f"{PRIMARY} a.reference.internal[href$='{_href(p)}']" for p in chapters]
        toggle = page.locator("button.primary-toggle:visible")
        assert toggle.count() == 1, f"{toggle.count()} visible hamburger buttons at 390 px"
        assert not _dialog_open(page, PRIMARY)

        toggle.tap()
        page.wait_for_function("(s) => document.querySelector(s)?.open", arg=PRIMARY)
        page.wait_for_timeout(300)  # the dialog's slide-in
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "nav_phone_chapters_open.png"))
        hidden = [p for p, sel in zip(chapters, links, strict=True)
                  if not page.locator(sel).first.is_visible()]
        assert not hidden, f"chapters missing from the open chapter list at 390 px: {hidden}"
        found = page.eval_on_selector_all(
            f"{PRIMARY} a.reference.internal", REACHABLE_JS.strip()
        )
        unreachable = [f for f in found if not f["reachable"] or f["height"] < 20]
        assert not unreachable, f"chapter links that a tap would not reach: {unreachable}"

        # the shade beside the list closes it
        _tap_beside(page, PRIMARY)
        page.wait_for_function("(s) => !document.querySelector(s)?.open", arg=PRIMARY)
        # the theme moves the list back on the dialog's "close" event, a task after it closes
        # (an empty sidebar is off-screen at once, so wait for the links, not only the box)
        page.wait_for_function(
            "([s, n]) => document.querySelectorAll(s).length >= n",
            arg=["#pst-primary-sidebar a.reference.internal", len(chapters)],
        )
        _wait_off_screen(page, "#pst-primary-sidebar")

        # open it again and tap a chapter
        toggle.tap()
        page.wait_for_function("(s) => document.querySelector(s)?.open", arg=PRIMARY)
        with page.expect_navigation():
            page.locator(f"{PRIMARY} a.reference.internal[href$='{_href(CHAPTER)}']").first.tap()
        assert page.url.split("#")[0].endswith(f"/{CHAPTER}.html"), page.url
        assert page.locator("article.bd-article h1").first.is_visible()
        assert not errors, errors
    finally:
        context.close()


def test_phone_contents_button_opens_the_page_toc(chromium, server):
    context, page, errors = _open(chromium, server, CHAPTER, PHONE, touch=True)
    try:
        page.evaluate(
            "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
            " await MathJax.startup.promise; }"
        )
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "nav_phone_chapter9.png"))
        toggle = page.locator("button.secondary-toggle:visible")
        assert toggle.count() == 1, f"{toggle.count()} visible contents buttons at 390 px"
        sections = page.eval_on_selector_all(
            "article.bd-article section > h2", "els => els.map(e => e.textContent.trim())"
        )
        assert any("Summary" in s for s in sections), sections

        toggle.tap()
        page.wait_for_function("(s) => document.querySelector(s)?.open", arg=SECONDARY)
        page.wait_for_timeout(300)
        page.screenshot(path=str(SHOTS / "nav_phone_contents_open.png"))
        # one entry per section; subsections unfold as the reader scrolls
        toc = page.locator(f"{SECONDARY} nav li.toc-h2 > a.nav-link")
        assert toc.count() >= len(sections), (
            f"{toc.count()} entries in the in-page contents for {len(sections)} sections"
        )
        shown = [t.strip() for t in toc.all_inner_texts()]
        assert any("Summary" in t for t in shown) and any("Exercises" in t for t in shown), shown
        found = page.eval_on_selector_all(
            f"{SECONDARY} nav li.toc-h2 > a.nav-link", REACHABLE_JS.strip()
        )
        unreachable = [f for f in found if not f["reachable"]]
        assert not unreachable, f"contents entries that a tap would not reach: {unreachable}"

        _tap_beside(page, SECONDARY)
        page.wait_for_function("(s) => !document.querySelector(s)?.open", arg=SECONDARY)
        _wait_off_screen(page, "#pst-secondary-sidebar")

        # a tapped entry closes the contents and shows its section
        toggle.tap()
        page.wait_for_function("(s) => document.querySelector(s)?.open", arg=SECONDARY)
        page.locator(f"{SECONDARY} nav li.toc-h2 > a.nav-link", has_text="Summary").tap()
        page.wait_for_function("(s) => !document.querySelector(s)?.open", arg=SECONDARY)
        assert page.url.endswith("#summary"), page.url
        heading = page.locator("section#summary > h2")
        page.wait_for_function(
            "() => { const r = document.querySelector('section#summary > h2')"
            ".getBoundingClientRect(); return r.top >= 0 && r.bottom <= innerHeight; }"
        )
        assert heading.is_visible()
        _wait_off_screen(page, "#pst-secondary-sidebar")
        page.screenshot(path=str(SHOTS / "nav_phone_chapter9_summary.png"))
        assert not errors, errors
    finally:
        context.close()


def test_desktop_hamburger_collapses_and_restores_the_sidebar(chromium, server):
    context, page, errors = _open(chromium, server, CHAPTER, DESKTOP, touch=False)
    try:
        sidebar = page.locator("#pst-primary-sidebar")
        article = page.locator("article.bd-article")
        toggle = page.locator("button.primary-toggle:visible")
        assert toggle.count() == 1, f"{toggle.count()} visible hamburger buttons at 1280 px"
        assert sidebar.is_visible()
        first_chapter = sidebar.locator(f"a[href$='{_href(PAGES[1])}']").first
        assert first_chapter.is_visible()
        # without the theme's navbar, the search field is the sidebar's own
        assert sidebar.locator(".search-button-field").is_visible()
        left = article.bounding_box()["x"]

        toggle.click()
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('#pst-primary-sidebar')).visibility"
            " === 'hidden'"
        )
        page.wait_for_timeout(500)  # the theme's transition
        assert not sidebar.is_visible() and not first_chapter.is_visible()
        assert not _dialog_open(page, PRIMARY), "the wide layout must not open the phone dialog"
        assert article.bounding_box()["x"] < left, "the article did not take the sidebar's place"
        SHOTS.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(SHOTS / "nav_desktop_collapsed.png"))

        toggle.click()
        page.wait_for_function(
            "() => getComputedStyle(document.querySelector('#pst-primary-sidebar')).visibility"
            " === 'visible'"
        )
        page.wait_for_timeout(500)
        assert sidebar.is_visible() and first_chapter.is_visible()
        assert abs(article.bounding_box()["x"] - left) < 2
        assert not errors, errors
    finally:
        context.close()


def test_search_results_quote_text_not_tex(chromium, server):
    """Searching for a word the chapters put beside formulas: every result is listed with a few
    lines of its page, and none of those lines shows TeX (mdq-book.js takes formulas out)."""
    context, page, errors = _open(chromium, server, "search", DESKTOP, touch=False)
    try:
        page.goto(f"{server}/search.html?q=projection", wait_until="load")
        page.wait_for_function(
            "() => document.querySelectorAll('#search-results li p.context').length > 3",
            timeout=60_000,
        )
        # snippets arrive one page fetch at a time; wait until the list stops growing
        page.wait_for_function(
            "() => !document.querySelector('#search-results .search-summary')"
            "?.textContent.includes('Preparing')",
            timeout=60_000,
        )
        page.wait_for_timeout(500)
        snippets = page.eval_on_selector_all(
            "#search-results li p.context", "els => els.map(e => e.textContent)"
        )
        page.screenshot(path=str(SHOTS / "search_projection.png"))
        icons = page.evaluate(browser_test.ICONS_JS)
    finally:
        context.close()
    tex = re.compile(r"\\\(|\\\)|\\\[|\\\]|\\[a-zA-Z]+\b|\$\$")
    raw = [s[:120] for s in snippets if tex.search(s)]
    assert len(snippets) > 3, snippets
    assert not raw, f"{len(raw)} of {len(snippets)} search snippets show TeX: {raw}"
    assert not errors, errors
    assert not icons["missing"], icons["missing"]

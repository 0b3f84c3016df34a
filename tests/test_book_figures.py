"""The book's figures as a reader's browser shows them: legible on a phone, no text on other text.

Needs the built book and Chromium, like tests/test_book_browser.py, whose local server this
reuses. Every page is opened at 1280 px and at 390 px (a phone); every figure (the chapters'
matplotlib figures are SVG whose text is <text>, see ``mdq_teach.plots.use_book_style``) is drawn
at the size the page shows it, and each of its texts is measured (tests/book_browser_figures.js).

A figure fails when
- two of its texts overlap (their boxes share more than ``OVERLAP_PX`` each way: a legend over
  tick labels), or two texts on one line run into each other (less than ``GAP_PX`` apart: two
  panel titles that read as one);
- a text is set in a font other than matplotlib's DejaVu (``FONTS``): math text that matplotlib
  takes from its STIX or Computer Modern fonts names glyphs that a browser does not have (a
  ``\\mathcal`` letter is a private-use code point of "STIXNonUnicode", shown as a box);
- a text is smaller than ``MIN_TEXT_PX`` CSS px at the size shown: 7 px on a phone, where the
  figure is scaled down to the 390 px page's column, and 9 px at 1280 px. Sub- and superscripts of
  math text (10⁻² on a log axis) may be ``SCRIPT_RATIO`` of that, as MathJax sets them in the prose
  (0.707 of the text).

The measured figures go to _build/screenshots/figures.txt.
"""

from itertools import combinations

import pytest
import test_book_browser as browser_test

from mdq_support import script

PAGES, SHOTS = browser_test.PAGES, browser_test.SHOTS
WIDTH, PHONE_WIDTH = browser_test.WIDTH, browser_test.PHONE_WIDTH
VIEWS = {WIDTH: browser_test.HEIGHT, PHONE_WIDTH: browser_test.PHONE_HEIGHT}
# The smallest text, in CSS px at the size the figure is shown, per page width.
MIN_TEXT_PX = {WIDTH: 9.0, PHONE_WIDTH: 7.0}
SCRIPT_RATIO = 0.7
# Two text boxes that share at most this many CSS px each way touch, not overlap (a glyph cell is a
# little taller than matplotlib's line pitch). Two horizontal texts that share half the height of
# the smaller are on one line, and need GAP_PX between them.
OVERLAP_PX = 1.0
GAP_PX = 2.0

# The fonts the figures' text may name (matplotlib's own; Debian's Chromium has them, and a browser
# without them falls back to the sans-serif fonts matplotlib lists after them).
FONTS = {"DejaVu Sans", "DejaVu Sans Mono", "DejaVu Serif"}

FIGURES_JS = script("book_browser_figures.js", __file__)

# the local server of the browser test: 127.0.0.1 only, started once for this module
server = browser_test.server
# ...and its Chromium, launched once for this module
chromium = browser_test.chromium


def _measure(page) -> list[dict]:
    return page.evaluate(FIGURES_JS)


@pytest.fixture(scope="module")
def figures(chromium, server):
    """{width: {page: [figure, ...]}}: every SVG figure of every page, measured at each width."""
    found = {w: {} for w in VIEWS}
    for page_path in PAGES:
        context = chromium.new_context(viewport={"width": WIDTH, "height": VIEWS[WIDTH]})
        context.route("**/*", lambda r: r.continue_() if r.request.url.startswith(
            (server, "data:", "blob:")) else r.abort())
        page = context.new_page()
        page.goto(f"{server}/{page_path}.html", wait_until="load", timeout=180_000)
        for width, height in VIEWS.items():
            page.set_viewport_size({"width": width, "height": height})
            page.wait_for_timeout(200)  # let resize handlers run
            found[width][page_path] = _measure(page)
        context.close()
    _write_report(found)
    return found


def _overlaps(texts: list[dict]) -> list[tuple[str, str]]:
    pairs = []
    for a, b in combinations(texts, 2):
        (ax, ay, aw, ah), (bx, by, bw, bh) = a["box"], b["box"]
        dx = min(ax + aw, bx + bw) - max(ax, bx)
        dy = min(ay + ah, by + bh) - max(ay, by)
        one_line = not (a["rotated"] or b["rotated"]) and dy > 0.5 * min(ah, bh)
        if (dx > OVERLAP_PX and dy > OVERLAP_PX) or (one_line and dx > -GAP_PX):
            pairs.append((a["text"], b["text"]))
    return pairs


def _small(texts: list[dict], width: int) -> list[str]:
    least = MIN_TEXT_PX[width]
    return [
        f"{t['text']!r} {t['size']:.1f} px" + (
            f" (script {t['smallest']:.1f} px)" if t["smallest"] < t["size"] else "")
        for t in texts
        if t["size"] < least - 0.05 or t["smallest"] < SCRIPT_RATIO * least - 0.05
    ]


def _name(page: str, fig: dict) -> str:
    return f"{page} figure {fig['index']} #{fig['id']} ({fig['width']} px: {fig['text']!r})"


def _findings(figures: dict, width: int, check) -> dict[str, list]:
    return {
        _name(page, fig): found
        for page, figs in figures[width].items()
        for fig in figs
        if (found := check(fig))
    }


def _flagged(figures: dict, width: int) -> set[str]:
    return set(_findings(figures, width, lambda f: _overlaps(f["texts"]))) | set(
        _findings(figures, width, lambda f: _small(f["texts"], width)))


def _write_report(figures: dict) -> None:
    lines = []
    for width in VIEWS:
        n = sum(len(f) for f in figures[width].values())
        lines.append(f"{width} px: {n} figures, {len(_flagged(figures, width))} flagged")
    for width in VIEWS:
        for page, figs in figures[width].items():
            for fig in figs:
                sizes = [t["smallest"] for t in fig["texts"]] or [0.0]
                lines.append(f"{width} px  {_name(page, fig)}: {len(fig['texts'])} texts, "
                             f"smallest {min(sizes):.1f} px")
                lines += [f"    overlap: {a!r} / {b!r}" for a, b in _overlaps(fig["texts"])]
                lines += [f"    small: {s}" for s in _small(fig["texts"], width)]
    SHOTS.mkdir(parents=True, exist_ok=True)
    (SHOTS / "figures.txt").write_text("\n".join(lines) + "\n")


# --- the checks ---


def test_figures_table(figures, capsys):
    with capsys.disabled():
        print()
        for width in VIEWS:
            n = sum(len(f) for f in figures[width].values())
            print(f"figures at {width} px: {n}, flagged {len(_flagged(figures, width))}")


def test_the_chapters_figures_are_svg_with_text(figures):
    chapters = [p for p in browser_test.CHAPTERS if figures[WIDTH][p]]
    assert len(chapters) >= 8, f"chapters with SVG figures: {chapters}"
    textless = [_name(p, f) for p, figs in figures[WIDTH].items() for f in figs if not f["texts"]]
    assert not textless, f"SVG figures with no <text> (text drawn as paths?): {textless}"


@pytest.mark.parametrize("width", list(VIEWS))
def test_no_text_overlaps_another(figures, width):
    found = _findings(figures, width, lambda f: _overlaps(f["texts"]))
    assert not found, f"{len(found)} figures with overlapping texts at {width} px:\n" + "\n".join(
        f"{k}: {v}" for k, v in found.items())


def test_figure_text_is_in_fonts_a_browser_has(figures):
    found = _findings(figures, WIDTH, lambda f: [
        f"{t['text']!r} in {set(t['fonts']) - FONTS}" for t in f["texts"]
        if set(t["fonts"]) - FONTS])
    assert not found, "figure text in fonts a browser lacks:\n" + "\n".join(
        f"{k}: {v}" for k, v in found.items())


@pytest.mark.parametrize("width", list(VIEWS))
def test_figure_text_is_legible(figures, width):
    found = _findings(figures, width, lambda f: _small(f["texts"], width))
    assert not found, (
        f"{len(found)} figures with text under {MIN_TEXT_PX[width]:g} CSS px at {width} px:\n"
        + "\n".join(f"{k}: {v}" for k, v in found.items())
    )


def test_the_measurement_finds_overlaps_and_small_text(chromium):
    """The checks above can fail: a page whose figure has two texts on one another and one tiny."""
    svg = (
        '<svg xmlns="http://www.w3.org/2000/svg" width="360" height="72" viewBox="0 0 720 144">'
        '<text x="10" y="40" style="font-size: 16px">left title</text>'
        '<text x="30" y="44" style="font-size: 16px">right title</text>'
        '<text x="300" y="100" style="font-size: 5px">tiny</text>'
        '<text x="500" y="100" style="font-size: 16px">10<tspan style="font-size: 8px">2</tspan>'
        "</text></svg>"
    )
    context = chromium.new_context(viewport={"width": PHONE_WIDTH, "height": 844})
    page = context.new_page()
    page.set_content(f'<main><div class="cell_output">{svg}</div></main>')
    (fig,) = _measure(page)
    context.close()
    assert fig["width"] == 360
    assert _overlaps(fig["texts"]) == [("left title", "right title")]
    # 720 user units shown in 360 px: 16 is 8 px, 5 is 2.5 px, the script of 8 is 4 px (< 4.9)
    small = _small(fig["texts"], PHONE_WIDTH)
    assert [s.split(" ")[0] for s in small] == ["'tiny'", "'102'"], small

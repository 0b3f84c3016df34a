"""The built book as a reader's browser shows it: Debian's Chromium via Playwright, 1280 and 390 px.

Needs the built book (`make test` builds it first; by hand: `make book`) and Chromium at
/usr/bin/chromium (or $MDQ_CHROMIUM; `make test` installs Debian's package when missing). The
pages are served from 127.0.0.1 by a local HTTP server; every request to any other host is blocked
and counted. Each page is visited once; the tests below then assert one property each over all
pages and name every offending element. Full-page screenshots (at 1280 px, and as
phone_*.png at 390 px) go to _build/screenshots/ for a person to look at, with report.txt (the
measured counts and the accessibility violations).

Accessibility: axe-core (pinned in package.json / package-lock.json, installed by `npm ci`; `make
test` runs it) is injected from the local node_modules/axe-core/axe.min.js, never fetched, and
checks each page at 1280 and 390 px in the light and the dark theme.
"""

import functools
import http.server
import os
import threading
import time
import urllib.parse
from pathlib import Path

import nbformat
import pytest
import yaml

from mdq_support import script
from mdq_support.jupyterlab_driver import CHROMIUM_ARGS  # the same flags for every browser test

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
SHOTS = ROOT / "_build" / "screenshots"
CHROMIUM = os.environ.get("MDQ_CHROMIUM", "/usr/bin/chromium")
WIDTH, HEIGHT = 1280, 900
# A phone (an iPhone 12-15 is 390 CSS px wide).
PHONE_WIDTH, PHONE_HEIGHT = 390, 844
# A wider box than its column by at most this many CSS pixels is rounding, not clipping.
SLACK = 1

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [TOC["root"]] + [c["file"] for part in TOC["parts"] for c in part["chapters"]]
CHAPTERS = [p for p in PAGES if Path(p).name[:2].isdigit()]
AXE = ROOT / "node_modules" / "axe-core" / "axe.min.js"
# axe-core impacts that fail the test; "moderate" and "minor" ones are listed in the table only.
AXE_FAILING = ("serious", "critical")
THEMES = ("light", "dark")


def _expected_cells(page: str) -> list:
    """The cells of the build's executed notebook, less what has no meaning without a kernel."""
    nb = nbformat.read(ROOT / "_build" / "jupyter_execute" / f"{page}.ipynb", as_version=4)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            out.get("data", {}).pop("application/vnd.jupyter.widget-view+json", None)
    return nb.cells


def _has_explorer(page: str) -> bool:
    """A chapter that builds an ipywidgets explorer owes the reader a kernel-free player."""
    text = (ROOT / f"{page}.md").read_text()
    # every chapter imports the glue helper from mdq_teach.glue; that is no explorer
    text = "\n".join(line for line in text.splitlines() if "mdq_teach.glue" not in line)
    return "mdq_teach.widgets" in text or "from mdq_teach import widgets" in text


# --- what the browser measures on one page ---

MEASURE_JS = script("book_browser_measure.js", __file__)

# The phone: nothing may be cut where the reader cannot get at it. The page itself does not scroll
# sideways, and every formula, table, code block or picture wider than its place sits in a box that
# scrolls (overflow-x auto or scroll), not one that hides the rest (hidden, clip) or none at all.
PHONE_JS = script("book_browser_phone.js", __file__)

IMAGES_JS = script("book_browser_images.js", __file__)

# A player is a range input together with the frame it drives: the nearest ancestor that also holds
# an image, svg or canvas. Its "frame" is a digest of what that picture shows.
PLAYERS_JS = script("book_browser_players.js", __file__)

FRAME_JS = script("book_browser_frame.js", __file__)

ICONS_JS = script("book_browser_icons.js", __file__)

# The bytes a page loads before its own content: the theme's styles, scripts and fonts, the search
# index, MathJax where the page has math (book/_ext/lean_pages.py); not the page's HTML, figures
# or downloads. The issue's aim: under 2 MB.
ASSETS_LIMIT_KB = 2048


# axe-core on the page as it is now, in one colour theme (pydata-sphinx-theme's data-theme, which
# its colour-mode button sets): each violated rule with its impact and the elements that violate it.
AXE_JS = script("book_browser_axe.js", __file__)


def _axe(page, width: int) -> list[dict]:
    """axe-core's violations on the page in both themes, injected from the local npm package."""
    if not page.evaluate("() => typeof window.axe !== 'undefined'"):
        page.add_script_tag(path=str(AXE))  # inlined into the page: no request
    found = []
    for theme in THEMES:
        for v in page.evaluate(AXE_JS, theme):
            found.append({**v, "view": f"{width}/{theme}"})
    page.evaluate("(t) => { document.documentElement.dataset.theme = t; }", THEMES[0])
    return found


# --- serving and visiting -------------------------------------------------------------------------


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    if not (HTML / "index.html").is_file():
        pytest.fail(f"{HTML / 'index.html'} is missing: build the book first (`make book`)")
    handler = functools.partial(_QuietHandler, directory=str(HTML))
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def _settle(probe, expected, timeout: float = 3.0):
    """Poll `probe()` until it returns `expected` (animations, scripts) or time runs out."""
    end = time.monotonic() + timeout
    while (value := probe()) != expected and time.monotonic() < end:
        time.sleep(0.05)
    return value


def _frame(page, player: dict) -> str:
    return page.evaluate(FRAME_JS, player["index"]) if player["hasPicture"] else ""


def _moved(page, player: dict, before: str) -> bool:
    return bool(before) and _frame(page, player) != before


def _visit(browser, base: str, page_path: str) -> dict:
    start = time.perf_counter()
    external, local, missing, errors = [], [], [], []
    context = browser.new_context(viewport={"width": WIDTH, "height": HEIGHT})

    def route(r):
        host = urllib.parse.urlsplit(r.request.url).hostname
        if host == "127.0.0.1" or r.request.url.startswith(("data:", "blob:")):
            local.append(r.request.url)
            r.continue_()
        else:
            external.append(r.request.url)
            r.abort()

    context.route("**/*", route)
    page = context.new_page()
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.on("response", lambda resp: resp.status >= 400 and missing.append(resp.url))
    url = f"{base}/{page_path}.html"
    page.goto(url, wait_until="load", timeout=180_000)
    # MathJax typesets after load; its startup promise resolves when the page is done.
    page.evaluate(
        "async () => { if (window.MathJax && MathJax.startup && MathJax.startup.promise)"
        " await MathJax.startup.promise; }"
    )
    images = page.evaluate(IMAGES_JS)
    measured = page.evaluate(MEASURE_JS, SLACK)
    icons = page.evaluate(ICONS_JS)

    SHOTS.mkdir(parents=True, exist_ok=True)
    shot = SHOTS / (page_path.replace("/", "_") + ".png")
    # Before any click: the page as it opens, typeset, with its images decoded.
    page.screenshot(path=str(shot), full_page=True)
    axe_start = time.perf_counter()
    violations = _axe(page, WIDTH)
    axe_seconds = time.perf_counter() - axe_start

    # Every player moves: jump to its last frame with the keyboard, as a reader would.
    players = []
    for p in page.evaluate(PLAYERS_JS):
        before = _frame(page, p)
        slider = page.locator(f'[data-player-test="{p["index"]}"]')
        slider.focus()
        slider.press("End")
        moved = _settle(functools.partial(_moved, page, p, before), True)
        players.append({**p, "moved": moved})
        slider.press("Home")

    # Every solution toggles: closed at first, open after a click, closed after a second one.
    solutions = []
    for i, sol in enumerate(page.locator("article .solution").all()):
        body = sol.locator(".admonition-title ~ *").first
        button = sol.locator(".toggle-button, summary, .admonition-title").first
        states = [body.is_visible()]
        for _ in range(2):
            button.click()
            states.append(_settle(body.is_visible, not states[-1]))
        solutions.append({"index": i, "states": states})

    # The chapter as a notebook: the link in the download menu, fetched from the server.
    notebooks = []
    for href in page.eval_on_selector_all(
        "a[href$='.ipynb']", "els => [...new Set(els.map(e => e.href))]"
    ):
        resp = context.request.get(href)
        notebooks.append({"href": href, "status": resp.status, "body": resp.body()})

    # The same page on a phone: the theme's narrow layout, math as typeset above.
    page.set_viewport_size({"width": PHONE_WIDTH, "height": PHONE_HEIGHT})
    page.wait_for_timeout(200)  # let resize handlers run
    phone = page.evaluate(PHONE_JS, SLACK)
    page.screenshot(path=str(SHOTS / f"phone_{shot.name}"), full_page=True)
    # pydata-sphinx-theme makes a box that scrolls at the new width a tab stop 300 ms after the
    # last resize (a debounced handler): axe-core sees the page as a phone that opened at 390 px.
    page.wait_for_timeout(400)
    axe_start = time.perf_counter()
    violations += _axe(page, PHONE_WIDTH)
    axe_seconds += time.perf_counter() - axe_start

    context.close()

    paths = {
        urllib.parse.unquote(urllib.parse.urlsplit(u).path).lstrip("/")
        for u in local
        if u.startswith(base)
    }
    files = {HTML / p for p in paths}
    assets = {HTML / p for p in paths if p.startswith("_static/") or p == "searchindex.js"}
    return {
        "page": page_path,
        "external": external,
        "local": local,
        "missing": missing,
        "errors": errors,
        "images": images,
        "players": players,
        "solutions": solutions,
        "notebooks": notebooks,
        "html_kb": (HTML / f"{page_path}.html").stat().st_size / 1024,
        "total_kb": sum(f.stat().st_size for f in files if f.is_file()) / 1024,
        "assets_kb": sum(f.stat().st_size for f in assets if f.is_file()) / 1024,
        "mathjax_requests": sorted(p for p in paths if p.startswith("_static/mathjax/")),
        "has_math": 'class="math' in (HTML / f"{page_path}.html").read_text(encoding="utf-8"),
        "icons": icons,
        "screenshot": shot,
        "seconds": time.perf_counter() - start,
        "phone": phone,
        "axe": violations,
        "axe_seconds": axe_seconds,
        **measured,
    }


# Debian's Chromium for the browser tests that drive pages themselves
# (tests/test_book_navigation.py and tests/test_book_figures.py import it, as they import `server`).
@pytest.fixture(scope="module")
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="module")
def visits(server):
    if not Path(CHROMIUM).exists():
        pytest.fail(f"no Chromium at {CHROMIUM}: `apt-get install -y chromium` (make test does)")
    if not AXE.is_file():
        pytest.fail(f"{AXE} is missing: run `npm ci` in the repository root (make test does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            result = {p: _visit(browser, server, p) for p in PAGES}
        finally:
            browser.close()
    _write_report(result)
    return result


def _table(result: dict) -> str:
    cols = ["page", "external", "raw TeX", "math", "clipped", "images", "players", "solutions",
            "notebooks", "phone cut", "HTML KB", "assets KB", "total KB", "s"]
    rows = [
        [
            v["page"].removeprefix("book/"),
            len(v["external"]),
            len(v["rawTex"]),
            v["math"],
            len(v["clipped"]),
            len(v["images"]),
            len(v["players"]),
            len(v["solutions"]),
            len(v["notebooks"]),
            len(v["phone"]["cut"]) + (v["phone"]["pageWidth"] > PHONE_WIDTH + SLACK),
            f"{v['html_kb']:.0f}",
            f"{v['assets_kb']:.0f}",
            f"{v['total_kb']:.0f}",
            f"{v['seconds']:.1f}",
        ]
        for v in result.values()
    ]
    totals = ["all pages"] + [
        sum(int(r[i]) for r in rows) if i < 10 else f"{sum(float(r[i]) for r in rows):.0f}"
        for i in range(1, len(cols))
    ]
    rows.append(totals)
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows, strict=True)]
    def fmt(row):
        cells = zip(row, widths, strict=True)
        return "  ".join(
            str(x).ljust(w) if i == 0 else str(x).rjust(w) for i, (x, w) in enumerate(cells)
        )

    return "\n".join([fmt(cols), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _axe_table(result: dict) -> str:
    """axe-core's violations: one row per rule and page, the violating elements in each view."""
    views = [f"{w}/{t}" for w in (WIDTH, PHONE_WIDTH) for t in THEMES]
    cols = ["rule", "impact", "page", *views, "all"]
    rows, totals = [], {}
    for v in result.values():
        counts = {}
        for x in v["axe"]:
            key = (x["rule"], x["impact"])
            counts.setdefault(key, dict.fromkeys(views, 0))[x["view"]] += len(x["nodes"])
        for (rule, impact), per_view in sorted(counts.items()):
            n = sum(per_view.values())
            rows.append([rule, impact, v["page"].removeprefix("book/"),
                         *per_view.values(), n])
            totals[(rule, impact)] = totals.get((rule, impact), 0) + n
    if not rows:
        return (f"axe-core {_axe_version()}: no violations on {len(result)} pages "
                f"({', '.join(views)})")
    rows += [[rule, impact, "all pages", *[""] * len(views), n]
             for (rule, impact), n in sorted(totals.items())]
    widths = [max(len(str(x)) for x in col) for col in zip(cols, *rows, strict=True)]
    def fmt(row):
        return "  ".join(str(x).ljust(w) if i < 3 else str(x).rjust(w)
                         for i, (x, w) in enumerate(zip(row, widths, strict=True)))
    head = f"axe-core {_axe_version()}: violating elements by rule and page"
    return "\n".join([head, fmt(cols), fmt(["-" * w for w in widths])] + [fmt(r) for r in rows])


def _axe_version() -> str:
    import json

    return json.loads((AXE.parent / "package.json").read_text())["version"]


def _write_report(result: dict) -> None:
    lines = [_table(result), "", _axe_table(result), ""]
    for v in result.values():
        for x in v["axe"]:
            for node in x["nodes"]:
                lines.append(
                    f"axe      {v['page']} {x['view']}: {x['rule']} ({x['impact']}) {node}"
                )
    for v in result.values():
        for c in v["clipped"]:
            lines.append(
                f"clipped  {v['page']}: {c['kind']} {c['width']} px wide, {c['shown']} px shown "
                f"(column {c['column']} px): {c['element']}"
            )
        if v["phone"]["pageWidth"] > PHONE_WIDTH + SLACK:
            lines.append(f"phone    {v['page']}: the page is {v['phone']['pageWidth']} px wide")
        for c in v["phone"]["cut"]:
            lines.append(
                f"phone    {v['page']}: {c['width']} px wide in a box with overflow-x "
                f"{c['overflow']}: {c['element']}"
            )
    (SHOTS / "report.txt").write_text("\n".join(lines) + "\n")


# --- the checks ---


def test_measurements_table(visits, capsys):
    with capsys.disabled():
        print(f"\nThe built book in Chromium at {WIDTH} px, phone at {PHONE_WIDTH} px ({SHOTS}):")
        print(_table(visits))


def test_no_serious_accessibility_violation(visits, capsys):
    with capsys.disabled():
        print(f"\n{_axe_table(visits)}")
        print(f"axe-core took {sum(v['axe_seconds'] for v in visits.values()):.0f} s in all")
    failing = [
        f"{p} {x['view']}: {x['rule']} ({x['impact']}, {x['help']}): {node}"
        for p, v in visits.items()
        for x in v["axe"]
        if x["impact"] in AXE_FAILING
        for node in x["nodes"]
    ]
    assert not failing, f"{len(failing)} serious or critical axe-core violations:\n" + (
        "\n".join(failing)
    )


def test_no_request_leaves_the_machine(visits):
    external = {p: v["external"] for p, v in visits.items() if v["external"]}
    assert not external, f"requests outside 127.0.0.1 (blocked): {external}"
    cdn = {p: v["cdn"] for p, v in visits.items() if v["cdn"]}
    assert not cdn, f"scripts or stylesheets that name another host: {cdn}"


def test_every_local_asset_exists_and_no_script_fails(visits):
    missing = {p: v["missing"] for p, v in visits.items() if v["missing"]}
    errors = {p: v["errors"] for p, v in visits.items() if v["errors"]}
    assert not missing, f"local files the pages ask for but the build lacks: {missing}"
    assert not errors, f"uncaught JavaScript errors: {errors}"


def test_math_is_typeset_with_no_raw_tex(visits):
    raw = {p: v["rawTex"] for p, v in visits.items() if v["rawTex"]}
    assert not raw, f"raw TeX left on the pages: {raw}"
    untypeset = [p for p in CHAPTERS if visits[p]["math"] == 0]
    assert not untypeset, f"chapters where MathJax typeset nothing: {untypeset}"


def _clipped(visits, kinds) -> list[str]:
    return [
        f"{p}: {c['kind']} {c['width']} px wide, {c['shown']} px shown (column {c['column']} px): "
        f"{c['element']}"
        for p, v in visits.items()
        for c in v["clipped"]
        if c["kind"] in kinds
    ]


def test_no_math_table_output_or_image_is_wider_than_its_column(visits):
    clipped = _clipped(visits, {"display math", "table", "code output", "image"})
    assert not clipped, f"{len(clipped)} elements wider than their column at {WIDTH} px:\n" + (
        "\n".join(clipped)
    )


def test_code_cells_fit_their_column(visits):
    clipped = _clipped(visits, {"code"})
    assert not clipped, f"{len(clipped)} code cells wider than their column at {WIDTH} px:\n" + (
        "\n".join(clipped)
    )


def test_nothing_is_cut_on_a_phone(visits):
    wide = {p: v["phone"]["pageWidth"] for p, v in visits.items()
            if v["phone"]["pageWidth"] > PHONE_WIDTH + SLACK}
    assert not wide, f"pages that scroll sideways at {PHONE_WIDTH} px (page width in px): {wide}"
    cut = {p: v["phone"]["cut"] for p, v in visits.items() if v["phone"]["cut"]}
    assert not cut, f"elements cut at {PHONE_WIDTH} px with no scroll box to reach the rest: {cut}"


def test_every_box_that_scrolls_on_a_phone_shows_it(visits):
    uncued = [
        f"{p}: {c['element']} hides {c['hidden']} px"
        for p, v in visits.items()
        for c in v["phone"]["uncued"]
    ]
    assert not uncued, (
        f"{len(uncued)} boxes scroll sideways at {PHONE_WIDTH} px with no shaded or faded edge:\n"
        + "\n".join(uncued)
    )


def test_pages_load_little_before_their_content(visits):
    heavy = {p: round(v["assets_kb"]) for p, v in visits.items()
             if v["assets_kb"] > ASSETS_LIMIT_KB}
    assert not heavy, f"pages loading over {ASSETS_LIMIT_KB} KB before their content (KB): {heavy}"
    needless = {p: v["mathjax_requests"] for p, v in visits.items()
                if not v["has_math"] and v["mathjax_requests"]}
    assert not needless, f"pages without math that load MathJax: {needless}"
    fontawesome = [p for p, v in visits.items()
                   if any("fontawesome.js" in u for u in v["local"])]
    assert not fontawesome, f"pages loading Font Awesome's script: {fontawesome}"


def test_every_icon_shows(visits):
    missing = {p: v["icons"]["missing"] for p, v in visits.items() if v["icons"]["missing"]}
    assert not missing, f"icons without their glyph or font: {missing}"
    assert all(v["icons"]["shown"] > 0 for v in visits.values()), "a page shows no icon at all"


def test_every_image_decodes(visits):
    broken = {p: [i["src"] for i in v["images"] if i["width"] == 0] for p, v in visits.items()}
    broken = {p: b for p, b in broken.items() if b}
    assert not broken, f"images that do not decode: {broken}"


def test_every_player_changes_its_frame(visits):
    stuck = {
        p: [q for q in v["players"] if not q["moved"]] for p, v in visits.items() if v["players"]
    }
    stuck = {p: s for p, s in stuck.items() if s}
    assert not stuck, f"players whose frame did not change when the slider moved: {stuck}"
    without = [p for p in CHAPTERS if _has_explorer(p) and not visits[p]["players"]]
    assert not without, f"chapters with an ipywidgets explorer but no kernel-free player: {without}"


def test_every_solution_toggles(visits):
    bad = {
        p: [s for s in v["solutions"] if s["states"] != [False, True, False]]
        for p, v in visits.items()
    }
    bad = {p: b for p, b in bad.items() if b}
    assert not bad, f"solutions that do not open and close (visible before/after clicks): {bad}"


def test_every_chapter_offers_its_executed_notebook(visits):
    for page in CHAPTERS:
        links = visits[page]["notebooks"]
        assert len(links) == 1, f"{page}: expected one .ipynb download link, found {links}"
        link = links[0]
        assert link["status"] == 200, f"{page}: {link['href']} answered {link['status']}"
        nb = nbformat.reads(link["body"].decode(), as_version=4)
        nbformat.validate(nb)
        assert nb.nbformat == 4 and nb.metadata.kernelspec.name == "python3", page
        assert "jupytext" not in nb.metadata, f"{page}: the notebook still asks for jupytext"
        code = [c for c in nb.cells if c.cell_type == "code"]
        assert any(c.outputs for c in code), f"{page}: the downloaded notebook has no outputs"
        assert not any(o.output_type == "error" for c in code for o in c.outputs), page
        assert code == [c for c in _expected_cells(page) if c.cell_type == "code"], (
            f"{page}: the downloaded notebook's code differs from the build's executed notebook"
        )
        # Its markdown is plain Markdown (tests/test_notebook_downloads.py renders it): no MyST.
        markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
        assert "```{" not in markdown and "{eval}`" not in markdown, f"{page}: MyST in the notebook"

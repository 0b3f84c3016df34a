"""The whole book as one PDF (`make pdf`, book/_ext/pdf_book.py) and the HTML book's link to it.

The PDF build (XeLaTeX, about a minute on top of the HTML book) is not part of `make test`: run
`make test-pdf`, which builds the PDF and the HTML book, then this file with MDQ_TEST_PDF=1. Without
that variable the tests of the built PDF are skipped; the extension's conversions of HTML-only
outputs are tested here either way. The PDF is read with poppler's pdfinfo, pdftotext and
pdfimages (Debian's poppler-utils, which `make pdf` installs with TeX).
"""

import base64
import io
import os
import re
import shutil
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path

import numpy as np
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import pdf_book  # noqa: E402

PDF = ROOT / "_build" / "latex" / pdf_book.PDF_NAME
LATEX_LOG = PDF.with_suffix(".log")
HTML = ROOT / "_build" / "html"
TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())

built_pdf = pytest.mark.skipif(
    os.environ.get("MDQ_TEST_PDF") != "1",
    reason="the PDF is tested by `make test-pdf` (or MDQ_TEST_PDF=1 after `make pdf`), not by "
    "`make test`",
)


# ------------------------------------------------------------ the extension, without a build


def test_html_table_becomes_a_table():
    html = (
        "<table><caption>Theorem 1: not valid</caption><tr><th>candidate P</th><th>valid</th></tr>"
        "<tr><td>tanh</td><td>&#10004;</td></tr><tr><td>hard <b>clip</b></td><td>&#10008;</td>"
        "</tr></table>"
    )
    table = pdf_book.html_table(html)
    assert table[0].astext() == "Theorem 1: not valid"
    head = [e.astext() for e in next(table.findall(pdf_book.nodes.thead)).findall(
        pdf_book.nodes.entry)]
    body = [e.astext() for e in next(table.findall(pdf_book.nodes.tbody)).findall(
        pdf_book.nodes.entry)]
    assert head == ["candidate P", "valid"]
    assert body == ["tanh", "\u2714", "hard clip", "\u2718"]
    assert pdf_book.html_table("<p>no table</p>") is None


def test_player_becomes_its_first_middle_and_last_frames():
    from PIL import Image

    from mdq_teach import plots

    def draw(fig, value):
        fig.subplots().plot([0, 1], [0, value])

    html = plots.player(draw, np.linspace(1, 5, 5), figsize=(2, 1), dpi=40,
                        label=lambda v: f"b = {v:g}")
    frames = pdf_book.player_frames(html)
    assert [label for _, label in frames] == ["b = 1", "b = 3", "b = 5"]
    for png, _ in frames:
        assert Image.open(io.BytesIO(png)).format == "PNG"
    assert pdf_book.player_frames("<div>no frames</div>") == []
    # every frame of the player's markup is found, in order
    assert len(pdf_book.PLAYER_FRAME.findall(html)) == 5
    base64.b64decode(pdf_book.PLAYER_FRAME.search(html)["data"])


def test_parts_and_the_pages_unnumbered_chapters_are_unnumbered_in_latex():
    tex = "\n".join([
        r"\part{Before you start}",
        r"\chapter{Notation}",
        r"\label{\detokenize{book/notation:notation}}",
        r"\section{Symbols}",
        r"\label{\detokenize{book/notation:symbols}}",
        r"\part{Part I: from quantization to mirror descent}",
        r"\chapter{Quantization}",
        r"\label{\detokenize{book/01_quantization:q}}",
        r"\section{Why quantize}",
        r"\chapter{Bibliography}",
        r"\label{\detokenize{book/bibliography:b}}",
        r"\subsection{Papers}",
        "",
    ])
    out = pdf_book.unnumber_latex(tex, {"book/notation", "book/bibliography", "book/index"})
    assert not re.search(r"^\\part\{", out, re.M)
    assert r"\addcontentsline{toc}{part}{Before you start}\part*{Before you start}" in out
    assert r"\chapter*{Notation}\phantomsection\addcontentsline{toc}{chapter}{Notation}" in out
    assert r"\section*{Symbols}" in out and r"\subsection*{Papers}" in out
    # a numbered chapter and its sections keep their numbers
    assert r"\chapter{Quantization}" in out and r"\section{Why quantize}" in out
    assert out.count(r"\label{") == tex.count(r"\label{")


def test_ci_and_readme_build_and_test_the_pdf():
    ci = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make test\n+make test-pdf$", ci, re.M)
    readme = (ROOT / "README.md").read_text()
    assert "make pdf" in readme and "make test-pdf" in readme
    makefile = (ROOT / "Makefile").read_text()
    assert re.search(r"^test-pdf: pdf$", makefile, re.M)
    assert "MDQ_TEST_PDF=1" in makefile


# ------------------------------------------------------------ the built PDF


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.fail(f"{name} is missing: `make pdf` installs poppler-utils with TeX")
    return path


def _pdf() -> Path:
    if not PDF.is_file():
        pytest.fail(f"{PDF.relative_to(ROOT)} is missing: build it with `make pdf`")
    return PDF


def _norm(text: str) -> str:
    """Text compared across the PDF and the sources: ligatures and curly quotes undone, soft
    hyphens and line breaks as single spaces."""
    text = unicodedata.normalize("NFKC", text)
    text = text.translate(str.maketrans({"\u2019": "'", "\u2018": "'", "\u201c": '"',
                                         "\u201d": '"', "\u2013": "-", "\u2014": "-"}))
    return " ".join(text.split())


@cache
def pdf_text() -> str:
    return subprocess.run(
        [_tool("pdftotext"), "-enc", "UTF-8", str(_pdf()), "-"],
        capture_output=True, text=True, check=True,
    ).stdout


def _chapters() -> list[tuple[str, str]]:
    out = []
    for part in TOC["parts"]:
        for chapter in part["chapters"]:
            source = ROOT / f"{chapter['file']}.md"
            title = next(
                line[2:] for line in source.read_text().splitlines() if line.startswith("# ")
            )
            out.append((chapter["file"], title))
    return out


@built_pdf
def test_pdf_is_newer_than_every_chapter():
    pdf = _pdf()
    for file, _ in _chapters():
        source = ROOT / f"{file}.md"
        assert pdf.stat().st_mtime >= source.stat().st_mtime, (
            f"{file}.md changed after the PDF was built: run `make pdf`"
        )


@built_pdf
def test_page_count_is_plausible():
    info = subprocess.run([_tool("pdfinfo"), str(_pdf())], capture_output=True, text=True,
                          check=True).stdout
    pages = int(re.search(r"^Pages:\s+(\d+)", info, re.M).group(1))
    # 143 pages at the first PDF (December 2026): 11 chapters, appendix, bibliography.
    assert 80 <= pages <= 600, f"{pages} pages"


@built_pdf
def test_title_and_every_chapter_title():
    text = _norm(pdf_text())
    book_title = yaml.safe_load((ROOT / "_config.yml").read_text())["title"]
    assert _norm(book_title) in text
    missing = [f"{file}: {title!r}" for file, title in _chapters()
               if _norm(re.sub(r"[`*]", "", title)) not in text]
    assert not missing, f"chapter titles not in the PDF: {missing}"


@built_pdf
def test_numbered_equations_and_references_to_them():
    text = pdf_text()
    # equation numbers at the right margin, chapter.number, as on the pages
    numbers = set(re.findall(r"\((\d{1,2}\.\d{1,2})\)\s*$", text, re.M))
    assert {"1.1", "2.1"} <= numbers, sorted(numbers)[:20]
    assert len(numbers) >= 20
    assert re.search(r"Eq\.\s+1\.1\b", text)


@built_pdf
def test_theorems_definitions_exercises_are_numbered_as_on_the_pages():
    text = pdf_text()
    assert re.search(r"\bDefinition 1\.1\b", text)
    assert re.search(r"\bExercise 2\.1\b", text)
    deeper = re.findall(r"\b(?:Theorem|Definition|Lemma|Exercise) \d+\.\d+\.\d+", text)
    assert not deeper, f"section-level numbers the pages do not use: {deeper[:5]}"


@built_pdf
def test_no_unresolved_reference_and_no_missing_glyph():
    text = pdf_text()
    lines = [line for line in text.splitlines() if "??" in line]
    assert not lines, f"unresolved references in the PDF: {lines[:5]}"
    log = LATEX_LOG.read_text(encoding="utf-8", errors="replace")
    assert "There were undefined references" not in log
    missing = sorted(set(re.findall(r"Missing character: There is no (.+?) in font", log)))
    assert not missing, f"characters the PDF's fonts lack: {missing}"


@built_pdf
def test_the_bibliography_is_one_chapter():
    toc = PDF.with_suffix(".toc").read_text(encoding="utf-8")
    # its list of references continues chapter 14, not an unnumbered chapter after an empty one
    entries = re.findall(
        r"\\contentsline \{chapter\}\{(?:\\numberline \{\d+\})?Bibliography\}", toc
    )
    assert len(entries) == 1, entries


@built_pdf
def test_figures_are_images_in_the_pdf():
    # The chapters' figures are vector PDFs (their SVG is for the HTML book: plots.FIGURE_FORMATS),
    # which pdfimages does not list; the players' frames and the heat maps are raster images.
    tex = PDF.with_suffix(".tex").read_text(encoding="utf-8")
    graphics = re.findall(r"\\sphinxincludegraphics(?:\[[^\]]*\])?\{\{?([^}]*)\}?([^}]*)\}", tex)
    names = ["".join(g) for g in graphics]
    assert len(names) >= 30, f"{len(names)} graphics in the LaTeX source"
    assert sum(n.endswith(".pdf") for n in names) >= 20, names
    assert not [n for n in names if n.endswith(".svg")], "SVG, which LaTeX cannot include"
    listing = subprocess.run([_tool("pdfimages"), "-list", str(_pdf())], capture_output=True,
                             text=True, check=True).stdout.splitlines()[2:]
    assert len(listing) >= 10, f"{len(listing)} raster images in the PDF"
    text = _norm(pdf_text())
    assert "Fig. 1.1" in text
    # the kernel-free players as frames, never the fallback text of an HTML output
    assert "Player frame" in text
    assert "IPython.core.display" not in text


@built_pdf
def test_bibliography_lists_every_entry():
    import bib_author_year
    from pybtex.database import parse_file

    bib = parse_file(str(ROOT / "book" / "references.bib"))
    style = bib_author_year.AuthorYearStyle()
    entries = list(style.sort(bib.entries.values()))
    labels = list(bib_author_year.AuthorYearLabels().format_labels(entries))
    text = pdf_text()
    missing = []
    for label, entry in zip(labels, entries, strict=True):
        persons = entry.persons.get("author") or entry.persons.get("editor")
        last = bib_author_year._last_name(persons[0]) if persons else ""
        # an entry of the list: its label at the start of a line, its first author soon after
        found = re.search(rf"^\[{re.escape(label)}\] [^\[]{{0,120}}{re.escape(last)}", text,
                          re.M | re.S)
        if found is None:
            missing.append(label)
    assert not missing, f"bibliography entries not in the PDF: {missing}"


@built_pdf
def test_html_links_to_the_pdf():
    copy = HTML / pdf_book.PDF_DOWNLOAD
    assert copy.is_file(), f"{copy.relative_to(ROOT)} is missing: `make pdf` builds the HTML after"
    assert copy.read_bytes() == _pdf().read_bytes(), "the HTML book serves an older PDF"
    index = (HTML / "book" / "index.html").read_text(encoding="utf-8")
    assert f'href="../{pdf_book.PDF_DOWNLOAD}"' in index
    chapter = (HTML / "book" / "01_quantization.html").read_text(encoding="utf-8")
    assert f'href="../{pdf_book.PDF_DOWNLOAD}"' in chapter

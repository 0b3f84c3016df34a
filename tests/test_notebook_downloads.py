"""The notebooks the built book offers for download read right without any Jupyter extension.

Each chapter page's download menu serves `_build/html/_sources/<page>.ipynb`, written by
book/_ext/offline_book.py with its markdown turned from MyST into plain Markdown
(book/_ext/plain_notebook.py). Every such notebook is rendered here by `nbconvert`'s HTML exporter
(what nbviewer and `jupyter nbconvert --to html` do, with no MyST support), and the rendered text
of its markdown cells must hold no MyST syntax, its solutions must be closed `<details>`, and the
numbers the chapter glues must be where its prose asks for them. Needs the built book (`make book`).
"""

import re
import sys
import warnings
from functools import cache
from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
SOURCES = ROOT / "_build" / "html" / "_sources"
EXECUTED = ROOT / "_build" / "jupyter_execute"
sys.path.insert(0, str(ROOT / "book" / "_ext"))
import plain_notebook  # noqa: E402

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
PAGES = [c["file"] for part in TOC["parts"] for c in part["chapters"]]
# The pages that are notebooks (jupytext front matter): every chapter, the fidelity appendix.
NOTEBOOKS = [
    p for p in PAGES if re.match(r"---\n(.*\n)*?kernelspec:", (ROOT / f"{p}.md").read_text())
]

# MyST left in the rendered text of a markdown cell.
MYST = {
    "directive fence": re.compile(r"(```|:::)\{"),
    "role": re.compile(r"\{[a-z][\w:+-]*\}`"),
    "option": re.compile(r"^:(label|class|name|tags):", re.M),
    "equation label": re.compile(r"\$\$\s*\([\w.:-]+\)"),
    "target": re.compile(r"^\([\w.:-]+\)=\s*$", re.M),
    "comment": re.compile(r"^%", re.M),
}
LITERAL = ("```{", "{cite}", "{eval}", ":label:", "{prf:")


def _downloaded(page: str) -> nbformat.NotebookNode:
    path = SOURCES / f"{page}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: build the book first (`make book`)")
    if path.stat().st_mtime < (ROOT / f"{page}.md").stat().st_mtime:
        pytest.fail(f"{page}.md changed after the last book build: rebuild it (`make book`)")
    return nbformat.read(path, as_version=4)


@cache
def _rendered(page: str):
    """The markdown cells of the downloaded notebook as nbconvert's HTML shows them."""
    from bs4 import BeautifulSoup
    from nbconvert import HTMLExporter

    with warnings.catch_warnings():  # glue records: "not able to be represented", as in Jupyter
        warnings.simplefilter("ignore", UserWarning)
        html, _ = HTMLExporter().from_notebook_node(_downloaded(page))
    soup = BeautifulSoup(html, "html.parser")
    return soup.select(".jp-MarkdownCell .jp-RenderedMarkdown")


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_no_myst_is_left_in_the_rendered_markdown(page):
    cells = _rendered(page)
    nb = _downloaded(page)
    assert len(cells) == sum(c.cell_type == "markdown" for c in nb.cells), page
    found = []
    for i, cell in enumerate(cells):
        # The text a reader sees; math stays TeX (MathJax typesets it in the browser).
        text = cell.get_text()
        found += [(i, s) for s in LITERAL if s in text]
        found += [(i, what, m[0]) for what, rx in MYST.items() for m in rx.finditer(text)]
    assert not found, f"{page}: MyST left in the rendered markdown cells: {found[:10]}"


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_solutions_are_closed_details(page):
    source = (ROOT / f"{page}.md").read_text()
    solutions = len(re.findall(r"^\s*`{3,}\{solution\}", source, re.M))
    details = [d for cell in _rendered(page) for d in cell.select("details")]
    assert len(details) == solutions, f"{page}: {solutions} solutions, {len(details)} <details>"
    for d in details:
        assert d.summary is not None and d.summary.get_text().startswith("Solution"), page
        assert not d.has_attr("open"), f"{page}: a solution shows open"
        assert d.get_text().strip() != d.summary.get_text().strip(), f"{page}: an empty solution"


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_glued_numbers_appear_in_the_prose(page):
    source = (ROOT / f"{page}.md").read_text()
    specs = re.findall(r"""\{eval\}`glued\(["']([^"']+)["']\)`""", source)
    glue = plain_notebook.glue_values(_downloaded(page))
    text = "\n".join(cell.get_text() for cell in _rendered(page))
    missing = []
    for spec in specs:
        key, fmt = spec.rsplit(":", 1) if ":" in spec else (spec, "")
        assert key in glue, f"{page}: nothing glued under {key!r}"
        data = glue[key]
        if "text/markdown" in data:
            value = data["text/markdown"].strip()
        else:
            value = plain_notebook.format_plain_text(data["text/plain"], fmt)
        if value not in text:
            missing.append((spec, value))
    assert not missing, f"{page}: glued values not in the rendered prose: {missing}"


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_citations_read_as_in_the_book_with_a_reference_list(page):
    from mdq_lab.cite import citations

    source = (ROOT / f"{page}.md").read_text()
    keys = {
        k.strip() for group in re.findall(r"\{cite\}`([^`]+)`", source) for k in group.split(",")
    }
    nb = _downloaded(page)
    if not keys:
        assert not any(c.source.startswith("## References") for c in nb.cells), page
        return
    last = nb.cells[-1]
    assert last.cell_type == "markdown" and last.source.startswith("## References"), page
    cites = citations(ROOT / "book" / "references.bib")
    text = "\n".join(cell.get_text() for cell in _rendered(page))
    for key in keys:
        assert f"[{cites[key]['label']}]" in last.source, f"{page}: {key} not in References"
        assert cites[key]["label"] in text.rsplit("References", 1)[0], f"{page}: {key} not cited"


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_code_cells_are_those_of_the_executed_chapter(page):
    nb = _downloaded(page)
    executed = nbformat.read(EXECUTED / f"{page}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert [c.source for c in code] == [c.source for c in executed.cells if c.cell_type == "code"]
    assert [c.source.strip() for c in code] == [
        c.source.strip() for c in jupytext.read(ROOT / f"{page}.md").cells if c.cell_type == "code"
    ], f"{page}: rebuild the book"
    # hidden cells (remove-cell) keep their tag, as in the book's executed notebook
    tags = [c.metadata.get("tags", []) for c in executed.cells if c.cell_type == "code"]
    assert [c.metadata.get("tags", []) for c in code] == tags, page


@pytest.mark.parametrize("page", NOTEBOOKS)
def test_numbered_things_carry_the_books_numbers(page):
    """Equation tags, figure captions and exercise headings with the chapter's numbers."""
    nb = _downloaded(page)
    markdown = "\n".join(c.source for c in nb.cells if c.cell_type == "markdown")
    source = (ROOT / f"{page}.md").read_text()
    chapter = Path(page).name[:2]
    if not chapter.isdigit():
        return
    number = str(int(chapter))
    labelled = len(re.findall(r"^\s*\$\$\s*\([\w.:-]+\)\s*$|^\s*:label: eq", source, re.M))
    tags = re.findall(r"\\tag\{(\d+)\.\d+\}", markdown)
    assert len(tags) == labelled and set(tags) <= {number}, f"{page}: {tags} for {labelled}"
    exercises = len(re.findall(r"^`{3,}\{exercise\}", source, re.M))
    headings = re.findall(rf"^### Exercise {number}\.(\d+)", markdown, re.M)
    assert headings == [str(k) for k in range(1, exercises + 1)], page
    boxes = re.findall(r"^`{3,}\{prf:(\w+)\}.*\n:label:", source, re.M)
    titled = re.findall(rf"^\*\*([A-Z][a-z]+) {number}\.\d+[* ]", markdown, re.M)
    assert [b.capitalize() for b in boxes] == titled, f"{page}: {boxes} boxes, titles {titled}"
    figures = len(re.findall(r"^    name: fig", source, re.M))
    captions = [c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("**Fig. ")]
    assert len(captions) == figures, f"{page}: {len(captions)} captions for {figures} figures"

"""Every chapter in the table of contents executed without a cell error, in the current book build.

`make test` builds the book first, and `jupyter-book build` executes every chapter (stopping on a
cell error: `allow_errors: false`). Rather than running each chapter a second time, these tests read
the executed notebooks the build left in `_build/jupyter_execute/` and check that they belong to the
chapters as they are now (same code, built after the last edit) and hold no error. To re-run one
chapter by hand: `python scripts/run_chapter.py book/NN_name.md`.
"""

from pathlib import Path

import jupytext
import nbformat
import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
EXECUTED = ROOT / "_build" / "jupyter_execute"
REPORTS = ROOT / "_build" / "html" / "reports"

TOC = yaml.safe_load((ROOT / "_toc.yml").read_text())
CHAPTERS = [
    c["file"] for part in TOC["parts"] for c in part["chapters"] if c["file"][5:7].isdigit()
]


def _executed(chapter: str) -> nbformat.NotebookNode:
    path = EXECUTED / f"{chapter}.ipynb"
    if not path.is_file():
        pytest.fail(f"{path.relative_to(ROOT)} is missing: build the book first (`make book`)")
    source = ROOT / f"{chapter}.md"
    if path.stat().st_mtime < source.stat().st_mtime:
        pytest.fail(f"{chapter}.md changed after the last book build: rebuild it (`make book`)")
    return nbformat.read(path, as_version=4)


def _code(nb: nbformat.NotebookNode) -> list[str]:
    return [c.source.strip() for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("chapter", CHAPTERS)
def test_chapter_executed_in_the_book_build(chapter):
    nb = _executed(chapter)
    # The executed notebook is of the chapter's current code, cell for cell.
    assert _code(nb) == _code(jupytext.read(ROOT / f"{chapter}.md")), (
        f"{chapter}: the executed notebook's code differs from {chapter}.md; rebuild the book"
    )
    code = [c for c in nb.cells if c.cell_type == "code"]
    # A notebook taken from the execution cache has no execution counts, but has its outputs.
    assert any(c.outputs for c in code), f"{chapter}: the executed notebook has no output at all"
    for i, cell in enumerate(code):
        for out in cell.outputs:
            assert out.output_type != "error", (
                f"{chapter}: code cell {i} raised {out.ename}: {out.evalue}"
            )
    log = REPORTS / f"{chapter}.err.log"
    assert not log.exists(), f"{chapter}: the build left an execution report {log}"

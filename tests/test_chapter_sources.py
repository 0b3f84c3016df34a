"""Opening a chapter in JupyterLab and saving it must not rewrite its source.

JupyterLab saves a chapter through jupytext with the settings of ``jupytext.toml``; a chapter whose
cell metadata is written in another YAML style than jupytext's own would change on every save (the
JupyterLab test shows this through a browser for the widget chapters; this checks every chapter).
"""

import re
from pathlib import Path

import jupytext
import pytest
from jupytext.config import find_jupytext_configuration_file, load_jupytext_configuration_file

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted(
    p for p in (ROOT / "book").glob("*.md") if p.read_text().startswith("---\njupytext")
)


def test_every_numbered_chapter_is_a_jupytext_notebook():
    numbered = {p.name for p in (ROOT / "book").glob("[0-9][0-9]_*.md")}
    assert numbered and numbered <= {p.name for p in CHAPTERS}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_saving_through_jupytext_keeps_the_source(path, tmp_path):
    config = load_jupytext_configuration_file(find_jupytext_configuration_file(str(ROOT)))
    out = tmp_path / path.name
    jupytext.write(jupytext.read(path), out, fmt="md:myst", config=config)
    assert out.read_text() == path.read_text(), f"{path.name} changes when saved by jupytext"


# --- every chapter ends with a summary and exercises ----------------------------------------------

NUMBERED = sorted((ROOT / "book").glob("[0-9][0-9]_*.md"))
FENCE = re.compile(r"^(`{3,}|:{3,})")
EXERCISE = re.compile(r"^```\{exercise\}[^\n]*\n:label: (?P<label>\S+)$", re.MULTILINE)
SOLUTION = re.compile(r"^```\{solution\} (?P<label>\S+)\n(?P<options>(?::[^\n]*\n)*)", re.MULTILINE)


def _sections(text: str) -> list[str]:
    """The chapter's `## ` headings, in order, outside code cells and directives."""
    headings, fence = [], None
    for line in text.splitlines():
        match = FENCE.match(line)
        if fence is None and match:
            fence = match[1]
        elif fence is not None and line.strip() == fence:
            fence = None
        elif fence is None and line.startswith("## "):
            headings.append(line[3:].strip())
    return headings


def test_every_numbered_chapter_is_checked():
    assert len(NUMBERED) >= 11 and all(p in CHAPTERS for p in NUMBERED)


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_a_summary_comes_just_before_the_exercises(path):
    headings = _sections(path.read_text())
    assert headings.count("Summary") == 1, f"{path.name}: one '## Summary' section, got {headings}"
    assert headings.count("Exercises") == 1, f"{path.name}: one '## Exercises', got {headings}"
    i = headings.index("Exercises")
    assert headings[i - 1] == "Summary", (
        f"{path.name}: '## Summary' must come immediately before '## Exercises': {headings}"
    )
    summary = path.read_text().split("\n## Summary\n", 1)[1].split("\n## Exercises\n", 1)[0]
    bullets = [line for line in summary.splitlines() if line.startswith("- ")]
    assert len(bullets) >= 2, f"{path.name}: the summary has {len(bullets)} bullet points"


@pytest.mark.parametrize("path", NUMBERED, ids=lambda p: p.stem)
def test_at_least_three_exercises_each_with_a_dropdown_solution(path):
    text = path.read_text()
    exercises = [m["label"] for m in EXERCISE.finditer(text)]
    solutions = {m["label"]: m["options"] for m in SOLUTION.finditer(text)}
    assert text.count("```{exercise}") == len(exercises), f"{path.name}: an exercise has no label"
    assert text.count("```{solution}") == len(solutions), f"{path.name}: a solution names no label"
    assert len(exercises) >= 3, f"{path.name}: {len(exercises)} exercises, at least 3 expected"
    assert sorted(exercises) == sorted(solutions), (
        f"{path.name}: exercises {exercises} and solutions {sorted(solutions)} do not match"
    )
    closed = [label for label, options in solutions.items() if ":class: dropdown" not in options]
    assert not closed, f"{path.name}: solutions that are not dropdowns: {closed}"
    # every exercise sits in the Exercises section
    assert text.index("\n## Exercises\n") < text.index("```{exercise}"), path.name


def test_exercise_labels_are_unique_across_the_book():
    labels = [m["label"] for p in NUMBERED for m in EXERCISE.finditer(p.read_text())]
    duplicates = sorted({label for label in labels if labels.count(label) > 1})
    assert not duplicates, f"exercise labels used twice: {duplicates}"


# --- one notation across the book (book/notation.md) ----------------------------------------------

PAGES = sorted(
    p for p in (ROOT / "book").glob("*.md") if p.name not in {"appendix_fidelity.md"}
)  # the fidelity appendix is the one page that lists the papers' items by their own numbers
CODE_CELL = re.compile(r"^```\{code-cell\}[^\n]*\n.*?^```$", re.S | re.M)
CODE_SPAN = re.compile(r"(?<!`)(`{1,2})(?!`)[^`\n]+?\1(?!`)")  # inline, not a fence
# a reference to a paper's numbered item ("Eq. 15", "Theorem 2", "Tables 1, 2"), not the book's
# own numbering ("Eq. 3.2", "Theorem 5.1")
PAPER_NUMBER = re.compile(
    r"\b(?:Eqs?|Equations?|Theorems?|Tables?|Figs?|Figures?|Sec|Sections?|Lemmas?|Propositions?"
    r"|Corollar(?:y|ies)|Algorithms?)\.? \d+[a-z]?\b(?!\.\d)"
)
SIDE_NOTE = "(the paper's "


def _prose(text: str) -> str:
    """A page's prose: code cells, code spans and `%` comment lines blanked (lines kept)."""
    text = CODE_CELL.sub(lambda m: "\n" * m.group(0).count("\n"), text)
    text = CODE_SPAN.sub("", text)
    return re.sub(r"^%.*$", "", text, flags=re.M)


def _in_side_note(text: str, pos: int) -> bool:
    """Whether ``pos`` lies inside a parenthesis that opens with "(the paper's "."""
    depth, i = 0, pos
    while i > 0:
        i -= 1
        if text[i] == ")":
            depth += 1
        elif text[i] == "(":
            if depth == 0:
                return " ".join(text[i : i + 40].split()).startswith(SIDE_NOTE)
            depth -= 1
    return False


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_the_auxiliary_variable_is_x_tilde(path):
    # chapters 9 and 10 once wrote theta for what chapters 1-7 call x~
    text = path.read_text()
    assert "\\theta" not in text, f"{path.name}: write the auxiliary variable as \\tilde x"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_the_iteration_index_is_k(path):
    prose = _prose(path.read_text())
    math = " ".join(re.findall(r"\$\$.*?\$\$|\$[^$\n]+\$", prose, re.S))
    index_t = r"(?:\\[A-Za-z]+|\b[A-Za-z])(?:_|\^)\{?t(?:\s*[+-]\s*1)?\}?(?![A-Za-z])"
    found = re.findall(index_t, math)
    assert not found, f"{path.name}: iteration index t in {found}; the book counts with k"


@pytest.mark.parametrize("path", PAGES, ids=lambda p: p.stem)
def test_papers_numbers_only_in_side_notes(path):
    text = path.read_text()
    prose = _prose(text)
    loose = [
        (prose.count("\n", 0, m.start()) + 1, m.group(0))
        for m in PAPER_NUMBER.finditer(prose)
        if not _in_side_note(prose, m.start())
    ]
    assert not loose, (
        f"{path.name}: the papers' numbers outside a side note '(the paper's ...)' at "
        f"(line, text) {loose}; refer to the book's own item with {{eq}}, {{numref}} or {{prf:ref}}"
    )
    headings = [line for line in prose.splitlines() if line.startswith("#")]
    assert not [h for h in headings if PAPER_NUMBER.search(h)], f"{path.name}: {headings}"
    # figure captions and labels printed by code cells use the book's numbering only
    for cell in CODE_CELL.findall(text):
        assert not PAPER_NUMBER.search(cell), f"{path.name}: a paper's number in code:\n{cell}"


def test_the_notation_page_lists_every_method_name():
    from mdq_teach.tables import METHOD_NAMES

    page = (ROOT / "book" / "notation.md").read_text()
    toc = (ROOT / "_toc.yml").read_text()
    assert "book/notation" in toc.split("book/01_quantization")[0], "notation page before chapter 1"
    for method, name in METHOD_NAMES.items():
        assert f"`{method}`" in page and name in page, f"{method} ({name}) missing from notation.md"

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

"""The fidelity appendix: every item the book claims to cover has a chapter section and a test."""

import textwrap

import pytest

from mdq_teach import fidelity

# The numbered items of the mirror descent paper, counted in its text (appendices included).
PAPER_ITEMS = (
    [f"md:eq{i}" for i in range(1, 39)]
    + [f"md:def{i}" for i in (1, 2)]
    + [f"md:thm{i}" for i in range(1, 5)]
    + [f"md:ex{i}" for i in (1, 2, 3)]
    + [f"md:alg{i}" for i in (1, 2)]
    + [f"md:fig{i}" for i in range(1, 6)]
    + [f"md:tab{i}" for i in range(1, 12)]
)
# The claims (a)-(d) of the ProxConnect abstract, (c) and (d) in two parts, and its experiments.
ABSTRACT_CLAIMS = ["pc:a", "pc:b", "pc:c1", "pc:c2", "pc:d1", "pc:d2", "pc:e"]


def test_every_covered_item_has_a_section_and_a_test_and_every_marker_an_item():
    table = fidelity.build()
    assert fidelity.problems(table) == []


def test_the_registry_lists_every_numbered_item_of_the_papers():
    _, items = fidelity.load_items()
    assert sorted(i.id for i in items) == sorted(PAPER_ITEMS + ABSTRACT_CLAIMS)


def test_uncovered_items_are_the_experiments_only():
    _, items = fidelity.load_items()
    uncovered = {i.id for i in items if not i.covered}
    assert uncovered <= {f"md:tab{i}" for i in (1, 2, 3, 4, 5, 7, 11)} | {
        "md:fig4", "md:fig5", "pc:e"}
    assert all(len(i.reason) > 20 for i in items if not i.covered)


# -- the generator on a small synthetic tree, so that the checks above cannot pass vacuously -----

REGISTRY = """
sources:
  md: {title: "a paper", cite: key}
items:
  - {id: md:eq1, kind: equation, where: Sec. 1, what: "first | equation"}
  - {id: md:eq2, kind: equation, where: Sec. 1, what: "second equation"}
  - {id: md:thm1, kind: theorem, where: Sec. 2, what: "a theorem"}
  - {id: md:tab1, kind: table, where: Sec. 3, what: "results", covered: false,
     reason: "needs a GPU"}
"""

CHAPTER = """
---
jupytext: {}
---

% fidelity: md:thm1

# A chapter about $\\beta$

## First section

```{code-cell} ipython3
# a comment, not a heading
```

% fidelity: md:eq1, md:eq2

## Second: the $\\beta$ schedule

````{prf:proof}
```python
# not a heading either
```
% fidelity: md:eq1
````

% fidelity: md:nope
"""

TESTS = '''
import pytest


@pytest.mark.fidelity("md:eq1")
@pytest.mark.parametrize("x", [1, 2])
def test_one(x):
    pass


@pytest.mark.slow
def test_unmarked():
    pass


class TestGroup:
    @pytest.mark.fidelity("md:thm1", "md:tab1")
    def test_method(self):
        pass


@pytest.mark.fidelity("md:missing")
def test_unknown():
    pass


@pytest.mark.fidelity("md:eq2")
def helper():
    pass
'''


@pytest.fixture
def tree(tmp_path):
    book, tests = tmp_path / "book", tmp_path / "tests"
    (book / "data").mkdir(parents=True)
    tests.mkdir()
    (book / "data" / "paper_items.yaml").write_text(textwrap.dedent(REGISTRY))
    (book / "01_demo.md").write_text(CHAPTER.lstrip())
    (tests / "test_demo.py").write_text(TESTS)
    return book, tests


def test_generator_links_markers_to_their_sections_and_tests(tree):
    table = fidelity.build(*tree)
    items = {i.id: i for i in table.items}
    eq1, eq2, thm1 = items["md:eq1"], items["md:eq2"], items["md:thm1"]
    # Fenced "# ..." lines are not headings: eq1 belongs to "First section", then to the second.
    assert [(s.title, s.anchor) for s in eq1.sections] == [
        ("First section", "first-section"),
        ("Second: the $\\beta$ schedule", "second-the-beta-schedule"),
    ]
    assert [s.title for s in eq2.sections] == ["First section"]
    assert eq1.sections[0].chapter == "A chapter about $\\beta$"
    # A marker above the first heading links to the chapter's top.
    assert [(s.title, s.anchor) for s in thm1.sections] == [("A chapter about $\\beta$", "")]
    assert [(t.file, t.name) for t in eq1.tests] == [("test_demo.py", "test_one")]
    assert [t.name for t in thm1.tests] == ["TestGroup.test_method"]
    assert eq2.tests == []
    assert sorted(table.unknown) == ["01_demo.md:26: md:nope", "test_demo.py:23: md:missing"]
    assert fidelity.counts(table) == {
        "items": 4, "covered": 3, "chapter_marked": 3, "test_marked": 3, "uncovered": 1}


def test_problems_name_every_gap(tree):
    problems = fidelity.problems(fidelity.build(*tree))
    assert "md:eq2: covered, but no test has @pytest.mark.fidelity('md:eq2')" in problems
    assert any(p.startswith("md:tab1: marked 'covered: false' but has markers") for p in problems)
    assert any("md:nope" in p for p in problems) and any("md:missing" in p for p in problems)
    assert "marker on a function pytest does not run: test_demo.py:28: md:eq2 on helper" in problems
    assert len(problems) == 5


def test_markdown_links_sections_and_states_reasons(tree):
    text = fidelity.markdown(fidelity.build(*tree))
    lines = text.splitlines()
    rows = [line for line in lines if line.startswith("| `")]
    head = "| item | in the paper | book section | checked by |"
    assert len(rows) == 4 and lines.count(head) == 2
    # grouped: the chapter the item is in, then the items the book does not cover
    assert lines[0] == '**Chapter 1: <a href="01_demo.html">A chapter about \\beta</a>**'
    assert lines.index("**Not covered by the book**") > lines.index(rows[0])
    row = next(line for line in lines if line.startswith("| `md:eq1`"))
    assert 'Ch. 1: <a href="01_demo.html#first-section">First section</a>' in row
    assert "first \\| equation" in row  # a pipe in the text does not split the row
    # a test name breaks only after "::" and "_", never inside a word
    assert '<code class="mdq-test">test_<wbr>demo::<wbr>test_<wbr>one</code>' in row
    assert "| not covered | needs a GPU |" in next(x for x in lines if "md:tab1" in x)
    assert fidelity.markdown(fidelity.build(*tree), source="pc") == ""


def test_several_tests_sit_in_a_closed_list(tree):
    table = fidelity.build(*tree)
    item = next(i for i in table.items if i.tests)
    item.tests = [fidelity.TestRef("test_demo.py", f"test_{n}", n) for n in range(2)]
    row = next(x for x in fidelity.markdown(table).splitlines() if f"`{item.id}`" in x)
    assert "<details><summary>2 tests</summary>" in row and row.count('class="mdq-test"') == 2


@pytest.mark.parametrize(
    "entry, match",
    [
        ("{id: md:eq1, kind: equation, where: x, what: y}", "appears twice"),
        ("{id: md:eq9, kind: lemma, where: x, what: y}", "kind must be one of"),
        ("{id: md:eq9, kind: table, where: x, what: y, covered: false}", "needs a one-line reason"),
        ("{id: md:eq9, kind: table, where: x, what: y, reason: z}", "only for uncovered"),
        ("{id: xx:eq9, kind: table, where: x, what: y}", "source not in"),
        ("{id: md-eq9, kind: table, where: x, what: y}", "must look like"),
        ("{id: md:eq9, kind: table, what: y}", "lacks"),
    ],
)
def test_bad_registry_entries_are_refused(tmp_path, entry, match):
    path = tmp_path / "items.yaml"
    path.write_text(textwrap.dedent(REGISTRY) + f"  - {entry}\n")
    with pytest.raises(ValueError, match=match):
        fidelity.load_items(path)


@pytest.mark.parametrize(
    "title",
    ["Eq. 15 step by step", "The rounded network catches up as $\\beta$ grows",
     "ProxConnect's guarantee on a convex toy problem", "The bridge: MD-S with $P$ is ProxConnect"],
)
def test_anchor_is_the_section_id_docutils_makes(title):
    nodes = pytest.importorskip("docutils.nodes")
    # Sphinx ids the section by its text, in which inline math is the TeX source.
    assert fidelity.anchor(title) == nodes.make_id(title.replace("$", ""))

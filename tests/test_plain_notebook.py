"""book/_ext/plain_notebook.py on snippets: each MyST construct of the chapters as plain Markdown.

The built book's downloaded notebooks are checked end to end (rendered by nbconvert) in
tests/test_notebook_downloads.py; here each construct is converted on its own, without a build.
"""

import json
import sys
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "book" / "_ext"))
from plain_notebook import plain_markdown, plain_notebook  # noqa: E402

# What the book shows for each label (book_resolver in offline_book.py asks Sphinx).
REFS = {
    "fig-a": "Fig. 1.2",
    "eq-a": "Eq. 1.3",
    "def-a": "Definition 1.1",
    "thm-a": "Theorem 1.2",
    "ex-a": "Exercise 1.4",
    "tab-a": "Table 1.1",
    "sec-a": "The real experiments",
    "02_other": "Mirror descent",
}
CITES = {
    "ajanthan2021mirror": {
        "label": "Ajanthan et al., 2021",
        "text": "T. Ajanthan et al. Mirror descent view for neural network quantization. 2021.",
        "url": "https://example.org/md",
    },
    "bai2019proxquant": {
        "label": "Bai et al., 2019",
        "text": "Y. Bai et al. ProxQuant.",
        "url": "",
    },
}


def md(source: str, **kw) -> str:
    return plain_markdown(source, kw.pop("resolve", REFS), kw.pop("citations", CITES), **kw)


def glue_output(key: str, data: dict) -> nbformat.NotebookNode:
    prefix = "application/papermill.record/"
    return nbformat.v4.new_output(
        "display_data",
        data={prefix + k: v for k, v in data.items()},
        metadata={"scrapbook": {"name": key, "mime_prefix": prefix}},
    )


def test_admonition_is_a_titled_box():
    out = md("```{admonition} Learning goals\n:class: tip\nAfter this chapter you can\n\n- a\n```")
    assert out.startswith("<div") and out.endswith("</div>")
    assert "**Learning goals**\n\nAfter this chapter you can\n\n- a" in out
    assert ":class:" not in out and "```" not in out


def test_named_admonition_and_dropdown():
    assert "**Warning**\n\nCareful." in md("```{warning}\nCareful.\n```")
    out = md("```{note} More\n:class: dropdown\nHidden.\n```")
    assert out.startswith("<details>") and "Hidden." in out


def test_prf_box_gets_its_number_and_title():
    out = md("```{prf:definition} Quantized training\n:label: def-a\n\nThe problem.\n```")
    assert "**Definition 1.1 (Quantized training)**\n\nThe problem." in out
    assert "{prf:" not in out and ":label:" not in out
    out = md("```{prf:theorem}\n:label: thm-a\nStatement.\n```")
    assert "**Theorem 1.2**" in out


def test_prf_box_without_a_number_keeps_its_kind():
    assert "**Theorem (T)**" in md("```{prf:theorem} T\n:label: thm-x\nS.\n```", resolve=None)
    assert "**Proof.**\n\nBy induction." in md("```{prf:proof}\nBy induction.\n```")


def test_exercise_is_a_section_and_its_solution_is_closed_details():
    out = md(
        "```{exercise}\n:label: ex-a\n\nShow it.\n```\n\n"
        "```{solution} ex-a\n:class: dropdown\n\nIt holds:\n\n$$\nx = 1\n$$\n```"
    )
    assert out.startswith("### Exercise 1.4\n\nShow it.")
    solution = out[out.index("<details>") :]
    assert solution.startswith("<details>\n<summary>Solution to Exercise 1.4</summary>\n\n")
    assert "It holds:\n\n$$\nx = 1\n$$\n\n</details>" in solution
    assert "open" not in solution and ":class:" not in out


def test_solution_of_an_unknown_exercise_is_still_hidden():
    out = md("```{solution} ex-none\nA.\n```", resolve=None)
    assert out == "<details>\n<summary>Solution</summary>\n\nA.\n\n</details>"


@pytest.mark.parametrize(
    "source, expected",
    [
        ("$$\nx = 1\n$$ (eq-a)", "$$\nx = 1\n\\tag{1.3}\n$$"),
        ("$$ x = 1 $$ (eq-a)", "$$ x = 1 \\tag{1.3} $$"),
        ("```{math}\n:label: eq-a\nx = 1\n```", "$$\nx = 1\n\\tag{1.3}\n$$"),
        ("```{math}\nx = 1\n```", "$$\nx = 1\n$$"),
    ],
)
def test_equation_labels_become_tags(source, expected):
    assert md(source) == expected


def test_equation_label_without_a_number_is_dropped():
    assert md("$$\nx\n$$ (eq-zzz)", resolve=None) == "$$\nx\n$$"


def test_indented_directive_in_a_list_item_keeps_its_indent():
    source = "3. Measure,\n   ```{math}\n   :label: eq-a\n   y = 2\n   ```\n   where y is."
    assert md(source) == "3. Measure,\n   $$\n   y = 2\n   \\tag{1.3}\n   $$\n   where y is."


@pytest.mark.parametrize(
    "source, expected",
    [
        ("see {numref}`fig-a`", "see Fig. 1.2"),
        ("by {eq}`eq-a`", "by Eq. 1.3"),
        ("({prf:ref}`def-a`)", "(Definition 1.1)"),
        ("exercise {ref}`ex-a`", "exercise Exercise 1.4"),
        ("Section {ref}`sec-a`", "Section The real experiments"),
        ("Chapter {doc}`02_other`", "Chapter Mirror descent"),
        ("{ref}`this part <sec-a>`", "this part"),
        ("{numref}`Figure %s <fig-a>`", "Figure 1.2"),
        ("{math}`x^2`", "$x^2$"),
        ("H{sub}`2`O", "H<sub>2</sub>O"),
    ],
)
def test_reference_roles_read_as_in_the_book(source, expected):
    assert md(source) == expected


def test_unresolved_reference_falls_back_to_the_target_and_is_reported():
    problems = []
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("see {numref}`fig-z`")])
    out = plain_notebook(nb, REFS, CITES, problems)
    assert out.cells[0].source == "see fig-z"
    assert problems == ["{numref}`fig-z`: no such target"]


def test_roles_inside_code_are_left_alone():
    source = "Write `{eval}` roles.\n\n```python\nx = '{cite}`k`'\n% not a comment\n```"
    assert md(source) == source


def test_comment_lines_and_targets_are_removed():
    source = "## Section\n% fidelity: md:eq6, md:eq7\n\n(sec-a)=\n## Next\n\ntext % kept"
    assert md(source) == "## Section\n\n## Next\n\ntext % kept"


def test_directive_nested_in_a_longer_fence():
    source = "````{admonition} Outer\n```{note}\nInner.\n```\n````"
    out = md(source)
    assert "**Outer**" in out and "**Note**\n\nInner." in out and "```" not in out


def test_list_table_becomes_a_pipe_table_with_its_caption():
    source = (
        "```{list-table} The iterates.\n:header-rows: 1\n:name: tab-a\n\n"
        "* - method\n  - update\n* - BC\n  - $\\theta - \\eta g$\n```"
    )
    assert md(source) == (
        "**Table 1.1.** The iterates.\n\n| method | update |\n|---|---|\n"
        "| BC | $\\theta - \\eta g$ |"
    )


def test_dropped_directives():
    assert md("a\n\n```{bibliography}\n```\n\nb") == "a\n\nb"


def test_citations_and_the_reference_cell():
    nb = nbformat.v4.new_notebook(
        cells=[
            nbformat.v4.new_markdown_cell("As in {cite}`ajanthan2021mirror`."),
            nbformat.v4.new_markdown_cell("Both {cite}`bai2019proxquant,ajanthan2021mirror`."),
        ]
    )
    out = plain_notebook(nb, REFS, CITES)
    assert out.cells[0].source == "As in [Ajanthan et al., 2021]."
    assert out.cells[1].source == "Both [Bai et al., 2019, Ajanthan et al., 2021]."
    refs = out.cells[-1]
    assert refs.cell_type == "markdown" and len(out.cells) == 3
    assert refs.source == (
        "## References\n\n"
        "- [Ajanthan et al., 2021] T. Ajanthan et al. Mirror descent view for neural network "
        "quantization. 2021. <https://example.org/md>\n"
        "- [Bai et al., 2019] Y. Bai et al. ProxQuant."
    )


def test_no_reference_cell_without_citations():
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("no citation")])
    assert len(plain_notebook(nb, REFS, CITES).cells) == 1


def test_unknown_citation_key_is_reported():
    problems = []
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("{cite}`nobody2020`")])
    out = plain_notebook(nb, REFS, CITES, problems)
    assert out.cells[0].source == "[nobody2020]"
    assert problems == ["{cite}`nobody2020`: not in the bibliography"]


def test_eval_pastes_the_glued_value_formatted_as_the_book():
    code = nbformat.v4.new_code_cell(
        "glue(...)",
        outputs=[
            glue_output("mib", {"text/plain": "1.3308956623077393"}),
            glue_output("count", {"text/plain": "11173962"}),
            glue_output("dist", {"text/markdown": "2.8 × 10⁻⁵", "text/plain": "<Markdown>"}),
        ],
    )
    text = (
        'fits in {eval}`glued("mib:.2f")` MiB, {eval}`glued("count:,")` weights, within '
        "{eval}`glued(\"dist\")`, raw {eval}`glued('mib')`."
    )
    nb = nbformat.v4.new_notebook(cells=[code, nbformat.v4.new_markdown_cell(text)])
    out = plain_notebook(nb)
    assert out.cells[1].source == (
        "fits in 1.33 MiB, 11,173,962 weights, within 2.8 × 10⁻⁵, raw 1.3308956623077393."
    )


def test_eval_of_a_value_not_glued_is_reported():
    problems = []
    nb = nbformat.v4.new_notebook(
        cells=[nbformat.v4.new_markdown_cell('x = {eval}`glued("nothing:.2f")`')]
    )
    out = plain_notebook(nb, problems=problems)
    assert "{eval}" not in out.cells[0].source
    assert problems == ["{eval}`glued(\"nothing:.2f\")`: nothing glued under 'nothing'"]


def test_code_cells_stay_as_they_are_and_figures_get_their_caption():
    hidden = nbformat.v4.new_code_cell("import numpy as np")
    hidden.metadata["tags"] = ["remove-cell"]
    figure = nbformat.v4.new_code_cell(
        "plt.plot(x)",
        outputs=[nbformat.v4.new_output("display_data", data={"text/plain": "<Figure>"})],
    )
    figure.metadata["mystnb"] = {
        "figure": {"caption": "Two panels, {eq}`eq-a`.\n", "name": "fig-a"}
    }
    hidden_figure = nbformat.v4.new_code_cell("plt.plot(y)")
    hidden_figure.metadata = {"tags": ["remove-cell"], "mystnb": {"figure": {"caption": "No."}}}
    nb = nbformat.v4.new_notebook(cells=[hidden, figure, hidden_figure])
    before = json.dumps(nb, sort_keys=True)

    out = plain_notebook(nb, REFS)

    assert json.dumps(nb, sort_keys=True) == before  # the argument is left alone
    assert [c.cell_type for c in out.cells] == ["code", "code", "markdown", "code"]
    assert [out.cells[i] for i in (0, 1, 3)] == [hidden, figure, hidden_figure]
    assert out.cells[2].source == "**Fig. 1.2.** Two panels, Eq. 1.3."
    nbformat.validate(out)


def test_a_whole_cell_as_a_chapter_writes_it():
    source = """## The parameter-space formulation
% fidelity: md:eq6, md:eq7

Write the loss {cite}`ajanthan2021mirror`.

```{prf:definition} Quantized training in parameter space
:label: def-a

Quantized training is the problem

$$
\\min_{\\mathbf{w} \\in \\mathcal{Q}^m} L(\\mathbf{w})
$$ (eq-a)

where $\\ell$ is a loss.
```

The feasible set of {eq}`eq-a` has $d^m$ points."""
    out = md(source)
    for myst in ("```{", "{cite}", "{eq}", ":label:", "{prf:", "% fidelity", "$$ ("):
        assert myst not in out
    assert "**Definition 1.1 (Quantized training in parameter space)**" in out
    assert "\\tag{1.3}\n$$" in out and "The feasible set of Eq. 1.3 has" in out
    assert "Write the loss [Ajanthan et al., 2021]." in out


def test_markdown_a_cell_prints_is_converted_but_glued_values_are_not():
    # chapter 11's missing() prints an admonition with display(Markdown(...)); the book parses it
    # as MyST, so the downloaded notebook must show it as plain Markdown too
    admonition = (
        "```{admonition} No GPU record yet\n:class: warning\nNothing here is replaced by a CPU "
        "run, see {eq}`eq-a`. Run\n\n    python scripts/gpu_suite.py run\n```"
    )
    printed = nbformat.v4.new_output("display_data", data={"text/markdown": admonition})
    table = nbformat.v4.new_output("execute_result", data={"text/markdown": "| a |\n|---|\n| 1 |"},
                                   execution_count=1)
    glued = glue_output("ch-a", {"text/markdown": "```{note} kept\n```", "text/plain": "x"})
    cell = nbformat.v4.new_code_cell("missing(...)", outputs=[printed, table, glued])
    nb = nbformat.v4.new_notebook(cells=[cell])
    before = json.dumps(nb, sort_keys=True)

    out = plain_notebook(nb, REFS)

    assert json.dumps(nb, sort_keys=True) == before
    shown = out.cells[0].outputs[0]["data"]["text/markdown"]
    assert shown.startswith("<div") and "**No GPU record yet**" in shown
    for myst in ("```{", ":class:", "{eq}"):
        assert myst not in shown
    assert "see Eq. 1.3." in shown and "    python scripts/gpu_suite.py run" in shown
    assert out.cells[0].outputs[1]["data"]["text/markdown"] == "| a |\n|---|\n| 1 |"
    assert out.cells[0].outputs[2] == glued
    nbformat.validate(out)

"""The chapters read in JupyterLab as in the book (no browser here: ``test_jupyterlab.py`` looks at
the real page), and the environment is set up so that JupyterLab opens them as notebooks and saving
does not rewrite them."""

import json
from pathlib import Path

import pytest
import yaml

from mdq_lab import install as labsetup
from mdq_lab import markup as labmarkup
from mdq_teach import glue as glue_mod

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = sorted((ROOT / "book").glob("*.md"))
BIB = ROOT / "book" / "references.bib"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapter_prose_has_no_markup_only_the_book_understands(path):
    # A find here shows raw in JupyterLab (a glue key, an undefined macro in red); the fix is
    # `python -m mdq_lab.markup book/*.md`.
    assert labmarkup.problems(path.read_text(encoding="utf-8")) == []


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_chapters_with_glued_prose_import_glued(path):
    text = path.read_text(encoding="utf-8")
    if '{eval}`glued("' in text:  # the kernel evaluates the expression: glued must be defined
        assert "from mdq_teach.glue import glue, glued" in text


def test_book_macros_are_the_ones_the_book_defines_and_spelled_out_alike():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    macros = config["sphinx"]["config"]["mathjax3_config"]["tex"]["macros"]
    assert macros == labmarkup.BOOK_MACROS  # a new book macro must be spelled out for JupyterLab


def test_rewrite_replaces_book_markup_in_markdown_only_and_is_idempotent():
    chapter = (
        "---\nkernelspec: {}\n---\n\n"
        "For $x \\in \\R^n$, $\\prox_r$ and $\\Rightarrow$:"
        " {glue:text}`k-1:.2f` and {glue:md}`k-2`.\n"
        "\n```{code-cell} ipython3\nfrom myst_nb import glue\n"
        "label = r'$\\R$ {glue:text}`k`'\n```\n"
        "\n$\\argmin_x \\sign(x)$\n"
    )
    out = labmarkup.rewrite(chapter)
    assert "$x \\in \\mathbb{R}^n$, $\\operatorname{prox}_r$ and $\\Rightarrow$" in out
    assert '{eval}`glued("k-1:.2f")` and {eval}`glued("k-2")`' in out
    assert "label = r'$\\R$ {glue:text}`k`'" in out  # code is code
    assert "from mdq_teach.glue import glue, glued\n" in out
    assert "$\\operatorname*{argmin}_x \\operatorname{sign}(x)$" in out
    assert labmarkup.rewrite(out) == out and labmarkup.problems(out) == []
    assert len(labmarkup.problems(chapter)) == 7  # the import, 2 roles, 4 macros


def test_citation_roles_other_than_cite_are_listed():
    # JupyterLab (labcite) draws every citation as the book draws {cite}: "[Bubeck, 2015]".
    chapter = (
        "See {cite}`a,b`, {cite:t}`a` and\n{cite:p}`b`.\n"
        "\n```{code-cell} ipython3\nx = '{cite:t}`a`'\n```\n"
    )
    assert labmarkup.problems(chapter) == [
        "line 1: {cite:t} (write {cite})", "line 2: {cite:p} (write {cite})",
    ]
    assert labmarkup.rewrite(chapter) == chapter


def test_setup_without_a_bibliography_installs_no_extension_and_says_so(tmp_path, capsys):
    assert labsetup.main(["--prefix", str(tmp_path)]) == 0
    assert (tmp_path / "share/jupyter/lab/settings/overrides.d/mdq-teach.json").is_file()
    assert not (tmp_path / "share/jupyter/labextensions").exists()
    out = capsys.readouterr().out
    assert "No citations extension" in out and "--bib" in out
    assert "labextensions" not in out


def test_setup_with_a_missing_bibliography_stops_before_writing(tmp_path, capsys):
    prefix = tmp_path / "env"
    prefix.mkdir()
    assert labsetup.main(["--prefix", str(prefix), "--bib", str(tmp_path / "absent.bib")]) == 2
    assert "bib: no file" in capsys.readouterr().err
    assert not any(prefix.iterdir())


@pytest.mark.parametrize(
    "value, spec",
    [(0.123456, ""), (0.123456, ".2f"), (0.5, ".0%"), (12, "d"), (12, ""), (3.0, ".3g"),
     (2.5e-7, ".1e"), ("tanh", ""), (True, "")],
)
def test_glued_formats_values_as_myst_nb_pastes_them(value, spec):
    # The reference: myst-nb's own formatting of the text/plain data that glue records.
    from IPython.core.formatters import format_display_data
    from myst_nb.core.variables import format_plain_text

    glue_mod._values["k"] = value
    expected = format_plain_text(format_display_data(value)[0]["text/plain"], spec or "s")
    assert glue_mod.glued(f"k:{spec}" if spec else "k") == expected


def test_glued_markdown_values_come_back_as_their_text_and_errors_are_clear():
    from IPython.display import Markdown

    glue_mod._values["md"] = Markdown("4.4 × 10³")
    assert glue_mod.glued("md") == "4.4 × 10³"
    with pytest.raises(KeyError, match="nothing glued under 'absent'"):
        glue_mod.glued("absent:.2f")
    with pytest.raises(ValueError, match="spec must be a string"):
        glue_mod.glued(3)
    with pytest.raises(ValueError, match="name must be a non-empty string"):
        glue_mod.glue("", 1.0)


def test_environment_is_set_up_for_the_book(tmp_path):
    """What `python -m mdq_lab.install` (run by make) writes: chapters open as notebooks
    on double-click; no kernelspec is written, and the kernel's display name in the chapters'
    headers is the one ipykernel installs its python3 kernel under (JupyterLab writes that name
    back on save), and jupytext stamps no version, so opening, running and saving a chapter leaves
    it byte for byte."""
    from ipykernel.kernelspec import get_kernel_dict

    path = labsetup.install(tmp_path, bib=BIB)
    assert path == tmp_path / "share/jupyter/lab/settings/overrides.d/mdq-teach.json"
    settings = json.loads(path.read_text())
    viewers = settings["@jupyterlab/docmanager-extension:plugin"]["defaultViewers"]
    assert viewers == {"markdown": "Jupytext Notebook"}  # the chapters are .md, nothing else
    # Every cell rendered, so Run All evaluates every {eval} of the prose (test_jupyterlab.py).
    assert settings["@jupyterlab/notebook-extension:tracker"] == {"windowingMode": "none"}
    # Each {cite} reads as in the book (test_lab_cite.py, test_jupyterlab.py).
    citations = tmp_path / "share/jupyter/labextensions/mdq-teach-citations/package.json"
    assert json.loads(citations.read_text())["name"] == "mdq-teach-citations"
    assert not (tmp_path / "share/jupyter/kernels").exists()
    display_name = get_kernel_dict()["display_name"]
    for chapter in CHAPTERS:
        text = chapter.read_text(encoding="utf-8")
        if not text.startswith("---\n"):
            continue  # a page without code (index, bibliography)
        header = yaml.safe_load(text.split("---\n")[1])
        assert header["kernelspec"]["display_name"] == display_name, chapter.name
        assert "jupytext_version" not in header["jupytext"].get("text_representation", {})
    jupytext_toml = (ROOT / "jupytext.toml").read_text()
    for dropped in ("jupytext_version", "format_version"):
        assert f"-jupytext.text_representation.{dropped}" in jupytext_toml
    assert "-user_expressions" in jupytext_toml  # jupyterlab-myst's {eval} results

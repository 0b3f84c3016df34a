"""mdq_teach.tables: the Markdown tables the chapters show, and the methods' display names."""

import pytest

from mdq_teach import tables
from mdq_teach.nn import method_table


def test_a_table_has_a_named_header_a_separator_and_one_line_per_row():
    text = tables.markdown_text(["method", "accuracy"], [["BC", "0.91"], ["a|b", "$x|y$"]])
    assert text.splitlines() == [
        "| method | accuracy |",
        "|---|---|",
        "| BC | 0.91 |",
        "| a\\|b | $x|y$ |",  # a pipe is escaped outside math only
    ]


@pytest.mark.parametrize("header", [["method", ""], [], ["  "]])
def test_an_empty_header_cell_is_refused(header):
    with pytest.raises(ValueError, match="header cell"):
        tables.markdown_text(header, [])


def test_a_row_of_the_wrong_length_is_refused():
    with pytest.raises(ValueError, match="cells"):
        tables.markdown_text(["a", "b"], [["1"]])


def test_markdown_table_is_shown_as_markdown():
    shown = tables.markdown_table(["a"], [[1]])
    assert shown._repr_markdown_() == "| a |\n|---|\n| 1 |"


def test_every_trained_method_has_a_display_name():
    methods = {row["method"] for row in method_table()}
    assert methods <= set(tables.METHOD_NAMES)
    assert tables.display_name("md-tanh-s") == "MD-tanh-S"
    assert tables.display_name("float (for PTQ)") == "float (for PTQ)"

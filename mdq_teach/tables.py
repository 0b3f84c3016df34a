"""Small tables for the chapters: Markdown that the book and JupyterLab both render.

A chapter cell that ends with ``markdown_table(header, rows)`` shows the table (the value is an
IPython ``Markdown`` object); the book parses it as MyST, so ``$...$`` in a cell is math.
``METHOD_NAMES`` holds the display names the prose uses for the method strings the code takes
(``"md-tanh-s"`` is MD-tanh-S).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

__all__ = ["METHOD_NAMES", "display_name", "markdown_table", "markdown_text"]

METHOD_NAMES = {
    "float": "float",
    "bc": "BC",
    "pq": "PQ",
    "pq-l1": "PQ-L1",
    "pq-l2": "PQ-L2",
    "pmf": "PMF",
    "gd-tanh": "GD-tanh",
    "md-tanh": "MD-tanh",
    "md-tanh-s": "MD-tanh-S",
    "md-softmax": "MD-softmax",
    "md-softmax-s": "MD-softmax-S",
    "proxconnect": "ProxConnect",
}


def display_name(method: str) -> str:
    """The name the prose uses for a method string: ``"md-tanh-s"`` -> ``"MD-tanh-S"``.
    A string that is not a method (a label such as ``"float (for PTQ)"``) is returned as it is."""
    return METHOD_NAMES.get(method, method)


def _cell(value) -> str:
    """A cell's text on one line; a "|" outside math is escaped (inside math, write \\mid)."""
    text = str(value).replace("\n", " ")
    return text if "$" in text else text.replace("|", "\\|")


def markdown_text(header: Sequence[str], rows: Iterable[Sequence]) -> str:
    """A pipe table: one header row, a separator, one line per row. Every header cell must be
    non-empty (an empty header cell has no accessible name)."""
    header = [str(h) for h in header]
    if not header or any(not h.strip() for h in header):
        raise ValueError(f"every header cell needs a name, got {header!r}")
    lines = ["| " + " | ".join(_cell(h) for h in header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        row = list(row)
        if len(row) != len(header):
            raise ValueError(f"row {row!r} has {len(row)} cells, the header {len(header)}")
        lines.append("| " + " | ".join(_cell(c) for c in row) + " |")
    return "\n".join(lines)


def markdown_table(header: Sequence[str], rows: Iterable[Sequence]):
    """``markdown_text`` as an IPython ``Markdown`` object, shown when a cell ends with it (the
    text itself where IPython is not installed)."""
    text = markdown_text(header, rows)
    try:
        from IPython.display import Markdown
    except ModuleNotFoundError:
        return text
    return Markdown(text)

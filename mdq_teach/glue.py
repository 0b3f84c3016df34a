"""Numbers in the prose that show in JupyterLab as in the book.

A chapter computes a number in a code cell and ``glue``s it; its prose writes
{eval}`glued("key:format")`. In the built book, ``book/_ext/glue_eval.py`` pastes the glued value
(as myst-nb's ``{glue:text}`` would, or ``{glue:md}`` for Markdown). In JupyterLab, jupyterlab-myst
evaluates the expression in the kernel when the markdown cell runs, and ``glued`` returns the value
``glue`` recorded in this kernel, formatted the same way. (``{glue:text}`` itself shows only its
key in JupyterLab: no JupyterLab extension knows myst-nb's roles.)
"""

from __future__ import annotations

from ast import literal_eval

_values: dict[str, object] = {}


def glue(name: str, variable, display: bool = True):
    """myst-nb's ``glue``, also keeping ``variable`` for ``glued`` in this kernel. Without
    myst-nb (the ``widgets`` extra, no book build in this environment) nothing would read what
    myst-nb records for the book, so the value is only shown (``display``) and kept."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a non-empty string, got {name!r}")
    _values[name] = variable
    try:
        from myst_nb import glue as myst_glue
    except ModuleNotFoundError:
        if display:
            from IPython.display import display as show

            show(variable)
        return None
    return myst_glue(name, variable, display=display)


def _plain(value) -> str:
    """The text myst-nb pastes for a value: its text/plain repr."""
    from IPython.core.formatters import format_display_data

    data, _ = format_display_data(value)
    return data.get("text/plain", str(value))


def format_glued(value, fmt_spec: str = "") -> str:
    """``value`` as ``{glue:text}`key:fmt_spec``` shows it (myst-nb's format_plain_text)."""
    return format_plain(_plain(value), fmt_spec)


def format_plain(text: str, fmt_spec: str = "") -> str:
    """A value's text/plain repr ``text`` as ``{glue:text}`key:fmt_spec``` shows it (myst-nb's
    format_plain_text; book/_ext/plain_notebook.py formats the glue a notebook recorded so)."""
    try:
        plain = literal_eval(text)
    except (SyntaxError, ValueError):
        plain = text
    if fmt_spec == "":
        return str(plain)
    kind = fmt_spec[-1]
    if kind == "s":
        plain = str(plain)
    elif kind in "bcdoxX":
        plain = int(plain)
    elif kind in "eEfFgGn%":
        plain = float(plain)
    return format(plain, fmt_spec)


def glued(spec: str):
    """The value glued under ``key`` in this kernel, for ``spec`` = "key" or "key:format".

    A Markdown value (``{glue:md}`` in the book) comes back as its source text: the chapters glue
    plain Unicode (``plots.sci``) that way, and jupyterlab-myst shows a string result as text
    where it does not render a Markdown result at all.
    """
    if not isinstance(spec, str):
        raise ValueError(f"spec must be a string 'key' or 'key:format', got {spec!r}")
    key, fmt_spec = spec.rsplit(":", 1) if ":" in spec else (spec, "")
    if key not in _values:
        raise KeyError(f"nothing glued under {key!r} in this kernel yet (run the cells above)")
    value = _values[key]
    if hasattr(value, "_repr_markdown_") and isinstance(getattr(value, "data", None), str):
        return value.data
    return format_glued(value, fmt_spec)

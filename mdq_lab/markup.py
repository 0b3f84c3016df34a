"""Chapter prose that reads the same in JupyterLab as in the book.

``python -m mdq_lab.markup [--check] book/*.md`` rewrites (or, with ``--check``, lists)
the markup in markdown cells that only the book build understands:

- TeX macros the book defines for MathJax in ``_config.yml`` (``\\R``, ``\\prox``, ...):
  jupyterlab-myst typesets with KaTeX and knows none of them, so chapters spell them out
  (``BOOK_MACROS``);
- myst-nb's ``{glue:text}`` and ``{glue:md}`` roles, which JupyterLab shows as their bare key:
  chapters write {eval}`glued("key:format")` instead (``mdq_teach.glue``).

``--check`` also lists citation roles other than ``{cite}`` (``{cite:p}``, ``{cite:t}``, ...):
JupyterLab draws every citation as the book draws ``{cite}`` (``labcite``), so the chapters
write only that one. These are not rewritten: the sentence around them may need a change.

In code cells only the import of ``glue`` changes (``GLUE_IMPORT``): the kernel needs ``glued``.
``tests/test_lab_markup.py`` runs the check on every chapter.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

BOOK_MACROS = {
    "R": r"\mathbb{R}",
    "sign": r"\operatorname{sign}",
    "argmin": r"\operatorname*{argmin}",
    "prox": r"\operatorname{prox}",
}
GLUE_IMPORT = ("from myst_nb import glue\n", "from mdq_teach.glue import glue, glued\n")
_CODE_CELL = re.compile(r"^```\{code-cell\}.*?^```[ \t]*$", re.S | re.M)
_GLUE_ROLE = re.compile(r"\{glue:(?:text|md)\}`([^`]+)`")
_CITE_VARIANT = re.compile(r"\{cite:[a-z]+\}")
_MACRO = re.compile(r"\\(" + "|".join(BOOK_MACROS) + r")(?![A-Za-z])")


def _markdown_parts(text: str):
    """(start, end) of every stretch of ``text`` outside code cells."""
    pos = 0
    for cell in _CODE_CELL.finditer(text):
        yield pos, cell.start()
        pos = cell.end()
    yield pos, len(text)


def _rewrite_markdown(md: str) -> str:
    md = _GLUE_ROLE.sub(lambda m: '{eval}`glued("' + m[1] + '")`', md)
    return _MACRO.sub(lambda m: BOOK_MACROS[m[1]], md)


def rewrite(text: str) -> str:
    """``text`` (a chapter) with its markdown cells' book-only markup replaced."""
    out, pos = [], 0
    for start, end in _markdown_parts(text):
        out.append(text[pos:start])
        out.append(_rewrite_markdown(text[start:end]))
        pos = end
    out.append(text[pos:])
    return "".join(out).replace(*GLUE_IMPORT)


def problems(text: str) -> list[str]:
    """Book-only markup left in ``text``'s markdown cells, one line per find."""
    found = [f"code: {GLUE_IMPORT[0].strip()}"] if GLUE_IMPORT[0] in text else []
    for start, end in _markdown_parts(text):
        for m in _GLUE_ROLE.finditer(text, start, end):
            found.append(f"line {text.count(chr(10), 0, m.start()) + 1}: {m[0]}")
        for m in _MACRO.finditer(text, start, end):
            found.append(f"line {text.count(chr(10), 0, m.start()) + 1}: \\{m[1]}")
        for m in _CITE_VARIANT.finditer(text, start, end):
            found.append(f"line {text.count(chr(10), 0, m.start()) + 1}: {m[0]} (write {{cite}})")
    return found


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--check", action="store_true", help="list, do not rewrite")
    args = parser.parse_args(argv)
    bad = 0
    for path in args.files:
        text = path.read_text(encoding="utf-8")
        if args.check:
            for line in problems(text):
                print(f"{path}: {line}")
                bad += 1
        elif rewrite(text) != text:
            path.write_text(rewrite(text), encoding="utf-8")
            print(f"rewrote {path}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

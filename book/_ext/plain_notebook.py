"""A chapter notebook whose markdown reads right in plain Jupyter: MyST turned into Markdown/HTML.

The chapters are MyST: directives (```` ```{prf:theorem} ````, ```` ```{exercise} ````, ...),
roles ({cite}`key`, {eq}`label`, {eval}`glued("key:fmt")`), labelled equations
(``$$ ... $$ (label)``), ``% comment`` lines. JupyterLab with jupyterlab-myst draws them; plain
JupyterLab, nbviewer, GitHub or ``jupyter nbconvert`` show them as raw text. ``plain_notebook``
rewrites the markdown cells of an executed chapter into what any Markdown renderer with MathJax
shows as the book does:

- admonitions and ``{prf:...}`` boxes become a ``<div>`` with a bold title ("Theorem 3.1 (...)");
  an exercise a "### Exercise 1.2" section; a solution a closed ``<details>`` block;
- a labelled equation keeps its number as ``\\tag{1.3}`` (or loses the label when it has none);
- ``{numref}``, ``{ref}``, ``{eq}``, ``{doc}``, ``{prf:ref}`` become the text the book shows
  ("Fig. 1.2", "Eq. 1.3", "Definition 1.1"), from ``resolve``; without one, the target's text;
- ``{cite}`` becomes "[Ajanthan et al., 2021]" and a "References" cell at the end lists the works;
- ``{eval}`glued("key:fmt")``` becomes the value glued under key in the notebook's outputs,
  formatted as the book pastes it (``book/_ext/glue_eval.py``);
- a code cell that draws a numbered figure gets its caption in a markdown cell after it.

Code cells and their metadata are left as they are; Markdown a cell printed (an admonition, a
table) is converted like a markdown cell. ``book/_ext/offline_book.py`` applies
this to the notebook each chapter page offers for download.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any

import nbformat

__all__ = ["plain_notebook", "plain_markdown", "glue_values", "PlainConverter"]

# resolve(role, target, explicit_title) -> the text the book shows for the reference, or None.
Resolver = Callable[[str, str, "str | None"], "str | None"]

FENCE_OPEN = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,}|:{3,})(?P<info>[^`]*)$")
DIRECTIVE = re.compile(r"^\{(?P<name>[\w:.+-]+)\}\s*(?P<arg>.*)$")
OPTION = re.compile(r"^:(?P<key>[\w-]+):\s*(?P<value>.*)$")
TARGET = re.compile(r"^\s*\([\w.:-]+\)=\s*$")
COMMENT = re.compile(r"^\s*%")
EQ_LABEL_CLOSE = re.compile(r"^(?P<indent>\s*)\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
EQ_LABEL_ONE_LINE = re.compile(r"^(?P<head>\s*\$\$.*\S)\s*\$\$\s*\((?P<label>[^()\s]+)\)\s*$")
# A role, or an inline code span (left as it is, roles inside it included).
ROLE_OR_CODE = re.compile(
    r"\{(?P<role>[A-Za-z][\w:+-]*)\}(?P<ticks>`+)(?P<content>.+?)(?P=ticks)"
    r"|(?P<code>(?P<cticks>`+).+?(?P=cticks))",
    re.S,
)
EXPLICIT = re.compile(r"^(?P<title>.*?)\s*<(?P<target>[^<>]+)>$", re.S)
GLUED = re.compile(r"""^glued\((["'])(?P<spec>[^"']+)\1\)$""")

ADMONITIONS = {
    "admonition": "Note",
    "note": "Note",
    "tip": "Tip",
    "hint": "Hint",
    "important": "Important",
    "seealso": "See also",
    "attention": "Attention",
    "caution": "Caution",
    "warning": "Warning",
    "danger": "Danger",
    "error": "Error",
    "margin": "",
    "sidebar": "",
    "topic": "",
    "epigraph": "",
    "div": "",
}
# Border colour of a box by admonition class or directive (the book's theme's hues).
COLOURS = {
    "tip": "#2e7d32",
    "hint": "#2e7d32",
    "seealso": "#2e7d32",
    "important": "#00838f",
    "warning": "#ef6c00",
    "caution": "#ef6c00",
    "attention": "#ef6c00",
    "danger": "#c62828",
    "error": "#c62828",
    "prf": "#5c6bc0",
    "exercise": "#5c6bc0",
}
CODE_DIRECTIVES = {"code", "code-block", "sourcecode"}
DROPPED = {"bibliography", "tableofcontents", "glossary", "index", "only", "toctree"}
INLINE_CODE_ROLES = {"code", "literal", "samp", "command", "file", "envvar", "option"}
REF_ROLES = {
    "ref",
    "numref",
    "eq",
    "doc",
    "prf:ref",
    "std:ref",
    "std:numref",
    "std:doc",
    "math:numref",
    "any",
    "term",
    "download",
}


def _split_explicit(content: str) -> tuple[str | None, str]:
    match = EXPLICIT.match(content.strip())
    if match and match["title"]:
        return match["title"], match["target"].strip()
    return None, content.strip()


def glue_values(nb: Mapping) -> dict[str, dict[str, str]]:
    """key -> mime bundle of every value ``glue``d in the notebook's outputs (mime prefix off)."""
    out: dict[str, dict[str, str]] = {}
    for cell in nb.get("cells", []):
        for output in cell.get("outputs", []):
            record = output.get("metadata", {}).get("scrapbook")
            if not isinstance(record, Mapping) or "name" not in record:
                continue
            prefix = record.get("mime_prefix", "")
            data = {
                mime[len(prefix) :]: value if isinstance(value, str) else "".join(value)
                for mime, value in output.get("data", {}).items()
                if mime.startswith(prefix)
            }
            out[record["name"]] = data
    return out


def format_plain_text(text: str, fmt_spec: str) -> str:
    """A glued text/plain value as myst-nb's ``{glue:text}`key:fmt_spec``` pastes it."""
    from mdq_teach.glue import format_plain

    return format_plain(text, fmt_spec)


def _numref_title(title: str, text: str) -> str:
    number = text.split()[-1] if text.split() else text
    return title.replace("%s", number).replace("{number}", number)


class PlainConverter:
    """The state of one notebook's conversion: the references resolved, the works cited."""

    def __init__(
        self,
        resolve: Resolver | Mapping[str, str] | None = None,
        citations: Mapping[str, Mapping[str, str]] | None = None,
        glue: Mapping[str, Mapping[str, str]] | None = None,
    ):
        self._resolve = resolve
        self.citations = citations or {}
        self.glue = glue or {}
        self.cited: list[str] = []
        self.problems: list[str] = []

    # --- references ---

    def resolve(self, role: str, target: str, title: str | None = None) -> str | None:
        if self._resolve is None:
            return None
        if callable(self._resolve):
            return self._resolve(role, target, title)
        text = self._resolve.get(target)
        if text is None or title is None:
            return text
        return _numref_title(title, text) if role.endswith("numref") else title

    def reference(self, role: str, content: str) -> str:
        title, target = _split_explicit(content)
        if role == "doc" or role.endswith(":doc"):
            target = target.removesuffix(".md").removesuffix(".ipynb")
        text = self.resolve(role, target, title)
        if text is not None:
            return text
        self.problems.append(f"{{{role}}}`{content}`: no such target")
        if title is not None and not role.endswith("numref"):
            return title
        return target

    def numbered(self, label: str | None, fallback: str, role: str = "numref") -> str:
        """The item's name with its number, "Exercise 1.2", or ``fallback`` unnumbered."""
        text = self.resolve(role, label, None) if label else None
        return text or fallback

    def equation_number(self, label: str) -> str | None:
        text = self.resolve("eq", label, None)
        if not text:
            return None
        match = re.search(r"\d[\w.-]*", text)
        return match[0] if match else None

    # --- inline ---

    def cite(self, content: str) -> str:
        labels = []
        for key in (k.strip() for k in content.split(",")):
            if not key:
                continue
            if key not in self.cited:
                self.cited.append(key)
            if key in self.citations:
                labels.append(self.citations[key]["label"])
            else:
                self.problems.append(f"{{cite}}`{key}`: not in the bibliography")
                labels.append(key)
        return "[" + ", ".join(labels) + "]"

    def eval(self, content: str) -> str:
        match = GLUED.match(content.strip())
        if match is None:
            self.problems.append(f'{{eval}}`{content}`: not glued("key") or glued("key:format")')
            return f"`{content}`"
        spec = match["spec"]
        key, fmt = spec.rsplit(":", 1) if ":" in spec else (spec, "")
        data = self.glue.get(key)
        if data is None and ":" in spec and spec in self.glue:
            key, fmt, data = spec, "", self.glue[spec]
        if data is None:
            self.problems.append(f"{{eval}}`{content}`: nothing glued under {key!r}")
            return f"`{content}`"
        if "text/markdown" in data:
            return data["text/markdown"].strip()
        return format_plain_text(data.get("text/plain", ""), fmt)

    def role(self, role: str, content: str) -> str:
        name = role.split(":", 1)[1] if role.startswith(("std:", "py:")) else role
        if role == "eval":
            return self.eval(content)
        if role == "cite" or role.startswith("cite:") or role == "footcite":
            return self.cite(content)
        if role in ("math", "m"):
            return f"${content}$"
        if role in REF_ROLES or role.endswith(":ref") or role.endswith(":numref"):
            return self.reference(role, content)
        if name in INLINE_CODE_ROLES:
            ticks = "``" if "`" in content else "`"
            return f"{ticks}{content}{ticks}"
        if name in ("sub", "sup", "kbd"):
            return f"<{name}>{content}</{name}>"
        title, _ = _split_explicit(content)  # abbr, guilabel, menuselection, ...
        return title if title is not None else content

    def inline(self, text: str) -> str:
        def sub(match: re.Match) -> str:
            if match["code"] is not None:
                return match["code"]
            return self.role(match["role"], match["content"])

        return ROLE_OR_CODE.sub(sub, text)

    # --- blocks ---

    def lines(self, text: str) -> str:
        """Plain lines (no fences): comments and targets out, equation labels as tags, roles."""
        out = []
        for line in text.split("\n"):
            if COMMENT.match(line) or TARGET.match(line):
                continue
            match = EQ_LABEL_CLOSE.match(line)
            if match:
                number = self.equation_number(match["label"])
                if number:
                    out.append(f"{match['indent']}\\tag{{{number}}}")
                out.append(f"{match['indent']}$$")
                continue
            match = EQ_LABEL_ONE_LINE.match(line)
            if match:
                number = self.equation_number(match["label"])
                tag = f" \\tag{{{number}}}" if number else ""
                out.append(f"{match['head']}{tag} $$")
                continue
            out.append(line)
        return self.inline("\n".join(out))

    def markdown(self, source: str) -> str:
        """One markdown cell's source, converted."""
        lines = source.split("\n")
        out: list[str] = []
        plain: list[str] = []
        i = 0

        def flush() -> None:
            if plain:
                out.append(self.lines("\n".join(plain)))
                plain.clear()

        while i < len(lines):
            match = FENCE_OPEN.match(lines[i])
            if match is None:
                plain.append(lines[i])
                i += 1
                continue
            fence, indent = match["fence"], match["indent"]
            close = re.compile(rf"^[ \t]*{re.escape(fence[0])}{{{len(fence)},}}[ \t]*$")
            end = next((j for j in range(i + 1, len(lines)) if close.match(lines[j])), len(lines))
            body = [_dedent(line, indent) for line in lines[i + 1 : end]]
            directive = DIRECTIVE.match(match["info"].strip())
            flush()
            if directive is None:  # a plain code block: verbatim
                out.append("\n".join(lines[i : end + 1]))
            else:
                block = self.directive(directive["name"], directive["arg"].strip(), body)
                if block is not None:
                    out.append(_indent(block, indent))
            i = end + 1
        flush()
        text = "\n".join(out)
        return re.sub(r"\n{3,}", "\n\n", text).strip("\n")

    def directive(self, name: str, arg: str, body: list[str]) -> str | None:
        options, content = _options(body)
        label = options.get("label") or options.get("name")
        classes = options.get("class", "").split()
        if name in DROPPED:
            return None
        if name in CODE_DIRECTIVES:
            return "\n".join([f"```{arg}", *content, "```"])
        if name == "raw":
            return "\n".join(content) if "html" in arg.split() else None
        if name in ("math",):
            number = self.equation_number(label) if label else None
            tag = [f"\\tag{{{number}}}"] if number else []
            return "\n".join(["$$", *content, *tag, "$$"])
        inner = self.markdown("\n".join(content))
        if name.startswith("prf:"):
            kind = name.split(":", 1)[1]
            if kind == "proof":
                return _box("Proof.", inner, COLOURS["prf"])
            heading = self.numbered(label, kind.capitalize(), "prf:ref")
            title = f"{heading} ({self.inline(arg)})" if arg else heading
            return _box(title, inner, COLOURS["prf"])
        if name == "exercise":
            heading = self.numbered(label, "Exercise")
            title = f"{heading} ({self.inline(arg)})" if arg else heading
            return f"### {title}\n\n{inner}"
        if name == "solution":
            target = self.numbered(arg, "") if arg else ""
            summary = f"Solution to {target}" if target else "Solution"
            return _details(summary, inner)
        if name == "dropdown" or "dropdown" in classes:
            title = self.inline(arg) if arg else ADMONITIONS.get(name, "") or "Details"
            return _details(title, inner)
        if name in ADMONITIONS:
            title = self.inline(arg) if name == "admonition" and arg else ADMONITIONS[name]
            colour = next((COLOURS[c] for c in [name, *classes] if c in COLOURS), "#1976d2")
            return _box(title, inner, colour)
        if name == "list-table":
            return self.list_table(arg, label, content, options)
        if name in ("figure", "image"):
            alt = options.get("alt", "")
            image = f"![{alt}]({arg})"
            if name == "image" or not inner:
                return image
            return f"{image}\n\n{self.caption(self.numbered(label, 'Figure'), inner)}"
        if name == "table":
            caption = self.caption(self.numbered(label, "Table"), self.inline(arg)) if arg else ""
            return f"{caption}\n\n{inner}".strip()
        # Anything else: its content, under its argument as a bold title when it has one.
        return f"**{self.inline(arg)}**\n\n{inner}" if arg else inner

    @staticmethod
    def caption(name: str, text: str) -> str:
        return f"**{name}.** {text.strip()}" if text.strip() else f"**{name}.**"

    def list_table(self, arg: str, label: str | None, content: list[str], options) -> str:
        rows: list[list[list[str]]] = []
        for line in content:
            if re.match(r"^\*\s+-\s?", line):
                rows.append([[re.sub(r"^\*\s+-\s?", "", line)]])
            elif re.match(r"^\s+-\s?", line) and rows:
                rows[-1].append([re.sub(r"^\s+-\s?", "", line)])
            elif line.strip() and rows:
                rows[-1][-1].append(line.strip())
        cells = [[self.inline(" ".join(c).strip()) for c in row] for row in rows]
        if not cells:
            return ""
        width = max(len(r) for r in cells)
        cells = [r + [""] * (width - len(r)) for r in cells]
        header_rows = int(options.get("header-rows", "0") or 0)
        head = cells[0] if header_rows else [""] * width
        body = cells[1:] if header_rows else cells
        table = ["| " + " | ".join(head) + " |", "|" + "---|" * width]
        table += ["| " + " | ".join(r) + " |" for r in body]
        caption = self.caption(self.numbered(label, "Table"), self.inline(arg)) if arg else ""
        return (caption + "\n\n" if caption else "") + "\n".join(table)

    def references_cell(self) -> str | None:
        """The "References" markdown of the works cited, ordered as the book's bibliography."""
        known = [k for k in self.cited if k in self.citations]
        if not known:
            return None
        lines = ["## References", ""]
        for key in sorted(known, key=lambda k: self.citations[k]["label"]):
            ref = self.citations[key]
            text = ref.get("text", "").strip()
            url = ref.get("url", "")
            link = f" <{url}>" if url and url not in text else ""
            lines.append(f"- [{ref['label']}] {text}{link}")
        return "\n".join(lines)


def _dedent(line: str, indent: str) -> str:
    return line[len(indent) :] if line.startswith(indent) else line.lstrip(" \t")


def _indent(text: str, indent: str) -> str:
    if not indent:
        return text
    return "\n".join(indent + line if line.strip() else line for line in text.split("\n"))


def _options(body: list[str]) -> tuple[dict[str, str], list[str]]:
    """A directive's options (``:key: value`` lines or a ``---`` YAML block) and its content."""
    options: dict[str, str] = {}
    i = 0
    if body and body[0].strip() == "---":
        end = next((j for j in range(1, len(body)) if body[j].strip() == "---"), None)
        if end is not None:
            import yaml

            loaded = yaml.safe_load("\n".join(body[1:end])) or {}
            options = (
                {str(k): str(v) for k, v in loaded.items()} if isinstance(loaded, dict) else {}
            )
            i = end + 1
    else:
        while i < len(body) and (match := OPTION.match(body[i])):
            options[match["key"]] = match["value"].strip()
            i += 1
    content = body[i:]
    while content and not content[0].strip():
        content = content[1:]
    return options, content


def _box(title: str, inner: str, colour: str) -> str:
    """A titled box any Markdown renderer draws: an HTML block with Markdown inside."""
    style = f"border-left: 4px solid {colour}; padding: 0.1em 1em; margin: 1em 0"
    head = f"**{title}**\n\n" if title else ""
    return f'<div style="{style}">\n\n{head}{inner}\n\n</div>'


def _details(summary: str, inner: str) -> str:
    return f"<details>\n<summary>{summary}</summary>\n\n{inner}\n\n</details>"


def plain_markdown(
    source: str,
    resolve: Resolver | Mapping[str, str] | None = None,
    citations: Mapping[str, Mapping[str, str]] | None = None,
    glue: Mapping[str, Mapping[str, str]] | None = None,
) -> str:
    """One markdown cell's MyST source as plain Markdown (see ``plain_notebook``)."""
    return PlainConverter(resolve, citations, glue).markdown(source)


def _figure(cell) -> tuple[str | None, str] | None:
    """(label, caption) of a code cell drawing a myst-nb figure shown in the book, else None."""
    figure = cell.get("metadata", {}).get("mystnb", {}).get("figure")
    tags = cell.get("metadata", {}).get("tags", [])
    if not isinstance(figure, Mapping) or {"remove-cell", "remove-output"} & set(tags):
        return None
    return figure.get("name"), str(figure.get("caption", "")).strip()


def plain_notebook(
    nb: Mapping[str, Any],
    resolve: Resolver | Mapping[str, str] | None = None,
    citations: Mapping[str, Mapping[str, str]] | None = None,
    problems: list[str] | None = None,
) -> nbformat.NotebookNode:
    """A copy of the notebook ``nb`` whose markdown cells plain Jupyter renders as the book does.

    ``resolve(role, target, explicit_title)`` gives the text the book shows for a reference
    ("Fig. 1.2" for ``numref`` of a figure, "Eq. 1.3" for ``eq``, a page's title for ``doc``), or
    None; a mapping label -> that text does too. ``citations`` maps a bibliography key to
    ``{"label": "Ajanthan et al., 2021", "text": the reference, "url": ...}``
    (``mdq_lab.cite.citations()``). What could not be converted (an unknown target
    or key, a value not glued) is appended to ``problems``. ``nb`` is left alone.
    """
    nb = nbformat.from_dict(nb)
    converter = PlainConverter(resolve, citations, glue_values(nb))
    cells = []
    for cell in nb.cells:
        cell = nbformat.from_dict(cell)
        if cell.cell_type == "markdown":
            source = cell.source if isinstance(cell.source, str) else "".join(cell.source)
            cell.source = converter.markdown(source)
        elif cell.cell_type == "code":
            _plain_outputs(cell, converter)
        cells.append(cell)
        figure = _figure(cell) if cell.cell_type == "code" else None
        if figure is not None:
            label, caption = figure
            name = converter.numbered(label, "Figure")
            text = converter.caption(name, converter.markdown(caption))
            cells.append(_markdown_cell(text, cell.get("id"), "caption"))
    references = converter.references_cell()
    if references is not None:
        cells.append(_markdown_cell(references, None, "references"))
    nb.cells = cells
    if problems is not None:
        problems.extend(converter.problems)
    return nb


def _plain_outputs(cell, converter: PlainConverter) -> None:
    """The Markdown a code cell printed (``display(Markdown(...))``), converted as a markdown cell
    is: the book parses it as MyST (``nb_render_markdown_format: myst``), so it may hold an
    admonition, a role or a labelled equation. Glued values (scrapbook outputs) stay as recorded."""
    for out in cell.get("outputs", []):
        data = out.get("data")
        if not isinstance(data, Mapping) or "text/markdown" not in data:
            continue
        if "scrapbook" in out.get("metadata", {}):
            continue
        text = data["text/markdown"]
        text = text if isinstance(text, str) else "".join(text)
        data["text/markdown"] = converter.markdown(text)


def _markdown_cell(source: str, near: str | None, what: str) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_markdown_cell(source)
    cell.id = f"{near}-{what}"[-64:] if near else what
    return cell

"""Sphinx extension: the whole book as one PDF (`make pdf`), and the HTML pages link to it.

For the LaTeX builder (`jupyter-book build . --builder pdflatex`, XeLaTeX, see `_config.yml`):

- Cell outputs that only the browser can show are turned into what LaTeX can, before myst-nb picks
  one type from each output (its ``SelectMimeType`` post-transform; for LaTeX it would otherwise
  fall back to ``<IPython.core.display.HTML object>``):
  - a kernel-free player (``mdq_teach.plots.player``: a slider over frames drawn at build time)
    becomes its first, middle and last frames as images, each with the label the slider shows;
  - an HTML ``<table>`` (the verdict tables of chapters 3 and 4) becomes a table;
  - any other HTML-only output is left out, with a warning naming the page.
  ipywidgets are already gone (``offline_book.drop_widgets``; the chapters remove their output).
- A ``<br>`` in a page's Markdown is a line break; inline code may break after an underscore.
- A long table (more than 30 rows) gets column widths, so that its cells wrap within the page.
- Theorems, definitions and exercises keep the pages' numbers ("Theorem 5.1", not "5.2.1"), and
  a reference to a numbered exercise from another chapter resolves (sphinx-exercise labels it for
  its own chapter only).
- The references follow the title of the bibliography's chapter (Sphinx's list of references
  would open an unnumbered chapter of its own, after an empty page).
- sphinx-jupyterbook-latex's document class loads ``bbm.sty``, which Debian ships only in the
  500 MB ``texlive-fonts-extra``; the class copied into the build folder loads it when it is
  installed and otherwise defines ``\\mathbbm`` as ``\\mathbb`` (the book does not use it).

For the HTML builder: when the PDF exists (``_build/latex/book.pdf``, the ``targetname`` in
``_config.yml``), it is copied to ``_downloads/pdf/book.pdf`` and every page's header gets a "PDF"
link to it (its word in the text colour: axe-core's contrast rule), so the copy of ``_build/html``
works offline. Whether the PDF exists is part of the HTML configuration (``html_context``): when
it appears or disappears, every page is written again. `make pdf` builds the PDF first, then the
HTML.
"""

import base64
import hashlib
import html
import io
import json
import re
import shutil
from html.parser import HTMLParser
from pathlib import Path

from docutils import nodes
from sphinx.application import Sphinx
from sphinx.transforms.post_transforms import SphinxPostTransform
from sphinx.util import logging

logger = logging.getLogger(__name__)

PDF_NAME = "book.pdf"  # _config.yml: latex.latex_documents.targetname book.tex
PDF_DOWNLOAD = f"_downloads/pdf/{PDF_NAME}"
# The header button's word "PDF" in the page's text colour: the theme's muted colour for its icons
# is too faint for text on the dark background (axe-core's color-contrast, 2.5:1).
PDF_CSS = "mdq-pdf.css"
PDF_CSS_TEXT = ".btn-book-pdf-button .btn__text-container { color: var(--pst-color-text-base); }\n"
# What LaTeX can show, in myst-nb's priority for the latex builder (text/plain is the fallback).
LATEX_MIME = ("application/pdf", "image/png", "image/jpeg", "text/latex", "text/markdown")
PLAYER_FRAME = re.compile(r"data:image/(?P<fmt>webp|png);base64,(?P<data>[A-Za-z0-9+/=]+)")
PLAYER_TEXTS = re.compile(r"var texts = (\[.*?\]);", re.DOTALL)
PLAYER_ALT = re.compile(r'<img src="data:[^"]*" alt="(?P<alt>[^"]*)"')
HTML_BR = re.compile(r"\s*<br\s*/?>\s*", re.IGNORECASE)
# sphinx.writers.latex.Table.is_longtable: more than 30 rows
LONGTABLE_ROWS = 30
MIN_COL_CHARS, MAX_COL_CHARS = 4, 60
EXERCISE_NUMBER = re.compile(r"\d+(?:\.\d+)*")
BBM = r"\RequirePackage{bbm}"
BBM_OPTIONAL = (
    r"\IfFileExists{bbm.sty}{\RequirePackage{bbm}}{\providecommand{\mathbbm}{\mathbb}}"
)


def pdf_path(app: Sphinx) -> Path:
    """Where `make pdf` leaves the PDF: _build/latex/book.pdf beside _build/html."""
    return Path(app.outdir).parent / "latex" / PDF_NAME


# ---------------------------------------------------------------- LaTeX: the document class

# sphinxmanual.cls opens the list of references as a chapter of its own (thebibliography's
# \chapter*{\bibname} and a line in the contents); book/bibliography.md is that chapter already.
BIBLIOGRAPHY_IN_ITS_CHAPTER = r"""
\makeatletter
\renewenvironment{sphinxthebibliography}[1]{%
  \let\mdq@chapter\chapter\def\chapter##1##2{}%
  \begin{thebibliography}{#1}\let\chapter\mdq@chapter}{\end{thebibliography}}
\makeatother
"""
# Inline code may break after an underscore: test and function names (the fidelity appendix's
# "checked by" column, some prose) otherwise run into the margin.
BREAKABLE_INLINE_CODE = r"""
\makeatletter
\let\mdq@sphinxcode\sphinxcode
\protected\def\sphinxcode#1{\mdq@sphinxcode{{\let\mdq@us\_\def\_{\mdq@us\allowbreak}#1}}}
\makeatother
"""


def latex_preamble(app: Sphinx, config) -> None:
    elements = dict(config.latex_elements or {})
    elements["preamble"] = (
        elements.get("preamble", "") + BIBLIOGRAPHY_IN_ITS_CHAPTER + BREAKABLE_INLINE_CODE
    )
    config.latex_elements = elements



def remember_numbering(app: Sphinx, config) -> None:
    app._mdq_numfig_secnum_depth = config.numfig_secnum_depth


def page_numbering(app: Sphinx) -> None:
    """sphinx-jupyterbook-latex sets ``numfig_secnum_depth`` to 2 for a book with parts: the
    LaTeX writer needs it to number figures and equations by chapter ("Fig. 1.1"), but Sphinx's
    own numbers, which sphinx-proof and sphinx-exercise write into their titles, then count
    sections too ("Theorem 5.2.1", where the pages and the prose say "Theorem 5.1"). The numbers
    are assigned with the book's own setting, and the writer gets the one it needs."""
    if app.builder.format == "latex":
        app._mdq_latex_secnum_depth = app.config.numfig_secnum_depth
        app.config.numfig_secnum_depth = app._mdq_numfig_secnum_depth


def latex_numbering(app: Sphinx, env) -> list[str]:
    # env-get-updated, after Sphinx's TocTreeCollector (priority 500) has assigned the numbers
    if app.builder.format == "latex":
        app.config.numfig_secnum_depth = app._mdq_latex_secnum_depth
    return []


def optional_bbm(app: Sphinx) -> None:
    if app.builder.format != "latex":
        return
    cls = Path(app.outdir) / "jupyterBook.cls"
    if cls.is_file():
        text = cls.read_text(encoding="utf-8")
        if BBM in text:
            cls.write_text(text.replace(BBM, BBM_OPTIONAL), encoding="utf-8")


# ---------------------------------------------------------------- LaTeX: exercise numbers


def exercise_labels(app: Sphinx) -> None:
    """sphinx-exercise (1.0) labels a numbered exercise in LaTeX as ``exercise:<label>`` only,
    while a {ref} or {numref} from another chapter asks for ``<docname>:<label>`` ("Exercise ??"
    in the PDF): wrap its LaTeX visitor to add that label, carrying the number its title shows."""
    if app.builder.format != "latex":
        return
    try:
        from sphinx_exercise import nodes as ex
    except ImportError:
        return
    visit, depart = ex.visit_exercise_enumerable_node, ex.depart_exercise_enumerable_node

    def visit_with_label(self, node):
        label = node.get("label")
        entry = getattr(self.builder.env, "sphinx_exercise_registry", {}).get(label) or {}
        title = next(iter(node.findall(nodes.title)), None)
        number = EXERCISE_NUMBER.search(title.astext()) if title is not None else None
        if entry.get("docname") and number:
            target = self.idescape(f"{entry['docname']}:{label}")
            self.body.append(
                "\\phantomsection\\expandafter\\def\\csname @currentlabel\\endcsname"
                f"{{{number.group(0)}}}\\label{{{target}}}%\n"
            )
        visit(self, node)

    app.add_node(ex.exercise_enumerable_node, override=True, latex=(visit_with_label, depart))


# ---------------------------------------------------------------- LaTeX: HTML-only outputs


def player_frames(markup: str) -> list[tuple[bytes, str]]:
    """The frames of a ``plots.player`` as (PNG bytes, label): the first, middle and last one."""
    from PIL import Image

    frames = [m for m in PLAYER_FRAME.finditer(markup)]
    texts_match = PLAYER_TEXTS.search(markup)
    texts = json.loads(texts_match.group(1)) if texts_match else []
    if not frames:
        return []
    picks = sorted({0, len(frames) // 2, len(frames) - 1})
    out = []
    for i in picks:
        raw = base64.b64decode(frames[i]["data"])
        buf = io.BytesIO()
        Image.open(io.BytesIO(raw)).save(buf, format="PNG")
        out.append((buf.getvalue(), texts[i] if i < len(texts) else ""))
    return out


class _TableParser(HTMLParser):
    """Rows of (is_header, text) cells and the caption of the first <table> in some HTML."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.rows: list[list[tuple[bool, str]]] = []
        self.caption = ""
        self._cell: list[str] | None = None
        self._header = False
        self._in_caption = False

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell, self._header = [], tag == "th"
        elif tag == "caption":
            self._in_caption = True
        elif tag == "br" and self._cell is not None:
            self._cell.append(" ")

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            if not self.rows:
                self.rows.append([])
            self.rows[-1].append((self._header, " ".join("".join(self._cell).split())))
            self._cell = None
        elif tag == "caption":
            self._in_caption = False

    def handle_data(self, data):
        if self._cell is not None:
            self._cell.append(data)
        elif self._in_caption:
            self.caption += data


def html_table(markup: str) -> nodes.table | None:
    """A docutils table from the first HTML <table> (text only), or None if there is none."""
    parser = _TableParser()
    parser.feed(markup)
    rows = [r for r in parser.rows if r]
    if not rows:
        return None
    ncols = max(len(r) for r in rows)
    table = nodes.table(classes=["mdq-html-table"])
    caption = " ".join(parser.caption.split())
    if caption:
        table += nodes.title(caption, caption)
    group = nodes.tgroup(cols=ncols)
    table += group
    for _ in range(ncols):
        group += nodes.colspec(colwidth=1)
    head_rows = []
    while rows and all(is_header for is_header, _ in rows[0]) and len(head_rows) < len(rows) - 1:
        head_rows.append(rows.pop(0))

    def row_node(cells):
        row = nodes.row()
        for _, text in cells + [(False, "")] * (ncols - len(cells)):
            entry = nodes.entry()
            entry += nodes.paragraph(text, text)
            row += entry
        return row

    if head_rows:
        group += nodes.thead("", *[row_node(r) for r in head_rows])
    group += nodes.tbody("", *[row_node(r) for r in rows])
    return table


class LatexHtmlOutputs(SphinxPostTransform):
    """Give each HTML-only cell output a form LaTeX shows (before myst-nb's SelectMimeType, 4)."""

    default_priority = 3
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        app = self.app
        for bundle in list(self.document.findall(_is_mime_bundle)):
            kinds = [child.get("mime_type") for child in bundle.children]
            if "text/html" not in kinds or any(kind in LATEX_MIME for kind in kinds):
                continue
            markup = bundle.children[kinds.index("text/html")].astext()
            replacement = self.convert(app, markup)
            if replacement is None:
                logger.warning(
                    "an HTML-only cell output is left out of the PDF (book/_ext/pdf_book.py "
                    f"converts players and tables): {markup[:60]!r}",
                    location=bundle,
                )
                bundle.parent.remove(bundle)
                continue
            bundle += nodes.container(
                "", *replacement, mime_type="text/latex", nb_element="mime_type"
            )

    def convert(self, app: Sphinx, markup: str) -> list[nodes.Node] | None:
        if 'class="mdq-player"' in markup:
            frames = player_frames(markup)
            if not frames:
                return None
            alt_match = PLAYER_ALT.search(markup)
            alt = html.unescape(alt_match["alt"]) if alt_match else ""
            out: list[nodes.Node] = []
            for png, label in frames:
                name = f"mdq-player-{hashlib.sha1(png).hexdigest()[:16]}.png"
                path = Path(app.outdir) / name
                if not path.is_file():
                    path.write_bytes(png)
                image = nodes.image(
                    uri=name, candidates={"image/png": name}, alt=alt, width="80%",
                    align="center",
                )
                text = f"Player frame: {label}" if label else "Player frame"
                para = nodes.paragraph("", "", nodes.emphasis(text, text))
                out += [image, para]
            return out
        if "<table" in markup:
            table = html_table(markup)
            return None if table is None else [table]
        return None


class HtmlLineBreaks(SphinxPostTransform):
    """A ``<br>`` written in a page's Markdown (the fidelity appendix's lists of tests in a table
    cell) is a line break in the PDF too, not nothing (LaTeX drops raw HTML)."""

    default_priority = 900
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        for raw in list(self.document.findall(nodes.raw)):
            if "html" in raw.get("format", "").split() and HTML_BR.fullmatch(raw.astext()):
                raw.replace_self(nodes.raw("", r"\hspace{0pt}\newline{}", format="latex"))


class LongTableWidths(SphinxPostTransform):
    """A table of more than 30 rows is a LaTeX longtable, whose columns Sphinx sets as ``l``:
    lines that never wrap, and a wide table runs off the page (the fidelity appendix). Such a
    table gets column widths in proportion to its longest cells (capped), so that cells wrap."""

    default_priority = 900
    formats = ("latex",)

    def run(self, **kwargs) -> None:
        for table in self.document.findall(nodes.table):
            if "colwidths-given" in table["classes"]:
                continue
            for group in table.findall(nodes.tgroup):
                rows = list(group.findall(nodes.row))
                specs = [c for c in group.children if isinstance(c, nodes.colspec)]
                if len(rows) <= LONGTABLE_ROWS or not specs:
                    continue
                widths = [MIN_COL_CHARS] * len(specs)
                for row in rows:
                    for i, entry in enumerate(row.children[: len(specs)]):
                        text = entry.astext()
                        # a word that cannot wrap (an item key in code type) needs its room
                        longest = max((len(w) for w in text.split()), default=0)
                        length = max(min(len(text), MAX_COL_CHARS), 3 * longest)
                        widths[i] = max(widths[i], min(length, MAX_COL_CHARS))
                for spec, width in zip(specs, widths, strict=True):
                    spec["colwidth"] = width
                table["classes"].append("colwidths-given")


def _is_mime_bundle(node) -> bool:
    return isinstance(node, nodes.container) and node.get("nb_element") == "mime_bundle"


# ---------------------------------------------------------------- HTML: the link to the PDF


def note_pdf(app: Sphinx, config) -> None:
    """Record in html_context whether the PDF exists: a change makes Sphinx rewrite every page."""
    context = dict(config.html_context or {})
    context["mdq_book_pdf"] = pdf_path(app).is_file()
    config.html_context = context
    if context["mdq_book_pdf"]:
        app.add_css_file(PDF_CSS)


def pdf_button(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    """After sphinx-book-theme (priority 501) has made the header buttons: a "PDF" link first."""
    if app.builder.format != "html" or not context.get("mdq_book_pdf"):
        return
    buttons = context.get("header_buttons")
    if buttons is None:
        return
    buttons.insert(
        0,
        {
            "type": "link",
            "url": context["pathto"](PDF_DOWNLOAD, 1),
            "text": "PDF",
            "tooltip": "The whole book as one PDF",
            "icon": "fas fa-file-pdf",
            "label": "book-pdf-button",
        },
    )


def copy_pdf(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / PDF_DOWNLOAD
    if app.config.html_context.get("mdq_book_pdf"):
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(pdf_path(app), dest)
        (Path(app.outdir) / "_static" / PDF_CSS).write_text(PDF_CSS_TEXT, encoding="utf-8")
    elif dest.exists():  # no PDF any more: no stale copy that no page links to
        dest.unlink()


# A part's caption names it ("Part I: from quantization to mirror descent", "Before you start"), so
# LaTeX's own part numbers would say it twice ("II  Part I: ..."); a chapter the pages leave
# unnumbered (the notation page, the instructor's page, the back matter) is unnumbered in the PDF
# too, so that chapter 1 is "1" in both ("Fig. 1.1", "(1.1)", "Definition 1.1").
LATEX_PART = re.compile(r"^\\part\{(?P<title>.*)\}$", re.M)
LATEX_CHAPTER = re.compile(
    r"^\\chapter\{(?P<title>.*)\}\n(?=\\label\{\\detokenize\{(?P<doc>[^:}]+):)", re.M
)
LATEX_SECTION = re.compile(r"^\\((?:sub)*section)\{", re.M)


def _unnumbered(kind: str, title: str) -> str:
    entry = f"\\phantomsection\\addcontentsline{{toc}}{{{kind}}}{{{title}}}"
    if kind == "part":  # a part page ends with a page break: the entry goes before it
        return f"\\cleardoublepage{entry}\\part*{{{title}}}"
    return f"\\{kind}*{{{title}}}{entry}\n"


def unnumber_latex(tex: str, unnumbered_docs: set[str]) -> str:
    """The LaTeX source with unnumbered parts, and unnumbered chapters (their sections too) for
    the documents in ``unnumbered_docs``."""
    tex = LATEX_PART.sub(lambda m: _unnumbered("part", m["title"]), tex)
    out, pos = [], 0
    chapters = list(LATEX_CHAPTER.finditer(tex))
    for i, m in enumerate(chapters):
        if m["doc"] not in unnumbered_docs:
            continue
        end = chapters[i + 1].start() if i + 1 < len(chapters) else len(tex)
        nxt = LATEX_PART.search(tex, m.end(), end)
        end = nxt.start() if nxt else end
        body = LATEX_SECTION.sub(lambda s: f"\\{s[1]}*{{", tex[m.end():end])
        out += [tex[pos:m.start()], _unnumbered("chapter", m["title"]), body]
        pos = end
    return "".join(out) + tex[pos:]


def latex_unnumbered(app: Sphinx, exception) -> None:
    # build-finished: the .tex is written and jupyter-book runs LaTeX on it afterwards
    if exception is not None or app.builder.format != "latex":
        return
    numbered = {doc for doc, numbers in app.env.toc_secnumbers.items() if numbers}
    docs = set(app.env.found_docs) - numbered
    for tex_file in Path(app.outdir).glob("*.tex"):
        tex = tex_file.read_text(encoding="utf-8")
        tex_file.write_text(unnumber_latex(tex, docs), encoding="utf-8")


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", note_pdf)
    app.connect("config-inited", remember_numbering)
    app.connect("config-inited", latex_preamble)
    app.connect("builder-inited", page_numbering, priority=900)
    app.connect("env-get-updated", latex_numbering, priority=900)
    # After sphinx-jupyterbook-latex (priority 500) has copied its class into the build folder.
    app.connect("builder-inited", optional_bbm, priority=900)
    app.connect("builder-inited", exercise_labels)
    app.add_post_transform(LatexHtmlOutputs)
    app.add_post_transform(LongTableWidths)
    app.add_post_transform(HtmlLineBreaks)
    app.connect("html-page-context", pdf_button, priority=600)
    app.connect("build-finished", copy_pdf)
    app.connect("build-finished", latex_unnumbered)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

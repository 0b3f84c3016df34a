"""Sphinx extension: the built book loads nothing from the network; each chapter comes as .ipynb.

- MathJax comes from the npm package that `make book` installs (package.json pins the version);
  it is copied into `_static/mathjax/` of the HTML output, so formulas typeset offline.
- ipywidgets need a kernel, so their saved state and view outputs are dead weight on a static page
  (and would pull require.js and the widget manager from a CDN): they are dropped from the pages.
  The chapters show kernel-free players beside each explorer instead.
- Each executed chapter notebook (`_build/jupyter_execute/<page>.ipynb`) is cleaned (no widget
  state, no jupytext/myst-nb metadata), its markdown turned from MyST into plain Markdown with the
  book's numbers, citations and glued values (`plain_notebook.py`: it reads right in JupyterLab
  without jupyterlab-myst, in nbviewer, on GitHub), validated and published as
  `_sources/<page>.ipynb`; the theme's download menu then lists it.
"""

import functools
import re
import shutil
from pathlib import Path

import nbformat
from docutils import nodes
from plain_notebook import plain_notebook
from sphinx import addnodes
from sphinx.application import Sphinx
from sphinx.errors import ExtensionError
from sphinx.util import logging

logger = logging.getLogger(__name__)

WIDGET_STATE = "application/vnd.jupyter.widget-state+json"
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
MATHJAX_PACKAGE = Path("node_modules", "mathjax", "es5")
MATHJAX_ENTRY = "startup.js"
# The loader and every component it may load (TeX input and its extensions by autoload, CHTML
# output and fonts, a11y), but none of the combined bundles, not the 4 MB speech-rule engine the
# pages never ask for, nor latest.js (a loader that fetches MathJax from a CDN).
MATHJAX_SKIP = ("sre", "latest.js", "node-main.js", "mml-*.js", "tex-*.js", "*.map")
# Notebook metadata meaningful only to jupytext or myst-nb; a downloaded notebook stands alone.
DROP_NB_METADATA = ("jupytext", "source_map", "widgets")


def _mathjax_source(app: Sphinx) -> Path:
    src = Path(app.confdir) / MATHJAX_PACKAGE
    if not (src / MATHJAX_ENTRY).is_file():
        raise ExtensionError(
            f"MathJax is missing: {src / MATHJAX_ENTRY} does not exist. The book serves MathJax "
            "itself (no CDN); install it with `npm ci` in the repository root (`make book` does)."
        )
    return src


def check_mathjax(app: Sphinx, config) -> None:
    _mathjax_source(app)
    if "://" in config.mathjax_path or not config.mathjax_path.startswith("mathjax/"):
        raise ExtensionError(
            f"mathjax_path must be the local 'mathjax/{MATHJAX_ENTRY}', not {config.mathjax_path!r}"
        )


def copy_mathjax(app: Sphinx, exception) -> None:
    if exception is not None or app.builder.format != "html":
        return
    dest = Path(app.outdir) / "_static" / "mathjax"
    shutil.copytree(
        _mathjax_source(app), dest, ignore=shutil.ignore_patterns(*MATHJAX_SKIP), dirs_exist_ok=True
    )


# Tags in cell outputs that would load from another host; matplotlib's `to_jshtml` players, for
# one, link Font Awesome 4 from a CDN (the theme ships its own Font Awesome, which draws the icons).
REMOTE_TAG = re.compile(
    r"""<link\b[^>]*\bhref=["']?(?:https?:)?//[^>]*>"""
    r"""|<script\b[^>]*\bsrc=["']?(?:https?:)?//[^>]*>\s*</script>""",
    re.IGNORECASE,
)


def strip_remote_tags(html: str) -> str:
    """The HTML of a cell output without the tags that would fetch from another host."""
    return REMOTE_TAG.sub("", html)


def drop_remote_tags(app: Sphinx, doctree: nodes.document) -> None:
    for raw in list(doctree.findall(nodes.raw)):
        if "html" in raw.get("format", "").split() and REMOTE_TAG.search(raw.astext()):
            text = strip_remote_tags(raw.astext())
            raw.replace_self(nodes.raw(raw.rawsource, text, format=raw["format"]))
            logger.info(f"{app.env.docname}: removed a CDN link from a cell output")


def drop_widgets(app: Sphinx, doctree: nodes.document) -> None:
    """Remove ipywidgets view outputs and the page's widget state (myst-nb keeps it in the env)."""
    for raw in list(doctree.findall(nodes.raw)):
        if raw.astext().lstrip().startswith(f'<script type="{WIDGET_VIEW}">'):
            parent = raw.parent
            parent.remove(raw)
            # An output container left empty would still draw an empty box.
            while parent is not None and parent.parent is not None and not parent.children:
                grand = parent.parent
                grand.remove(parent)
                parent = grand
                if "cell" in parent.get("classes", []):
                    break
    js_files = getattr(app.env, "nb_metadata", {}).get(app.env.docname, {}).get("js_files", {})
    for key in [k for k in js_files if k.startswith("ipywidgets")]:
        del js_files[key]


def restore_executed(app: Sphinx, doctree: nodes.document) -> None:
    """Make `_build/jupyter_execute/<page>.ipynb` the executed notebook also when taken from cache.

    myst-nb (1.4) writes that file from the notebook it parsed; when the outputs come from the
    execution cache they live in a merged copy, and the file is left without outputs. Merging the
    cached outputs here keeps the file what its folder's name says (the download menu and
    tests/test_chapters.py read it).
    """
    config = getattr(app.env, "mystnb_config", None)
    if config is None or config.execution_mode != "cache":
        return
    path = Path(config.output_folder, *f"{app.env.docname}.ipynb".split("/"))
    if not path.is_file():
        return
    from jupyter_cache import get_cache

    try:
        _, nb = get_cache(config.execution_cache_path).merge_match_into_notebook(
            nbformat.read(path, as_version=4)
        )
    except KeyError:  # not in the cache: the build executed it, and the file has its outputs
        return
    nbformat.write(nb, path)


def clean_notebook(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """A copy of an executed chapter that plain JupyterLab opens: no widget state, no pairing."""
    nb = nbformat.from_dict(nb)
    for key in DROP_NB_METADATA:
        nb.metadata.pop(key, None)
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            data = out.get("data")
            if data is not None:
                data.pop(WIDGET_VIEW, None)
                data.pop(WIDGET_STATE, None)
    kernelspec = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata.setdefault("kernelspec", nbformat.from_dict(kernelspec))
    nbformat.validate(nb)
    return nb


def _numbered_exercise(env, target: str) -> bool:
    # sphinx-exercise turns {ref} of a numbered exercise into {numref} ("Exercise 2.1").
    entry = getattr(env, "sphinx_exercise_registry", {}).get(target)
    node = entry.get("node") if isinstance(entry, dict) else None
    return node is not None and type(node).__name__ == "exercise_enumerable_node"


def book_resolver(app: Sphinx, docname: str):
    """resolve(role, target, explicit_title) -> the text the book's page shows for a reference
    ("Fig. 1.2", "Eq. 1.3", "Definition 1.1", "Exercise 2.1", a page's title), or None: the
    reference resolved by its Sphinx domain as the page's own was."""
    env = app.env

    def resolve(role: str, target: str, title: str | None) -> str | None:
        if role == "eq":
            domain, typ = "math", "eq"
        elif ":" in role:
            domain, typ = role.split(":", 1)
        else:
            domain, typ = "std", role
        if (domain, typ) == ("std", "ref") and title is None and _numbered_exercise(env, target):
            typ = "numref"
        text = title if title is not None else target
        content = nodes.literal(text, text) if typ == "numref" else nodes.inline(text, text)
        node = addnodes.pending_xref(
            text, content, refdomain=domain, reftype=typ, reftarget=target,
            refexplicit=title is not None, refwarn=False, refdoc=docname,
        )
        try:
            new = env.get_domain(domain).resolve_xref(
                env, docname, app.builder, typ, target, node, content
            )
        except Exception:  # an unknown domain, or a target of another kind: not resolved
            return None
        return None if new is None else new.astext()

    return resolve


@functools.cache
def _citations(bibs: tuple[str, ...]) -> dict:
    """key -> label, text, url of the book's bibliography, in the book's own style (labcite)."""
    from mdq_lab.cite import citations

    cites = {}
    for path in bibs:
        cites.update(citations(path))
    return cites


def plain_chapter(app: Sphinx, pagename: str, nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The chapter's notebook with its markdown as plain Markdown (see plain_notebook.py); what
    cannot be converted is a warning (an error under `-W`), as it would be on the page."""
    bibs = tuple(str(Path(app.confdir, f)) for f in app.config.bibtex_bibfiles)
    problems: list[str] = []
    plain = plain_notebook(nb, book_resolver(app, pagename), _citations(bibs), problems)
    for problem in dict.fromkeys(problems):
        logger.warning(f"{pagename}.ipynb: {problem}", location=pagename)
    return plain


def publish_notebook(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    """Before the theme builds its header buttons: the executed notebook joins the download menu."""
    if app.builder.format != "html":
        return
    executed = Path(app.outdir).parent / "jupyter_execute" / f"{pagename}.ipynb"
    if not executed.is_file():
        return
    nb = plain_chapter(app, pagename, clean_notebook(nbformat.read(executed, as_version=4)))
    nbformat.validate(nb)
    dest = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    dest.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, dest)
    context["ipynb_source"] = f"{pagename}.ipynb"


def drop_thebe(app: Sphinx, pagename: str, templatename, context, doctree) -> None:
    """Remove sphinx-thebe's scripts: the book has no live-code button, their configuration names
    a CDN, and they declare their constants twice (jupyter-book adds the extension regardless)."""
    scripts = context.get("script_files")
    if scripts is None:
        return
    context["script_files"] = [
        js
        for js in scripts
        # Sphinx 7.4's str() of a script is its repr; the file name is .filename (None for a body)
        if not str(getattr(js, "filename", js) or "").endswith("sphinx-thebe.js")
        and "THEBE_JS_URL" not in getattr(js, "attributes", {}).get("body", "")
    ]


def setup(app: Sphinx) -> dict:
    app.connect("config-inited", check_mathjax)
    app.connect("doctree-read", restore_executed)
    app.connect("doctree-read", drop_widgets)
    app.connect("doctree-read", drop_remote_tags)
    # The theme's header buttons are added at priority 501; the notebook must be known before.
    app.connect("html-page-context", publish_notebook, priority=400)
    app.connect("html-page-context", drop_thebe, priority=900)
    app.connect("build-finished", copy_mathjax)
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}

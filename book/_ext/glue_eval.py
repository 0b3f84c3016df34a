"""Sphinx extension: {eval}`glued("key:format")` in a chapter pastes the value glued under key.

The chapters write a computed number as this inline expression so that it shows in JupyterLab too:
jupyterlab-myst evaluates it in the kernel (``mdq_teach.glue.glued``), and here, where the
book is built from cached notebooks without a live kernel, it is read from the glue data exactly
as myst-nb's ``{glue:text}`key:format``` (or ``{glue:md}`key``` for a Markdown value) would.
Any other ``{eval}`` content is an error: it would show in JupyterLab but not in the book.
"""

import re

from myst_nb.core.variables import RetrievalError
from myst_nb.ext.glue.roles import PasteMarkdownRole, PasteTextRole
from myst_nb.ext.glue.utils import retrieve_glue_data
from sphinx.application import Sphinx

GLUED = re.compile(r"""glued\((["'])(?P<spec>[^"']+)\1\)""")


def eval_glued(name, rawtext, text, lineno, inliner, options=None, content=()):
    match = GLUED.fullmatch(text.strip())
    if match is None:
        message = inliner.reporter.error(
            f'{{eval}} in this book takes only glued("key") or glued("key:format"), got {text!r}',
            line=lineno,
        )
        return [inliner.problematic(rawtext, rawtext, message)], [message]
    spec = match["spec"]
    key = spec.rsplit(":", 1)[0]
    try:
        data = retrieve_glue_data(inliner.document, key).data
    except RetrievalError:
        data = {}
    paste = PasteMarkdownRole() if "text/markdown" in data else PasteTextRole()
    return paste(name, rawtext, key if "text/markdown" in data else spec, lineno, inliner,
                 options, content)


def setup(app: Sphinx) -> dict:
    # After myst-nb, which registers an {eval} that needs a live kernel (inline execution).
    app.connect("builder-inited", lambda app: app.add_role("eval", eval_glued, override=True))
    return {"version": "1.0", "parallel_read_safe": True, "parallel_write_safe": True}


"""The book's citations in JupyterLab: ``{cite}`key``` reads as in the built book.

jupyterlab-myst (2.x) parses ``{cite}`` but loads no bibliography from anywhere (no setting, no
``myst.yml``, no ``.bib`` lookup: every ``cite`` node is flagged as an error and drawn as the bare
key titled "Citation Not Found"). The book is built by Jupyter Book 1 with sphinxcontrib-bibtex,
which writes "[Ajanthan et al., 2021]" with the full reference as the link's title.

``install(prefix, bib, style)`` puts a small JupyterLab extension under
``prefix/share/jupyter/labextensions/mdq-teach-citations/``: ``labcite.js`` (``cite.js``, written in
the form JupyterLab loads, so no Node build is needed) with the citations of ``bib`` formatted here
by the book's own style, the pybtex plugin module ``style``. Both are passed in, never looked up
beside this package: an installed wheel holds no book. ``style`` defaults to
``_ext/bib_author_year.py`` next to ``bib`` (``default_style``), where the book keeps it beside
``book/references.bib``.

In the page it turns each "Citation Not Found" whose key is in the bibliography into the book's
text, "[Ajanthan et al., 2021]" (or the bracketed, comma-separated list for several keys), with
the full reference on hover; a key that is not in the bibliography keeps jupyterlab-myst's
warning. Run by ``python -m mdq_lab.install --bib book/references.bib``; run that again after
editing the bibliography (``make`` does).
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import shutil
from pathlib import Path

NAME = "mdq-teach-citations"
_TEMPLATE = Path(__file__).with_name("cite.js")
_PLACEHOLDER = "__CITATIONS__"


def _book_style(style_path: Path):
    # The style the book is built with (it registers "author_year" with pybtex on import).
    spec = importlib.util.spec_from_file_location("bib_author_year", style_path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from pybtex.plugin import find_plugin

    return find_plugin("pybtex.style.formatting", "author_year")()


def default_style(bib: str | Path) -> Path:
    """The style module the book keeps next to its bibliography: ``_ext/bib_author_year.py``."""
    return Path(bib).parent / "_ext" / "bib_author_year.py"


def citations(bib: str | Path, style: str | Path | None = None) -> dict[str, dict]:
    """key -> {"label": "Ajanthan et al., 2021", "text": the full reference, "url": link or ""}.
    ``style`` defaults to ``default_style(bib)``."""
    from pybtex.database import parse_file

    bib = Path(bib)
    style = default_style(bib) if style is None else Path(style)
    for what, path in (("bib", bib), ("style", style)):
        if not path.is_file():
            raise FileNotFoundError(f"{what}: no file {path}")
    data = parse_file(str(bib), "bibtex")
    out = {}
    for entry in _book_style(style).format_bibliography(data):
        fields = data.entries[entry.key].fields
        doi = fields.get("doi", "")
        out[entry.key] = {
            "label": entry.label,
            "text": entry.text.render_as("text"),
            "url": f"https://doi.org/{doi}" if doi else fields.get("url", ""),
        }
    return out


def extension_dir(prefix: str | Path) -> Path:
    return Path(prefix, "share", "jupyter", "labextensions", NAME)


def script(cites: dict[str, dict]) -> str:
    """The extension's JavaScript with ``cites`` built in."""
    # "</" cannot end a script here, but keep the JSON safe to inline anyway.
    data = json.dumps(cites, ensure_ascii=False, sort_keys=True).replace("</", "<\\/")
    return _TEMPLATE.read_text(encoding="utf-8").replace(_PLACEHOLDER, data)


def files(bib: str | Path, style: str | Path | None = None) -> dict[str, bytes]:
    """The extension's files, path inside its folder -> content."""
    js = script(citations(bib, style))
    # The file name carries a hash of its content: a browser never runs a stale cached copy.
    load = f"static/labcite.{hashlib.sha256(js.encode()).hexdigest()[:16]}.js"
    package = {
        "name": NAME,
        "version": "1.0.0",
        "description": "The book's {cite} roles as the book shows them (mdq-teach)",
        "jupyterlab": {"extension": True, "_build": {"load": load, "extension": "./extension"}},
    }
    return {load: js.encode(), "package.json": (json.dumps(package, indent=2) + "\n").encode()}


def write_folder(final: Path, content: dict[str, bytes]) -> None:
    """Replace the folder ``final`` by one holding ``content``, built next to it and renamed in."""
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    for rel, data in content.items():
        (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp / rel).write_bytes(data)
    shutil.rmtree(final, ignore_errors=True)
    tmp.replace(final)


def install(prefix: str | Path, bib: str | Path, style: str | Path | None = None) -> Path:
    """Write the extension under ``prefix`` (replacing an older one); returns its folder.
    ``mdq_lab.install`` installs it with a record of what was there, for its ``--uninstall``."""
    final = extension_dir(prefix)
    write_folder(final, files(bib, style))
    return final

"""The citations JupyterLab shows (``mdq_lab.cite``) are the book's: the same label
and the same full reference as sphinxcontrib-bibtex writes. ``test_jupyterlab.py`` looks at them
in a real JupyterLab."""

import html
import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from mdq_lab import cite as labcite

ROOT = Path(__file__).resolve().parents[1]
BOOK_BIB = ROOT / "book" / "references.bib"
BOOK_STYLE = ROOT / "book" / "_ext" / "bib_author_year.py"
BUILT = ROOT / "_build" / "html" / "book"
# sphinxcontrib-bibtex's in-text citation: a link to the bibliography, titled with the reference.
_BOOK_CITATION = re.compile(
    r'<a class="reference internal" href="bibliography\.html#[^"]*" title="([^"]*)">(.*?)</a>'
)

BIB = r"""
@article{beck, author = {Beck, Amir and Teboulle, Marc},
  title = {Mirror Descent and Nonlinear Projected Subgradient Methods},
  journal = {Operations Research Letters}, volume = {31}, number = {3}, pages = {167--175},
  year = {2003}, doi = {10.1016/S0167-6377(02)00231-6}}
@misc{web, author = {Xiao, Han and Rasul, Kashif and Vollgraf, Roland}, title = {Fashion-{MNIST}},
  year = {2017}, url = {https://example.org/fm}}
@book{one, author = {Bubeck, S{\'e}bastien}, title = {Convex Optimization}, publisher = {Now},
  year = {2015}}
"""


def test_labels_text_and_links_of_a_small_bibliography(tmp_path):
    (tmp_path / "r.bib").write_text(BIB)
    got = labcite.citations(tmp_path / "r.bib", BOOK_STYLE)
    assert got["beck"] == {
        "label": "Beck and Teboulle, 2003",
        "text": "Amir Beck and Marc Teboulle. Mirror descent and nonlinear projected subgradient"
                " methods. Operations Research Letters, 31(3):167–175, 2003."
                " doi:10.1016/S0167-6377(02)00231-6.",
        "url": "https://doi.org/10.1016/S0167-6377(02)00231-6",
    }
    assert got["web"]["label"] == "Xiao et al., 2017"
    assert got["web"]["url"] == "https://example.org/fm"
    assert got["one"] == {"label": "Bubeck, 2015", "url": "",
                          "text": "Sébastien Bubeck. Convex Optimization. Now, 2015."}


@pytest.mark.skipif(not BUILT.is_dir(), reason="no built book (make html builds it)")
def test_every_citation_of_the_built_book_reads_the_same_in_jupyterlab():
    """The reference: the HTML sphinxcontrib-bibtex wrote for the book's {cite} roles."""
    ours = {(c["label"], c["text"]) for c in labcite.citations(BOOK_BIB).values()}
    seen = set()
    for page in BUILT.glob("*.html"):
        for title, text in _BOOK_CITATION.findall(page.read_text(encoding="utf-8")):
            # "Ajanthan <em>et al.</em>, 2021": the book sets "et al." in italics.
            seen.add((html.unescape(re.sub(r"<[^>]+>", "", text)), html.unescape(title)))
    assert len(seen) >= 10
    assert seen <= ours, sorted(seen - ours)


def test_missing_files_are_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="bib: no file .*absent.bib"):
        labcite.citations(tmp_path / "absent.bib", BOOK_STYLE)
    (tmp_path / "r.bib").write_text(BIB)
    with pytest.raises(FileNotFoundError, match="style: no file .*absent.py"):
        labcite.citations(tmp_path / "r.bib", tmp_path / "absent.py")
    # The default style is the book's, next to the bibliography; not beside this package.
    with pytest.raises(FileNotFoundError, match="style: no file .*_ext/bib_author_year.py"):
        labcite.citations(tmp_path / "r.bib")


def test_the_style_is_found_next_to_the_bibliography_not_the_package(tmp_path):
    book = tmp_path / "elsewhere"
    (book / "_ext").mkdir(parents=True)
    (book / "r.bib").write_text(BIB)
    shutil.copy(BOOK_STYLE, book / "_ext" / "bib_author_year.py")
    assert labcite.default_style(book / "r.bib") == book / "_ext" / "bib_author_year.py"
    assert labcite.citations(book / "r.bib") == labcite.citations(tmp_path / "elsewhere/r.bib",
                                                                  BOOK_STYLE)
    assert not hasattr(labcite, "BOOK")  # no path into a checkout (a wheel holds no book)


def test_install_writes_an_extension_jupyterlab_loads(tmp_path):
    from jupyterlab_server.config import get_federated_extensions

    (tmp_path / "r.bib").write_text(BIB)
    labcite.install(tmp_path, bib=tmp_path / "r.bib", style=BOOK_STYLE)
    folder = labcite.install(tmp_path, BOOK_BIB)  # again, from the book: replaces the first one
    assert folder == tmp_path / "share/jupyter/labextensions/mdq-teach-citations"
    found = get_federated_extensions([str(folder.parent)])[labcite.NAME]
    build = found["jupyterlab"]["_build"]
    assert build["extension"] == "./extension"
    scripts = list((folder / "static").iterdir())
    assert scripts == [folder / build["load"]]  # the first install's script is gone
    js = scripts[0].read_text(encoding="utf-8")
    assert f"containers['{labcite.NAME}']" in js
    data = re.search(r"const CITATIONS = (.*);\n", js)[1]
    assert json.loads(data) == labcite.citations(BOOK_BIB)
    if shutil.which("node"):  # the file parses as JavaScript
        subprocess.run(["node", "--check", str(scripts[0])], check=True)

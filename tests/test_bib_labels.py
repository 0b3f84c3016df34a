"""The bibliography style of book/_ext: labels in the author-year form of the citations."""

import sys
from pathlib import Path

from pybtex.database import parse_string
from pybtex.plugin import find_plugin

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "book" / "_ext"))
import bib_author_year  # noqa: E402, F401  (registers the style)

BIB = r"""
@article{one, author = {Bubeck, S{\'e}bastien}, title = {A}, journal = {J}, year = {2015}}
@article{two, author = {Beck, Amir and Teboulle, Marc}, title = {B}, journal = {J}, year = {2003}}
@article{three, author = {Bengio, Y. and L{\'e}onard, N. and Courville, A.}, title = {C},
         journal = {J}, year = {2013}}
@article{fourA, author = {Xiao, Lin}, title = {D1}, journal = {J}, year = {2010}}
@article{fourB, author = {Xiao, Lin}, title = {D2}, journal = {J}, year = {2010}}
"""


def labels():
    style = find_plugin("pybtex.style.formatting", "author_year")()
    return {e.key: e.label for e in style.format_bibliography(parse_string(BIB, "bibtex"))}


def test_labels_read_like_author_year_citations():
    got = labels()
    assert got["one"] == "Bubeck, 2015"
    assert got["two"] == "Beck and Teboulle, 2003"
    assert got["three"] == "Bengio et al., 2013"


def test_same_authors_and_year_get_letters():
    got = labels()
    assert sorted([got["fourA"], got["fourB"]]) == ["Xiao, 2010a", "Xiao, 2010b"]

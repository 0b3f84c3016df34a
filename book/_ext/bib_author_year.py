"""Bibliography labels that match the author-year citations of the text.

sphinxcontrib-bibtex cites as "[Ajanthan et al., 2021]" (``bibtex_reference_style: author_year``)
but labels the bibliography with pybtex's alpha labels ("[AGT+21]"). This registers the
formatting style ``author_year``: pybtex's ``unsrt`` entries, sorted by author, labelled
"Ajanthan et al., 2021", "Beck and Teboulle, 2003", "Bubeck, 2015". Select it with
``bibtex_default_style: author_year``.
"""

from collections import Counter

from pybtex.plugin import register_plugin
from pybtex.richtext import Text
from pybtex.style.formatting.unsrt import Style as UnsrtStyle
from pybtex.style.labels import BaseLabelStyle
from pybtex.style.sorting.author_year_title import SortingStyle


def _last_name(person) -> str:
    # "{\'E}mile" and friends: render the LaTeX to plain text, as the entries themselves are
    return Text.from_latex(" ".join(person.last_names)).render_as("text")


def _label(entry) -> str:
    persons = entry.persons.get("author") or entry.persons.get("editor") or []
    names = [_last_name(p) for p in persons]
    year = entry.fields.get("year", "n.d.")
    if not names:
        who = entry.key
    elif len(names) == 1:
        who = names[0]
    elif len(names) == 2:
        who = f"{names[0]} and {names[1]}"
    else:
        who = f"{names[0]} et al."
    return f"{who}, {year}"


class AuthorYearLabels(BaseLabelStyle):
    def format_labels(self, sorted_entries):
        entries = list(sorted_entries)
        labels = [_label(e) for e in entries]
        counts, seen = Counter(labels), Counter()
        for label in labels:
            if counts[label] > 1:  # two works of the same authors and year: 2021a, 2021b
                seen[label] += 1
                label = f"{label}{chr(ord('a') + seen[label] - 1)}"
            yield label


class AuthorYearStyle(UnsrtStyle):
    default_label_style = AuthorYearLabels
    default_sorting_style = SortingStyle


register_plugin("pybtex.style.labels", "author_year_labels", AuthorYearLabels)
register_plugin("pybtex.style.formatting", "author_year", AuthorYearStyle)


def setup(app):
    return {"version": "1", "parallel_read_safe": True, "parallel_write_safe": True}

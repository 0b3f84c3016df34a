"""The fidelity table: each numbered item of the two papers, the book section and the tests for it.

The items are data (``book/data/paper_items.yaml``). The links are markers next to the work:

* a chapter marks the section that derives or shows an item with a MyST comment line,
  ``% fidelity: md:eq15`` (several ids may follow, separated by commas or spaces);
* a test marks itself with ``@pytest.mark.fidelity("md:eq15")`` (several ids allowed).

:func:`build` scans both, :func:`problems` lists what is missing or unknown, :func:`markdown`
renders the appendix table. Standard library plus PyYAML (imported when the registry is
read), nothing else.
"""

from __future__ import annotations

import ast
import re
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ITEMS_FILE = ROOT / "book" / "data" / "paper_items.yaml"
KINDS = ("equation", "definition", "theorem", "example", "algorithm", "figure", "table", "claim")

_CHAPTER_MARKER = re.compile(r"^%\s*fidelity:\s*(?P<ids>.+?)\s*$")
_ID = re.compile(r"^[a-z]+:[a-z0-9]+$")
_FENCE = re.compile(r"^(?P<fence>`{3,}|~{3,})")
_HEADING = re.compile(r"^(?P<level>#{1,6})\s+(?P<title>.+?)\s*#*\s*$")


@dataclass(frozen=True)
class Section:
    """A chapter section: its file, chapter title, heading and HTML anchor."""

    file: str  # relative to the book directory, e.g. "04_closed_form_updates.md"
    chapter: str
    title: str
    anchor: str
    line: int  # of the marker


@dataclass(frozen=True)
class TestRef:
    file: str  # relative to the tests directory
    name: str  # the test function (``Class.method`` inside a class)
    line: int


@dataclass
class Item:
    id: str
    kind: str
    where: str
    what: str
    covered: bool = True
    reason: str = ""
    sections: list[Section] = field(default_factory=list)
    tests: list[TestRef] = field(default_factory=list)


@dataclass
class Table:
    sources: dict
    items: list[Item]
    unknown: list[str]  # markers naming no item: "file:line: id"
    misplaced: list[str] = field(default_factory=list)  # on a function that is not a test


def load_items(path: Path | str = ITEMS_FILE) -> tuple[dict, list[Item]]:
    """Read and check the registry; raise ``ValueError`` naming the bad entry."""
    import yaml  # here, so that importing the core never needs PyYAML

    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    if not isinstance(data, dict) or not isinstance(data.get("items"), list):
        raise ValueError(f"{path}: expected a mapping with a list under 'items'")
    sources = data.get("sources") or {}
    items, seen = [], set()
    for n, entry in enumerate(data["items"]):
        if not isinstance(entry, dict):
            raise ValueError(f"{path}: item {n} is not a mapping")
        missing = {"id", "kind", "where", "what"} - set(entry)
        if missing:
            raise ValueError(f"{path}: item {n} lacks {sorted(missing)}")
        unknown_keys = set(entry) - {"id", "kind", "where", "what", "covered", "reason"}
        if unknown_keys:
            bad = sorted(unknown_keys)
            raise ValueError(f"{path}: item {entry['id']!r} has unknown keys {bad}")
        item_id = str(entry["id"])
        if not _ID.match(item_id):
            raise ValueError(f"{path}: id {item_id!r} must look like 'md:eq15' (source:name)")
        if item_id.split(":")[0] not in sources:
            raise ValueError(f"{path}: id {item_id!r} names a source not in 'sources'")
        if item_id in seen:
            raise ValueError(f"{path}: id {item_id!r} appears twice")
        if entry["kind"] not in KINDS:
            kind = entry["kind"]
            raise ValueError(f"{path}: {item_id}: kind must be one of {KINDS}, got {kind!r}")
        covered = entry.get("covered", True)
        if not isinstance(covered, bool):
            raise ValueError(f"{path}: {item_id}: covered must be true or false")
        reason = str(entry.get("reason", "")).strip()
        if not covered and not reason:
            raise ValueError(f"{path}: {item_id}: an uncovered item needs a one-line reason")
        if covered and reason:
            raise ValueError(f"{path}: {item_id}: a reason is only for uncovered items")
        seen.add(item_id)
        items.append(
            Item(item_id, entry["kind"], str(entry["where"]), str(entry["what"]), covered, reason)
        )
    return sources, items


def anchor(title: str) -> str:
    """The HTML id Sphinx (docutils ``make_id``) gives a section with this MyST heading."""
    text = re.sub(r"\$([^$]*)\$", r"\1", title)  # inline math keeps its TeX source
    text = re.sub(r"`([^`]*)`", r"\1", text)
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)  # a link keeps its text
    text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode("ascii").lower()
    text = re.sub(r"[^a-z0-9]+", "-", text)
    return re.sub(r"^[^a-z]+", "", text).strip("-")


def _split_ids(text: str) -> list[str]:
    return [t for t in re.split(r"[\s,]+", text) if t]


def scan_chapter(path: Path, name: str) -> list[tuple[str, Section]]:
    """``(id, section)`` for every marker of one chapter, linked to the heading above it.

    Headings inside fenced blocks (code cells, directives) are not sections and are skipped, but
    markers count there too; a marker before the first heading links to the chapter's top.
    """
    found, fence, chapter, current = [], None, "", None
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        stripped = line.strip()
        if fence is not None:  # a marker may sit inside a directive (a theorem, a proof)
            if stripped.startswith(fence) and stripped.rstrip(fence[0]) == "":
                fence = None
        elif _FENCE.match(stripped):
            fence = _FENCE.match(stripped).group("fence")
        elif _HEADING.match(line):
            title = _HEADING.match(line).group("title")
            if line.startswith("# ") and not chapter:
                chapter = title
            current = (title, anchor(title))
        m = _CHAPTER_MARKER.match(stripped)
        if m:
            title, anc = current if current else (None, "")
            for item_id in _split_ids(m.group("ids")):
                found.append((item_id, title, anc, lineno))
    # The chapter title is known only once its heading is read; early markers link to the top.
    chapter = chapter or name
    return [(i, Section(name, chapter, t or chapter, a, n)) for i, t, a, n in found]


def _fidelity_ids(decorator: ast.expr) -> list[str] | None:
    """The ids of ``pytest.mark.fidelity("a", "b")`` (or ``mark.fidelity``), else None."""
    if not isinstance(decorator, ast.Call):
        return None
    func = decorator.func
    if not (isinstance(func, ast.Attribute) and func.attr == "fidelity"):
        return None
    owner = func.value
    if not (isinstance(owner, ast.Attribute) and owner.attr == "mark") and not (
        isinstance(owner, ast.Name) and owner.id == "mark"
    ):
        return None
    ids = []
    for arg in decorator.args:
        if not (isinstance(arg, ast.Constant) and isinstance(arg.value, str)):
            line = decorator.lineno
            raise ValueError(f"line {line}: fidelity marker ids must be string literals")
        ids += _split_ids(arg.value)
    return ids


def scan_tests(path: Path, name: str) -> list[tuple[str, TestRef]]:
    """``(id, test)`` for every ``@pytest.mark.fidelity`` decorator of one test module."""
    try:
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    except SyntaxError as exc:
        raise ValueError(f"{path}: cannot parse ({exc})") from None
    found = []

    def visit(body, prefix=""):
        for node in body:
            if isinstance(node, ast.ClassDef):
                visit(node.body, f"{prefix}{node.name}.")
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                for dec in node.decorator_list:
                    try:
                        ids = _fidelity_ids(dec)
                    except ValueError as exc:
                        raise ValueError(f"{path}: {exc}") from None
                    for item_id in ids or ():
                        found.append((item_id, TestRef(name, prefix + node.name, node.lineno)))

    visit(tree.body)
    return found


def build(book_dir: Path | str = ROOT / "book", tests_dir: Path | str = ROOT / "tests",
          items_file: Path | str | None = None) -> Table:
    """Scan ``book_dir/*.md`` and ``tests_dir/*.py`` and attach every marker to its item."""
    book_dir, tests_dir = Path(book_dir), Path(tests_dir)
    if items_file is None:
        items_file = book_dir / "data" / "paper_items.yaml"
    sources, items = load_items(Path(items_file))
    by_id = {item.id: item for item in items}
    unknown, misplaced = [], []
    for path in sorted(book_dir.glob("*.md")):
        for item_id, section in scan_chapter(path, path.name):
            if item_id in by_id:
                by_id[item_id].sections.append(section)
            else:
                unknown.append(f"{path.name}:{section.line}: {item_id}")
    for path in sorted(tests_dir.glob("*.py")):
        for item_id, test in scan_tests(path, path.name):
            if not test.name.split(".")[-1].startswith("test"):
                misplaced.append(f"{path.name}:{test.line}: {item_id} on {test.name}")
            elif item_id in by_id:
                by_id[item_id].tests.append(test)
            else:
                unknown.append(f"{path.name}:{test.line}: {item_id}")
    return Table(sources, items, unknown, misplaced)


def problems(table: Table) -> list[str]:
    """Everything that makes the table dishonest: one line each, empty when all is well."""
    out = [f"marker names no item in the registry: {u}" for u in table.unknown]
    out += [f"marker on a function pytest does not run: {m}" for m in table.misplaced]
    for item in table.items:
        if item.covered and not item.sections:
            out.append(f"{item.id}: covered, but no chapter has '% fidelity: {item.id}'")
        if item.covered and not item.tests:
            out.append(f"{item.id}: covered, but no test has @pytest.mark.fidelity({item.id!r})")
        if not item.covered and (item.sections or item.tests):
            where = [f"{s.file}:{s.line}" for s in item.sections]
            where += [f"{t.file}::{t.name}" for t in item.tests]
            out.append(f"{item.id}: marked 'covered: false' but has markers ({', '.join(where)})")
    return out


def counts(table: Table) -> dict[str, int]:
    items = table.items
    return {
        "items": len(items),
        "covered": sum(i.covered for i in items),
        "chapter_marked": sum(bool(i.sections) for i in items),
        "test_marked": sum(bool(i.tests) for i in items),
        "uncovered": sum(not i.covered for i in items),
    }


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _label(item: Item) -> str:
    name = item.id.split(":", 1)[1]
    m = re.match(r"([a-z]+)(\d+)$", name)
    short = {"eq": "Eq.", "def": "Def.", "thm": "Thm.", "ex": "Ex.", "alg": "Alg.", "fig": "Fig.",
             "tab": "Table"}
    if m and m.group(1) in short:
        return f"{short[m.group(1)]} {m.group(2)}"
    return f"({name})"


def _chapter_number(file: str) -> int | None:
    """4 for "04_closed_form_updates.md"; None for a page that is not a numbered chapter."""
    m = re.match(r"(\d+)_", file)
    return int(m.group(1)) if m else None


def _test_name(test: TestRef) -> str:
    """A test's name as HTML code that breaks only after "::" and "_", never inside a word."""
    text = f"{test.file[:-3]}::{test.name}"
    text = text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    text = text.replace("::", "::<wbr>").replace("_", "_<wbr>").replace(".", ".<wbr>")
    return f'<code class="mdq-test">{text}</code>'


def _tests_cell(tests: list[TestRef]) -> str:
    """One test named; more in a closed list that says how many."""
    if not tests:
        return "(none)"
    names = "<br>".join(_test_name(t) for t in tests)
    if len(tests) == 1:
        return names
    return f"<details><summary>{len(tests)} tests</summary>{names}</details>"


def _section_link(s: Section) -> str:
    href = s.file[:-3] + ".html" + (f"#{s.anchor}" if s.anchor else "")
    text = _cell(re.sub(r"\$([^$]*)\$", r"\1", s.title))
    number = _chapter_number(s.file)
    prefix = f"Ch. {number}: " if number is not None else ""
    return f'{prefix}<a href="{href}">{text}</a>'


def _group_title(file: str | None, chapter: str) -> str:
    if file is None:
        return "**Not covered by the book**"
    number = _chapter_number(file)
    title = _cell(re.sub(r"\$([^$]*)\$", r"\1", chapter))
    link = f'<a href="{file[:-3]}.html">{title}</a>'
    return f"**Chapter {number}: {link}**" if number is not None else f"**{link}**"


def markdown(table: Table, *, source: str | None = None) -> str:
    """The table as MyST Markdown, grouped by the book chapter that covers each item.

    One short table per chapter, in the book's order (an item goes with the first section that
    marks it), then the items the book does not cover, each with its reason. A row gives the
    item's id, the paper's number, section and content, the book sections (chapter number and
    linked title) and the tests, whose names break only at "::" and "_" (two or more tests sit
    in a closed list). Section links are plain HTML anchors (``chapter.html#section``), which
    Sphinx neither checks nor warns about; their targets follow Sphinx's rule for section ids
    (:func:`anchor`).
    """
    head = ["| item | in the paper | book section | checked by |", "|---|---|---|---|"]
    groups: dict[str | None, tuple[str, list[str]]] = {}
    for item in table.items:
        if source is not None and not item.id.startswith(source + ":"):
            continue
        what = f"**{_label(item)}** ({item.where}): {_cell(item.what)}"
        if not item.covered:
            row = f"| `{item.id}` | {what} | not covered | {_cell(item.reason)} |"
            groups.setdefault(None, ("", []))[1].append(row)
            continue
        first = item.sections[0] if item.sections else None
        key = first.file if first else None
        links = "<br>".join(_section_link(s) for s in item.sections) or "(none)"
        row = f"| `{item.id}` | {what} | {links} | {_tests_cell(item.tests)} |"
        groups.setdefault(key, (first.chapter if first else "", []))[1].append(row)
    order = sorted(k for k in groups if k is not None) + ([None] if None in groups else [])
    parts = []
    for key in order:
        chapter, rows = groups[key]
        parts.append(_group_title(key, chapter) + "\n\n" + "\n".join(head + rows) + "\n")
    return "\n".join(parts)


def summary(table: Table) -> str:
    c = counts(table)
    return (
        f"{c['items']} items: {c['covered']} covered, {c['uncovered']} not covered; "
        f"{c['chapter_marked']} have a chapter section and {c['test_marked']} a test."
    )


if __name__ == "__main__":
    t = build()
    print(summary(t))
    for p in problems(t):
        print("problem:", p)

"""book/data/paper_results.csv: the published tables the book sets beside its own runs."""

import re
from pathlib import Path

import pytest

from mdq_teach import plots

ROOT = Path(__file__).resolve().parents[1]
CSV = ROOT / "book" / "data" / "paper_results.csv"
SEED = Path("/work/shared/seeds/001_4414e7370b836b8a.txt")  # the paper's text, where available

# (table, methods in print order, number of (dataset, architecture) columns)
SHAPES = {
    1: (["REF (float)", "BC", "PQ", "PQ*", "PMF", "PMF*", "GD-tanh", "MD-softmax", "MD-tanh",
         "MD-softmax-S", "MD-tanh-S"], 5),
    2: (["REF (float)", "BC", "MD-softmax-S", "MD-tanh-S"], 2),
    5: (["REF (float)", "PQ", "PQ*", "GD-tanh", "MD-softmax-S", "MD-tanh-S"], 5),
}


@pytest.fixture(scope="module")
def records():
    return plots.read_paper_results(CSV)


def test_file_cites_its_source():
    header = "".join(line for line in CSV.read_text().splitlines() if line.startswith("#"))
    assert "ajanthan2021mirror" in header and "dockhorn2021demystifying" in header
    bib = (ROOT / "book" / "references.bib").read_text()
    assert "ajanthan2021mirror" in bib and "dockhorn2021demystifying" in bib


@pytest.mark.parametrize("table", sorted(SHAPES))
def test_each_table_is_a_full_grid_of_methods_by_datasets(records, table):
    methods, n_cols = SHAPES[table]
    chosen = [r for r in records if r["table"] == table]
    order = [m for _, m in sorted({(r["row"], r["method"]) for r in chosen})]
    assert order == methods
    columns = {(r["dataset"], r["architecture"]) for r in chosen}
    assert len(columns) == n_cols
    cells = [(r["method"], r["dataset"], r["architecture"]) for r in chosen]
    assert len(cells) == len(set(cells)) == len(methods) * n_cols


def test_float_reference_beats_every_quantized_row(records):
    ref = {(r["table"], r["dataset"], r["architecture"]): r["accuracy"]
           for r in records if r["method"] == "REF (float)"}
    for r in records:
        if r["method"] != "REF (float)":
            assert r["accuracy"] < ref[(r["table"], r["dataset"], r["architecture"])], r


def test_markdown_rendering_keeps_every_number(records):
    md = plots.paper_table_markdown(records, 1, extra={"this book": {"BC": "0.90"}})
    lines = md.splitlines()
    assert len(lines) == 2 + len(SHAPES[1][0])
    bc = next(line for line in lines if line.startswith("| BC |"))
    assert bc.split(" | ")[1:] == ["89.04", "91.64", "59.13", "72.14", "49.65", "0.90 |"]
    with pytest.raises(ValueError, match="methods not in table 2"):
        plots.paper_table_markdown(records, 2, methods=["PMF"])


def test_bad_file_is_refused(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text(",".join(plots.PAPER_FIELDS) + "\n1,1,BC,w,CIFAR-10,VGG-16,binary,189.0\n")
    with pytest.raises(ValueError, match="outside"):
        plots.read_paper_results(bad)
    bad.write_text("table,method,accuracy\n1,BC,89.04\n")
    with pytest.raises(ValueError, match="columns must be"):
        plots.read_paper_results(bad)


# Rows of the paper as its extracted text prints them: the method name, then the numbers in
# order. Each table's rows are searched only in the text just before its caption.
SPOT_CHECKS = [
    (1, "BC", r"^BC\t"),
    (1, "MD-tanh-S", r"^MD-tanh-s\t"),
    (1, "PMF*", r"^PMF\*\t"),
    (5, "GD-tanh", r"^GD-tanh\t"),
    (5, "PQ*", r"^\$PQ\^\*\$\t"),
]
BLOCKS = {1: ("Algorithm\tSpace", "Table 1:"), 5: ("Table 4:", "Table 5:")}


@pytest.mark.skipif(not SEED.exists(), reason="the paper's text is not on this machine")
@pytest.mark.parametrize(("table", "method", "pattern"), SPOT_CHECKS)
def test_rows_match_the_paper_text(records, table, method, pattern):
    text = SEED.read_text()
    begin, end = BLOCKS[table]
    block = text[text.index(begin) : text.index(end)]
    lines = [line for line in block.splitlines() if re.search(pattern, line)]
    assert len(lines) == 1, f"expected one line for {method} in table {table}, got {lines}"
    numbers = [float(x) for x in re.findall(r"\d+\.\d\d", lines[0])]
    ours = [r["accuracy"] for r in records if r["table"] == table and r["method"] == method]
    assert numbers == ours


@pytest.mark.skipif(not SEED.exists(), reason="the paper's text is not on this machine")
def test_merged_rows_of_table_2_match_the_paper_text(records):
    text = SEED.read_text()
    ref_bc = next(line for line in text.splitlines() if line.startswith("REF (float) BC\t"))
    md = next(line for line in text.splitlines() if line.startswith("MD-softmax-s\t89.71"))
    got = {(r["method"], r["dataset"]): r["accuracy"] for r in records if r["table"] == 2}
    # each merged line is "<c10 of row a> <c10 of row b>\t<c100 of row a> <c100 of row b>"
    for line, (a, b) in ((ref_bc, ("REF (float)", "BC")), (md, ("MD-softmax-S", "MD-tanh-S"))):
        n = [float(x) for x in re.findall(r"\d+\.\d\d", line)]
        assert n == [got[(a, "CIFAR-10")], got[(b, "CIFAR-10")],
                     got[(a, "CIFAR-100")], got[(b, "CIFAR-100")]]

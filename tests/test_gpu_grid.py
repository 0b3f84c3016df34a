"""Chapter 11's statistics over seeds, its diagnostics and its cost estimate, each against an
independent computation; and the recorded grid in book/results against its own files."""

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from mdq_teach.experiments import gpu_report as report
from mdq_teach.experiments import gpu_suite as suite
from mdq_teach.experiments import results

ROOT = Path(__file__).resolve().parents[1]


def _rec(method, acc, seed=0, kind="binary", val_losses=(1.0, 0.5), command="synthetic"):
    levels = suite.BINARY if kind == "binary" else suite.TERNARY
    run = suite.grid_run("resnet18", method, levels, seed=seed)
    rec = results.base_record("train", run.name, command, 10.0, "cpu", tags=list(run.tags))
    rec["environment"].update(device_kind="cuda", device_name="synthetic GPU", torch="0.0")
    its = [100 * (i + 1) for i in range(len(val_losses))]
    rec.update(
        images_per_second=1000.0, images_per_second_basis="synthetic", test_acc=acc,
        best_val_acc=acc, best_iteration=its[-1],
        protocol=dict(dataset="fashion-mnist", arch="resnet18", method=method, levels=list(levels),
                      seed=seed, iterations=its[-1], batch_size=128, epochs=5,
                      train_size=55000, val_size=5000, test_size=10000, amp="bf16"),
        curves={"train": [], "val": [{"iteration": i, "val_acc": acc, "val_loss": v, "beta": 1.0}
                                     for i, v in zip(its, val_losses, strict=True)]},
    )  # fmt: skip
    return rec


def test_cell_summary_against_numpy():
    accs = [0.9012, 0.8833, 0.9101]
    cell = [_rec("bc", a, seed=s) for s, a in enumerate(accs)]
    s = report.cell_summary(cell)
    x = 100 * np.array(accs)
    assert s["mean"] == pytest.approx(x.mean()) and s["sd"] == pytest.approx(x.std(ddof=1))
    assert (s["min"], s["max"], s["n"], s["seeds"]) == (x.min(), x.max(), 3, [0, 1, 2])
    assert report.cell_summary(cell[:1])["sd"] == 0.0
    assert report._cell_text(cell) == f"{x.mean():.2f} ± {x.std(ddof=1):.2f} (3)"


def test_ranking_orders_by_mean_and_measures_the_gap_to_float():
    recs = [_rec("float", a, s) for s, a in enumerate((0.92, 0.90))]
    recs += [_rec("bc", a, s) for s, a in enumerate((0.91, 0.91))]
    recs += [_rec("pmf", a, s) for s, a in enumerate((0.93, 0.95))]
    recs += [_rec("pq", 0.5, 0, kind="ternary")]  # another table: not in the binary ranking
    rows = report.ranking(recs)
    assert [r["method"] for r in rows] == ["pmf", "bc"]
    assert rows[0]["gap"] == pytest.approx(91.0 - 94.0) and rows[1]["gap"] == pytest.approx(0.0)
    gap = report.gap_to_float(recs, "bc")
    assert gap["gap"] == pytest.approx(0.0) and gap["float"]["n"] == 2
    assert report.gap_to_float(recs, "md-tanh-s") is None
    text = report.ranking_markdown(recs)
    assert "| 1 | PMF | 94.00 |" in text and "| 2 | BC | 91.00 |" in text


def test_frozen_from_finds_where_the_validation_loss_stops_changing():
    assert report.frozen_from(_rec("pq", 0.4, val_losses=(3.0, 2.0, 2.0, 2.0))) == 200
    assert report.frozen_from(_rec("pq", 0.4, val_losses=(2.0, 2.0))) == 100
    assert report.frozen_from(_rec("pq", 0.4, val_losses=(3.0, 2.0, 2.0, 1.9))) is None


def test_shared_gpu_runs_do_not_price_the_protocol():
    shared = _rec("bc", 0.9, command="python3 scripts/gpu_suite.py run --claim-dir /tmp/x")
    alone = _rec("pmf", 0.9)
    assert report.shared_gpu(shared) and not report.shared_gpu(alone)
    speeds = report.images_per_second([shared, alone])
    assert ("resnet18", "pmf") in speeds and ("resnet18", "bc") not in speeds


def test_flop_estimate_against_a_direct_sum():
    rows = [{"method": "float", "ms_per_iteration": 10.0, "images_per_second": 12800.0,
             "ratio_to_float": 1.0},
            {"method": "bc", "ms_per_iteration": 12.5, "images_per_second": 10240.0,
             "ratio_to_float": 0.8}]  # fmt: skip
    tp = results.base_record("throughput", "tp", "synthetic", 1.0, "cpu")
    tp["environment"].update(device_kind="cuda", device_name="synthetic GPU")
    tp.update(setup={"arch": "resnet18", "batch_size": 128}, rows=rows)
    est = report.flop_estimate([tp], "1")
    rate = suite.count_flops("resnet18", 128, 1) / 0.010
    expected = 0.0
    for _d, arch, method, _l in report.paper_runs("1"):
        ratio = 0.8 if method == "bc" else 1.0
        expected += 100_000 * suite.count_flops(arch, 128, 3) / rate / ratio
    assert est["hours"] == pytest.approx(expected / 3600)
    assert est["tflops"] == pytest.approx(rate / 1e12)
    assert est["runs"] == len(report.paper_runs("1"))
    assert report.flop_estimate([], "1") is None
    assert "No GPU throughput record" in report.flop_estimate_markdown([])


def test_three_input_channels_cost_more_only_in_the_first_layer():
    one, three = suite.count_flops("resnet18", 8, 1), suite.count_flops("resnet18", 8, 3)
    # the stem is 3x3 convolution to 64 channels at 32x32: forward 2*9*64*32*32 FLOPs per image
    # and input channel, and the backward pass repeats it for the weights only (no input grad)
    stem = 2 * 9 * 64 * 32 * 32 * 8
    assert three - one == pytest.approx(2 * stem * 2, rel=1e-9)


# --- the records in book/results -------------------------------------------------------------


def _book_records():
    records, skipped = results.load_records(results.RESULTS_DIR)
    assert skipped == []
    return records


@pytest.mark.fidelity("md:tab1", "md:tab2", "md:tab5")
def test_chapter_grid_is_the_mean_of_the_record_files_beside_the_paper():
    """Every Fashion-MNIST cell of chapter 11's tables is the mean ± sd of the JSON files of that
    cell, read here directly; every paper cell is the CSV transcription's value."""
    files = [json.loads(p.read_text()) for p in sorted(results.RESULTS_DIR.glob("*.json"))]
    grid = [r for r in files if r["kind"] == "train" and "grid" in r["tags"]]
    if not grid:
        pytest.skip("no grid record in book/results")
    paper = report.paper_tables()
    for kind in ("binary", "ternary"):
        text = report.grid_markdown(_book_records(), kind)
        for method in suite.BINARY_R18 if kind == "binary" else suite.TERNARY_R18:
            line = next(x for x in text.splitlines() if x.startswith(f"| {report.LABEL[method]} |"))
            cells = [c.strip() for c in line.strip("|").split("|")]
            want_kind = "binary" if method == "float" else kind
            accs = [100 * r["test_acc"] for r in grid if r["protocol"]["method"] == method
                    and r["protocol"]["arch"] == "resnet18"
                    and report.gpu_suite._kind(r["protocol"]["levels"]) == want_kind]  # fmt: skip
            if accs:
                mean = statistics.fmean(accs)
                assert cells[1].startswith(f"{mean:.2f}")
                if len(accs) > 1:
                    assert cells[1] == f"{mean:.2f} ± {statistics.stdev(accs):.2f} ({len(accs)})"
            table = "1" if kind == "binary" else "5"
            value = report.paper_value(paper, table, method, "cifar10", "resnet18")
            n_arch = 3 if kind == "binary" else 1
            assert cells[1 + n_arch] == ("—" if value is None else f"{value:.2f}")


def test_recorded_grid_is_complete_and_from_one_protocol():
    records = _book_records()
    cells = report.grid_cells(records)
    if not cells:
        pytest.skip("no grid record in book/results")
    for method in suite.BINARY_R18:
        assert len(cells[("resnet18", method, "binary")]) == 3, method
    for method in suite.TERNARY_R18[1:]:
        assert len(cells[("resnet18", method, "ternary")]) == 3, method
    protocols = {(r["protocol"]["epochs"], r["protocol"]["train_size"], r["protocol"]["batch_size"])
                 for cell in cells.values() for r in cell}  # fmt: skip
    assert protocols == {(suite.EPOCHS, suite.TRAIN_SIZE, suite.BATCH_SIZE)}
    # no collapsed network: every quantized cell far above chance, ternary included
    for (arch, method, kind), cell in cells.items():
        if method != "pq":
            assert min(r["test_acc"] for r in cell) > 0.5, (arch, method, kind)

"""Chapter 11's rendering (mdq_teach.experiments.gpu_report) on a synthetic record set in a
temporary folder (clearly labelled, never in book/results) and on none; the reproduce commands
parse with the trainer's own command line; the chapter executes with the synthetic records."""

import json
import shlex
import shutil
from pathlib import Path

import pytest

from mdq_teach.experiments import gpu_report as report
from mdq_teach.experiments import gpu_suite as suite
from mdq_teach.experiments import results
from mdq_teach.nn import presets
from mdq_teach.nn.trainer import build_parser, resolve_config

ROOT = Path(__file__).resolve().parents[1]
PAPER = report.paper_tables()


def _record(run: suite.Run, acc: float, rate: float) -> dict:
    """A synthetic record of ``run`` (made up numbers; tagged 'synthetic-test')."""
    rec = results.base_record("train", run.name, "synthetic", 100.0, "cpu",
                              tags=[*run.tags, "synthetic-test"])  # fmt: skip
    rec["environment"].update(device_kind="cuda", device_name="synthetic GPU", cuda="12.8")
    iters = run.iterations
    rec.update(
        images_per_second=rate,
        images_per_second_basis="synthetic",
        protocol=dict(dataset="fashion-mnist", arch=run.arch, method=run.method,
                      levels=list(run.levels), preset=None, seed=run.settings["seed"],
                      iterations=iters,
                      batch_size=128, eval_interval=429, epochs=run.epochs, train_size=55000,
                      val_size=5000, test_size=10000, image_size=32, hyperparameters={}),
        curves={"train": [{"iteration": i, "loss": 2.0 / i} for i in (1, iters)],
                "val": [{"iteration": i, "val_acc": acc * i / iters, "val_loss": 2.0 * iters / i,
                         "beta": 1.0 + i} for i in (iters // 2, iters)]},
        best_val_acc=acc, best_iteration=iters, test_acc=acc,
    )  # fmt: skip
    return rec


def _throughput(rates: dict) -> dict:
    rec = results.base_record("throughput", "gpu-throughput-resnet18", "synthetic", 5.0, "cpu",
                              tags=["throughput", "synthetic-test"])  # fmt: skip
    rec["environment"].update(device_kind="cuda", device_name="synthetic GPU", cuda="12.8")
    rec["setup"] = dict(arch="resnet18", dataset="fashion-mnist", image_size=32, batch_size=128,
                        warmup=1, iterations=1, rounds=1, precision="bf16", channels_last=True)
    rec["rows"] = [{"method": m, "images_per_second": r, "ms_per_iteration": 128e3 / r,
                    "ratio_to_float": r / rates["float"]} for m, r in rates.items()]  # fmt: skip
    return rec


def _cpu_throughput() -> dict:
    """A CPU throughput record kept on purpose (gpu_throughput.py --record-cpu), made up numbers."""
    rec = results.base_record("throughput", "cpu-throughput-smallconv", "synthetic", 5.0, "cpu",
                              tags=["throughput", results.CPU_RECORD_TAG, "synthetic-test"])
    rec["setup"] = dict(arch="smallconv", dataset="fashion-mnist", image_size=28, batch_size=128,
                        warmup=1, iterations=1, rounds=1, precision="fp32", channels_last=False,
                        threads=2)
    rates = {"float": 8000.0, "bc": 7600.0, "md-tanh-s": 7200.0}
    rec["rows"] = [{"method": m, "images_per_second": r, "ms_per_iteration": 128e3 / r,
                    "ratio_to_float": r / rates["float"]} for m, r in rates.items()]  # fmt: skip
    rec["cpu_record_allowed"] = True  # the label write_record gives it in book/results
    return rec


ACC = {"float": 0.93, "bc": 0.90, "md-tanh-s": 0.92, "pq": 0.88}


def test_two_transcriptions_of_the_paper_agree(tmp_path):
    """The chapter's JSON and the book's shared CSV were typed separately: every cell agrees."""
    csv_path = report.PAPER_CSV
    if not csv_path.exists():  # the CSV is another chapter's; check the reader on a sample
        csv_path = tmp_path / "paper_results.csv"
        csv_path.write_text("# sample\ntable,row,method,space,dataset,architecture,levels,"
                            "accuracy\n2,4,MD-tanh-S,w,CIFAR-10,MobileNetV2,binary,89.99\n"
                            "1,1,REF (float),w,CIFAR-100,VGG-16,float,71.50\n")  # fmt: skip
    mine = report.paper_tables(report.PAPER_TABLES)["tables"]
    shared = report.paper_tables_from_csv(csv_path)["tables"]
    n = 0
    for name, table in shared.items():
        for method, values in table["rows"].items():
            for col, value in zip(table["columns"], values, strict=True):
                if value is None:
                    continue
                mt = mine[name]
                assert mt["rows"][method][mt["columns"].index(col)] == value, (name, method, col)
                n += 1
    assert n >= 2


@pytest.fixture()
def synthetic_dir(tmp_path):
    folder = tmp_path / "results"
    for run in suite.all_runs():
        acc = ACC.get(run.method, 0.91) - (0.005 if "fast" in run.name else 0)
        if "cap1000" in run.name:
            acc = 0.925
        results.write_record(_record(run, acc, 8000.0), folder)
    rates = {m: 10000.0 * (0.96 if m != "pmf" else 0.9) for m in suite.BINARY_R18}
    rates["float"] = 10000.0
    results.write_record(_throughput(rates), folder)
    # and a CPU throughput record, as book/results holds one: the GPU tables never see it
    results.write_record(_cpu_throughput(), folder)
    return folder


def test_the_grid_averages_the_seeds_and_counts_cells_by_seed_0(tmp_path):
    folder = tmp_path / "results"
    grid = [r for r in suite.all_runs() if "grid" in r.tags]
    for run in grid:
        acc = 0.5 if "seed" in run.tags else ACC.get(run.method, 0.91)
        results.write_record(_record(run, acc, 8000.0), folder)
    records, _ = results.load_records(folder)
    import statistics

    accs = [100 * ACC["md-tanh-s"], 50.0, 50.0]  # seed 0, then seeds 1 and 2
    cell = f"{statistics.fmean(accs):.2f} ± {statistics.stdev(accs):.2f} (3)"
    assert f"| MD-tanh-S | {cell} | 92.00 | 92.00 |" in report.grid_markdown(records, "binary")
    # the curves and the seed-0 record of a cell are seed 0's, whichever file sorts last
    assert report._grid_records(records)[("resnet18", "md-tanh-s", "binary")]["test_acc"] == (
        ACC["md-tanh-s"])
    only_seeds = [r for r in records if "seed" in r["tags"]]
    assert report.grid_status(only_seeds, "ternary") == "0 of 5 runs recorded"


def test_a_cpu_throughput_record_is_kept_apart_from_the_gpu_tables(synthetic_dir):
    records, skipped = results.load_records(synthetic_dir)
    assert skipped == [] and len(records) == len(suite.all_runs()) + 1
    assert all(r["environment"]["device_kind"] == "cuda" for r in records)
    assert report.cpu_throughput_record(records) is None
    everything, skipped = results.load_records(synthetic_dir, include_cpu=True)
    assert skipped == [] and len(everything) == len(records) + 1
    assert [r["run"] for r in report.throughput_records(everything)] == ["gpu-throughput-resnet18"]
    cpu = report.cpu_throughput_record(everything)
    assert cpu["run"] == "cpu-throughput-smallconv" and cpu["cpu_record_allowed"] is True
    assert report.cpu_throughput_record(everything, arch="smallconv") is cpu
    assert report.cpu_throughput_record(everything, arch="resnet18") is None
    # the GPU numbers do not change with the CPU record in the list
    assert report.summary_numbers(everything) == report.summary_numbers(records)
    assert report.images_per_second(everything) == report.images_per_second(records)
    assert report.throughput_markdown(report.throughput_records(everything)[0]) == (
        report.throughput_markdown(report.throughput_records(records)[0]))
    text = report.throughput_markdown(cpu)
    assert text.startswith("smallconv, batch 128, fp32, channels_last False, CPU ")
    assert "2 threads" in text and "CUDA" not in text
    assert "| MD-tanh-S | 17.78 | 7200 | 0.900 | **no** |" in text


def test_paper_tables_file_is_consistent():
    PAPER = report.paper_tables(report.PAPER_TABLES)
    t1, t5 = PAPER["tables"]["1"], PAPER["tables"]["5"]
    assert t1["rows"]["float"] == t5["rows"]["float"]  # same REF in both tables
    for table in PAPER["tables"].values():
        for row in table["rows"].values():
            assert len(row) == len(table["columns"]) and all(0 < v < 100 for v in row)


def test_without_records_everything_says_missing_and_gives_commands(tmp_path):
    records, skipped = results.load_records(tmp_path / "none")
    assert records == [] and skipped == []
    grid = report.grid_markdown(records, "binary")
    for line in grid.splitlines()[2:]:
        cells = [c.strip() for c in line.strip("|").split("|")]
        assert cells[1:4] == ["—"] * 3  # no Fashion-MNIST number without a record
    assert "| MD-tanh-S | — | — | — | 93.18 | 91.53 | 89.99 |" in grid
    commands = report.missing_commands(records).splitlines()
    assert commands == [f"python scripts/gpu_suite.py run --batch {b}" for b in suite.batches()]
    assert "no record yet" in report.fast_markdown(report.fast_schedule(records))
    assert report.curves_figure(records) is None
    assert "no GPU record yet" in report.cost_markdown(records)


def test_with_synthetic_records_the_grid_shows_them(synthetic_dir):
    records, skipped = results.load_records(synthetic_dir)
    assert skipped == [] and len(records) == len(suite.all_runs()) + 1
    grid = report.grid_markdown(records, "binary")
    # ResNet-18 cells have three seeds (the same synthetic accuracy each): mean ± sd (seeds)
    assert "| MD-tanh-S | 92.00 ± 0.00 (3) | 92.00 | 92.00 | 93.18 | 91.53 | 89.99 |" in grid
    assert "| PQ | 88.00 ± 0.00 (3) | — | — | 90.76 | 85.41 | — |" in grid
    ternary = report.grid_markdown(records, "ternary")
    assert "| REF (float) | 93.00 ± 0.00 (3) | 94.84 |" in ternary  # the binary float runs serve
    assert report.grid_status(records, "ternary") == "5 of 5 runs recorded"
    assert report.missing_commands(records) == ""
    fig = report.curves_figure(records, "resnet18", "binary")
    assert fig is not None and len(fig.axes[0].lines) == len(suite.BINARY_R18)


def test_fast_schedule_verdict(synthetic_dir):
    records, _ = results.load_records(synthetic_dir)
    fast = report.fast_schedule(records)
    assert fast["reference"] == pytest.approx(92.5)
    assert fast["best"]["run"].endswith("cap1000-e29") and fast["met"]
    gaps = {r["run"].split("-")[-2]: r["gap"] for r in fast["rows"]}
    assert gaps["cap1000"] == pytest.approx(0.0) and gaps["paper"] == pytest.approx(1.0)


def test_protocol_cost_from_measured_rates(synthetic_dir):
    records, _ = results.load_records(synthetic_dir)
    cost = report.protocol_cost(records, "1")
    # independent count: per run 100k iterations x 128 images at the rate of its (arch, method)
    expected, n = 0.0, 0
    for _dataset, arch, method in presets.available((-1, 1)):
        if arch == "mobilenetv2":
            continue
        n += 1
        if arch == "resnet18":
            rate = 10000.0 if method == "float" else (9000.0 if method == "pmf" else 9600.0)
        elif method in suite.OTHER_ARCH_METHODS:
            rate = 8000.0  # from the grid run's record
        else:
            continue
        expected += 100_000 * 128 / rate / 60
    assert cost["runs"] == n and cost["minutes"] == pytest.approx(expected)
    assert ("cifar10", "vgg16", "md-tanh") in [tuple(u) for u in cost["unknown"]]


def test_throughput_table_flags_the_target(synthetic_dir):
    records, _ = results.load_records(synthetic_dir)
    text = report.throughput_markdown(report.throughput_records(records)[0])
    assert "| PMF | 14.22 | 9000 | 0.900 | **no** |" in text
    assert "| BC | 13.33 | 9600 | 0.960 | yes |" in text


@pytest.mark.parametrize("table", ["1", "2", "5"])
def test_reproduce_commands_parse_with_the_trainer(table):
    lines = report.reproduce_block(table).splitlines()
    assert len(lines) == len(report.paper_runs(table)) > 0
    for line in lines:
        argv = shlex.split(line)
        assert argv[:3] == ["python", "-m", "mdq_teach.train"] and "--preset" in argv
        args = vars(build_parser().parse_args(argv[3:]))
        config = resolve_config({k: args[k] for k in ("dataset", "arch", "method", "preset")}
                                | ({"levels": args["levels"]} if args["levels"] else {}))
        assert config.preset_source.startswith("Ajanthan")
        assert (config.levels == (-1.0, 0.0, 1.0)) == (table == "5")
        assert (config.arch == "mobilenetv2") == (table == "2")


@pytest.mark.slow
def test_chapter_executes_with_synthetic_records(tmp_path, synthetic_dir):
    book = tmp_path / "book"
    book.mkdir()
    shutil.copy(ROOT / "book" / "11_scaling_up_on_a_gpu.md", book)
    shutil.copytree(synthetic_dir, book / "results")
    import jupytext
    import nbclient

    nb = jupytext.read(book / "11_scaling_up_on_a_gpu.md")
    nbclient.NotebookClient(nb, timeout=600, kernel_name="python3",
                            resources={"metadata": {"path": str(book)}}).execute()  # fmt: skip
    text = json.dumps([c.get("outputs", []) for c in nb.cells if c.cell_type == "code"])
    assert f"{len(suite.all_runs()) + 1} records in results" in text
    assert "92.00" in text and "No GPU record yet" not in text
    assert "image/svg+xml" in text  # the learning curves were drawn (SVG, plots.use_book_style)

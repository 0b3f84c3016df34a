"""benchmarks/gpu_throughput.py on the CPU with --tiny: a labelled check that the benchmark runs
every method, takes ratios against float, and writes a valid record only where it may."""

import importlib.util
from pathlib import Path

import pytest
import torch

from mdq_teach.experiments import results
from mdq_teach.nn import METHODS

ROOT = Path(__file__).resolve().parents[1]
spec = importlib.util.spec_from_file_location(
    "gpu_throughput", ROOT / "benchmarks" / "gpu_throughput.py"
)
bench = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bench)


def test_tiny_cpu_run_prints_the_table_and_writes_nothing(capsys, monkeypatch, tmp_path):
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)  # where a GPU run would write
    assert bench.main(["--device", "cpu", "--tiny", "--methods", "bc", "md-tanh-s"]) == 0
    out = capsys.readouterr().out
    assert "TINY CPU CHECK" in out and "no record written" in out
    lines = [s.split()[0] for s in out.splitlines()[2:5]]
    assert lines == ["float", "bc", "md-tanh-s"]
    assert not list(tmp_path.iterdir())


def test_tiny_record_when_asked_outside_book_results(tmp_path, capsys):
    assert bench.main(["--device", "cpu", "--tiny", "--results-dir", str(tmp_path)]) == 0
    rec = results.read_record(tmp_path / "gpu-throughput-smallconv-tiny-cpu-test.json")
    assert rec["kind"] == "throughput" and "tiny-cpu-test" in rec["tags"]
    assert [r["method"] for r in rec["rows"]] == list(METHODS)
    for row in rec["rows"]:
        assert row["images_per_second"] == pytest.approx(8 / (row["ms_per_iteration"] / 1000))
    ref = rec["rows"][0]["images_per_second"]
    for row in rec["rows"]:
        assert row["ratio_to_float"] == pytest.approx(row["images_per_second"] / ref)
    assert rec["setup"]["precision"] == "fp32" and rec["setup"]["channels_last"] is False


def test_cpu_record_refused_in_book_results():
    with pytest.raises(results.RecordError, match="GPU runs only"):
        bench.main(["--device", "cpu", "--tiny", "--methods", "bc",
                    "--results-dir", str(results.RESULTS_DIR)])  # fmt: skip


def test_bad_arguments_are_named():
    with pytest.raises(SystemExit, match="--iterations must be >= 1"):
        bench.main(["--device", "cpu", "--tiny", "--iterations", "0"])
    with pytest.raises(SystemExit, match="--methods: unknown"):
        bench.main(["--device", "cpu", "--tiny", "--methods", "adamw"])
    with pytest.raises(SystemExit, match="does not run bf16"):
        bench.main(["--device", "cpu", "--tiny", "--precision", "bf16"])


def test_the_step_trains(tmp_path):
    """The timed step is a real training step: the loss falls on a fixed batch."""
    from mdq_teach.nn import data as data_lib

    data = data_lib.load("synthetic")
    model, opt = bench.build("smallconv", "float", data, torch.device("cpu"), False)
    x, y = next(data_lib.BatchStream(data, 32, seed=0))
    losses = [bench.train_step(model, opt, x, y, "fp32", torch.device("cpu")).item()
              for _ in range(15)]  # fmt: skip
    assert losses[-1] < 0.5 * losses[0]


def test_record_cpu_writes_a_labelled_cpu_record_into_book_results(monkeypatch, tmp_path,
                                                                     capsys):  # fmt: skip
    """--record-cpu on smallconv (real 28x28 Fashion-MNIST): the record goes where book/results
    would be, labelled as a CPU measurement, and the GPU tables leave it out."""
    from mdq_teach import fetch
    from mdq_teach.experiments import gpu_report

    if fetch.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed")
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    assert bench.main(["--device", "cpu", "--arch", "smallconv", "--methods", "bc",
                       "--warmup", "1", "--iterations", "1", "--rounds", "1",
                       "--batch", "16", "--record-cpu"]) == 0  # fmt: skip
    assert "record:" in capsys.readouterr().out
    rec = results.read_record(tmp_path / "cpu-throughput-smallconv.json")
    assert rec["kind"] == "throughput" and rec["environment"]["device_kind"] == "cpu"
    assert rec["cpu_record_allowed"] is True and results.CPU_RECORD_TAG in rec["tags"]
    assert "tiny-cpu-test" not in rec["tags"] and results.is_cpu_record(rec)
    assert rec["setup"]["arch"] == "smallconv" and rec["setup"]["image_size"] == 28
    assert rec["setup"]["dataset"] == "fashion-mnist"
    assert rec["setup"]["threads"] == torch.get_num_threads()
    assert [r["method"] for r in rec["rows"]] == ["float", "bc"]
    assert any("recorded on purpose" in n for n in rec["notes"])
    assert results.load_records(tmp_path) == ([], [])
    everything, _ = results.load_records(tmp_path, include_cpu=True)
    assert gpu_report.throughput_records(everything) == []
    assert gpu_report.cpu_throughput_record(everything)["run"] == "cpu-throughput-smallconv"


def test_record_cpu_is_refused_with_tiny():
    with pytest.raises(SystemExit, match="--record-cpu: a --tiny check is not a measurement"):
        bench.main(["--device", "cpu", "--tiny", "--record-cpu"])

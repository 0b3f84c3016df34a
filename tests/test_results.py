"""Run records (mdq_teach.experiments.results): built from a real (tiny, CPU) training run, strict
JSON, schema round trip, clear errors, and no CPU record in book/results."""

import copy
import json

import pytest

from mdq_teach.experiments import results
from mdq_teach.experiments.gpu_suite import Run, run_one, tiny
from mdq_teach.nn import data as data_lib
from mdq_teach.nn.trainer import train

TINY = dict(
    dataset="synthetic", arch="smallconv", method="md-tanh-s", iterations=6, batch_size=16,
    eval_interval=3, log_interval=2, bn_batches=2, beta_scale=1.5, beta_scale_interval=2,
    lr_interval=4, device="cpu", progress=False,
)  # fmt: skip


@pytest.fixture(scope="module")
def synthetic():
    return data_lib.load("synthetic")


@pytest.fixture(scope="module")
def cpu_run(tmp_path_factory, synthetic):
    """A finished tiny CPU run (clearly not a GPU run) and the record built from its files."""
    out = tmp_path_factory.mktemp("tiny-cpu-run")
    result = train(dict(TINY, out=str(out)), data=synthetic, command="pytest tiny run")
    protocol = dict(epochs=6 * 16 / 512, train_size=512, val_size=128, test_size=128,
                    image_size=32)  # fmt: skip
    record = results.record_from_run(
        out, run="tiny-cpu-test-run", command="pytest tiny run", wall_time_s=2.5,
        protocol=protocol, device="cpu", tags=["tiny-cpu-test"],
    )  # fmt: skip
    return out, result, record


def test_record_holds_what_the_run_wrote(cpu_run):
    out, result, record = cpu_run
    metrics = [json.loads(s) for s in (out / "metrics.jsonl").read_text().splitlines()]
    evals = [m for m in metrics if m["kind"] == "eval"]
    assert [p["val_acc"] for p in record["curves"]["val"]] == [m["val_acc"] for m in evals]
    assert [p["iteration"] for p in record["curves"]["val"]] == [3, 6]
    assert [p["iteration"] for p in record["curves"]["train"]] == [2, 4, 6]
    assert record["test_acc"] == result["test_acc"]
    assert record["best_val_acc"] == max(m["val_acc"] for m in evals)
    assert record["images_per_second"] == pytest.approx(6 * 16 / 2.5)
    env = record["environment"]
    assert env["device_kind"] == "cpu" and env["device_name"]
    assert env["torch"] and env["python"] and "git_dirty" in env
    p = record["protocol"]
    assert (p["method"], p["arch"], p["iterations"], p["batch_size"]) == (
        "md-tanh-s", "smallconv", 6, 16,
    )  # fmt: skip
    # beta_max is infinite by default: strict JSON holds it as a string
    assert p["hyperparameters"]["beta_max"] == "inf"


def test_round_trip_is_exact_and_strict_json(cpu_run, tmp_path):
    _, _, record = cpu_run
    path = results.write_record(record, tmp_path)
    assert path == tmp_path / "tiny-cpu-test-run.json"
    text = path.read_text()
    assert "Infinity" not in text and "NaN" not in text
    json.loads(text, parse_constant=lambda c: pytest.fail(f"non-strict constant {c}"))
    assert results.read_record(path) == record
    assert "cpu_record_allowed" not in record  # written outside book/results: no label needed


def test_cpu_record_refused_in_book_results(cpu_run):
    _, _, record = cpu_run
    target = results.RESULTS_DIR / f"{record['run']}.json"
    with pytest.raises(results.RecordError, match="GPU runs only"):
        results.write_record(record)
    with pytest.raises(results.RecordError, match="GPU runs only"):
        results.write_record(record, results.RESULTS_DIR / "sub")
    assert not target.exists()


def test_allow_cpu_record_labels_it_and_the_book_skips_it(cpu_run, tmp_path, monkeypatch):
    _, _, record = cpu_run
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    path = results.write_record(record, allow_cpu_record=True)
    assert results.read_record(path)["cpu_record_allowed"] is True
    shown, skipped = results.load_records(tmp_path)
    assert shown == [] and len(skipped) == 1 and "not a GPU run" in skipped[0]
    # the same record claiming a GPU is shown
    gpu = copy.deepcopy(record)
    gpu["environment"].update(device_kind="cuda", cuda="12.4", device_name="test GPU")
    gpu["run"] = "pretend-gpu"
    results.write_record(gpu, tmp_path / "other")
    shown, skipped = results.load_records(tmp_path / "other")
    assert [r["run"] for r in shown] == ["pretend-gpu"] and skipped == []


@pytest.mark.parametrize(
    "edit, field",
    [
        (lambda r: r.update(test_acc=1.5), "record.test_acc"),
        (lambda r: r["curves"].update(val=[]), "record.curves.val"),
        (lambda r: r["environment"].pop("device_name"), "record.environment.device_name"),
        (lambda r: r["protocol"].update(epochs="ten"), "record.protocol.epochs"),
        (lambda r: r.update(run="bad name/with slash"), "record.run"),
        (lambda r: r["curves"]["train"][1].update(iteration=1), "record.curves.train[1]"),
        (lambda r: r.update(schema_version=99), "record.schema_version"),
        (lambda r: r["environment"].update(device_kind="cuda", cuda=None), "environment.cuda"),
    ],
)
def test_validation_names_the_field(cpu_run, edit, field):
    record = copy.deepcopy(cpu_run[2])
    edit(record)
    with pytest.raises(results.RecordError, match=field.replace("[", r"\[").replace("]", r"\]")):
        results.validate_record(record)


def test_non_strict_json_file_is_refused(cpu_run, tmp_path):
    text = json.dumps(cpu_run[2]).replace('"test_acc": ', '"test_acc": NaN, "x": ')
    (tmp_path / "bad.json").write_text(text)
    with pytest.raises(results.RecordError, match="bad.json: not strict JSON"):
        results.read_record(tmp_path / "bad.json")
    shown, skipped = results.load_records(tmp_path)
    assert shown == [] and "not strict JSON" in skipped[0]


def test_nan_is_never_written(cpu_run, tmp_path):
    record = copy.deepcopy(cpu_run[2])
    record["curves"]["train"][0]["loss"] = float("nan")
    with pytest.raises(results.RecordError, match=r"curves.train\[0\].loss is NaN"):
        results.write_record(record, tmp_path)
    assert not list(tmp_path.iterdir())


def test_unfinished_run_has_no_record(tmp_path, synthetic):
    train(dict(TINY, out=str(tmp_path), stop_after=3), data=synthetic)
    with pytest.raises(results.RecordError, match="stopped before the end"):
        results.record_from_run(tmp_path, run="x", command="c", wall_time_s=1.0,
                                protocol={}, device="cpu")  # fmt: skip


def test_run_one_writes_a_labelled_tiny_record(tmp_path, synthetic):
    run = tiny(Run("demo", "resnet18", "bc", (-1.0, 1.0), 1, {"lr": 1e-3}, "b"))
    path = run_one(run, synthetic, device="cpu", results_dir=tmp_path / "rec",
                   runs_dir=tmp_path / "runs", command="pytest",
                   allow_cpu_record=False)  # fmt: skip
    rec = results.read_record(path)
    assert rec["run"] == "tiny-cpu-demo" and "tiny-cpu-test" in rec["tags"]
    assert rec["protocol"]["arch"] == "smallconv" and rec["environment"]["device_kind"] == "cpu"


def test_book_results_folder_holds_only_valid_gpu_records():
    """Whatever book/results holds is a valid GPU record, or a CPU record kept on purpose."""
    shown, skipped = results.load_records()
    assert skipped == []
    for rec in shown:
        assert rec["environment"]["device_kind"] == "cuda" and "tiny-cpu-test" not in rec["tags"]
    everything, skipped = results.load_records(include_cpu=True)
    assert skipped == []
    for rec in everything:
        if rec["environment"]["device_kind"] != "cuda":
            assert results.is_cpu_record(rec) and rec["kind"] == "throughput"
            assert rec["run"].startswith("cpu-throughput-")


def test_a_cpu_record_kept_on_purpose_is_neither_shown_nor_skipped(cpu_run, tmp_path,
                                                                    monkeypatch):  # fmt: skip
    _, _, record = cpu_run
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path)
    kept = copy.deepcopy(record)
    kept["tags"] = [*kept["tags"], results.CPU_RECORD_TAG]
    kept["run"] = "kept-cpu"
    # a test's record stays a test's record, tag or not
    assert "tiny-cpu-test" in kept["tags"] and not results.is_cpu_record(
        dict(kept, cpu_record_allowed=True))
    kept["tags"].remove("tiny-cpu-test")
    with pytest.raises(results.RecordError, match="GPU runs only"):
        results.write_record(kept)  # the tag alone does not open book/results
    path = results.write_record(kept, allow_cpu_record=True)
    assert results.is_cpu_record(results.read_record(path))
    assert results.load_records(tmp_path) == ([], [])
    shown, skipped = results.load_records(tmp_path, include_cpu=True)
    assert [r["run"] for r in shown] == ["kept-cpu"] and skipped == []


def test_check_command_reports_valid_and_invalid(cpu_run, tmp_path, capsys):
    results.write_record(cpu_run[2], tmp_path)
    (tmp_path / "broken.json").write_text('{"schema": "mdq-teach/run-record"}')
    assert results.main([str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "ok tiny-cpu-test-run.json: train, cpu" in out
    assert "INVALID" in out and "1 valid, 1 invalid" in out

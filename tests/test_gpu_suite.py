"""The GPU suite (mdq_teach.experiments.gpu_suite): the runs issue 11 asks for, the compressed
schedules, batches that fit a 10-minute call, and a tiny CPU run of a whole batch into a temporary
folder."""

import math
from pathlib import Path

import pytest
import torch

from mdq_teach.experiments import gpu_suite as gs
from mdq_teach.experiments import results
from mdq_teach.nn import presets

KIND = {"binary": gs.BINARY, "ternary": gs.TERNARY}


def _covered():
    runs = [r for r in gs.all_runs() if "grid" in r.tags]
    return {(r.arch, r.method, gs._kind(r.levels)) for r in runs}


def test_grid_holds_every_run_of_issue_11():
    covered = _covered()
    want = {("resnet18", m, "binary") for m in gs.BINARY_R18}
    want |= {(a, m, "binary") for a in ("vgg16", "mobilenetv2") for m in gs.OTHER_ARCH_METHODS}
    want |= {("resnet18", m, "ternary") for m in gs.TERNARY_R18 if m != "float"}
    assert want <= covered
    # the ternary table's float column is the binary float run (levels do not touch float)
    assert ("resnet18", "float", "binary") in covered
    names = [r.name for r in gs.all_runs()]
    assert len(names) == len(set(names))


def test_every_batch_fits_a_ten_minute_call_with_the_planning_figures():
    for name, runs in gs.batches().items():
        seconds = gs.START_SECONDS + sum(gs.estimate_seconds(r) for r in runs)
        assert seconds < 540, (name, seconds)


def test_a_device_call_returns_its_records_in_few_files():
    """A device call returns at most 8 files. A batch of up to 7 runs fits as one record each
    plus a log; the larger seed batches rely on scripts/gpu_session.sh, which packs every record
    into one archive (records.tgz, nvidia-smi.txt, throughput.log and one log per worker)."""
    session = (Path(__file__).parents[1] / "scripts" / "gpu_session.sh").read_text()
    assert 'tar czf "$out/records.tgz.part" -C "$records" .' in session
    returned = {"records.tgz", "nvidia-smi.txt", "throughput.log"}
    assert all(f"$out/{name}" in session for name in returned)
    workers_at_most = 8 - len(returned)
    assert workers_at_most >= 2  # the session runs 2 workers on the one GPU
    for name, runs in gs.batches().items():
        if len(runs) > 7:
            assert name in ("r18-seeds", "r18-seeds-2", "r18-ternary-seeds"), (name, len(runs))


def test_seed_batches_repeat_the_grid_runs_with_other_seeds():
    runs = {r.name: r for r in gs.all_runs()}
    batches = gs.batches()
    assert len(batches["r18-seeds"]) == len(gs.EXTRA_SEEDS) * len(gs.SEEDED_R18) == 10
    others = [m for m in gs.BINARY_R18 if m not in gs.SEEDED_R18]
    assert len(batches["r18-seeds-2"]) == len(gs.EXTRA_SEEDS) * len(others) == 10
    ternary = [m for m in gs.TERNARY_R18 if m != "float"]
    assert len(batches["r18-ternary-seeds"]) == len(gs.EXTRA_SEEDS) * len(ternary) == 8
    # every ResNet-18 grid cell has seeds 0, 1, 2 with otherwise identical settings
    cells = [("binary", m) for m in gs.BINARY_R18] + [("ternary", m) for m in ternary]
    for kind, method in cells:
        base = runs[f"fmnist32-resnet18-{kind}-{method}-e{gs.EPOCHS}"]
        assert base.settings["seed"] == 0 and base.tags == ("grid",)
        for seed in gs.EXTRA_SEEDS:
            run = runs[f"fmnist32-resnet18-{kind}-{method}-e{gs.EPOCHS}-s{seed}"]
            assert run.settings == dict(base.settings, seed=seed)
            assert run.levels == base.levels and run.tags == ("grid", "seed")


@pytest.mark.parametrize("arch, method, levels", [
    ("resnet18", "md-tanh-s", "binary"), ("resnet18", "gd-tanh", "ternary"),
    ("vgg16", "md-tanh-s", "binary"), ("resnet18", "md-tanh", "binary"),
])  # fmt: skip
def test_compressed_schedule_sweeps_the_papers_beta_range(arch, method, levels):
    paper = presets.paper_preset("cifar10", arch, method, KIND[levels])
    run = gs.grid_run(arch, method, KIND[levels])
    s = run.settings
    assert gs.EPOCHS == 5
    assert s["iterations"] == gs.EPOCHS * (55_000 // 128) == 2145
    assert s["beta_scale"] == paper["beta_scale"] and s["lr"] == paper["lr"]
    # log of the final beta: the paper's over 100k iterations against this run's
    paper_log = (100_000 // paper["beta_scale_interval"]) * math.log(paper["beta_scale"])
    run_log = (s["iterations"] // s["beta_scale_interval"]) * math.log(s["beta_scale"])
    # interval rounding moves the exponent by at most one interval's rounding in relative terms
    rel = 0.5 / (paper["beta_scale_interval"] * s["iterations"] / 100_000)
    assert run_log == pytest.approx(paper_log, rel=rel + 0.02)
    # the learning rate decays at the same fractions of the run (30k of 100k)
    assert s["lr_interval"] / s["iterations"] == pytest.approx(0.3, abs=0.001)


def test_pq_rate_reaches_the_papers_final_lambda():
    paper = presets.paper_preset("cifar10", "resnet18", "pq")
    s = gs.grid_run("resnet18", "pq").settings
    assert s["pq_lambda"] * s["iterations"] == pytest.approx(paper["pq_lambda"] * 100_000)


def test_borrowed_values_are_said():
    run = gs.grid_run("mobilenetv2", "pmf")
    assert any("Table 10 has no PMF" in n for n in run.notes)
    pc = gs.grid_run("resnet18", "proxconnect")
    assert pc.settings["quantizer"] == "linear" and any("not in the paper" in n for n in pc.notes)


def test_fast_candidates_stay_within_29_epochs_and_end_nearly_binary():
    fast = gs.fast_runs()
    assert {r.batch for r in fast} == {"fast-1", "fast-2"}
    for run in fast:
        assert run.iterations <= 29 * (55_000 // 128)
    capped = next(r for r in fast if "cap1000" in r.name).settings
    steps = int(0.7 * capped["iterations"]) // capped["beta_scale_interval"]
    assert capped["beta_scale"] ** steps >= capped["beta_max"] == 1000.0
    assert math.tanh(1000 * 0.003) > 0.995


def test_fashion_mnist_is_padded_to_32(tmp_path):
    from mdq_teach import fetch

    if fetch.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed")
    from mdq_teach.nn import data as data_lib

    raw = data_lib.load("fashion-mnist", val_size=100, train_size=200, test_size=50)
    d = gs.fashion_mnist_32(train_size=200, val_size=100, test_size=50)
    assert d.train_x.shape[1:] == (1, 32, 32) and d.test_x.shape[1:] == (1, 32, 32)
    assert torch.equal(d.train_x[:, :, 2:30, 2:30], raw.train_x)
    assert torch.equal(d.test_x[:, :, 2:30, 2:30], raw.test_x)
    border = d.train_x.clone()
    border[:, :, 2:30, 2:30] = 0
    assert border.sum() == 0
    assert torch.allclose(d.mean, (d.train_x.double() / 255).mean().float())


def test_cpu_run_refused_without_the_test_flag(tmp_path):
    with pytest.raises(SystemExit, match="not a CUDA GPU"):
        gs.main(["run", "--batch", "vgg16", "--device", "cpu", "--tiny",
                 "--results-dir", str(tmp_path)])  # fmt: skip


@pytest.mark.slow
def test_tiny_cpu_batch_writes_one_record_per_run(tmp_path, capsys):
    """Clearly labelled test records, in a temporary folder, never in book/results."""
    before = sorted(results.RESULTS_DIR.glob("*.json")) if results.RESULTS_DIR.is_dir() else []
    args = ["run", "--batch", "r18-ternary", "--device", "cpu", "--tiny", "--allow-cpu-record",
            "--results-dir", str(tmp_path / "rec"),
            "--runs-dir", str(tmp_path / "runs")]  # fmt: skip
    assert gs.main(args) == 0
    out = capsys.readouterr().out
    paths = sorted((tmp_path / "rec").glob("*.json"))
    assert len(paths) == 4 and "done 4, skipped 0, failed 0" in out
    for path in paths:
        rec = results.read_record(path)
        assert rec["run"].startswith("tiny-cpu-") and "tiny-cpu-test" in rec["tags"]
        assert rec["protocol"]["levels"] == [-1.0, 0.0, 1.0]
        assert rec["command"].startswith("python -m mdq_teach.experiments.gpu_suite run --batch")
    # a second call finds the records and skips every run
    assert gs.main(args) == 0
    assert capsys.readouterr().out.count("record exists, skipped") == 4
    after = sorted(results.RESULTS_DIR.glob("*.json")) if results.RESULTS_DIR.is_dir() else []
    assert after == before


def test_deadline_guard_skips_and_says_how_to_finish(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(gs, "estimate_seconds", lambda run, ms=None: 1e6)
    # book/results holds this run's record since the H200 call: look in an empty folder instead,
    # or the run is skipped as done before the guard is reached
    monkeypatch.setattr(results, "RESULTS_DIR", tmp_path / "book-results")
    args = ["run", "--only", "fmnist32-vgg16-binary-bc-e5", "--device", "cpu",
            "--allow-cpu-record", "--results-dir", str(tmp_path), "--deadline-s", "10"]  # fmt: skip
    from mdq_teach import fetch

    if fetch.find_fashion_mnist() is None:
        pytest.skip("Fashion-MNIST not installed")
    assert gs.main(args) == 0
    out = capsys.readouterr().out
    assert "SKIPPED" in out and "--only fmnist32-vgg16-binary-bc-e5" in out
    assert not list(tmp_path.glob("*.json"))


def test_planning_figures_follow_from_counted_flops():
    assert gs.count_flops("resnet18") / 1e9 == pytest.approx(gs.GFLOP_PER_ITERATION["resnet18"],
                                                             rel=1e-3)  # fmt: skip
    rate = {"resnet18": 60, "vgg16": 60, "mobilenetv2": 40}  # TFLOP/s assumed in the comment
    for arch, gflop in gs.GFLOP_PER_ITERATION.items():
        assert gs.PLAN_MS_PER_ITERATION[arch] == pytest.approx(gflop / rate[arch] + 4, abs=0.15)


def test_measured_speed_replaces_the_planning_figure(tmp_path):
    rec = results.base_record("throughput", "gpu-throughput-vgg16", "t", 1.0, "cpu")
    rec["environment"].update(device_kind="cuda", cuda="12.8")
    rec["setup"] = dict(arch="vgg16", dataset="fashion-mnist", batch_size=128, warmup=1,
                        iterations=1, rounds=1, precision="bf16", channels_last=False)
    rec["rows"] = [{"method": m, "ms_per_iteration": ms, "images_per_second": 128e3 / ms,
                    "ratio_to_float": 5.0 / ms} for m, ms in (("float", 5.0), ("pmf", 6.0))]
    results.write_record(rec, tmp_path)
    measured = gs.measured_ms_per_iteration(tmp_path)
    assert measured == {"vgg16": 6.0}  # the slowest method, so that every run fits
    run = gs.grid_run("vgg16", "bc")
    assert gs.estimate_seconds(run, measured) == pytest.approx(
        gs.SAFETY * (run.iterations * 6.0 / 1000 + gs.EPOCHS * gs.EVAL_SECONDS)
    )


def test_several_batches_in_one_call_parse(tmp_path):
    with pytest.raises(SystemExit, match="not a CUDA GPU"):
        gs.main(["run", "--batch", "r18-ternary", "vgg16", "--device", "cpu", "--tiny",
                 "--results-dir", str(tmp_path)])  # fmt: skip
    with pytest.raises(SystemExit):
        gs.main(["run", "--batch", "no-such-batch", "--device", "cpu"])


def test_a_failing_run_does_not_stop_the_batch(tmp_path, capsys, monkeypatch):
    calls = []

    def fake_run_one(run, *args, **kwargs):
        calls.append(run.name)
        raise FloatingPointError("loss is nan at iteration 3")

    monkeypatch.setattr(gs, "run_one", fake_run_one)
    args = ["run", "--batch", "vgg16", "--device", "cpu", "--tiny", "--allow-cpu-record",
            "--results-dir", str(tmp_path)]  # fmt: skip
    assert gs.main(args) == 1
    out = capsys.readouterr().out
    assert len(calls) == 4 and out.count("FAILED (FloatingPointError") == 4
    assert "failed 4" in out


def test_onecycle_candidate_schedule():
    run = next(r for r in gs.fast_runs() if r.scheduler == "onecycle")
    param = torch.nn.Parameter(torch.zeros(1))
    opt = torch.optim.Adam([param], lr=run.settings["lr"])
    sched = gs.make_scheduler(run)(opt)
    lrs = []
    for _ in range(run.iterations):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    peak = max(range(len(lrs)), key=lrs.__getitem__)
    assert max(lrs) == pytest.approx(3e-3)
    assert peak == pytest.approx(0.3 * run.iterations, abs=2)  # OneCycleLR's pct_start
    assert lrs[0] == pytest.approx(3e-3 / 25) and lrs[-1] < 3e-3 / 25 / 1e3
    assert gs.make_scheduler(gs.grid_run("resnet18", "bc")) is None

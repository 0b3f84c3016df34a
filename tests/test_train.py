"""mdq_teach.nn.trainer: schedules, rounded validation, exact resume, files on disk, the CLI."""

import dataclasses
import json
import math
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mdq_teach.nn import data as data_lib
from mdq_teach.nn import trainer as train_lib
from mdq_teach.nn.trainer import TrainConfig, main, resolve_config, train

SMALL = dict(
    dataset="synthetic",
    arch="smallconv",
    batch_size=32,
    eval_interval=10,
    log_interval=5,
    bn_batches=2,
    beta_scale=1.5,
    beta_scale_interval=3,
    lr_interval=7,
    lr_scale=0.5,
    device="cpu",
    progress=False,
)


@pytest.fixture(scope="module")
def synthetic():
    return data_lib.load("synthetic")


def _state(out):
    ckpt = torch.load(out / "checkpoint.pt", weights_only=True)
    return ckpt["model"], ckpt["optimizer"]


def _assert_same(a, b):
    if isinstance(a, torch.Tensor):
        assert torch.equal(a, b)
    elif isinstance(a, dict):
        assert a.keys() == b.keys()
        for k in a:
            _assert_same(a[k], b[k])
    elif isinstance(a, list | tuple):
        assert len(a) == len(b)
        for x, y in zip(a, b, strict=True):
            _assert_same(x, y)
    else:
        assert a == b


@pytest.mark.parametrize("method", ["md-tanh-s", "md-softmax-s", "float"])
def test_resume_reproduces_an_uninterrupted_run_bit_for_bit(tmp_path, synthetic, method):
    config = dict(SMALL, method=method, iterations=20)
    whole = train(dict(config, out=str(tmp_path / "whole")), data=synthetic)
    # Stopped mid logging interval (5) and mid evaluation interval (10): the checkpoint carries
    # the partial training sums, and no record is written until the resumed run reaches 10.
    part = train(dict(config, out=str(tmp_path / "part"), stop_after=7), data=synthetic)
    assert not part["finished"] and part["test_acc"] is None
    assert [r["iteration"] for r in part["history"]] == [5]
    resumed = train(dict(config, out=str(tmp_path / "part"), resume=True), data=synthetic)
    assert resumed["resumed_from"] == 7
    model_a, opt_a = _state(tmp_path / "whole")
    model_b, opt_b = _state(tmp_path / "part")
    _assert_same(model_a, model_b)
    _assert_same(opt_a, opt_b)
    for key in ("best_val_acc", "best_iteration", "test_acc", "final_beta"):
        assert whole[key] == resumed[key]
    assert resumed["history"] == whole["history"]  # every record, the resumed half included
    lines = (tmp_path / "part" / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s) for s in lines] == whole["history"]


def test_resume_refuses_changed_settings(tmp_path, synthetic):
    config = dict(SMALL, method="bc", iterations=10, out=str(tmp_path))
    train(dict(config, stop_after=5), data=synthetic)
    with pytest.raises(ValueError, match="lr"):
        train(dict(config, lr=0.5, resume=True), data=synthetic)


def test_schedules_of_lr_and_beta(synthetic):
    c = dict(SMALL, method="md-tanh-s", iterations=16, log_interval=1, eval_interval=16, lr=0.01)
    history = train(c, data=synthetic)["history"]
    records = [r for r in history if r["kind"] == "train"]
    assert [r["iteration"] for r in records] == list(range(1, 17))
    for r in records:
        t = r["iteration"] - 1  # the step that produced this record
        assert r["lr"] == pytest.approx(0.01 * 0.5 ** (t // 7), rel=1e-12)
        # beta after t + 1 steps: multiplied every 3 steps, starting from iteration 0
        assert r["beta"] == pytest.approx(1.5 ** ((t + 1) // 3), rel=1e-12)


def test_best_model_is_rounded_and_its_accuracies_reproduce(tmp_path, synthetic):
    c = dict(SMALL, method="md-tanh-s", iterations=20, out=str(tmp_path), eval_soft=True)
    result = train(c, data=synthetic)
    model = result["model"]
    for p in model.parameters():
        assert set(p.detach().unique().tolist()) <= {-1.0, 1.0}
    evals = [r for r in result["history"] if r["kind"] == "eval"]
    assert [r["iteration"] for r in evals] == [10, 20]
    assert all("val_acc_soft" in r for r in evals)
    best = max(evals, key=lambda r: r["val_acc"])
    assert (
        result["best_val_acc"] == best["val_acc"] and result["best_iteration"] == best["iteration"]
    )
    # Independent recount on the saved best network.
    saved = torch.load(tmp_path / "best.pt")
    model.load_state_dict(saved)
    model.eval()
    with torch.no_grad():
        for split, key in (("val", "best_val_acc"), ("test", "test_acc")):
            x = data_lib.normalize(getattr(synthetic, f"{split}_x"), synthetic.mean, synthetic.std)
            acc = (model(x).argmax(1) == getattr(synthetic, f"{split}_y")).float().mean().item()
            assert acc == pytest.approx(result[key], abs=1e-6)
    on_disk = json.loads((tmp_path / "result.json").read_text())
    for key in ("torch", "device", "wall_time_s", "hyperparameters", "command", "git_commit"):
        assert key in on_disk
    assert on_disk["test_acc"] == result["test_acc"]
    assert not list(tmp_path.glob("*.tmp"))


def test_recomputed_batchnorm_differs_from_the_soft_networks(synthetic):
    c = resolve_config(dict(SMALL, method="md-tanh-s", iterations=3))
    torch.manual_seed(0)
    from mdq_teach.nn.models import get_model

    model = get_model("smallconv", 10, 3, True, size=32)
    opt = train_lib._make_optimizer(model, c)
    model.train()
    model(data_lib.normalize(synthetic.train_x[:64], synthetic.mean, synthetic.std))
    before = {k: v.clone() for k, v in model.state_dict().items()}
    inputs = [data_lib.normalize(synthetic.train_x[:64], synthetic.mean, synthetic.std)]
    rounded = train_lib.rounded_copy(
        model, opt, inputs, lambda m: train_lib._make_optimizer(m, c)
    )
    _assert_same(before, model.state_dict())  # the training model is untouched
    bn = rounded.features[1]
    x = rounded.features[0](inputs[0])  # the rounded first conv's output feeds this BatchNorm
    assert torch.allclose(bn.running_mean, x.mean(dim=(0, 2, 3)), atol=1e-5)
    assert not torch.allclose(bn.running_mean, model.features[1].running_mean, atol=1e-3)


@pytest.mark.fidelity("md:tab8", "md:tab9")
def test_paper_preset_and_overrides():
    c = resolve_config(
        TrainConfig(dataset="cifar100", arch="vgg16", method="md-tanh-s", preset="paper")
    )
    # Table 8, CIFAR-100 with VGG-16, MD-tanh-s column.
    assert (c.lr, c.lr_scale, c.beta_scale, c.beta_scale_interval) == (0.001, 0.5, 1.05, 500)
    assert c.base == "adam" and c.weight_decay == 0 and "Table 8" in c.preset_source
    c = resolve_config(
        TrainConfig(dataset="cifar10", arch="resnet18", method="float", preset="paper"),
        {"lr": 0.05},
    )
    assert (c.lr, c.base, c.momentum, c.weight_decay) == (0.05, "sgd", 0.9, 0.0001)
    c = resolve_config(
        TrainConfig(dataset="cifar10", arch="vgg16", method="pq", preset="paper", levels=(-1, 0, 1))
    )
    assert c.pq_lambda == 1e-07 and c.lr_scale == 1.0  # Table 9: PQ, lr_scale "-"
    with pytest.raises(ValueError, match="available"):
        resolve_config(TrainConfig(dataset="synthetic", preset="paper"))


@pytest.mark.parametrize(
    "bad,match",
    [
        ({"dataset": "imagenet"}, "dataset must be one of"),
        ({"arch": "resnet50"}, "arch must be one of"),
        ({"iterations": 0}, "iterations"),
        ({"lr": float("nan")}, "lr"),
        ({"beta_max": 0.5}, "beta_max"),
        ({"stop_after": 50, "iterations": 10}, "stop_after"),
        ({"colour": "red"}, "unknown config keys"),
        ({"momentum": float("nan"), "base": "sgd"}, "momentum must be a number in \\[0, 1\\)"),
        ({"momentum": 0.9}, "ignored by base 'adam'"),
        ({"quantizer": "hard"}, "only used by method 'proxconnect'"),
        ({"method": "proxconnect", "quantizer": "round"}, "quantizer must be one of"),
        ({"checkpoint_interval": 0}, "checkpoint_interval must be an integer >= 1"),
        ({"iterations": True}, "iterations must be an integer"),
        ({"seed": -1}, "seed must be an integer >= 0"),
        ({"weight_decay": float("inf")}, "weight_decay"),
        ({"beta_scale": 0.5}, "allow_decreasing_beta"),
        ({"levels": (1.0, -1.0)}, "increasing order"),
        ({"lr_schedule": "linear"}, "lr_schedule must be one of"),
        ({"amp": "fp16"}, "amp must be"),
        ({"device": "tpu"}, "device must be"),
        ({"resume": True}, "resume needs out"),
        ({"method": "float", "latent_init": "levels"}, "only used by the quantized methods"),
    ],
)
def test_bad_config(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_config(dict(SMALL, **bad))


def test_vgg16_is_refused_on_28x28_images_once_the_data_is_known():
    """The config no longer refuses VGG-16 by dataset name (the GPU suite runs it on Fashion-MNIST
    padded to 32x32, passed as data=); the check on the loaded images stays."""
    resolve_config(dict(SMALL, arch="vgg16", dataset="fashion-mnist"))  # accepted
    data = data_lib.load("synthetic")
    small = dataclasses.replace(data, **{k: getattr(data, k)[..., :28, :28]
                                         for k in ("train_x", "val_x", "test_x")})  # fmt: skip
    assert small.image_size == 28
    with pytest.raises(train_lib.UsageError, match="arch 'vgg16' needs 32x32 inputs"):
        train(dict(SMALL, arch="vgg16", iterations=1), data=small)


def test_cli_smoke_run(tmp_path, capsys):
    out = tmp_path / "x"
    argv = ["--dataset", "synthetic", "--arch", "smallconv", "--method", "md-tanh-s"]
    argv += ["--iterations", "20", "--device", "cpu", "--out", str(out), "--no-progress"]
    result = main(argv + ["--batch-size", "32", "--eval-interval", "10", "--bn-batches", "2"])
    assert result["finished"] and result["test_acc"] is not None
    printed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert printed["test_acc"] == result["test_acc"]
    on_disk = json.loads((out / "result.json").read_text())
    assert on_disk["command"].startswith("python -m mdq_teach.train --dataset synthetic")
    assert on_disk["hyperparameters"]["batch_size"] == 32


def test_cli_help_documents_the_flags():
    out = subprocess.run(
        [sys.executable, "-m", "mdq_teach.train", "--help"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    flags = ("--preset", "--lr-scale", "--beta-scale-interval", "--beta-max", "--levels",
             "--resume", "--device", "--out", "--quantizer", "--weight-decay", "--amp",
             "--channels-last", "--compile", "--export", "--lr-schedule", "torchrun")  # fmt: skip
    for flag in flags:
        assert flag in out.stdout


def _strict_loads(text):
    def refuse(constant):
        raise ValueError(f"not strict JSON: {constant}")

    return json.loads(text, parse_constant=refuse)


def test_files_are_strict_json(tmp_path, synthetic):
    c = dict(SMALL, method="md-tanh-s", iterations=10, out=str(tmp_path))
    assert math.isinf(TrainConfig().beta_max)  # the default cap: infinite, not a JSON number
    train(c, data=synthetic)
    on_disk = _strict_loads((tmp_path / "result.json").read_text())
    assert on_disk["hyperparameters"]["beta_max"] == "inf"
    for line in (tmp_path / "metrics.jsonl").read_text().splitlines():
        _strict_loads(line)


def test_resuming_a_finished_run_keeps_one_test_record(tmp_path, synthetic):
    c = dict(SMALL, method="md-tanh-s", iterations=10, out=str(tmp_path))
    first = train(c, data=synthetic)
    again = train(dict(c, resume=True), data=synthetic)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    tests = [r for r in map(json.loads, lines) if r["kind"] == "test"]
    assert len(tests) == 1 and tests[0]["test_acc"] == first["test_acc"] == again["test_acc"]
    assert [json.loads(s) for s in lines] == first["history"]


def test_a_torn_last_metrics_line_is_dropped_with_a_warning(tmp_path, synthetic):
    c = dict(SMALL, method="bc", iterations=20, checkpoint_interval=10)
    whole = train(c, data=synthetic)
    train(dict(c, out=str(tmp_path), stop_after=10), data=synthetic)
    with open(tmp_path / "metrics.jsonl", "a") as f:
        f.write('{"kind": "train", "iteration": 15, "lo')  # killed mid-write
    with pytest.warns(UserWarning, match="torn last line"):
        train(dict(c, out=str(tmp_path), resume=True), data=synthetic)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s) for s in lines] == whole["history"]


def test_a_damaged_middle_metrics_line_is_an_error(tmp_path, synthetic):
    c = dict(SMALL, method="bc", iterations=10, out=str(tmp_path))
    train(dict(c, stop_after=5), data=synthetic)
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    (tmp_path / "metrics.jsonl").write_text("{oops\n" + "\n".join(lines) + "\n")
    with pytest.raises(ValueError, match="line 1 is not JSON"):
        train(dict(c, resume=True), data=synthetic)


class _RunsCode:
    """Unpickling this calls ``Path.touch(marker)``: the proof that a loader ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_a_crafted_checkpoint_runs_no_code(tmp_path, synthetic):
    c = dict(SMALL, method="bc", iterations=10, out=str(tmp_path))
    train(dict(c, stop_after=5), data=synthetic)
    marker = tmp_path / "code-ran"
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    ckpt["config"]["payload"] = _RunsCode(marker)
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(train_lib.CheckpointError, match="refused unread"):
        train(dict(c, resume=True), data=synthetic)
    assert not marker.exists()
    # The same file does run code when loaded the old way: the test can fail.
    with pytest.raises(pickle.UnpicklingError):
        torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    torch.load(tmp_path / "checkpoint.pt", weights_only=False)
    assert marker.exists()


def test_resume_without_a_checkpoint_is_an_error(tmp_path, synthetic):
    with pytest.raises(train_lib.ResumeError, match="no checkpoint.pt"):
        train(dict(SMALL, iterations=4, out=str(tmp_path), resume=True), data=synthetic)


def test_lr_scheduler_is_pluggable_and_resumes_exactly(tmp_path, synthetic):
    def cosine(opt):
        # cycle_momentum=False: the schedule of the learning rate alone
        return torch.optim.lr_scheduler.OneCycleLR(
            opt, max_lr=0.01, total_steps=20, cycle_momentum=False
        )

    c = dict(SMALL, method="md-tanh-s", iterations=20, log_interval=1, eval_interval=20)
    whole = train(dict(c, out=str(tmp_path / "a")), data=synthetic, scheduler=cosine)
    train(dict(c, out=str(tmp_path / "b"), stop_after=7), data=synthetic, scheduler=cosine)
    resumed = train(dict(c, out=str(tmp_path / "b"), resume=True), data=synthetic, scheduler=cosine)
    ref = torch.optim.lr_scheduler.OneCycleLR(
        torch.optim.SGD([torch.zeros(1)], lr=1.0), max_lr=0.01, total_steps=20, cycle_momentum=False
    )
    want = []
    for _ in range(20):
        want.append(ref.get_last_lr()[0])
        ref.optimizer.step()
        ref.step()
    got = [r["lr"] for r in whole["history"] if r["kind"] == "train"]
    assert got == pytest.approx(want, rel=1e-12)
    assert resumed["history"] == whole["history"]
    _assert_same(_state(tmp_path / "a"), _state(tmp_path / "b"))


@pytest.mark.parametrize(
    "option",
    [{"amp": "bf16"}, {"channels_last": True}, {"compile": True, "compile_backend": "eager"}],
)
def test_speed_options_train_and_keep_float32_parameters(synthetic, option):
    c = dict(SMALL, method="md-tanh-s", iterations=4, eval_interval=4, log_interval=1, lr=0.01)
    plain = train(c, data=synthetic)
    fast = train(dict(c, **option), data=synthetic)
    for p in fast["final_model"].parameters():
        assert p.dtype == torch.float32
    losses = [[r["loss"] for r in run["history"] if r["kind"] == "train"] for run in (plain, fast)]
    if "amp" in option:
        # The forward pass ran in bfloat16 (8 mantissa bits): close to float32, not equal.
        assert losses[1][0] != losses[0][0]
        assert losses[1][0] == pytest.approx(losses[0][0], rel=2e-2)
    else:
        # The same arithmetic up to the order of summation: equal losses at first; Adam's
        # normalised steps then amplify the rounding differences a little.
        assert losses[1][:2] == pytest.approx(losses[0][:2], rel=1e-5)
        assert losses[1] == pytest.approx(losses[0], rel=1e-3)


def test_the_trainer_syncs_with_the_host_once_per_logging_interval(monkeypatch, synthetic):
    """Count the host reads made by the trainer's own code (not the optimizer's)."""
    calls = []
    here = train_lib.__file__
    for name in ("item", "tolist", "__bool__", "__float__", "__int__", "cpu", "numpy"):
        original = getattr(torch.Tensor, name)

        def counted(self, *args, _original=original, _name=name, **kwargs):
            if sys._getframe(1).f_code.co_filename == here:
                calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(torch.Tensor, name, counted)
    c = dict(SMALL, method="md-tanh-s", iterations=12, log_interval=4, eval_interval=1000)
    train(c, data=synthetic)
    # 3 logging intervals; the final evaluation (iteration 12 = iterations) and the test pass
    # read 2 values each; the validation reads once more, all layers' constant flags in one list
    # (the values of constant layers only when there are some: none here).
    assert len(calls) == 3 + 2 + 2 + 1, calls
    assert calls.count("tolist") == 3 + 1


def test_paper_preset_asks_the_optimizer_for_the_ceil_schedule(monkeypatch):
    import mdq_teach.nn as nn_lib

    seen = {}

    def fake(params, method, beta_schedule=None, **options):
        seen["schedule"] = beta_schedule
        return "optimizer"

    monkeypatch.setattr(nn_lib, "make_optimizer", fake)
    model = torch.nn.Linear(2, 2)
    train_lib._make_optimizer(model, resolve_config(TrainConfig(dataset="cifar10", preset="paper")))
    assert seen["schedule"] == "ceil"
    train_lib._make_optimizer(model, resolve_config(TrainConfig(dataset="cifar10")))
    assert seen["schedule"] is None  # without the preset: the optimizer's default (floor) rule


def test_paper_preset_runs_the_authors_ceil_schedule():
    if not train_lib._optimizer_accepts("beta_schedule"):
        pytest.skip("this optimizer has no beta_schedule option yet")
    c = resolve_config(TrainConfig(dataset="cifar10", arch="resnet18", preset="paper"))
    model = torch.nn.Linear(3, 2)
    opt = train_lib._make_optimizer(model, c)
    betas = []
    for _ in range(c.beta_scale_interval + 2):
        betas.append(opt.beta)
        model(torch.ones(1, 3)).sum().backward()
        opt.step()
        opt.zero_grad()
    s, interval = c.beta_scale, c.beta_scale_interval
    # ceil(t / I): 0 at t = 0, 1 for t = 1..I, 2 at t = I + 1.
    want = [1.0] + [s] * interval + [s * s]
    assert betas == pytest.approx(want, rel=1e-12)


def test_a_fresh_run_into_an_existing_run_is_refused(tmp_path, synthetic):
    c = dict(SMALL, method="bc", iterations=10, out=str(tmp_path))
    first = train(c, data=synthetic)
    before = {name: (tmp_path / name).read_bytes() for name in train_lib.RUN_FILES}
    with pytest.raises(train_lib.UsageError, match="already holds a run.*--resume.*--overwrite"):
        train(dict(c, lr=0.5), data=synthetic)
    assert {name: (tmp_path / name).read_bytes() for name in train_lib.RUN_FILES} == before
    again = train(dict(c, overwrite=True), data=synthetic)
    assert again["history"] == first["history"]  # replaced, not appended to
    lines = (tmp_path / "metrics.jsonl").read_text().splitlines()
    assert [json.loads(s) for s in lines] == first["history"]


def test_overwrite_leaves_nothing_of_the_replaced_run(tmp_path, synthetic):
    c = dict(SMALL, method="bc", iterations=10, out=str(tmp_path))
    train(c, data=synthetic)
    train(dict(c, overwrite=True, stop_after=3), data=synthetic)  # before any evaluation
    assert not (tmp_path / "best.pt").exists()  # the old run's best network is gone
    on_disk = json.loads((tmp_path / "result.json").read_text())
    assert (on_disk["finished"], on_disk["iterations_done"], on_disk["best_iteration"]) == (
        False, 3, None)  # fmt: skip
    with pytest.raises(ValueError, match="resume and overwrite exclude each other"):
        resolve_config(dict(c, resume=True, overwrite=True))


def test_default_run_names_differ_when_a_setting_does():
    base = resolve_config(dict(SMALL, method="bc"))
    name = train_lib.run_name(base)
    assert name.startswith("synthetic-smallconv-bc-seed0-") and len(name.split("-")[-1]) == 8
    assert train_lib.run_name(resolve_config(dict(SMALL, method="bc"))) == name  # stable
    for change in ({"lr": 0.002}, {"batch_size": 16}, {"levels": (-1.0, 0.0, 1.0)}):
        assert train_lib.run_name(resolve_config(dict(SMALL, method="bc", **change))) != name
    # Settings a resumption may change keep the folder, so --resume finds the run.
    for same in ({"iterations": 50}, {"device": None}, {"progress": True}):
        assert train_lib.run_name(resolve_config(dict(SMALL, method="bc", **same))) == name


def _nan_gradient_at(monkeypatch, step):
    """Make the trainer's model receive a NaN gradient for its first weight at backward ``step``."""
    from mdq_teach.nn.models import get_model

    def patched(*args, **kwargs):
        model = get_model(*args, **kwargs)
        calls = [0]

        def hook(grad):
            calls[0] += 1
            return torch.full_like(grad, math.nan) if calls[0] == step else grad

        next(model.parameters()).register_hook(hook)
        return model

    monkeypatch.setattr(train_lib, "get_model", patched)


@pytest.mark.parametrize("log_interval,eval_interval", [(4, 8), (8, 4)])
def test_a_nan_gradient_stops_the_run_instead_of_rounding_to_plus_one(
    monkeypatch, tmp_path, synthetic, log_interval, eval_interval
):
    # bc's sign of a NaN latent is +1: the loss stays finite, and the run used to finish with a
    # "best" network of +1s. Now it stops at the next host sync (a log, or an evaluation).
    _nan_gradient_at(monkeypatch, 3)
    c = dict(SMALL, method="bc", iterations=8, log_interval=log_interval,
             eval_interval=eval_interval, out=str(tmp_path))  # fmt: skip
    message = r"NaN or inf by iteration 4 .*features\.0\.weight"
    with pytest.raises(FloatingPointError, match=message):
        train(c, data=synthetic)
    assert not (tmp_path / "best.pt").exists() and not (tmp_path / "result.json").exists()


def test_a_resumed_progress_bar_shows_the_run_position_and_the_loss(tmp_path, synthetic, capsys):
    c = dict(SMALL, method="bc", iterations=20, out=str(tmp_path))
    train(dict(c, stop_after=7), data=synthetic)
    capsys.readouterr()
    train(dict(c, resume=True, progress=True), data=synthetic)
    bar = capsys.readouterr().err
    assert " 7/20 " in bar and " 20/20 " in bar and " 0/13 " not in bar
    assert "loss=" in bar and "val=" in bar


def test_a_bare_command_starts_nothing_and_help_shows_an_example():
    out = subprocess.run(
        [sys.executable, "-m", "mdq_teach.train"], capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2 and "--dataset" in out.stderr.strip().splitlines()[-1]
    out = subprocess.run(
        [sys.executable, "-m", "mdq_teach.train", "--help"], capture_output=True, text=True
    )
    assert "python -m mdq_teach.train --dataset fashion-mnist --arch smallconv" in " ".join(
        out.stdout.split()
    )


def test_a_crafted_checkpoint_iteration_is_refused_not_recorded(tmp_path, synthetic):
    # iteration=10**6 made the resumed run skip every step and result.json claim 10 of 10.
    c = dict(SMALL, method="bc", iterations=10, out=str(tmp_path))
    train(dict(c, stop_after=5), data=synthetic)
    ckpt = torch.load(tmp_path / "checkpoint.pt", weights_only=True)
    for bad in (10**6, -1, 5.0, "5", 7):  # 7: not the optimizer's 5 steps
        torch.save(dict(ckpt, iteration=bad), tmp_path / "checkpoint.pt")
        with pytest.raises(train_lib.CheckpointError, match="checkpoint.pt: iteration"):
            train(dict(c, resume=True), data=synthetic)
    torch.save(ckpt, tmp_path / "checkpoint.pt")
    with pytest.raises(train_lib.ResumeError, match="stop_after must be in \\[5, iterations=10\\]"):
        train(dict(c, resume=True, stop_after=3), data=synthetic)
    resumed = train(dict(c, resume=True), data=synthetic)
    assert (resumed["resumed_from"], resumed["iterations_run"], resumed["iterations_done"]) == (
        5, 5, 10)  # fmt: skip
    assert json.loads((tmp_path / "result.json").read_text())["iterations_run"] == 5

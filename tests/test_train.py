"""mdq_teach.nn.train: schedules, rounded validation, exact resume, files on disk, the CLI."""

import json
import subprocess
import sys

import pytest
import torch

from mdq_teach.nn import data as data_lib
from mdq_teach.nn import train as train_lib
from mdq_teach.nn.train import TrainConfig, main, resolve_config, train

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
    ckpt = torch.load(out / "checkpoint.pt", weights_only=False)
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
    part = train(dict(config, out=str(tmp_path / "part"), stop_after=10), data=synthetic)
    assert not part["finished"] and part["test_acc"] is None
    resumed = train(dict(config, out=str(tmp_path / "part"), resume=True), data=synthetic)
    assert resumed["resumed_from"] == 10
    model_a, opt_a = _state(tmp_path / "whole")
    model_b, opt_b = _state(tmp_path / "part")
    _assert_same(model_a, model_b)
    _assert_same(opt_a, opt_b)
    for key in ("best_val_acc", "best_iteration", "test_acc", "final_beta"):
        assert whole[key] == resumed[key]
    strip = lambda h: [{k: v for k, v in r.items()} for r in h]  # noqa: E731
    assert strip(whole["history"]) == strip(resumed["history"])
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
    rounded = train_lib.rounded_copy(model, opt, inputs)
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
    ],
)
def test_bad_config(bad, match):
    with pytest.raises(ValueError, match=match):
        resolve_config(dict(SMALL, **bad))


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
    for flag in ("--preset", "--lr-scale", "--beta-scale-interval", "--beta-max", "--levels",
                 "--resume", "--device", "--out", "--quantizer", "--weight-decay"):  # fmt: skip
        assert flag in out.stdout

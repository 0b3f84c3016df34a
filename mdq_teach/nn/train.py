"""The training loop of the paper's protocol, with exact resume, and its command line.

One run (docs/design.md §4): ``iterations`` steps of the chosen method on random batches; the
learning rate is ``lr * lr_scale ** (t // lr_interval)`` at iteration ``t`` (set by hand before each
step, so nothing changes it at iteration 0); beta follows the optimizer's own schedule. Every
``eval_interval`` iterations the network is rounded to the levels, its BatchNorm statistics are
recomputed for the rounded weights, and its validation accuracy is measured; the best rounded
network is kept and, at the end, tested. The model with the best validation accuracy after
rounding is the one reported, as in the paper's Appendix B.4.

On disk (``out``): ``metrics.jsonl`` (one JSON record a line), ``checkpoint.pt`` (everything needed
to continue: model, optimizer, RNG states, iteration, data position, best-so-far), ``best.pt``
(the best rounded network) and ``result.json``. Files are written to a temporary name and renamed,
so a run killed mid-write leaves the previous file intact. ``resume=True`` continues the run found
in ``out`` to exactly the weights an uninterrupted run would reach: batches are a pure function of
(seed, iteration) (see ``data.BatchStream``), and evaluation works on a copy. Bit-exact on the CPU;
on a GPU only with ``deterministic=True`` (cuDNN's fastest kernels are not reproducible).
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import random
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from . import data as data_lib
from .models import ARCHS, get_model
from .presets import PROTOCOL, paper_preset


@dataclass
class TrainConfig:
    """Every setting of a run. Defaults are the protocol's (docs/design.md §4) and, for the
    method's own hyperparameters, Table 8's CIFAR-10 / ResNet-18 / MD-tanh-S column."""

    dataset: str = "cifar10"
    arch: str = "resnet18"
    method: str = "md-tanh-s"
    preset: str | None = None  # "paper": the paper's Tables 8-10 for dataset/arch/method/levels
    levels: tuple[float, ...] = (-1.0, 1.0)
    # optimisation
    lr: float = 1e-3
    lr_scale: float = 0.3
    lr_interval: int = PROTOCOL["lr_interval"]
    base: str = PROTOCOL["base"]
    momentum: float = PROTOCOL["momentum"]
    weight_decay: float = PROTOCOL["weight_decay"]
    batch_size: int = PROTOCOL["batch_size"]
    iterations: int = PROTOCOL["iterations"]
    # annealing (ignored by float and bc)
    beta_init: float = PROTOCOL["beta_init"]
    beta_scale: float = 1.02
    beta_scale_interval: int = 200
    beta_max: float = PROTOCOL["beta_max"]
    quantizer: str | None = None  # proxconnect only
    pq_reg: str = "l1"
    pq_lambda: float = 1e-4  # PQ's regularisation rate (lambda_t = pq_lambda * t)
    # evaluation and bookkeeping
    eval_interval: int = PROTOCOL["eval_interval"]
    eval_soft: bool = False  # also validate the unrounded network (cost: one more pass)
    bn_batches: int = 10  # training batches used to recompute BatchNorm after rounding
    log_interval: int = 100
    checkpoint_interval: int | None = None  # default: eval_interval
    stop_after: int | None = None  # stop (checkpointed) after this iteration, as if preempted
    seed: int = 0
    deterministic: bool = False  # deterministic CUDA kernels (CPU runs are deterministic anyway)
    device: str | None = None  # default: cuda when available
    out: str | None = None  # None: keep everything in memory, write nothing
    resume: bool = False
    progress: bool = True
    # data
    data_root: str | None = None
    split_seed: int = 0
    train_size: int | None = None
    val_size: int | None = None
    test_size: int | None = None
    augment: bool | None = None
    # filled in by train(): where the hyperparameters came from
    preset_source: str | None = None
    preset_notes: list[str] = field(default_factory=list)


# Settings that may differ between a run and its resumption without changing the result.
_RESUMABLE = {"iterations", "stop_after", "device", "out", "resume", "progress", "data_root"}


def resolve_config(config: TrainConfig | dict, overrides: dict | None = None) -> TrainConfig:
    """Apply the paper preset (when ``config.preset == "paper"``), then ``overrides``, and check."""
    if isinstance(config, dict):
        unknown = set(config) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        config = TrainConfig(**config)
    config = dataclasses.replace(config, levels=tuple(float(v) for v in config.levels))
    if config.preset not in (None, "paper"):
        raise ValueError(f"preset must be None or 'paper', got {config.preset!r}")
    if config.preset == "paper":
        values = paper_preset(config.dataset, config.arch, config.method, config.levels)
        config = dataclasses.replace(
            config,
            preset_source=values.pop("source"),
            preset_notes=values.pop("notes"),
            **{k: v for k, v in values.items()},
        )
    if overrides:
        config = dataclasses.replace(config, **overrides)
    _check(config)
    return config


def _check(c: TrainConfig) -> None:
    if c.dataset not in data_lib.DATASETS:
        raise ValueError(f"dataset must be one of {data_lib.DATASETS}, got {c.dataset!r}")
    if c.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {c.arch!r}")
    for name in ("iterations", "batch_size", "lr_interval", "eval_interval", "log_interval"):
        value = getattr(c, name)
        if not (isinstance(value, int) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    for name in ("lr", "lr_scale", "beta_init", "beta_scale"):
        value = getattr(c, name)
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if not c.beta_max >= c.beta_init:
        raise ValueError(f"beta_max must be >= beta_init = {c.beta_init}, got {c.beta_max!r}")
    if c.weight_decay < 0 or c.momentum < 0:
        raise ValueError("weight_decay and momentum must be >= 0")
    if c.stop_after is not None and not 1 <= c.stop_after <= c.iterations:
        raise ValueError(f"stop_after must be in [1, iterations={c.iterations}]")
    if c.bn_batches < 1:
        raise ValueError(f"bn_batches must be >= 1, got {c.bn_batches}")


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_json(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=2, default=str) + "\n")
    os.replace(tmp, path)


def _rng_state() -> dict:
    state = {"torch": torch.get_rng_state(), "python": random.getstate()}
    state["numpy"] = np.random.get_state()
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _git_commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=Path(__file__).resolve().parent,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


@torch.no_grad()
def evaluate(model: torch.nn.Module, batches) -> tuple[float, float]:
    """(accuracy, mean cross-entropy) of ``model`` in eval mode over ``(x, y)`` batches."""
    model.eval()
    correct, loss, n = 0, 0.0, 0
    for x, y in batches:
        logits = model(x)
        loss += F.cross_entropy(logits, y, reduction="sum").item()
        correct += (logits.argmax(1) == y).sum().item()
        n += len(y)
    return correct / n, loss / n


def rounded_copy(model, optimizer, bn_inputs) -> torch.nn.Module:
    """A copy of ``model`` with every quantized parameter rounded to the levels and BatchNorm
    statistics recomputed for those rounded weights; ``model`` and ``optimizer`` are untouched.

    BatchNorm statistics gathered while training used the soft weights; the rounded network
    computes different activations, so its running means and variances are measured again.
    """
    from . import recompute_bn_stats

    with optimizer.rounded():  # restores the soft weights on exit; the optimizer state is untouched
        rounded = copy.deepcopy(model)
    recompute_bn_stats(rounded, bn_inputs)
    return rounded


class _Metrics:
    """metrics.jsonl writer (or an in-memory list when the run has no ``out``)."""

    def __init__(self, path: Path | None, resume_from: int | None):
        self.path, self.records = path, []
        if path is not None and path.exists():
            if resume_from is None:
                path.unlink()
            else:
                # A run killed after its last checkpoint logged iterations it will redo: drop them.
                lines = path.read_text().splitlines()
                self.records = [json.loads(s) for s in lines if s.strip()]
                self.records = [r for r in self.records if r["iteration"] <= resume_from]
                path.write_text("".join(json.dumps(r) + "\n" for r in self.records))

    def log(self, record: dict) -> None:
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(json.dumps(record) + "\n")


def _make_optimizer(model, c: TrainConfig):
    from . import make_optimizer

    base_kwargs = {"weight_decay": c.weight_decay}
    if c.base == "sgd":
        base_kwargs["momentum"] = c.momentum
    options = dict(
        lr=c.lr,
        levels=c.levels,
        base=c.base,
        beta_init=c.beta_init,
        beta_scale=c.beta_scale,
        beta_scale_interval=c.beta_scale_interval,
        beta_max=c.beta_max,
    )
    if c.method == "proxconnect":
        options["quantizer"] = c.quantizer
    if c.method == "pq":
        options.update(pq_reg=c.pq_reg, pq_lambda=c.pq_lambda)
    return make_optimizer(model.parameters(), c.method, **options, **base_kwargs)


def train(
    config: TrainConfig | dict, data: data_lib.ImageData | None = None, command: str | None = None
) -> dict:
    """Run (or resume) one training run and return its result dict.

    ``config`` is a ``TrainConfig`` or a dict of its fields; ``data`` may be passed to reuse a data
    set already loaded with ``data.load`` (it must match ``config.dataset``). The result holds the
    best rounded validation accuracy, its iteration, the rounded test accuracy (None when the run
    stopped early via ``stop_after``), the hyperparameters, the environment and ``history`` (every
    metrics record). ``result["model"]`` is the best rounded network. ``command`` is recorded in
    ``result.json`` as the way the run was launched.
    """
    c = resolve_config(config)
    device = torch.device(c.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    out = Path(c.out) if c.out is not None else None
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    resuming = c.resume and ckpt_path is not None and ckpt_path.exists()
    started = time.perf_counter()

    if data is None:
        data = data_lib.load(
            c.dataset, c.data_root, c.val_size, c.split_seed, c.train_size, c.test_size, c.augment
        )
    elif data.name != c.dataset:
        raise ValueError(f"data holds {data.name!r} but config.dataset is {c.dataset!r}")
    data = data.to(device)
    if c.arch == "vgg16" and data.image_size != 32:
        raise ValueError(f"arch 'vgg16' needs 32x32 inputs, {c.dataset} has {data.image_size}")

    if c.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(c.seed)
    kwargs = {"size": data.image_size} if c.arch == "smallconv" else {}
    quantized = c.method != "float"
    model = get_model(c.arch, data.num_classes, data.in_channels, quantized, **kwargs).to(device)
    optimizer = _make_optimizer(model, c)

    start, best = 0, {"val_acc": -1.0, "iteration": None, "state": None}
    window = {"loss": 0.0, "correct": 0, "n": 0}
    if resuming:
        # On the CPU: RNG states must stay CPU byte tensors; load_state_dict moves the rest.
        ckpt = torch.load(ckpt_path, map_location="cpu", weights_only=False)
        saved = {k: v for k, v in ckpt["config"].items() if k not in _RESUMABLE}
        now = {k: v for k, v in dataclasses.asdict(c).items() if k not in _RESUMABLE}
        diff = {k: (saved.get(k), now[k]) for k in now if saved.get(k) != now[k]}
        if diff:
            raise ValueError(f"--resume with different settings (saved, now): {diff}")
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        _set_rng_state(ckpt["rng"])
        start, window = ckpt["iteration"], ckpt["window"]
        best = {k: ckpt["best"][k] for k in ("val_acc", "iteration")}
        best["state"] = (
            torch.load(out / "best.pt", map_location=device) if best["iteration"] else None
        )
    metrics = _Metrics(
        out / "metrics.jsonl" if out is not None else None, start if resuming else None
    )

    # BatchNorm of the rounded network is re-estimated on fixed, unaugmented training images.
    bn_generator = torch.Generator().manual_seed(c.seed + 7919)
    bn_idx = torch.randperm(len(data.train_x), generator=bn_generator)
    bn_idx = bn_idx[: c.bn_batches * c.batch_size].to(device)
    bn_inputs = [
        data_lib.normalize(data.train_x[i], data.mean, data.std) for i in bn_idx.split(c.batch_size)
    ]
    stream = data_lib.BatchStream(data, c.batch_size, c.seed, start=start)
    end = c.stop_after if c.stop_after is not None else c.iterations
    ckpt_every = c.checkpoint_interval or c.eval_interval

    def checkpoint(iteration: int) -> None:
        if ckpt_path is None:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "rng": _rng_state(),
            "iteration": iteration,
            "data_position": stream.iteration,
            "window": window,
            "best": {k: best[k] for k in ("val_acc", "iteration")},
            "config": dataclasses.asdict(c),
        }
        _atomic_save(state, ckpt_path)

    bar = _progress(range(start, end), c.progress, f"{c.method} {c.arch} {c.dataset}")
    for t in bar:
        model.train()
        lr = c.lr * c.lr_scale ** (t // c.lr_interval)
        for group in optimizer.param_groups:
            group["lr"] = lr
        x, y = next(stream)
        logits = model(x)
        loss = F.cross_entropy(logits, y)
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at iteration {t} ({c.method})")
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        window["loss"] += loss.item() * len(y)
        window["correct"] += (logits.argmax(1) == y).sum().item()
        window["n"] += len(y)
        done = t + 1
        if done % c.log_interval == 0 or done == end:
            metrics.log(
                {
                    "kind": "train",
                    "iteration": done,
                    "loss": window["loss"] / window["n"],
                    "acc": window["correct"] / window["n"],
                    "lr": lr,
                    "beta": float(optimizer.beta),
                }
            )
            window = {"loss": 0.0, "correct": 0, "n": 0}
        if done % c.eval_interval == 0 or done == c.iterations:
            record = {"kind": "eval", "iteration": done, "beta": float(optimizer.beta)}
            if quantized:
                if c.eval_soft:
                    record["val_acc_soft"], _ = evaluate(model, data_lib.eval_batches(data, "val"))
                evaluated = rounded_copy(model, optimizer, bn_inputs)
            else:
                evaluated = model
            record["val_acc"], record["val_loss"] = evaluate(
                evaluated, data_lib.eval_batches(data, "val")
            )
            metrics.log(record)
            if record["val_acc"] > best["val_acc"]:
                best = {
                    "val_acc": record["val_acc"],
                    "iteration": done,
                    "state": copy.deepcopy(evaluated.state_dict()),
                }
                if out is not None:
                    _atomic_save(best["state"], out / "best.pt")
            if c.progress:
                bar.set_postfix(val=f"{record['val_acc']:.4f}", beta=f"{record['beta']:.3g}")
        if done % ckpt_every == 0 or done == end:
            checkpoint(done)

    finished = end == c.iterations
    test_acc = test_loss = None
    best_model = None
    if finished and best["state"] is not None:
        best_model = get_model(c.arch, data.num_classes, data.in_channels, quantized, **kwargs)
        best_model = best_model.to(device)
        best_model.load_state_dict(best["state"])
        test_acc, test_loss = evaluate(best_model, data_lib.eval_batches(data, "test"))
        metrics.log(
            {
                "kind": "test",
                "iteration": best["iteration"],
                "test_acc": test_acc,
                "loss": test_loss,
            }
        )
    result = {
        "dataset": c.dataset,
        "arch": c.arch,
        "method": c.method,
        "levels": list(c.levels),
        "finished": finished,
        "iterations_done": end,
        "best_val_acc": best["val_acc"] if best["iteration"] else None,
        "best_iteration": best["iteration"],
        "test_acc": test_acc,
        "test_loss": test_loss,
        "final_beta": float(optimizer.beta),
        "hyperparameters": dataclasses.asdict(c),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "command": command or "mdq_teach.nn.train.train(config) from Python",
        "wall_time_s": time.perf_counter() - started,
        "resumed_from": start if resuming else None,
    }
    if out is not None:
        _atomic_json(result, out / "result.json")
    result["history"] = metrics.records
    result["model"] = best_model
    return result


def _progress(iterable, enabled: bool, desc: str):
    if not enabled:
        return iterable
    from tqdm import tqdm

    return tqdm(iterable, desc=desc, dynamic_ncols=True)


def _levels(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(v) for v in text.split(","))
    except ValueError:
        msg = f"--levels wants comma-separated numbers, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m mdq_teach.train",
        description="Train a quantized network with any method of Ajanthan et al. (2021). "
        "With --preset paper the paper's Tables 8-10 give the hyperparameters for the chosen "
        "dataset, architecture, method and levels; any flag given explicitly overrides them.",
    )
    from . import METHODS

    add = p.add_argument
    add("--dataset", default=d.dataset, choices=data_lib.DATASETS)
    add("--arch", default=d.arch, choices=ARCHS)
    add("--method", default=d.method, choices=METHODS)
    add("--preset", default=None, choices=["paper"], help="take hyperparameters from the paper")
    add("--levels", type=_levels, default=None, help=f"quantization levels, e.g. -1,1 or -1,0,1 "
        f"(default {','.join(f'{v:g}' for v in d.levels)})")  # fmt: skip
    g = p.add_argument_group(
        "optimisation (defaults: protocol; Table 8 CIFAR-10/ResNet-18 MD-tanh-S)"
    )
    g.add_argument("--lr", type=float, help=f"learning rate (default {d.lr})")
    g.add_argument(
        "--lr-scale", type=float, help=f"lr factor every --lr-interval (default {d.lr_scale})"
    )
    g.add_argument(
        "--lr-interval", type=int, help=f"iterations between lr decays (default {d.lr_interval})"
    )
    g.add_argument(
        "--base", help=f"torch.optim base optimizer: adam, sgd, adamw... (default {d.base})"
    )
    g.add_argument("--momentum", type=float, help=f"SGD momentum (default {d.momentum})")
    g.add_argument("--weight-decay", type=float, help=f"weight decay (default {d.weight_decay})")
    g.add_argument("--batch-size", type=int, help=f"batch size (default {d.batch_size})")
    g.add_argument(
        "--iterations", type=int, help=f"run length in iterations (default {d.iterations})"
    )
    g = p.add_argument_group("annealing of beta (ignored by float and bc)")
    g.add_argument("--beta-init", type=float, help=f"beta at iteration 0 (default {d.beta_init})")
    g.add_argument("--beta-scale", type=float, help=f"beta factor (default {d.beta_scale})")
    g.add_argument(
        "--beta-scale-interval",
        type=int,
        help=f"iterations between beta increases (default {d.beta_scale_interval})",
    )
    g.add_argument("--beta-max", type=float, help=f"cap on beta (default {d.beta_max})")
    g.add_argument("--quantizer", help="ProxConnect's quantizer: hard, linear, binaryrelax, tanh")
    g.add_argument("--pq-reg", choices=["l1", "l2"], help=f"PQ regulariser (default {d.pq_reg})")
    g.add_argument(
        "--pq-lambda",
        type=float,
        help=f"PQ regularisation rate, lambda_t = rate * t (default {d.pq_lambda})",
    )
    g = p.add_argument_group("evaluation, data and bookkeeping")
    g.add_argument(
        "--eval-interval",
        type=int,
        help=f"iterations between validations of the rounded net (default {d.eval_interval})",
    )
    g.add_argument(
        "--eval-soft", action="store_true", default=None, help="also validate the unrounded network"
    )
    g.add_argument(
        "--bn-batches",
        type=int,
        help=f"batches to recompute BatchNorm after rounding (default {d.bn_batches})",
    )
    g.add_argument(
        "--log-interval", type=int, help=f"iterations per train record (default {d.log_interval})"
    )
    g.add_argument(
        "--checkpoint-interval",
        type=int,
        help="iterations per checkpoint (default: --eval-interval)",
    )
    g.add_argument(
        "--stop-after",
        type=int,
        help="stop after this iteration, checkpointed (for testing resume)",
    )
    g.add_argument(
        "--seed", type=int, help=f"seed of init, batch order and augmentation (default {d.seed})"
    )
    g.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="deterministic CUDA kernels, so --resume is bit-exact on a GPU too",
    )
    g.add_argument("--device", help="cpu or cuda (default: cuda when available)")
    g.add_argument(
        "--out", help="folder for checkpoints, metrics.jsonl and result.json (default runs/<name>)"
    )
    g.add_argument(
        "--resume", action="store_true", default=None, help="continue the run found in --out"
    )
    g.add_argument(
        "--no-progress", dest="progress", action="store_false", default=None, help="no progress bar"
    )
    g.add_argument("--data-root", help="data folder (default $MDQ_DATA or ~/.cache/mdq_teach)")
    g.add_argument("--train-size", type=int, help="use only this many training images")
    g.add_argument(
        "--val-size", type=int, help="validation images split from training (default 5000)"
    )
    g.add_argument("--test-size", type=int, help="use only this many test images")
    return p


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    args = vars(build_parser().parse_args(argv))
    base = {k: args.pop(k) for k in ("dataset", "arch", "method", "preset")}
    if args["levels"] is not None:
        base["levels"] = args["levels"]
    overrides = {k: v for k, v in args.items() if v is not None and k != "levels"}
    config = resolve_config(TrainConfig(**base), overrides)
    if config.out is None:
        name = f"{config.dataset}-{config.arch}-{config.method}-seed{config.seed}"
        config = dataclasses.replace(config, out=str(Path("runs") / name))
    result = train(config, command="python -m mdq_teach.train " + shlex.join(argv))
    summary = {k: result[k] for k in ("best_val_acc", "best_iteration", "test_acc", "wall_time_s")}
    print(json.dumps({"out": config.out, **summary}))
    return result

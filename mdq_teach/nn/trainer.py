"""The training loop of the paper's protocol, with exact resume, and its command line.

One run (docs/design.md §4): ``iterations`` steps of the chosen method on random batches; the
learning rate follows a ``torch.optim.lr_scheduler`` (default ``StepLR``: ``lr * lr_scale **
(t // lr_interval)`` at iteration ``t``, the paper's step schedule; ``lr_schedule="cosine"`` or
``"constant"``, or any scheduler through ``train(..., scheduler=...)``); beta follows the
optimizer's own schedule. Every ``eval_interval`` iterations a copy of the network is rounded to
the levels, its BatchNorm statistics are recomputed for the rounded weights, and its validation
accuracy is measured; the best rounded network is kept and, at the end, tested. The model with the
best validation accuracy after rounding is the one reported, as in the paper's Appendix B.4.
A quantized parameter whose rounded values are all one value (a constant layer: a ternary layer
rounded to all zeros, say) is listed in that validation's record (``constant_layers``, name and
value) and named in one warning per run.

On disk (``out``): ``metrics.jsonl`` (one strict-JSON record a line), ``checkpoint.pt`` (everything
needed to continue: model, optimizer, scheduler, RNG states, iteration, best-so-far, as tensors and
plain values only), ``best.pt`` (the best rounded network), ``result.json`` (strict JSON:
non-finite numbers are written as the strings ``"inf"``, ``"-inf"``, ``"nan"``) and, with
``export``, the packed network of :mod:`mdq_teach.nn.export`. Files are written to a temporary
name and renamed, so a run killed mid-write leaves the previous file intact. Checkpoints are read
with ``torch.load(weights_only=True)``: a file holding anything else is refused, never executed.
A fresh run refuses an ``out`` that already holds a run (any of ``RUN_FILES``) unless ``resume``
continues it or ``overwrite`` replaces it (its files are deleted first); the command line's
default ``out`` is ``runs/`` + :func:`run_name`, which hashes every setting that changes the result.

Resume: ``resume=True`` continues the run found in ``out`` to exactly the weights an
uninterrupted run would reach: batches are a pure function of (seed, iteration) (see
``data.BatchStream``), and evaluation works on a copy. Bit-exact on the CPU; on a GPU only with
``deterministic=True``. ``resume=True`` with no checkpoint in ``out`` is an error (nothing is
started silently); resuming a finished run recomputes its test record instead of adding a second
one; a torn last line of ``metrics.jsonl`` (a run killed mid-write) is dropped with a warning.

Speed options: ``amp="bf16"`` (autocast of the forward pass to bfloat16; parameters, and so the
optimizer's latent weights, stay float32), ``channels_last``, ``compile`` (``torch.compile`` of the
model), and at most one host synchronisation per logging interval in the loop (losses and
accuracies accumulate on the device).

Several processes: ``torchrun --nproc_per_node N -m mdq_teach.train ...`` runs N ranks with
``DistributedDataParallel`` (gloo on the CPU, nccl on GPUs). ``batch_size`` is the batch *per rank*:
the global batch is ``batch_size * N``, and each rank takes its contiguous shard of global batch
``t`` (the same images, in the same order, as one process with batch ``batch_size * N``), so the
gradient, the average of the ranks' mean gradients, is the one process's. BatchNorm normalises
with each rank's own batch statistics (as DDP always does), so networks with BatchNorm match the
one process only approximately; without BatchNorm they match to float rounding. Rank 0 writes every
file; every rank evaluates (identically) so that no broadcast is needed.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import hashlib
import inspect
import json
import math
import numbers
import os
import platform
import random
import shlex
import subprocess
import sys
import time
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from mdq_teach import fetch

from . import data as data_lib
from .checkpoint import LOAD_ERRORS, CheckpointError, check_iteration, check_layout, load_checkpoint
from .latent_init import LATENT_INITS, check_latent_init
from .models import ARCHS, get_model
from .presets import PROTOCOL, paper_preset

AMP = ("bf16",)
LR_SCHEDULES = ("step", "cosine", "constant")
QUANTIZER_NAMES = ("hard", "linear", "binaryrelax", "tanh")  # ProxConnect's quantizer= values


class UsageError(ValueError):
    """Settings that cannot run, found once the data is known (the command line's exit status 2)."""


class ResumeError(UsageError):
    """``resume`` cannot be honoured (nothing to resume, other settings): a usage error."""


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
    lr_schedule: str = "step"  # "step" (the paper's), "cosine" (to 0 at iterations), "constant"
    base: str = PROTOCOL["base"]
    momentum: float = PROTOCOL["momentum"]
    weight_decay: float = PROTOCOL["weight_decay"]
    batch_size: int = PROTOCOL["batch_size"]  # per process: the global batch is this x world size
    iterations: int = PROTOCOL["iterations"]
    # annealing (ignored by float and bc)
    beta_init: float = PROTOCOL["beta_init"]
    beta_scale: float = 1.02
    beta_scale_interval: int = 200
    beta_max: float = PROTOCOL["beta_max"]
    allow_decreasing_beta: bool = False  # accept beta_scale < 1 (beta shrinks towards 0)
    quantizer: str | None = None  # proxconnect only
    pq_reg: str = "l1"
    pq_lambda: float = 1e-4  # PQ's regularisation rate (lambda_t = pq_lambda * t)
    latent_init: str = "auto"  # where latents start (mdq_teach.nn.latent_init); not for float
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
    overwrite: bool = False  # replace a run already in out (without it, such an out is refused)
    progress: bool = True
    export: str | None = None  # write the best rounded network, packed (mdq_teach.nn.export)
    # speed
    amp: str | None = None  # "bf16": autocast the forward pass; parameters stay float32
    channels_last: bool = False
    compile: bool = False  # torch.compile the model
    compile_backend: str = "inductor"
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
_RESUMABLE = {
    "iterations", "stop_after", "device", "out", "resume", "overwrite", "progress", "data_root",
    "export", "compile_backend",
}  # fmt: skip
# What a run leaves in its out folder; any of them there means a run is in the way.
RUN_FILES = ("checkpoint.pt", "best.pt", "metrics.jsonl", "result.json")


def resolve_config(config: TrainConfig | dict, overrides: dict | None = None) -> TrainConfig:
    """Apply the paper preset (when ``config.preset == "paper"``), then ``overrides``, and check."""
    if isinstance(config, dict):
        unknown = set(config) - {f.name for f in dataclasses.fields(TrainConfig)}
        if unknown:
            raise ValueError(f"unknown config keys {sorted(unknown)}")
        config = TrainConfig(**config)
    try:
        levels = tuple(float(v) for v in config.levels)
    except (TypeError, ValueError):
        raise ValueError(f"levels must be a sequence of numbers, got {config.levels!r}") from None
    config = dataclasses.replace(config, levels=levels)
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


def _is_int(value) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def _base_class(name: str):
    classes = {
        k.lower(): v
        for k, v in vars(torch.optim).items()
        if isinstance(v, type)
        and issubclass(v, torch.optim.Optimizer)
        and v is not torch.optim.Optimizer
    }
    if name not in classes:
        raise ValueError(f"base must be one of {tuple(sorted(classes))}, got {name!r}")
    return classes[name]


def check_device(device: str | None) -> torch.device:
    """The ``torch.device`` for ``device`` (None: cuda when available), refusing what cannot run."""
    if device is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}") from None
    if dev.type not in ("cpu", "cuda"):
        raise ValueError(f"device must be 'cpu', 'cuda' or 'cuda:N', got {device!r}")
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            why = "no GPU is visible" if torch.version.cuda else "torch was built without CUDA"
            raise ValueError(
                f"device {device!r} asked for, but CUDA is not available ({why}, torch "
                f"{torch.__version__}); use device 'cpu'"
            )
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ValueError(
                f"device {device!r}: only {torch.cuda.device_count()} CUDA device(s) are visible"
            )
    return dev


def _check(c: TrainConfig) -> None:
    if c.dataset not in data_lib.DATASETS:
        raise ValueError(f"dataset must be one of {data_lib.DATASETS}, got {c.dataset!r}")
    if c.arch not in ARCHS:
        raise ValueError(f"arch must be one of {ARCHS}, got {c.arch!r}")
    from .registry import METHODS, get_method, takes_quantizer

    if c.method not in METHODS:
        raise ValueError(f"method must be one of {METHODS}, got {c.method!r}")
    ints = ("iterations", "batch_size", "lr_interval", "eval_interval", "log_interval",
            "bn_batches", "beta_scale_interval")  # fmt: skip
    optional_ints = ("checkpoint_interval", "stop_after", "train_size", "val_size", "test_size")
    for name in ints + optional_ints:
        value = getattr(c, name)
        if (value is not None or name in ints) and not (_is_int(value) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}")
    for name in ("seed", "split_seed"):
        value = getattr(c, name)
        if not (_is_int(value) and value >= 0):
            raise ValueError(f"{name} must be an integer >= 0, got {value!r}")
    for name in ("lr", "lr_scale", "beta_init", "beta_scale"):
        value = getattr(c, name)
        if not (_is_real(value) and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    if c.beta_scale < 1 and not c.allow_decreasing_beta:
        raise ValueError(
            f"beta_scale must be >= 1 (a scale below 1 shrinks beta towards 0 and eventually sets "
            f"every weight to 0; allow_decreasing_beta / --allow-decreasing-beta accepts it), "
            f"got {c.beta_scale!r}"
        )
    if not (_is_real(c.beta_max) and c.beta_max >= c.beta_init):
        raise ValueError(
            f"beta_max must be a number >= beta_init = {c.beta_init}, got {c.beta_max!r}"
        )
    for name in ("weight_decay", "pq_lambda"):
        value = getattr(c, name)
        if not (_is_real(value) and math.isfinite(value) and value >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
    if not (_is_real(c.momentum) and 0 <= c.momentum < 1):
        raise ValueError(f"momentum must be a number in [0, 1), got {c.momentum!r}")
    base_cls = _base_class(c.base)
    if c.momentum != 0 and "momentum" not in inspect.signature(base_cls).parameters:
        raise ValueError(
            f"momentum={c.momentum} is ignored by base {c.base!r}: it takes no momentum "
            "(use base 'sgd' or 'rmsprop', or leave momentum at 0)"
        )
    if c.quantizer is not None:
        if not takes_quantizer(c.method):
            raise ValueError(
                f"quantizer is only used by method 'proxconnect', got quantizer={c.quantizer!r} "
                f"with method {c.method!r}"
            )
        if c.quantizer not in QUANTIZER_NAMES:
            raise ValueError(f"quantizer must be one of {QUANTIZER_NAMES}, got {c.quantizer!r}")
    check_latent_init(c.latent_init)
    if get_method(c.method).route is None and c.latent_init != "auto":
        raise ValueError(
            f"latent_init is only used by the quantized methods (float trains its weights as "
            f"they are), got latent_init={c.latent_init!r} with method 'float'"
        )
    if c.pq_reg not in ("l1", "l2"):
        raise ValueError(f"pq_reg must be 'l1' or 'l2', got {c.pq_reg!r}")
    if len(c.levels) < 2 or not all(math.isfinite(v) for v in c.levels) or any(
        a >= b for a, b in zip(c.levels, c.levels[1:], strict=False)
    ):
        raise ValueError(
            f"levels must be at least two finite numbers in increasing order, got {c.levels!r}"
        )
    if c.stop_after is not None and c.stop_after > c.iterations:
        raise ValueError(
            f"stop_after must be in [1, iterations={c.iterations}], got {c.stop_after}"
        )
    if c.lr_schedule not in LR_SCHEDULES:
        raise ValueError(f"lr_schedule must be one of {LR_SCHEDULES}, got {c.lr_schedule!r}")
    if c.amp not in (None, *AMP):
        raise ValueError(f"amp must be None or one of {AMP}, got {c.amp!r}")
    check_device(c.device)
    for name in ("out", "export"):
        value = getattr(c, name)
        if value is not None and Path(value).exists() and (name == "out") != Path(value).is_dir():
            kind = "a folder" if name == "out" else "a file"
            raise ValueError(f"{name} must be {kind} (or not exist yet), got {value!r}")
    if c.resume and c.out is None:
        raise ValueError("resume needs out, the folder of the run to continue")
    if c.resume and c.overwrite:
        raise ValueError("resume and overwrite exclude each other: continue the run or replace it")


def run_name(c: TrainConfig) -> str:
    """The default folder name of a run: a readable stem and a short hash of every setting that
    changes the result, so runs that differ only in, say, lr never share a folder (settings that
    a resumption may change, like iterations, are left out: resuming finds the same folder)."""
    settings = {k: v for k, v in dataclasses.asdict(c).items() if k not in _RESUMABLE}
    digest = hashlib.sha256(_dumps(settings, sort_keys=True).encode()).hexdigest()[:8]
    return f"{c.dataset}-{c.arch}-{c.method}-seed{c.seed}-{digest}"


def _check_out_is_free(c: TrainConfig) -> None:
    """Refuse to start a fresh run over one already in ``out``: it would truncate its metrics and
    replace its checkpoint, best network and result without a word."""
    if c.out is None or c.resume or c.overwrite:
        return
    found = [name for name in RUN_FILES if (Path(c.out) / name).exists()]
    if found:
        raise UsageError(
            f"out {c.out} already holds a run ({', '.join(found)}); pass resume (--resume) to "
            "continue it, overwrite (--overwrite) to replace it, or choose another out"
        )


def _atomic_save(obj, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _atomic_text(text: str, path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def strict_json_value(obj):
    """``obj`` with every non-finite float replaced by the string ``"inf"``, ``"-inf"`` or
    ``"nan"`` (strict JSON has no such numbers) and tuples as lists."""
    if isinstance(obj, float) and not math.isfinite(obj):
        return "nan" if math.isnan(obj) else ("inf" if obj > 0 else "-inf")
    if isinstance(obj, dict):
        return {str(k): strict_json_value(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [strict_json_value(v) for v in obj]
    if obj is None or isinstance(obj, str | bool | int | float):
        return obj
    return str(obj)


def _dumps(obj, **kwargs) -> str:
    return json.dumps(strict_json_value(obj), allow_nan=False, **kwargs)


def _rng_state() -> dict:
    """Every RNG state as tensors and plain values (loadable with ``weights_only=True``)."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": [kind, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss),
                  float(cached)],
    }  # fmt: skip
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    torch.set_rng_state(state["torch"])
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), pos, has_gauss, cached))
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
    correct, loss, n = None, None, 0
    for x, y in batches:
        logits = model(x)
        batch_loss = F.cross_entropy(logits.float(), y, reduction="sum")
        batch_correct = (logits.argmax(1) == y).sum()
        loss = batch_loss if loss is None else loss + batch_loss
        correct = batch_correct if correct is None else correct + batch_correct
        n += len(y)
    return correct.item() / n, loss.item() / n  # one host sync for the whole pass


def rounded_copy(model, optimizer, bn_inputs, rebuild) -> torch.nn.Module:
    """A copy of ``model`` with every quantized parameter rounded to the levels and BatchNorm
    statistics recomputed for those rounded weights; ``model`` and ``optimizer`` are untouched.

    ``rebuild(model_copy)`` builds an optimizer like ``optimizer`` on the copy; it takes up
    ``optimizer.state_dict()`` (the latent weights) and its ``round_()`` writes the rounded
    weights into the copy, so the training pair never leaves its soft state. BatchNorm statistics
    gathered while training used the soft weights; the rounded network computes different
    activations, so its running means and variances are measured again.
    """
    from . import recompute_bn_stats

    rounded = copy.deepcopy(model)
    twin = rebuild(rounded)
    twin.load_state_dict(optimizer.state_dict())
    twin.round_()
    del twin
    recompute_bn_stats(rounded, bn_inputs)
    return rounded


def quantized_names(model, optimizer) -> list[str]:
    """Names (``model.named_parameters()``) of the parameters ``optimizer`` quantizes."""
    ids = {id(p) for g in optimizer.param_groups if g.get("quantize", True) for p in g["params"]}
    return [name for name, p in model.named_parameters() if id(p) in ids]


@torch.no_grad()
def constant_layers(model, names) -> list[dict]:
    """``[{"name": ..., "value": ...}]`` for each parameter of ``model`` named in ``names`` whose
    elements (two or more) all hold the same value: a layer of the rounded network that computes
    the same thing for every input pattern, such as a ternary layer rounded to all zeros (see
    :mod:`mdq_teach.nn.latent_init`). One host sync for all of them (run at validation only; the
    optimizer's step stays free of host syncs)."""
    params = dict(model.named_parameters())
    tensors = [(n, params[n].detach()) for n in names if params[n].numel() > 1]
    if not tensors:
        return []
    flags = torch.stack([t.amax() == t.amin() for _, t in tensors]).tolist()
    return [
        {"name": n, "value": t.reshape(-1)[0].item()}
        for (n, t), constant in zip(tensors, flags, strict=True)
        if constant
    ]


class _Metrics:
    """metrics.jsonl writer (or an in-memory list when the run has no ``out``)."""

    def __init__(self, path: Path | None, resume_from: int | None):
        self.path, self.records = path, []
        if path is None or not path.exists():
            return
        if resume_from is None:
            path.unlink()
            return
        lines = path.read_text().splitlines()
        for number, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                self.records.append(json.loads(line))
            except json.JSONDecodeError:
                if number < len(lines):
                    raise CheckpointError(
                        f"{path} line {number} is not JSON (and is not the last line, which a "
                        "killed run may have torn); repair or delete the file"
                    ) from None
                warnings.warn(
                    f"{path}: dropped a torn last line ({line[:40]!r}...), left by a run killed "
                    "mid-write",
                    stacklevel=3,
                )
        # A run killed after its last checkpoint logged iterations it will redo: drop them. The
        # test record is written again when the run finishes, so an old one is dropped too.
        self.records = [
            r for r in self.records if r.get("kind") != "test" and r["iteration"] <= resume_from
        ]
        _atomic_text("".join(_dumps(r) + "\n" for r in self.records), path)

    def log(self, record: dict) -> None:
        self.records.append(record)
        if self.path is not None:
            with open(self.path, "a") as f:
                f.write(_dumps(record) + "\n")


def _optimizer_accepts(option: str) -> bool:
    """Whether this package's optimizer takes keyword ``option`` (newer versions add options)."""
    from . import QuantOptimizer, make_optimizer

    return any(
        option in inspect.signature(f).parameters for f in (make_optimizer, QuantOptimizer)
    )


def _make_optimizer(model, c: TrainConfig):
    from . import make_optimizer

    base_kwargs = {"weight_decay": c.weight_decay}
    if c.momentum != 0:
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
    options["quantizer"] = c.quantizer  # checked by the registry: proxconnect's alone
    # The method's own options (PQ's regulariser and rate) as its registry entry names them.
    options.update({k: getattr(c, k) for k in _method_options(c.method) if hasattr(c, k)})
    if c.latent_init != "auto":
        options["latent_init"] = c.latent_init
    if c.preset == "paper" and _optimizer_accepts("beta_schedule"):
        options["beta_schedule"] = "ceil"  # the authors' released rule: beta_0 s^ceil(t / I)
    if c.allow_decreasing_beta and _optimizer_accepts("allow_decreasing_beta"):
        options["allow_decreasing_beta"] = True
    return make_optimizer(model.parameters(), c.method, **options, **base_kwargs)


def make_scheduler(optimizer, c: TrainConfig):
    """The learning-rate schedule of ``c.lr_schedule`` as a ``torch.optim.lr_scheduler``, stepped
    once per iteration: "step" is the paper's ``lr * lr_scale ** (t // lr_interval)``."""
    sched = torch.optim.lr_scheduler
    if c.lr_schedule == "step":
        return sched.StepLR(optimizer, step_size=c.lr_interval, gamma=c.lr_scale)
    if c.lr_schedule == "cosine":
        return sched.CosineAnnealingLR(optimizer, T_max=c.iterations)
    return sched.ConstantLR(optimizer, factor=1.0, total_iters=0)


def _all_finite(optimizer) -> torch.Tensor:
    """The optimizer's device flag "every weight and latent is finite" (True for an optimizer
    that cannot tell); reading it is the caller's host sync."""
    check = getattr(optimizer, "all_finite", None)
    return check() if check is not None else torch.tensor(True)


def _nonfinite_weights(optimizer, model, done: int, method: str, lr) -> FloatingPointError:
    bad = optimizer.nonfinite_parameters() if hasattr(optimizer, "nonfinite_parameters") else []
    named = {id(p): name for name, p in model.named_parameters()}
    names = [named.get(id(p), "a parameter") for p in bad]
    where = names[0] + (f" and {len(names) - 1} more" if len(names) > 1 else "") if names else "?"
    return FloatingPointError(
        f"weights became NaN or inf by iteration {done} ({method}, lr={lr}; first in {where}): a "
        "gradient was not finite; try a lower learning rate (the run stops rather than round "
        "NaN to a level)"
    )


def _beta(optimizer) -> float | None:
    beta = getattr(optimizer, "beta", None)  # the public property of mdq_teach's optimizer
    return None if beta is None else float(beta)


def _distributed(device_arg: str | None):
    """(rank, world size, device, created) under torchrun (WORLD_SIZE > 1), else one process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    device = check_device(device_arg)
    if world <= 1:
        return 0, 1, device, False
    import torch.distributed as dist

    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    created = not dist.is_initialized()
    if created:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.get_rank(), dist.get_world_size(), device, created


def train(
    config: TrainConfig | dict,
    data: data_lib.ImageData | None = None,
    command: str | None = None,
    scheduler=None,
) -> dict:
    """Run (or resume) one training run and return its result dict.

    ``config`` is a ``TrainConfig`` or a dict of its fields; ``data`` may be passed to reuse a data
    set already loaded with ``data.load`` (it must match ``config.dataset``). ``scheduler``, when
    given, is a callable ``scheduler(optimizer) -> torch.optim.lr_scheduler.LRScheduler`` that
    replaces ``config.lr_schedule`` (it is stepped once per iteration, and its state is
    checkpointed). The result holds the best rounded validation accuracy, its iteration, the
    rounded test accuracy (None when the run stopped early via ``stop_after``), the
    hyperparameters, the environment and ``history`` (every metrics record).
    ``result["model"]`` is the best rounded network, ``result["final_model"]`` the network as
    trained (soft weights) at the last iteration run. ``command`` is recorded in ``result.json``.

    Under ``torchrun`` (``WORLD_SIZE > 1``) this runs one rank of a DistributedDataParallel run;
    see the module docstring.
    """
    c = resolve_config(config)
    # Before the process group exists, so that every rank sees the folder as it was found.
    _check_out_is_free(c)
    rank, world, device, created_group = _distributed(c.device)
    try:
        return _train(c, data, command, scheduler, rank, world, device)
    finally:
        if created_group:
            torch.distributed.destroy_process_group()


def _train(c, data, command, scheduler, rank, world, device) -> dict:
    lead = rank == 0  # the rank that writes files and draws the progress bar
    out = Path(c.out) if c.out is not None else None
    ckpt_path = out / "checkpoint.pt" if out is not None else None
    if c.resume and not ckpt_path.is_file():
        raise ResumeError(
            f"resume: no checkpoint.pt in {out}, so there is no run to continue; check --out, "
            "or drop --resume to start a fresh run there"
        )
    resuming = c.resume
    if lead:
        # Found now, not when the first file or the export is written (hours later).
        for name, folder in (("out", out), ("export", c.export and Path(c.export).parent)):
            if folder is None:
                continue
            try:
                folder.mkdir(parents=True, exist_ok=True)
            except OSError as err:
                raise UsageError(
                    f"{name}: cannot create the folder {folder} ({err.strerror or err}); "
                    "choose a writable place"
                ) from None
    if out is not None and lead:
        if c.overwrite:  # nothing of the replaced run may outlive it (an old best.pt, result)
            for name in RUN_FILES:
                (out / name).unlink(missing_ok=True)
    started = time.perf_counter()

    if data is None:
        try:
            data = data_lib.load(
                c.dataset, c.data_root, c.val_size, c.split_seed, c.train_size, c.test_size,
                c.augment,
            )  # fmt: skip
        except fetch.DatasetNotFoundError:
            raise
        except ValueError as err:  # sizes that this data set cannot honour
            raise UsageError(str(err)) from None
    elif data.name != c.dataset:
        raise ValueError(f"data holds {data.name!r} but config.dataset is {c.dataset!r}")
    data = data.to(device)
    if c.arch == "vgg16" and data.image_size != 32:
        raise UsageError(f"arch 'vgg16' needs 32x32 inputs, {c.dataset} has {data.image_size}")
    if c.batch_size * world > len(data.train_x):
        raise UsageError(
            f"batch_size must be in [1, {len(data.train_x) // world}] ({len(data.train_x)} "
            f"training images, {world} process(es)), got {c.batch_size}"
        )

    if c.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.backends.cudnn.benchmark = False
        torch.use_deterministic_algorithms(True, warn_only=True)
    torch.manual_seed(c.seed)
    kwargs = {"size": data.image_size} if c.arch in ("smallconv", "mlp") else {}
    from .registry import get_method

    quantized = get_method(c.method).route is not None
    memory_format = torch.channels_last if c.channels_last else torch.preserve_format
    model = get_model(c.arch, data.num_classes, data.in_channels, quantized, **kwargs)
    model = model.to(device, memory_format=memory_format)
    net = model  # what the forward pass calls: possibly wrapped by DDP and torch.compile
    if world > 1:
        from torch.nn.parallel import DistributedDataParallel

        # Wrapped before the optimizer is built: DDP's broadcast from rank 0 comes first, so
        # every rank's optimizer starts from the same weights.
        ids = [device.index] if device.type == "cuda" else None
        net = DistributedDataParallel(model, device_ids=ids)
    if c.compile:
        net = torch.compile(net, backend=c.compile_backend)
    optimizer = _make_optimizer(model, c)

    def rebuild(copy_of_model):
        return _make_optimizer(copy_of_model, c)

    watched = quantized_names(model, optimizer) if quantized else []
    warned: set[str] = set()  # constant layers already warned about: one warning each per run

    lr_scheduler = scheduler(optimizer) if scheduler is not None else make_scheduler(optimizer, c)

    start, best = 0, {"val_acc": -1.0, "iteration": None, "state": None}
    window = {"loss": torch.zeros((), device=device, dtype=torch.float64),
              "correct": torch.zeros((), device=device, dtype=torch.int64), "n": 0}  # fmt: skip
    if resuming:
        ckpt = load_checkpoint(ckpt_path)
        check_layout(ckpt, ckpt_path)
        saved = {k: v for k, v in ckpt["config"].items() if k not in _RESUMABLE}
        now = {k: v for k, v in dataclasses.asdict(c).items() if k not in _RESUMABLE}
        saved.setdefault("world_size", ckpt.get("world_size", 1))
        now["world_size"] = world
        diff = {k: (saved.get(k), now[k]) for k in now if _plain(saved.get(k)) != _plain(now[k])}
        if diff:
            raise ResumeError(f"resume with different settings (saved, now): {diff}")
        start = check_iteration(ckpt, ckpt_path, c.iterations)
        if c.stop_after is not None and c.stop_after < start:
            raise ResumeError(
                f"stop_after must be in [{start}, iterations={c.iterations}] when resuming a run "
                f"at iteration {start}, got {c.stop_after}"
            )
        try:
            model.load_state_dict(ckpt["model"])
            optimizer.load_state_dict(ckpt["optimizer"])
            lr_scheduler.load_state_dict(ckpt["scheduler"])
            _set_rng_state(ckpt["rng"])
            saved_window = ckpt["window"]
            # The saved sums are global: rank 0 carries them, the others start from zero.
            window = {k: saved_window[k].to(device) * (rank == 0) for k in ("loss", "correct")}
            window["n"] = int(saved_window["n"])
            best = {k: ckpt["best"][k] for k in ("val_acc", "iteration")}
            best["val_acc"] = float(best["val_acc"])
        except LOAD_ERRORS as err:
            raise CheckpointError(
                f"{ckpt_path} does not fit this run ({type(err).__name__}: "
                f"{str(err).strip().splitlines()[0][:300] if str(err).strip() else 'no message'})"
                "; it is damaged or was written for another network"
            ) from None
        best["state"] = None
        if best["iteration"]:
            best_path = out / "best.pt"
            best["state"] = load_checkpoint(best_path, map_location=device)
            try:  # a damaged best.pt would otherwise fail only at the end of the run
                copy.deepcopy(model).load_state_dict(best["state"])
            except LOAD_ERRORS as err:
                raise CheckpointError(
                    f"{best_path} does not fit this run ({type(err).__name__}); it is damaged "
                    "or was written for another network"
                ) from None
    metrics = _Metrics(
        out / "metrics.jsonl" if out is not None and lead else None, start if resuming else None
    )

    # BatchNorm of the rounded network is re-estimated on fixed, unaugmented training images.
    bn_generator = torch.Generator().manual_seed(c.seed + 7919)
    bn_idx = torch.randperm(len(data.train_x), generator=bn_generator)
    bn_idx = bn_idx[: c.bn_batches * c.batch_size].to(device)
    bn_inputs = [
        data_lib.normalize(data.train_x[i], data.mean, data.std) for i in bn_idx.split(c.batch_size)
    ]
    stream = data_lib.BatchStream(data, c.batch_size, c.seed, start=start, rank=rank, world=world)
    end = c.stop_after if c.stop_after is not None else c.iterations
    ckpt_every = c.checkpoint_interval or c.eval_interval
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=c.amp == "bf16")

    def checkpoint(iteration: int) -> None:
        if ckpt_path is None:
            return
        saved_window = dict(window)
        if world > 1:  # every rank takes part: the checkpoint holds the global partial sums
            totals = torch.stack([window["loss"], window["correct"].double()])
            torch.distributed.all_reduce(totals)
            saved_window.update(loss=totals[0], correct=totals[1].long())
        if not lead:
            return
        state = {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "scheduler": lr_scheduler.state_dict(),
            "rng": _rng_state(),
            "iteration": iteration,
            "window": saved_window,
            "best": {k: best[k] for k in ("val_acc", "iteration")},
            "config": dataclasses.asdict(c),
            "world_size": world,
        }
        _atomic_save(state, ckpt_path)

    bar = _progress(start, end, c.progress and lead, f"{c.method} {c.arch} {c.dataset}")
    postfix = {}  # the latest loss, validation accuracy and beta, shown next to the bar
    for t in bar:
        net.train()
        lr = optimizer.param_groups[0]["lr"]  # set by the scheduler; used by this step
        x, y = next(stream)
        if c.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast:
            logits = net(x)
            loss = F.cross_entropy(logits, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        lr_scheduler.step()
        # Accumulated on the device: the host reads them once per logging interval.
        window["loss"] += loss.detach() * len(y)
        window["correct"] += (logits.detach().argmax(1) == y).sum()
        window["n"] += len(y)
        done = t + 1
        logged = done % c.log_interval == 0 or done == c.iterations  # a stopped run logs on resume
        if logged:
            totals = torch.stack(
                [window["loss"], window["correct"].double(), _all_finite(optimizer).double()]
            )
            n = window["n"] * world
            if world > 1:
                torch.distributed.all_reduce(totals)
            loss_sum, correct, finite = totals.tolist()  # the interval's one host sync
            if not math.isfinite(loss_sum):
                raise FloatingPointError(
                    f"training loss became {loss_sum} in the logging interval ending at "
                    f"iteration {done} ({c.method}, lr={lr}); try a lower learning rate"
                )
            if finite != world:
                raise _nonfinite_weights(optimizer, model, done, c.method, lr)
            metrics.log(
                {
                    "kind": "train",
                    "iteration": done,
                    "loss": loss_sum / n,
                    "acc": correct / n,
                    "lr": lr,
                    "beta": _beta(optimizer),
                }
            )
            if c.progress and lead:
                postfix["loss"] = f"{loss_sum / n:.4g}"
                bar.set_postfix(postfix)
            window = {"loss": torch.zeros_like(window["loss"]),
                      "correct": torch.zeros_like(window["correct"]), "n": 0}  # fmt: skip
        if done % c.eval_interval == 0 or done == c.iterations:
            # Rounding NaN gives a valid-looking level: never evaluate weights not just checked.
            if not logged and not bool(_all_finite(optimizer)):
                raise _nonfinite_weights(optimizer, model, done, c.method, lr)
            record = {"kind": "eval", "iteration": done, "beta": _beta(optimizer)}
            if quantized:
                if c.eval_soft:
                    record["val_acc_soft"], _ = evaluate(model, data_lib.eval_batches(data, "val"))
                evaluated = rounded_copy(model, optimizer, bn_inputs, rebuild)
                record["constant_layers"] = constant_layers(evaluated, watched)
                new = [layer for layer in record["constant_layers"] if layer["name"] not in warned]
                if new and lead:
                    listed = ", ".join(f"{x['name']} (every element {x['value']:g})" for x in new)
                    warnings.warn(
                        f"the rounded network is constant in {len(new)} quantized parameter(s) at "
                        f"iteration {done}: {listed}; such a layer gives every input the same "
                        f"response (levels {tuple(c.levels)}, latent_init {c.latent_init!r}: "
                        "latents that start far inside one rounding interval stay there; see "
                        "mdq_teach.nn.latent_init)",
                        stacklevel=3,
                    )
                warned.update(layer["name"] for layer in new)
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
                if out is not None and lead:
                    _atomic_save(best["state"], out / "best.pt")
            if c.progress and lead:
                beta = "-" if record["beta"] is None else f"{record['beta']:.3g}"
                postfix.update(val=f"{record['val_acc']:.4f}", beta=beta)
                bar.set_postfix(postfix)
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
    export_sizes = None
    if c.export is not None and not finished and lead:
        warnings.warn(
            f"export: {c.export} is written when the run finishes (it stopped at iteration "
            f"{end} of {c.iterations}; resume it to finish)",
            stacklevel=3,
        )
    if c.export is not None and best_model is not None and lead:
        from . import export as export_lib

        spec = dict(arch=c.arch, num_classes=data.num_classes, in_channels=data.in_channels)
        export_lib.save(best_model, c.export, c.levels if quantized else None, **spec, **kwargs)
        export_sizes = export_lib.sizes(c.export)
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
        "final_beta": _beta(optimizer),
        "hyperparameters": dataclasses.asdict(c),
        "data_source": data.source,  # the folder read, which data_root alone may not say
        "world_size": world,
        "global_batch_size": c.batch_size * world,
        "export": export_sizes,
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "git_commit": _git_commit(),
        "command": command or "mdq_teach.nn.trainer.train(config) from Python",
        "wall_time_s": time.perf_counter() - started,
        "resumed_from": start if resuming else None,
        "iterations_run": end - start,  # by this invocation; iterations_done counts from 0
    }
    if out is not None and lead:
        _atomic_text(_dumps(result, indent=2) + "\n", out / "result.json")
    result["history"] = metrics.records
    result["model"] = best_model
    result["final_model"] = model
    return result


def _plain(value):
    """Config values compared across a checkpoint: tuples and lists alike."""
    if isinstance(value, tuple | list):
        return [_plain(v) for v in value]
    return value


def _progress(start: int, end: int, enabled: bool, desc: str):
    """Iterations ``start .. end - 1``; with ``enabled``, a bar showing position / ``end`` (a
    resumed run starts at ``start``, not at 0 of what is left)."""
    if not enabled:
        return range(start, end)
    from tqdm import tqdm

    return tqdm(range(start, end), desc=desc, dynamic_ncols=True, initial=start, total=end)


# ------------------------------------------------------------------------------------------------
# command line


def _number(kind, low=None, high=None, low_open=False, high_open=False, allow_inf=False):
    """An argparse ``type=``: parse ``kind`` and check the range, so a bad value is argparse's
    one-line error naming the flag (exit status 2), never a traceback."""
    interval = (
        f"{'(' if low_open else '['}{'-inf' if low is None else low}, "
        f"{'inf' if high is None else high}{')' if high_open or high is None else ']'}"
    )
    what = "an integer" if kind is int else "a number"

    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"wants {what} in {interval}, got {text!r}") from None
        if kind is float and math.isnan(value):
            raise argparse.ArgumentTypeError(f"wants {what} in {interval}, got {text!r}")
        if kind is float and math.isinf(value) and not (allow_inf and value > 0):
            raise argparse.ArgumentTypeError(f"wants a finite number in {interval}, got {text!r}")
        bad_low = low is not None and (value <= low if low_open else value < low)
        bad_high = high is not None and (value >= high if high_open else value > high)
        if bad_low or bad_high:
            raise argparse.ArgumentTypeError(f"wants {what} in {interval}, got {text!r}")
        return value

    parse.__name__ = what  # argparse names the type in some messages
    return parse


_POSITIVE_INT = _number(int, 1)
_SEED = _number(int, 0)
_POSITIVE = _number(float, 0, low_open=True)
_NONNEGATIVE = _number(float, 0)


def _levels(text: str) -> tuple[float, ...]:
    try:
        levels = tuple(float(v) for v in text.split(","))
    except ValueError:
        msg = f"wants comma-separated numbers in increasing order, e.g. -1,0,1, got {text!r}"
        raise argparse.ArgumentTypeError(msg) from None
    if len(levels) < 2 or not all(math.isfinite(v) for v in levels) or any(
        a >= b for a, b in zip(levels, levels[1:], strict=False)
    ):
        raise argparse.ArgumentTypeError(
            f"wants at least two finite numbers in increasing order, e.g. -1,1, got {text!r}"
        )
    return levels


def build_parser() -> argparse.ArgumentParser:
    d = TrainConfig()
    p = argparse.ArgumentParser(
        prog="python -m mdq_teach.train",
        description="Train a quantized network with any method of Ajanthan et al. (2021). "
        "With --preset paper the paper's Tables 8-10 give the hyperparameters for the chosen "
        "dataset, architecture, method and levels; any flag given explicitly overrides them. "
        "Under `torchrun --nproc_per_node N -m mdq_teach.train ...` it trains with N processes "
        "(DistributedDataParallel); --batch-size is then per process, the global batch N times it.",
        epilog="example, on a laptop's CPU (after python -m mdq_teach.fetch fashion-mnist): "
        "python -m mdq_teach.train --dataset fashion-mnist --arch smallconv --method "
        "md-tanh-s --iterations 2000 --eval-interval 500 --device cpu --out runs/fmnist-small",
    )
    from . import METHODS

    add = p.add_argument
    # Required: without it, a bare command would start the protocol's 100k-iteration CIFAR run.
    add("--dataset", required=True, choices=data_lib.DATASETS)
    add("--arch", default=d.arch, choices=ARCHS)
    add("--method", default=d.method, choices=METHODS)
    add("--preset", default=None, choices=["paper"], help="take hyperparameters from the paper")
    add("--levels", type=_levels, default=None, help=f"quantization levels, e.g. -1,1 or -1,0,1 "
        f"(default {','.join(f'{v:g}' for v in d.levels)})")  # fmt: skip
    g = p.add_argument_group(
        "optimisation (defaults: protocol; Table 8 CIFAR-10/ResNet-18 MD-tanh-S)"
    )
    g.add_argument("--lr", type=_POSITIVE, help=f"learning rate > 0 (default {d.lr})")
    g.add_argument(
        "--lr-scale", type=_POSITIVE, help=f"lr factor every --lr-interval (default {d.lr_scale})"
    )
    g.add_argument(
        "--lr-interval",
        type=_POSITIVE_INT,
        help=f"iterations between lr decays (default {d.lr_interval})",
    )
    g.add_argument(
        "--lr-schedule",
        choices=LR_SCHEDULES,
        help="torch lr scheduler: step (the paper's StepLR: --lr-scale every --lr-interval), "
        f"cosine (CosineAnnealingLR to 0 at --iterations), constant (default {d.lr_schedule})",
    )
    bases = ("adam", "adamw", "sgd", "rmsprop", "adagrad", "adamax", "nadam", "radam")
    g.add_argument("--base", choices=bases, help=f"torch.optim base optimizer (default {d.base})")
    g.add_argument(
        "--momentum",
        type=_number(float, 0, 1, high_open=True),
        help="momentum in [0, 1) of base sgd or rmsprop (default 0; refused with other bases)",
    )
    g.add_argument(
        "--weight-decay", type=_NONNEGATIVE, help=f"weight decay >= 0 (default {d.weight_decay})"
    )
    g.add_argument(
        "--batch-size",
        type=_POSITIVE_INT,
        help=f"batch size per process (default {d.batch_size})",
    )
    g.add_argument(
        "--iterations",
        type=_POSITIVE_INT,
        help=f"run length in iterations (default {d.iterations})",
    )
    g = p.add_argument_group("annealing of beta (refused with float and bc, which have no beta)")
    g.add_argument(
        "--beta-init", type=_POSITIVE, help=f"beta at iteration 0, > 0 (default {d.beta_init})"
    )
    g.add_argument(
        "--beta-scale",
        type=_POSITIVE,
        help=f"beta factor every --beta-scale-interval, >= 1 unless --allow-decreasing-beta "
        f"(default {d.beta_scale})",
    )
    g.add_argument(
        "--allow-decreasing-beta",
        action="store_true",
        default=None,
        help="accept --beta-scale < 1 (beta shrinks towards 0, and so do the weights)",
    )
    g.add_argument(
        "--beta-scale-interval",
        type=_POSITIVE_INT,
        help=f"iterations between beta increases (default {d.beta_scale_interval})",
    )
    g.add_argument(
        "--beta-max",
        type=_number(float, 0, low_open=True, allow_inf=True),
        help=f"cap on beta, >= --beta-init, inf allowed (default {d.beta_max})",
    )
    g.add_argument(
        "--quantizer", choices=QUANTIZER_NAMES, help="ProxConnect's quantizer (proxconnect only)"
    )
    g.add_argument(
        "--latent-init", choices=LATENT_INITS,
        help="where the latent weights start: 'weights' (the paper), 'levels' (mapped onto the "
        "levels' scale, per tensor) or 'auto' ('weights' for two levels -a,a, else 'levels'; "
        f"default {d.latent_init})",
    )  # fmt: skip
    g.add_argument("--pq-reg", choices=["l1", "l2"], help=f"PQ regulariser (default {d.pq_reg})")
    g.add_argument(
        "--pq-lambda",
        type=_NONNEGATIVE,
        help=f"PQ regularisation rate, lambda_t = rate * t (default {d.pq_lambda})",
    )
    g = p.add_argument_group("speed")
    g.add_argument(
        "--amp", choices=AMP, help="autocast the forward pass (parameters stay float32)"
    )
    g.add_argument(
        "--channels-last", action="store_true", default=None, help="channels_last memory format"
    )
    g.add_argument("--compile", action="store_true", default=None, help="torch.compile the model")
    g = p.add_argument_group("evaluation, data and bookkeeping")
    g.add_argument(
        "--eval-interval",
        type=_POSITIVE_INT,
        help=f"iterations between validations of the rounded net (default {d.eval_interval})",
    )
    g.add_argument(
        "--eval-soft", action="store_true", default=None, help="also validate the unrounded network"
    )
    g.add_argument(
        "--bn-batches",
        type=_POSITIVE_INT,
        help=f"batches to recompute BatchNorm after rounding (default {d.bn_batches})",
    )
    g.add_argument(
        "--log-interval",
        type=_POSITIVE_INT,
        help=f"iterations per train record (default {d.log_interval})",
    )
    g.add_argument(
        "--checkpoint-interval",
        type=_POSITIVE_INT,
        help="iterations per checkpoint (default: --eval-interval)",
    )
    g.add_argument(
        "--stop-after",
        type=_POSITIVE_INT,
        help="stop after this iteration, checkpointed (for testing resume)",
    )
    g.add_argument(
        "--seed",
        type=_SEED,
        help=f"seed >= 0 of init, batch order and augmentation (default {d.seed})",
    )
    g.add_argument(
        "--deterministic",
        action="store_true",
        default=None,
        help="deterministic CUDA kernels, so --resume is bit-exact on a GPU too",
    )
    g.add_argument("--device", help="cpu, cuda or cuda:N (default: cuda when available)")
    g.add_argument(
        "--out",
        help="folder for checkpoints, metrics.jsonl and result.json (default runs/<dataset>-"
        "<arch>-<method>-seed<seed>-<hash of the settings>)",
    )
    g.add_argument(
        "--resume",
        action="store_true",
        default=None,
        help="continue the run found in --out (an error when --out holds no checkpoint)",
    )
    g.add_argument(
        "--overwrite",
        action="store_true",
        default=None,
        help="replace the run already in --out (without it, such an --out is refused)",
    )
    g.add_argument(
        "--export",
        help="write the best rounded network here, packed at 1 or 2 bits per weight (.npz)",
    )
    g.add_argument(
        "--no-progress", dest="progress", action="store_false", default=None, help="no progress bar"
    )
    g.add_argument("--data-root", help="data folder (default $MDQ_DATA or ~/.cache/mdq_teach)")
    g.add_argument("--train-size", type=_POSITIVE_INT, help="use only this many training images")
    g.add_argument(
        "--val-size",
        type=_POSITIVE_INT,
        help="validation images split from training (default 5000)",
    )
    g.add_argument("--test-size", type=_POSITIVE_INT, help="use only this many test images")
    return p


# Flags that a method ignores: given explicitly, they are refused rather than silently dropped.
_BETA_FLAGS = ("beta_init", "beta_scale", "beta_scale_interval", "beta_max",
               "allow_decreasing_beta")  # fmt: skip
_METHOD_FLAGS = ("pq_reg", "pq_lambda")  # flags of TrainConfig that configure one route


def _method_options(method: str) -> tuple[str, ...]:
    from .registry import get_method  # the registry imports torch-side modules: on demand

    return tuple(get_method(method).options)


def _ignored_flags(method: str) -> tuple[str, ...]:
    """The flags ``method`` ignores, from its registry entry: the beta schedule's where it
    does not anneal, the route options of other methods, latent_init without latents."""
    from .registry import get_method

    entry = get_method(method)
    ignored = () if entry.anneals else _BETA_FLAGS
    ignored += tuple(f for f in _METHOD_FLAGS if f not in entry.options)
    return ignored + (("latent_init",) if entry.route is None else ())


def main(argv: list[str] | None = None) -> dict:
    argv = sys.argv[1:] if argv is None else argv
    parser = build_parser()
    args = vars(parser.parse_args(argv))
    base = {k: args.pop(k) for k in ("dataset", "arch", "method", "preset")}
    if args["levels"] is not None:
        base["levels"] = args["levels"]
    overrides = {k: v for k, v in args.items() if v is not None and k != "levels"}
    for name in _ignored_flags(base["method"]):
        if name in overrides:
            flag = "--" + name.replace("_", "-")
            parser.error(f"argument {flag}: method {base['method']!r} does not use it")
    try:
        config = resolve_config(TrainConfig(**base), overrides)
    except ValueError as err:
        parser.error(str(err))
    if config.out is None:
        config = dataclasses.replace(config, out=str(Path("runs") / run_name(config)))
    try:
        result = train(config, command="python -m mdq_teach.train " + shlex.join(argv))
    except UsageError as err:
        parser.error(str(err))
    except fetch.DatasetNotFoundError as err:
        parser.exit(1, f"{parser.prog}: error: {err}\n")
    except (CheckpointError, FloatingPointError) as err:
        parser.exit(2, f"{parser.prog}: error: {err}\n")
    if int(os.environ.get("RANK", "0")) == 0:
        summary = {
            k: result[k] for k in ("best_val_acc", "best_iteration", "test_acc", "wall_time_s")
        }
        print(_dumps({"out": config.out, **summary}))
    return result

"""The GPU runs of Part III: which runs, with which settings, in which batches, and running them.

Every run trains on the full Fashion-MNIST training set, zero-padded from 28x28 to 32x32 so that
the paper's CIFAR networks apply unchanged: 55,000 training and 5,000 validation images split off
the official training set (seed 0), the 10,000 official test images. The protocol is the paper's
(docs/design.md §4): Adam (SGD for the float reference), the rounded network validated once per
epoch with BatchNorm recomputed for the rounded weights, the best validated network tested.

The epoch budget is stated once, ``EPOCHS``. The paper's hyperparameters (its Tables 8-10, for
CIFAR-10) are written for 100k iterations; a run of ``K`` iterations keeps their values and shrinks
every interval by ``K / 100k`` (the learning-rate decay interval and the beta-annealing interval),
so beta sweeps the same range of values and the learning rate takes the same steps, only faster.
ProxQuant's regularisation rate grows lambda linearly in time, so it is divided by the same factor.

Runs are grouped in batches that each fit in one 10-minute call on one H100 (``plan`` prints the
estimate and how it is made); each finished run writes its own record with
:func:`mdq_teach.experiments.results.write_record`. A deadline guard skips a run that would not
finish before ``--deadline-s`` and says which command finishes it later.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import shlex
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

EPOCHS = 5  # the epoch budget of every run in the grid (issue 17: at least 5)
FAST_EPOCHS = 29  # issue 11, item 3: within 1.5 points of float in at most 29 epochs
DATASET = "fashion-mnist"
TRAIN_SIZE, VAL_SIZE, TEST_SIZE = 55_000, 5_000, 10_000
IMAGE_SIZE = 32
BATCH_SIZE = 128
PAPER_ITERATIONS = 100_000
PAPER_LR_INTERVAL = 30_000
BINARY, TERNARY = (-1.0, 1.0), (-1.0, 0.0, 1.0)

BINARY_R18 = (
    "float", "bc", "pq", "pmf", "gd-tanh", "md-tanh", "md-tanh-s", "md-softmax", "md-softmax-s",
    "proxconnect",
)  # fmt: skip
OTHER_ARCH_METHODS = ("float", "bc", "pmf", "md-tanh-s")
TERNARY_R18 = ("float", "pq", "gd-tanh", "md-tanh-s", "md-softmax-s")
# Issue 17: more seeds of the ResNet-18 runs, so that the ranking carries error bars (these five
# binary methods first, then the other five and the ternary runs).
SEEDED_R18 = ("float", "bc", "pq", "md-tanh-s", "proxconnect")
EXTRA_SEEDS = (1, 2)

# Planning figures for one training iteration (batch 128, 1x32x32, float32/TF32, eager) on one
# H100, in milliseconds, used until a throughput record or an earlier run of the same architecture
# gives a measured one. Made as: forward + backward FLOPs (``count_flops``, torch's FLOP counter:
# ResNet-18 425.5, VGG-16 239.9, MobileNetV2 498.7 GFLOP per iteration) at an assumed 60 TFLOP/s
# sustained by cuDNN on such small images (MobileNetV2's depthwise convolutions, which run far
# below the matrix units' peak, at 40), plus 4 ms per iteration for the optimizer's element-wise
# kernels, launches and the loop's host syncs. These are assumptions, not readings.
GFLOP_PER_ITERATION = {"resnet18": 425.5, "vgg16": 239.9, "mobilenetv2": 498.7}
PLAN_MS_PER_ITERATION = {"resnet18": 11.1, "vgg16": 8.0, "mobilenetv2": 16.5, "smallconv": 2.0}
EVAL_SECONDS = 1.0  # per validation: rounding, BatchNorm recomputation, 5,000 images
START_SECONDS = 20.0  # per process: CUDA context, data upload, cuDNN autotuning
SAFETY = 1.2  # margin on every estimate


def per_epoch(train_size: int = TRAIN_SIZE, batch_size: int = BATCH_SIZE) -> int:
    """Iterations per epoch: the trainer drops the last incomplete batch of an epoch."""
    return train_size // batch_size


def iterations_for(epochs: float, train_size: int = TRAIN_SIZE, batch_size=BATCH_SIZE) -> int:
    return max(1, round(epochs * per_epoch(train_size, batch_size)))


def _kind(levels) -> str:
    return {BINARY: "binary", TERNARY: "ternary"}.get(tuple(float(v) for v in levels), "levels")


# The grid's runs that the paper's tables lack: (arch or None for any, method) -> the arch and
# method whose values they take (None: their own), extra settings, and the note saying so.
_BORROWED = {
    (None, "proxconnect"): (
        None, "md-tanh-s", {"quantizer": "linear"},
        "proxconnect: not in the paper; MD-tanh-S's values, quantizer 'linear'",
    ),
    ("mobilenetv2", "pmf"): (
        "resnet18", None, {},
        "pmf on mobilenetv2: Table 10 has no PMF; Table 8's ResNet-18 PMF values",
    ),
}  # fmt: skip


def paper_values(arch: str, method: str, levels=BINARY) -> tuple[dict, list[str]]:
    """The paper's CIFAR-10 hyperparameters for (arch, method, levels), and notes on borrowings.

    The tables lack two runs of the grid: PMF on MobileNetV2 (Table 10 has no PMF column) takes
    Table 8's ResNet-18 PMF values, and ProxConnect (not in the paper) takes MD-tanh-S's values
    with ProxConnect's annealed piecewise-linear quantizer.
    """
    from mdq_teach.nn.presets import paper_preset

    notes = []
    lookup_arch, lookup_method, extra = arch, method, {}
    for (b_arch, b_method), (to_arch, to_method, b_extra, note) in _BORROWED.items():
        if b_method == method and b_arch in (None, arch):
            lookup_arch, lookup_method = to_arch or lookup_arch, to_method or lookup_method
            extra = {**extra, **b_extra}
            notes.append(note)
    values = paper_preset("cifar10", lookup_arch, lookup_method, levels)
    notes.append(f"values: {values.pop('source')} (CIFAR-10)")
    values.pop("notes")
    return {**values, **extra}, notes


def compress(values: dict, iterations: int) -> dict:
    """Shrink the paper's 100k-iteration schedule to ``iterations``; see the module docstring."""
    scale = iterations / PAPER_ITERATIONS
    out = dict(values)
    out["lr_interval"] = max(1, round(values.get("lr_interval", PAPER_LR_INTERVAL) * scale))
    if "beta_scale_interval" in values:
        out["beta_scale_interval"] = max(1, round(values["beta_scale_interval"] * scale))
    if "pq_lambda" in values:
        out["pq_lambda"] = values["pq_lambda"] / scale
    return out


@dataclass
class Run:
    """One run of the suite: its record's name, the trainer settings, where it belongs."""

    name: str
    arch: str
    method: str
    levels: tuple[float, ...]
    epochs: float
    settings: dict  # TrainConfig fields beyond dataset/arch/method/levels
    batch: str
    tags: tuple[str, ...] = ()
    notes: list[str] = field(default_factory=list)
    scheduler: str | None = None  # "onecycle": torch's OneCycleLR through train(scheduler=...)

    @property
    def iterations(self) -> int:
        return self.settings["iterations"]


def grid_run(arch: str, method: str, levels=BINARY, epochs: float = EPOCHS, batch="",
             seed: int = 0) -> Run:  # fmt: skip
    """One cell of the grid; seed 0 keeps the record name without a seed suffix."""
    iterations = iterations_for(epochs)
    values, notes = paper_values(arch, method, levels)
    settings = compress(values, iterations)
    settings.update(
        iterations=iterations,
        batch_size=BATCH_SIZE,
        eval_interval=per_epoch(),
        log_interval=max(1, per_epoch() // 4),
        seed=seed,
    )
    notes.append(
        f"schedule: the paper's intervals x {iterations}/{PAPER_ITERATIONS} "
        f"(lr every {settings['lr_interval']}, beta every "
        f"{settings.get('beta_scale_interval', '-')} iterations)"
    )
    name = f"fmnist32-{arch}-{_kind(levels)}-{method}-e{epochs:g}" + (f"-s{seed}" if seed else "")
    tags = ("grid",) if seed == 0 else ("grid", "seed")
    return Run(name, arch, method, tuple(levels), epochs, settings, batch, tags, notes)


def fast_runs(epochs: float = FAST_EPOCHS) -> list[Run]:
    """Candidate schedules for binary ResNet-18 MD-tanh-S in ``epochs`` epochs, and their float
    reference with the same budget (issue 11, item 3)."""
    iterations = iterations_for(epochs)
    ref = grid_run("resnet18", "float", BINARY, epochs, "fast-1")
    ref.name, ref.tags = f"fast-resnet18-float-e{epochs:g}", ("fast-schedule", "reference")
    paper = grid_run("resnet18", "md-tanh-s", BINARY, epochs, "fast-1")
    paper.name, paper.tags = f"fast-resnet18-md-tanh-s-paper-e{epochs:g}", ("fast-schedule",)
    paper.notes.append("candidate 'paper': Table 8's schedule compressed to the budget")
    # Anneal quickly to beta = 1000 (tanh(1000 x) is within 0.5% of sign(x) once |x| > 0.003) by
    # 70% of the run, then train the nearly binary network at that beta with a lower lr.
    steps = math.ceil(math.log(1000) / math.log(1.2))
    cap = dict(paper.settings)
    cap.update(
        beta_scale=1.2,
        beta_scale_interval=max(1, int(0.7 * iterations / steps)),
        beta_max=1000.0,
        lr_interval=max(1, iterations // 3),
        lr_scale=0.3,
    )
    capped = Run(
        f"fast-resnet18-md-tanh-s-cap1000-e{epochs:g}", "resnet18", "md-tanh-s", BINARY, epochs,
        cap, "fast-2", ("fast-schedule",),
        paper.notes[:1] + ["candidate 'cap1000': beta x1.2 up to 1000 by 70% of the run, then "
                           "fixed; lr x0.3 at 1/3 and 2/3 of the run"],
    )  # fmt: skip
    cycle = dict(cap)
    cycle.update(lr=3e-3)
    onecycle = Run(
        f"fast-resnet18-md-tanh-s-onecycle-e{epochs:g}", "resnet18", "md-tanh-s", BINARY, epochs,
        cycle, "fast-2", ("fast-schedule",),
        paper.notes[:1] + ["candidate 'onecycle': OneCycle lr peaking at 3e-3 (torch's "
                           "OneCycleLR, no momentum cycling), beta as in 'cap1000'"],
        scheduler="onecycle",
    )  # fmt: skip
    return [ref, paper, capped, onecycle]


def all_runs() -> list[Run]:
    runs = []
    half = len(BINARY_R18) // 2
    for i, method in enumerate(BINARY_R18):
        runs.append(grid_run("resnet18", method, BINARY, batch=f"r18-binary-{1 + (i >= half)}"))
    for method in TERNARY_R18:
        if method == "float":
            continue  # the float network does not depend on the levels: the binary run serves
        runs.append(grid_run("resnet18", method, TERNARY, batch="r18-ternary"))
    for seed in EXTRA_SEEDS:
        runs += [grid_run("resnet18", m, BINARY, batch="r18-seeds", seed=seed) for m in SEEDED_R18]
    others = [m for m in BINARY_R18 if m not in SEEDED_R18]
    for seed in EXTRA_SEEDS:
        runs += [grid_run("resnet18", m, BINARY, batch="r18-seeds-2", seed=seed) for m in others]
    for seed in EXTRA_SEEDS:
        runs += [grid_run("resnet18", m, TERNARY, batch="r18-ternary-seeds", seed=seed)
                 for m in TERNARY_R18 if m != "float"]  # fmt: skip
    for arch in ("vgg16", "mobilenetv2"):
        runs += [grid_run(arch, m, BINARY, batch=arch) for m in OTHER_ARCH_METHODS]
    return runs + fast_runs()


def batches() -> dict[str, list[Run]]:
    out: dict[str, list[Run]] = {}
    for run in all_runs():
        out.setdefault(run.batch, []).append(run)
    return out


# ---------------------------------------------------------------------------------------------
# estimates


def measured_ms_per_iteration(*folders) -> dict[str, float]:
    """ms per training iteration of each architecture from the GPU records already written in
    ``folders`` (default book/results): throughput records (slowest method, so that every run
    fits), else finished runs."""
    from .results import load_records

    records = []
    for folder in dict.fromkeys(folders or (None,)):
        records += load_records(folder)[0]
    out: dict[str, float] = {}
    for rec in records:
        if rec["kind"] == "throughput":
            arch = rec["setup"]["arch"]
            slowest = max(row["ms_per_iteration"] for row in rec["rows"])
            out[arch] = max(out.get(arch, 0.0), slowest)
    for rec in records:
        if rec["kind"] == "train" and rec["protocol"]["arch"] not in out:
            p = rec["protocol"]
            out[p["arch"]] = 1000 * p["batch_size"] / rec["images_per_second"]
    return out


def count_flops(arch: str, batch_size: int = BATCH_SIZE, in_channels: int = 1) -> float:
    """FLOPs of one training iteration's forward and backward pass on ``in_channels`` x 32 x 32
    inputs (1: Fashion-MNIST, 3: CIFAR), counted by torch on the meta device (no memory, no
    arithmetic)."""
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from mdq_teach.nn.models import get_model

    with torch.device("meta"):
        model = get_model(arch, 10, in_channels, True)
        x = torch.randn(batch_size, in_channels, IMAGE_SIZE, IMAGE_SIZE)
        y = torch.randint(10, (batch_size,))
    counter = FlopCounterMode(display=False)
    with counter:
        F.cross_entropy(model(x), y).backward()
    return float(counter.get_total_flops())


def estimate_seconds(run: Run, ms_per_iteration: dict[str, float] | None = None) -> float:
    ms = (ms_per_iteration or {}).get(run.arch, PLAN_MS_PER_ITERATION[run.arch])
    evals = math.ceil(run.iterations / run.settings["eval_interval"])
    return SAFETY * (run.iterations * ms / 1000 + evals * EVAL_SECONDS)


def plan_text(ms_per_iteration=None) -> str:
    lines = [
        f"epoch budget: {EPOCHS} epochs = {iterations_for(EPOCHS)} iterations of {BATCH_SIZE} "
        f"({per_epoch()} per epoch on {TRAIN_SIZE} images); fast schedule: {FAST_EPOCHS} "
        f"epochs = {iterations_for(FAST_EPOCHS)} iterations",
        "ms/iteration used: "
        + ", ".join(
            f"{a} {(ms_per_iteration or {}).get(a, PLAN_MS_PER_ITERATION[a]):.1f}"
            + (" (measured)" if a in (ms_per_iteration or {}) else " (planning figure)")
            for a in ("resnet18", "vgg16", "mobilenetv2")
        ),
        f"{'batch':<14} {'runs':>4} {'estimate':>9}  runs",
    ]
    total = 0.0
    for name, runs in batches().items():
        seconds = START_SECONDS + sum(estimate_seconds(r, ms_per_iteration) for r in runs)
        total += seconds
        lines.append(
            f"{name:<14} {len(runs):>4} {seconds / 60:>7.1f} m  "
            + ", ".join(r.name for r in runs)
        )
    lines.append(f"{'total':<14} {len(all_runs()):>4} {total / 60:>7.1f} m")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------
# data and running


def fashion_mnist_32(root=None, train_size=None, val_size=VAL_SIZE, test_size=None):
    """Fashion-MNIST zero-padded by 2 pixels on each side to 32x32, normalised on the padded
    training images (the padding is background, as the 28x28 border already is)."""
    import torch.nn.functional as F

    from mdq_teach.nn import data as data_lib

    d = data_lib.load(DATASET, root, val_size, 0, train_size, test_size, augment=False)
    pad = (IMAGE_SIZE - d.image_size) // 2
    padded = {
        k: F.pad(getattr(d, k), (pad, pad, pad, pad))
        for k in ("train_x", "val_x", "test_x")
    }
    scaled = padded["train_x"].double() / 255
    mean = scaled.mean(dim=(0, 2, 3)).float()
    std = scaled.std(dim=(0, 2, 3)).float()
    return dataclasses.replace(d, **padded, mean=mean, std=std)


def trainer_takes_scheduler() -> bool:
    """Whether ``train`` accepts ``scheduler=`` (a callable optimizer -> torch lr scheduler)."""
    import inspect

    from mdq_teach.nn.trainer import train

    return "scheduler" in inspect.signature(train).parameters


def make_scheduler(run: Run):
    """The ``scheduler=`` argument of ``train`` for ``run``, or None for the config's own."""
    if run.scheduler is None:
        return None
    if run.scheduler != "onecycle":
        raise ValueError(f"scheduler must be None or 'onecycle', got {run.scheduler!r}")
    import torch

    def onecycle(optimizer):
        # No momentum cycling: it would need Adam's betas in the optimizer's defaults.
        return torch.optim.lr_scheduler.OneCycleLR(
            optimizer, max_lr=run.settings["lr"], total_steps=run.iterations,
            cycle_momentum=False,
        )  # fmt: skip

    return onecycle


def trainer_fields() -> set[str]:
    from mdq_teach.nn.trainer import TrainConfig

    return {f.name for f in dataclasses.fields(TrainConfig)}


def speed_settings(device: str, precision: str, channels_last: str) -> tuple[dict, list[str]]:
    """bf16 autocast and channels_last when the trainer offers them (fields ``amp`` and
    ``channels_last`` of ``TrainConfig``) and the device is a GPU; what was chosen and why."""
    fields, settings, notes = trainer_fields(), {}, []
    on_gpu = device.startswith("cuda")
    if precision == "bf16" or (precision == "auto" and on_gpu):
        if "amp" in fields:
            settings["amp"] = "bf16"
        elif precision == "bf16":
            raise ValueError("--precision bf16: this trainer has no 'amp' setting")
        else:
            notes.append("float32: the trainer has no 'amp' setting")
    if channels_last == "on" or (channels_last == "auto" and on_gpu):
        if "channels_last" in fields:
            settings["channels_last"] = True
        elif channels_last == "on":
            raise ValueError("--channels-last on: this trainer has no 'channels_last' setting")
        else:
            notes.append("contiguous layout: the trainer has no 'channels_last' setting")
    return settings, notes


def run_one(run: Run, data, *, device, results_dir, runs_dir, command, allow_cpu_record,
            speed=None, progress=False, protocol_extra=None) -> Path:  # fmt: skip
    """Train ``run`` with the trainer, then write its record; returns the record's path."""
    from mdq_teach.nn.trainer import train

    from . import results

    scheduler = make_scheduler(run)
    if scheduler is not None and not trainer_takes_scheduler():
        raise NotImplementedError(f"{run.name} needs train(..., scheduler=...)")
    out = Path(runs_dir) / run.name
    config = dict(
        dataset=data.name,
        arch=run.arch,
        method=run.method,
        levels=run.levels,
        **run.settings,
        **(speed or {}),
        device=device,
        out=str(out),
        progress=progress,
    )
    start = time.perf_counter()
    extra = {"scheduler": scheduler} if scheduler is not None else {}
    train(config, data=data, command=command, **extra)
    wall = time.perf_counter() - start
    protocol = {
        "epochs": run.epochs,
        "train_size": len(data.train_x),
        "val_size": len(data.val_x),
        "test_size": len(data.test_x),
        "image_size": data.image_size,
        "padded_from": 28 if data.name == DATASET else data.image_size,
        **(speed or {}),
        **(protocol_extra or {}),
    }
    record = results.record_from_run(
        out, run=run.name, command=command, wall_time_s=wall, protocol=protocol, device=device,
        tags=run.tags, notes=[*run.notes, f"batch {run.batch}"],
    )  # fmt: skip
    return results.write_record(record, results_dir, allow_cpu_record=allow_cpu_record)


def claim(folder: Path, name: str) -> bool:
    """Atomically claim run ``name`` in ``folder``: True for the one process that creates the
    claim file first (O_EXCL), False for every later one."""
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / name, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return False
    return True


def tiny(run: Run) -> Run:
    """A seconds-long CPU version of ``run`` for tests: smallconv, 6 iterations, same method."""
    settings = dict(run.settings, iterations=6, batch_size=16, eval_interval=3, log_interval=2,
                    bn_batches=2, lr_interval=4)  # fmt: skip
    if "beta_scale_interval" in settings:
        settings["beta_scale_interval"] = 2
    return dataclasses.replace(
        run, name=f"tiny-cpu-{run.name}", arch="smallconv", settings=settings, epochs=0.1,
        tags=(*run.tags, "tiny-cpu-test"),
    )  # fmt: skip


def main(argv=None) -> int:
    argv_given = argv is not None
    argv = sys.argv[1:] if argv is None else argv
    p = argparse.ArgumentParser(
        prog="python scripts/gpu_suite.py",
        description="Part III's GPU runs on Fashion-MNIST padded to 32x32, in batches that each "
        "fit a 10-minute call; each run writes book/results/<run>.json.",
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    sub.add_parser("list", help="every batch and run, with settings")
    plan = sub.add_parser("plan", help="time estimate of every batch")
    plan.add_argument("--results-dir", help="read measured speeds from these records too")
    plan.add_argument("--count-flops", action="store_true", help="count FLOPs per iteration")
    r = sub.add_parser("run", help="run one batch (or named runs)")
    which = r.add_mutually_exclusive_group(required=True)
    which.add_argument("--batch", nargs="+", choices=list(batches()),
                       help="the batch(es) to run, in order, under one deadline")
    which.add_argument("--only", nargs="+", metavar="RUN", help="these runs, by record name")
    r.add_argument("--device", default=None, help="default: cuda when available")
    r.add_argument("--results-dir", help="where records go (default book/results)")
    r.add_argument("--runs-dir", default="runs/gpu", help="trainer output folders")
    r.add_argument("--data-root", help="folder holding fashion-mnist/ (default: as fetch finds)")
    r.add_argument("--deadline-s", type=float, default=560.0,
                   help="skip a run that would end after this many seconds (default 560)")
    r.add_argument("--precision", choices=["auto", "fp32", "bf16"], default="auto")
    r.add_argument("--channels-last", choices=["auto", "on", "off"], default="auto")
    r.add_argument("--force", action="store_true", help="rerun runs that already have a record")
    r.add_argument("--progress", action="store_true", help="the trainer's progress bar")
    r.add_argument("--claim-dir",
                   help="share the runs with other processes given the same folder: each run is "
                   "taken by the first process to claim it there (several workers on one GPU)")
    r.add_argument("--tiny", action="store_true",
                   help="CPU test: seconds-long runs of smallconv on synthetic data, never in "
                   "book/results (needs --results-dir and --allow-cpu-record)")
    r.add_argument("--allow-cpu-record", action="store_true",
                   help="write records of non-GPU runs (tests only)")
    args = p.parse_args(argv)

    if args.cmd == "list":
        for name, runs in batches().items():
            print(f"[{name}]")
            for run in runs:
                print(f"  {run.name}: {json.dumps(run.settings, default=str)}")
        return 0
    if args.cmd == "plan":
        if args.count_flops:
            for arch in GFLOP_PER_ITERATION:
                print(f"{arch}: {count_flops(arch) / 1e9:.1f} GFLOP per iteration")
        print(plan_text(measured_ms_per_iteration(None, args.results_dir)))
        return 0
    if argv_given:
        command = "python -m mdq_teach.experiments.gpu_suite " + shlex.join(argv)
    else:  # the exact command line, interpreter and script path included
        command = shlex.join(sys.orig_argv)
    return _run(args, command)


def _run(args, command: str) -> int:
    import torch

    from mdq_teach.nn import data as data_lib

    from . import results

    by_name = {run.name: run for run in all_runs()}
    if args.only:
        unknown = [n for n in args.only if n not in by_name]
        if unknown:
            raise SystemExit(f"--only: unknown run(s) {unknown}; `list` shows the names")
        todo = [by_name[n] for n in args.only]
    else:
        todo = [run for name in dict.fromkeys(args.batch) for run in batches()[name]]
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    results_dir = Path(args.results_dir) if args.results_dir else results.RESULTS_DIR
    if not device.startswith("cuda") and not args.allow_cpu_record:
        raise SystemExit(
            f"device {device!r} is not a CUDA GPU: these runs are meant for a GPU and their "
            "records for book/results; pass --allow-cpu-record (tests) to run anyway"
        )
    if args.tiny:
        if args.results_dir is None:
            raise SystemExit("--tiny writes test records: give --results-dir (not book/results)")
        todo = [tiny(run) for run in todo]
        data = data_lib.load("synthetic")
    else:
        data = fashion_mnist_32(args.data_root)
    speed, speed_notes = speed_settings(device, args.precision, args.channels_last)
    if device.startswith("cuda"):
        # Fixed shapes throughout a run: let cuDNN pick its fastest kernels once.
        torch.backends.cudnn.benchmark = True
        speed_notes.append("cudnn.benchmark on")
    measured = measured_ms_per_iteration(None, results_dir)
    began = time.perf_counter()
    print(f"device {device}; {len(todo)} runs; settings {speed or 'float32, contiguous'}"
          + "".join(f"; {n}" for n in speed_notes), flush=True)  # fmt: skip
    done, skipped, failed = [], [], []
    for i, run in enumerate(todo, 1):
        paths = (results_dir / f"{run.name}.json", results.RESULTS_DIR / f"{run.name}.json")
        if any(p.exists() for p in paths) and not args.force:
            print(f"[{i}/{len(todo)}] {run.name}: record exists, skipped", flush=True)
            continue
        elapsed = time.perf_counter() - began
        needed = estimate_seconds(run, measured) if not args.tiny else 0.0
        if elapsed + needed > args.deadline_s:
            skipped.append(run.name)
            print(f"[{i}/{len(todo)}] {run.name}: needs ~{needed:.0f} s, {elapsed:.0f} s used of "
                  f"{args.deadline_s:.0f}: SKIPPED", flush=True)  # fmt: skip
            continue
        if run.scheduler is not None and not trainer_takes_scheduler():
            skipped.append(run.name)
            print(f"[{i}/{len(todo)}] {run.name}: this trainer takes no scheduler=: SKIPPED",
                  flush=True)  # fmt: skip
            continue
        if args.claim_dir is not None and not claim(Path(args.claim_dir), run.name):
            print(f"[{i}/{len(todo)}] {run.name}: claimed by another worker", flush=True)
            continue
        print(f"[{i}/{len(todo)}] {run.name}: {run.iterations} iterations, ~{needed:.0f} s",
              flush=True)  # fmt: skip
        t0 = time.perf_counter()
        try:
            written = run_one(
                run, data, device=device, results_dir=results_dir, runs_dir=args.runs_dir,
                command=command, allow_cpu_record=args.allow_cpu_record, speed=speed,
                progress=args.progress, protocol_extra={"speed_notes": speed_notes},
            )  # fmt: skip
        except (FloatingPointError, RuntimeError, ValueError) as e:
            # One diverging method must not cost the rest of the batch its GPU time.
            failed.append(run.name)
            print(f"[{i}/{len(todo)}] {run.name}: FAILED ({type(e).__name__}: {e})", flush=True)
            continue
        rec = results.read_record(written)
        seconds = time.perf_counter() - t0
        # Validations included: conservative for the next estimate, which adds them again.
        measured[run.arch] = 1000 * seconds / run.iterations
        done.append(run.name)
        print(f"[{i}/{len(todo)}] {run.name}: test {100 * rec['test_acc']:.2f}% (best val "
              f"{100 * rec['best_val_acc']:.2f}% at {rec['best_iteration']}), {seconds:.0f} s, "
              f"{rec['images_per_second']:.0f} img/s -> {written}", flush=True)  # fmt: skip
    print(f"done {len(done)}, skipped {len(skipped)}, failed {len(failed)} in "
          f"{time.perf_counter() - began:.0f} s")  # fmt: skip
    if skipped:
        print("finish with the same command, --batch ... replaced by: --only " + " ".join(skipped))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())

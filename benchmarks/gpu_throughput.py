"""Training throughput of every method against float, in one process, on the same model and data.

Each method trains the same architecture (same seed) on the same batches, Fashion-MNIST padded to
32x32 and held on the device, with the hyperparameters the GPU suite uses. One training step is the
forward pass, the loss, the backward pass and the optimizer's step; the loop syncs with the host
only at the end of a timed block, so the numbers are the cost of the step itself (the trainer adds
one host sync per step for its running loss, and validations). After ``--warmup`` untimed steps per
method, ``--rounds`` rounds each time ``--iterations`` steps of every method in turn (interleaving
spreads clock and thermal drift over all methods); the table gives the median round. The ratio to
float is images per second of the method over those of float in the same run: 1.0 is free
quantization, and issue 11 asks for >= 0.95 on ResNet-18.

bf16 autocast and channels_last are used when the trainer offers them (``amp`` and
``channels_last`` settings) and the device runs them, and channels_last only when the optimizer
keeps the parameters' memory format through a step (checked, not assumed).

On a CPU nothing is recorded unless asked: ``--record-cpu`` writes a CPU measurement, labelled as
one (``cpu-throughput-<arch>.json``, tag ``cpu-record``, ``cpu_record_allowed``), into
book/results (or ``--results-dir``), where the book's GPU tables leave it out and
``gpu_report.cpu_throughput_record`` finds it. ``--arch smallconv`` is the laptop chapter's model
on its 28x28 Fashion-MNIST images (the other architectures take the 32x32 padded images).

    python benchmarks/gpu_throughput.py                       # on a GPU: writes its record
    python benchmarks/gpu_throughput.py --device cpu --tiny   # seconds-long CPU check, no record
    OMP_NUM_THREADS=2 python benchmarks/gpu_throughput.py --device cpu --arch smallconv \
        --warmup 5 --iterations 20 --rounds 3 --record-cpu    # a CPU record, on purpose
"""

from __future__ import annotations

import argparse
import contextlib
import shlex
import statistics
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from mdq_teach.experiments import gpu_suite, results  # noqa: E402
from mdq_teach.nn import METHODS, make_optimizer  # noqa: E402
from mdq_teach.nn import data as data_lib  # noqa: E402
from mdq_teach.nn.models import get_model  # noqa: E402

_OPTIMIZER_KEYS = ("lr", "base", "beta_init", "beta_scale", "beta_scale_interval", "beta_max",
                   "quantizer", "pq_reg", "pq_lambda", "weight_decay")  # fmt: skip


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build(arch: str, method: str, data, device, channels_last: bool, levels=(-1.0, 1.0)):
    """Model and optimizer as the suite's run of (arch, method) would build them."""
    torch.manual_seed(0)
    kwargs = {"size": data.image_size} if arch == "smallconv" else {}
    model = get_model(arch, data.num_classes, data.in_channels, method != "float", **kwargs)
    model = model.to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    # ResNet-18's values for every arch: the paper tunes few methods on the others.
    settings = gpu_suite.grid_run("resnet18", method).settings
    options = {k: settings[k] for k in _OPTIMIZER_KEYS if k in settings}
    if options.get("base") == "sgd":
        options["momentum"] = settings.get("momentum", 0.9)
    opt = make_optimizer(model.parameters(), method, levels=levels, **options)
    return model, opt


def train_step(model, opt, x, y, precision: str, device) -> torch.Tensor:
    model.train()
    autocast = (
        torch.autocast(device.type, dtype=torch.bfloat16)
        if precision == "bf16"
        else contextlib.nullcontext()
    )
    with autocast:
        loss = F.cross_entropy(model(x), y)
    opt.zero_grad(set_to_none=True)
    loss.backward()
    opt.step()
    return loss


def trainer_offers(setting: str) -> bool:
    return setting in gpu_suite.trainer_fields()


def choose_precision(choice: str, device) -> tuple[str, str]:
    if choice == "fp32":
        return "fp32", "asked for"
    bf16_ok = device.type == "cuda" and torch.cuda.is_bf16_supported()
    if choice == "bf16":
        if not bf16_ok:
            raise SystemExit(f"--precision bf16: device {device} does not run bf16 autocast")
        return "bf16", "asked for"
    if not trainer_offers("amp"):
        return "fp32", "the trainer has no 'amp' setting"
    if not bf16_ok:
        return "fp32", "the device does not run bf16"
    return "bf16", "the trainer offers it and the device runs it"


def keeps_channels_last(arch, data, device) -> bool:
    """One step of a quantized method on a channels_last model: are 4-D parameters still
    channels_last afterwards (the optimizer wrote in place) and finite?"""
    model, opt = build(arch, "md-tanh-s", data, device, channels_last=True)
    x, y = next(data_lib.BatchStream(data, 4, seed=0))
    train_step(model, opt, x.contiguous(memory_format=torch.channels_last), y, "fp32", device)
    params = [p for p in model.parameters() if p.dim() == 4]
    return all(p.is_contiguous(memory_format=torch.channels_last) for p in params) and all(
        bool(p.isfinite().all()) for p in model.parameters()
    )


def choose_channels_last(choice: str, arch, data, device) -> tuple[bool, str]:
    if choice == "off":
        return False, "asked for"
    if choice == "auto" and device.type != "cuda":
        return False, "not on a GPU"
    if choice == "auto" and not trainer_offers("channels_last"):
        return False, "the trainer has no 'channels_last' setting"
    if not keeps_channels_last(arch, data, device):
        if choice == "on":
            raise SystemExit("--channels-last on: the optimizer does not keep the memory format")
        return False, "the optimizer does not keep the memory format through a step"
    return True, "the trainer offers it and the optimizer keeps the memory format"


def measure(arch, methods, data, device, batch, warmup, iterations, rounds, precision, cl):
    stream = data_lib.BatchStream(data, batch, seed=0)
    memory = torch.channels_last if cl else torch.contiguous_format
    # The same batches for every method: drawn once, kept on the device.
    batches = []
    for _ in range(max(warmup, iterations)):
        x, y = next(stream)
        batches.append((x.contiguous(memory_format=memory), y))
    built = {m: build(arch, m, data, device, cl) for m in methods}
    for model, opt in built.values():
        for x, y in batches[:warmup]:
            train_step(model, opt, x, y, precision, device)
        _sync(device)
    times = {m: [] for m in methods}
    for _ in range(rounds):
        for m, (model, opt) in built.items():
            _sync(device)
            start = time.perf_counter()
            for x, y in batches[:iterations]:
                loss = train_step(model, opt, x, y, precision, device)
            _sync(device)
            times[m].append((time.perf_counter() - start) / iterations)
            if not bool(torch.isfinite(loss)):
                raise FloatingPointError(f"{m}: loss is {loss.item()} in the benchmark")
    rows = []
    for m in methods:
        seconds = statistics.median(times[m])
        rows.append({"method": m, "ms_per_iteration": 1000 * seconds,
                     "images_per_second": batch / seconds})  # fmt: skip
    ref = next(r for r in rows if r["method"] == "float")["images_per_second"]
    for row in rows:
        row["ratio_to_float"] = row["images_per_second"] / ref
    return rows


def table(rows, target=0.95) -> str:
    lines = [f"{'method':<14} {'ms/iter':>8} {'images/s':>10} {'x float':>8}"]
    for r in rows:
        flag = "" if r["ratio_to_float"] >= target or r["method"] == "float" else "  < target"
        lines.append(
            f"{r['method']:<14} {r['ms_per_iteration']:>8.2f} "
            f"{r['images_per_second']:>10.0f} {r['ratio_to_float']:>8.3f}{flag}"
        )
    return "\n".join(lines)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default=None, help="default: cuda when available")
    p.add_argument("--arch", default="resnet18",
                   choices=("resnet18", "vgg16", "mobilenetv2", "smallconv"))  # fmt: skip
    p.add_argument("--methods", nargs="+", default=list(METHODS))
    p.add_argument("--batch", type=int, default=gpu_suite.BATCH_SIZE)
    p.add_argument("--warmup", type=int, default=15, help="untimed steps per method")
    p.add_argument("--iterations", type=int, default=40, help="timed steps per method and round")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--precision", choices=("auto", "fp32", "bf16"), default="auto")
    p.add_argument("--channels-last", choices=("auto", "on", "off"), default="auto")
    p.add_argument("--data-root", help="folder holding fashion-mnist/")
    p.add_argument("--results-dir", help="where the record goes (default book/results; on a "
                   "CPU only when given, and only outside book/results)")  # fmt: skip
    p.add_argument("--tiny", action="store_true",
                   help="CPU check: smallconv on synthetic data, a few steps, labelled")
    p.add_argument("--record-cpu", action="store_true",
                   help="on a CPU: write the measurement as a labelled CPU record "
                   "(cpu-throughput-<arch>.json) into book/results or --results-dir")
    args = p.parse_args(argv)
    for name in ("batch", "warmup", "iterations", "rounds"):
        if getattr(args, name) < 1:
            raise SystemExit(f"--{name} must be >= 1, got {getattr(args, name)}")
    unknown = [m for m in args.methods if m not in METHODS]
    if unknown:
        raise SystemExit(f"--methods: unknown {unknown}; choose from {METHODS}")
    methods = ["float"] + [m for m in args.methods if m != "float"]
    device = torch.device(args.device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if args.record_cpu and device.type == "cuda":
        raise SystemExit("--record-cpu: the device is a GPU, whose record is written anyway")
    if args.record_cpu and args.tiny:
        raise SystemExit("--record-cpu: a --tiny check is not a measurement; drop one of them")
    began = time.perf_counter()
    if args.tiny:
        arch, data = "smallconv", data_lib.load("synthetic")
        args.batch, args.warmup, args.iterations, args.rounds = 8, 1, 2, 1
    elif args.arch == "smallconv":  # the laptop chapter's model on its 28x28 images
        arch, data = "smallconv", data_lib.load("fashion-mnist", args.data_root, augment=False)
    else:
        arch, data = args.arch, gpu_suite.fashion_mnist_32(args.data_root)
    data = data.to(device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # as the suite's runs: fixed shapes
    precision, why_p = choose_precision(args.precision, device)
    cl, why_cl = choose_channels_last(args.channels_last, arch, data, device)
    rows = measure(arch, methods, data, device, args.batch, args.warmup, args.iterations,
                   args.rounds, precision, cl)  # fmt: skip
    where = results.environment(device)
    print(f"{arch}, batch {args.batch}, {data.name} {data.image_size}x{data.image_size}, "
          f"{where['device_name']}, torch {where['torch']}, precision {precision} ({why_p}), "
          f"channels_last {cl} ({why_cl}), median of {args.rounds} rounds of "
          f"{args.iterations} steps"
          + (" [TINY CPU CHECK, not a measurement]" if args.tiny else ""))
    print(table(rows))
    if device.type != "cuda" and args.results_dir is None and not args.record_cpu:
        print("no record written: not a GPU run (--record-cpu writes a labelled CPU record)")
        return 0
    command = shlex.join(sys.orig_argv) if argv is None else shlex.join(
        ["python", "benchmarks/gpu_throughput.py", *argv])  # fmt: skip
    cpu_record = args.record_cpu and device.type != "cuda"
    name = (f"cpu-throughput-{arch}" if cpu_record
            else f"gpu-throughput-{arch}" + ("-tiny-cpu-test" if args.tiny else ""))  # fmt: skip
    notes = [f"precision: {why_p}", f"channels_last: {why_cl}",
             "step = forward, loss, backward, optimizer step; one host sync per timed block"]
    if cpu_record:
        notes.append(f"a CPU measurement ({torch.get_num_threads()} threads), recorded on "
                     "purpose (--record-cpu): not a GPU run")  # fmt: skip
    record = results.base_record(
        "throughput", name, command, time.perf_counter() - began, device,
        tags=["throughput"] + (["tiny-cpu-test"] if args.tiny else [])
        + ([results.CPU_RECORD_TAG] if cpu_record else []),
        notes=notes,
    )  # fmt: skip
    record["setup"] = {
        "arch": arch, "dataset": data.name, "image_size": data.image_size,
        "batch_size": args.batch, "warmup": args.warmup, "iterations": args.iterations,
        "rounds": args.rounds, "precision": precision, "channels_last": cl,
    }  # fmt: skip
    if device.type != "cuda":
        record["setup"]["threads"] = torch.get_num_threads()
    record["rows"] = rows
    path = results.write_record(record, args.results_dir, allow_cpu_record=cpu_record)
    print(f"record: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

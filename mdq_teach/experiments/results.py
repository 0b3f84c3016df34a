"""Run records: the JSON files in ``book/results/`` that the GPU chapter is built from.

A *record* is one finished run (``kind: "train"``) or one throughput measurement
(``kind: "throughput"``), written by the run itself, never by hand. It holds where the run happened
(device, torch and CUDA versions, git commit and whether the tree had uncommitted changes), how it
was launched (the exact command line), what it cost (wall time, images per second) and what it
reached (learning curves, the rounded network's validation and test accuracy), with the protocol
that makes it comparable (dataset, split sizes, epochs, iterations, arch, method, levels, preset,
seed). Records are strict JSON: no NaN or infinity (an infinite hyperparameter such as an uncapped
``beta_max`` is written as the string ``"inf"``).

The book only shows GPU runs. ``write_record`` therefore refuses to put a record whose device is
not a CUDA GPU into ``book/results/``; tests pass ``allow_cpu_record=True`` (and write into a
temporary folder anyway), and such a record carries ``"cpu_record_allowed": true`` so that readers
can tell it apart. One kind of CPU record is kept there on purpose: a measurement made on a CPU
and labelled as one (``allow_cpu_record=True`` and the tag ``"cpu-record"``, written by
``benchmarks/gpu_throughput.py --record-cpu``); :func:`load_records` leaves it out of the GPU
records without calling it skipped, and hands it over with ``include_cpu=True``. ``read_record``
validates a file against the schema and names the first field that is wrong.

This module builds on the trainer's public outputs only: :func:`record_from_run` reads the
``result.json`` and ``metrics.jsonl`` that :func:`mdq_teach.nn.trainer.train` wrote in its ``out``
folder, so changes inside the training loop do not reach it.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import platform
import re
import subprocess
from pathlib import Path

SCHEMA = "mdq-teach/run-record"
SCHEMA_VERSION = 1
KINDS = ("train", "throughput")
ROOT = Path(__file__).resolve().parents[2]
RESULTS_DIR = ROOT / "book" / "results"
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class RecordError(ValueError):
    """A record that does not follow the schema; the message names the field."""


# ---------------------------------------------------------------------------------------------
# the environment of a run


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.lower().startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown CPU"


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout if out.returncode == 0 else None


def git_state() -> dict:
    """``{"git_commit", "git_dirty", "git_source"}`` of the package's checkout.

    ``$MDQ_GIT_COMMIT`` and ``$MDQ_GIT_DIRTY`` (``0``/``1``), where set, say what was sent to a
    machine that received a copy of the working tree, and take precedence over its ``.git``.
    """
    env_commit = os.environ.get("MDQ_GIT_COMMIT")
    # Said explicitly by whoever sent the tree: a device machine's copy may carry a .git whose
    # HEAD is not the commit that was sent (seen: main's HEAD at the session's start, with the
    # sent commit's changes as uncommitted edits).
    if env_commit:
        flag = os.environ.get("MDQ_GIT_DIRTY")
        dirty = None if flag is None else flag.strip() not in ("", "0", "false", "no")
        return {"git_commit": env_commit.strip(), "git_dirty": dirty, "git_source": "env"}
    commit = _git("rev-parse", "HEAD")
    if commit:
        status = _git("status", "--porcelain", "--untracked-files=no")
        dirty = None if status is None else bool(status.strip())
        return {"git_commit": commit.strip(), "git_dirty": dirty, "git_source": "git"}
    return {"git_commit": None, "git_dirty": None, "git_source": None}


def environment(device) -> dict:
    """Device kind and name, torch/CUDA/cuDNN/Python versions, platform and git state."""
    import torch

    device = torch.device(device)
    if device.type == "cuda":
        name = torch.cuda.get_device_name(device)
        cudnn = torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None
    else:
        name, cudnn = _cpu_model(), None
    return {
        "device_kind": device.type,
        "device_name": name,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "cudnn": cudnn,
        "python": platform.python_version(),
        "platform": platform.platform(),
        **git_state(),
    }


# ---------------------------------------------------------------------------------------------
# building a record from what the trainer wrote


def _strict(obj, where: str = "record"):
    """A copy of ``obj`` that ``json.dumps(..., allow_nan=False)`` accepts.

    Infinite floats become ``"inf"``/``"-inf"`` (uncapped schedules are legitimately infinite);
    NaN is an error, never written, so that a broken run cannot pass as a number.
    """
    if isinstance(obj, bool) or obj is None or isinstance(obj, int | str):
        return obj
    if isinstance(obj, float):
        if math.isnan(obj):
            raise RecordError(f"{where} is NaN; a record never holds NaN")
        if math.isinf(obj):
            return "inf" if obj > 0 else "-inf"
        return obj
    if isinstance(obj, dict):
        return {str(k): _strict(v, f"{where}.{k}") for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [_strict(v, f"{where}[{i}]") for i, v in enumerate(obj)]
    if hasattr(obj, "item"):  # numpy or torch scalar
        return _strict(obj.item(), where)
    return str(obj)


def read_metrics(path: Path) -> list[dict]:
    """The records of a ``metrics.jsonl`` file, one JSON object a line."""
    records = []
    for n, line in enumerate(Path(path).read_text().splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as e:
                raise RecordError(f"{path}:{n} is not JSON: {e}") from None
    return records


def curves_from_metrics(metrics: list[dict]) -> dict:
    """Learning curves from trainer metrics: training loss and rounded validation accuracy."""
    train = [
        {k: m[k] for k in ("iteration", "loss", "acc", "lr", "beta") if k in m}
        for m in metrics
        if m.get("kind") == "train"
    ]
    val = [
        {k: m[k] for k in ("iteration", "val_acc", "val_loss", "val_acc_soft", "beta") if k in m}
        for m in metrics
        if m.get("kind") == "eval"
    ]
    return {"train": train, "val": val}


def record_from_run(
    out,
    *,
    run: str,
    command: str,
    wall_time_s: float,
    protocol: dict,
    device=None,
    tags=(),
    notes=(),
) -> dict:
    """The record of a finished run of :func:`mdq_teach.nn.trainer.train` that wrote into ``out``.

    ``wall_time_s`` is the time the caller measured around the run (the trainer's own value covers
    only its last resumption). ``protocol`` adds what the trainer's files do not hold (epochs, split
    sizes, image size); the hyperparameters, method, arch and levels come from ``result.json``.
    Images per second count training images (iterations x batch size) over the whole wall time,
    evaluation and data upload included.
    """
    out = Path(out)
    result_path, metrics_path = out / "result.json", out / "metrics.jsonl"
    if not result_path.exists():
        raise RecordError(f"{result_path} is missing: the run did not finish")
    result = json.loads(result_path.read_text())
    if not result.get("finished") or result.get("test_acc") is None:
        raise RecordError(f"{result_path}: the run stopped before the end (no test accuracy)")
    metrics = read_metrics(metrics_path) if metrics_path.exists() else []
    hyper = result.get("hyperparameters", {})
    if device is None:
        device = result.get("device", "cpu")
    iterations = int(result["iterations_done"])
    batch = int(hyper.get("batch_size", protocol.get("batch_size", 0)))
    full_protocol = {
        "dataset": result["dataset"],
        "arch": result["arch"],
        "method": result["method"],
        "levels": list(result["levels"]),
        "preset": hyper.get("preset"),
        "seed": hyper.get("seed"),
        "iterations": iterations,
        "batch_size": batch,
        "eval_interval": hyper.get("eval_interval"),
        **protocol,
        "hyperparameters": hyper,
    }
    record = {
        **base_record("train", run, command, wall_time_s, device, tags, notes),
        "images_per_second": iterations * batch / float(wall_time_s),
        "images_per_second_basis": "training images / wall time, evaluation included",
        "protocol": full_protocol,
        "curves": curves_from_metrics(metrics),
        "best_val_acc": result["best_val_acc"],
        "best_iteration": result["best_iteration"],
        "test_acc": result["test_acc"],
    }
    record = _strict(record)
    validate_record(record)
    return record


def base_record(kind: str, run: str, command: str, wall_time_s: float, device, tags=(),
                notes=()) -> dict:  # fmt: skip
    """The fields every record shares; a throughput record adds ``setup`` and ``rows``."""
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "kind": kind,
        "run": run,
        "created_utc": _dt.datetime.now(_dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "environment": environment(device),
        "command": command,
        "wall_time_s": float(wall_time_s),
        "tags": list(tags),
        "notes": list(notes),
    }


# ---------------------------------------------------------------------------------------------
# schema


def _fail(where: str, what: str, value) -> None:
    shown = repr(value)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise RecordError(f"{where} must be {what}, got {shown}")


def _num(rec: dict, key: str, where: str, lo=None, hi=None, integer=False, optional=False):
    value = rec.get(key, None)
    path = f"{where}.{key}"
    if value is None and optional:
        return
    if key not in rec and not optional:
        raise RecordError(f"{path} is missing")
    is_num = isinstance(value, int | float) and not isinstance(value, bool)
    what = "an integer" if integer else "a finite number"
    if lo is not None and hi is not None:
        what += f" in [{lo}, {hi}]"
    elif lo is not None:
        what += f" >= {lo}"
    if not is_num or (integer and not isinstance(value, int)) or not math.isfinite(value):
        _fail(path, what, value)
    if (lo is not None and value < lo) or (hi is not None and value > hi):
        _fail(path, what, value)


def _str(rec: dict, key: str, where: str, optional=False, choices=None):
    path = f"{where}.{key}"
    if key not in rec:
        if optional:
            return
        raise RecordError(f"{path} is missing")
    value = rec[key]
    if value is None and optional:
        return
    if not isinstance(value, str) or not value:
        _fail(path, "a non-empty string", value)
    if choices is not None and value not in choices:
        _fail(path, f"one of {choices}", value)


def _dict(rec: dict, key: str, where: str) -> dict:
    if key not in rec:
        raise RecordError(f"{where}.{key} is missing")
    if not isinstance(rec[key], dict):
        _fail(f"{where}.{key}", "an object", rec[key])
    return rec[key]


def _list(rec: dict, key: str, where: str) -> list:
    if key not in rec:
        raise RecordError(f"{where}.{key} is missing")
    if not isinstance(rec[key], list):
        _fail(f"{where}.{key}", "a list", rec[key])
    return rec[key]


def validate_record(rec, where: str = "record") -> None:
    """Raise :class:`RecordError` naming the first field of ``rec`` that breaks the schema."""
    if not isinstance(rec, dict):
        _fail(where, "a JSON object", rec)
    if rec.get("schema") != SCHEMA:
        _fail(f"{where}.schema", repr(SCHEMA), rec.get("schema"))
    if rec.get("schema_version") != SCHEMA_VERSION:
        _fail(f"{where}.schema_version", str(SCHEMA_VERSION), rec.get("schema_version"))
    _str(rec, "kind", where, choices=KINDS)
    _str(rec, "run", where)
    if not _NAME.match(rec["run"]):
        _fail(f"{where}.run", "letters, digits, '.', '_' or '-' (at most 128)", rec["run"])
    _str(rec, "created_utc", where)
    _str(rec, "command", where)
    env = _dict(rec, "environment", where)
    for key in ("device_kind", "device_name", "torch", "python"):
        _str(env, key, f"{where}.environment")
    for key in ("cuda", "git_commit", "git_source"):
        _str(env, key, f"{where}.environment", optional=True)
    if env.get("device_kind") == "cuda" and not env.get("cuda"):
        raise RecordError(f"{where}.environment.cuda is missing for a CUDA device")
    if "git_dirty" not in env or not isinstance(env["git_dirty"], bool | None):
        _fail(f"{where}.environment.git_dirty", "true, false or null", env.get("git_dirty"))
    _num(rec, "wall_time_s", where, lo=0)
    if "cpu_record_allowed" in rec and not isinstance(rec["cpu_record_allowed"], bool):
        _fail(f"{where}.cpu_record_allowed", "true or false", rec["cpu_record_allowed"])
    for key in ("tags", "notes"):
        for i, item in enumerate(_list(rec, key, where)):
            if not isinstance(item, str):
                _fail(f"{where}.{key}[{i}]", "a string", item)
    if rec["kind"] == "train":
        _validate_train(rec, where)
    else:
        _validate_throughput(rec, where)


def _validate_train(rec: dict, where: str) -> None:
    _num(rec, "images_per_second", where, lo=0)
    _str(rec, "images_per_second_basis", where)
    p = _dict(rec, "protocol", where)
    pw = f"{where}.protocol"
    for key in ("dataset", "arch", "method"):
        _str(p, key, pw)
    _str(p, "preset", pw, optional=True)
    levels = _list(p, "levels", pw)
    if len(levels) < 2 or not all(isinstance(v, int | float) for v in levels):
        _fail(f"{pw}.levels", "a list of at least two numbers", levels)
    for key in ("iterations", "batch_size", "train_size", "val_size", "test_size", "image_size"):
        _num(p, key, pw, lo=1, integer=True)
    _num(p, "seed", pw, lo=0, integer=True)
    _num(p, "epochs", pw, lo=0)
    _dict(p, "hyperparameters", pw)
    curves = _dict(rec, "curves", where)
    for name, keys in (("train", ("iteration", "loss")), ("val", ("iteration", "val_acc"))):
        points = _list(curves, name, f"{where}.curves")
        if not points:
            raise RecordError(f"{where}.curves.{name} is empty")
        last = 0
        for i, point in enumerate(points):
            pt = f"{where}.curves.{name}[{i}]"
            if not isinstance(point, dict):
                _fail(pt, "an object", point)
            _num(point, "iteration", pt, lo=last + 1, integer=True)
            last = point["iteration"]
            if "loss" in keys:
                _num(point, "loss", pt, lo=0)
            else:
                _num(point, "val_acc", pt, lo=0, hi=1)
    _num(rec, "best_val_acc", where, lo=0, hi=1)
    _num(rec, "best_iteration", where, lo=1, integer=True)
    _num(rec, "test_acc", where, lo=0, hi=1)


def _validate_throughput(rec: dict, where: str) -> None:
    setup = _dict(rec, "setup", where)
    sw = f"{where}.setup"
    for key in ("arch", "dataset", "precision"):
        _str(setup, key, sw)
    if not isinstance(setup.get("channels_last"), bool):
        _fail(f"{sw}.channels_last", "true or false", setup.get("channels_last"))
    for key in ("batch_size", "warmup", "iterations", "rounds"):
        _num(setup, key, sw, lo=1, integer=True)
    rows = _list(rec, "rows", where)
    if not rows:
        raise RecordError(f"{where}.rows is empty")
    methods = []
    for i, row in enumerate(rows):
        rw = f"{where}.rows[{i}]"
        if not isinstance(row, dict):
            _fail(rw, "an object", row)
        _str(row, "method", rw)
        methods.append(row["method"])
        _num(row, "images_per_second", rw, lo=0)
        _num(row, "ms_per_iteration", rw, lo=0)
        _num(row, "ratio_to_float", rw, lo=0)
    if "float" not in methods:
        raise RecordError(f"{where}.rows has no 'float' row to take ratios against")


# ---------------------------------------------------------------------------------------------
# files


def _inside(path: Path, folder: Path) -> bool:
    path, folder = Path(os.path.realpath(path)), Path(os.path.realpath(folder))
    return path == folder or folder in path.parents


def write_record(record: dict, folder=None, *, allow_cpu_record: bool = False) -> Path:
    """Validate ``record`` and write it atomically as ``<folder>/<run>.json`` (strict JSON).

    ``folder`` defaults to ``book/results/``. A record whose device is not a CUDA GPU is refused
    there unless ``allow_cpu_record`` is given, and is then labelled ``"cpu_record_allowed"``.
    """
    folder = RESULTS_DIR if folder is None else Path(folder)
    record = _strict(record)
    kind = record.get("environment", {}).get("device_kind") if isinstance(record, dict) else None
    if _inside(folder, RESULTS_DIR) and kind != "cuda":
        if not allow_cpu_record:
            raise RecordError(
                f"refusing to write a record of a {kind!r} run into {RESULTS_DIR}: the book "
                "shows GPU runs only (device_kind 'cuda'); write elsewhere, or pass "
                "allow_cpu_record=True (--allow-cpu-record) for a test"
            )
        record["cpu_record_allowed"] = True
    validate_record(record)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{record['run']}.json"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(record, indent=1, allow_nan=False) + "\n")
    os.replace(tmp, path)
    return path


def _no_constants(name: str):
    raise ValueError(f"{name} is not strict JSON")


def read_record(path) -> dict:
    """Load and validate one record; errors name the file and the field."""
    path = Path(path)
    try:
        record = json.loads(path.read_text(), parse_constant=_no_constants)
    except (json.JSONDecodeError, ValueError) as e:
        raise RecordError(f"{path}: not strict JSON ({e})") from None
    try:
        validate_record(record)
    except RecordError as e:
        raise RecordError(f"{path}: {e}") from None
    return record


CPU_RECORD_TAG = "cpu-record"  # a CPU measurement kept in book/results on purpose


def is_cpu_record(record: dict) -> bool:
    """Whether ``record`` is a CPU measurement kept on purpose (see the module docstring): not a
    CUDA run, written with ``allow_cpu_record=True``, tagged ``"cpu-record"``, not a test's."""
    tags = record.get("tags", [])
    return (
        record["environment"]["device_kind"] != "cuda"
        and record.get("cpu_record_allowed") is True
        and CPU_RECORD_TAG in tags
        and "tiny-cpu-test" not in tags
    )


def load_records(folder=None, *, include_cpu: bool = False) -> tuple[list[dict], list[str]]:
    """Every valid record in ``folder`` (default ``book/results/``), and one line per file skipped.

    Records that did not run on a CUDA GPU are skipped (and said so): the book never shows them
    as GPU runs. A CPU record kept on purpose (:func:`is_cpu_record`) is no error: it is left out
    without a line, or returned among the records with ``include_cpu=True`` (its
    ``environment.device_kind`` says what it is).
    """
    folder = RESULTS_DIR if folder is None else Path(folder)
    records, skipped = [], []
    if not folder.is_dir():
        return records, skipped
    for path in sorted(folder.glob("*.json")):
        try:
            record = read_record(path)
        except RecordError as e:
            skipped.append(str(e))
            continue
        if is_cpu_record(record):
            if include_cpu:
                records.append(record)
            continue
        if record["environment"]["device_kind"] != "cuda" or record.get("cpu_record_allowed"):
            skipped.append(f"{path}: not a GPU run (device {record['environment']['device_kind']})")
            continue
        records.append(record)
    return records, skipped


def main(argv=None) -> int:
    """``python -m mdq_teach.experiments.results [FILES or FOLDERS]``: validate records.

    One line each."""
    import argparse

    prog = "python -m mdq_teach.experiments.results"
    p = argparse.ArgumentParser(prog=prog, description=main.__doc__)
    p.add_argument("paths", nargs="*", default=[str(RESULTS_DIR)])
    args = p.parse_args(argv)
    bad = 0
    files = []
    for arg in args.paths:
        path = Path(arg)
        files += sorted(path.glob("*.json")) if path.is_dir() else [path]
    for path in files:
        try:
            rec = read_record(path)
        except RecordError as e:
            bad += 1
            print(f"INVALID {e}")
            continue
        env = rec["environment"]
        what = (f"test {100 * rec['test_acc']:.2f}%" if rec["kind"] == "train"
                else f"{len(rec['rows'])} methods")  # fmt: skip
        print(f"ok {path.name}: {rec['kind']}, {env['device_kind']} ({env['device_name']}), "
              f"commit {(env['git_commit'] or 'unknown')[:10]}, {what}")
    print(f"{len(files) - bad} valid, {bad} invalid")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The bad-input sweep of the torch part: the trainer's command line, checkpoints, data files,
exported networks and the optimizer's rounding (``benchmarks/bad_input_sweep.py`` prints its
table).

Each case damages one thing (a file, a flag, a gradient) in a tiny run on synthetic data or a
stand-in Fashion-MNIST written here, and is answered in one of four ways:

* ``clear error``: the command line exits with a one-line message (no traceback), the library
  raises ValueError or TypeError, and the message names the file or argument at fault;
* ``unclear``: an error that does not name it;
* ``traceback``: any other exception (the command line prints a traceback);
* ``silent``: no error at all, so a wrong result goes unnoticed.

tests/test_train_cli.py runs every case and wants ``clear error`` with the case's exit status.
"""

from __future__ import annotations

import contextlib
import gzip
import io
import math
import os
import warnings
from pathlib import Path

import numpy as np

VERDICTS = ("clear error", "unclear", "traceback", "silent")
FASHION_NAMES = ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                 "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")  # fmt: skip
RUN = ["--dataset", "synthetic", "--arch", "smallconv", "--iterations", "2", "--batch-size", "16",
       "--eval-interval", "2", "--bn-batches", "1", "--device", "cpu", "--no-progress"]  # fmt: skip
FASHION = ["--dataset", "fashion-mnist", "--arch", "smallconv", "--iterations", "1",
           "--batch-size", "8", "--val-size", "8", "--eval-interval", "1", "--bn-batches", "1",
           "--device", "cpu", "--no-progress"]  # fmt: skip


def write_fashion(folder: Path, n_train: int = 40, n_test: int = 8) -> Path:
    """Four gzipped IDX files in Fashion-MNIST's layout, random pixels and labels."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    shapes = ((n_train, 28, 28), (n_train,), (n_test, 28, 28), (n_test,))
    for name, shape in zip(FASHION_NAMES, shapes, strict=True):
        header = bytes([0, 0, 8, len(shape)]) + np.asarray(shape, ">u4").tobytes()
        pixels = rng.integers(0, 10 if len(shape) == 1 else 256, shape, dtype=np.uint8)
        (folder / name).write_bytes(gzip.compress(header + pixels.tobytes()))
    return folder


@contextlib.contextmanager
def _patched(obj, name: str, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


@contextlib.contextmanager
def _environment(tmp: Path):
    """A stand-in Debian Fashion-MNIST and an empty data root: no case reads or downloads real
    data, and none can start a long run on data that happens to be installed."""
    from mdq_teach import fetch

    debian = write_fashion(tmp / "debian-fashion")
    old, cwd = os.environ.get("MDQ_DATA"), os.getcwd()
    os.environ["MDQ_DATA"] = str(tmp / "empty-data-root")
    os.chdir(tmp)  # a default --out (runs/...) lands here, not in the caller's folder
    try:
        with _patched(fetch, "DEBIAN_FASHION_DIR", debian):
            yield
    finally:
        os.chdir(cwd)
        if old is None:
            os.environ.pop("MDQ_DATA", None)
        else:
            os.environ["MDQ_DATA"] = old


def _cli(argv):
    from mdq_teach.nn.trainer import main

    return lambda: main(argv)


def _stopped_run(tmp: Path) -> Path:
    """A run stopped after iteration 1 of 2 (checkpoint.pt, metrics.jsonl, result.json)."""
    out = tmp / "run"
    _quiet(_cli(RUN + ["--out", str(out), "--stop-after", "1"]))
    return out


def _quiet(call):
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        return call()


def _edit_checkpoint(tmp: Path, edit) -> list[str]:
    import torch

    out = _stopped_run(tmp)
    path = out / "checkpoint.pt"
    ckpt = torch.load(path, weights_only=True)
    edit(ckpt)
    torch.save(ckpt, path)
    return RUN + ["--out", str(out), "--resume"]


def _damage_checkpoint(tmp: Path, damage, name: str = "checkpoint.pt") -> list[str]:
    if name == "checkpoint.pt":
        out, more = _stopped_run(tmp), []
    else:
        out, more = _finished_run_with_best(tmp), ["--iterations", "4"]
    path = out / name
    path.write_bytes(damage(path.read_bytes()))
    return RUN + more + ["--out", str(out), "--resume"]


def _finished_run_with_best(tmp: Path) -> Path:
    """A run of 4 iterations stopped after 3, with a best.pt from iteration 2."""
    out = tmp / "run"
    _quiet(_cli(RUN + ["--out", str(out), "--iterations", "4", "--stop-after", "3"]))
    return out


def _wrong_shape(ckpt) -> None:
    name = next(iter(ckpt["model"]))
    ckpt["model"][name] = ckpt["model"][name][:1]


def _export_file(tmp: Path) -> Path:
    import torch

    from mdq_teach.nn import export
    from mdq_teach.nn.models import get_model

    torch.manual_seed(0)
    model = get_model("smallconv", 10, 1, True, size=28)
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.where(p >= 0, 1.0, -1.0))
    path = tmp / "net.npz"
    export.save(model, path, (-1.0, 1.0), arch="smallconv", num_classes=10, in_channels=1, size=28)
    return path


def _truncated_export(tmp: Path):
    from mdq_teach.nn import export

    path = _export_file(tmp)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])
    return lambda: export.load(path)


def _random_export(tmp: Path):
    from mdq_teach.nn import export

    path = tmp / "net.npz"
    path.write_bytes(np.random.default_rng(0).bytes(4096))
    return lambda: export.load(path)


def _export_into_another_network(tmp: Path):
    from mdq_teach.nn import export
    from mdq_teach.nn.models import get_model

    path = _export_file(tmp)
    return lambda: export.load(path, get_model("smallconv", 10, 3, True, size=32))


def _nan_then_round(tmp: Path):
    import torch

    from mdq_teach.nn import make_optimizer

    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 3))
    opt = make_optimizer(list(net.named_parameters()), "bc")
    net(torch.ones(2, 4)).sum().backward()
    net[0].weight.grad.fill_(math.nan)
    opt.step()
    return opt.round_


def _unsorted_levels(tmp: Path):
    import torch

    from mdq_teach.nn import make_optimizer

    return lambda: make_optimizer(torch.nn.Linear(2, 2).parameters(), "bc", levels=(1.0, -1.0))


def _truncated_gz(tmp: Path, damage) -> list[str]:
    root = tmp / "root"
    folder = write_fashion(root / "fashion-mnist")
    path = folder / FASHION_NAMES[0]
    path.write_bytes(damage(path.read_bytes()))
    return FASHION + ["--data-root", str(root), "--out", str(tmp / "run")]


def _half(raw: bytes) -> bytes:
    return raw[: len(raw) // 2]


def _random(raw: bytes) -> bytes:
    return np.random.default_rng(0).bytes(len(raw))


def _random_keyerror(raw: bytes) -> bytes:
    """Random bytes that torch's weights-only unpickler trips over with ``KeyError: 252``."""
    return np.random.default_rng(62).bytes(2000)


def cases():
    """(area, label, interface, expected text, exit status, make): ``make(tmp)`` prepares the
    case in the empty folder ``tmp`` and returns the call to judge (argv for the command line)."""
    proc_out = "/proc/mdq-teach-sweep"
    return [
        ("trainer", "--out holding a run, no --resume", "cli", "already holds a run", 2,
         lambda tmp: (_stopped_run(tmp), RUN + ["--out", str(tmp / "run")])[1]),
        ("trainer", "--out in /proc", "cli", proc_out, 2,
         lambda tmp: RUN + ["--out", proc_out]),
        ("trainer", "--export in /proc", "cli", proc_out, 2,
         lambda tmp: RUN + ["--out", str(tmp / "run"), "--export", proc_out + "/net.npz"]),
        ("trainer", "--lr 1e30 with float", "cli", "lr", 2,
         lambda tmp: RUN + ["--method", "float", "--lr", "1e30", "--out", str(tmp / "run")]),
        ("trainer", "no --dataset", "cli", "--dataset", 2, lambda tmp: ["--no-progress"]),
        ("checkpoint", "random bytes", "cli", "checkpoint.pt", 2,
         lambda tmp: _damage_checkpoint(tmp, _random)),
        ("checkpoint", "random bytes (KeyError)", "cli", "checkpoint.pt", 2,
         lambda tmp: _damage_checkpoint(tmp, _random_keyerror)),
        ("checkpoint", "truncated", "cli", "checkpoint.pt", 2,
         lambda tmp: _damage_checkpoint(tmp, _half)),
        ("checkpoint", "missing 'config'", "cli", "checkpoint.pt", 2,
         lambda tmp: _edit_checkpoint(tmp, lambda c: c.pop("config"))),
        ("checkpoint", "wrong tensor shape", "cli", "checkpoint.pt", 2,
         lambda tmp: _edit_checkpoint(tmp, _wrong_shape)),
        ("checkpoint", "iteration of the wrong type", "cli", "checkpoint.pt", 2,
         lambda tmp: _edit_checkpoint(tmp, lambda c: c.update(iteration="1"))),
        ("checkpoint", "window of the wrong type", "cli", "checkpoint.pt", 2,
         lambda tmp: _edit_checkpoint(tmp, lambda c: c["window"].update(loss="x"))),
        ("checkpoint", "iteration 10**6 (crafted)", "cli", "checkpoint.pt", 2,
         lambda tmp: _edit_checkpoint(tmp, lambda c: c.update(iteration=10**6))),
        ("checkpoint", "best.pt random bytes", "cli", "best.pt", 2,
         lambda tmp: _damage_checkpoint(tmp, _random, "best.pt")),
        ("data", "truncated .gz", "cli", FASHION_NAMES[0], 2,
         lambda tmp: _truncated_gz(tmp, _half)),
        ("data", ".gz that is not gzip", "cli", FASHION_NAMES[0], 2,
         lambda tmp: _truncated_gz(tmp, _random)),
        ("data", "--data-root without the data", "cli", "nonexistent", 1,
         lambda tmp: FASHION + ["--data-root", str(tmp / "nonexistent"),
                                "--out", str(tmp / "run")]),
        ("export", "truncated .npz", "lib", "net.npz", None, _truncated_export),
        ("export", "random bytes", "lib", "net.npz", None, _random_export),
        ("export", "another network's file", "lib", "net.npz", None,
         _export_into_another_network),
        ("optimizer", "round_() after a NaN gradient", "lib", "0.weight", None, _nan_then_round),
        ("optimizer", "unsorted levels", "lib", "levels", None, _unsorted_levels),
    ]  # fmt: skip


def judge(tmp: Path, interface: str, expect: str, make) -> tuple[str, str, int | None]:
    """(verdict, what came back, exit status) of one case, prepared in the empty folder ``tmp``."""
    with _environment(tmp), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        made = make(tmp)
        call = _cli(made) if interface == "cli" else made
        err = io.StringIO()
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
                call()
        except SystemExit as exit_info:
            text = err.getvalue().strip()
            last = text.splitlines()[-1] if text else ""
            if "Traceback" in text:
                return "traceback", last, exit_info.code
            named = bool(exit_info.code) and expect in last
            return ("clear error" if named else "unclear"), last, exit_info.code
        except (ValueError, TypeError) as error:
            message = f"{type(error).__name__}: {error}"
            if interface == "cli":
                return "traceback", message, None
            return ("clear error" if expect in str(error) else "unclear"), message, None
        except Exception as error:  # noqa: BLE001 - any other exception is what is counted
            return "traceback", f"{type(error).__name__}: {error}", None
    return "silent", "no error", 0


def run_all(tmp_root: Path) -> list[tuple[str, str, str, str, int | None]]:
    """(area, label, verdict, message, exit status) of every case, each in its own folder."""
    rows = []
    for i, (area, label, interface, expect, _, make) in enumerate(cases()):
        tmp = tmp_root / f"case{i}"
        tmp.mkdir(parents=True)
        verdict, message, code = judge(tmp, interface, expect, make)
        rows.append((area, label, verdict, message, code))
    return rows

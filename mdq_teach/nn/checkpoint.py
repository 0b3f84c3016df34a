"""Reading a training checkpoint back: weights-only loading and the checks that a file is one.

A checkpoint is read with ``torch.load(weights_only=True)``, so a file holding anything other than
tensors and plain values is refused unread, never executed. What does load is then checked for the
trainer's layout (a dict with every key :func:`check_layout` lists, a config dict, an integer
iteration inside the run), so a foreign, damaged or crafted file is a :class:`CheckpointError`
naming the file and the problem instead of a ``KeyError`` deep in the resume, or a
``result.json`` that claims iterations that never ran.
"""

from __future__ import annotations

import numbers
import pickle
from pathlib import Path

import torch

# What the trainer writes into checkpoint.pt (mdq_teach.nn.trainer, checkpoint()).
KEYS = ("model", "optimizer", "scheduler", "rng", "iteration", "window", "best", "config")
# Errors a state_dict or RNG state of the wrong shape or type raises while being loaded.
LOAD_ERRORS = (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError)


class CheckpointError(ValueError):
    """A checkpoint that this trainer did not write (or that is damaged) was refused."""


def load_checkpoint(path: Path, map_location="cpu"):
    """``torch.load(path, weights_only=True)``: tensors and plain values only. Anything else (a
    pickle that would run code, a foreign file) raises :class:`CheckpointError`; nothing runs."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        if "Unsupported global" not in str(err):  # bytes no pickler wrote: damaged, not hostile
            raise _unreadable(path, err) from None
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise CheckpointError(
            f"{path} holds objects other than tensors and plain values and was refused unread "
            f"(loading it could run code); checkpoints of mdq_teach before weights-only loading "
            f"pickled numpy state and cannot be resumed: start the run again ({first})"
        ) from None
    except (OSError, EOFError, *LOAD_ERRORS) as err:
        # Random or truncated bytes surface as whatever the unpickler tripped over (KeyError: 6).
        raise _unreadable(path, err) from None


def _unreadable(path: Path, err: BaseException) -> CheckpointError:
    return CheckpointError(
        f"{path} could not be read as a checkpoint ({type(err).__name__}: {_first(err)}); "
        "it is damaged or not a checkpoint: delete it or point --out elsewhere"
    )


def check_layout(ckpt, path: Path) -> None:
    """Refuse a loaded ``ckpt`` that does not have the trainer's layout."""
    if not isinstance(ckpt, dict):
        raise CheckpointError(
            f"{path} holds a {type(ckpt).__name__}, not a checkpoint of mdq_teach.nn.trainer"
        )
    missing = [k for k in KEYS if k not in ckpt]
    if missing:
        raise CheckpointError(
            f"{path} lacks {', '.join(missing)}: not a checkpoint of mdq_teach.nn.trainer, or a "
            "damaged one"
        )
    for key in ("config", "best", "window", "rng", "model", "optimizer", "scheduler"):
        if not isinstance(ckpt[key], dict):
            raise CheckpointError(
                f"{path}: {key!r} is a {type(ckpt[key]).__name__}, not a dict: damaged checkpoint"
            )


def check_iteration(ckpt, path: Path, iterations: int) -> int:
    """The checkpoint's iteration, an integer in [0, ``iterations``] that agrees with the
    optimizer's own step count (a crafted or damaged value would make the record claim
    iterations that never ran)."""
    it = ckpt["iteration"]
    if not isinstance(it, numbers.Integral) or isinstance(it, bool) or not 0 <= it <= iterations:
        raise CheckpointError(
            f"{path}: iteration must be an integer in [0, iterations={iterations}], got {it!r}; "
            "a checkpoint further on than the run resumes with more iterations"
        )
    quant = ckpt["optimizer"].get("quant")
    step = quant.get("step") if isinstance(quant, dict) else None
    if step is not None and step != it:
        raise CheckpointError(
            f"{path}: iteration is {it} but the optimizer's state has made {step} steps: "
            "a damaged or edited checkpoint"
        )
    return int(it)


def _first(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0][:200] if text else "no message"

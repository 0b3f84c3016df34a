"""A rounded network in one small file: quantized weights packed at 1 or 2 bits, the rest float32.

``save(model, path, levels)`` writes every parameter as level indices, all parameters in one
stream packed ``8 // bits`` to a byte (1 bit for two levels, 2 bits for three or four), and every
other tensor (BatchNorm running statistics, a float network's weights) as it is, into
an uncompressed numpy ``.npz`` with a JSON header. ``load(path)`` rebuilds the network (or fills a
given one) and predicts exactly as the saved network did: levels are stored as float64 and
converted to the model's dtype, so a decoded weight is bit-identical to the rounded one. Loading
uses ``np.load(allow_pickle=False)``: the file holds arrays only and never runs code.
``sizes(path)`` compares the file with the same tensors stored as float32.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from pathlib import Path

import numpy as np
import torch

FORMAT = "mdq-teach-packed/1"


def bits_for(num_levels: int) -> int:
    """Bits per weight for ``num_levels`` levels: 1, 2, 4 or 8 (a divisor of 8, so that codes
    never straddle a byte)."""
    for bits in (1, 2, 4, 8):
        if num_levels <= 1 << bits:
            return bits
    raise ValueError(f"levels: at most 256 levels can be packed, got {num_levels}")


def pack(codes: np.ndarray, bits: int) -> np.ndarray:
    """Codes in ``[0, 2**bits)`` packed ``8 // bits`` to a byte, first code in the lowest bits."""
    if bits not in (1, 2, 4, 8):
        raise ValueError(f"bits must be 1, 2, 4 or 8, got {bits!r}")
    codes = np.asarray(codes, dtype=np.uint8).reshape(-1)
    if codes.size and int(codes.max()) >= 1 << bits:
        raise ValueError(f"codes must be < 2**bits = {1 << bits}, got {int(codes.max())}")
    per = 8 // bits
    padded = np.zeros(-(-codes.size // per) * per, dtype=np.uint8)
    padded[: codes.size] = codes
    shifts = (np.arange(per, dtype=np.uint8) * bits)[None, :]
    return np.bitwise_or.reduce(padded.reshape(-1, per) << shifts, axis=1).astype(np.uint8)


def unpack(packed: np.ndarray, bits: int, count: int) -> np.ndarray:
    """The first ``count`` codes of :func:`pack`'s output."""
    per = 8 // bits
    if packed.size * per < count:
        raise ValueError(f"{packed.size} bytes hold fewer than {count} codes of {bits} bits")
    shifts = (np.arange(per, dtype=np.uint8) * bits)[None, :]
    codes = (packed.reshape(-1, 1) >> shifts) & np.uint8((1 << bits) - 1)
    return codes.reshape(-1)[:count]


def save(model: torch.nn.Module, path, levels=None, **model_spec) -> Path:
    """Write ``model`` to ``path`` (an ``.npz``), its parameters packed when they hold levels only.

    ``levels``: the quantization levels (None: store everything as float, e.g. a float network).
    Every parameter must then hold levels only (round first: ``optimizer.round_()``, or take the
    trainer's best rounded network); a parameter that does not is refused, naming it.
    ``model_spec`` (``arch``, ``num_classes``, ``in_channels``, ``size``...) is recorded so that
    :func:`load` can rebuild the network with :func:`mdq_teach.nn.models.get_model`.
    """
    path = Path(path)
    params = {name for name, _ in model.named_parameters()}
    arrays, quantized, streams, offset = {}, {}, [], 0
    meta = {"format": FORMAT, "levels": None, "bits": None, "model": model_spec,
            "quantized_model": levels is not None}  # fmt: skip
    if levels is not None:
        level_values = torch.tensor([float(v) for v in levels], dtype=torch.float64)
        if len(level_values) < 2 or not bool((level_values.diff() > 0).all()):
            raise ValueError(f"levels must be increasing, at least two, got {levels!r}")
        bits = bits_for(len(level_values))
        meta.update(levels=level_values.tolist(), bits=bits)
    for name, tensor in model.state_dict().items():
        value = tensor.detach().cpu()
        if levels is not None and name in params:
            match = value.double().reshape(-1, 1) == level_values.reshape(1, -1)
            hit = match.any(dim=1)
            if not bool(hit.all()):
                bad = value.reshape(-1)[~hit][0].item()
                raise ValueError(
                    f"parameter {name!r} holds {bad!r}, not one of the levels {tuple(levels)}: "
                    "export a rounded network (optimizer.round_() or the trainer's best model)"
                )
            streams.append(match.to(torch.uint8).argmax(dim=1).numpy())
            quantized[name] = {"shape": list(value.shape), "dtype": str(value.dtype),
                               "offset": offset}  # fmt: skip
            offset += value.numel()
        else:
            arrays[f"f/{name}"] = value.numpy()
    if streams:  # one array for all codes: a zip entry costs a few hundred bytes of headers
        arrays["q"] = pack(np.concatenate(streams), bits)
    meta["quantized"] = quantized
    arrays["meta"] = np.frombuffer(json.dumps(meta).encode(), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp.npz")
    np.savez(tmp, **arrays)
    os.replace(tmp, path)
    return path


def _read(path) -> tuple[dict, dict[str, np.ndarray]]:
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except ValueError as err:
        if "pickle" in str(err):  # an object array needs pickle: refused, nothing runs
            raise ValueError(
                f"{path} is not a packed network (holds pickled objects): {err}"
            ) from None
        raise _damaged(path, err) from None
    except (OSError, EOFError, zipfile.BadZipFile, zlib.error) as err:  # truncated, not a zip
        raise _damaged(path, err) from None
    if "meta" not in arrays:
        raise ValueError(f"{path} is not a packed network: no header")
    try:
        meta = json.loads(arrays.pop("meta").tobytes().decode())
    except (UnicodeDecodeError, ValueError) as err:
        raise _damaged(path, err) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        found = meta.get("format") if isinstance(meta, dict) else meta
        raise ValueError(f"{path} has format {found!r}, expected {FORMAT!r}")
    return meta, arrays


def _damaged(path, err: BaseException) -> ValueError:
    return ValueError(
        f"{path} is damaged or not a packed network ({type(err).__name__}: {err}); write it "
        "again with mdq_teach.nn.export.save or the trainer's --export"
    )


def state_dict(path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path``, quantized parameters decoded to their levels."""
    meta, arrays = _read(path)
    try:
        return _decode(meta, arrays)
    except (KeyError, TypeError, ValueError, IndexError, AttributeError, RuntimeError) as err:
        raise _damaged(path, err) from None


def _decode(meta: dict, arrays: dict[str, np.ndarray]) -> dict[str, torch.Tensor]:
    levels = None if meta["levels"] is None else torch.tensor(meta["levels"], dtype=torch.float64)
    out = {name: torch.from_numpy(a.copy()) for key, a in arrays.items()
           if key.startswith("f/") for name in [key[2:]]}  # fmt: skip
    specs = meta["quantized"]
    total = sum(int(np.prod(q["shape"], dtype=np.int64)) for q in specs.values())
    codes = torch.from_numpy(unpack(arrays.get("q", np.zeros(0, np.uint8)), meta["bits"] or 8,
                                    total).astype(np.int64))  # fmt: skip
    for name, spec in specs.items():
        count = int(np.prod(spec["shape"], dtype=np.int64))
        part = codes[spec["offset"] : spec["offset"] + count]
        dtype = getattr(torch, spec["dtype"].removeprefix("torch."))
        out[name] = levels[part].to(dtype).reshape(spec["shape"])
    return out


def load(path, model: torch.nn.Module | None = None) -> torch.nn.Module:
    """The network stored in ``path``: ``model`` filled with it, or one rebuilt from the recorded
    architecture. Returned in eval mode."""
    meta, _ = _read(path)
    if model is None:
        from .models import get_model

        spec = dict(meta["model"])
        if "arch" not in spec:
            raise ValueError(f"{path} records no architecture: pass the model to fill")
        model = get_model(spec.pop("arch"), quantized=meta["quantized_model"], **spec)
    weights = state_dict(path)
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:  # another network's file: missing keys, size mismatch
        first = str(err).strip().splitlines()
        raise ValueError(
            f"{path} does not fit this model ({' '.join(first[:2])[:300]})"
        ) from None
    return model.eval()


def sizes(path) -> dict:
    """Bytes of the file at ``path`` next to the bytes of the same tensors in float32.

    ``float32_bytes`` is 4 bytes for every stored value (parameters and buffers), the raw size of
    a float32 copy; ``ratio`` is ``float32_bytes / file_bytes``.
    """
    meta, arrays = _read(path)
    values = sum(int(np.prod(q["shape"], dtype=np.int64)) for q in meta["quantized"].values())
    values += sum(a.size for k, a in arrays.items() if k.startswith("f/"))
    file_bytes = os.path.getsize(path)
    float32 = 4 * values
    return {
        "file_bytes": file_bytes,
        "float32_bytes": float32,
        "ratio": float32 / file_bytes,
        "bits": meta["bits"],
        "packed_values": values - sum(a.size for k, a in arrays.items() if k.startswith("f/")),
        "float_values": sum(a.size for k, a in arrays.items() if k.startswith("f/")),
    }

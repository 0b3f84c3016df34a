"""Image data sets as uint8 tensors, the validation split, batches and augmentation on the device.

The reproduction protocol (docs/design.md §4, the paper's Table 6): CIFAR-10/100 training
images are split 45k/5k into training and validation (Fashion-MNIST 55k/5k), inputs are normalised
per channel with the training portion's mean and standard deviation, and CIFAR training batches get
a random 32x32 crop of the image padded by 4 zero pixels and a random horizontal flip.

Everything stays a tensor: the whole (small) data set lives on the training device as uint8, a
batch is an index into it, and augmentation is one batched gather, so there is no per-sample Python
loop and no torchvision. Batch ``i`` of a run is a pure function of ``(seed, i)``: that is what lets
a run resume from a checkpoint to exactly the result of an uninterrupted run.
"""

from __future__ import annotations

import gzip
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import torch

from mdq_teach import fetch

DATASETS = ("fashion-mnist", "cifar10", "cifar100", "synthetic")
NUM_CLASSES = {"fashion-mnist": 10, "cifar10": 10, "cifar100": 100, "synthetic": 10}
VAL_SIZE = {"fashion-mnist": 5000, "cifar10": 5000, "cifar100": 5000, "synthetic": 128}
PAD = 4


@dataclass
class ImageData:
    """A data set split three ways, images as uint8 ``[N, C, H, W]`` and labels as int64 ``[N]``."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    mean: torch.Tensor  # per channel, of train_x / 255
    std: torch.Tensor
    augment: bool  # random crop (pad 4) + horizontal flip on training batches
    source: str | None = None  # the folder the images were read from (None: generated)

    @property
    def in_channels(self) -> int:
        return self.train_x.shape[1]

    @property
    def image_size(self) -> int:
        return self.train_x.shape[-1]

    def to(self, device) -> ImageData:
        """The same data with every tensor on ``device`` (the whole set fits: CIFAR is 150 MB)."""
        moved = {
            k: getattr(self, k).to(device)
            for k in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y", "mean", "std")
        }
        return replace(self, **moved)


def _read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file (the MNIST format): a magic number giving type and rank, then big-endian
    dimensions, then the raw uint8 data."""
    try:
        with gzip.open(path, "rb") as f:
            raw = f.read()
    except (EOFError, OSError, zlib.error) as err:  # truncated or not gzip at all
        raise ValueError(
            f"{path} is damaged ({type(err).__name__}: {err}); delete it and run "
            "`python -m mdq_teach.fetch fashion-mnist` again"
        ) from None
    if len(raw) < 4 or raw[0:2] != b"\0\0" or raw[2] != 0x08:
        raise ValueError(f"{path} is not an unsigned-byte IDX file")
    rank = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=rank, offset=4).astype(int)
    data = np.frombuffer(raw, dtype=np.uint8, offset=4 + 4 * rank).copy()
    if data.size != int(np.prod(dims)):
        raise ValueError(f"{path}: header says {tuple(dims)} but holds {data.size} bytes")
    return data.reshape(tuple(dims))


def load_fashion_mnist(root=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Fashion-MNIST as ``{"train": (x, y), "test": (x, y)}``, x uint8 ``[N, 1, 28, 28]``."""
    folder = fetch.find_fashion_mnist(root)
    if folder is None:
        looked = " and ".join(str(f) for f in fetch.fashion_mnist_candidates(root))
        raise fetch.DatasetNotFoundError(
            f"Fashion-MNIST not found in {looked}; run "
            f"`{fetch.fetch_command('fashion-mnist', root)}`"
        )
    out = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        x = _read_idx(folder / f"{prefix}-images-idx3-ubyte.gz")
        y = _read_idx(folder / f"{prefix}-labels-idx1-ubyte.gz")
        out[split] = (x[:, None], y.astype(np.int64))
    return out


def read_cifar_binary(path: Path, label_bytes: int) -> tuple[np.ndarray, np.ndarray]:
    """One file of the CIFAR binary format: records of ``label_bytes`` label bytes (the last one is
    the label used: CIFAR-100's fine label) followed by 3072 image bytes. Parsed with numpy only,
    so a crafted file can at worst be refused, never run code."""
    record = label_bytes + 3 * 32 * 32
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0 or raw.size % record:
        raise ValueError(
            f"{path} holds {raw.size} bytes, not a positive multiple of the {record}-byte CIFAR "
            "binary record; delete the folder and run `python -m mdq_teach.fetch` again"
        )
    rows = raw.reshape(-1, record)
    return rows[:, label_bytes:].reshape(-1, 3, 32, 32).copy(), rows[:, label_bytes - 1].astype(
        np.int64
    )


def load_cifar(name: str, root=None) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """CIFAR-10 or CIFAR-100 from the extracted official binary archive, x uint8 ``[N, 3, 32, 32]``.

    Every record is a label byte (CIFAR-100: coarse, then fine) and 3072 image bytes: the red,
    green, then blue 32x32 plane. Nothing is unpickled (see :func:`read_cifar_binary`).
    """
    spec = fetch.CIFAR[name]
    folder = fetch.data_root(root) / spec["folder"]
    if not all((folder / f).is_file() for f in spec["files"]):
        raise fetch.DatasetNotFoundError(
            f"{name} not found in {folder}; run `{fetch.fetch_command(name, root)}`"
        )
    out = {}
    for split in ("train", "test"):
        parts = [read_cifar_binary(folder / n, spec["label_bytes"]) for n in spec[split]]
        x, y = (np.concatenate(a) for a in zip(*parts, strict=True))
        classes = NUM_CLASSES[name]
        if y.max() >= classes:
            raise ValueError(f"{folder}: a {split} label is {y.max()}, expected < {classes}")
        out[split] = (x, y)
    return out


def synthetic(num_train=512, num_val=128, num_test=128, num_classes=10, seed=0, shape=(3, 32, 32)):
    """Random CIFAR-shaped images whose label is learnable: each class adds its own fixed random
    pattern to uniform noise. For smoke runs and tests, no download."""
    g = torch.Generator().manual_seed(seed)
    patterns = torch.randn((num_classes, *shape), generator=g)
    out = {}
    for split, n in (("train", num_train + num_val), ("test", num_test)):
        y = torch.randint(num_classes, (n,), generator=g)
        x = 128 + 40 * patterns[y] + 30 * torch.randn((n, *shape), generator=g)
        out[split] = (x.clamp(0, 255).round().to(torch.uint8).numpy(), y.numpy())
    return out


def load(
    name: str,
    root=None,
    val_size: int | None = None,
    split_seed: int = 0,
    train_size: int | None = None,
    test_size: int | None = None,
    augment: bool | None = None,
) -> ImageData:
    """Load ``name`` (one of ``DATASETS``), split off the validation set, compute normalisation.

    The validation set is ``val_size`` images (default 5000; the protocol's 45k/5k on CIFAR) drawn
    at random from the official training set with ``split_seed``; it is independent of the training
    seed so that runs with different seeds are validated on the same images. ``train_size`` and
    ``test_size`` keep only that many images (a seeded random subset), for quick CPU runs.
    ``augment`` defaults to True for CIFAR and synthetic data, False for Fashion-MNIST.
    """
    if name not in DATASETS:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    if name == "fashion-mnist":
        raw = load_fashion_mnist(root)
        source = fetch.find_fashion_mnist(root)
    elif name == "synthetic":
        raw, source = synthetic(), None
    else:
        raw = load_cifar(name, root)
        source = fetch.data_root(root) / fetch.CIFAR[name]["folder"]
    x, y = (torch.from_numpy(np.ascontiguousarray(a)) for a in raw["train"])
    tx, ty = (torch.from_numpy(np.ascontiguousarray(a)) for a in raw["test"])
    val_size = VAL_SIZE[name] if val_size is None else val_size
    if not 0 < val_size < len(x):
        raise ValueError(f"val_size must be in (0, {len(x)}), got {val_size}")
    g = torch.Generator().manual_seed(split_seed)
    perm = torch.randperm(len(x), generator=g)
    val_idx, train_idx = perm[:val_size], perm[val_size:]
    for arg, size, limit in (
        ("train_size", train_size, len(train_idx)),
        ("test_size", test_size, len(tx)),
    ):
        if size is not None and not 0 < size <= limit:
            raise ValueError(f"{arg} must be in (0, {limit}], got {size}")
    if train_size is not None:
        train_idx = train_idx[:train_size]
    if test_size is not None:
        keep = torch.randperm(len(tx), generator=g)[:test_size]
        tx, ty = tx[keep], ty[keep]
    train_x = x[train_idx]
    scaled = train_x.double() / 255
    mean = scaled.mean(dim=(0, 2, 3)).float()
    std = scaled.std(dim=(0, 2, 3)).float()
    return ImageData(
        name=name,
        train_x=train_x,
        train_y=y[train_idx],
        val_x=x[val_idx],
        val_y=y[val_idx],
        test_x=tx,
        test_y=ty,
        num_classes=NUM_CLASSES[name],
        mean=mean,
        std=std,
        augment=name != "fashion-mnist" if augment is None else augment,
        source=None if source is None else str(Path(source).resolve()),
    )


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 or [0, 1] float images to zero-mean, unit-variance channels."""
    if x.dtype == torch.uint8:
        x = x.float() / 255
    return (x - mean[:, None, None]) / std[:, None, None]


def random_crop_flip(
    x: torch.Tensor,
    rng: np.random.Generator,
    pad: int = PAD,
    total: int | None = None,
    part: slice = slice(None),
) -> torch.Tensor:
    """Random ``HxW`` crop of ``x`` zero-padded by ``pad`` pixels, then a random horizontal flip.

    ``x`` is a float batch ``[B, C, H, W]`` on any device; the random offsets come from the numpy
    ``rng`` on the CPU (so a batch is the same on every device) and the crop is a single gather.
    Zero padding before normalisation is torchvision's ``RandomCrop(32, padding=4)``. With
    ``total`` and ``part``, ``x`` is the rows ``part`` of a batch of ``total`` images and gets
    exactly the draws those rows get in the whole batch (one process's shard of a global batch).
    """
    b, _, h, w = x.shape
    total = b if total is None else total
    offsets = torch.from_numpy(rng.integers(0, 2 * pad + 1, (2, total))[:, part]).to(x.device)
    flip = torch.from_numpy((rng.random(total) < 0.5)[part]).to(x.device)
    if len(flip) != b:
        raise ValueError(f"part {part} of a batch of {total} does not hold {b} images")
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = offsets[0, :, None] + torch.arange(h, device=x.device)  # [B, H]
    cols = offsets[1, :, None] + torch.arange(w, device=x.device)  # [B, W]
    cols = torch.where(flip[:, None], cols.flip(1), cols)
    batch = torch.arange(b, device=x.device)[:, None, None]
    # Advanced indices separated by a slice put their broadcast dims first: [B, H, W, C].
    return padded[batch, :, rows[:, :, None], cols[:, None, :]].permute(0, 3, 1, 2).contiguous()


class BatchStream:
    """Training batches for iterations ``start, start + 1, ...``, a pure function of the seed.

    Iteration ``i`` belongs to epoch ``i // per_epoch``, whose order is a permutation drawn by a
    generator seeded by ``(seed, epoch)``; the last incomplete batch of an epoch is dropped so every
    batch has ``batch_size`` images. Augmentation noise for iteration ``i`` has its own generator.
    Resuming at iteration ``i`` therefore reproduces exactly the batches of an uninterrupted run.

    With ``world`` processes, ``batch_size`` is per process: global batch ``i`` has
    ``batch_size * world`` images and process ``rank`` takes its contiguous ``rank``-th shard,
    augmented exactly as in the global batch. The union over ranks is the batch of one process
    with ``batch_size * world``.
    """

    def __init__(
        self,
        data: ImageData,
        batch_size: int,
        seed: int,
        start: int = 0,
        rank: int = 0,
        world: int = 1,
    ):
        n = len(data.train_x)
        if not 0 <= rank < world:
            raise ValueError(f"rank must be in [0, world={world}), got {rank}")
        if not 0 < batch_size * world <= n:
            raise ValueError(
                f"batch_size must be in (0, {n // world}] (with {world} process(es) and {n} "
                f"training images), got {batch_size}"
            )
        if start < 0 or seed < 0:
            raise ValueError(f"start and seed must be >= 0, got start={start}, seed={seed}")
        self.data, self.seed, self.iteration = data, seed, start
        self.rank, self.world, self.local = rank, world, batch_size
        self.batch_size = batch_size * world  # the global batch
        self.per_epoch = n // self.batch_size
        self._epoch, self._order = -1, None

    def _rng(self, stream: int, index: int) -> np.random.Generator:
        # numpy's SeedSequence hashes the whole tuple, so (seed, stream, index) never collide;
        # torch's CPU generator would keep only 32 bits of a combined seed.
        return np.random.default_rng([self.seed, stream, index])

    def indices(self, iteration: int) -> torch.Tensor:
        epoch, k = divmod(iteration, self.per_epoch)
        if epoch != self._epoch:
            n = len(self.data.train_x)
            self._order = torch.from_numpy(self._rng(0, epoch).permutation(n))
            self._epoch = epoch
        return self._order[k * self.batch_size : (k + 1) * self.batch_size]

    def __iter__(self) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        return self

    def __next__(self) -> tuple[torch.Tensor, torch.Tensor]:
        d = self.data
        part = slice(self.rank * self.local, (self.rank + 1) * self.local)
        idx = self.indices(self.iteration)[part].to(d.train_x.device)
        x = d.train_x[idx].float() / 255
        if d.augment:
            rng = self._rng(1, self.iteration)
            x = random_crop_flip(x, rng, total=self.batch_size, part=part)
        self.iteration += 1
        return normalize(x, d.mean, d.std), d.train_y[idx]


def eval_batches(data: ImageData, split: str, batch_size: int = 500):
    """Normalised, unaugmented batches of the ``"val"`` or ``"test"`` split, in order."""
    if split not in ("val", "test"):
        raise ValueError(f"split must be 'val' or 'test', got {split!r}")
    x, y = getattr(data, f"{split}_x"), getattr(data, f"{split}_y")
    for i in range(0, len(x), batch_size):
        yield normalize(x[i : i + batch_size], data.mean, data.std), y[i : i + batch_size]

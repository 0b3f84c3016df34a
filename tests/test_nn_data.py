"""mdq_teach.nn.data: the official formats, the split, normalisation, augmentation, batches."""

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from test_fetch import md5, write_cifar_archive, write_fashion

from mdq_teach import fetch
from mdq_teach.nn import data


@pytest.fixture
def fashion_dir(monkeypatch, tmp_path):
    folder = tmp_path / "fashion"
    arrays = write_fashion(folder, n_train=40, n_test=12)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", folder)
    return arrays


def test_fashion_idx_parsing(fashion_dir):
    raw = data.load_fashion_mnist()
    x, y = raw["train"]
    assert x.dtype == np.uint8 and x.shape == (40, 1, 28, 28)
    assert np.array_equal(x[:, 0], fashion_dir["train-images-idx3-ubyte.gz"])
    assert np.array_equal(y, fashion_dir["train-labels-idx1-ubyte.gz"])
    assert np.array_equal(raw["test"][0][:, 0], fashion_dir["t10k-images-idx3-ubyte.gz"])


def test_idx_rejects_a_wrong_header(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x00\x00\x0d\x01\x00\x00\x00\x01x"))
    with pytest.raises(ValueError, match="IDX"):
        data._read_idx(tmp_path / "bad.gz")


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_from_an_official_format_archive(monkeypatch, tmp_path, name):
    archive = tmp_path / fetch.CIFAR[name]["archive"]
    batches = write_cifar_archive(archive, name, per_batch=6)
    monkeypatch.setitem(fetch.CIFAR, name, dict(fetch.CIFAR[name], md5=md5(archive)))
    fetch.cifar(tmp_path, name, download=False)
    raw = data.load_cifar(name, tmp_path)
    x, y = raw["train"]
    assert x.shape == (30, 3, 32, 32) and x.dtype == np.uint8
    first = "data_batch_1.bin" if name == "cifar10" else "train.bin"
    row, labels = batches[first][0][1], batches[first][1]
    # Row layout: the red plane (1024 bytes, row-major 32x32), then green, then blue.
    for c in range(3):
        for r, k in ((0, 0), (5, 31), (31, 7)):
            assert x[1, c, r, k] == row[c * 1024 + r * 32 + k]
    assert y[1] == labels[1]  # CIFAR-100: the fine label, the second label byte
    assert np.array_equal(raw["test"][1], batches[fetch.CIFAR[name]["test"][0]][1])
    d = data.load(name, tmp_path, val_size=5)
    assert (len(d.train_x), len(d.val_x), len(d.test_x)) == (25, 5, 6)
    assert d.num_classes == (10 if name == "cifar10" else 100) and d.augment


class _RunsCode:
    """Unpickling this calls ``Path.touch(marker)``: the proof that a loader ran code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (Path(self.marker),))


def test_crafted_cifar_files_run_no_code(monkeypatch, tmp_path):
    archive = tmp_path / fetch.CIFAR["cifar10"]["archive"]
    write_cifar_archive(archive, "cifar10", per_batch=2)
    monkeypatch.setitem(fetch.CIFAR, "cifar10", dict(fetch.CIFAR["cifar10"], md5=md5(archive)))
    folder = fetch.cifar(tmp_path, "cifar10", download=False)
    marker = tmp_path / "code-ran"
    evil = pickle.dumps({b"data": _RunsCode(marker)})
    # A pickle where the python-format loader looked, and one in place of a binary batch file.
    (tmp_path / "cifar-10-batches-py").mkdir()
    (tmp_path / "cifar-10-batches-py" / "data_batch_1").write_bytes(evil)
    data.load_cifar("cifar10", tmp_path)
    (folder / "data_batch_2.bin").write_bytes(evil)
    with pytest.raises(ValueError, match="data_batch_2.bin holds .* not a positive multiple"):
        data.load_cifar("cifar10", tmp_path)
    assert not marker.exists()
    pickle.loads(evil)  # the same bytes do run code when unpickled: the test can fail
    assert marker.exists()


def test_missing_cifar_names_the_fetch_command(tmp_path):
    with pytest.raises(ValueError, match="python -m mdq_teach.fetch cifar100"):
        data.load("cifar100", tmp_path)
    with pytest.raises(ValueError, match="dataset must be one of"):
        data.load("mnist")


def test_split_is_a_seeded_partition_and_normalisation_matches_numpy(fashion_dir):
    d = data.load("fashion-mnist", val_size=8, split_seed=3)
    full = fashion_dir["train-images-idx3-ubyte.gz"].reshape(40, -1).astype(np.uint8)
    rows = {r.tobytes() for r in full}
    parts = [t.reshape(len(t), -1).numpy() for t in (d.train_x, d.val_x)]
    assert len(parts[0]) == 32 and len(parts[1]) == 8
    seen = [r.tobytes() for p in parts for r in p]
    assert sorted(seen) == sorted(r.tobytes() for r in full) and set(seen) == rows
    again = data.load("fashion-mnist", val_size=8, split_seed=3)
    assert torch.equal(again.val_x, d.val_x)
    other = data.load("fashion-mnist", val_size=8, split_seed=4)
    assert not torch.equal(other.val_x, d.val_x)
    ref = parts[0].astype(np.float64) / 255
    assert np.isclose(d.mean.item(), ref.mean(), rtol=1e-6)
    assert np.isclose(d.std.item(), ref.std(ddof=1), rtol=1e-6)
    assert not d.augment
    with pytest.raises(ValueError, match="val_size"):
        data.load("fashion-mnist", val_size=40)
    with pytest.raises(ValueError, match="train_size"):
        data.load("fashion-mnist", val_size=8, train_size=33)


def _reference_crop_flip(x, oy, ox, flip, pad):
    """Per-image numpy reference: zero-pad, slice, mirror."""
    out = []
    h, w = x.shape[-2:]
    for img, a, b, f in zip(x, oy, ox, flip, strict=True):
        p = np.pad(img, ((0, 0), (pad, pad), (pad, pad)))
        crop = p[:, a : a + h, b : b + w]
        out.append(crop[:, :, ::-1] if f else crop)
    return np.stack(out)


@pytest.mark.parametrize("pad", [0, 1, 4])
def test_random_crop_flip_matches_a_per_image_reference(pad):
    x = torch.rand(16, 3, 8, 8)
    got = data.random_crop_flip(x, np.random.default_rng(5), pad=pad)
    rng = np.random.default_rng(5)  # the same draws, in the same order
    offsets = rng.integers(0, 2 * pad + 1, (2, 16))
    flip = rng.random(16) < 0.5
    want = _reference_crop_flip(x.numpy(), offsets[0], offsets[1], flip, pad)
    assert np.array_equal(got.numpy(), want)
    assert 0 < flip.sum() < 16


def test_batch_stream_resumes_exactly_and_covers_each_epoch():
    d = data.load("synthetic")
    full = data.BatchStream(d, 100, seed=1)
    batches = [next(full) for _ in range(12)]
    resumed = data.BatchStream(d, 100, seed=1, start=7)
    for i in range(7, 12):
        x, y = next(resumed)
        assert torch.equal(x, batches[i][0]) and torch.equal(y, batches[i][1])
    per_epoch = len(d.train_x) // 100
    epoch = torch.cat([full.indices(i) for i in range(per_epoch)])
    assert len(set(epoch.tolist())) == per_epoch * 100  # no index twice within an epoch
    other = data.BatchStream(d, 100, seed=2)
    assert not torch.equal(next(other)[1], batches[0][1])
    assert batches[0][0].shape == (100, 3, 32, 32) and batches[0][0].dtype == torch.float32
    with pytest.raises(ValueError, match="batch_size"):
        data.BatchStream(d, 0, seed=1)


def test_eval_batches_cover_the_split_in_order():
    d = data.load("synthetic")
    ys = torch.cat([y for _, y in data.eval_batches(d, "test", batch_size=50)])
    assert torch.equal(ys, d.test_y)
    with pytest.raises(ValueError, match="split"):
        next(data.eval_batches(d, "train"))


def test_rank_shards_put_together_are_the_global_batch():
    d = data.load("synthetic")
    assert d.augment  # the shards must also get the global batch's crops and flips
    whole = data.BatchStream(d, 48, seed=3, start=5)
    shards = [data.BatchStream(d, 16, seed=3, start=5, rank=r, world=3) for r in range(3)]
    for _ in range(12):  # crosses an epoch boundary (512 // 48 = 10 batches an epoch)
        x, y = next(whole)
        parts = [next(s) for s in shards]
        assert torch.equal(torch.cat([p[0] for p in parts]), x)
        assert torch.equal(torch.cat([p[1] for p in parts]), y)
    with pytest.raises(ValueError, match="rank"):
        data.BatchStream(d, 16, seed=3, rank=3, world=3)
    with pytest.raises(ValueError, match="batch_size"):
        data.BatchStream(d, 300, seed=3, world=2)


def test_a_root_without_fashion_is_an_error_naming_it_and_the_command(fashion_dir, tmp_path):
    # Debian's copy (fashion_dir) is present, but the caller asked for another root.
    root = tmp_path / "nonexistent"
    with pytest.raises(fetch.DatasetNotFoundError) as err:
        data.load("fashion-mnist", root=root)
    message = str(err.value)
    assert str(root / "fashion-mnist") in message
    assert f"python -m mdq_teach.fetch fashion-mnist --root {root}" in message


def test_loaded_data_names_the_folder_it_was_read_from(fashion_dir, tmp_path):
    assert data.load("fashion-mnist", val_size=5).source == str(fetch.DEBIAN_FASHION_DIR.resolve())
    root = tmp_path / "mine"
    write_fashion(root / "fashion-mnist", n_train=20, n_test=5, seed=1)
    loaded = data.load("fashion-mnist", root=root, val_size=5)
    assert loaded.source == str((root / "fashion-mnist").resolve()) and len(loaded.test_x) == 5


@pytest.mark.parametrize("damage", ["truncated", "not gzip", "empty"])
def test_a_damaged_idx_file_is_an_error_naming_it(fashion_dir, damage):
    path = fetch.DEBIAN_FASHION_DIR / "train-images-idx3-ubyte.gz"
    raw = path.read_bytes()
    path.write_bytes({"truncated": raw[: len(raw) // 2], "not gzip": b"hello world",
                      "empty": gzip.compress(b"")}[damage])  # fmt: skip
    with pytest.raises(ValueError, match="train-images-idx3-ubyte.gz") as err:
        data.load_fashion_mnist()
    assert "mdq_teach.fetch" in str(err.value) or "IDX" in str(err.value)

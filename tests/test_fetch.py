"""mdq_teach.fetch: where data is looked for, checksummed downloads, errors naming the command.

Downloads are exercised offline through ``file://`` URLs pointing at archives the tests write in the
official formats, with the expected checksums patched to those archives' MD5 sums.
"""

import gzip
import hashlib
import io
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mdq_teach import fetch


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def write_idx(path: Path, array: np.ndarray) -> None:
    """An IDX file: 0, 0, type 0x08 (uint8), rank, big-endian dimensions, data; gzipped."""
    header = bytes([0, 0, 8, array.ndim]) + np.asarray(array.shape, ">u4").tobytes()
    path.write_bytes(gzip.compress(header + array.astype(np.uint8).tobytes()))


def write_fashion(folder: Path, n_train=30, n_test=10, seed=0) -> dict:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    arrays = {
        "train-images-idx3-ubyte.gz": rng.integers(0, 256, (n_train, 28, 28)),
        "train-labels-idx1-ubyte.gz": rng.integers(0, 10, n_train),
        "t10k-images-idx3-ubyte.gz": rng.integers(0, 256, (n_test, 28, 28)),
        "t10k-labels-idx1-ubyte.gz": rng.integers(0, 10, n_test),
    }
    for name, a in arrays.items():
        write_idx(folder / name, a)
    return arrays


def cifar_records(name: str, n: int, rng) -> tuple[bytes, np.ndarray, np.ndarray]:
    """``n`` records of the CIFAR binary format: label byte(s), then 3072 image bytes."""
    images = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    if name == "cifar10":
        labels = rng.integers(0, 10, (n, 1), dtype=np.uint8)
    else:  # coarse label (20 classes), then fine label (100 classes)
        labels = np.stack([rng.integers(0, 20, n), rng.integers(0, 100, n)], 1).astype(np.uint8)
    return np.concatenate([labels, images], 1).tobytes(), images, labels[:, -1].astype(np.int64)


def write_cifar_archive(path: Path, name: str = "cifar10", per_batch=8, seed=0) -> dict:
    """A tiny archive in the official binary format: a tar.gz of fixed-size records (see
    ``cifar_records``) and the label-name text files. Returns {member: (images, labels)}."""
    rng = np.random.default_rng(seed)
    spec = fetch.CIFAR[name]
    batches = {}
    with tarfile.open(path, "w:gz") as tar:
        for member in spec["files"]:
            if member.endswith(".txt"):
                raw = b"x\n" * 10
            else:
                n = per_batch * (5 if member == "train.bin" else 1)
                raw, images, labels = cifar_records(name, n, rng)
                batches[member] = (images, labels)
            info = tarfile.TarInfo(f"{spec['folder']}/{member}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
    return batches


# The checksums the data sets' authors publish, typed here from their pages (the Fashion-MNIST
# README table; the "md5sum" column of https://www.cs.toronto.edu/~kriz/cifar.html), so that a typo
# in mdq_teach.fetch fails a test: every download test below patches the constants out.
OFFICIAL_FASHION_MD5 = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
OFFICIAL_CIFAR = {
    "cifar10": ("cifar-10-binary.tar.gz", "c32a1d4ab5d03f1284b67883e8d87530"),
    "cifar100": ("cifar-100-binary.tar.gz", "03b5dce01913d631647c71ecec9e9cb8"),
}
DEBIAN_README = Path("/usr/share/doc/dataset-fashion-mnist/README.md.gz")


def test_published_checksums_are_the_official_ones():
    assert fetch.FASHION_FILES == OFFICIAL_FASHION_MD5
    for name, (archive, md5sum) in OFFICIAL_CIFAR.items():
        assert (fetch.CIFAR[name]["archive"], fetch.CIFAR[name]["md5"]) == (archive, md5sum)


@pytest.mark.skipif(not DEBIAN_README.is_file(), reason="Debian dataset-fashion-mnist is absent")
def test_fashion_checksums_match_the_upstream_readme_shipped_by_debian():
    # Debian recompresses the .gz files (no file name in the gzip header), so the md5 sums of its
    # copies differ from the published ones; the upstream README it ships carries the table.
    readme = gzip.decompress(DEBIAN_README.read_bytes()).decode()
    for name, md5sum in fetch.FASHION_FILES.items():
        rows = [line for line in readme.splitlines() if line.startswith(f"| `{name}`")]
        assert len(rows) == 1 and f"`{md5sum}`" in rows[0], (name, rows)


def test_data_root_precedence(monkeypatch, tmp_path):
    monkeypatch.setenv("MDQ_DATA", str(tmp_path / "env"))
    assert fetch.data_root(tmp_path / "arg") == tmp_path / "arg"
    assert fetch.data_root() == tmp_path / "env"
    monkeypatch.delenv("MDQ_DATA")
    assert fetch.data_root() == Path.home() / ".cache" / "mdq_teach"


def test_fashion_without_root_uses_debian_files_in_place(monkeypatch, tmp_path, capsys):
    debian = tmp_path / "debian"
    write_fashion(debian)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", debian)
    monkeypatch.setenv("MDQ_DATA", str(tmp_path / "env"))
    monkeypatch.setattr(fetch, "_apt_install_fashion_mnist", lambda: pytest.fail("no apt"))
    assert fetch.fashion_mnist() == debian
    assert fetch.main(["fashion-mnist"]) == 0
    assert str(debian) in capsys.readouterr().out
    assert not (tmp_path / "env").exists()


def test_fashion_root_is_honoured_debian_files_are_copied_into_it(monkeypatch, tmp_path, capsys):
    # The root used to be ignored when Debian's package was installed: nothing was created.
    debian = tmp_path / "debian"
    write_fashion(debian)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", debian)
    monkeypatch.setattr(fetch, "_apt_install_fashion_mnist", lambda: pytest.fail("no apt"))
    monkeypatch.setattr(fetch, "FASHION_URL", "file:///nonexistent/")  # no download either
    root = tmp_path / "root"
    assert fetch.main(["fashion-mnist", "--root", str(root)]) == 0
    assert str(root / "fashion-mnist") in capsys.readouterr().out
    for name in fetch.FASHION_FILES:
        assert (root / "fashion-mnist" / name).read_bytes() == (debian / name).read_bytes()
    assert not list((root / "fashion-mnist").glob("*.part"))
    assert fetch.fashion_mnist(root) == root / "fashion-mnist"
    assert fetch.find_fashion_mnist(root) == root / "fashion-mnist"


def test_a_root_lacking_fashion_is_not_replaced_by_debians(monkeypatch, tmp_path):
    debian = tmp_path / "debian"
    write_fashion(debian)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", debian)
    assert fetch.find_fashion_mnist(tmp_path / "empty") is None
    assert fetch.find_fashion_mnist() == debian


def test_fashion_download_is_checksummed(monkeypatch, tmp_path, capsys):
    source = tmp_path / "source"
    write_fashion(source)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    monkeypatch.setattr(fetch, "_apt_install_fashion_mnist", lambda: False)
    monkeypatch.setattr(fetch, "FASHION_URL", source.as_uri() + "/")
    monkeypatch.setattr(fetch, "FASHION_FILES", {n: md5(source / n) for n in fetch.FASHION_FILES})
    root = tmp_path / "root"
    assert fetch.main(["fashion-mnist", "--root", str(root)]) == 0
    assert str(root / "fashion-mnist") in capsys.readouterr().out
    for name in fetch.FASHION_FILES:
        assert (root / "fashion-mnist" / name).read_bytes() == (source / name).read_bytes()
    # Present now: found without downloading again.
    monkeypatch.setattr(fetch, "FASHION_URL", "file:///nonexistent/")
    assert fetch.fashion_mnist(root) == root / "fashion-mnist"


def test_fashion_bad_checksum_discards_the_file(monkeypatch, tmp_path):
    source = tmp_path / "source"
    write_fashion(source)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    monkeypatch.setattr(fetch, "_apt_install_fashion_mnist", lambda: False)
    monkeypatch.setattr(fetch, "FASHION_URL", source.as_uri() + "/")
    with pytest.raises(ValueError, match="checksum"):
        fetch.fashion_mnist(tmp_path / "root")
    assert not list((tmp_path / "root" / "fashion-mnist").iterdir())


def test_fashion_offline_error_names_the_command(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", tmp_path / "absent")
    monkeypatch.setattr(fetch, "_apt_install_fashion_mnist", lambda: False)
    monkeypatch.setattr(fetch, "FASHION_URL", (tmp_path / "nothing").as_uri() + "/")
    with pytest.raises(fetch.DatasetNotFoundError, match="python -m mdq_teach.fetch fashion-mnist"):
        fetch.fashion_mnist(tmp_path / "root")
    assert fetch.main(["fashion-mnist", "--root", str(tmp_path / "root")]) == 1


def test_apt_is_not_tried_without_root(monkeypatch):
    monkeypatch.setattr(fetch.os, "geteuid", lambda: 1000)
    monkeypatch.setattr(fetch.subprocess, "run", lambda *a, **k: pytest.fail("ran a command"))
    assert fetch._apt_install_fashion_mnist() is False


@pytest.mark.parametrize("name", ["cifar10", "cifar100"])
def test_cifar_download_verify_extract(monkeypatch, tmp_path, name):
    source = tmp_path / "source"
    source.mkdir()
    archive = source / fetch.CIFAR[name]["archive"]
    batches = write_cifar_archive(archive, name)
    spec = dict(fetch.CIFAR[name], md5=md5(archive))
    monkeypatch.setitem(fetch.CIFAR, name, spec)
    monkeypatch.setattr(fetch, "CIFAR_URL", source.as_uri() + "/")
    root = tmp_path / "root"
    folder = fetch.cifar(root, name)
    assert folder == root / spec["folder"]
    first = spec["files"][0]
    record = 3072 + spec["label_bytes"]
    rows = np.fromfile(folder / first, np.uint8).reshape(-1, record)
    assert np.array_equal(rows[:, spec["label_bytes"] :], batches[first][0])
    # Already extracted: a no-op even offline.
    monkeypatch.setattr(fetch, "CIFAR_URL", "file:///nonexistent/")
    assert fetch.cifar(root, name) == folder


def test_cifar_offline_error_names_command_and_files(monkeypatch, tmp_path):
    monkeypatch.setattr(fetch, "CIFAR_URL", (tmp_path / "nothing").as_uri() + "/")
    with pytest.raises(fetch.DatasetNotFoundError) as err:
        fetch.cifar(tmp_path, "cifar10")
    message = str(err.value)
    assert "python -m mdq_teach.fetch cifar10" in message
    assert "cifar-10-binary.tar.gz" in message and fetch.CIFAR["cifar10"]["md5"] in message
    with pytest.raises(ValueError, match="python -m mdq_teach.fetch cifar100"):
        fetch.cifar(tmp_path, "cifar100", download=False)
    assert fetch.main(["cifar10", "--root", str(tmp_path)]) == 1


def test_cifar_rejects_a_corrupt_archive(tmp_path):
    (tmp_path / "cifar-10-binary.tar.gz").write_bytes(b"not the archive")
    with pytest.raises(ValueError, match="expected c32a1d4ab5d03f1284b67883e8d87530"):
        fetch.cifar(tmp_path, "cifar10")


def test_cifar_unknown_name():
    with pytest.raises(ValueError, match="cifar10"):
        fetch.cifar(None, "mnist")


def test_a_root_that_cannot_be_written_is_an_error_naming_it(monkeypatch, tmp_path):
    debian = tmp_path / "debian"
    write_fashion(debian)
    monkeypatch.setattr(fetch, "DEBIAN_FASHION_DIR", debian)
    (tmp_path / "file").write_text("not a folder")
    root = tmp_path / "file" / "root"
    with pytest.raises(fetch.DatasetNotFoundError, match=f"into {root / 'fashion-mnist'}"):
        fetch.fashion_mnist(root)
    assert fetch.main(["fashion-mnist", "--root", str(root)]) == 1

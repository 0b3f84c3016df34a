"""Fetch the data sets the book trains on: Fashion-MNIST, CIFAR-10 and CIFAR-100.

Command line (the Makefile runs the first before the tests and the book build)::

    python -m mdq_teach.fetch fashion-mnist [--root DIR]
    python -m mdq_teach.fetch cifar10 [--root DIR]
    python -m mdq_teach.fetch cifar100 [--root DIR]

Every call is a quick no-op when the data is already in place, and prints where it is.

Fashion-MNIST (Xiao et al., 2017) lives in ``ROOT/fashion-mnist``. With ``--root`` (``root=``)
given, that folder is the one used: Debian's ``dataset-fashion-mnist`` files
(``/usr/share/datasets/fashion-mnist``) are copied into it when present, otherwise the four official
``.gz`` files are downloaded into it and checked against their published MD5 sums. Without
``--root``, Debian's folder is used in place when present, then ``ROOT/fashion-mnist``; if the data
is in neither, the Debian package is installed when this runs as root on a machine with
``apt-get``, and otherwise the files are downloaded as above.

CIFAR-10/100 (Krizhevsky, 2009) come as the official binary-version tarballs from the Toronto site
(fixed-size records, read with numpy: no pickle is ever loaded), checked against their published MD5
sums and extracted into ``ROOT``.

``ROOT`` is ``--root`` when given, else the environment variable ``MDQ_DATA``, else
``~/.cache/mdq_teach``. This module needs only the standard library (tqdm, when installed, draws the
download progress bar), so it runs before torch is installed.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import subprocess
import sys
import tarfile
import urllib.error
import urllib.request
from pathlib import Path

DEBIAN_FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
DEBIAN_FASHION_PACKAGE = "dataset-fashion-mnist"
FASHION_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"
# The MD5 sums published in the Fashion-MNIST README for the official files. Debian recompresses
# them (same IDX content, other .gz bytes), so the Debian copies are not checked against these.
FASHION_FILES = {
    "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
    "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
    "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
    "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
}
CIFAR_URL = "https://www.cs.toronto.edu/~kriz/"
# The binary ("for C programs") archives: fixed-size records read with numpy, so loading CIFAR never
# unpickles anything (the python-version archives hold pickles, which can run code when loaded).
# Record layout: CIFAR-10 one label byte, CIFAR-100 a coarse then a fine label byte, then 3072
# image bytes (the red, green and blue 32x32 planes, row-major).
CIFAR = {
    "cifar10": {
        "archive": "cifar-10-binary.tar.gz",
        "md5": "c32a1d4ab5d03f1284b67883e8d87530",
        "folder": "cifar-10-batches-bin",
        "train": ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                  "data_batch_5.bin"),
        "test": ("test_batch.bin",),
        "files": ("data_batch_1.bin", "data_batch_2.bin", "data_batch_3.bin", "data_batch_4.bin",
                  "data_batch_5.bin", "test_batch.bin", "batches.meta.txt"),
        "label_bytes": 1,
    },
    "cifar100": {
        "archive": "cifar-100-binary.tar.gz",
        "md5": "03b5dce01913d631647c71ecec9e9cb8",
        "folder": "cifar-100-binary",
        "train": ("train.bin",),
        "test": ("test.bin",),
        "files": ("train.bin", "test.bin", "fine_label_names.txt", "coarse_label_names.txt"),
        "label_bytes": 2,  # coarse, then fine: the fine label (100 classes) is the last one
    },
}  # fmt: skip
DATASETS = ("fashion-mnist", "cifar10", "cifar100")


class DatasetNotFoundError(FileNotFoundError, ValueError):
    """A data set is not on disk and could not be fetched; the message names the command to run.

    It is both a ``FileNotFoundError`` (what it is) and a ``ValueError`` (the package's convention
    for bad input), so either ``except`` clause catches it.
    """


def data_root(root: str | os.PathLike | None = None) -> Path:
    """The data folder: ``root``, else ``$MDQ_DATA``, else ``~/.cache/mdq_teach``."""
    if root is not None:
        return Path(root).expanduser()
    env = os.environ.get("MDQ_DATA")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "mdq_teach"


def md5sum(path: Path) -> str:
    h = hashlib.md5()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _has_all(folder: Path, names) -> bool:
    return all((folder / n).is_file() for n in names)


def fashion_mnist_candidates(root: str | os.PathLike | None = None) -> tuple[Path, ...]:
    """The folders Fashion-MNIST is read from, in order: with ``root`` given, only
    ``root/fashion-mnist`` (or ``root`` itself when it holds the four files), never another one
    behind the caller's back; without it, Debian's folder, then the default root's."""
    if root is not None:
        base = Path(root).expanduser()
        return (base / "fashion-mnist", base)
    return (DEBIAN_FASHION_DIR, data_root() / "fashion-mnist")


def find_fashion_mnist(root: str | os.PathLike | None = None) -> Path | None:
    """The folder holding the four Fashion-MNIST ``.gz`` files, or None; fetches nothing."""
    for folder in fashion_mnist_candidates(root):
        if _has_all(folder, FASHION_FILES):
            return folder
    return None


def _copy_files(source: Path, target: Path, names) -> None:
    """Copy ``names`` from ``source`` into ``target``, each through a temporary name."""
    target.mkdir(parents=True, exist_ok=True)
    for name in names:
        tmp = target / (name + ".part")
        try:
            shutil.copyfile(source / name, tmp)
            os.replace(tmp, target / name)
        finally:
            tmp.unlink(missing_ok=True)


def _apt_install_fashion_mnist() -> bool:
    """Install Debian's package when this process may (root, apt-get present); True on success."""
    if shutil.which("apt-get") is None or not hasattr(os, "geteuid") or os.geteuid() != 0:
        return False
    cmd = ["apt-get", "install", "-y", "-q", DEBIAN_FASHION_PACKAGE]
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
        # The package index may be empty or stale on a fresh container: refresh it once.
        subprocess.run(["apt-get", "update", "-q"], env=env, capture_output=True)
        if subprocess.run(cmd, env=env, capture_output=True).returncode != 0:
            return False
    return _has_all(DEBIAN_FASHION_DIR, FASHION_FILES)


def download_file(url: str, dest: Path, md5: str | None = None, progress: bool = True) -> Path:
    """Download ``url`` to ``dest`` through a temporary file, verifying ``md5`` before the rename.

    A checksum mismatch removes the partial file and raises ``ValueError``; a network failure
    raises ``urllib.error.URLError`` (callers turn it into a message naming the command).
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = dest.with_name(dest.name + ".part")
    try:
        with urllib.request.urlopen(url, timeout=60) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0) or None
            bar = _progress_bar(total, dest.name) if progress else None
            for chunk in iter(lambda: response.read(1 << 20), b""):
                out.write(chunk)
                if bar is not None:
                    bar.update(len(chunk))
            if bar is not None:
                bar.close()
        if md5 is not None and (got := md5sum(tmp)) != md5:
            raise ValueError(f"checksum of {url} is {got}, expected md5 {md5}; file discarded")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def _progress_bar(total: int | None, name: str):
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, unit="B", unit_scale=True, unit_divisor=1024, desc=name)


def fashion_mnist(
    root: str | os.PathLike | None = None, download_ok: bool = True, install_ok: bool = True
) -> Path:
    """Make Fashion-MNIST available and return the folder with its four ``.gz`` IDX files.

    Without ``root``: Debian's files, ``ROOT/fashion-mnist``, ``apt-get install
    dataset-fashion-mnist`` (root only, when ``install_ok``), then a checksummed download into
    ``ROOT/fashion-mnist`` (when ``download_ok``). With ``root``, the result is always in ``root``:
    ``root/fashion-mnist`` when complete, else Debian's files copied there, else the download.
    Raises ``DatasetNotFoundError`` naming the command when all of these fail.
    """
    found = find_fashion_mnist(root)
    if found is not None:
        return found
    target = data_root(root) / "fashion-mnist"
    debian_ok = _has_all(DEBIAN_FASHION_DIR, FASHION_FILES)
    if not debian_ok and install_ok:
        debian_ok = _apt_install_fashion_mnist()
    if debian_ok:
        if root is None:
            return DEBIAN_FASHION_DIR
        # Debian recompresses the files, so they are copied, not checked against FASHION_FILES.
        try:
            _copy_files(DEBIAN_FASHION_DIR, target, FASHION_FILES)
        except OSError as err:
            raise DatasetNotFoundError(
                f"Fashion-MNIST: could not copy {DEBIAN_FASHION_DIR} into {target} "
                f"({err.strerror or err}); choose a writable --root"
            ) from None
        return target
    if download_ok:
        try:
            for name, md5 in FASHION_FILES.items():
                if not (target / name).is_file():
                    download_file(FASHION_URL + name, target / name, md5)
            return target
        except (urllib.error.URLError, OSError) as err:
            reason = f" (download failed: {err})"
    else:
        reason = ""
    raise DatasetNotFoundError(
        f"Fashion-MNIST not found{reason}. Run `{fetch_command('fashion-mnist', root)}` on a "
        f"machine with internet access (or `apt-get install {DEBIAN_FASHION_PACKAGE}`), or put "
        f"{', '.join(FASHION_FILES)} into {target}."
    )


def fetch_command(name: str, root: str | os.PathLike | None = None) -> str:
    """The command that puts data set ``name`` where a loader given ``root`` looks for it."""
    return f"python -m mdq_teach.fetch {name}" + ("" if root is None else f" --root {root}")


def _extract(archive: Path, root: Path) -> None:
    with tarfile.open(archive, "r:gz") as tar:
        # The "data" filter refuses absolute paths, links out of root and device files.
        tar.extractall(root, filter="data")


def cifar(
    root: str | os.PathLike | None = None, name: str = "cifar10", download: bool = True
) -> Path:
    """Make CIFAR-10 or CIFAR-100 available and return the extracted folder of binary batches.

    Uses ``ROOT/<folder>`` when complete, else extracts ``ROOT/<archive>`` after checking its MD5,
    else (when ``download``) downloads the official archive with a progress bar first. Offline or
    with ``download=False`` it raises ``DatasetNotFoundError`` naming the command and the files.
    """
    if name not in CIFAR:
        raise ValueError(f"name must be one of {sorted(CIFAR)}, got {name!r}")
    spec = CIFAR[name]
    base = data_root(root)
    folder = base / spec["folder"]
    if _has_all(folder, spec["files"]):
        return folder
    archive = base / spec["archive"]
    if archive.is_file() and md5sum(archive) != spec["md5"]:
        raise ValueError(
            f"{archive} has md5 {md5sum(archive)}, expected {spec['md5']}: delete it and run "
            f"`python -m mdq_teach.fetch {name}` again"
        )
    if not archive.is_file():
        hint = (
            f"Run `python -m mdq_teach.fetch {name} --root {base}` on a machine with internet "
            f"access, or put the official {spec['archive']} (md5 {spec['md5']}, from "
            f"{CIFAR_URL}{spec['archive']}) into {base}; it is extracted to {folder}."
        )
        if not download:
            raise DatasetNotFoundError(f"{name} not found. {hint}")
        try:
            download_file(CIFAR_URL + spec["archive"], archive, spec["md5"])
        except urllib.error.URLError as err:
            raise DatasetNotFoundError(f"{name} could not be downloaded ({err}). {hint}") from err
    _extract(archive, base)
    if not _has_all(folder, spec["files"]):
        raise ValueError(
            f"{archive} does not contain {spec['folder']}/{{{','.join(spec['files'])}}}"
        )
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m mdq_teach.fetch", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("dataset", choices=DATASETS)
    parser.add_argument(
        "--root",
        default=None,
        help="data folder (default: $MDQ_DATA, else ~/.cache/mdq_teach)",
    )
    args = parser.parse_args(argv)
    try:
        if args.dataset == "fashion-mnist":
            where = fashion_mnist(args.root)
        else:
            where = cifar(args.root, args.dataset)
    except (DatasetNotFoundError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    print(f"{args.dataset}: {where}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

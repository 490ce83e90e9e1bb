"""Datasets as read from disk: uint8 numpy arrays, no torch (the sweep's driver reads them).

`read_raw` reads the files (or the bundled digits) into a `RawData` of numpy arrays: small, pickles
cheaply and is what a Ray node shares between its trials (`trainables.data` puts them on the
training device). `check_available` is the quick look for the files, before anything starts.

On-disk formats are torchvision's own: MNIST-like sets as idx files (raw or .gz) under
`<data_dir>/<MNIST|FashionMNIST>/raw/`, CIFAR as the python pickles under
`<data_dir>/cifar-10-batches-py/` and `<data_dir>/cifar-100-python/`. torchvision is used only to
download them.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from common.errors import ConfigError, DataNotFoundError, warn

DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")

_IDX_FILES = {
    "train_x": "train-images-idx3-ubyte",
    "train_y": "train-labels-idx1-ubyte",
    "test_x": "t10k-images-idx3-ubyte",
    "test_y": "t10k-labels-idx1-ubyte",
}
_TORCHVISION_FOLDER = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST"}
_CIFAR_FOLDER = {"cifar10": "cifar-10-batches-py", "cifar100": "cifar-100-python"}
_CIFAR_FILES = {
    "cifar10": ([f"data_batch_{i}" for i in range(1, 6)], ["test_batch"]),
    "cifar100": (["train"], ["test"]),
}


@dataclass
class RawData:
    """A dataset as read from disk: uint8 images shaped (N, C, H, W) and int64 labels."""

    name: str
    train_x: np.ndarray
    train_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    num_classes: int
    source: str  # where it was read from, for the log and error messages


# Both commands take --data-dir; a download is `sweep trial --download` or a sweep file's setting.
HOW_TO_GET = ("pass --data-dir, or have them downloaded (sweep trial --download; a sweep file: "
              "fixed: {download: true})")


def check_available(name: str, data_dir: str | None = None, download: bool = False) -> None:
    """Raise `DataNotFoundError` now if the dataset's files are missing and will not be
    downloaded (a look for the files, not a read: milliseconds)."""
    data_dir = _expand(data_dir)
    _check_data_dir(name, data_dir, download)
    if name in _TORCHVISION_FOLDER and not download:
        files = _mnist_files(name, data_dir, download=False)
        if data_dir is not None and files["train_x"].parent == DEBIAN_FASHION_MNIST:
            warn(f"{name}: not in data_dir {data_dir}; reading Debian's copy in "
                 f"{DEBIAN_FASHION_MNIST}")
    elif name in _CIFAR_FOLDER and not download:
        _cifar_folder(name, data_dir, download=False)
    elif name != "digits" and name not in _TORCHVISION_FOLDER and name not in _CIFAR_FOLDER:
        raise ConfigError(f"unknown dataset {name!r}")


def read_raw(name: str, data_dir: str | None = None, download: bool = False) -> RawData:
    """Read a dataset's files into arrays (the one disk read a node does per dataset).

    With $SWEEPS_DATA_READ_LOG set, each read appends "dataset pid host" to that file: an audit of
    how often a sweep touches the disk for its data.
    """
    audit = os.environ.get("SWEEPS_DATA_READ_LOG")
    if audit:
        with open(audit, "a") as f:
            f.write(f"{name} {os.getpid()} {socket.gethostname()}\n")
    if name == "digits":
        return _read_digits()
    data_dir = _expand(data_dir)
    _check_data_dir(name, data_dir, download)
    if name in _TORCHVISION_FOLDER:
        return _read_mnist_like(name, data_dir, download)
    if name in _CIFAR_FOLDER:
        return _read_cifar(name, data_dir, download)
    raise ConfigError(f"unknown dataset {name!r}")


def _expand(data_dir: str | None) -> str | None:
    """`~/data` as the shell would have it (`--data-dir=~/data` reaches us unexpanded), on the
    node that reads: a cluster's nodes each have their own home."""
    return None if data_dir is None else os.path.expanduser(data_dir)


def _check_data_dir(name: str, data_dir: str | None, download: bool) -> None:
    """A data folder given must be there (unless the files are to be downloaded into it): a
    typo would otherwise fall back, unsaid, to Debian's Fashion-MNIST or to a missing-file
    error naming the wrong folder."""
    if data_dir is None or download or name == "digits" or Path(data_dir).is_dir():
        return
    raise DataNotFoundError(f"data_dir {data_dir}: no such folder (for {name}; --download "
                            "fetches the files into it)")


# ---- digits: scikit-learn's bundled 8x8 digits, a fixed stratified 80/20 split ----

# The split: train_test_split(test_size=0.2, stratify=labels, random_state=0) of the 1,797
# images, stored as its train then test indices, so that reading digits needs neither
# `sklearn.datasets` nor `sklearn.model_selection` (2.2 s of imports, more than all the rest of
# a trial's set-up). tests/test_data.py checks it against scikit-learn's own.
_DIGITS_SPLIT = Path(__file__).with_name("digits_split.npy")
_DIGITS_TEST = 360


def _read_digits() -> RawData:
    table = _digits_table()
    if table is None:  # scikit-learn moved its file: read it the long way
        return _read_digits_with_sklearn()
    images = table[:, :-1].reshape(-1, 1, 8, 8).astype(np.uint8)  # values 0..16
    labels = table[:, -1].astype(np.int64)
    order = np.load(_DIGITS_SPLIT).astype(np.int64)
    train, test = order[:-_DIGITS_TEST], order[-_DIGITS_TEST:]
    return RawData("digits", images[train], labels[train], images[test], labels[test], 10,
                   "sklearn.datasets.load_digits")


def _digits_table() -> np.ndarray | None:
    """scikit-learn's digits file as `load_digits` reads it (64 pixels and the label a row),
    found without importing scikit-learn; None if it is not where it has always been."""
    import importlib.util

    spec = importlib.util.find_spec("sklearn")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(spec.submodule_search_locations[0], "datasets", "data", "digits.csv.gz")
    if not path.is_file():
        return None
    return np.loadtxt(path, delimiter=",")


def _read_digits_with_sklearn() -> RawData:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    images = bunch.images.astype(np.uint8)[:, None, :, :]  # values 0..16
    labels = bunch.target.astype(np.int64)
    train_x, test_x, train_y, test_y = train_test_split(
        images, labels, test_size=0.2, stratify=labels, random_state=0
    )
    return RawData("digits", train_x, train_y, test_x, test_y, 10, "sklearn.datasets.load_digits")


# ---- MNIST and Fashion-MNIST: idx files ----


def _mnist_candidates(name: str, data_dir: str | None) -> list[Path]:
    folders = []
    if data_dir is not None:
        root = Path(data_dir)
        folders += [root / _TORCHVISION_FOLDER[name] / "raw", root]
    if name == "fashion_mnist":
        folders.append(DEBIAN_FASHION_MNIST)
    return folders


def _find_idx(folder: Path) -> dict[str, Path] | None:
    found = {}
    for key, stem in _IDX_FILES.items():
        for candidate in (folder / stem, folder / f"{stem}.gz"):
            if candidate.is_file():
                found[key] = candidate
                break
        else:
            return None
    return found


def _mnist_files(name: str, data_dir: str | None, download: bool) -> dict[str, Path]:
    folders = _mnist_candidates(name, data_dir)
    files = next((f for f in map(_find_idx, folders) if f is not None), None)
    if files is None and download:
        _download(name, data_dir)
        files = _find_idx(Path(data_dir or ".") / _TORCHVISION_FOLDER[name] / "raw")
    if files is None:
        where = (f"files not found in {' or '.join(str(f) for f in folders)}" if folders
                 else "no --data-dir given")
        raise DataNotFoundError(
            f"{name}: {where}; it needs {', '.join(_IDX_FILES.values())} (optionally .gz); "
            f"{HOW_TO_GET}"
        )
    return files


def _read_mnist_like(name: str, data_dir: str | None, download: bool) -> RawData:
    files = _mnist_files(name, data_dir, download)
    arrays = {key: _read_idx(path) for key, path in files.items()}
    for split in ("train", "test"):
        images, labels = arrays[f"{split}_x"], arrays[f"{split}_y"]
        if images.ndim != 3:
            raise DataNotFoundError(f"{files[f'{split}_x']}: not an images file (its idx "
                                    f"header says {images.ndim} dimensions, not 3)")
        _check_labels(files[f"{split}_y"], labels, len(images), 10)
    return RawData(
        name,
        arrays["train_x"][:, None, :, :],
        arrays["train_y"].astype(np.int64),
        arrays["test_x"][:, None, :, :],
        arrays["test_y"].astype(np.int64),
        10,
        str(files["train_x"].parent),
    )


def _read_idx(path: Path) -> np.ndarray:
    """Read an idx file of unsigned bytes (MNIST's format), raw or gzipped."""
    try:
        opener = gzip.open if path.suffix == ".gz" else open
        with opener(path, "rb") as f:
            data = f.read()
        zero, dtype, ndim = struct.unpack(">HBB", data[:4])
        if zero != 0 or dtype != 0x08:
            raise ValueError("not an idx file of unsigned bytes")
        shape = struct.unpack(f">{ndim}I", data[4 : 4 + 4 * ndim])
        body = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
        if body.size != int(np.prod(shape)):
            raise ValueError(f"holds {body.size} bytes where its header promises {shape}")
        return body.reshape(shape).copy()
    except (OSError, EOFError, ValueError, struct.error) as e:
        raise DataNotFoundError(f"{path}: unreadable idx file ({e})") from None


def _check_labels(path: Path, labels: np.ndarray, images: int, classes: int) -> None:
    """Labels that fit their images: one each, each a class (a wrong file would train on a cut
    set, or fail mid-trial with an index error)."""
    if labels.ndim != 1 or len(labels) != images:
        raise DataNotFoundError(f"{path}: {labels.size} labels for {images} images")
    if labels.size and not 0 <= labels.min() <= labels.max() < classes:
        raise DataNotFoundError(f"{path}: labels {labels.min()}..{labels.max()} where the "
                                f"dataset has classes 0..{classes - 1}")


# ---- CIFAR-10 and CIFAR-100: python pickles ----


class _ArraysOnlyUnpickler(pickle.Unpickler):
    """CIFAR's pickles hold dicts of lists, bytes and numpy arrays; refuse anything else."""

    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
    }

    def find_class(self, module: str, name: str):  # noqa: ANN201 - pickle's signature
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"refusing to load {module}.{name}")


def _cifar_folder(name: str, data_dir: str | None, download: bool) -> Path:
    folder = Path(data_dir or ".") / _CIFAR_FOLDER[name]
    train_files, test_files = _CIFAR_FILES[name]
    missing = [f for f in train_files + test_files if not (folder / f).is_file()]
    if missing and download:
        _download(name, data_dir)
        missing = [f for f in train_files + test_files if not (folder / f).is_file()]
    if missing:
        hint = "" if data_dir else " (no --data-dir given)"
        raise DataNotFoundError(
            f"{name}: files not found in {folder}{hint}; it needs {', '.join(missing)}; "
            f"{HOW_TO_GET}"
        )
    return folder


def _read_cifar(name: str, data_dir: str | None, download: bool) -> RawData:
    folder = _cifar_folder(name, data_dir, download)
    train_files, test_files = _CIFAR_FILES[name]
    label_key = "labels" if name == "cifar10" else "fine_labels"
    classes = 10 if name == "cifar10" else 100
    train_x, train_y = _read_cifar_batches(folder, train_files, label_key, classes)
    test_x, test_y = _read_cifar_batches(folder, test_files, label_key, classes)
    return RawData(name, train_x, train_y, test_x, test_y, classes, str(folder))


def _read_cifar_batches(folder: Path, files: list[str], label_key: str, classes: int):
    xs, ys = [], []
    for file in files:
        path = folder / file
        try:
            entry = _ArraysOnlyUnpickler(io.BytesIO(path.read_bytes()), encoding="latin1").load()
            x = np.asarray(entry["data"], dtype=np.uint8).reshape(-1, 3, 32, 32)
            y = np.asarray(entry[label_key], dtype=np.int64)
        except (OSError, EOFError, ValueError, KeyError, TypeError, pickle.UnpicklingError) as e:
            raise DataNotFoundError(f"{path}: unreadable CIFAR batch ({e})") from None
        _check_labels(path, y, len(x), classes)
        xs.append(x)
        ys.append(y)
    return np.concatenate(xs), np.concatenate(ys)


def _download(name: str, data_dir: str | None) -> None:
    import torchvision.datasets as tvd

    cls = {
        "mnist": tvd.MNIST,
        "fashion_mnist": tvd.FashionMNIST,
        "cifar10": tvd.CIFAR10,
        "cifar100": tvd.CIFAR100,
    }[name]
    root = data_dir or "."
    made = [Path(root), *([Path(root) / _TORCHVISION_FOLDER[name],
                           Path(root) / _TORCHVISION_FOLDER[name] / "raw"]
                          if name in _TORCHVISION_FOLDER else [])]  # what torchvision makes
    before = {folder for folder in made if folder.is_dir()}
    try:
        for train in (True, False):
            cls(root=root, train=train, download=True)
    except Exception as e:  # network errors come in many types; the user needs one line
        for folder in reversed(made):  # deepest first
            if folder not in before and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()  # made for this download, and nothing came
        words = " ".join(str(e).split())
        raise DataNotFoundError(f"{name}: download into {root} failed ({words[:400]})") from None


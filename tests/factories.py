"""Tiny datasets written in torchvision's own on-disk formats, for the real loading code."""

from __future__ import annotations

import gzip
import pickle
import struct
from pathlib import Path

import numpy as np


def write_idx(path: Path, array: np.ndarray, compress: bool = False) -> Path:
    """An idx file of unsigned bytes, as MNIST ships it (raw, or .gz when `compress`)."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    data = header + array.astype(np.uint8).tobytes()
    if compress:
        path = path.with_name(path.name + ".gz")
        data = gzip.compress(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


def write_mnist_like(folder: Path, n_train: int = 60, n_test: int = 20, seed: int = 0,
                     compress: bool = False) -> dict[str, np.ndarray]:
    """The four MNIST idx files in `folder`: 28x28 images, labels cycling through 0..9."""
    rng = np.random.default_rng(seed)
    arrays = {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, 28, 28), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8),
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, 28, 28), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8),
    }
    for name, array in arrays.items():
        write_idx(folder / name, array, compress)
    return arrays


def write_cifar(root: Path, classes: int = 10, per_file: int = 20, seed: int = 0) -> Path:
    """CIFAR-10 (`cifar-10-batches-py/`) or CIFAR-100 (`cifar-100-python/`) python pickles."""
    rng = np.random.default_rng(seed)
    if classes == 10:
        folder, key = root / "cifar-10-batches-py", "labels"
        files = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]
    else:
        folder, files, key = root / "cifar-100-python", ["train", "test"], "fine_labels"
    folder.mkdir(parents=True, exist_ok=True)
    for i, name in enumerate(files):
        entry = {
            "data": rng.integers(0, 256, (per_file, 3072), dtype=np.uint8),
            key: [int(v) for v in (np.arange(per_file) + i) % classes],
            "batch_label": f"synthetic {name}",
        }
        with open(folder / name, "wb") as f:
            pickle.dump(entry, f)
    return folder

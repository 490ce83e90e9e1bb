"""Datasets on the training device: normalised float tensors made from `RawData`.

`to_device` turns the uint8 arrays `trainables.raw_data.read_raw` reads into a `Dataset` of float
tensors on the training device; batches are taken by indexing those tensors.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from trainables.config import TrialConfig
from trainables.raw_data import DEBIAN_FASHION_MNIST, RawData, read_raw

__all__ = ["DEBIAN_FASHION_MNIST", "Dataset", "RawData", "load_dataset", "read_raw", "to_device"]


@dataclass
class Dataset:
    """A dataset on the training device: normalised float images (N, C, H, W), int64 labels."""

    name: str
    train_x: torch.Tensor
    train_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    num_classes: int
    val_x: torch.Tensor | None = None  # the validation split held out of train_x (if any)
    val_y: torch.Tensor | None = None

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.train_x.shape[1:])  # type: ignore[return-value]


def load_dataset(config: TrialConfig, device: torch.device | str = "cpu") -> Dataset:
    """Read the config's dataset and put it, normalised, on `device`."""
    return to_device(read_raw(config.dataset, config.data_dir, config.download), device)


def to_device(raw: RawData, device: torch.device | str,
              validation: np.ndarray | None = None) -> Dataset:
    """Normalise with the training set's per-channel mean and std and move to `device`. The
    training examples at `validation` (indices into raw.train_x) are held out as `val_x/val_y`:
    they are neither trained on nor part of the normalising statistics."""
    # torch.tensor copies: the arrays may be read-only views into Ray's object store.
    keep = slice(None)
    val_x = val_y = None
    if validation is not None and len(validation):
        keep = np.setdiff1d(np.arange(len(raw.train_y)), validation)
        val_x = torch.tensor(raw.train_x[validation], dtype=torch.float32, device=device)
        val_y = torch.tensor(raw.train_y[validation], dtype=torch.int64, device=device)
    train_x = torch.tensor(raw.train_x[keep], dtype=torch.float32, device=device)
    test_x = torch.tensor(raw.test_x, dtype=torch.float32, device=device)
    mean = train_x.mean(dim=(0, 2, 3), keepdim=True)
    std = train_x.std(dim=(0, 2, 3), keepdim=True).clamp_min(1e-6)
    return Dataset(
        name=raw.name,
        train_x=(train_x - mean) / std,
        train_y=torch.tensor(raw.train_y[keep], dtype=torch.int64, device=device),
        test_x=(test_x - mean) / std,
        test_y=torch.tensor(raw.test_y, dtype=torch.int64, device=device),
        num_classes=raw.num_classes,
        val_x=None if val_x is None else (val_x - mean) / std,
        val_y=val_y,
    )

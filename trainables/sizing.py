"""Sizes known without torch: datasets' shapes, models' parameter counts, small-set sizes.

The overdetermination ratio of K training examples for a model of P trainable parameters and M
outputs is Q = K*M/P (Spörer et al., 2024): Q > 1 means more constraints than free parameters.
Everything here is arithmetic, so the launcher can check a sweep file (is this Q possible for this
model?) without importing torch; `trainables.models` builds the networks these counts describe
(a test checks the two agree).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

from common.errors import ConfigError
from trainables.config import TrialConfig

# Input shape (C, H, W) and number of classes of each dataset, without reading it.
DATASET_SHAPES: dict[str, tuple[tuple[int, int, int], int]] = {
    "digits": ((1, 8, 8), 10),
    "mnist": ((1, 28, 28), 10),
    "fashion_mnist": ((1, 28, 28), 10),
    "cifar10": ((3, 32, 32), 10),
    "cifar100": ((3, 32, 32), 100),
}
# Training examples of each class, known without reading the data (a test checks them against
# the data where it is here): the validation split is a rounded fraction of each class.
CLASS_COUNTS: dict[str, tuple[int, ...]] = {
    "digits": (142, 146, 142, 146, 145, 145, 145, 143, 139, 144),  # our fixed 80% split
    "mnist": (5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949),
    "fashion_mnist": (6000,) * 10,
    "cifar10": (5000,) * 10,
    "cifar100": (500,) * 100,
}
TRAIN_SIZES = {dataset: sum(counts) for dataset, counts in CLASS_COUNTS.items()}


def train_size(dataset: str, validation_fraction: float = 0.0) -> int:
    """Training examples a trial trains on: the training set less its validation split, held
    out as `trainables.splits.validation_split` does (round(fraction * n) of each class)."""
    counts = CLASS_COUNTS[dataset]
    if validation_fraction <= 0:
        return sum(counts)
    return sum(n - round(validation_fraction * n) for n in counts)


def validation_size(dataset: str, validation_fraction: float) -> int:
    """Examples the validation split holds out (round(fraction * n) of each class)."""
    return TRAIN_SIZES[dataset] - train_size(dataset, validation_fraction)


def dataset_shape(dataset: str) -> tuple[tuple[int, int, int], int]:
    """Input shape (C, H, W) and number of classes of a dataset, without reading it."""
    return DATASET_SHAPES[dataset]


def cnn_blocks(height: int) -> int:
    """VGG-style blocks: two for 8x8 and 28x28 inputs (ending at 2x2 and 7x7), three for 32x32."""
    return 3 if height >= 32 else 2


def param_count(model: str, width: int, input_shape: tuple[int, int, int],
                num_classes: int) -> int:
    """Trainable parameters P of `trainables.models`' networks, by arithmetic."""
    c, h, w = input_shape
    if model == "mlp":
        hidden = 8 * width
        return (c * h * w + 1) * hidden + (hidden + 1) * hidden + (hidden + 1) * num_classes
    total, channels_in = 0, c
    for i in range(cnn_blocks(h)):
        channels = width * 2**i
        total += (channels_in * 9 + 1) * channels + (channels * 9 + 1) * channels
        channels_in, h = channels, h // 2
    hidden = 4 * width
    return total + (channels_in * h * h + 1) * hidden + (hidden + 1) * num_classes


@dataclass(frozen=True)
class SubsetSize:
    """A small set's size K and its two equivalent descriptions."""

    subset_size: int
    subset_fraction: float  # K / N
    overdetermination_ratio: float  # K * M / P


def size_from_fraction(fraction: float, n_train: int, num_classes: int, params: int) -> SubsetSize:
    """K = ceil(fraction * N), at least 1."""
    k = max(1, math.ceil(Fraction(repr(fraction)) * n_train))
    return described_size(min(k, n_train), n_train, num_classes, params)


def size_from_ratio(q: float, n_train: int, num_classes: int, params: int) -> SubsetSize:
    """K = ceil(Q * P / M), capped at the full training set N.

    Computed in exact rational arithmetic on the decimal value of Q, so Q = 0.1 means 1/10 and
    not the binary float just above it.
    """
    k = max(1, math.ceil(Fraction(repr(q)) * params / num_classes))
    return described_size(min(k, n_train), n_train, num_classes, params)


def described_size(k: int, n_train: int, num_classes: int, params: int) -> SubsetSize:
    return SubsetSize(k, k / n_train, k * num_classes / params)


def resolve_size(config: TrialConfig, n_train: int, num_classes: int,
                 params: int) -> SubsetSize | None:
    """The config's small-set size, or None for ordinary training."""
    if config.strategy == "none":
        return None
    if config.strategy == "class_mean":
        return described_size(num_classes, n_train, num_classes, params)
    if config.subset_fraction is not None:
        return size_from_fraction(config.subset_fraction, n_train, num_classes, params)
    assert config.overdetermination_ratio is not None  # guaranteed by TrialConfig validation
    return size_from_ratio(config.overdetermination_ratio, n_train, num_classes, params)


def largest_ratio(settings: dict) -> float:
    """The largest Q whose small set K = ceil(Q*P/M) fits the training set (less its validation
    split) of a trial with these settings (dataset, model, width, validation_fraction; others
    are not read), rounded down a little so that a float at most this fits."""
    keys = ("dataset", "model", "width", "validation_fraction")
    config = TrialConfig.from_dict({k: settings[k] for k in keys if k in settings})
    shape, classes = dataset_shape(config.dataset)
    params = param_count(config.model, config.width, shape, classes)
    exact = Fraction(train_size(config.dataset, config.validation_fraction) * classes, params)
    return math.nextafter(float(exact), 0.0)


def ratio_beyond_data(config: TrialConfig, q: float) -> str | None:
    """Why a Q cannot be had: its subset K = ceil(Q*P/M) exceeds the training set for this model
    (less its validation split: the small set is drawn from what is left); None where it fits."""
    shape, classes = dataset_shape(config.dataset)
    params = param_count(config.model, config.width, shape, classes)
    n = train_size(config.dataset, config.validation_fraction)
    k = size_from_ratio(q, 10**12, classes, params).subset_size
    if k <= n:
        return None
    held = TRAIN_SIZES[config.dataset] - n
    what = (f"the {n:,} training examples of {config.dataset} left after its validation "
            f"split of {held:,}" if held else
            f"the {n:,} training examples of {config.dataset}")
    largest = math.floor(n * classes / params * 1000) / 1000  # rounded down: it fits
    return (f"overdetermination_ratio {q:g} asks for more than {what} ({config.model} width "
            f"{config.width}: P={params:,}, M={classes}; Q can be at most {largest:g})")


def check_ratio_fits(config: TrialConfig, q: float) -> None:
    """Reject a Q whose subset exceeds the training set for this model (`ratio_beyond_data`)."""
    reason = ratio_beyond_data(config, q)
    if reason is not None:
        raise ConfigError(reason)

"""Fixed index sets of the training data, the same for every trial of a dataset: the validation
split held out of training, and the sample the full-training-set loss is measured on.

Both are drawn from `data_seed` (not the trial's seed), so trials with different seeds are judged
on the same rows. Plain numpy: the driver and the tests use them without torch.
"""

from __future__ import annotations

import numpy as np

MAX_TRAIN_EVAL_SIZE = 10_000  # the most training examples the training-set loss is measured on
_VALIDATION, _SAMPLE = 1, 2  # streams of the data seed, so the two draws are independent


def validation_split(labels: np.ndarray, fraction: float, seed: int) -> np.ndarray:
    """Indices (sorted) of the training examples held out for validation: `fraction` of each
    class (rounded), chosen at random by `seed`. Empty for fraction 0."""
    labels = np.asarray(labels)
    if fraction <= 0:
        return np.zeros(0, dtype=np.int64)
    rng = np.random.default_rng([seed, _VALIDATION])
    held = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.append(rng.permutation(members)[:round(fraction * len(members))])
    return np.sort(np.concatenate(held)).astype(np.int64)


def train_sample(n: int, size: int | None, seed: int,
                 default: int = MAX_TRAIN_EVAL_SIZE) -> np.ndarray:
    """Indices (sorted) of the training examples the full-training-set loss is measured on:
    all `n` when `size` (None: `default`) is at least `n`, none when it is 0, else a uniform
    random sample fixed by `seed`."""
    size = default if size is None else size
    if size >= n:
        return np.arange(n, dtype=np.int64)
    rng = np.random.default_rng([seed, _SAMPLE])
    return np.sort(rng.choice(n, size=size, replace=False)).astype(np.int64)

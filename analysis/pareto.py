"""Pareto frontiers of accuracy versus FLOPs, and their two-dimensional hypervolume.

A point (x, y) dominates another (x', y') when x <= x' and y >= y' and one of the two is strict:
less compute, at least as accurate (or as cheap and more accurate). The frontier is the set of
points no other point dominates; exact duplicates do not dominate each other, so both stay.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from analysis.load import COMPUTE, final_rows, with_compute
from common.errors import warn


def pareto_mask(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Boolean mask of the non-dominated points, minimising x and maximising y. O(n log n).

    Sort by x, then by y descending; within each group of equal x only the points at the group's
    largest y can survive, and they survive when that y beats every y at strictly smaller x.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    n = len(x)
    mask = np.zeros(n, dtype=bool)
    if n == 0:
        return mask
    order = np.lexsort((-y, x))
    xs, ys = x[order], y[order]
    starts = np.flatnonzero(np.r_[True, xs[1:] != xs[:-1]])  # first index of each equal-x group
    group_max = ys[starts]  # sorted by y descending within a group
    best_before = np.r_[-np.inf, np.maximum.accumulate(group_max)[:-1]]
    survives = group_max > best_before
    survives[0] = True  # nothing is cheaper than the cheapest group (even at y = -inf)
    group_of = np.repeat(np.arange(len(starts)), np.diff(np.r_[starts, n]))
    mask[order] = survives[group_of] & (ys == group_max[group_of])
    return mask


def pareto_front(df: pd.DataFrame, x: str = "train_flops", y: str = "test_accuracy",
                 by: str | Sequence[str] | None = "dataset", points: str = "final",
                 higher: bool = True) -> pd.DataFrame:
    """The non-dominated rows (less `x`, more `y`; less `y` with `higher=False`, for a loss)
    per group of `by`, sorted by group and `x`.

    points="final": each trial's last evaluation is a candidate; points="all": every evaluation
    is (a trial stopped there would have been a valid configuration). `x="compute_flops"`:
    training plus small-set selection FLOPs (derived when the frame lacks it), what the report
    and figures use; the default stays `train_flops`, as the documented API has it. Rows with
    NaN in `x` or `y` are dropped with a warning.
    """
    if points not in ("final", "all"):
        raise ValueError(f"points must be 'final' or 'all', got {points!r}")
    if x == COMPUTE:
        df = with_compute(df)
    candidates = final_rows(df) if points == "final" else df
    bad = candidates[x].isna() | candidates[y].isna()
    if bad.any():
        warn(f"pareto_front: dropped {int(bad.sum())} row(s) with NaN {x} or {y}")
        candidates = candidates[~bad]
    groups = [] if by is None else [by] if isinstance(by, str) else list(by)
    parts = []
    # a missing group key (ordinary training has no subset_size) is a group of its own
    for _, group in (candidates.groupby(groups, sort=True, dropna=False) if groups
                     else [(None, candidates)]):
        values = group[y].to_numpy(dtype=float)
        front = group[pareto_mask(group[x].to_numpy(), values if higher else -values)]
        parts.append(front.sort_values([x, y], ascending=[True, not higher], kind="stable"))
    if not parts:
        return candidates.iloc[0:0]
    return pd.concat(parts).reset_index(drop=True)


def hypervolume(x: np.ndarray, y: np.ndarray, reference: tuple[float, float]) -> float:
    """Area dominated by the points (minimising x, maximising y) and bounded by `reference`.

    `reference` = (x_ref, y_ref): the worst corner (most compute, least accuracy) counted. Points
    beyond it (x > x_ref or y < y_ref) add nothing. Larger is better.
    """
    x, y = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
    x_ref, y_ref = reference
    keep = (x <= x_ref) & (y >= y_ref)
    x, y = x[keep], y[keep]
    front = pareto_mask(x, y)
    x, y = x[front], y[front]
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    widths = np.diff(np.r_[x, x_ref])  # each point's y holds from its x to the next point's x
    return float(np.sum(widths * (y - y_ref)))

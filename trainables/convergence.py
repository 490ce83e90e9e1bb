"""Convergence as a stop rule: a phase ends when the loss it watches has not improved by a
relative `min_delta` for `patience` evaluations in a row.

An evaluation improves on the best loss so far when loss < best * (1 - min_delta) (a NaN never
does); the first evaluation watched sets the best. The state is two plain numbers, kept in the
trial's `Progress` so that a resumed trial counts on where it stopped.
"""

from __future__ import annotations

import math


def update(best: float, since: int, loss: float, min_delta: float) -> tuple[float, int]:
    """The (best loss, evaluations since it improved) after watching `loss`."""
    if math.isfinite(loss) and (not math.isfinite(best) or loss < best * (1 - min_delta)):
        return loss, 0
    return best, since + 1


def converged(since: int, patience: int | None) -> bool:
    return patience is not None and since >= patience

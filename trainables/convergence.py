"""Convergence as a stop rule: a phase ends when the loss it watches has not improved by a
relative `min_delta` for `patience` evaluations of the regular schedule (every eval_every
samples from the phase's start; the early, log-spaced evaluations do not end a phase sooner:
they only come more often). An evaluation's place in that schedule is the multiple of
eval_every it reached (it lands on the first whole batch past it).

An evaluation improves on the best loss so far when loss < best * (1 - min_delta) (a NaN never
does); the first evaluation watched sets the best. The state is two plain numbers (the best loss
and the samples seen when it was reached), kept in the trial's `Progress` so that a resumed
trial counts on where it stopped.
"""

from __future__ import annotations

import math


def update(best: float, best_at: int, loss: float, at: int,
           min_delta: float) -> tuple[float, int]:
    """The (best loss, samples seen at it) after watching `loss` at `at` samples."""
    if math.isfinite(loss) and (not math.isfinite(best) or loss < best * (1 - min_delta)):
        return loss, at
    return best, best_at


def converged(best_at: int, at: int, patience: int | None, eval_every: int,
              start: int = 0) -> bool:
    """Whether `patience` regular evaluations came since the best loss (samples seen at each,
    the phase starting at `start` samples)."""
    if patience is None:
        return False
    return (at - start) // eval_every - (best_at - start) // eval_every >= patience

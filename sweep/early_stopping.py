"""Early stopping by the anytime frontier: stop a trial once what other trials reached for no
more compute dominates it. The rule alone, on plain records (no Ray); `sweep.frontier_scheduler`
applies it inside Ray Tune.

The question a sweep answers is which configurations reach which accuracy for the least compute,
so a trial is judged where that question is asked: at its compute (training FLOPs plus the FLOPs
of building its small set, as in `analysis.savings`) against the *anytime frontier*, every
evaluation of every other trial so far. The rule:

- **Rungs** are compute levels, geometric: the first is `first_rung` of one full-set epoch of the
  trial's own model (its FLOPs per sample times the training-set size), each next one `eta` times
  the last. A trial is judged at its first evaluation at or past its next rung.
- **Judgement**: the trial stops when another trial has reached at least its best accuracy so
  far plus `margin` with at most 1/`flops_factor` of the compute it has spent (flops_factor 1:
  no more compute). Otherwise it continues, and its next rung is the first one past its compute.
  With `dominated: false` no trial is judged so: only the race (below) stops trials.
  Defaults (margin 1 pp, flops_factor 1.5, first rung 1 epoch, eta 3) were chosen by replaying
  finished sweeps through the rule: stricter settings stop trials whose learning curves cross
  the others' late, and with them the sweep's headline (docs/results.md, section 6).
- **Pretraining**: a trial still in its pretraining phase is not judged at a rung (its accuracy
  is that of a net trained on the small set alone); it is judged at its first evaluation once
  pretraining is done (the accuracy after pretraining), or, with `pretrain_allowance` set, once
  its compute reaches that many times the rung it passed, whichever comes first.
- **Ordinary training** (strategy `none`) is not stopped unless `stop_ordinary`: its best accuracy
  is the target every saving is measured to, and stopping it would move the target.
- **The race to the target** (`beaten_to_target`, on by default): the sweep's headline is the
  pretraining trial that reaches the target (ordinary training's best accuracy less `tolerance`,
  as `analysis.headlines` defines it) with the least compute. A pretraining trial that has not
  reached the target, when another pretraining trial already reached it with less compute than
  this one has spent, can no longer be that trial: it stops, at any evaluation (mid-pretraining
  too: whatever it does next costs more). It is judged only while no ordinary-training trial is
  running, against their best so far: the target is then as final as the sweep knows it. (An
  ordinary-training trial that starts later and beats that best moves the target past trials
  stopped before. Leave `none` out of the sampled strategies and give ordinary training as
  `baselines:`: they run first, and once they end the target is final and the race exact.)

Diverged evaluations (NaN accuracy) are neither judged nor part of the frontier.
"""

from __future__ import annotations

import bisect
import math
from dataclasses import dataclass, field
from typing import Any

from common.records import compute_flops
from search_spaces.stopping import FrontierOptions

EPOCH_TOLERANCE = 1e-9


@dataclass(frozen=True)
class Point:
    trial_id: str
    compute: float
    accuracy: float


@dataclass(frozen=True)
class Verdict:
    """A judgement at a rung: `stop`, and the other trial's point that dominates (when stopped)
    or the best one at no more compute (when continued; None if there is none). `target`: for a
    trial stopped in the race to the target, that target (None otherwise)."""

    trial_id: str
    stop: bool
    rung: float
    point: Point
    best_other: Point | None
    target: float | None = None

    def explain(self) -> str:
        here = f"{self.point.accuracy:.2%} at {self.point.compute / 1e9:.3g} GFLOPs"
        if self.best_other is None:
            return f"continued: {here}, nothing cheaper yet"
        other = (f"{self.best_other.accuracy:.2%} reached by {self.best_other.trial_id} with "
                 f"{self.best_other.compute / 1e9:.3g} GFLOPs")
        if self.target is not None:
            return f"stopped: {here}; beaten to the target {self.target:.2%}: {other}"
        return f"{'stopped' if self.stop else 'continued'}: {here}; {other}"


class AnytimeFrontier:
    """Every evaluation of every trial, queried for the most accurate point at no more than a
    given compute, leaving one trial out. Per trial: its computes in order and the running best
    accuracy, so a query is a binary search per trial."""

    def __init__(self) -> None:
        self._curves: dict[str, tuple[list[float], list[Point]]] = {}
        self._seen: set[tuple[str, int]] = set()

    def add(self, trial_id: str, evaluation: int, compute: float, accuracy: float) -> None:
        """Record an evaluation (once: a trial that resumes re-reports some of its evaluations)."""
        if (trial_id, evaluation) in self._seen or math.isnan(accuracy):
            return
        self._seen.add((trial_id, evaluation))
        computes, bests = self._curves.setdefault(trial_id, ([], []))
        point = Point(trial_id, compute, accuracy)
        if not computes or compute >= computes[-1]:  # the usual case: compute only grows
            computes.append(compute)
            bests.append(point if not bests or accuracy > bests[-1].accuracy else bests[-1])
            return
        i = bisect.bisect_right(computes, compute)  # a point out of order: insert it
        computes.insert(i, compute)
        bests.insert(i, point if i == 0 or accuracy > bests[i - 1].accuracy else bests[i - 1])
        for j in range(i + 1, len(bests)):  # a running best after it may now be this point
            if accuracy > bests[j].accuracy:
                bests[j] = point

    def best_of(self, trial_id: str) -> Point | None:
        """A trial's most accurate evaluation so far."""
        curve = self._curves.get(trial_id)
        return curve[1][-1] if curve else None

    def first_reaching(self, accuracy: float, excluding: set[str]) -> Point | None:
        """The evaluation with the least compute at which a trial not in `excluding` had reached
        `accuracy` (its best so far at least that), or None."""
        first: Point | None = None
        for trial_id, (computes, bests) in self._curves.items():
            if trial_id in excluding:
                continue
            i = bisect.bisect_left(bests, accuracy, key=lambda p: p.accuracy)
            if i < len(bests) and (first is None or computes[i] < first.compute):
                first = Point(trial_id, computes[i], bests[i].accuracy)
        return first

    def best(self, compute: float, excluding: str) -> Point | None:
        """The most accurate evaluation of any trial but `excluding` at compute <= `compute`."""
        best: Point | None = None
        for trial_id, (computes, bests) in self._curves.items():
            if trial_id == excluding:
                continue
            i = bisect.bisect_right(computes, compute)
            if i and (best is None or bests[i - 1].accuracy > best.accuracy):
                best = bests[i - 1]
        return best


@dataclass
class _TrialRungs:
    next_rung: float  # compute at which the trial is next judged
    verdicts: list[Verdict] = field(default_factory=list)


class FrontierRule:
    """The rule over a stream of records (the result log's rows, as trials report them).

    `train_size` is the number of training examples (N): a full-set epoch of a model costs its
    FLOPs per sample times N."""

    def __init__(self, options: FrontierOptions, train_size: int) -> None:
        self.options, self.train_size = options, train_size
        self.frontier = AnytimeFrontier()
        self._trials: dict[str, _TrialRungs] = {}
        self._ordinary: set[str] = set()  # ordinary-training trials seen ...
        self._ordinary_running: set[str] = set()  # ... those not ended yet
        self._ordinary_best = -math.inf  # and their best accuracy

    def observe(self, record: dict[str, Any]) -> None:
        """Add a record to the frontier without judging it (rows of trials from before a
        resume, read back from the log)."""
        trial_id, accuracy = record["trial_id"], self._accuracy(record)
        self.frontier.add(trial_id, int(record["evaluation"]), compute_flops(record), accuracy)
        if is_ordinary(record):
            self._ordinary.add(trial_id)
            if record.get("status", "running") == "running":
                self._ordinary_running.add(trial_id)
            else:
                self._ordinary_running.discard(trial_id)
            if accuracy > self._ordinary_best:  # (False for NaN)
                self._ordinary_best = accuracy

    def on_result(self, record: dict[str, Any]) -> Verdict | None:
        """Judge a trial's new evaluation if it is at a rung, then add it to the frontier.
        None: not judged (continue); otherwise the verdict."""
        verdict = self._judge(record)
        self.observe(record)
        if verdict is not None and verdict.stop:
            self.ended(record["trial_id"])  # (an ordinary-training trial: stop_ordinary)
        return verdict

    def ended(self, trial_id: str) -> None:
        """A trial has ended without a final record (it failed, or was stopped): an
        ordinary-training trial no longer holds the race back. (A retry's records start it
        again.)"""
        self._ordinary_running.discard(trial_id)

    @property
    def target(self) -> float | None:
        """The target of the race: ordinary training's best accuracy so far less the tolerance,
        once no ordinary-training trial is running (None until then)."""
        if self._ordinary_running or self._ordinary_best == -math.inf:
            return None
        return self._ordinary_best - self.options.tolerance

    def _accuracy(self, record: dict[str, Any]) -> float:
        value = record.get(self.options.metric)  # null: not measured (e.g. no validation)
        return math.nan if value is None else float(value)

    def verdicts(self, trial_id: str) -> list[Verdict]:
        trial = self._trials.get(trial_id)
        return list(trial.verdicts) if trial else []

    def _judge(self, record: dict[str, Any]) -> Verdict | None:
        o = self.options
        trial_id = record["trial_id"]
        compute, accuracy = compute_flops(record), self._accuracy(record)
        if record.get("status", "running") != "running":
            return None  # its last record (finished, diverged): nothing left to stop
        if math.isnan(accuracy) or (is_ordinary(record) and not o.stop_ordinary):
            return None
        if o.beaten_to_target and not is_ordinary(record):
            verdict = self._race(record, compute, accuracy)
            if verdict is not None:
                return verdict
        if not o.dominated:
            return None
        trial = self._trials.get(trial_id)
        if trial is None:
            first = o.first_rung * float(record["flops_per_sample"]) * self.train_size
            trial = self._trials[trial_id] = _TrialRungs(next_rung=first)
        if compute < trial.next_rung:
            return None
        if in_pretraining(record) and (o.pretrain_allowance is None
                                       or compute < o.pretrain_allowance * trial.next_rung):
            return None  # the rung waits for the end of pretraining (or the allowance)
        accuracy = self._best_so_far(trial_id, accuracy)
        best = self.frontier.best(compute / o.flops_factor, excluding=trial_id)
        stop = best is not None and best.accuracy >= accuracy + o.margin
        verdict = Verdict(trial_id, stop, trial.next_rung, Point(trial_id, compute, accuracy),
                          best)
        trial.verdicts.append(verdict)
        while trial.next_rung <= compute:
            trial.next_rung *= o.eta
        return verdict

    def _best_so_far(self, trial_id: str, accuracy: float) -> float:
        """A trial's anytime accuracy: the best of its earlier evaluations and this one's."""
        own = self.frontier.best_of(trial_id)
        return own.accuracy if own is not None and own.accuracy > accuracy else accuracy

    def _race(self, record: dict[str, Any], compute: float, accuracy: float) -> Verdict | None:
        """The race to the target (module docstring): a stop verdict, or None."""
        target = self.target
        trial_id = record["trial_id"]
        accuracy = self._best_so_far(trial_id, accuracy)
        if target is None or accuracy >= target:
            return None
        winner = self.frontier.first_reaching(target, excluding=self._ordinary | {trial_id})
        if winner is None or winner.compute >= compute:
            return None
        verdict = Verdict(trial_id, True, compute, Point(trial_id, compute, accuracy), winner,
                          target)
        self._trials.setdefault(trial_id, _TrialRungs(next_rung=math.inf)).verdicts.append(verdict)
        return verdict


def is_ordinary(record: dict[str, Any]) -> bool:
    return record.get("strategy") == "none"


def in_pretraining(record: dict[str, Any]) -> bool:
    """Whether the trial is still pretraining: its evaluation before any training (`init`: with
    a costly small set, k-means, that can come past a rung) or in its pretraining phase, short of
    its last epoch (the evaluation that ends that epoch gives the accuracy after pretraining)."""
    if record.get("phase") == "init":
        return True
    end = record.get("pretrain_end")  # on the evaluation that ended pretraining: why
    if record.get("phase") != "pretrain" or (isinstance(end, str) and end):
        return False
    epochs = record.get("pretrain_epochs")
    return epochs is None or float(record["epoch"]) < float(epochs) - EPOCH_TOLERANCE

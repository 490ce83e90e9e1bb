"""Savings by criterion: how much compute pretraining saves depends on what "the same result" is.

Three criteria, each a target set by ordinary training (strategy `none`) of the same dataset:

- `accuracy`: its best accuracy less `tolerance`, on the validation split when the log has one
  (`val_accuracy`), else on the test set;
- `loss_minimum`: within `epsilon` (relative) of its lowest training-set loss
  (`train_sample_loss`, the paper's criterion);
- `converged_accuracy`: its final test accuracy (the median over its trials' last
  evaluations, less `tolerance`): where training to convergence ends.

Compute to reach a target is interpolated between the two evaluations around the first crossing
and carries its **bracket**: for one run, the compute of the evaluation just before the crossing
and of the one at or past it; for the least compute of several runs, the least of their
evaluations just before and the least of those at or past (any run may be the first to
cross). A saving is stated as an interval from the brackets (baseline's low / pretraining's
high, baseline's high / pretraining's low); it is `resolved` only when that interval lies wholly
on one side of 1 (the evaluations establish that pretraining saves, or costs); when neither side
reaches a (fixed) target the saving is NaN and nothing is resolved. Per seed shared by
ordinary training and pretraining, with that seed's own targets (its ordinary training's best
accuracy, lowest loss, final accuracy): the ratio of ordinary training's compute to the best
pretraining trial's (0 when no pretraining trial of the seed reaches it), and their median, min
and max.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.load import is_baseline
from analysis.savings import (
    CONFIG_KEYS,
    DEFAULT_TOLERANCE,
    accuracy_column,
    least_to_reach,
    logged,
    resolved,
    saving_interval,
    savings_ratio,
    target_table,
    trial_curves,
)

DEFAULT_EPSILON = 0.01  # "at the loss minimum": within 1% of ordinary training's lowest loss


Fixed = tuple[float, str]  # a fixed accuracy target (`--target`) and the column it is judged on


def _targets(baseline: pd.DataFrame, tolerance: float, epsilon: float,
             fixed: Fixed | None = None) -> list[tuple]:
    """(criterion, column, target, higher is better, reference) for the criteria the log can
    answer, after the `fixed` target (criterion `target`) when there is one; without ordinary
    training, only that. `reference`: ordinary training's value the target is set from (its
    best accuracy, lowest loss, median final accuracy; NaN for the fixed target)."""
    out = [] if fixed is None else [("target", fixed[1], fixed[0], True, np.nan)]
    if baseline.empty:
        return out
    accuracy = accuracy_column(baseline)
    best = float(baseline[accuracy].max())
    out.append(("accuracy", accuracy, best - tolerance, True, best))
    if logged(baseline, "train_sample_loss"):
        lowest = float(baseline["train_sample_loss"].min())
        out.append(("loss_minimum", "train_sample_loss", lowest * (1 + epsilon), False, lowest))
    finals = baseline.sort_values("evaluation").groupby(["sweep", "trial_id"]).tail(1)
    final = float(finals["test_accuracy"].median())
    out.append(("converged_accuracy", "test_accuracy", final - tolerance, True, final))
    return out


def savings_by_criterion(df: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                         epsilon: float = DEFAULT_EPSILON, target: float | None = None,
                         target_on: str = "auto") -> pd.DataFrame:
    """One row per dataset and criterion (first the fixed accuracy `target`, judged on
    `target_on`, when given): the target and the value of ordinary training's it is set from
    (`reference`, see `_targets`), ordinary training's and pretraining's least compute
    to reach it (with brackets), the saving and its interval, whether the evaluations resolve
    it, and the saving per shared seed (median, min, max, count)."""
    rows = []
    for dataset, group in df.groupby("dataset", sort=True):
        baseline, pretrained = group[is_baseline(group)], group[~is_baseline(group)]
        if baseline.empty or pretrained.empty:
            continue
        fixed = None if target is None else (target, accuracy_column(group, target_on))
        for criterion, column, value, higher, reference in _targets(baseline, tolerance,
                                                                    epsilon, fixed):
            base_curves = trial_curves(baseline, column)
            pre_curves = trial_curves(pretrained, column)
            base, _ = least_to_reach(base_curves, value, higher)
            pre, trial = least_to_reach(pre_curves, value, higher)
            low, high = saving_interval(base, pre)
            per_seed = _per_seed(baseline, pretrained, criterion, tolerance, epsilon, fixed)
            rows.append({
                "dataset": dataset, "criterion": criterion, "metric": column, "target": value,
                "reference": reference,
                "baseline_flops": base.flops, "baseline_low": base.low,
                "baseline_high": base.high, "pretrain_flops": pre.flops,
                "pretrain_low": pre.low, "pretrain_high": pre.high,
                "pretrain_trial": None if trial is None else f"{trial[0]}/{trial[1]}",
                "savings": savings_ratio(base.flops, pre.flops),
                "savings_low": low, "savings_high": high,
                "resolved": resolved(low, high),
                "seeds": len(per_seed),
                "seed_median": float(np.median(per_seed)) if per_seed else np.nan,
                "seed_min": min(per_seed, default=np.nan),
                "seed_max": max(per_seed, default=np.nan),
            })
    return pd.DataFrame(rows, columns=CRITERIA_COLUMNS)


CRITERIA_COLUMNS = ["dataset", "criterion", "metric", "target", "reference", "baseline_flops",
                    "baseline_low", "baseline_high", "pretrain_flops", "pretrain_low",
                    "pretrain_high", "pretrain_trial", "savings", "savings_low", "savings_high",
                    "resolved", "seeds", "seed_median", "seed_min", "seed_max"]


def _per_seed(baseline: pd.DataFrame, pretrained: pd.DataFrame, criterion: str,
              tolerance: float, epsilon: float, fixed: Fixed | None) -> list[float]:
    """For each seed both have, with the target `criterion` sets from that seed's ordinary
    training: its least compute to reach it over the seed's best pretraining trial's."""
    ratios = []
    seeds = set(baseline["seed"].dropna()) & set(pretrained["seed"].dropna())
    for seed in sorted(seeds):
        own = baseline[baseline["seed"] == seed]
        found = [t for t in _targets(own, tolerance, epsilon, fixed) if t[0] == criterion]
        if not found:
            continue
        _, column, target, higher, _ = found[0]
        base, _ = least_to_reach(trial_curves(own, column), target, higher)
        pre, _ = least_to_reach(trial_curves(pretrained[pretrained["seed"] == seed], column),
                                target, higher)
        if np.isfinite(base.flops):
            ratios.append(savings_ratio(base.flops, pre.flops))
    return ratios


def targets_by_criterion(df: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE,
                         epsilon: float = DEFAULT_EPSILON, target: float | None = None,
                         target_on: str = "auto") -> pd.DataFrame:
    """Compute to reach each criterion's target per configuration across its seeds
    (`analysis.savings.target_table`, with the same-seed spread), one block per dataset and
    criterion; with `target`, first a block for that accuracy (criterion `target`), judged on
    `target_on` (see `accuracy_column`)."""
    parts = []
    for _, group in df.groupby("dataset", sort=True):
        baseline = group[is_baseline(group)]
        fixed = None if target is None else (target, accuracy_column(group, target_on))
        for criterion, column, value, higher, reference in _targets(baseline, tolerance,
                                                                    epsilon, fixed):
            table = target_table(group, value, column, higher)
            table.insert(0, "reference", reference)
            table.insert(0, "target", value)
            table.insert(0, "metric", column)
            table.insert(0, "criterion", criterion)
            parts.append(table)
    if not parts:  # no blocks: still a table with its columns
        return pd.DataFrame(columns=["criterion", "metric", "target", "reference", *CONFIG_KEYS,
                                     "seeds",
                                     "reached", "median_gflops", "min_gflops", "max_gflops",
                                     "median_savings_same_seed", "min_savings_same_seed",
                                     "max_savings_same_seed"])
    return pd.concat(parts, ignore_index=True)

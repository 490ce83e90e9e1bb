"""How much compute pretraining saves: FLOPs to reach an accuracy, against ordinary training.

Compute of a trial at an evaluation is its training FLOPs plus the FLOPs spent building its small
set (k-means; zero for index selections and negligible for class means), so a selection method
cannot hide its own cost. FLOPs to reach accuracy a: linear interpolation between the two
evaluations where the trial's accuracy first crosses a (FLOPs spent before the first evaluation
at or above a are counted; evaluations are finer than an epoch).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from analysis.load import compute, final_rows, is_baseline
from common.describe import describe_config

DEFAULT_TOLERANCE = 0.005  # "reaches the baseline's accuracy" = within half a percentage point


def format_gflops(value: float, trailing_zeros: bool = True) -> str:
    """GFLOPs for people: 3 significant digits, whole numbers from 1,000 up (no exponents),
    'not reached' for inf. With `trailing_zeros`, numbers side by side read alike ("0.922 vs
    1.90", not "1.9"); without (an axis's ticks), as short as they go ("0.1", "1", "10")."""
    if not np.isfinite(value):
        return "not reached"
    short = f"{value:.3g}"
    if abs(float(short)) >= 1000:  # 999.6 too: not "1e+03"
        return f"{value:,.0f}"
    if not trailing_zeros or value == 0 or "e" in short:
        return short
    return f"{value:#.3g}".rstrip(".")


def logged(rows: pd.DataFrame, column: str) -> bool:
    """Whether the log has values in `column` (older logs and runs without it: all null)."""
    return column in rows and bool(rows[column].notna().any())


def accuracy_column(rows: pd.DataFrame, on: str = "auto") -> str:
    """The accuracy targets are judged on: `on` = "validation" or "test", or "auto": the
    validation split when the log has one, else the test set (as `sweep trial --target-on`)."""
    if on == "auto":
        on = "validation" if logged(rows, "val_accuracy") else "test"
    return {"validation": "val_accuracy", "test": "test_accuracy"}[on]


def flops_to_reach(flops: np.ndarray, accuracy: np.ndarray, target: float) -> float:
    """FLOPs at which a trial's accuracy curve first reaches `target` (inf if it never does)."""
    return reach(flops, accuracy, target).flops


@dataclass(frozen=True)
class Reach:
    """Compute at which a curve first reaches a target: interpolated, and its bracket (from
    `least_to_reach`: the least compute's over several curves)."""

    flops: float  # inf: never reached
    low: float  # compute of the evaluation before the crossing (= flops if the first reaches)
    high: float  # compute of the evaluation at or past the target


NEVER = Reach(np.inf, np.inf, np.inf)


def reach(flops: np.ndarray, values: np.ndarray, target: float, higher: bool = True) -> Reach:
    """Where `values` (accuracy if `higher`, else a loss) first reaches `target`."""
    values = np.asarray(values, dtype=float)
    flops = np.asarray(flops, dtype=float)
    hit = np.flatnonzero(values >= target if higher else values <= target)
    if len(hit) == 0:
        return NEVER
    i = hit[0]
    if i == 0:
        return Reach(float(flops[0]), float(flops[0]), float(flops[0]))
    x0, x1, v0, v1 = flops[i - 1], flops[i], values[i - 1], values[i]
    at = x0 + (target - v0) / (v1 - v0) * (x1 - x0) if v1 != v0 else x1
    return Reach(float(at), float(x0), float(x1))


def _split(group: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Ordinary-training rows and pretraining rows."""
    baseline = is_baseline(group)
    return group[baseline], group[~baseline]


Curve = tuple[tuple[str, str], "int | None", np.ndarray, np.ndarray]


def trial_curves(rows: pd.DataFrame, column: str = "test_accuracy") -> list[Curve]:
    """((sweep, trial_id), seed, compute, values of `column`) of each trial, in evaluation order,
    evaluations without a value dropped: extracted once, then searched for any target."""
    out = []
    for key, trial in rows.groupby(["sweep", "trial_id"], sort=True):
        trial = trial.sort_values("evaluation")
        trial = trial[trial[column].notna()]
        if len(trial):
            seed = trial["seed"].iloc[0] if "seed" in trial else None
            out.append((key, None if pd.isna(seed) else int(seed),
                        compute(trial).to_numpy(dtype=float),
                        trial[column].to_numpy(dtype=float)))
    return out


def least_to_reach(curves: list[Curve], target: float,
                   higher: bool = True) -> tuple[Reach, tuple[str, str] | None]:
    """Least compute any of the curves needs to reach `target`, interpolated, and that trial's
    (sweep, trial_id). Its bracket is the least compute's over all the curves (the least of
    their lows, the least of their highs): each trial crosses somewhere in its own bracket, so
    another trial whose bracket reaches below the chosen one's may cross first."""
    best, trial = NEVER, None
    low = high = np.inf
    for key, _, flops, values in curves:
        found = reach(flops, values, target, higher)
        if found.flops < best.flops:
            best, trial = found, key
        low, high = min(low, found.low), min(high, found.high)
    return Reach(best.flops, low, high), trial


def savings_table(df: pd.DataFrame, points: int = 21) -> pd.DataFrame:
    """Per dataset, over accuracies from half the baseline's best up to its best: the FLOPs of the
    best ordinary-training run and of the best pretraining run to reach each (with the bracket
    of that least compute over every run: the least of the runs' evaluations just before their
    crossings, the least of those at or past them), their ratio, the ratio's interval from those
    brackets, and whether the evaluations resolve it (the interval lies on one side of 1).
    Accuracy (`metric`): validation when the dataset's log has a validation split, else test
    (`accuracy_column`), as the headline and the criteria. A dataset without ordinary training
    or without pretraining trials has no rows: nothing to compare."""
    rows = []
    for dataset, group in df.groupby("dataset", sort=True):
        baseline, pretrained = _split(group)
        if baseline.empty or pretrained.empty:
            continue
        metric = accuracy_column(baseline)  # as the criteria
        best = baseline[metric].max()
        base_curves = trial_curves(baseline, metric)
        pre_curves = trial_curves(pretrained, metric)
        for target in np.linspace(best / 2, best, points):
            base, base_trial = least_to_reach(base_curves, target)
            pre, pre_trial = least_to_reach(pre_curves, target)
            low, high = saving_interval(base, pre)
            rows.append({"dataset": dataset, "metric": metric, "target_accuracy": target,
                         "baseline_flops": base.flops, "baseline_trial": _label(base_trial),
                         "pretrain_flops": pre.flops, "pretrain_trial": _label(pre_trial),
                         "savings": savings_ratio(base.flops, pre.flops),
                         "baseline_low": base.low, "baseline_high": base.high,
                         "pretrain_low": pre.low, "pretrain_high": pre.high,
                         "savings_low": low, "savings_high": high,
                         "resolved": resolved(low, high)})
    return pd.DataFrame(rows, columns=SAVINGS_COLUMNS)


SAVINGS_COLUMNS = ["dataset", "metric", "target_accuracy", "baseline_flops", "baseline_trial",
                   "pretrain_flops", "pretrain_trial", "savings", "baseline_low",
                   "baseline_high", "pretrain_low", "pretrain_high", "savings_low",
                   "savings_high", "resolved"]


def saving_interval(base: Reach, pre: Reach) -> tuple[float, float]:
    """A saving's interval from the two brackets: (ordinary training's low / pretraining's
    high, ordinary training's high / pretraining's low); (0, 0) when only ordinary training
    reaches the target, (NaN, NaN) when neither does (nothing is resolved)."""
    if not np.isfinite(pre.flops):
        return (0.0, 0.0) if np.isfinite(base.flops) else (np.nan, np.nan)
    return savings_ratio(base.low, pre.high), savings_ratio(base.high, pre.low)


def resolved(low: float, high: float) -> bool:
    """Whether the evaluations resolve a saving: its interval lies wholly on one side of 1
    (NaN, when neither side reaches the target: not resolved)."""
    return bool(low > 1 or high < 1)


BAND_FLOOR, BAND_CEILING = 0.05, 200.0  # where a log-scale figure draws an interval's 0 and inf


def savings_band(reached: pd.DataFrame) -> tuple[pd.DataFrame, tuple[float, float]]:
    """The savings intervals as a figure draws them on a log axis: each row's savings_low and
    savings_high, an unbounded end (0: the crossing lies before the first evaluation after the
    start; inf) clipped to BAND_FLOOR / BAND_CEILING so that it runs to the plot's edge; and the
    y range that shows the savings themselves (the band may run beyond it)."""
    band = reached[["target_accuracy", "savings_low", "savings_high"]].copy()
    band["savings_low"] = band["savings_low"].clip(lower=BAND_FLOOR)
    band["savings_high"] = band["savings_high"].clip(upper=BAND_CEILING)
    values = reached["savings"]
    bottom = max(BAND_FLOOR, min(0.5, float(values.min()) / 2)) if len(values) else 0.5
    top = min(BAND_CEILING, max(20.0, float(values.max()) * 2)) if len(values) else 20.0
    return band, (bottom, top)


def _label(trial: tuple[str, str] | None) -> str | None:
    return None if trial is None else f"{trial[0]}/{trial[1]}"


def savings_ratio(baseline_flops: float, pretrain_flops: float) -> float:
    """Baseline compute over pretraining compute to the same target: 0 when pretraining never
    reaches it and ordinary training does, NaN when neither does, inf when pretraining reaches
    it with no compute (or at all) and ordinary training needs some (or never does)."""
    if not np.isfinite(pretrain_flops):
        return 0.0 if np.isfinite(baseline_flops) else np.nan
    if pretrain_flops == 0:
        return 1.0 if baseline_flops == 0 else float("inf")
    return baseline_flops / pretrain_flops


@dataclass
class Headline:
    dataset: str
    baseline_accuracy: float  # ordinary training's best
    target_accuracy: float  # best - tolerance
    baseline_flops: float  # least compute ordinary training needs for the target
    pretrain_flops: float  # least compute any pretraining configuration needs (inf: none does)
    savings: float  # baseline_flops / pretrain_flops
    config: dict[str, Any]  # the pretraining trial that does it
    metric: str = "test_accuracy"  # what the accuracy is measured on (`accuracy_column`)
    # epochs of the ordinary training whose best came in their last tenth, which then ran out:
    # it may still have been improving, so the target is that of training of this length
    baseline_cut_at: float | None = None
    # the saving's interval from the evaluations either side of each crossing (saving_interval)
    interval: tuple[float, float] = (np.nan, np.nan)
    # where no pretraining trial reaches the target: the most accurate one's best accuracy, its
    # settings, and the least compute each side needs to reach that accuracy
    closest: float = np.nan
    closest_config: dict[str, Any] | None = None
    closest_flops: tuple[float, float] = (np.nan, np.nan)  # (ordinary training, pretraining)
    closest_interval: tuple[float, float] = (np.nan, np.nan)  # of their ratio (saving_interval)

    @property
    def caveat(self) -> str | None:
        """A sentence when ordinary training may still have been improving as its epochs ran
        out."""
        if self.baseline_cut_at is None:
            return None
        return (f"{self.dataset}: ordinary training reached its best {self.accuracy_words} in "
                f"the last tenth of its {self.baseline_cut_at:g} epochs, and then they ran out: "
                "it may still have been improving, so this is the saving against training of "
                "that length (ordinary_training_epochs in a sweep file runs it longer; a "
                "stopping rule on both sides, as the paper preset has, compares converged "
                "training)")

    @property
    def accuracy_words(self) -> str:
        """'accuracy' (on the test set), or 'validation accuracy'."""
        return "validation accuracy" if self.metric == "val_accuracy" else "accuracy"

    def sentence(self, tolerance: float = DEFAULT_TOLERANCE) -> str:
        reach = (f"ordinary training's best {self.accuracy_words} {self.baseline_accuracy:.2%} "
                 f"(within {tolerance * 100:.1f} pp)")
        if not np.isfinite(self.pretrain_flops):
            return f"{self.dataset}: no pretraining configuration reaches {reach}{self._closest()}"
        if self.baseline_flops == 0:
            return (f"{self.dataset}: ordinary training reaches its best {self.accuracy_words} "
                    f"{self.baseline_accuracy:.2%} untrained (at its first evaluation): there "
                    "is no compute to save")
        c = self.config
        how = describe_config(c)
        pre = format_gflops(self.pretrain_flops / 1e9)
        base = format_gflops(self.baseline_flops / 1e9)
        if self.pretrain_flops == 0:
            return (f"{self.dataset}: {how} reaches {reach} at its first evaluation, with no "
                    f"training compute (ordinary training: {base} GFLOPs)")
        flops = f"({pre} vs {base} GFLOPs{self._interval_words(self.savings < 1)})"
        if self.savings >= 1:
            return (f"{self.dataset}: {how} reaches {reach} with {self.savings:.2f}x fewer FLOPs "
                    f"{flops}")
        return (f"{self.dataset}: the best pretraining configuration ({how}) needs "
                f"{1 / self.savings:.2f}x more FLOPs than ordinary training to reach {reach} "
                f"{flops}")

    def _closest(self) -> str:
        """'; the most accurate, <how>, gets to 94.17% (0.61 pp short of the target), with
        1.76x fewer FLOPs than ordinary training needs to reach 94.17% (7.03 vs 12.4 GFLOPs;
        1.74-1.80x from the evaluations either side)', or '' where no pretraining trial was
        evaluated."""
        if self.closest_config is None or not self.closest == self.closest:
            return ""
        short = (self.target_accuracy - self.closest) * 100
        words = (f"; the most accurate, {describe_config(self.closest_config)}, gets to "
                 f"{self.closest:.2%} ({short:.2f} pp short of the target)")
        base, pre = self.closest_flops
        if base == 0:
            return f"{words}, which ordinary training reaches untrained"
        if not (np.isfinite(base) and np.isfinite(pre)) or pre == 0:
            return words
        ratio = base / pre
        compare = f"{ratio:.2f}x fewer" if ratio >= 1 else f"{1 / ratio:.2f}x more"
        interval = self._interval_words(ratio < 1, self.closest_interval)
        return (f"{words}, with {compare} FLOPs than ordinary training needs to reach "
                f"{self.closest:.2%} ({format_gflops(pre / 1e9)} vs {format_gflops(base / 1e9)} "
                f"GFLOPs{interval})")

    def _interval_words(self, more: bool = False,
                        interval: tuple[float, float] | None = None) -> str:
        """'; 1.06-1.11x from the evaluations either side', with ', not resolved' when the
        interval spans 1; with `more` (pretraining costs more) as the sentence says it:
        '; 1.50-2.50x more from ...'; an open end as `interval_words` says it ('; at least
        1.25x more from ...', '; at most 2.00x more from ...'); '' without an interval. Of the
        headline's saving, or of `interval`."""
        low, high = self.interval if interval is None else interval
        if not (low == low and high == high):  # NaN: none known
            return ""
        unsure = "" if resolved(low, high) else ", not resolved"
        if more:
            low, high = (np.inf if high == 0 else 1 / high), (np.inf if low == 0 else 1 / low)
        span = interval_words(low, high, "x more" if more else "x")
        return f"; {span} from the evaluations either side{unsure}"


def interval_words(low: float, high: float, unit: str = "x") -> str:
    """A ratio's interval for people: '1.00-4.00x', 'at least 2.00x' (no upper end),
    'at most 0.80x' (no lower end), 'unbounded' (both ends infinite: only pretraining reaches
    the target); `unit` follows the numbers ('x more')."""
    if low == np.inf:
        return "unbounded"
    if high == np.inf:
        return f"at least {low:.2f}{unit}"
    return f"at most {high:.2f}{unit}" if low == 0 else f"{low:.2f}-{high:.2f}{unit}"


def headlines(df: pd.DataFrame, tolerance: float = DEFAULT_TOLERANCE) -> list[Headline]:
    """Per dataset with both ordinary training and pretraining: the least compute each needs to
    reach ordinary training's best accuracy less `tolerance`, on the validation split when the
    log has one (`accuracy_column`, as the criteria), and the pretraining trial that does it."""
    out = []
    for dataset, group in df.groupby("dataset", sort=True):
        baseline, pretrained = _split(group)
        if baseline.empty or pretrained.empty:
            continue
        metric = accuracy_column(baseline)  # as the criteria
        best = float(baseline[metric].max())
        target = best - tolerance
        base, _ = least_to_reach(trial_curves(baseline, metric), target)
        pre, trial = least_to_reach(trial_curves(pretrained, metric), target)
        base_flops, pre_flops = base.flops, pre.flops
        config = {} if trial is None else _settings(pretrained, trial)
        headline = Headline(dataset, best, target, base_flops, pre_flops,
                            savings_ratio(base_flops, pre_flops), config, metric,
                            _cut_short(baseline, metric, best), saving_interval(base, pre))
        if trial is None and pretrained[metric].notna().any():
            out.append(_with_closest(headline, baseline, pretrained, metric))
        else:
            out.append(headline)
    return out


def _settings(df: pd.DataFrame, trial: tuple[str, str]) -> dict[str, Any]:
    """A trial's settings (its final row), by its (sweep, trial_id)."""
    rows = df[(df["sweep"] == trial[0]) & (df["trial_id"] == trial[1])]
    return final_rows(rows).iloc[0].to_dict()


def _with_closest(headline: Headline, baseline: pd.DataFrame, pretrained: pd.DataFrame,
                  metric: str) -> Headline:
    """The headline with the most accurate pretraining trial, where none reaches the target."""
    closest = float(np.nanmax(pretrained[metric].to_numpy(dtype=float)))
    base, _ = least_to_reach(trial_curves(baseline, metric), closest)
    # of the trials that get there (several may), the one that needs the least compute
    pre, key = least_to_reach(trial_curves(pretrained, metric), closest)
    if key is None:  # its evaluation has no compute to go by
        return headline
    return dataclasses.replace(headline, closest=closest,
                               closest_config=_settings(pretrained, key),
                               closest_flops=(base.flops, pre.flops),
                               closest_interval=saving_interval(base, pre))


LATE = 0.9  # a best at or after this share of a trial's epochs came late: it may not be its last


def _cut_short(baseline: pd.DataFrame, metric: str, best: float) -> float | None:
    """The epochs of an ordinary-training trial that reached the best accuracy only in the last
    tenth of its epochs and ended because they ran out, or None (its best came earlier, or a
    stopping rule ended it)."""
    for _, trial in baseline.groupby(["sweep", "trial_id"], sort=True):
        trial = trial.sort_values("evaluation")
        end = trial.iloc[-1]
        if end.get("stop_reason") != "max_epochs" or end.get("status") != "finished":
            continue
        at = trial[trial[metric] == best]
        if len(at) and end["epoch"] > 0 and at["epoch"].iloc[0] >= LATE * end["epoch"]:
            return float(end["epoch"])
    return None


CONFIG_KEYS = ["dataset", "strategy", "subset_size", "overdetermination_ratio", "pretrain_epochs",
               "finetune_epochs", "model", "width", "lr", "batch_size", "augment"]


def target_table(df: pd.DataFrame, target: float, column: str = "test_accuracy",
                 higher: bool = True) -> pd.DataFrame:
    """Compute to reach `target` in `column` (an accuracy if `higher`, else a loss) for each
    configuration across its seeds.

    One row per configuration (everything but the seed): seeds run, seeds that reached the
    target, median / min / max compute to reach it (GFLOPs; inf when not reached), and over the
    seeds it shares with ordinary training the ratio (ordinary training's compute / this
    configuration's): median, min and max, over the seeds where ordinary training reaches the
    target (a seed this configuration does not bring there counts 0, as in
    `analysis.criteria`). Ordinary training is the `none` configuration of the same dataset
    whose seeds reach the target most often (then: the most seeds).
    """
    curves = trial_curves(df, column) if column in df else []
    needed = {key: reach(flops, values, target, higher).flops for key, _, flops, values in curves}
    per_trial = []
    for key, rows in df.groupby(["sweep", "trial_id"], sort=True):
        first = rows.iloc[0]  # a trial's settings are the same on every row
        per_trial.append({**{k: first[k] for k in CONFIG_KEYS}, "seed": first["seed"],
                          "flops": needed.get(key, np.inf)})  # no values: not reached
    trials = pd.DataFrame(per_trial)
    keys = [k for k in CONFIG_KEYS if trials[k].notna().any()]
    trials[keys] = trials[keys].fillna(-1)  # group baselines (no subset) together
    out = []
    for config, group in trials.groupby(keys, sort=False):
        baseline = _baseline_by_seed(trials, group["dataset"].iloc[0], keys)
        by_seed = group.groupby("seed")["flops"].median()
        shared = by_seed.index.intersection(baseline[np.isfinite(baseline)].index)
        ratios = pd.Series([savings_ratio(baseline[s], by_seed[s]) for s in shared], dtype=float)
        out.append({**dict(zip(keys, config, strict=True)), "seeds": len(by_seed),
                    "reached": int(np.isfinite(by_seed).sum()),
                    "median_gflops": group["flops"].median() / 1e9,
                    "min_gflops": group["flops"].min() / 1e9,
                    "max_gflops": group["flops"].max() / 1e9,
                    "median_savings_same_seed": ratios.median() if len(ratios) else np.nan,
                    "min_savings_same_seed": ratios.min() if len(ratios) else np.nan,
                    "max_savings_same_seed": ratios.max() if len(ratios) else np.nan})
    table = pd.DataFrame(out).replace(-1, np.nan)
    return table.sort_values(["dataset", "median_gflops"], ignore_index=True)


def _baseline_by_seed(trials: pd.DataFrame, dataset: str, keys: list[str]) -> pd.Series:
    none = trials[(trials["dataset"] == dataset) & is_baseline(trials)]
    if none.empty:
        return pd.Series(dtype=float)
    score = none.groupby(keys, sort=False).agg(
        reached=("flops", lambda f: int(np.isfinite(f).sum())), seeds=("seed", "nunique"))
    best = score.sort_values(["reached", "seeds"], ascending=False, kind="stable").index[0]
    chosen = none[(none[keys] == pd.Series(best, index=keys)).all(axis=1)]
    return chosen.groupby("seed")["flops"].median()

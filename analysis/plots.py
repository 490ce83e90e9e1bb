"""Figures (matplotlib PNG): frontier, accuracy after pretraining versus Q, savings."""

from __future__ import annotations

import io
from pathlib import Path

import matplotlib
import matplotlib.ticker

matplotlib.use("Agg")  # files only; no display needed
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from analysis.load import COMPUTE, final_rows, is_baseline, with_compute, write_atomic  # noqa: E402
from analysis.pareto import pareto_front  # noqa: E402
from analysis.savings import format_gflops, savings_band  # noqa: E402
from common.records import FAILED  # noqa: E402

COLORS = {"none": "black", "random": "tab:blue", "stratified": "tab:green",
          "class_mean": "tab:red", "kmeans": "tab:purple"}


def _step(ax, front: pd.DataFrame, metric: str = "test_accuracy", **style) -> None:
    if not front.empty:
        ax.step(front[COMPUTE].clip(lower=1), front[metric], where="post", **style)


class GFlopsFormatter(matplotlib.ticker.LogFormatter):
    """Ticks of a log axis of FLOPs read in GFLOPs, as the report's text gives compute ('0.1',
    '1', '20'), on the ticks matplotlib's own log formatter labels."""

    # matplotlib's LogFormatter labels through this private method (3.x); tests/test_document.py
    # reads the ticks, so a change there fails a test rather than a figure
    def _num_to_string(self, x: float, vmin: float, vmax: float) -> str:
        return format_gflops(x / 1e9, trailing_zeros=False)


METRIC_LABELS = {"test_accuracy": "test accuracy", "val_accuracy": "validation accuracy",
                 "train_sample_accuracy": "training-set accuracy (sample)",
                 "train_sample_loss": "training-set loss (sample)", "val_loss": "validation loss",
                 "test_loss": "test loss"}


def frontier_figure(df: pd.DataFrame, dataset: str, path: Path,
                    metric: str = "test_accuracy") -> Path:
    """`metric` (an accuracy, higher is better, or a `*_loss`, lower is better, on a log
    scale) vs compute (training + selection FLOPs, log): trials' curves faint, final points by
    strategy (hollow: a trial's latest, while it runs, after an interruption or a failure), and the
    frontiers of pretraining and of ordinary training (every evaluation a candidate)."""
    higher = not metric.endswith("_loss")
    df = with_compute(df)
    # untrained evaluations (no training FLOPs) are left off the log axis
    logged = df[df["dataset"] == dataset]
    data = logged[(logged["train_flops"] > 0) & logged[metric].notna()]
    fig, ax = plt.subplots(figsize=(8, 5.5))
    for _, trial in data.groupby(["sweep", "trial_id"]):
        ax.plot(trial[COMPUTE], trial[metric], color="0.6", alpha=0.25, lw=0.8)
    # each trial at its latest value of the metric, with the status of its true last row (a
    # trial that diverged has no loss to plot there: it is not still running)
    how_ended = final_rows(logged).set_index(["sweep", "trial_id"])["status"]
    finals = final_rows(data)
    finals = finals.assign(status=how_ended.reindex(
        pd.MultiIndex.from_frame(finals[["sweep", "trial_id"]])).to_numpy())
    for strategy, rows in finals.groupby("strategy"):
        color = COLORS.get(strategy, "gray")
        # a trial still running (a sweep analysed while it runs, or interrupted) or failed: its
        # latest point, hollow
        ended = ~rows["status"].isin(["running", FAILED])
        if ended.any():
            ax.scatter(rows.loc[ended, COMPUTE], rows.loc[ended, metric], s=28, zorder=3,
                       color=color, label=f"{strategy} (final)")
        for status, latest in rows[~ended].groupby("status"):
            ax.scatter(latest[COMPUTE], latest[metric], s=28, zorder=3, facecolors="none",
                       edgecolors=color, label=f"{strategy} (latest, {status})")
    for part, style in ((data[~is_baseline(data)],
                         dict(color="tab:orange", lw=2.2, label="frontier: pretraining")),
                        (data[is_baseline(data)], dict(color="black", lw=1.6, ls="--",
                                                       label="frontier: ordinary training"))):
        _step(ax, pareto_front(part, x=COMPUTE, y=metric, by=None, points="all", higher=higher),
              metric,
              **style)
    ax.set_xscale("log")
    ax.xaxis.set_major_formatter(GFlopsFormatter())
    ax.xaxis.set_minor_formatter(GFlopsFormatter(labelOnlyBase=False))
    if not higher:
        ax.set_yscale("log")
    label = METRIC_LABELS.get(metric, metric)
    return _finish(fig, ax, path, "GFLOPs: training + small-set selection (log scale)",
                   label + ("" if higher else " (log scale)"),
                   f"{dataset}: {label} vs training compute ({len(finals)} trials)",
                   legend_loc="lower right" if higher else "upper right")


def pretraining_ends(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Each pretraining trial's last evaluation of pretraining, split in two: where pretraining
    ended (the row with `pretrain_end`; or a trial that went on to fine-tune, in a log from
    before that column; or one that finished in pretraining with no fine-tuning to do), and
    where the trial stopped, failed or is still running mid-pretraining (its rows with
    `trial_status`, the status of the trial's last row)."""
    last = final_rows(df).set_index(["sweep", "trial_id"])
    pre = final_rows(df[df["phase"] == "pretrain"])
    end = last.reindex(pd.MultiIndex.from_frame(pre[["sweep", "trial_id"]]))
    went_on = end["evaluation"].to_numpy() > pre["evaluation"].to_numpy()
    marked = pre["pretrain_end"].notna().to_numpy() if "pretrain_end" in pre else False
    no_finetuning = (end["status"] == "finished").to_numpy() & (
        (pre["finetune_epochs"] == 0).to_numpy() if "finetune_epochs" in pre else False)
    ended = marked | went_on | no_finetuning
    return pre[ended], pre[~ended].assign(trial_status=end["status"].to_numpy()[~ended])


def q_figure(df: pd.DataFrame, dataset: str, path: Path) -> Path:
    """Test accuracy at the end of pretraining versus the small set's overdetermination ratio Q
    (hollow: a trial's latest pretraining evaluation where it stopped, failed or is still
    running before its pretraining ended)."""
    ends, cut = pretraining_ends(df[df["dataset"] == dataset])
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for strategy, rows in ends.groupby("strategy"):
        ax.scatter(rows["overdetermination_ratio"], rows["test_accuracy"], s=30,
                   color=COLORS.get(strategy, "gray"), label=strategy)
    for (strategy, status), rows in cut.groupby(["strategy", "trial_status"]):
        ax.scatter(rows["overdetermination_ratio"], rows["test_accuracy"], s=30,
                   facecolors="none", edgecolors=COLORS.get(strategy, "gray"),
                   label=f"{strategy} (latest, {status} mid-pretraining)")
    baseline = df[(df["dataset"] == dataset) & is_baseline(df)]
    if not baseline.empty:
        ax.axhline(baseline["test_accuracy"].max(), color="black", ls="--", lw=1,
                   label="ordinary training, best")
    ax.axvline(1.0, color="0.5", ls=":", lw=1, label="Q = 1")
    ax.set_xscale("log")
    ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())  # no crowded minor labels
    return _finish(fig, ax, path, "overdetermination ratio Q = K·M/P of the small set (log)",
                   "test accuracy after pretraining", f"{dataset}: how large must Q be?")


def savings_figure(savings: pd.DataFrame, dataset: str, path: Path) -> Path:
    """Savings factor (baseline FLOPs / pretraining FLOPs) versus target accuracy."""
    data = savings[savings["dataset"] == dataset]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    reached = data[np.isfinite(data["pretrain_flops"]) & (data["savings"] > 0)]
    if "savings_low" in reached:  # the interval the evaluations allow, as a band
        band, limits = savings_band(reached)
        ax.fill_between(band["target_accuracy"], band["savings_low"], band["savings_high"],
                        color="tab:orange", alpha=0.2, lw=0,
                        label="interval: evaluations either side of each crossing")
        unresolved = reached[~reached["resolved"].astype(bool)]
        if len(unresolved):
            ax.plot(unresolved["target_accuracy"], unresolved["savings"], ls="none",
                    marker="o", mfc="white", color="tab:orange", zorder=3,
                    label="not resolved: the interval spans 1x")
    ax.plot(reached["target_accuracy"], reached["savings"], marker="o", color="tab:orange",
            label="saving (interpolated)", zorder=2)
    ax.axhline(1.0, color="black", lw=1, ls="--", label="no saving")
    ax.axhline(10.0, color="0.5", lw=1, ls=":", label="the paper's claim: 10x")
    ax.set_yscale("log")
    if "savings_low" in reached and len(reached):
        ax.set_ylim(*limits)  # an unbounded interval runs off the plot, not the savings
    metric = data["metric"].iloc[0] if len(data) else "test_accuracy"
    return _finish(fig, ax, path, f"target {METRIC_LABELS.get(metric, metric)}",
                   "FLOPs of ordinary training / FLOPs with pretraining",
                   f"{dataset}: compute saved by pretraining, by target")


def _finish(fig, ax, path: Path, xlabel: str, ylabel: str, title: str,
            legend_loc: str = "best") -> Path:
    """Label, grid and legend the axes, then save the figure atomically."""
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(alpha=0.3, which="both")
    if ax.get_legend_handles_labels()[0]:  # nothing drawn yet (a sweep just started): no legend
        ax.legend(fontsize=8, loc=legend_loc)
    fig.tight_layout()
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=110)
    plt.close(fig)
    write_atomic(path, png.getvalue())
    return path

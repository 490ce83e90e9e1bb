"""`sweep analyze`: frontier table, savings, figures and a report.md from one or several sweeps."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pandas as pd

from analysis.load import final_rows, is_baseline, load_results, write_atomic
from analysis.pareto import hypervolume, pareto_front
from analysis.plots import frontier_figure, q_figure, savings_figure
from analysis.savings import (
    DEFAULT_TOLERANCE,
    headlines,
    savings_table,
    target_table,
)
from common.describe import describe_config
from common.errors import UserError

FRONTIER_COLUMNS = ["dataset", "sweep", "trial_id", "strategy", "subset_size", "subset_fraction",
                    "overdetermination_ratio", "pretrain_epochs", "finetune_epochs", "model",
                    "width", "params", "lr", "batch_size", "seed", "augment", "train_flops",
                    "test_accuracy", "status"]


def frontier_hypervolumes(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: hypervolume of pretraining's and of ordinary training's frontier (every
    evaluation a candidate) in (log10 training FLOPs, accuracy), against the reference point
    (log10 of the dataset's largest training FLOPs, accuracy 0)."""
    rows = []
    for dataset, group in df[df["train_flops"] > 0].groupby("dataset", sort=True):
        x_ref = math.log10(group["train_flops"].max())
        row = {"dataset": dataset, "reference_log10_flops": x_ref, "reference_accuracy": 0.0}
        for label, part in (("pretraining", group[~is_baseline(group)]),
                            ("ordinary", group[is_baseline(group)])):
            row[f"hypervolume_{label}"] = hypervolume(
                np.log10(part["train_flops"].to_numpy(dtype=float)),
                part["test_accuracy"].to_numpy(dtype=float), (x_ref, 0.0))
        rows.append(row)
    return pd.DataFrame(rows)


def analyze(paths: list[str], out: str | Path, tolerance: float = DEFAULT_TOLERANCE,
            target: float | None = None) -> str:
    """Write frontier.parquet/.csv, savings.csv, figures, report.md (and with `target`,
    target.csv: compute to reach that accuracy per configuration across seeds) to `out`;
    return a summary."""
    df = load_results(paths)
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create ({e.strerror})") from None
    frontier = pareto_front(df, points="final")[FRONTIER_COLUMNS]
    write_atomic(out / "frontier.parquet", frontier.to_parquet(index=False))
    write_atomic(out / "frontier.csv", frontier.to_csv(index=False).encode())
    savings = savings_table(df)
    write_atomic(out / "savings.csv", savings.to_csv(index=False).encode())
    volumes = frontier_hypervolumes(df)
    found = headlines(df, tolerance)
    figures = {}
    for dataset in sorted(df["dataset"].unique()):
        figures[dataset] = [frontier_figure(df, dataset, out / f"frontier_{dataset}.png")]
        if (df[df["dataset"] == dataset]["phase"] == "pretrain").any():
            figures[dataset].append(q_figure(df, dataset, out / f"q_{dataset}.png"))
        if (savings["dataset"] == dataset).any():
            figures[dataset].append(
                savings_figure(savings, dataset, out / f"savings_{dataset}.png"))
    reach = None
    if target is not None:
        reach = target_table(df, target)
        write_atomic(out / "target.csv", reach.to_csv(index=False).encode())
    report = _report(df, frontier, volumes, found, figures, paths, tolerance, target, reach)
    write_atomic(out / "report.md", report.encode())
    return _summary(df, found, out, tolerance)


def in_progress(df: pd.DataFrame) -> str | None:
    """A sentence saying the sweep is still running (some trial's last row says `running`),
    or None. Those trials' latest evaluations are analysed as they stand."""
    finals = final_rows(df)
    running = int((finals["status"] == "running").sum())
    if not running:
        return None
    return (f"In progress: {running} of {len(finals)} trials are still running (or were "
            "interrupted); their latest evaluations are shown as they stand, not as results.")


def _summary(df: pd.DataFrame, found, out: Path, tolerance: float) -> str:
    finals = final_rows(df)
    lines = [f"{'dataset':14} {'trials':>6} {'baseline best':>13} {'pretrain best':>13}  headline"]
    progress = in_progress(df)
    if progress:
        lines.insert(0, progress)
    by_dataset = {h.dataset: h for h in found}
    for dataset, rows in finals.groupby("dataset", sort=True):
        base = rows[is_baseline(rows)]["test_accuracy"]
        pre = rows[~is_baseline(rows)]["test_accuracy"]
        headline = by_dataset.get(dataset)
        saving = "-" if headline is None else (
            "not reached" if not np.isfinite(headline.pretrain_flops)
            else f"{headline.savings:.2f}x fewer FLOPs at baseline accuracy "
                 f"-{tolerance * 100:.1f}pp")
        lines.append(f"{dataset:14} {len(rows):>6} {_pct(base):>13} {_pct(pre):>13}  {saving}")
    lines += [h.sentence(tolerance) for h in found]
    lines.append(f"wrote {out}/report.md, frontier.parquet/.csv, savings.csv and figures")
    return "\n".join(lines)


def _pct(values: pd.Series) -> str:
    return "-" if values.empty else f"{values.max():.2%}"


def _report(df, frontier, volumes, found, figures, paths, tolerance, target, reach) -> str:
    finals = final_rows(df)
    lines = ["# Sweep report", "", f"Results: {', '.join(paths)}; {len(df)} evaluations of "
             f"{len(finals)} trials. Compute = training FLOPs (forward + backward, "
             "FlopCounterMode) plus small-set selection FLOPs.", ""]
    progress = in_progress(df)
    if progress:
        lines[2:2] = [f"**{progress}**", ""]
    for dataset in sorted(df["dataset"].unique()):
        lines += [f"## {dataset}", ""]
        for h in found:
            if h.dataset == dataset:
                lines += [f"**{h.sentence(tolerance)}.**", ""]
        v = volumes[volumes["dataset"] == dataset]
        if not v.empty:
            v = v.iloc[0]
            lines += [f"Hypervolume in (log10 training FLOPs, accuracy), reference point "
                      f"({v['reference_log10_flops']:.2f}, 0): pretraining "
                      f"{v['hypervolume_pretraining']:.3f}, ordinary training "
                      f"{v['hypervolume_ordinary']:.3f} (larger is better).", ""]
        lines += ["Frontier configurations (each trial's final evaluation; less FLOPs, more "
                  "accuracy):", "", "| configuration | lr | batch | width | test accuracy | "
                  "training GFLOPs | trial |", "|---|---|---|---|---|---|---|"]
        for _, r in frontier[frontier["dataset"] == dataset].iterrows():
            how = describe_config(r.to_dict()) + (" (running)" if r["status"] == "running"
                                                  else "")
            lines.append(f"| {how} | {r['lr']:g} | {r['batch_size']} | "
                         f"{r['width']} | {r['test_accuracy']:.4f} | "
                         f"{r['train_flops'] / 1e9:.3f} | {r['trial_id']} |")
        lines.append("")
        if reach is not None:
            lines += _target_section(reach[reach["dataset"] == dataset], target)
        lines += [f"![{p.stem}]({p.name})" for p in figures.get(dataset, [])]
        lines.append("")
    return "\n".join(lines)


def _target_section(reach: pd.DataFrame, target: float) -> list[str]:
    lines = [f"Compute to reach {target:.1%} test accuracy, per configuration across its seeds "
             "(savings: ordinary training's compute / this one's, median over the seeds both "
             "ran):", "", "| configuration | seeds (reached) | median GFLOPs | min-max GFLOPs | "
             "savings, same seed |", "|---|---|---|---|---|"]
    for _, r in reach.iterrows():
        how = describe_config({**r.to_dict(), "subset_fraction": None})
        lines.append(f"| {how} | {r['seeds']} ({r['reached']}) | {r['median_gflops']:.3g} | "
                     f"{r['min_gflops']:.3g}-{r['max_gflops']:.3g} | "
                     f"{_ratio(r['median_savings_same_seed'])} |")
    return lines + [""]


def _ratio(value: float) -> str:
    return "-" if value != value else f"{value:.2f}x"  # NaN: no shared seed reached it

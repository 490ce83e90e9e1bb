"""`sweep analyze`: frontier table, savings, figures and a report.md from one or several sweeps."""

from __future__ import annotations

import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from analysis.criteria import (
    DEFAULT_EPSILON,
    accuracy_column,
    logged,
    savings_by_criterion,
    targets_by_criterion,
)
from analysis.document import Block, Para, Table, markdown
from analysis.interactive import write_interactive_report
from analysis.load import (
    COMPUTE,
    PRETRAIN_RAN,
    final_rows,
    is_baseline,
    load_results,
    with_compute,
    write_atomic,
)
from analysis.pareto import hypervolume, pareto_front
from analysis.plots import frontier_figure, q_figure, savings_figure
from analysis.savings import (
    CONFIG_KEYS,
    DEFAULT_TOLERANCE,
    Headline,
    headlines,
    interval_words,
    savings_table,
)
from analysis.savings import format_gflops as _gflops
from common import storage
from common.describe import describe_config
from common.errors import UserError
from common.records import FAILED, arrow_schema
from common.result_files import ANALYSIS_KEY

FRONTIER_COLUMNS = ["dataset", "sweep", "trial_id", "strategy", "subset_size", "subset_fraction",
                    "overdetermination_ratio", "pretrain_epochs", PRETRAIN_RAN, "finetune_epochs",
                    "model", "width", "params", "lr", "batch_size", "seed", "augment", "evaluation",
                    "phase", "epoch", "final", "train_flops", "selection_flops", COMPUTE,
                    "test_accuracy", "trial_status"]
FRONTIER_ROWS_SHOWN = 12  # report.md lists the most accurate frontier points; the files: all


def frontier_points(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset, the evaluations no other evaluation dominates (less compute, more test
    accuracy): every evaluation after some training is a candidate, since a trial stopped there
    is a configuration one could run, as in the figures, the hypervolumes and the headline.
    `final` says whether it is the trial's last evaluation, `trial_status` how the trial ended
    (its last row's status: finished, stopped, ...; running while it runs), where `status` is
    the row's own (running until the last)."""
    trained = df[df["train_flops"] > 0]
    last = final_rows(df).set_index(["sweep", "trial_id"])[["evaluation", "status"]]
    front = pareto_front(trained, x=COMPUTE, points="all")
    ends = last.reindex(pd.MultiIndex.from_frame(front[["sweep", "trial_id"]]))
    return front.assign(final=front["evaluation"].to_numpy() == ends["evaluation"].to_numpy(),
                        trial_status=ends["status"].to_numpy())


# Frontier figures drawn besides test accuracy's: the metrics of the criteria (analysis.criteria)
FRONTIER_METRICS = ("val_accuracy", "train_sample_loss")


def frontier_hypervolumes(df: pd.DataFrame) -> pd.DataFrame:
    """Per dataset: hypervolume of pretraining's and of ordinary training's frontier (every
    evaluation a candidate) in (log10 compute, accuracy), against the reference point (log10 of
    the dataset's largest compute, accuracy 0). Compute: `compute_flops`, of the evaluations
    after some training (as the figures: untrained ones are off a log axis)."""
    rows = []
    for dataset, group in df[df["train_flops"] > 0].groupby("dataset", sort=True):
        x_ref = math.log10(group[COMPUTE].max())
        row = {"dataset": dataset, "reference_log10_flops": x_ref, "reference_accuracy": 0.0}
        for label, part in (("pretraining", group[~is_baseline(group)]),
                            ("ordinary", group[is_baseline(group)])):
            row[f"hypervolume_{label}"] = hypervolume(
                np.log10(part[COMPUTE].to_numpy(dtype=float)),
                part["test_accuracy"].to_numpy(dtype=float), (x_ref, 0.0))
        rows.append(row)
    return pd.DataFrame(rows, columns=["dataset", "reference_log10_flops", "reference_accuracy",
                                       "hypervolume_pretraining", "hypervolume_ordinary"])


def analyze(paths: list[str], out: str | Path, tolerance: float = DEFAULT_TOLERANCE,
            target: float | None = None, target_on: str = "auto") -> str:
    """Write frontier.parquet/.csv, savings.csv, criteria.csv, figures, report.md, report.html
    (and with `target`, target.csv: compute to reach that accuracy, on `target_on` = auto,
    validation or test, and each criterion's target, per configuration across seeds) to `out`,
    a local folder or a URI (s3://...: they are made in a temporary folder, then each file is
    uploaded whole); return a summary."""
    if not storage.is_uri(str(out)):
        return _analyze_into(paths, Path(out), str(out), tolerance, target, target_on)
    location = storage.normalise(str(out))
    with tempfile.TemporaryDirectory(prefix="sweep-analysis-") as local:
        summary = _analyze_into(paths, Path(local), location, tolerance, target, target_on)
        storage.check_writable(location)  # one line if it cannot be written
        for path in sorted(Path(local).iterdir()):
            storage.write_bytes_atomic(storage.join(location, path.name), path.read_bytes())
    return summary


def _analyze_into(paths: list[str], out: Path, shown: str, tolerance: float,
                  target: float | None, target_on: str) -> str:
    """`analyze` into the local folder `out`, which the summary calls `shown`."""
    df = load_results(paths)
    if target is not None and target_on == "validation" and not logged(df, "val_accuracy"):
        raise UserError("--target-on validation: these results have no validation split "
                        "(run trials with --validation-fraction)")
    out = Path(out)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise UserError(f"--out {out}: cannot create ({e.strerror})") from None
    frontier = frontier_points(df)  # every column: the report describes rows
    table = whole_numbers(frontier[FRONTIER_COLUMNS])
    write_atomic(out / "frontier.parquet", _tagged_parquet(table))
    write_atomic(out / "frontier.csv", table.to_csv(index=False).encode())
    savings = savings_table(df)
    write_atomic(out / "savings.csv", savings.to_csv(index=False).encode())
    criteria = savings_by_criterion(df, tolerance, target=target, target_on=target_on)
    write_atomic(out / "criteria.csv", criteria.to_csv(index=False).encode())
    volumes = frontier_hypervolumes(df)
    found = headlines(df, tolerance)
    figures = {}
    for dataset in sorted(df["dataset"].unique()):
        figures[dataset] = [frontier_figure(df, dataset, out / f"frontier_{dataset}.png")]
        rows = df[df["dataset"] == dataset]
        for metric in FRONTIER_METRICS:  # the criteria's metrics, where the log has them
            if logged(rows, metric):
                figures[dataset].append(frontier_figure(
                    df, dataset, out / f"frontier_{dataset}_{metric}.png", metric))
        if (df[df["dataset"] == dataset]["phase"] == "pretrain").any():
            figures[dataset].append(q_figure(df, dataset, out / f"q_{dataset}.png"))
        if (savings["dataset"] == dataset).any():
            figures[dataset].append(
                savings_figure(savings, dataset, out / f"savings_{dataset}.png"))
    reach = None
    if target is not None:
        reach = targets_by_criterion(df, tolerance, target=target, target_on=target_on)
        write_atomic(out / "target.csv", whole_numbers(reach).to_csv(index=False).encode())
    top = _top_blocks(df, found, paths, tolerance)
    sections = {dataset: _dataset_blocks(df[df["dataset"] == dataset],
                                         frontier[frontier["dataset"] == dataset],
                                         volumes[volumes["dataset"] == dataset],
                                         [h for h in found if h.dataset == dataset], tolerance,
                                         criteria[criteria["dataset"] == dataset],
                                         None if reach is None else
                                         reach[reach["dataset"] == dataset])
                for dataset in sorted(df["dataset"].unique())}
    write_atomic(out / "report.md", _markdown_report(top, sections, figures).encode())
    write_interactive_report(df, savings, out / "report.html", top, sections)
    return _summary(df, found, shown, tolerance, target_written=reach is not None)


def _tagged_parquet(table: pd.DataFrame) -> bytes:
    """`table` as Parquet bytes marked as an analysis' output (`ANALYSIS_KEY`), so that it is
    never read back as a file of the result log."""
    arrow = pa.Table.from_pandas(table, preserve_index=False)
    arrow = arrow.replace_schema_metadata({**(arrow.schema.metadata or {}),
                                           ANALYSIS_KEY: b"frontier"})
    sink = pa.BufferOutputStream()
    pq.write_table(arrow, sink)
    return sink.getvalue().to_pybytes()


def whole_numbers(table: pd.DataFrame) -> pd.DataFrame:
    """The log's integer columns as integers (pandas reads one with a missing value, as
    ordinary training's `subset_size`, as floats: 10.0)."""
    integers = {f.name for f in arrow_schema() if pa.types.is_integer(f.type)}
    return table.astype({c: "Int64" for c in table.columns
                         if c in integers and table[c].dtype.kind == "f"})


def chosen_on_test(df: pd.DataFrame) -> str | None:
    """A sentence where no validation split was held out: the best accuracies, and with them
    the target of every saving, are then chosen on the test set."""
    if logged(df, "val_accuracy"):
        return None
    return ("No validation split was held out, so the best accuracies, and the target every "
            "saving is measured to, are chosen on the test set, which flatters both sides; "
            "hold one out (validation_fraction under fixed:) to choose on it.")


def in_progress(df: pd.DataFrame) -> str | None:
    """A sentence saying the sweep is still running (some trial's last row says `running`)
    and how many trials failed, or None. Those trials' latest evaluations are analysed as they
    stand."""
    finals = final_rows(df)
    running = int((finals["status"] == "running").sum())
    failed = int((finals["status"] == FAILED).sum())
    said = []
    if running:
        said.append(f"In progress: {running} of {len(finals)} trials are still running (or were "
                    "interrupted)")
    if failed:
        said.append(f"{failed} of {len(finals)} trials failed (an error, after their "
                    "retries)")
    if not said:
        return None
    return ("; ".join(said) + "; their latest evaluations are shown as they stand, not as "
            "results.")


def _summary(df: pd.DataFrame, found, out: str, tolerance: float,
             target_written: bool = False) -> str:
    """Per dataset: trials, the best accuracy of ordinary training and of pretraining over all
    evaluations (as the headline: on the validation split when logged, marked 'val'), and the
    headline's saving; then the headlines."""
    lines = [f"{'dataset':14} {'trials':>6} {'baseline best':>13} {'pretrain best':>13}  headline"]
    progress = in_progress(df)
    if progress:
        lines.insert(0, progress)
    by_dataset = {h.dataset: h for h in found}
    for dataset, rows in df.groupby("dataset", sort=True):
        metric = accuracy_column(rows[is_baseline(rows)])
        base = rows[is_baseline(rows)][metric].dropna()
        pre = rows[~is_baseline(rows)][metric].dropna()
        headline = by_dataset.get(dataset)
        saving = (missing_side(rows) or "-") if headline is None else _saving(headline, tolerance)
        trials = len(rows.groupby(["sweep", "trial_id"]))
        lines.append(f"{dataset:14} {trials:>6} {_pct(base, metric):>13} "
                     f"{_pct(pre, metric):>13}  {saving}")
    lines += [h.sentence(tolerance) for h in found]
    lines += [h.caveat for h in found if h.caveat]
    lines.append(f"wrote {out}/report.md, report.html, frontier.parquet/.csv, savings.csv, "
                 f"criteria.csv, {'target.csv, ' if target_written else ''}and figures")
    return "\n".join(lines)


def missing_side(rows: pd.DataFrame) -> str | None:
    """What a dataset's rows lack for any saving: 'no pretraining trials' or 'no
    ordinary-training trials' (then there is no savings table, figure or headline), or None."""
    baseline = is_baseline(rows)
    if not baseline.any():
        return "no ordinary-training trials"
    return None if (~baseline).any() else "no pretraining trials"


def _saving(h: Headline, tolerance: float) -> str:
    """A headline's saving in a few words: '1.36x fewer FLOPs at baseline accuracy -0.5pp'."""
    if not np.isfinite(h.pretrain_flops):
        return "not reached"
    if h.baseline_flops == 0:
        return "no compute to save"
    at = (f"at baseline accuracy -{tolerance * 100:.1f}pp" if tolerance > 0
          else "at baseline accuracy")
    if not np.isfinite(h.savings):
        return f"reached with no training compute {at}"
    if h.savings >= 1:
        return f"{h.savings:.2f}x fewer FLOPs {at}"
    return f"{1 / h.savings:.2f}x more FLOPs {at}"


def _answer_line(df: pd.DataFrame, found: list[Headline], tolerance: float) -> str:
    """The report's first line: per dataset, what pretraining saves, or why nothing is said."""
    by_dataset = {h.dataset: h for h in found}
    parts = []
    for dataset in sorted(df["dataset"].unique()):
        h = by_dataset.get(dataset)
        best = (f"ordinary training's best {'accuracy' if h is None else h.accuracy_words} "
                f"(within {tolerance * 100:.1f} pp)")
        if h is None:
            answer = f"no comparison ({missing_side(df[df['dataset'] == dataset])})"
        elif not np.isfinite(h.pretrain_flops):
            answer = f"no pretraining configuration reaches {best}"
        elif h.baseline_flops == 0:
            answer = "no compute to save (ordinary training is at its best untrained)"
        elif not np.isfinite(h.savings):
            answer = f"pretraining reaches {best} with no training compute"
        elif h.savings >= 1:
            answer = f"pretraining reaches {best} with {h.savings:.2f}x fewer FLOPs"
        else:
            answer = f"pretraining needs {1 / h.savings:.2f}x more FLOPs to reach {best}"
        if h is not None and h.caveat:
            answer += (f", against ordinary training of {h.baseline_cut_at:g} epochs, which may "
                       "still have been improving")
        parts.append(f"{dataset}: {answer}")
    return f"Answer: {'; '.join(parts)}."


def _results_line(df: pd.DataFrame, paths: list[str]) -> str:
    return (f"Results: {', '.join(paths)}; {_count(len(df), 'evaluation')} of "
            f"{_count(len(final_rows(df)), 'trial')}. Compute = training FLOPs (forward + "
            "backward, FlopCounterMode) plus small-set selection FLOPs.")


def _count(n: int, noun: str) -> str:
    """'1 trial', '47 evaluations'."""
    return f"{n:,} {noun}{'' if n == 1 else 's'}"


def _pct(values: pd.Series, metric: str = "test_accuracy") -> str:
    if values.empty:
        return "-"
    return f"{values.max():.2%}" + (" val" if metric == "val_accuracy" else "")


def _best_of(rows: pd.DataFrame) -> str:
    """What the headline compares: the best of how many trials on each side, and where a fair
    comparison is (a best of many favours the side with more trials)."""
    trials = final_rows(rows)
    pretraining, ordinary = int((~is_baseline(trials)).sum()), int(is_baseline(trials).sum())
    return (f"The headline compares the best of {_count(pretraining, 'pretraining trial')} "
            f"with the best of {ordinary} of ordinary training; the best of more trials is "
            "favoured, so see also the savings per seed below (each seed's ordinary training "
            "against its own pretraining).")


def _top_blocks(df: pd.DataFrame, found: list[Headline], paths: list[str],
                tolerance: float) -> list[Block]:
    """What the report says before any dataset: the answer, whether the sweep still runs,
    what was read, and where the best points are chosen."""
    progress, on_test = in_progress(df), chosen_on_test(df)
    return [Para(_answer_line(df, found, tolerance), strong=True),
            *([Para(progress, strong=True)] if progress else []),
            Para(_results_line(df, paths)),
            *([Para(on_test)] if on_test else [])]


def _dataset_blocks(rows: pd.DataFrame, frontier: pd.DataFrame, volumes: pd.DataFrame,
                    found: list[Headline], tolerance: float, criteria: pd.DataFrame,
                    reach: pd.DataFrame | None) -> tuple[list[Block], list[Block]]:
    """One dataset's section (all arguments are that dataset's rows): what comes before its
    figures (the headline, its caveat, what it compares) and what comes after (hypervolumes,
    savings by criterion, the frontier table, with --target the compute to each target)."""
    words: list[Block] = []
    if missing_side(rows):
        words.append(Para(f"{rows['dataset'].iloc[0]}: {missing_side(rows)}, so no saving to "
                          "show (no headline, savings table or savings figure).", strong=True))
    for h in found:
        words += [Para(f"{h.sentence(tolerance)}.", strong=True),
                  *([Para(f"{h.caveat}.")] if h.caveat else []), Para(_best_of(rows))]
    tables: list[Block] = []
    if not volumes.empty:
        v = volumes.iloc[0]
        tables.append(Para(f"Hypervolume in (log10 FLOPs, accuracy), reference point "
                           f"({v['reference_log10_flops']:.2f}, 0): pretraining "
                           f"{v['hypervolume_pretraining']:.3f}, ordinary training "
                           f"{v['hypervolume_ordinary']:.3f} (larger is better)."))
    tables += _criteria_section(criteria, tolerance)
    tables += _frontier_section(frontier, final_rows(rows))
    if reach is not None:
        tables += _target_section(reach, tolerance)
    return words, tables


def _markdown_report(top: list[Block], sections: dict[str, tuple[list[Block], list[Block]]],
                     figures: dict[str, list[Path]]) -> str:
    """report.md: the blocks, then each dataset's figures as images."""
    lines = ["# Sweep report", "", *markdown(top)]
    for dataset, (words, tables) in sections.items():
        lines += [f"## {dataset}", "", *markdown(words + tables)]
        lines += [f"![{p.stem}]({p.name})" for p in figures.get(dataset, [])]
        lines.append("")
    return "\n".join(lines)


CRITERION_WORDS = {
    "target": "fixed (--target)",
    "accuracy": "best accuracy",
    "loss_minimum": "lowest training-set loss",
    "converged_accuracy": "final test accuracy (median)",
}


def _target_cell(r: dict, tolerance: float) -> str:
    """A criterion's target with the value of ordinary training's it is set from: '0.915 (0.92
    less 0.5 pp)', '0.101 (0.1 +1%)', '0.8' (--target)."""
    target, step = f"{r['target']:.4g}", _step(r["criterion"], tolerance)
    return f"{target} ({r['reference']:.4g}{step})" if step else target


def _step(criterion: str, tolerance: float) -> str:
    """How a criterion's target steps from ordinary training's value: ' +1%' (a loss), ' less
    0.5 pp' (an accuracy), '' (--target, or no tolerance)."""
    if criterion == "loss_minimum":
        return f" +{DEFAULT_EPSILON:.0%}"
    return "" if criterion == "target" or not tolerance else f" less {_pp(tolerance)}"


def _pp(tolerance: float) -> str:
    """The tolerance in percentage points: '0.5 pp'."""
    return f"{tolerance * 100:g} pp"


def _criteria_section(rows: pd.DataFrame, tolerance: float) -> list[Block]:
    """Savings by criterion (analysis.criteria): target, compute of each side with its
    bracket, the saving with its interval, and over shared seeds."""
    if rows.empty:
        return []

    def gflops(value: float, low: float, high: float) -> str:
        if not np.isfinite(value):
            return "not reached"
        return f"{_gflops(value / 1e9)} ({_gflops(low / 1e9)}-{_gflops(high / 1e9)})"

    cells = []
    for r in rows.to_dict("records"):
        if r["savings"] != r["savings"]:  # NaN: neither side reaches the target
            saving, interval = "neither reaches it", "-"
        elif not np.isfinite(r["pretrain_flops"]):  # only ordinary training does: not 0.00x
            saving, interval = "not reached", "-"
        else:
            saving = _ratio(r["savings"]) + ("" if r["resolved"] else " (not resolved)")
            interval = interval_words(r["savings_low"], r["savings_high"])
        seeds = ("-" if not r["seeds"] else
                 f"{_ratio(r['seed_median'])} ({_span(r['seed_min'], r['seed_max'])}), "
                 f"{r['seeds']}")
        cells.append((CRITERION_WORDS[r["criterion"]], r["metric"], _target_cell(r, tolerance),
                      gflops(r["baseline_flops"], r["baseline_low"], r["baseline_high"]),
                      gflops(r["pretrain_flops"], r["pretrain_low"], r["pretrain_high"]),
                      saving, interval, seeds))
    less = f" less the tolerance ({_pp(tolerance)})" if tolerance else ""
    return [Table("Savings by criterion: each target is set by ordinary training, from the "
                  f"value in brackets: its best or its final accuracy{less}, or its lowest "
                  f"training-set loss +{DEFAULT_EPSILON:.0%}. Compute: the least of any run, in "
                  "GFLOPs, with its bracket over every run (the least of their evaluations "
                  "either side of their crossings); a saving is resolved when its interval lies "
                  "on one side of 1.",
                  ("criterion (ordinary training's)", "metric", "target", "ordinary",
                   "pretraining", "saving", "interval", "per seed (median, range, seeds)"),
                  tuple(cells))]


def collapse_seeds(frontier: pd.DataFrame, finals: pd.DataFrame) -> pd.DataFrame:
    """Frontier rows of configurations that differ only by seed, as one row each: the distinct
    seeds among them (`seeds`), how many of them are on the frontier (`on_frontier`) of how many
    trials ran those settings (`runs`: final rows in `finals`, however they ended), the median,
    min and max of their test accuracy and GFLOPs of compute, and their trials; sorted by median
    GFLOPs.

    A configuration is everything in `savings.CONFIG_KEYS` and what `describe_config` says of
    the row (so a trial stopped early, or still running, is not pooled with finished ones); a
    row that is not its trial's last evaluation (`final` false) is the configuration stopped
    there ('..., fine-tuning stopped after 8.96 of 12 epochs'). Pretraining is described by its
    `pretrain_epochs` (the most it may run), not by how long each seed's ran before it stopped
    at convergence, so that the seeds share a row.
    """
    columns = ["configuration", "lr", "batch_size", "width", "seeds", "on_frontier", "runs",
               "median_accuracy", "min_accuracy", "max_accuracy", "median_gflops",
               "min_gflops", "max_gflops", "trials"]
    frontier = with_compute(frontier).assign(configuration=[  # the seeds' own lengths differ
        _how(r) if r.get("final", True) else _stopped_there(r)
        for r in frontier.drop(columns=PRETRAIN_RAN, errors="ignore").to_dict("records")])
    frontier = frontier.assign(key=_config_keys(frontier))
    # a row's runs: the trials with its settings, however each ended (finished, stopped early,
    # still running), so that the trials on the frontier are never more than the runs
    runs = _config_keys(finals, described=False).value_counts()
    rows = []
    for _, group in frontier.groupby("key", sort=False):
        first = group.iloc[0]
        run_key = _config_keys(group.iloc[:1], described=False).iloc[0]
        accuracy, gflops = group["test_accuracy"], group[COMPUTE] / 1e9
        rows.append({"configuration": first["configuration"], "lr": first["lr"],
                     "batch_size": first["batch_size"], "width": first["width"],
                     "seeds": group["seed"].nunique(dropna=False), "on_frontier": len(group),
                     "runs": int(runs.get(run_key, len(group))),
                     "median_accuracy": accuracy.median(), "min_accuracy": accuracy.min(),
                     "max_accuracy": accuracy.max(), "median_gflops": gflops.median(),
                     "min_gflops": gflops.min(), "max_gflops": gflops.max(),
                     "trials": ", ".join(group["trial_id"].astype(str))})
    table = pd.DataFrame(rows, columns=columns)
    return table.sort_values(["median_gflops", "median_accuracy"], ascending=[True, False],
                             ignore_index=True, kind="stable")


def _config_keys(rows: pd.DataFrame, described: bool = True) -> pd.Series:
    """One string per row naming its configuration (NaN reads 'nan', so missing values match):
    its settings, and with `described` what its `configuration` says (how far it ran)."""
    keys = [k for k in (*CONFIG_KEYS, *(["configuration"] if described else []))
            if k in rows.columns]
    return pd.Series(["|".join(map(str, values)) for values in rows[keys].itertuples(index=False)],
                     index=rows.index, dtype=object)


def _stopped_there(row: dict) -> str:
    """A trial's earlier evaluation as the configuration that stops there."""
    if row.get("epoch") is not None and row["epoch"] == row["epoch"]:
        return describe_config(row | {"status": "stopped"})
    return f"{describe_config(row | {'status': None})}, stopped at evaluation {row['evaluation']}"


def _how(row: dict) -> str:
    status = row.get("status")
    return describe_config(row) + (f" ({status})" if status in ("running", FAILED) else "")


def _frontier_section(frontier: pd.DataFrame, finals: pd.DataFrame) -> list[Block]:
    if frontier.empty:
        return [Para("Frontier: no evaluation after some training yet.")]
    table = collapse_seeds(frontier, finals)
    shown = table.sort_values("median_accuracy", ascending=False, kind="stable").head(
        FRONTIER_ROWS_SHOWN).sort_index()
    more = len(table) - len(shown)
    cells = []
    for _, r in shown.iterrows():
        accuracy = _spread(r["median_accuracy"], r["min_accuracy"], r["max_accuracy"], ".4f")
        gflops = _spread(r["median_gflops"], r["min_gflops"], r["max_gflops"], ".3f")
        cells.append((r["configuration"], f"{r['lr']:g}", str(r["batch_size"]),
                      str(r["width"]), str(r["seeds"]), f"{r['on_frontier']} / {r['runs']}",
                      accuracy, gflops, r["trials"]))
    return [Table("Frontier of all runs together (less compute, more test accuracy; every "
                  "evaluation is a candidate: a trial stopped there is a configuration one "
                  "could run); the figures draw pretraining's and ordinary training's each, so "
                  "a point on one side's own frontier is missing here where the other side "
                  "dominates it. The seeds of one configuration share a row: median (min-max) "
                  "of those on the frontier."
                  + (f" The {len(shown)} most accurate of {len(table)} rows; frontier.csv has "
                     "every point." if more else "")
                  + _converged_words(frontier),
                  ("configuration", "lr", "batch", "width", "seeds", "runs on frontier / all",
                   "test accuracy", "GFLOPs", "trials"), tuple(cells))]


def _converged_words(frontier: pd.DataFrame) -> str:
    """' In 3 of these 5 pretraining trials ...': where pretraining stopped at convergence, the
    table's 'for N epochs' is the most it could run."""
    if PRETRAIN_RAN not in frontier:
        return ""
    trials = frontier[frontier["strategy"] != "none"].drop_duplicates(["sweep", "trial_id"])
    early = int((trials[PRETRAIN_RAN] < trials["pretrain_epochs"]).sum())
    if not early:
        return ""
    return (f" Pretraining stopped at convergence in {early} of these {len(trials)} pretraining "
            "trials: 'for N epochs' is the most it could run (the headline and report.html "
            "name each trial's own length).")


def _spread(median: float, low: float, high: float, spec: str) -> str:
    """'0.9472' for one value, '0.9472 (0.9400-0.9510)' for several."""
    if low == high:
        return format(median, spec)
    return f"{median:{spec}} ({low:{spec}}-{high:{spec}})"


def _target_section(reach: pd.DataFrame, tolerance: float) -> list[Block]:
    """Compute to each target (`--target`, then each criterion's) per configuration across its
    seeds, with the saving against ordinary training on the seeds both ran."""
    if reach.empty:
        return []
    cells = []
    for _, r in reach.iterrows():
        how = describe_config({**r.to_dict(), "subset_fraction": None})
        spread = (_gflops(r["min_gflops"]) if r["min_gflops"] == r["max_gflops"]
                  else f"{_gflops(r['min_gflops'])}-{_gflops(r['max_gflops'])}")
        saving = _ratio(r["median_savings_same_seed"])
        low, high = r["min_savings_same_seed"], r["max_savings_same_seed"]
        if np.isfinite(low) and np.isfinite(high) and low != high:
            saving += f" ({_ratio(low)}-{_ratio(high)})"
        cells.append((_target_words(r, tolerance), how, f"{r['seeds']} ({r['reached']})",
                      _gflops(r["median_gflops"]), spread, saving))
    return [Table("Compute to reach each target, per configuration across its seeds (savings: "
                  "ordinary training's compute / this one's on the same seed, median (min-max) "
                  "over the seeds both ran):", ("target", "configuration", "seeds (reached)",
                                               "median GFLOPs", "min-max GFLOPs",
                                               "savings, same seed"), tuple(cells))]


METRIC_WORDS = {"test_accuracy": "test accuracy", "val_accuracy": "validation accuracy",
                "train_sample_loss": "training-set loss"}


def _target_words(r: pd.Series, tolerance: float) -> str:
    """'80.0% test accuracy (--target)', '91.62% validation accuracy (ordinary training's best
    92.12% less 0.5 pp)', 'training-set loss 0.101 (ordinary training's lowest 0.1 +1%)': each
    criterion's target and the value of ordinary training's it is set from, as in the
    criteria table."""
    metric = METRIC_WORDS.get(r["metric"], r["metric"])
    target, reference = r["target"], r["reference"]
    if r["criterion"] == "target":
        return f"{target:.1%} {metric} (--target)"
    step = _step(r["criterion"], tolerance)
    if r["criterion"] == "loss_minimum":
        return f"{metric} {target:.4g} (ordinary training's lowest {reference:.4g}{step})"
    which = {"accuracy": "best", "converged_accuracy": "median final"}[r["criterion"]]
    return f"{target:.2%} {metric} (ordinary training's {which} {reference:.2%}{step})"


def _span(low: float, high: float) -> str:
    """'1.00-4.00' (times); an unbounded end reads 'unbounded', both: 'unbounded'."""
    if low == high == np.inf:
        return "unbounded"
    return "-".join("unbounded" if v == np.inf else f"{v:.2f}" for v in (low, high))


def _ratio(value: float) -> str:
    """A saving for people: '1.36x'; '-' for NaN (nothing to compare: no shared seed, or
    neither side reaches the target); 'unbounded' for inf (only pretraining reaches it, or it
    does with no compute)."""
    if value != value:
        return "-"
    return "unbounded" if value == np.inf else f"{value:.2f}x"

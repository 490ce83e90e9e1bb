"""Early stopping against none: what each scheduler costs and what it keeps of the answer.

The same sweep (a preset or a sweep file, Optuna's random sampler: the same trial configurations
in every run, whatever stops) is run with `--scheduler none`, `asha` and `frontier` for each
sampler seed, one run at a time (interleaved by seed), each a real `sweep run` on a local Ray of
`--num-cpus` CPUs. From each run's log:

  compute   the sweep's total: every trial's training + evaluation FLOPs (+ small-set building)
  hv        hypervolume of the anytime frontier (every evaluation), pretraining trials and all
            trials, in (log10 compute, accuracy) against the reference (log10 of the largest
            compute in the seed's `none` run, accuracy 0): as `sweep analyze` reports it
  headline  `analysis.headlines`: ordinary training's best accuracy, and the least compute a
            pretraining trial needs to reach it (within 0.5 pp), as a saving

Ratios are against the `none` run of the same seed. Usage:
  python bench/early_stopping.py [--preset quick | --config FILE] [--num-samples N]
      [--seeds 0 1 2] [--schedulers none asha frontier] [--num-cpus 2] [--out FILE.csv]
      [--keep DIR]
A scheduler may carry settings: `frontier:first_rung=0.5,flops_factor=1` (the sweep file's
`early_stopping:` mapping). The first scheduler listed is the reference (give `none` first).

`--replay SWEEP [SWEEP ...] --settings S [S ...]` replays finished sweeps run with `--scheduler
none` (e.g. those `--keep` kept) through the frontier rule instead, for each setting S (a
comma-separated `key=value` list; '' for the defaults): each log's rows are fed to
`sweep.early_stopping.FrontierRule` in the order the driver received them (`unix_time`), and a
trial the rule stops loses its rows after that evaluation. It reports the same measures in
seconds, and is an estimate: in a real run a stopped trial frees its slot and the trials after
it start sooner, judged against fewer points. Use it to choose settings, then run them.
"""

from __future__ import annotations

import argparse
import math
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import yaml

from analysis import headlines, hypervolume, is_baseline, load_results
from analysis.load import compute
from search_spaces.stopping import FrontierOptions
from sweep.early_stopping import FrontierRule
from trainables.raw_data import read_raw

ROOT = Path(__file__).resolve().parent.parent
PRESETS = ROOT / "search_spaces" / "presets"


def parse_settings(text: str) -> dict:
    """`key=value,key=value` (values in YAML) as the `early_stopping:` mapping; '' is {}."""
    return {k: yaml.safe_load(v) for k, v in (item.split("=", 1)
                                               for item in text.split(",") if item)}


def same_headline(got: dict, base: dict) -> bool:
    """The same configuration reaches the same target with the same saving (within 0.5%), or
    no configuration reaches the same target."""
    trials = got["saving_trial"], base["saving_trial"]
    return bool((trials[0] == trials[1] or all(pd.isna(t) for t in trials))
                and got["baseline_accuracy"] == base["baseline_accuracy"]
                and math.isclose(got["saving"], base["saving"], rel_tol=0.005))


def sweep_file(source: Path, scheduler: str, storage: str, name: str) -> Path:
    """The source sweep file with `scheduler` (and its `early_stopping:` settings) set."""
    spec = yaml.safe_load(source.read_text())
    kind, _, settings = scheduler.partition(":")
    spec["scheduler"] = kind
    spec.pop("early_stopping", None)
    if settings:
        spec["early_stopping"] = parse_settings(settings)
    path = Path(storage, f"{name}.yaml")
    path.write_text(yaml.safe_dump(spec))
    return path


def run(source: Path, scheduler: str, seed: int, storage: str, num_samples: int | None,
        num_cpus: int, name: str) -> tuple[pd.DataFrame, float]:
    return sweep_run(["--config", str(sweep_file(source, scheduler, storage, name)),
                      "--sampler", "random"], seed, storage, num_samples, num_cpus, name)


def sweep_run(source: list[str], seed: int, storage: str, num_samples: int | None,
              num_cpus: int, name: str) -> tuple[pd.DataFrame, float]:
    """`sweep run` with `source` (a preset or sweep file, and any overrides) as a user types
    it, without its analysis: the sweep's log and the command's wall time."""
    extra = [] if num_samples is None else ["--num-samples", str(num_samples)]
    command = [str(Path(sys.executable).parent / "sweep"), "run", *source, *extra,
               "--seed", str(seed), "--storage", storage, "--name", name,
               "--num-cpus", str(num_cpus), "--no-analyze"]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout[-3000:]}{done.stderr[-3000:]}")
    return load_results(f"{storage}/{name}"), wall


def measure(df: pd.DataFrame, x_ref: float) -> dict:
    last = df.sort_values("evaluation").groupby("trial_id").tail(1)
    total = float((last["train_flops"] + last["eval_flops"] + last["selection_flops"].fillna(0))
                  .sum())
    points = df[df["train_flops"] > 0]  # as `sweep analyze`: evaluations after some training

    def volume(rows: pd.DataFrame) -> float:
        return hypervolume(np.log10(compute(rows).to_numpy(dtype=float)),
                           rows["test_accuracy"].to_numpy(dtype=float), (x_ref, 0.0))

    head = headlines(df)
    h = head[0] if head else None
    return {"trials": int(df["trial_id"].nunique()),
            "stopped": int((last["status"] == "stopped").sum()),
            "compute_gflops": total / 1e9,
            "hv_all": volume(points), "hv_pretraining": volume(points[~is_baseline(points)]),
            "baseline_accuracy": h.baseline_accuracy if h else math.nan,
            "saving": h.savings if h else math.nan,
            # the configuration that makes the headline (trial ids differ from run to run)
            "saving_trial": (h.config.get("config_json") if h and h.config else None)}


def replay(df: pd.DataFrame, options: FrontierOptions, train_size: int) -> pd.DataFrame:
    """The rows a run with the rule would have logged: each stopped trial's rows up to the
    evaluation at which it was stopped, that last row marked `stopped`."""
    rule = FrontierRule(options, train_size)
    stopped: dict[str, int] = {}
    for record in df.sort_values(["unix_time", "evaluation"]).to_dict("records"):
        if record["trial_id"] in stopped:
            continue
        verdict = rule.on_result(record)
        if verdict is not None and verdict.stop:
            stopped[record["trial_id"]] = int(record["evaluation"])
    limit = df["trial_id"].map(stopped).astype(float).fillna(math.inf)
    kept = df[df["evaluation"] <= limit].copy()
    last = kept["trial_id"].isin(stopped) & (kept["evaluation"] == kept["trial_id"].map(stopped))
    kept.loc[last, "status"] = "stopped"
    return kept


def replay_table(sweeps: list[str], settings: list[str]) -> pd.DataFrame:
    rows = []
    for sweep in sweeps:
        df = load_results(sweep)
        reference = math.log10(float(compute(df).max()))
        base = measure(df, reference)
        # The scheduler's N: the dataset's training set, as the sweep read it.
        train_size = len(read_raw(str(df["dataset"].iloc[0])).train_y)
        for text in settings:
            options = FrontierOptions.from_dict(parse_settings(text))
            got = measure(replay(df, options, train_size), reference)
            rows.append({"sweep": Path(sweep).name, "settings": text or "defaults",
                         "stopped": got["stopped"],
                         "compute_ratio": got["compute_gflops"] / base["compute_gflops"],
                         "hv_ratio": got["hv_all"] / base["hv_all"],
                         "same_headline": same_headline(got, base)})
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--config")
    parser.add_argument("--num-samples", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--schedulers", nargs="+", default=["none", "asha", "frontier"])
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--out", help="write the per-run table here (CSV)")
    parser.add_argument("--keep", help="keep the sweeps in this folder (default: a temporary one)")
    parser.add_argument("--replay", nargs="+", metavar="SWEEP",
                        help="replay these finished `none` sweeps instead of running sweeps")
    parser.add_argument("--settings", nargs="+", default=[""],
                        help="with --replay: frontier settings, key=value,... ('' = defaults)")
    args = parser.parse_args()
    if args.replay:
        table = replay_table(args.replay, args.settings)
        print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
        print()
        print(table.groupby("settings", sort=False).agg(
            compute_ratio=("compute_ratio", "median"), compute_ratio_max=("compute_ratio", "max"),
            hv_ratio_min=("hv_ratio", "min"), same_headline=("same_headline", "sum"),
            runs=("sweep", "size")).to_string(float_format=lambda v: f"{v:.3f}"))
        return
    source = Path(args.config) if args.config else PRESETS / f"{args.preset}.yaml"
    rows = []
    with tempfile.TemporaryDirectory() as temporary:
        storage = args.keep or temporary
        Path(storage).mkdir(parents=True, exist_ok=True)
        for seed in args.seeds:
            reference = None
            for i, scheduler in enumerate(args.schedulers):
                df, wall = run(source, scheduler, seed, storage, args.num_samples, args.num_cpus,
                               name=f"s{seed}-{i}")
                if reference is None:  # the first scheduler (none) sets the reference point
                    reference = math.log10(float(compute(df).max()))
                row = {"seed": seed, "scheduler": scheduler, "wall_s": wall,
                       **measure(df, reference)}
                rows.append(row)
                print(" ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}"
                               for k, v in row.items() if k != "saving_trial"), flush=True)
    table = pd.DataFrame(rows)
    base = table[table["scheduler"] == args.schedulers[0]].set_index("seed")
    for column in ("compute_gflops", "hv_all", "hv_pretraining", "saving"):
        table[f"{column}_ratio"] = table[column] / table["seed"].map(base[column])
    table["same_headline"] = [same_headline(row, base.loc[row["seed"]])
                              for _, row in table.iterrows()]
    if args.out:
        table.to_csv(args.out, index=False)
    summary = table.groupby("scheduler", sort=False).agg(
        runs=("seed", "size"), stopped=("stopped", "median"),
        compute_ratio=("compute_gflops_ratio", "median"),
        compute_ratio_max=("compute_gflops_ratio", "max"),
        hv_all_ratio=("hv_all_ratio", "median"), hv_all_ratio_min=("hv_all_ratio", "min"),
        hv_pre_ratio=("hv_pretraining_ratio", "median"),
        hv_pre_ratio_min=("hv_pretraining_ratio", "min"),
        saving_median=("saving", "median"), same_headline=("same_headline", "sum"))
    print()
    print(table.drop(columns="saving_trial").to_string(index=False,
                                                       float_format=lambda v: f"{v:.4g}"))
    print()
    print(summary.to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

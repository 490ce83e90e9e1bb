"""Samplers side by side: which finds the better frontier for the same number of trials.

The same preset (or sweep file) is run with each sampler (`--sampler tpe`, `nsga2`, `random`)
for each sampler seed, one run at a time (interleaved by seed), each a real `sweep run` on a
local Ray of `--num-cpus` CPUs. From each run's log:

  compute   the sweep's total: every trial's training + evaluation FLOPs (+ small-set building)
  hv        hypervolume of the anytime frontier (every evaluation), all trials and pretraining
            trials, in (log10 compute, accuracy) against the reference (log10 of the largest
            compute in any of the seed's runs, accuracy 0): computed as `sweep analyze`
            computes it, with this reference
  best      the best accuracy of any evaluation, of ordinary training and of pretraining
  headline  `analysis.headlines`: ordinary training's best accuracy, and the least compute a
            pretraining trial needs to reach it (within 0.5 pp), as a saving (each run's own
            target: a sampler that finds better ordinary training sets itself a higher bar)

Ratios are against the first sampler listed, in the same seed. A sampler listed twice runs
twice (`tpe tpe`): two sweeps of the same sampler and seed differ where trials run side by side,
as the order in which their results arrive changes what is sampled next. Usage:
  python bench/samplers.py [--preset frontier | --config FILE] [--num-samples N]
      [--seeds 0 1 2 3] [--samplers tpe nsga2 random] [--num-cpus 2] [--out FILE.csv]
"""

from __future__ import annotations

import argparse
import math
import tempfile
from pathlib import Path

import pandas as pd
from early_stopping import measure as sweep_measures  # bench/, beside this file
from early_stopping import sweep_run

from analysis import is_baseline
from analysis.load import compute


def run(source: list[str], sampler: str, seed: int, storage: str, num_samples: int | None,
        num_cpus: int, name: str) -> tuple[pd.DataFrame, float]:
    return sweep_run([*source, "--sampler", sampler], seed, storage, num_samples, num_cpus,
                     name)


def measure(df: pd.DataFrame, x_ref: float) -> dict:
    """bench/early_stopping.py's measures (compute, hypervolumes, headline), and the best
    accuracy each side reached."""
    points = df[df["train_flops"] > 0]  # as `sweep analyze`: evaluations after some training
    ordinary = is_baseline(points)
    measures = sweep_measures(df, x_ref)
    return {"trials": measures["trials"],
            "pretraining_trials": int(df.loc[~is_baseline(df), "trial_id"].nunique()),
            "compute_gflops": measures["compute_gflops"],
            "hv_all": measures["hv_all"], "hv_pretraining": measures["hv_pretraining"],
            "best_ordinary": float(points.loc[ordinary, "test_accuracy"].max()),
            "best_pretraining": float(points.loc[~ordinary, "test_accuracy"].max()),
            "target": measures["baseline_accuracy"], "saving": measures["saving"]}


def label(samplers: list[str], i: int) -> str:
    """A sampler's name, with its repeat's number where it is listed again ('tpe', 'tpe#2')."""
    n = samplers[:i + 1].count(samplers[i])
    return samplers[i] if n == 1 else f"{samplers[i]}#{n}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="frontier")
    parser.add_argument("--config")
    parser.add_argument("--num-samples", type=int)
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3])
    parser.add_argument("--samplers", nargs="+", default=["tpe", "nsga2", "random"])
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--out", help="write the per-run table here (CSV)")
    args = parser.parse_args()
    source = (["--config", str(Path(args.config).resolve())] if args.config
              else ["--preset", args.preset])
    if len(set(args.seeds)) != len(args.seeds):
        parser.error("--seeds: each seed once (list a sampler twice to repeat it)")
    rows = []
    with tempfile.TemporaryDirectory() as storage:
        for seed in args.seeds:
            runs = []
            for i, sampler in enumerate(args.samplers):
                runs.append(run(source, sampler, seed, storage, args.num_samples,
                                args.num_cpus, name=f"s{seed}-{i}-{sampler}"))
                print(f"seed {seed} {sampler}: {runs[-1][1]:.1f} s", flush=True)
            reference = math.log10(max(float(compute(df).max()) for df, _ in runs))
            for i, (df, wall) in enumerate(runs):
                rows.append({"seed": seed, "sampler": label(args.samplers, i), "wall_s": wall,
                             **measure(df, reference)})
    table = pd.DataFrame(rows)
    first = table[table["sampler"] == args.samplers[0]].set_index("seed")
    for column in ("hv_all", "hv_pretraining"):
        table[f"{column}_ratio"] = table[column] / table["seed"].map(first[column])
    if args.out:
        table.to_csv(args.out, index=False)
    print()
    print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    print()
    print(table.groupby("sampler", sort=False).agg(
        runs=("seed", "size"), wall_s=("wall_s", "median"),
        hv_all_ratio=("hv_all_ratio", "median"), hv_all_ratio_min=("hv_all_ratio", "min"),
        hv_pre_ratio=("hv_pretraining_ratio", "median"),
        hv_pre_ratio_min=("hv_pretraining_ratio", "min"),
        best_ordinary=("best_ordinary", "median"), best_pretraining=("best_pretraining", "median"),
        saving_median=("saving", "median")).to_string(float_format=lambda v: f"{v:.3f}"))


if __name__ == "__main__":
    main()

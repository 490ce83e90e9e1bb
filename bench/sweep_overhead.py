"""Sweep efficiency: the same N trials run by a real sweep and one after another in a plain loop.

For each trial length, side by side in one run:
  loop   the N trials with `run_trial`, one after another, one thread each
  sweep  the same N trials through `sweep.launcher.run_sweep` (local Ray, `--num-cpus C`,
         one CPU per trial, so C run at a time), with checkpoints and the Parquet log
Efficiency = sum of the trials' training time (their own `train_time_s`) / (wall time x
concurrency); per-trial overhead = (wall time x concurrency - sum of training time) / N. The
sweep's wall time is `run_sweep`'s. Each sweep has a local Ray of its own, started just before
`run_sweep` as the `sweep` command starts it; `ray.init` itself is excluded (reported apart),
while what Ray's workers do after it (importing a trial's modules ahead) overlaps the sweep's
set-up and is counted. From the
sweep's log, apart: how long after `run_sweep` began the first trial started training (the
sweep's fixed start-up: Tune, the first workers' imports), and the median gap in a worker
between one trial's last result and the next trial's start (the marginal cost of a trial).
Trials: digits, CNN width 16, ordinary training, evaluated every 5 epochs.  Usage:
  python bench/sweep_overhead.py [--trials 8] [--epochs 45 90] [--num-cpus 2] [--smoke-test]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import pandas as pd
import torch

from search_spaces import parse_spec
from sweep.launcher import run_sweep
from sweep.settings import RayOptions, SweepSettings
from trainables import TrialConfig, run_trial


def trial_settings(epochs: int) -> dict:
    return {"dataset": "digits", "width": 16, "finetune_epochs": epochs, "eval_every": 1437 * 5}


def run_loop(epochs: int, trials: int) -> tuple[float, float]:
    torch.set_num_threads(1)
    start = time.perf_counter()
    train = sum(run_trial(TrialConfig.from_dict({**trial_settings(epochs), "seed": s}))[-1][
        "train_time_s"] for s in range(trials))
    return time.perf_counter() - start, train


def run_as_sweep(epochs: int, trials: int, storage: str,
                 num_cpus: int) -> tuple[float, float, float, float, float]:
    fixed = {k: v for k, v in trial_settings(epochs).items() if k != "dataset"}
    spec = parse_spec({"datasets": ["digits"], "num_samples": trials, "fixed": fixed,
                       "search": {"strategy": ["none"], "seed": list(range(trials))},
                       "baselines": [{"seed": s} for s in range(trials)]}, "bench")
    import ray

    from sweep.launcher import _start_ray

    settings = SweepSettings(name=f"e{epochs}", storage=storage)
    options = RayOptions(num_cpus=num_cpus)
    start = time.perf_counter()
    _start_ray(options, settings)  # the local Ray the `sweep` command starts
    ray_start = time.perf_counter() - start
    try:
        began, start = time.time(), time.perf_counter()
        folder = run_sweep(spec, settings, options)
        wall = time.perf_counter() - start
    finally:
        ray.shutdown()
    df = pd.read_parquet(f"{folder}/results")
    assert df["trial_id"].nunique() == trials
    spans = df.groupby("trial_id").agg(pid=("pid", "first"), start=("trial_start_unix", "min"),
                                       end=("unix_time", "max")).sort_values("start")
    gaps = [later - earlier for _, worker in spans.groupby("pid")
            for earlier, later in zip(worker["end"].iloc[:-1], worker["start"].iloc[1:],
                                      strict=True)]
    return (wall, df.sort_values("evaluation").groupby("trial_id")["train_time_s"].last().sum(),
            spans["start"].min() - began, statistics.median(gaps) if gaps else float("nan"),
            ray_start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=8)
    parser.add_argument("--epochs", type=int, nargs="+", default=[45, 90])
    parser.add_argument("--num-cpus", type=int, default=2)
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    if args.smoke_test:
        args.trials, args.epochs = 2, [5]
    import ray

    rows, ray_starts = [], []
    with tempfile.TemporaryDirectory() as storage:
        for epochs in args.epochs:
            loop_wall, loop_train = run_loop(epochs, args.trials)
            sweep_wall, sweep_train, first, gap, ray_start = run_as_sweep(
                epochs, args.trials, storage, args.num_cpus)
            ray_starts.append(ray_start)
            for how, wall, train, concurrency, extra in (
                    ("loop", loop_wall, loop_train, 1, "| - | - |"),
                    ("sweep", sweep_wall, sweep_train, args.num_cpus,
                     f"| {first:.1f} | {gap:.2f} |")):
                rows.append((epochs, how, train / args.trials, wall, concurrency,
                             train / (wall * concurrency),
                             (wall * concurrency - train) / args.trials, extra))
    print(f"# digits cnn width 16, {args.trials} trials per length, {args.num_cpus} CPUs, "
          f"torch {torch.__version__}, ray {ray.__version__}; ray.init "
          f"{', '.join(f'{t:.1f}' for t in ray_starts)} s (not counted)")
    print("| epochs | run by | mean trial training s | wall s | concurrency | efficiency "
          "| overhead s/trial | first trial starts after s | gap between trials in a worker s |")
    print("|---|---|---|---|---|---|---|---|---|")
    for epochs, how, mean, wall, concurrency, efficiency, overhead, extra in rows:
        print(f"| {epochs} | {how} | {mean:.1f} | {wall:.1f} | {concurrency} | "
              f"{efficiency:.2f} | {overhead:.2f} {extra}")


if __name__ == "__main__":
    main()

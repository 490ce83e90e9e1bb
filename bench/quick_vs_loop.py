"""`sweep run --preset quick` against the simplest thing a user could write instead.

Side by side, interleaved, on an idle machine:
  loop   plain Optuna in one process: the quick preset's space (`define_space`), sampler (TPE,
         the sweep's seed), baseline trial and number of trials, each trial run with
         `run_trial` on 2 torch threads, one after another
  sweep  `sweep run --preset quick --no-analyze` as a user types it (a fresh process: imports,
         Ray's start-up, Tune, the Parquet log, saved states), 2 CPUs, 1 per trial
  sweep+analysis  the same with its closing analysis (summary, figures, report), for reference
The ratio sweep / loop is the figure of merit (wall time, median of the pairs).  Usage:
  python bench/quick_vs_loop.py [--pairs 3] [--with-analysis]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from functools import partial
from pathlib import Path


def optuna_loop(preset: str = "quick", seed: int = 0, threads: int = 2) -> tuple[float, int]:
    """Wall seconds of the in-process Optuna loop over the preset's trials, and the number of
    trials it ran."""
    import optuna
    import torch

    from search_spaces import baseline_points, define_space, load_preset, trial_settings
    from trainables import TrialConfig, run_trial

    torch.set_num_threads(threads)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    spec = load_preset(preset)
    dataset = spec.datasets[0]
    start = time.perf_counter()
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.TPESampler(seed=seed))
    for point in baseline_points(spec):
        study.enqueue_trial(point)
    space = partial(define_space, spec=spec, dataset=dataset)

    def objective(trial: optuna.Trial) -> tuple[float, float]:
        config = trial_settings({**space(trial), **trial.params})
        last = run_trial(TrialConfig.from_dict(config))[-1]
        return last["test_accuracy"], last["train_flops"]

    study.optimize(objective, n_trials=spec.num_samples)
    return time.perf_counter() - start, len(study.trials)


def sweep_run(folder: Path, analyze: bool) -> float:
    command = [str(Path(sys.executable).with_name("sweep")), "run", "--preset", "quick",
               "--storage", str(folder), "--name", "q", "--num-cpus", "2"]
    start = time.perf_counter()
    subprocess.run(command + ([] if analyze else ["--no-analyze"]), check=True,
                   stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def loop_in_subprocess() -> float:
    """The loop in a fresh process too (it pays its own imports, as a user's script would)."""
    start = time.perf_counter()
    subprocess.run([sys.executable, __file__, "--loop-only"], check=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--with-analysis", action="store_true")
    parser.add_argument("--loop-only", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.loop_only:
        optuna_loop()
        return
    loops, sweeps, analysed = [], [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.pairs):
            loops.append(loop_in_subprocess())
            sweeps.append(sweep_run(Path(tmp, f"s{i}"), analyze=False))
            if args.with_analysis:
                analysed.append(sweep_run(Path(tmp, f"a{i}"), analyze=True))
            print(f"pair {i}: loop {loops[-1]:.1f} s, sweep {sweeps[-1]:.1f} s"
                  + (f", sweep+analysis {analysed[-1]:.1f} s" if analysed else ""), flush=True)
    import ray
    import torch

    ratios = [s / loop for s, loop in zip(sweeps, loops, strict=True)]
    print(f"# quick preset (digits, 12 trials), 2 CPUs; torch {torch.__version__}, "
          f"ray {ray.__version__}; {args.pairs} interleaved pairs")
    print("| run by | wall s (median) | range | / loop (median) | range |")
    print("|---|---|---|---|---|")
    print(f"| Optuna loop, in-process | {statistics.median(loops):.1f} | "
          f"{min(loops):.1f}-{max(loops):.1f} | 1.00 | |")
    print(f"| sweep run --no-analyze | {statistics.median(sweeps):.1f} | "
          f"{min(sweeps):.1f}-{max(sweeps):.1f} | {statistics.median(ratios):.2f} | "
          f"{min(ratios):.2f}-{max(ratios):.2f} |")
    if analysed:
        a_ratios = [a / loop for a, loop in zip(analysed, loops, strict=True)]
        print(f"| sweep run (with analysis) | {statistics.median(analysed):.1f} | "
              f"{min(analysed):.1f}-{max(analysed):.1f} | {statistics.median(a_ratios):.2f} | "
              f"{min(a_ratios):.2f}-{max(a_ratios):.2f} |")


if __name__ == "__main__":
    main()

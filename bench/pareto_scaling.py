"""Time of `pareto_front` from 1e3 to 1e6 points, side by side with two references.

  ours         analysis.pareto_front(x="train_flops", points="all", by="dataset") on a
               result-log-shaped DataFrame
  ours (mask)  analysis.pareto_mask on the raw arrays (the numpy core)
  optuna       Optuna's own 2-D front (optuna.study._multi_objective._is_pareto_front, private,
               minimising both; accuracy negated), the library reference
  brute force  the O(n^2) definition, vectorised per point (up to 1e4 points)
Every method's front is checked equal to ours. Points: random (FLOPs, accuracy) on a grid, so
ties and duplicates are common, as in real logs. Usage:
  python bench/pareto_scaling.py [--sizes 1000 10000 100000 1000000] [--smoke-test]
"""

from __future__ import annotations

import argparse
import platform
import time

import numpy as np
import optuna
import pandas as pd
from optuna.study._multi_objective import _is_pareto_front

from analysis import pareto_front, pareto_mask


def brute_force(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.empty(len(x), dtype=bool)
    for i in range(len(x)):
        dominated = (x <= x[i]) & (y >= y[i]) & ((x < x[i]) | (y > y[i]))
        out[i] = not dominated.any()
    return out


def timed(repeats: int, fn, *args, **kwargs) -> tuple[float, object]:
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn(*args, **kwargs)
        best = min(best, time.perf_counter() - start)
    return best, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000, 1_000_000])
    parser.add_argument("--brute-force-max", type=int, default=10_000)
    parser.add_argument("--smoke-test", action="store_true")
    args = parser.parse_args()
    sizes = [1000] if args.smoke_test else args.sizes
    rng = np.random.default_rng(0)
    print(f"# best of 3 runs (1 for brute force), numpy {np.__version__}, pandas "
          f"{pd.__version__}, optuna {optuna.__version__}, {platform.machine()}")
    print("| points | front size | ours (DataFrame) s | ours (mask) s | optuna s | "
          "brute force s | optuna / ours (mask) |")
    print("|---|---|---|---|---|---|---|")
    for n in sizes:
        x = rng.integers(1, 10_000, n).astype(float) * 1e9
        y = rng.integers(0, 1000, n) / 1000
        df = pd.DataFrame({"dataset": "d", "trial_id": np.arange(n) // 50,
                           "evaluation": np.arange(n) % 50, "train_flops": x,
                           "test_accuracy": y, "sweep": "s"})
        t_df, front = timed(3, pareto_front, df, x="train_flops", points="all")
        t_mask, mask = timed(3, pareto_mask, x, y)
        t_optuna, reference = timed(3, _is_pareto_front, np.column_stack([x, -y]),
                                    assume_unique_lexsorted=False)
        assert np.array_equal(mask, reference) and len(front) == mask.sum()
        if n <= args.brute_force_max:
            t_brute, brute = timed(1, brute_force, x, y)
            assert np.array_equal(mask, brute)
            brute_cell = f"{t_brute:.4f}"
        else:
            brute_cell = "-"
        print(f"| {n:,} | {int(mask.sum())} | {t_df:.4f} | {t_mask:.4f} | {t_optuna:.4f} | "
              f"{brute_cell} | {t_optuna / t_mask:.2f} |")


if __name__ == "__main__":
    main()

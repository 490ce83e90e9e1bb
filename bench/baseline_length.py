"""How a sweep's headline depends on how long ordinary training runs.

Ordinary training's curve is cut at each of `--epochs` (its rows after that epoch dropped) and the
headline computed again (`analysis.headlines`): ordinary training's best accuracy, the target,
and the least compute a pretraining trial needs to reach it, as a saving. With a constant
learning rate a shorter run is the same training up to its end, so the cut stands for a sweep
whose ordinary training ran that long (a shorter run also evaluates at its very end; the cut's
last evaluation is the one before). Not for a sweep with a scheduler: one that stops trials
would have judged them against a different ordinary training; cut the `none` runs. Also per
sweep: the compute of its costliest pretraining trial, in epochs of ordinary training (its
compute per epoch, from one model of ordinary training). One dataset per sweep.

Run sweeps with ordinary training longer than any cut first, e.g.
  python bench/early_stopping.py --config bench/quick_ordinary_40.yaml --seeds 0 1 2 3 \
      --schedulers none --keep runs
  python bench/baseline_length.py runs/s0-0 runs/s1-0 runs/s2-0 runs/s3-0 \
      --epochs 12 16 20 24 28 40 [--out FILE.csv]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import headlines, is_baseline, load_results
from analysis.load import compute


def cut(df: pd.DataFrame, epochs: float) -> pd.DataFrame:
    """The log with ordinary training's rows after `epochs` dropped."""
    return df[~(is_baseline(df) & (df["epoch"] > epochs + 1e-9))]


def costliest_pretraining(df: pd.DataFrame) -> float:
    """The most compute a pretraining trial spent, in epochs of ordinary training (its compute
    per full-set epoch, from the ordinary-training rows)."""
    spent = compute(df)
    ordinary = is_baseline(df) & (df["epoch"] > 0)
    per_epoch = float(np.median(spent[ordinary] / df.loc[ordinary, "epoch"]))
    return float(spent[~is_baseline(df)].max()) / per_epoch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("sweeps", nargs="+")
    parser.add_argument("--epochs", type=float, nargs="+", default=[12, 20, 28, 40])
    parser.add_argument("--out", help="write the table here (CSV)")
    args = parser.parse_args()
    rows = []
    for sweep in args.sweeps:
        df = load_results(sweep)
        longest = float(df.loc[is_baseline(df), "finetune_epochs"].max())
        costliest = costliest_pretraining(df)
        for epochs in args.epochs:
            if epochs > longest:
                raise SystemExit(f"{sweep}: ordinary training ran {longest:g} epochs, not "
                                 f"{epochs:g}")
            found = headlines(cut(df, epochs))
            if len(found) != 1:
                raise SystemExit(f"{sweep}: expected one dataset with ordinary training and "
                                 f"pretraining, found {len(found)}")
            h = found[0]
            rows.append({"sweep": Path(sweep).name, "ordinary_epochs": epochs,
                         "target": h.baseline_accuracy, "saving": h.savings,
                         "interval_low": h.interval[0], "interval_high": h.interval[1],
                         "costliest_pretraining_epochs": costliest})
    table = pd.DataFrame(rows)
    print(table.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    print()
    print(table.pivot(index="ordinary_epochs", columns="sweep",
                      values=["target", "saving"]).to_string(float_format=lambda v: f"{v:.3f}"))
    if args.out:
        table.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()

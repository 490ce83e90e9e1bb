"""Where a grid's compute goes: pretraining and fine-tuning per configuration, as a markdown table.

For each configuration of a seed grid (`experiments/seed_grid.py`), medians over its seeds of the
epochs and the compute (GFLOPs: training FLOPs plus small-set selection) each phase ran, how
many pretraining phases ended by convergence rather than at their cap, the lowest training-set
loss reached and the final test accuracy.
Usage: python experiments/phase_costs.py results/docs/grid_paper_protocol_fashion
"""

from __future__ import annotations

import argparse

import pandas as pd

from analysis import load_results
from analysis.savings import compute, format_gflops
from common.describe import describe_config


def phase_costs(df: pd.DataFrame) -> pd.DataFrame:
    """One row per trial: each phase's epochs and compute, how pretraining ended, the lowest
    training-set loss and the final test accuracy."""
    rows = []
    for (_, trial_id), trial in df.groupby(["sweep", "trial_id"], sort=True):
        trial = trial.sort_values("evaluation")
        spent = compute(trial)
        pre = trial[trial["phase"] == "pretrain"]
        pre_compute = float(spent[pre.index].max()) if len(pre) else 0.0
        last = trial.iloc[-1]
        ends = pre["pretrain_end"].dropna()
        rows.append({
            # the configuration as its seeds share it (each seed's own pretraining length is
            # in its columns): not the epochs this one ran
            "configuration": describe_config({**last.to_dict(), "subset_fraction": None,
                                              "pretrain_epochs_run": None}),
            "config": trial_id.rsplit("s", 1)[0], "seed": last["seed"],
            "pretrain_epochs": float(pre["epoch"].max()) if len(pre) else 0.0,
            "pretrain_converged": bool(len(ends) and ends.iloc[-1] == "converged"),
            "pretrain_gflops": pre_compute / 1e9,
            "finetune_epochs": float(last["epoch"]),
            "finetune_gflops": (float(spent.max()) - pre_compute) / 1e9,
            "total_gflops": float(spent.max()) / 1e9,
            "lowest_train_loss": float(trial["train_sample_loss"].min()),
            "final_test_accuracy": float(last["test_accuracy"]),
        })
    return pd.DataFrame(rows)


def markdown(trials: pd.DataFrame) -> str:
    grouped = trials.groupby("config", sort=False)
    table = grouped.agg(
        configuration=("configuration", "first"), seeds=("seed", "count"),
        pretrain_epochs=("pretrain_epochs", "median"),
        converged=("pretrain_converged", "sum"), pretrain=("pretrain_gflops", "median"),
        finetune_epochs=("finetune_epochs", "median"), finetune=("finetune_gflops", "median"),
        total=("total_gflops", "median"), loss=("lowest_train_loss", "median"),
        accuracy=("final_test_accuracy", "median"))
    table = table.sort_values("pretrain", kind="stable")
    lines = ["| configuration | pretraining epochs | pretraining converged | pretraining GFLOPs | "
             "fine-tuning epochs | fine-tuning GFLOPs | total GFLOPs | lowest training-set "
             "loss | final test accuracy |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table.itertuples():
        converged = "-" if r.pretrain_epochs == 0 else f"{r.converged} of {r.seeds}"
        lines.append(f"| {r.configuration} | {r.pretrain_epochs:.3g} | {converged} | "
                     f"{format_gflops(r.pretrain)} | {r.finetune_epochs:.3g} | "
                     f"{format_gflops(r.finetune)} | {format_gflops(r.total)} | {r.loss:.3f} | "
                     f"{r.accuracy:.2%} |")
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("paths", nargs="+", help="grid folders (or results/ folders)")
    args = parser.parse_args()
    print(f"Medians over each configuration's seeds ({', '.join(args.paths)}).\n")
    print(markdown(phase_costs(load_results(args.paths))))

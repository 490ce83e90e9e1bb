"""Fixed configurations x fixed seeds, run in-process (no Ray), logged like a sweep.

A sampler that searches the seed learns which seeds are lucky; to measure a difference against
seed noise, every configuration here runs on the same seeds. Rows go to `<storage>/<name>/results/`
in the sweep log's format, so `sweep analyze` reads them (alone or pooled with sweeps).
Usage: python experiments/seed_grid.py NAME [--storage results/docs]
"""

from __future__ import annotations

import argparse
import time

from common import storage as storage_paths
from common.layout import SweepLayout
from sweep.results_log import ResultLog
from trainables import TrialConfig, TrialRunner

# name: (settings shared by all, configurations, seeds)
GRIDS = {
    "grid_blog_digits": (
        {"dataset": "digits", "width": 6, "finetune_epochs": 30, "target_accuracy": 0.9,
         "eval_every": 128},
        [{"strategy": "none"}, {"strategy": "class_mean", "pretrain_epochs": 28},
         {"strategy": "class_mean", "pretrain_epochs": 50}],
        [0, 1, 2, 3, 4],
    ),
    "grid_paper_digits": (
        {"dataset": "digits", "width": 6, "finetune_epochs": 40, "eval_every": 360},
        [{"strategy": "none"},
         {"strategy": "random", "overdetermination_ratio": 0.5, "pretrain_epochs": 20},
         {"strategy": "random", "overdetermination_ratio": 1.0, "pretrain_epochs": 20},
         {"strategy": "random", "overdetermination_ratio": 2.0, "pretrain_epochs": 20}],
        [0, 1, 2],
    ),
    # The paper's protocol as far as its abstract fixes it: Adam at 1e-3, random subsets of 1/2
    # .. 1/64 of the training set and the same sized by Q, pretraining to convergence on the
    # subset (its loss), then fine-tuning to convergence (the validation loss: 10% of each class
    # held out), ordinary training to convergence as the baseline; evaluations log-spaced early.
    "grid_paper_protocol_digits": (
        {"dataset": "digits", "width": 6, "lr": 0.001, "batch_size": 64, "eval_every": 256,
         "early_evals": 4, "validation_fraction": 0.1, "patience": 20, "min_delta": 0.01,
         "finetune_epochs": 200},
        [{"strategy": "none"}]
        + [{"strategy": "random", "subset_fraction": 1 / 2**k, "pretrain_epochs": 100}
           for k in range(1, 7)]
        + [{"strategy": "random", "overdetermination_ratio": q, "pretrain_epochs": 100}
           for q in (1.0, 2.0, 3.0)],
        [0, 1, 2],
    ),
    "grid_fashion_long": (  # ordinary training beyond the paper_fashion sweep's 4 epochs
        {"dataset": "fashion_mnist", "width": 8, "finetune_epochs": 10, "eval_every": 10000},
        [{"strategy": "none"}],
        [0, 1],
    ),
    "grid_blog_fashion": (
        {"dataset": "fashion_mnist", "width": 8, "finetune_epochs": 4, "target_accuracy": 0.85,
         "eval_every": 3000},
        [{"strategy": "none"}, {"strategy": "class_mean", "pretrain_epochs": 28}],
        [0, 1, 2],
    ),
}


def run_grid(name: str, storage: str) -> None:
    shared, configs, seeds = GRIDS[name]
    results = SweepLayout(storage_paths.join(storage_paths.normalise(storage), name)).results
    storage_paths.make_dirs(results)
    log = ResultLog(results)
    for i, settings in enumerate(configs):
        for seed in seeds:
            config = TrialConfig.from_dict({**shared, **settings, "seed": seed})
            trial_id = f"c{i}s{seed}"
            runner = TrialRunner(config, labels={"sweep": name, "trial_id": trial_id})
            start = time.perf_counter()
            for record in runner.run():
                log.add(record)
            log.flush(config.dataset, trial_id)
            last = record
            print(f"{name} {trial_id} {settings} seed {seed}: acc {last['test_accuracy']:.4f} "
                  f"after {last['train_flops'] / 1e9:.2f} GFLOPs ({last['stop_reason']}, "
                  f"{time.perf_counter() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("name", choices=sorted(GRIDS))
    parser.add_argument("--storage", default="results/docs")
    args = parser.parse_args()
    run_grid(args.name, args.storage)

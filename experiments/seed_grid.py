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
    # The same protocol on full Fashion-MNIST, sized for a 2-core CPU: the width-8 net has
    # P = 29,602 parameters, so Q = 1, 2, 3 are K = 2,961, 5,921 and 8,881 images (M = 10).
    # Pretraining stops at convergence or after as many samples as 5 full-set epochs of the
    # 54,000 training images (1/2 -> 10 subset epochs ... 1/64 -> 100, the digits cap; Q = 1, 2,
    # 3 -> 92, 46, 31), whichever comes first; fine-tuning at convergence or 15 epochs.
    # Patience 6 evaluations = 2 epochs.
    "grid_paper_protocol_fashion": (
        {"dataset": "fashion_mnist", "width": 8, "lr": 0.001, "batch_size": 64,
         "eval_every": 18000, "early_evals": 4, "validation_fraction": 0.1, "patience": 6,
         "min_delta": 0.01, "finetune_epochs": 15},
        [{"strategy": "none"}]
        + [{"strategy": "random", "subset_fraction": 1 / 2**k,
            "pretrain_epochs": min(100, 5 * 2**k)} for k in range(1, 7)]
        + [{"strategy": "random", "overdetermination_ratio": q, "pretrain_epochs": epochs}
           for q, epochs in ((1.0, 92), (2.0, 46), (3.0, 31))]
        # and one short pretraining for contrast: Q = 1 for 9 epochs (half a full-set epoch)
        + [{"strategy": "random", "overdetermination_ratio": 1.0, "pretrain_epochs": 9}],
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


def run_grid(name: str, storage: str, shard: tuple[int, int] = (0, 1)) -> None:
    """Run the grid's (configuration, seed) pairs, or every n-th of them from the k-th with
    `shard=(k, n)`, so that n processes (one per core) share one grid and one log."""
    shared, configs, seeds = GRIDS[name]
    k, n = shard
    results = SweepLayout(storage_paths.join(storage_paths.normalise(storage), name)).results
    storage_paths.make_dirs(results)
    log = ResultLog(results)
    pairs = [(i, settings, seed) for i, settings in enumerate(configs) for seed in seeds]
    for i, settings, seed in pairs[k::n]:
        config = TrialConfig.from_dict({**shared, **settings, "seed": seed})
        trial_id = f"c{i}s{seed}"
        done = storage_paths.join(results, f"{config.dataset}-{trial_id}.parquet")
        if storage_paths.exists(done):
            continue  # finished by an earlier run of the grid: rerunning picks up where it stopped
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
    parser.add_argument("--shard", default="0/1", metavar="K/N",
                        help="run every N-th (configuration, seed) pair from the K-th (0-based)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per process (default: torch's)")
    args = parser.parse_args()
    k, _, n = args.shard.partition("/")
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    run_grid(args.name, args.storage, (int(k), int(n or 1)))

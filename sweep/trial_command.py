"""`sweep trial`: one trial in-process, without Ray, its evaluations printed as they are made."""

from __future__ import annotations

import dataclasses
from typing import Any

from common.describe import describe_config
from sweep.table import RowPrinter, fmt_float
from trainables.config import TrialConfig
from trainables.sizing import check_ratio_fits
from trainables.train import TrialRunner

TRIAL_COLUMNS = [
    ("phase", 8, lambda r: r["phase"]),
    ("epoch", 6, lambda r: f"{r['epoch']:.2f}"),
    ("samples", 9, lambda r: str(r["samples_seen"])),
    ("train_GFLOPs", 12, lambda r: f"{r['train_flops'] / 1e9:.3f}"),
    ("train_loss", 10, lambda r: fmt_float(r["train_loss"], ".4f")),
    ("test_loss", 9, lambda r: fmt_float(r["test_loss"], ".4f")),
    ("test_acc", 8, lambda r: f"{r['test_accuracy']:.4f}"),
    ("time_s", 7, lambda r: f"{r['wall_time_s']:.1f}"),
    ("status", 8, lambda r: r["status"]),
]


def run_trial_command(settings: dict[str, Any]) -> list[dict[str, Any]]:
    """Validate `settings`, run the trial, print a summary line and one row per evaluation."""
    config = TrialConfig.from_dict(settings)
    if config.overdetermination_ratio is not None:
        check_ratio_fits(config, config.overdetermination_ratio)
    runner = TrialRunner(config)
    print(describe(runner), flush=True)
    printer = RowPrinter(TRIAL_COLUMNS, write=lambda line: print(line, flush=True))
    records = runner.run(printer.row)
    last = records[-1]
    print(f"{last['status']} ({last['stop_reason']}): test accuracy {last['test_accuracy']:.4f} "
          f"after {last['train_flops'] / 1e9:.3f} GFLOPs of training "
          f"({last['wall_time_s']:.1f} s on {last['device']})")
    return records


def describe(runner: TrialRunner) -> str:
    """The trial as it will run: model, P, FLOPs per sample, the small set, device."""
    c, size = runner.config, runner.size
    values = {**c.to_dict(), "pretrain_epochs": runner.pretrain_epochs,
              **(dataclasses.asdict(size) if size is not None else {})}
    small = "ordinary training (no pretraining)" if size is None else describe_config(values)
    return (f"{c.dataset}: {c.model} width {c.width}, P={runner.params:,} parameters, "
            f"{runner.ledger.per_train_sample:,} training FLOPs/sample, "
            f"{len(runner.data.train_y):,} training examples; {small}; then fine-tune up to "
            f"{c.finetune_epochs} epochs on {runner.device}")

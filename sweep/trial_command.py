"""`sweep trial`: one trial in-process, without Ray, its evaluations printed as they are made."""

from __future__ import annotations

import dataclasses
import sys
from typing import Any

from common.describe import describe_config
from common.errors import ConfigError
from common.records import compute_flops
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
    ("trainset_loss", 13, lambda r: fmt_float(r["train_sample_loss"], ".4f")),
    ("val_acc", 7, lambda r: fmt_float(r["val_accuracy"], ".4f")),
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
    if config.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise ConfigError("device 'cuda': this machine has no CUDA GPU that torch can use; "
                              "use --device cpu (or auto)")
    runner = TrialRunner(config)
    print(describe(runner), flush=True)
    bar = _progress_bar(runner) if sys.stdout.isatty() else None
    printer = RowPrinter(TRIAL_COLUMNS, write=bar.write if bar else lambda line: print(
        line, flush=True))

    def row(record: dict[str, Any]) -> None:
        printer.row(record)
        if bar is not None:
            bar.update(record["samples_seen"] - bar.n)

    try:
        records = runner.run(row)
    finally:
        if bar is not None:
            bar.close()
    last = records[-1]
    print(f"{last['status']} ({last['stop_reason']}): test accuracy {last['test_accuracy']:.4f} "
          f"after {spent(last)}, in {last['wall_time_s']:.1f} s on {last['device']}")
    return records


def spent(record: dict[str, Any]) -> str:
    """The trial's compute as the search and the analysis count it: training, plus building
    the small set where that took arithmetic (k-means, class means)."""
    training = _flops(record["train_flops"])
    if not record["selection_flops"]:
        return f"{training} of training"
    return (f"{_flops(compute_flops(record))} of compute ({training} of training, "
            f"{_flops(record['selection_flops'])} selecting the small set)")


def _flops(value: float) -> str:
    return f"{value / 1e9:.3f} GFLOPs" if value >= 1e6 else f"{value:,.0f} FLOPs"


def _progress_bar(runner: TrialRunner) -> Any:
    """On a terminal: training samples done of the most the trial can take (its epochs), with
    elapsed time and ETA; the table's rows print above it."""
    from tqdm import tqdm

    small = len(runner.small.y) if runner.small is not None else 0
    total = runner.pretrain_epochs * small + runner.config.finetune_epochs * len(
        runner.data.train_y)
    return tqdm(total=total, unit="sample", unit_scale=True, dynamic_ncols=True, leave=False)


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

"""`sweep trial`: one trial in-process, without Ray, its evaluations printed as they are made."""

from __future__ import annotations

from typing import Any

from sweep.table import RowPrinter, fmt_float
from trainables import TrialConfig, TrialRunner
from trainables.models import check_ratio_fits

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
    c, size = runner.config, runner.size
    small = "ordinary training (no pretraining)"
    if size is not None:
        small = (f"pretrain {runner.pretrain_epochs} epochs on {c.strategy} small set of "
                 f"K={size.subset_size} ({size.subset_fraction:.2%} of "
                 f"{len(runner.data.train_y)}, Q={size.overdetermination_ratio:.3g})")
    return (f"{c.dataset}: {c.model} width {c.width}, P={runner.params:,} parameters, "
            f"{runner.ledger.per_train_sample:,} training FLOPs/sample; {small}; then fine-tune "
            f"up to {c.finetune_epochs} epochs on {runner.device}")

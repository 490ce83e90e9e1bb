"""The result log's record: every column, its type and its meaning, defined once.

One evaluation of one trial is one record (one row of the Parquet log). The pipeline
(`trainables.train`) makes the `TRIAL` columns, the Ray Tune adapter adds the `PLACEMENT` ones,
the driver writes them with `arrow_schema()`, and `analysis` reads them back with the same schema.
Column order here is the order in the files. Nothing here imports torch or Ray.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from typing import Any, Literal

Kind = Literal["string", "float", "int", "bool"]


@dataclass(frozen=True)
class Column:
    name: str
    kind: Kind
    meaning: str


def _columns(*specs: tuple[str, Kind, str]) -> tuple[Column, ...]:
    return tuple(Column(*spec) for spec in specs)


# What the pipeline records at every evaluation: the contract's columns, then the extras.
TRIAL = _columns(
    ("sweep", "string", "the sweep's name ('' for a trial run alone)"),
    ("trial_id", "string", "the trial's id within the sweep ('' for a trial run alone)"),
    ("dataset", "string", "digits, fashion_mnist, mnist, cifar10 or cifar100"),
    ("model", "string", "cnn (VGG-style) or mlp"),
    ("params", "int", "P: trainable parameters of the model"),
    ("strategy", "string", "how the small set was built; none: ordinary training"),
    ("subset_size", "int", "K: examples in the small set (null for ordinary training)"),
    ("subset_fraction", "float", "K / N, N the training-set size"),
    ("overdetermination_ratio", "float", "Q = K*M/P, M the number of classes"),
    ("pretrain_epochs", "int", "epochs on the small set (0 for ordinary training)"),
    ("lr", "float", "Adam's learning rate"),
    ("batch_size", "int", "examples per optimizer step"),
    ("seed", "int", "seed of the model's initialisation, the small set and the batch order"),
    ("phase", "string", "init (before training), pretrain or finetune"),
    ("epoch", "float", "epochs done in the current phase, fractional within an epoch"),
    ("step", "int", "optimizer steps so far, both phases"),
    ("samples_seen", "int", "training examples processed so far, both phases"),
    ("train_flops", "int", "training FLOPs so far (forward + backward, per sample)"),
    ("eval_flops", "int", "evaluation FLOPs so far (forward: test set, training-set sample, "
                          "validation split, and the small set's loss while pretraining), kept "
                          "apart from training"),
    ("train_loss", "float", "mean training loss over the batches since the last evaluation"),
    ("test_loss", "float", "mean cross-entropy on the test set"),
    ("test_accuracy", "float", "accuracy on the test set"),
    ("wall_time_s", "float", "seconds since the trial started, evaluations included"),
    ("status", "string", "running, finished, diverged, stopped (by an early-stopping "
                         "scheduler) or failed (an error, after its retries): the last row "
                         "says how a trial ended"),
    ("width", "int", "the model's width (first conv block's channels; MLP: 8x this)"),
    ("finetune_epochs", "int", "most epochs on the full training set"),
    ("augment", "bool", "whether batches were augmented (translations, flips for CIFAR)"),
    ("evaluation", "int", "index of this evaluation within the trial: 0, 1, 2, ..."),
    ("stop_reason", "string", "why the trial ended (max_epochs, target_accuracy, target_loss, "
                              "converged, flops_budget, diverged, early_stopped, error); null "
                              "while running"),
    ("train_time_s", "float", "seconds spent training, evaluations excluded"),
    ("flops_per_sample", "int", "training FLOPs of one example (forward + backward)"),
    ("macs_forward", "int", "thop's forward multiply-accumulates of one example (a cross-check)"),
    ("selection_flops", "int", "FLOPs of building the small set (k-means, class means; 0 for "
                               "a subset chosen by index), apart from training"),
    ("device", "string", "cpu, or the GPU's name"),
    ("version", "string", "the project's version"),
    ("revision", "string", "the project's git revision, '+dirty' when the tree had changes; "
                           "null outside a git checkout"),
    ("config_json", "string", "the trial's whole configuration (TrialConfig as JSON)"),
    ("train_sample_loss", "float", "mean cross-entropy on a fixed sample of the training set "
                                   "(train_eval_size): the training-set loss"),
    ("train_sample_accuracy", "float", "accuracy on that sample"),
    ("train_sample_size", "int", "examples in that sample (train_eval_size; 0: not measured)"),
    ("val_loss", "float", "mean cross-entropy on the validation split (null without one)"),
    ("val_accuracy", "float", "accuracy on the validation split (null without one)"),
    ("val_size", "int", "examples held out of training for validation (validation_fraction)"),
    ("small_set_loss", "float", "mean cross-entropy on the small set (up to train_eval_size of "
                                "it) while pretraining: what pretraining's convergence watches"),
    ("pretrain_end", "string", "on pretraining's last evaluation, why it ended: max_epochs or "
                               "converged (patience)"),
)

# Added by the Ray Tune adapter: where and when each evaluation was made.
PLACEMENT = _columns(
    ("node", "string", "Ray node id"),
    ("hostname", "string", "the node's host name"),
    ("pid", "int", "the worker process"),
    ("trial_start_unix", "float", "when this attempt of the trial started (Unix time)"),
    ("unix_time", "float", "when the evaluation was reported (Unix time)"),
)

LOG = TRIAL + PLACEMENT

RECORD_COLUMNS: tuple[str, ...] = tuple(c.name for c in TRIAL)
ENDED = ("finished", "diverged", "stopped")  # the statuses of a last row that ended its trial
FAILED = "failed"  # a trial's last row when it failed after its retries (a resume runs it again)
# A result's key marking a row of the log reported to Tune again (a resumed trial whose end the
# log already holds): not a new evaluation, so the result log leaves it out
REPLAYED = "replayed_from_log"
# Derived from a trial's rows (not a log column): the epochs its pretraining ran, from the row
# that ended it (`pretrain_end`); `pretrain_epochs` is the most it may run
PRETRAIN_RAN = "pretrain_epochs_run"
PLACEMENT_COLUMNS: tuple[str, ...] = tuple(c.name for c in PLACEMENT)
LOG_COLUMNS: tuple[str, ...] = tuple(c.name for c in LOG)

Record = dict[str, Any]


@cache
def arrow_schema() -> Any:
    """The Parquet schema of every log file (a `pyarrow.Schema`), so that a folder of per-trial
    files reads as one table whatever values, or nulls, a given trial had."""
    import pyarrow as pa

    types = {"string": pa.string(), "float": pa.float64(), "int": pa.int64(), "bool": pa.bool_()}
    return pa.schema([pa.field(c.name, types[c.kind]) for c in LOG])


def compute_flops(record: dict[str, Any]) -> float:
    """A record's compute: training FLOPs plus its small set's building FLOPs (what the search
    minimises and the analysis compares; `analysis.load.compute`, for a DataFrame)."""
    return float(record["train_flops"]) + float(record.get("selection_flops") or 0)


def search_accuracy(record: dict[str, Any]) -> float:
    """The accuracy the search maximises: on the validation split when the trial held one out
    (as the analysis judges), else on the test set."""
    value = record.get("val_accuracy")
    if value is None or value != value:  # not measured: no split (NaN in a DataFrame's row)
        return float(record["test_accuracy"])
    return float(value)


def log_row(values: dict[str, Any]) -> Record:
    """A record reduced to the log's columns, in order (a missing column is null)."""
    return {name: values.get(name) for name in LOG_COLUMNS}

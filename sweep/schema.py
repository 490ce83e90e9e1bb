"""The result log's columns and their Parquet types: one schema for every file, so that a folder
of per-trial files reads as one table whatever values (or nulls) a given trial had."""

from __future__ import annotations

import pyarrow as pa

from trainables.train import RECORD_COLUMNS

_STRING = {"sweep", "trial_id", "dataset", "model", "strategy", "phase", "status", "stop_reason",
           "device", "version", "config_json", "node", "hostname"}
_FLOAT = {"subset_fraction", "overdetermination_ratio", "lr", "epoch", "train_loss", "test_loss",
          "test_accuracy", "wall_time_s", "train_time_s", "trial_start_unix", "unix_time"}
_BOOL = {"augment"}

# Added by the Ray Tune adapter: where and when each evaluation was made.
RAY_COLUMNS = ("node", "hostname", "pid", "trial_start_unix", "unix_time")
LOG_COLUMNS = RECORD_COLUMNS + RAY_COLUMNS


def _type(column: str) -> pa.DataType:
    if column in _STRING:
        return pa.string()
    if column in _FLOAT:
        return pa.float64()
    if column in _BOOL:
        return pa.bool_()
    return pa.int64()


RESULT_SCHEMA = pa.schema([pa.field(c, _type(c)) for c in LOG_COLUMNS])

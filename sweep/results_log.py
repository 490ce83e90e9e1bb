"""The Parquet result log: `<storage>/<name>/results/`, one file per trial, one row per evaluation.

The driver's `ResultLogCallback` adds every reported evaluation to its trial's rows (keyed by the
evaluation's index, so a retried or resumed trial never duplicates a row) and rewrites that
trial's file atomically, at once: a row the driver has seen is on disk before Tune records the
checkpoint that comes with it, so a crash at any moment leaves no gap either.
`pandas.read_parquet('<storage>/<name>/results')` reads the whole log.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from ray.tune import Callback

from sweep import storage
from sweep.schema import LOG_COLUMNS, RESULT_SCHEMA


class ResultLog:
    """Rows of each trial, mirrored to `<results>/<dataset>-<trial_id>.parquet`."""

    def __init__(self, results_location: str) -> None:
        self.location = results_location
        self._rows: dict[str, dict[int, dict[str, Any]]] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks; the rows are on disk
        return {"location": self.location, "_rows": {}}

    def file_for(self, dataset: str, trial_id: str) -> str:
        return storage.join(self.location, f"{dataset}-{trial_id}.parquet")

    def add(self, row: dict[str, Any]) -> None:
        rows = self._trial_rows(row["dataset"], row["trial_id"])
        rows[int(row["evaluation"])] = {c: row.get(c) for c in LOG_COLUMNS}

    def flush(self, dataset: str, trial_id: str) -> None:
        rows = self._trial_rows(dataset, trial_id)
        table = pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=RESULT_SCHEMA)
        storage.write_parquet_atomic(self.file_for(dataset, trial_id), table)

    def _trial_rows(self, dataset: str, trial_id: str) -> dict[int, dict[str, Any]]:
        key = f"{dataset}-{trial_id}"
        if key not in self._rows:
            # A resumed driver continues a trial's file rather than starting it again.
            self._rows[key] = {}
            location = self.file_for(dataset, trial_id)
            if storage.exists(location):
                fs, path = storage.filesystem(location)
                try:
                    existing = pq.read_table(path, filesystem=fs).to_pylist()
                except (OSError, pa.ArrowException) as e:
                    print(f"warning: {location} is unreadable ({e}); its rows are rewritten "
                          "from the trial's records")
                    existing = []
                self._rows[key] = {int(r["evaluation"]): r for r in existing}
        return self._rows[key]


class ResultLogCallback(Callback):
    """Writes each trial's evaluations to the log as Tune reports them (on the driver)."""

    def __init__(self, results_location: str) -> None:
        self.log = ResultLog(results_location)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "evaluation" not in result:  # Tune's own bookkeeping results carry no record
            return
        self.log.add({**result, "trial_id": trial.trial_id})
        self.log.flush(result["dataset"], trial.trial_id)

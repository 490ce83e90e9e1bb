"""The Parquet result log: `<sweep>/results/`, one file per trial, one row per evaluation.

`ResultLog` adds every reported evaluation to its trial's rows (keyed by the evaluation's index,
so a retried or resumed trial never duplicates a row) and rewrites that trial's file atomically.
A restarted trial resumes from a saved state no later than the last row this log holds
(`last_logged_evaluation`), so a crash at any moment leaves no gap.
`pandas.read_parquet('<sweep>/results')` reads the whole log. No Ray here: the Tune callback that
feeds the log on the driver is in `sweep.callbacks`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from common import storage
from common.errors import warn
from common.layout import result_file_name, trial_of_result_file
from common.records import Record, arrow_schema, log_row


class ResultLog:
    """Rows of each trial, mirrored to `<results>/<dataset>-<trial_id>.parquet`."""

    def __init__(self, results_location: str) -> None:
        self.location = results_location
        self._rows: dict[str, dict[int, Record]] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks; the rows are on disk
        return {"location": self.location, "_rows": {}}

    def file_for(self, dataset: str, trial_id: str) -> str:
        return storage.join(self.location, result_file_name(dataset, trial_id))

    def add(self, row: Record, tune_results: Path | None = None) -> None:
        rows = self._trial_rows(row["dataset"], row["trial_id"], tune_results)
        evaluation = int(row["evaluation"])
        rows[evaluation] = log_row(row)
        if row["status"] != "running":
            # A trial's last row: rows beyond it came from an earlier attempt that went further
            # (a redone trial may stop sooner: float results can differ between processes).
            for later in [k for k in rows if k > evaluation]:
                del rows[later]

    def mark_stopped(self, dataset: str, trial_id: str) -> bool:
        """If the trial's last row says it is still running (it ended without a last record of
        its own: an early-stopping scheduler stopped it), make that row say `stopped`, reason
        `early_stopped`. True if a row changed."""
        rows = self._trial_rows(dataset, trial_id)
        if not rows or rows[max(rows)]["status"] != "running":
            return False
        rows[max(rows)].update(status="stopped", stop_reason="early_stopped")
        return True

    def flush(self, dataset: str, trial_id: str) -> None:
        rows = self._trial_rows(dataset, trial_id)
        write_rows(self.file_for(dataset, trial_id), [rows[k] for k in sorted(rows)])

    def _trial_rows(self, dataset: str, trial_id: str,
                    tune_results: Path | None = None) -> dict[int, Record]:
        key = result_file_name(dataset, trial_id)
        if key not in self._rows:
            # A resumed driver continues a trial's file rather than starting it again.
            self._rows[key] = {}
            location = self.file_for(dataset, trial_id)
            if storage.exists(location):
                existing = read_or_rebuild(location, tune_results)
                self._rows[key] = {int(r["evaluation"]): r for r in existing}
        return self._rows[key]


def write_rows(location: str, rows: list[Record]) -> None:
    """One trial's rows as a Parquet file in the log's schema, written atomically."""
    storage.write_parquet_atomic(location, pa.Table.from_pylist(rows, schema=arrow_schema()))


def read_or_rebuild(location: str, tune_results: Path | None) -> list[Record]:
    """A trial's logged rows. An unreadable file is kept as `<file>.corrupt` for inspection and
    its rows are rebuilt from Tune's own record of the results it received (the trial's
    result.json on the driver), then written back, whole."""
    fs, path = storage.filesystem(location)
    try:
        return pq.read_table(path, filesystem=fs).to_pylist()
    except (OSError, pa.ArrowException) as e:
        storage.move(location, f"{location}.corrupt")
        rows = sorted(_rows_from_tune(tune_results), key=lambda r: r["evaluation"])
        write_rows(location, rows)
        warn(f"{location} is unreadable ({str(e).splitlines()[0]}); moved to {location}.corrupt, "
             f"{len(rows)} rows rebuilt from {tune_results or 'nothing'}")
        return rows


def logged_trials(results_location: str, dataset: str) -> dict[str, str]:
    """The trials of `dataset` that have a log file: trial id -> the file's location."""
    found = {}
    for name in storage.list_names(results_location):
        trial_id = trial_of_result_file(name, dataset)
        if trial_id is not None:
            found[trial_id] = storage.join(results_location, name)
    return found


def repair_unreadable(results_location: str, dataset: str, experiment: Path) -> None:
    """Before a resume: rebuild every unreadable log file of `dataset` from Tune's results."""
    for trial_id, location in logged_trials(results_location, dataset).items():
        trial_dirs = sorted(experiment.glob(f"*_{trial_id}_*"))
        read_or_rebuild(location, trial_dirs[0] / "result.json" if trial_dirs else None)


def set_aside_unknown_trials(results_location: str, dataset: str, known: set[str]) -> list[str]:
    """Move the log files of trials a restored sweep does not know (started after Tune's last
    snapshot before a crash; Tune will never continue them) to `<file>.abandoned`, kept for
    inspection but out of the log. Returns the trial ids set aside."""
    abandoned = []
    for trial_id, location in logged_trials(results_location, dataset).items():
        if trial_id not in known:
            storage.move(location, f"{location}.abandoned")
            abandoned.append(trial_id)
    return abandoned


def last_logged_evaluation(results_location: str, dataset: str, trial_id: str) -> int:
    """The highest evaluation of the trial in the log (-1 when it has none, or it is unreadable:
    then the trial starts again from the beginning and rewrites its rows)."""
    location = storage.join(results_location, result_file_name(dataset, trial_id))
    if not storage.exists(location):
        return -1
    fs, path = storage.filesystem(location)
    try:
        column = pq.read_table(path, filesystem=fs, columns=["evaluation"]).column(0)
    except (OSError, pa.ArrowException):
        return -1
    return max(column.to_pylist(), default=-1)


def _rows_from_tune(results_json: Path | None) -> list[Record]:
    if results_json is None or not results_json.is_file():
        return []
    rows = []
    for line in results_json.read_text().splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the crash
            continue
        if "evaluation" in result:
            rows.append(log_row(result))
    return rows

"""The Parquet result log: `<storage>/<name>/results/`, one file per trial, one row per evaluation.

The driver's `ResultLogCallback` adds every reported evaluation to its trial's rows (keyed by the
evaluation's index, so a retried or resumed trial never duplicates a row) and rewrites that
trial's file atomically, at once. A restarted trial resumes from a saved state no later than the
last row this log holds (`last_logged_evaluation`), so a crash at any moment leaves no gap.
`pandas.read_parquet('<storage>/<name>/results')` reads the whole log.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
from ray.tune import Callback

from sweep.schema import LOG_COLUMNS, RESULT_SCHEMA
from trainables import storage


class ResultLog:
    """Rows of each trial, mirrored to `<results>/<dataset>-<trial_id>.parquet`."""

    def __init__(self, results_location: str) -> None:
        self.location = results_location
        self._rows: dict[str, dict[int, dict[str, Any]]] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks; the rows are on disk
        return {"location": self.location, "_rows": {}}

    def file_for(self, dataset: str, trial_id: str) -> str:
        return storage.join(self.location, f"{dataset}-{trial_id}.parquet")

    def add(self, row: dict[str, Any], tune_results: Path | None = None) -> None:
        rows = self._trial_rows(row["dataset"], row["trial_id"], tune_results)
        evaluation = int(row["evaluation"])
        rows[evaluation] = {c: row.get(c) for c in LOG_COLUMNS}
        if row["status"] != "running":
            # A trial's last row: rows beyond it came from an earlier attempt that went further
            # (a redone trial may stop sooner: float results can differ between processes).
            for later in [k for k in rows if k > evaluation]:
                del rows[later]

    def flush(self, dataset: str, trial_id: str) -> None:
        rows = self._trial_rows(dataset, trial_id)
        table = pa.Table.from_pylist([rows[k] for k in sorted(rows)], schema=RESULT_SCHEMA)
        storage.write_parquet_atomic(self.file_for(dataset, trial_id), table)

    def _trial_rows(self, dataset: str, trial_id: str,
                    tune_results: Path | None = None) -> dict[int, dict[str, Any]]:
        key = f"{dataset}-{trial_id}"
        if key not in self._rows:
            # A resumed driver continues a trial's file rather than starting it again.
            self._rows[key] = {}
            location = self.file_for(dataset, trial_id)
            if storage.exists(location):
                self._rows[key] = self._read_existing(location, tune_results)
        return self._rows[key]

    def _read_existing(self, location: str, tune_results: Path | None) -> dict[int, dict]:
        existing = read_or_rebuild(location, tune_results)
        return {int(r["evaluation"]): r for r in existing}


def read_or_rebuild(location: str, tune_results: Path | None) -> list[dict[str, Any]]:
    """A trial's logged rows. An unreadable file is kept as `<file>.corrupt` for inspection and
    its rows are rebuilt from Tune's own record of the results it received (the trial's
    result.json on the driver), then written back, whole."""
    fs, path = storage.filesystem(location)
    try:
        return pq.read_table(path, filesystem=fs).to_pylist()
    except (OSError, pa.ArrowException) as e:
        fs.move(path, f"{path}.corrupt")
        rows = _rows_from_tune(tune_results)
        table = pa.Table.from_pylist(sorted(rows, key=lambda r: r["evaluation"]),
                                     schema=RESULT_SCHEMA)
        storage.write_parquet_atomic(location, table)
        print(f"warning: {location} is unreadable ({str(e).splitlines()[0]}); moved to "
              f"{location}.corrupt, {len(rows)} rows rebuilt from {tune_results or 'nothing'}",
              flush=True)
        return rows


def repair_unreadable(results_location: str, dataset: str, experiment: Path) -> None:
    """Before a resume: rebuild every unreadable log file of `dataset` from Tune's results."""
    import pyarrow.fs as pafs

    fs, folder = storage.filesystem(results_location)
    prefix = f"{dataset}-"
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        if info.base_name.startswith(prefix) and info.base_name.endswith(".parquet"):
            trial_id = info.base_name[len(prefix):-len(".parquet")]
            trial_dirs = sorted(experiment.glob(f"*_{trial_id}_*"))
            tune_results = trial_dirs[0] / "result.json" if trial_dirs else None
            read_or_rebuild(storage.join(results_location, info.base_name), tune_results)


def set_aside_unknown_trials(results_location: str, dataset: str, known: set[str]) -> list[str]:
    """Move the log files of trials a restored sweep does not know (started after Tune's last
    snapshot before a crash; Tune will never continue them) to `<file>.abandoned`, kept for
    inspection but out of the log. Returns the trial ids set aside."""
    import pyarrow.fs as pafs

    fs, folder = storage.filesystem(results_location)
    prefix = f"{dataset}-"
    abandoned = []
    for info in fs.get_file_info(pafs.FileSelector(folder, allow_not_found=True)):
        name = info.base_name
        if name.startswith(prefix) and name.endswith(".parquet"):
            trial_id = name[len(prefix):-len(".parquet")]
            if trial_id not in known:
                fs.move(info.path, f"{info.path}.abandoned")
                abandoned.append(trial_id)
    return abandoned


def last_logged_evaluation(results_location: str, dataset: str, trial_id: str) -> int:
    """The highest evaluation of the trial in the log (-1 when it has none, or it is unreadable:
    then the trial starts again from the beginning and rewrites its rows)."""
    location = ResultLog(results_location).file_for(dataset, trial_id)
    if not storage.exists(location):
        return -1
    fs, path = storage.filesystem(location)
    try:
        column = pq.read_table(path, filesystem=fs, columns=["evaluation"]).column(0)
    except (OSError, pa.ArrowException):
        return -1
    return max(column.to_pylist(), default=-1)


def _rows_from_tune(results_json: Path | None) -> list[dict[str, Any]]:
    if results_json is None or not results_json.is_file():
        return []
    rows = []
    for line in results_json.read_text().splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the crash
            continue
        if "evaluation" in result:
            rows.append({c: result.get(c) for c in LOG_COLUMNS})
    return rows


class ResultLogCallback(Callback):
    """Writes each trial's evaluations to the log as Tune reports them (on the driver), and
    drops a finished trial's saved states (they are only for resuming it)."""

    def __init__(self, results_location: str, state_location: str | None = None) -> None:
        self.log = ResultLog(results_location)
        self.state_location = state_location

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self.state_location is not None:
            fs, path = storage.filesystem(storage.join(self.state_location, trial.trial_id))
            try:
                fs.delete_dir(path)
            except (FileNotFoundError, OSError):
                pass

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "evaluation" not in result:  # Tune's own bookkeeping results carry no record
            return
        tune_results = Path(trial.local_path, "result.json") if trial.local_path else None
        self.log.add({**result, "trial_id": trial.trial_id}, tune_results)
        self.log.flush(result["dataset"], trial.trial_id)

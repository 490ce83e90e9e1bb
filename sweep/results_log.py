"""The Parquet result log's writer: `<sweep>/results/`, one row per evaluation.

`ResultLog` adds every reported evaluation to its trial's rows (keyed by the evaluation's index,
so a retried or resumed trial never duplicates a row). A running trial's new rows go to storage
as small segments, at most every `FLUSH_S` seconds: the cost of logging a result does not grow
with the rows a trial already has. When the trial ends its rows become one file, written whole
before Tune records the trial as ended. (The format: `common.result_files`.)
A restarted trial resumes from a saved state no later than the last row on storage
(`last_logged_evaluation`), so a crash at any moment leaves no gap and no duplicate.
`analysis.load_results(sweep)` reads the whole log, running trials' newest rows included;
`pandas.read_parquet('<sweep>/results')` reads the trials' files. No Ray here: the Tune callback
that feeds the log on the driver is in `sweep.callbacks`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import pyarrow as pa

from common import storage
from common.errors import StorageError, warn
from common.layout import (
    relocated,
    result_file_name,
    segment_file_name,
    segments_folder,
    set_aside_location,
    trial_of_result_file,
)
from common.records import ENDED, FAILED, PRETRAIN_RAN, Record, arrow_schema, log_row
from common.result_files import (
    FLUSH_S,
    MERGED_KEY,
    UNUSABLE,
    TrialFiles,
    first_line,
    read_file,
    read_listed,
    read_trial,
    stale_segments,
    trial_files,
)

MERGE_AFTER = 64  # segments of a running trial before they are merged into its file


class ResultLog:
    """Rows of each trial, kept in memory and mirrored to storage (`common.result_files`).

    A running trial's new rows go out as one segment at most every `flush_every_s`; its file is
    rewritten whole when it ends (or after `merge_after` segments). Rows not yet out when the
    driver dies are made again: a restarted trial continues from a saved state no later than
    the last row on storage."""

    def __init__(self, results_location: str, flush_every_s: float = FLUSH_S,
                 merge_after: int = MERGE_AFTER) -> None:
        self.location = results_location
        self.flush_every_s, self.merge_after = flush_every_s, merge_after
        self._trials: dict[str, _Trial] = {}

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks; the rows are on disk
        return {**self.__dict__, "_trials": {}}

    def __setstate__(self, state: dict[str, Any]) -> None:  # the folder may have moved since
        self.__dict__.update(state, location=relocated(state["location"]))

    def file_for(self, dataset: str, trial_id: str) -> str:
        return storage.join(self.location, result_file_name(dataset, trial_id))

    def add(self, row: Record, tune_results: Path | None = None) -> None:
        trial = self._trial(row["dataset"], row["trial_id"], tune_results)
        evaluation = int(row["evaluation"])
        last = max(trial.rows, default=-1)
        if trial.rows and last < evaluation and trial.rows[last]["status"] == FAILED:
            # a trial that failed, run again by a resumed sweep (Tune resumes errored trials)
            trial.rows[last] = trial.pending[last] = {**trial.rows[last], "status": "running",
                                                      "stop_reason": None}
        trial.rows[evaluation] = trial.pending[evaluation] = log_row(row)
        trial.reported = evaluation
        if row["status"] != "running":
            trial.end_at(evaluation)

    def mark_stopped(self, dataset: str, trial_id: str) -> None:
        """If the trial's last row says it is still running (it ended without a last record of
        its own: an early-stopping scheduler stopped it), make that row say `stopped`, reason
        `early_stopped`."""
        self._mark_end(dataset, trial_id, "stopped", "early_stopped")

    def mark_failed(self, dataset: str, trial_id: str) -> None:
        """The trial failed after its retries: its last row says `failed`, reason `error`
        (rather than `running`, which would read as interrupted)."""
        self._mark_end(dataset, trial_id, FAILED, "error")

    def _mark_end(self, dataset: str, trial_id: str, status: str, reason: str) -> None:
        """Its last row (the one it reported last in this run: rows beyond it came from an
        earlier attempt that went further) says how the trial ended, if it says `running`."""
        trial = self._trial(dataset, trial_id)
        if not trial.rows:
            return
        last = trial.reported if trial.reported in trial.rows else max(trial.rows)
        if trial.rows[last]["status"] != "running":
            return
        trial.rows[last] = trial.pending[last] = {**trial.rows[last], "status": status,
                                                  "stop_reason": reason}
        trial.end_at(last)

    def flush(self, dataset: str, trial_id: str, now: bool = False) -> None:
        """Write what the trial's rows need: its whole file if it ended (before Tune records it
        as ended, so a crash cannot lose its last rows), else a segment of the new rows if
        `flush_every_s` has passed since the last one (or `now`)."""
        trial = self._trial(dataset, trial_id)
        if not trial.pending:
            return
        if trial.ended or len(trial.files.segments) >= self.merge_after:
            self._merge(trial)
        elif now or time.monotonic() - trial.written >= self.flush_every_s:
            self._write_segment(trial)

    def close(self, dataset: str, trial_id: str) -> None:
        """The trial will report no more in this run (it ended, failed, or the sweep is over):
        all its rows into its one file, its segments deleted."""
        trial = self._trial(dataset, trial_id)
        if trial.pending or trial.files.segments:
            self._merge(trial)

    def close_all(self) -> None:
        for trial in list(self._trials.values()):
            self.close(trial.dataset, trial.trial_id)

    def flush_due(self, now: bool = False) -> None:
        """Flush every trial whose rows last went out `flush_every_s` ago or more (every trial
        with `now`)."""
        for trial in list(self._trials.values()):
            self.flush(trial.dataset, trial.trial_id, now=now)

    def _trial(self, dataset: str, trial_id: str, tune_results: Path | None = None) -> _Trial:
        key = result_file_name(dataset, trial_id)
        if key not in self._trials:
            # A resumed driver continues a trial's rows rather than starting them again.
            files = trial_files(self.location).get(key) or TrialFiles(key)
            trial = _Trial(dataset, trial_id, files)
            file_rows: list[Record] = []
            if files.file is not None:
                file_rows, trial.merged = read_or_rebuild(files.file, tune_results)
            for location in stale_segments(files, trial.merged):  # left by a crash mid-merge
                storage.delete_file(location)
            files.segments = {q: loc for q, loc in files.segments.items() if q > trial.merged}
            try:  # strict: a segment it merged without having read would lose its rows
                rows = read_trial(files, file_rows, trial.merged, strict=True)
            except OSError as e:
                raise LogUnreadable(f"{UNREADABLE} {self.location}: a segment of {key} "
                                    f"({first_line(e)}); nothing was changed") from None
            trial.rows = {int(r["evaluation"]): r for r in rows}
            self._trials[key] = trial
        return self._trials[key]

    def _write_segment(self, trial: _Trial) -> None:
        seq = max([trial.merged, *trial.files.segments]) + 1
        name = segment_file_name(trial.dataset, trial.trial_id, seq)
        location = storage.join(segments_folder(self.location), name)
        if not trial.files.segments:
            storage.make_dirs(segments_folder(self.location))
        write_rows(location, [trial.pending[k] for k in sorted(trial.pending)])
        trial.files.segments[seq] = location
        trial.pending.clear()
        trial.written = time.monotonic()

    def _merge(self, trial: _Trial) -> None:
        """The trial's rows as its one file (recording the last segment it covers), then its
        segments deleted."""
        merged = max([trial.merged, *trial.files.segments])
        write_rows(self.file_for(trial.dataset, trial.trial_id),
                   [trial.rows[k] for k in sorted(trial.rows)], merged)
        for location in trial.files.segments.values():
            storage.delete_file(location)
        trial.files.segments.clear()
        trial.merged = merged
        trial.pending.clear()
        trial.written = time.monotonic()


@dataclass
class _Trial:
    dataset: str
    trial_id: str
    files: TrialFiles
    rows: dict[int, Record] = field(default_factory=dict)  # every row, by evaluation
    pending: dict[int, Record] = field(default_factory=dict)  # rows not yet on storage
    merged: int = 0  # the last segment merged into the trial's file
    written: float = float("-inf")  # when its rows last went to storage (never: -inf)
    ended: bool = False
    reported: int | None = None  # the evaluation it reported last in this run

    def end_at(self, evaluation: int) -> None:
        """Its row `evaluation` ended it: rows beyond it came from an earlier attempt that went
        further (a redone trial may stop sooner: float results can differ between processes)."""
        for later in [k for k in self.rows if k > evaluation]:
            del self.rows[later]
            self.pending.pop(later, None)
        self.ended = True


def write_rows(location: str, rows: list[Record], merged: int = 0) -> None:
    """One trial's rows (or a segment's) as a Parquet file in the log's schema, written
    atomically; a trial's file records `merged`, the last segment it covers."""
    table = pa.Table.from_pylist(rows, schema=arrow_schema())
    if merged:
        table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                               MERGED_KEY: str(merged).encode()})
    storage.write_parquet_atomic(location, table)


UNREADABLE = "cannot read the result log in"  # LogUnreadable's words, found in Tune's text too


class LogUnreadable(StorageError):
    """Storage did not give a file of the result log (a network error, throttling, a denied
    read): the driver stops, changing nothing, and `sweep resume` goes on once it answers."""


def read_or_rebuild(location: str, tune_results: Path | None) -> tuple[list[Record], int]:
    """A trial file's rows and the last segment merged into it. A damaged file is set aside
    as `_set_aside/<name>.corrupt` for inspection and its rows are rebuilt from Tune's own
    record of the results it received (the trial's result.json on the driver), then written
    back, whole. Storage that cannot be read (a network error, throttling) raises
    LogUnreadable, not taken for damage: the file may be whole, and rebuilding it from a driver
    that lacks Tune's record (a lost head node) would lose its rows."""
    try:
        table, merged = read_file(location)
        return table.to_pylist(), merged
    except OSError as e:
        results, name = location.rsplit("/", 1)
        raise LogUnreadable(f"{UNREADABLE} {results}: {name} ({first_line(e)}); nothing was "
                            "changed") from None
    except UNUSABLE as e:
        aside = _set_aside(location.rsplit("/", 1)[0], location, "corrupt")
        rows = _rows_from_tune(tune_results)
        write_rows(location, rows)
        warn(f"{location} is unreadable ({str(e).splitlines()[0]}); moved to {aside}, "
             f"{len(rows)} rows rebuilt from {tune_results or 'nothing'}")
        return rows, 0


def _set_aside(results: str, location: str, why: str) -> str:
    """Move a file of the log folder `results` into its `_set_aside/` (where neither this log
    nor `pandas.read_parquet(results)` reads it), named `<name>.<why>`; returns where it went."""
    target = set_aside_location(results, location, why)
    storage.make_dirs(target.rsplit("/", 1)[0])
    storage.move(location, target)
    return target


def logged_trials(results_location: str, dataset: str) -> dict[str, TrialFiles]:
    """The trials of `dataset` in the log (a file, segments or both), by trial id."""
    found = {}
    for name, files in trial_files(results_location).items():
        trial_id = trial_of_result_file(name, dataset)
        if trial_id is not None:
            found[trial_id] = files
    return found


def repair_unreadable(results_location: str, dataset: str, experiment: Path) -> None:
    """Before a resume: rebuild every unreadable log file of `dataset` from Tune's results."""
    for trial_id, files in logged_trials(results_location, dataset).items():
        if files.file is not None:
            trial_dirs = sorted(experiment.glob(f"*_{trial_id}_*"))
            read_or_rebuild(files.file, trial_dirs[0] / "result.json" if trial_dirs else None)


def set_aside_unknown_trials(results_location: str, dataset: str, known: set[str]) -> list[str]:
    """Move the log files (and segments) of trials a restored sweep does not know (started after
    Tune's last snapshot before a crash; Tune will never continue them) to
    `_set_aside/<name>.abandoned`, kept for inspection but out of the log. Returns the trial ids
    set aside."""
    abandoned = []
    for trial_id, files in logged_trials(results_location, dataset).items():
        if trial_id not in known:
            for location in [files.file, *files.segments.values()]:
                if location is not None:
                    _set_aside(results_location, location, "abandoned")
            abandoned.append(trial_id)
    return abandoned


class LoggedTrial(NamedTuple):
    """What the result log holds of a trial when it starts: its highest evaluation (-1: none, or
    its file is unreadable, and then it starts again from the beginning and rewrites its rows),
    and its last row where the log holds its end (its whole file is written and its last row
    ended it; None otherwise), with `pretrain_epochs_run` from its rows."""

    last_evaluation: int
    end: Record | None


def logged_trial(results_location: str, dataset: str, trial_id: str) -> LoggedTrial:
    """A trial's `LoggedTrial`, from one listing and one read of its files."""
    files = trial_files(results_location).get(result_file_name(dataset, trial_id))
    rows = _readable_rows(results_location, files)
    last = max(rows, key=lambda r: int(r["evaluation"]), default=None)
    if last is None:
        return LoggedTrial(-1, None)
    end = None
    if files is not None and files.file is not None and last["status"] in ENDED:
        ended_pretraining = [r["epoch"] for r in rows if r.get("pretrain_end") is not None]
        end = {**last, PRETRAIN_RAN: ended_pretraining[-1] if ended_pretraining else None}
    return LoggedTrial(int(last["evaluation"]), end)


def last_logged_evaluation(results_location: str, dataset: str, trial_id: str) -> int:
    """The highest evaluation of the trial on storage (-1: none, or its file is unreadable)."""
    return logged_trial(results_location, dataset, trial_id).last_evaluation


def _readable_rows(results_location: str, files: TrialFiles | None) -> list[Record]:
    """A trial's rows on storage (listed again if the sweep merges them while they are read):
    none without files, or where they cannot be read (the trial then starts from the beginning:
    that costs training, no row)."""
    if files is None:
        return []
    try:
        return read_listed(results_location, files.name,
                           lambda listed, live: read_trial(listed, live=live), files)
    except (OSError, pa.ArrowException, *UNUSABLE):
        return []


def _rows_from_tune(results_json: Path | None) -> list[Record]:
    """A trial's rows from Tune's result.json, by evaluation. Tune appends to that file, so a
    trial retried (or resumed) has some evaluations twice or more: each keeps its latest, and
    a last row drops those beyond it (an earlier attempt's, as `ResultLog.add` does)."""
    if results_json is None or not results_json.is_file():
        return []
    trial = _Trial("", "", TrialFiles(""))  # only its rows: what `ResultLog.add` keeps
    for line in results_json.read_text().splitlines():
        try:
            result = json.loads(line)
        except json.JSONDecodeError:  # a line cut short by the crash
            continue
        if "evaluation" in result:
            row = log_row(result)
            trial.rows[int(row["evaluation"])] = row
            if row["status"] != "running":
                trial.end_at(int(row["evaluation"]))
    return [trial.rows[k] for k in sorted(trial.rows)]

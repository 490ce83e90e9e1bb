"""How the result log lies on storage, and how to read it back whole.

Each trial has one Parquet file, `results/<dataset>-<trial>.parquet`, rewritten whole (atomically)
only when the trial ends or its segments pile up. While it runs, its newest rows go to small
append-only segments, `results/_live/<dataset>-<trial>.<seq>.parquet` (each written atomically,
`seq` increasing), so logging a result costs the same however many the trial already has. A
trial's rows are its file's rows, overridden by evaluation by those of each newer segment in
`seq` order. The file records in its metadata the last `seq` merged into it; segments up to
that one are stale (a crash between writing the file and deleting them) and are ignored.

`pandas.read_parquet('<sweep>/results')` reads the trial files only (it skips `_live`): every
ended trial whole, a running one as of its last merge. `read_log` reads everything.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from common import storage
from common.errors import warn
from common.layout import PARQUET, segments_folder, split_segment_file_name
from common.records import Record, arrow_schema

# A running trial's new rows reach storage at most this many seconds after they are reported.
FLUSH_S = float(os.environ.get("SWEEP_LOG_FLUSH_S", "2"))
MERGED_KEY = b"sweep.segments_merged"  # Parquet metadata: the last segment merged into a file
T = TypeVar("T")


@dataclass
class TrialFiles:
    """One trial's file (if written yet) and its segments, by sequence number."""

    name: str  # `<dataset>-<trial>.parquet`
    file: str | None = None
    segments: dict[int, str] = field(default_factory=dict)


def trial_files(results: str) -> dict[str, TrialFiles]:
    """Every trial with a file or a segment in the log folder, by its file name."""
    found: dict[str, TrialFiles] = {}
    for name in storage.list_names(results):
        if name.endswith(PARQUET) and not name.startswith((".", "_")):
            found.setdefault(name, TrialFiles(name)).file = storage.join(results, name)
    live = segments_folder(results)
    for name in storage.list_names(live):
        parsed = split_segment_file_name(name)
        if parsed is not None:
            trial, seq = parsed
            found.setdefault(trial, TrialFiles(trial)).segments[seq] = storage.join(live, name)
    return found


# Columns every log file has had, whatever its version: without them a file is not the log's.
# `status` and `step` are the log's alone: the frontier table `sweep analyze` writes has the
# others (and `trial_status`), and must not be read as the log.
IDENTIFYING = ("sweep", "trial_id", "dataset", "evaluation", "train_flops", "test_accuracy",
               "status", "step")
# Parquet metadata marking a table `sweep analyze` wrote (analysis.report): never the log's
ANALYSIS_KEY = b"sweep.analysis"


class NotALogFile(KeyError):
    """A Parquet file that is not one of the result log's (read_log skips it with a warning)."""

    def __str__(self) -> str:  # the message, without KeyError's quotes
        return str(self.args[0])


def read_table(location: str) -> pa.Table:
    """One Parquet file of the log, in the log's schema (raises OSError/ArrowException)."""
    return read_file(location)[0]


def read_file(location: str) -> tuple[pa.Table, int]:
    """A file of the log in the log's schema, and the last segment merged into it (0: none),
    from one read. Raises OSError where storage cannot be read (no file, a network error: not
    the file's fault), DamagedFile where its bytes are no Parquet, NotALogFile where they are
    someone else's table."""
    data = storage.read_bytes(location)
    try:
        table = pq.read_table(pa.BufferReader(data))
    except (OSError, pa.ArrowException) as e:  # thrift errors come as OSError, from the bytes
        raise DamagedFile(first_line(e)) from None
    metadata = table.schema.metadata or {}
    if ANALYSIS_KEY in metadata:
        raise NotALogFile("a table `sweep analyze` wrote, not a result-log file (analyze the "
                          "sweep folder or its results/)")
    merged = int(metadata.get(MERGED_KEY, b"0"))
    missing = [c for c in IDENTIFYING if c not in table.column_names]
    if missing:  # some other Parquet file (an analysis' frontier.parquet, a foreign table)
        raise NotALogFile(f"not a result-log file: no {', '.join(missing)} column")
    schema = arrow_schema()
    for column in schema:  # a file from an older version lacks newer columns: they are null
        if column.name not in table.column_names:
            table = table.append_column(column, pa.nulls(len(table), column.type))
    try:
        return table.select(schema.names).cast(schema), merged
    except pa.ArrowException as e:  # a column of the log's with values of another type
        raise DamagedFile(first_line(e)) from None


def first_line(error: BaseException) -> str:
    return str(error).splitlines()[0] if str(error) else type(error).__name__


class DamagedFile(ValueError):
    """A file of the log whose bytes were read but are not Parquet (cut short, overwritten):
    damage on storage, as against storage that could not be reached (OSError), which says
    nothing about the file and must not be taken for damage."""


# What makes a file of the log unusable as it stands (an OSError can pass: try it again)
UNUSABLE = (DamagedFile, NotALogFile)


class SegmentGone(OSError):
    """A segment listed a moment ago is gone: the sweep merged it into its trial's file since
    (read_log lists the trial again)."""


def read_trial(files: TrialFiles, file_rows: list[Record] | None = None,
               merged: int | None = None, live: bool = False,
               strict: bool = False) -> list[Record]:
    """A trial's rows, ordered by evaluation: its file (`file_rows`/`merged` when already read)
    with its newer segments applied. A damaged segment is skipped with a warning (segments are
    written whole; only damage to the storage makes one unreadable). A segment storage cannot
    give (a network error) is skipped with a warning too, for a reader; with `strict` (the
    driver, which merges what it reads and deletes the segments) it raises OSError. With `live`
    (a reader beside a running sweep), a segment that no longer exists raises SegmentGone
    (`read_listed` lists the trial again)."""
    if file_rows is None:
        table, merged = read_file(files.file) if files.file else (None, 0)
        file_rows = table.to_pylist() if table is not None else []
    rows = {int(r["evaluation"]): r for r in file_rows}
    for _seq, location in _newer(files, merged or 0):
        try:
            segment = read_table(location).to_pylist()
        except UNUSABLE as e:
            warn(f"skipped unreadable log segment {location} ({e})")
            continue
        except OSError as e:
            if live and not storage.exists(location):
                raise SegmentGone(location) from None
            if strict:
                raise
            warn(f"skipped log segment {location}: storage did not give it "
                 f"({first_line(e)})")
            continue
        rows.update((int(r["evaluation"]), r) for r in segment)
    return [rows[k] for k in sorted(rows)]


def stale_segments(files: TrialFiles, merged: int) -> list[str]:
    return [location for seq, location in sorted(files.segments.items()) if seq <= merged]


def _newer(files: TrialFiles, merged: int) -> Iterator[tuple[int, str]]:
    return ((seq, loc) for seq, loc in sorted(files.segments.items()) if seq > merged)


RELIST = 3  # times a trial is listed again when the sweep merges it while it is being read


def read_log(results: str) -> list[pa.Table]:
    """Every trial's rows in a log folder, one table per trial (a trial whose file is
    unreadable is skipped with a warning naming it). It may run beside the sweep writing the
    log: a trial whose segments are merged into its file while it is read is listed again."""
    tables = []
    for name, files in trial_files(results).items():
        try:
            tables.append(read_listed(results, name, _read_whole, files))
        except (OSError, pa.ArrowException, *UNUSABLE) as e:
            warn(f"skipped unreadable result file {files.file or name} ({first_line(e)})")
    return tables


def read_listed(results: str, name: str, read: Callable[[TrialFiles, bool], T],
                files: TrialFiles | None = None) -> T:
    """`read(files, live)` of the trial whose file is `name` (`files` as listed, if it was),
    listing it again, up to RELIST times, while the sweep merges its segments under the
    reader."""
    files = files or trial_files(results).get(name, TrialFiles(name))
    for _attempt in range(RELIST):
        try:
            return read(files, True)
        except SegmentGone:
            files = trial_files(results).get(name, TrialFiles(name))
    return read(files, False)


def _read_whole(files: TrialFiles, live: bool) -> pa.Table:
    if not files.segments:  # the common case: an ended trial, read as it is
        return read_table(files.file) if files.file else arrow_schema().empty_table()
    return pa.Table.from_pylist(read_trial(files, live=live), schema=arrow_schema())

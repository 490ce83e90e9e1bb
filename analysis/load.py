"""Parquet result logs into one pandas DataFrame, safe to call while a sweep is still writing;
and the two selections of its rows that everything else uses (`final_rows`, `is_baseline`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from common import storage
from common.errors import UserError, warn
from common.records import arrow_schema


def load_results(path_or_paths: str | Sequence[str]) -> pd.DataFrame:
    """Rows of one or several sweeps: a sweep folder, its `results/`, or one Parquet file each.

    Local paths or URIs. A corrupt or partial file is skipped with a warning naming it. Files are
    written atomically (temporary name, then rename), so a running sweep reads consistently.
    """
    locations = [path_or_paths] if isinstance(path_or_paths, str) else list(path_or_paths)
    tables = []
    for location in locations:
        storage.check_reachable(storage.normalise(location))
        for file in _parquet_files(storage.normalise(location)):
            fs, path = storage.filesystem(file)
            try:
                table = pq.read_table(path, filesystem=fs)
                schema = arrow_schema()
                tables.append(table.select(schema.names).cast(schema))
            except (OSError, pa.ArrowException, KeyError) as e:
                warn(f"skipped unreadable result file {file} ({e})")
    if not tables:
        raise UserError(f"no results in {', '.join(locations)}")
    df = pa.concat_tables(tables).to_pandas()
    return df.sort_values(["sweep", "dataset", "trial_id", "evaluation"], kind="stable",
                          ignore_index=True)


def _parquet_files(location: str) -> list[str]:
    fs, path = storage.filesystem(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.File:
        return [location]
    if info.type == pafs.FileType.NotFound:
        raise UserError(f"{location}: no such file or folder")
    results_path = f"{path.rstrip('/')}/results"  # a sweep folder: read its results/
    if fs.get_file_info(results_path).type == pafs.FileType.Directory:
        location, path = storage.join(location, "results"), results_path
    found = fs.get_file_info(pafs.FileSelector(path, recursive=True))
    names = sorted(f.path for f in found if f.type == pafs.FileType.File
                   and f.base_name.endswith(".parquet") and not f.base_name.startswith((".", "_")))
    prefix = location[: len(location) - len(path)] if storage.is_uri(location) else ""
    return [prefix + name for name in names]


def final_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The last evaluation of each trial (what it reached when it ended)."""
    keys = [k for k in ("sweep", "trial_id") if k in df.columns]
    return df.sort_values("evaluation").groupby(keys, sort=False).tail(1)


def is_baseline(df: pd.DataFrame) -> pd.Series:
    """Rows of ordinary training (strategy `none`), the baseline every saving is measured
    against."""
    return df["strategy"] == "none"


def write_atomic(path: str | Path, data: bytes) -> None:
    """Write one output file whole (temporary name, then rename; one PUT on object stores)."""
    storage.write_bytes_atomic(storage.normalise(str(path)), data)

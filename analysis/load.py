"""Parquet result logs into one pandas DataFrame, safe to call while a sweep is still writing."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.errors import UserError
from sweep.schema import RESULT_SCHEMA
from trainables import storage


def load_results(path_or_paths: str | Sequence[str]) -> pd.DataFrame:
    """Rows of one or several sweeps: a sweep folder, its `results/`, or one Parquet file each.

    Local paths or URIs. A corrupt or partial file is skipped with a warning naming it. Files are
    written atomically (temporary name, then rename), so a running sweep reads consistently.
    """
    locations = [path_or_paths] if isinstance(path_or_paths, str) else list(path_or_paths)
    tables = []
    for location in locations:
        for file in _parquet_files(storage.normalise(location)):
            fs, path = storage.filesystem(file)
            try:
                table = pq.read_table(path, filesystem=fs)
                tables.append(table.select(RESULT_SCHEMA.names).cast(RESULT_SCHEMA))
            except (OSError, pa.ArrowException, KeyError) as e:
                warnings.warn(f"skipped unreadable result file {file} ({e})", stacklevel=2)
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

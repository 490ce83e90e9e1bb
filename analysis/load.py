"""Parquet result logs into one pandas DataFrame, safe to call while a sweep is still writing;
the compute every comparison is made on (`compute_flops`); and the two selections of its rows
that everything else uses (`final_rows`, `is_baseline`)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.fs as pafs

from common import storage
from common.errors import UserError, warn
from common.records import PRETRAIN_RAN
from common.result_files import DamagedFile, NotALogFile, read_log, read_table

# A trial's compute at an evaluation: its training FLOPs (both phases) plus the FLOPs spent
# building its small set (k-means; 0 for index selections), so that a selection method cannot
# hide its own cost. Frontiers, hypervolumes, savings and figures are all on this.
COMPUTE = "compute_flops"
# Files that mark a folder `sweep analyze` wrote (analysis.report), which is no log to read
ANALYSIS_OUTPUTS = ("frontier.parquet", "report.md")


def compute(rows: pd.DataFrame) -> pd.Series:
    """`train_flops` + `selection_flops` of each row (a log without selection FLOPs: 0)."""
    if "selection_flops" not in rows:
        return rows["train_flops"].astype(float)
    return rows["train_flops"] + rows["selection_flops"].fillna(0)


def with_compute(df: pd.DataFrame) -> pd.DataFrame:
    """`df` with its `compute_flops` column (added when missing: a log read by pandas alone)."""
    return df if COMPUTE in df else df.assign(**{COMPUTE: compute(df)})


def pretraining_length(df: pd.DataFrame) -> pd.Series:
    """Per row, the epochs its trial's pretraining ran: the `epoch` of the evaluation that ended
    pretraining (the one with `pretrain_end`), less than `pretrain_epochs` where it stopped at
    convergence; NaN where pretraining has not ended (or a log without `pretrain_end`)."""
    if "pretrain_end" not in df or "epoch" not in df:
        return pd.Series(float("nan"), index=df.index)
    keys = [k for k in ("sweep", "trial_id") if k in df.columns]
    ended = df.loc[df["pretrain_end"].notna(), [*keys, "epoch"]]
    ended = ended.drop_duplicates(keys, keep="last").rename(columns={"epoch": PRETRAIN_RAN})
    return df[keys].merge(ended, on=keys, how="left")[PRETRAIN_RAN].set_axis(df.index)


def load_results(path_or_paths: str | Sequence[str]) -> pd.DataFrame:
    """Rows of one or several sweeps: a sweep folder, its `results/`, or one Parquet file each.

    Local paths or URIs; `compute_flops` and `pretrain_epochs_run` (`pretraining_length`) are
    added. Running trials' newest rows are included
    (`common.result_files`). A corrupt or partial file is skipped with a warning naming it.
    Files are written atomically (temporary name, then rename), so a running sweep reads
    consistently. Results given twice (a sweep folder and its results/, a folder and one of its
    files) are read once, with a warning: an evaluation is one row, (sweep, trial_id,
    evaluation), the first read.
    """
    locations = [path_or_paths] if isinstance(path_or_paths, str) else list(path_or_paths)
    tables = []
    given: dict[str, str] = {}  # what is read -> the path it was given as
    for location in locations:
        normalised = storage.normalise(location)
        storage.check_reachable(normalised)
        log, is_file = _log_location(normalised)
        if log in given:
            warn(f"{location}: the same results as {given[log]}; read once")
            continue
        given[log] = location
        tables += _read_file(log) if is_file else read_log(log)
    if not tables:
        raise UserError(f"no results in {', '.join(locations)}")
    df = pa.concat_tables(tables).to_pandas()
    twice = df.duplicated(["sweep", "trial_id", "evaluation"])
    if twice.any():  # a file given besides its folder, a copy of a sweep besides the sweep
        warn(f"evaluations given more than once in {', '.join(locations)}: "
             f"{int(twice.sum())} of them, each read once")
        df = df[~twice]
    df = with_compute(df)
    df[PRETRAIN_RAN] = pretraining_length(df)
    return df.sort_values(["sweep", "dataset", "trial_id", "evaluation"], kind="stable",
                          ignore_index=True)


def _log_location(location: str) -> tuple[str, bool]:
    """What a location given to `load_results` reads, and whether it is one file: the file
    itself, a sweep folder's results/, or the folder (a results/ folder). One line where it is
    none of these (no such path, an analysis' folder, a device)."""
    fs, path = storage.filesystem(location)
    info = fs.get_file_info(path)
    if info.type == pafs.FileType.NotFound:
        raise UserError(f"{location}: no such file or folder")
    if info.type == pafs.FileType.File:
        return location, True
    if info.type != pafs.FileType.Directory:
        raise UserError(f"{location}: neither a folder nor a Parquet file")
    results_path = f"{path.rstrip('/')}/results"  # a sweep folder: read its results/
    if fs.get_file_info(results_path).type == pafs.FileType.Directory:
        return storage.join(location, "results"), False
    if set(ANALYSIS_OUTPUTS) <= set(storage.list_names(location)):
        raise UserError(f"{location}: what `sweep analyze` wrote, not results (analyze the "
                        "sweep folder or its results/)")
    return location, False


def _read_file(location: str) -> list[pa.Table]:
    """One Parquet file named on its own: its table, none if it is unreadable (a warning)."""
    try:
        return [read_table(location)]
    except NotALogFile as e:  # named on its own: say so, rather than "no results"
        raise UserError(f"{location}: {e.args[0]}") from None
    except (OSError, pa.ArrowException, DamagedFile) as e:
        warn(f"skipped unreadable result file {location} ({e})")
        return []


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

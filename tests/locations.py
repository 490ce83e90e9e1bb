"""A sweep's folder in the tests, local or on the loopback S3 server, read the same way."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from common import storage


@dataclass(frozen=True)
class Location:
    """A folder or a URI; `/` joins like a path."""

    uri: str

    def __truediv__(self, part: str) -> Location:
        return Location(storage.join(self.uri, part))

    def __str__(self) -> str:
        return self.uri

    @property
    def is_s3(self) -> bool:
        return self.uri.startswith("s3://")

    def exists(self) -> bool:
        return storage.exists(self.uri)

    def read_bytes(self) -> bytes:
        return storage.read_bytes(self.uri)

    def read_text(self) -> str:
        return self.read_bytes().decode()

    def write_bytes(self, data: bytes) -> None:
        fs, path = storage.filesystem(self.uri)
        with fs.open_output_stream(path) as f:
            f.write(data)

    def files(self) -> dict[str, pafs.FileInfo]:
        """Every file below this folder, by path relative to it."""
        fs, path = storage.filesystem(self.uri)
        found = fs.get_file_info(pafs.FileSelector(path, recursive=True, allow_not_found=True))
        return {f.path[len(path.rstrip("/")) + 1:]: f for f in found
                if f.type == pafs.FileType.File}

    def parquet(self) -> pd.DataFrame:
        """A Parquet file, or a result log folder whole: running trials' newest rows included
        (`analysis.load_results`; `pandas.read_parquet` reads the trials' files only)."""
        fs, path = storage.filesystem(self.uri)
        if fs.get_file_info(path).type == pafs.FileType.File:
            return pq.read_table(path, filesystem=fs).to_pandas()
        from analysis import load_results

        return load_results(self.uri)

    def local_copy(self) -> Path:
        """This file on the local disk (itself, or a downloaded copy)."""
        if not self.is_s3:
            return Path(self.uri)
        target = Path(tempfile.mkdtemp()) / self.uri.rsplit("/", 1)[-1]
        target.write_bytes(self.read_bytes())
        return target

    def study_url(self) -> str:
        """The SQLite URL of a sweep folder's Optuna studies."""
        return f"sqlite:///{(self / 'optuna.db').local_copy()}"

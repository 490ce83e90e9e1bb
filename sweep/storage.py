"""Paths and URIs alike: a local folder, or anything pyarrow's filesystems accept (s3://, gs://).

Writes are atomic: a temporary name beside the target, then a rename (on object stores, where a
single PUT is already all-or-nothing, the object is written directly).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from sweep.errors import UserError


def is_uri(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def normalise(location: str) -> str:
    """An absolute local path, or the URI unchanged."""
    if location.startswith("file://"):
        location = location[len("file://"):]
    return location if is_uri(location) else str(Path(location).expanduser().resolve())


def join(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def filesystem(location: str) -> tuple[pafs.FileSystem, str]:
    if not is_uri(location):
        return pafs.LocalFileSystem(), location
    try:
        return pafs.FileSystem.from_uri(location)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
        raise UserError(f"{location}: unusable storage URI ({e})") from None


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_text(location: str) -> str:
    fs, path = filesystem(location)
    with fs.open_input_stream(path) as f:
        return f.read().decode()


def write_bytes_atomic(location: str, data: bytes) -> None:
    fs, path = filesystem(location)
    if isinstance(fs, pafs.LocalFileSystem):
        folder, name = path.rsplit("/", 1)
        tmp = f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp"
        with fs.open_output_stream(tmp) as f:
            f.write(data)
        fs.move(tmp, path)
    else:
        with fs.open_output_stream(path) as f:
            f.write(data)


def write_text_atomic(location: str, text: str) -> None:
    write_bytes_atomic(location, text.encode())


def write_parquet_atomic(location: str, table: pa.Table) -> None:
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    write_bytes_atomic(location, sink.getvalue().to_pybytes())


def make_dirs(location: str) -> None:
    fs, path = filesystem(location)
    fs.create_dir(path, recursive=True)


def check_writable(location: str) -> None:
    """Create the folder if needed and write (then remove) a probe file; one clear line if not."""
    fs, path = filesystem(location)
    probe = f"{path}/.write-probe-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{location}: cannot write there ({e})") from None

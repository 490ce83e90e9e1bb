"""Paths and URIs alike: a local folder, or anything pyarrow's filesystems accept (s3://, gs://).

Writes are atomic: a temporary name beside the target, then a rename (on object stores, where a
single PUT is already all-or-nothing, the object is written directly).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from trainables.config import ConfigError as UserError


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
        try:
            with fs.open_output_stream(tmp) as f:
                f.write(data)
            fs.move(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)  # the old file, if any, is untouched
            raise
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


MIN_FREE_BYTES = 20 * 2**20  # a sweep's logs, checkpoints and study need room to start


def check_writable(location: str) -> None:
    """Create the folder if needed and write (then remove) a probe file; check free space on a
    local disk. One clear line if any of it fails."""
    fs, path = filesystem(location)
    probe = f"{path}/.write-probe-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as e:
        raise UserError(f"{location}: cannot write there ({e})") from None
    if not is_uri(location):
        free = shutil.disk_usage(path).free
        if free < MIN_FREE_BYTES:
            raise UserError(f"{location}: only {free / 2**20:.1f} MiB free; a sweep needs at "
                            f"least {MIN_FREE_BYTES / 2**20:.0f} MiB")

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

from common.errors import StorageError


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
        raise StorageError(f"{location}: unusable storage URI ({e})") from None


def exists(location: str) -> bool:
    fs, path = filesystem(location)
    return fs.get_file_info(path).type != pafs.FileType.NotFound


def read_text(location: str) -> str:
    return read_bytes(location).decode()


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


def list_names(location: str) -> list[str]:
    """The names of the files directly in a folder (none if it does not exist), sorted."""
    fs, path = filesystem(location)
    found = fs.get_file_info(pafs.FileSelector(path, allow_not_found=True))
    return sorted(f.base_name for f in found if f.type == pafs.FileType.File)


def read_bytes(location: str) -> bytes:
    fs, path = filesystem(location)
    with fs.open_input_stream(path) as f:
        return f.read()


def move(source: str, target: str) -> None:
    fs, path = filesystem(source)
    fs.move(path, filesystem(target)[1])


def delete_file(location: str) -> None:
    fs, path = filesystem(location)
    fs.delete_file(path)


def delete_dir(location: str) -> None:
    """Remove a folder and everything in it; nothing happens if it is not there."""
    fs, path = filesystem(location)
    try:
        fs.delete_dir(path)
    except (FileNotFoundError, OSError):
        pass


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
        raise StorageError(f"{location}: cannot write there ({e})") from None
    if not is_uri(location):
        free = shutil.disk_usage(path).free
        if free < MIN_FREE_BYTES:
            raise StorageError(f"{location}: only {free / 2**20:.1f} MiB free; a sweep needs at "
                            f"least {MIN_FREE_BYTES / 2**20:.0f} MiB")

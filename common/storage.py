"""Paths and URIs alike: a local folder, or anything pyarrow's filesystems accept (s3://, gs://).

Writes are atomic. On a local disk: a temporary name beside the target, then a rename. On an
object store, where rename is copy + delete, the object is written directly: on S3 as one
whole-object PUT (pyarrow's delayed open: an object below the multipart part size is sent in a
single PutObject when the stream closes), so a reader never sees a partial object and a killed
writer leaves nothing under a temporary name. S3 is reached the way the AWS tools reach it:
credentials and region from the environment, `AWS_ENDPOINT_URL` (or `AWS_ENDPOINT_URL_S3`) for
an S3-compatible server. Other schemes (gs://, ...) go through `pyarrow.fs.FileSystem.from_uri`.
"""

from __future__ import annotations

import errno
import os
import shutil
import uuid
from datetime import timedelta
from functools import cache
from pathlib import Path
from urllib.parse import urlsplit

import pyarrow as pa
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from common.errors import StorageError


def is_uri(location: str) -> bool:
    return "://" in location and not location.startswith("file://")


def normalise(location: str) -> str:
    """An absolute local path, or the URI without a trailing '/' (one spelling per place)."""
    if location.startswith("file://"):
        location = location[len("file://"):]
    if is_uri(location):
        return location.rstrip("/") if location.rstrip("/").partition("://")[2] else location
    try:
        return str(Path(location).expanduser().resolve())
    except RuntimeError as e:  # ~user of no such user
        raise StorageError(f"{location}: {e}") from None


def join(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def filesystem(location: str, probe: bool = False) -> tuple[pafs.FileSystem, str]:
    """The filesystem of a location and the path within it. `probe`: on S3, one attempt with
    short timeouts (for checking a location up front), instead of retrying as a sweep should."""
    if not is_uri(location):
        return pafs.LocalFileSystem(), location
    scheme, _, rest = location.partition("://")
    try:
        if scheme == "s3":
            bucket = rest.split("/", 1)[0]
            if not bucket:
                raise StorageError(f"{location}: no bucket named")
            endpoint = os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
            region = os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
            return _s3(bucket, endpoint, region, probe), rest.rstrip("/")
        if scheme in ("gs", "gcs"):
            return _gcs(os.environ.get("STORAGE_EMULATOR_HOST"), probe), rest.rstrip("/")
        return pafs.FileSystem.from_uri(location)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, OSError) as e:
        raise StorageError(f"{location}: unusable storage URI ({_one_line(e)})") from None


@cache
def _s3(bucket: str, endpoint: str | None, region: str | None,
        probe: bool) -> pafs.S3FileSystem:
    """One filesystem per bucket and endpoint (credentials come from the environment)."""
    options: dict = {"allow_delayed_open": True}  # a whole-object PUT for small objects
    if endpoint:
        parts = urlsplit(endpoint)
        options.update(endpoint_override=parts.netloc or parts.path, scheme=parts.scheme or "https")
    elif region is None:
        region = pafs.resolve_s3_region(bucket)  # the bucket's own region, as from_uri finds it
    if probe:
        options.update(retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=1),
                       connect_timeout=3, request_timeout=10)
    return pafs.S3FileSystem(region=region or "us-east-1", **options)


@cache
def _gcs(emulator: str | None, probe: bool) -> pafs.GcsFileSystem:
    """Google Cloud Storage (credentials from the environment, as Google's clients find them;
    STORAGE_EMULATOR_HOST, as they read it, names a local emulator). `probe`: give up after
    10 s of retries instead of Arrow's 15 minutes (without a network, finding credentials
    alone retried that long)."""
    options: dict = {}
    if emulator:
        parts = urlsplit(emulator if "://" in emulator else f"http://{emulator}")
        options.update(endpoint_override=parts.netloc, scheme=parts.scheme, anonymous=True)
    if probe:
        options.update(retry_time_limit=timedelta(seconds=10))
    return pafs.GcsFileSystem(**options)


def _one_line(error: BaseException) -> str:
    """An error's first line, without the request id an object store appends."""
    text = str(error).splitlines()[0] if str(error) else type(error).__name__
    return text.split(" (Request ID:")[0].split(" error_info={")[0]  # S3's, GCS's details


def check_reachable(location: str) -> None:
    """Fail fast, in one line, when a location cannot be reached at all: an unknown scheme, an
    endpoint that does not answer, a missing bucket, missing or refused credentials."""
    fs, path = filesystem(location, probe=True)
    try:
        fs.get_file_info(path)
        if is_uri(location):  # a bucket must exist and be listable by us
            bucket = path.split("/", 1)[0]
            fs.get_file_info(pafs.FileSelector(bucket, allow_not_found=False, recursive=False))
    except (OSError, pa.ArrowException) as e:
        hint = ""
        if location.startswith("s3://") and not _aws_credentials_configured():
            hint = "; no AWS credentials in the environment or ~/.aws"
        raise StorageError(f"{location}: cannot reach it ({_one_line(e)}{hint})") from None


def _aws_credentials_configured() -> bool:
    """Whether the usual places hold AWS credentials (an instance profile is not seen here)."""
    keys = ("AWS_ACCESS_KEY_ID", "AWS_PROFILE", "AWS_WEB_IDENTITY_TOKEN_FILE",
            "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "AWS_CONTAINER_CREDENTIALS_FULL_URI")
    files = os.environ.get("AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials")
    return any(os.environ.get(k) for k in keys) or Path(files).expanduser().is_file()


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


def create_exclusive(location: str, data: bytes) -> bool:
    """Create the file `location` holding `data`, in one step, only if no file is there: True
    when this call created it. On local disk a complete temporary file is hard-linked to the
    name (atomic; it fails if the name exists). False where the file exists, on an object store
    and on a mount without hard links (gcsfuse, s3fs-fuse, some SMB shares), which offer no such
    write here: the caller falls back to its own protocol."""
    fs, path = filesystem(location)
    if not isinstance(fs, pafs.LocalFileSystem):
        return False
    folder, name = path.rsplit("/", 1)
    tmp = Path(f"{folder}/.{name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        tmp.write_bytes(data)
        os.link(tmp, path)
        return True
    except (FileExistsError, FileNotFoundError):  # a file is there; no folder
        return False
    except OSError as e:
        if e.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.ENOSYS):
            return False  # no hard links on this mount
        raise
    finally:
        tmp.unlink(missing_ok=True)


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
    fs, path = filesystem(location, probe=True)
    probe = f"{path}/.write-probe-{uuid.uuid4().hex[:8]}"
    try:
        fs.create_dir(path, recursive=True)
        with fs.open_output_stream(probe) as f:
            f.write(b"ok")
        fs.delete_file(probe)
    except (OSError, pa.ArrowException) as e:
        raise StorageError(f"{location}: cannot write there ({_one_line(e)})") from None
    if not is_uri(location):
        free = shutil.disk_usage(path).free
        if free < MIN_FREE_BYTES:
            raise StorageError(f"{location}: only {free / 2**20:.1f} MiB free; a sweep needs at "
                            f"least {MIN_FREE_BYTES / 2**20:.0f} MiB")

"""A real S3-protocol server for the tests: moto's server mode, a subprocess on 127.0.0.1 at a
free port, started from this environment's Python (moto >= 5.2.5; an older moto on PATH answers
pyarrow's multipart uploads wrongly). The code under test reaches it over HTTP through
`AWS_ENDPOINT_URL`, exactly as it would reach AWS.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field

BUCKET = "sweeps"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
               "AWS_REGION": "us-east-1", "AWS_EC2_METADATA_DISABLED": "true"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class S3Server:
    port: int
    process: subprocess.Popen
    env: dict[str, str] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()


def start_server(server_env: dict[str, str] | None = None, timeout: float = 30) -> S3Server:
    """Start moto's server; `server_env` configures it (e.g. INITIAL_NO_AUTH_ACTION_COUNT to
    enforce credentials and IAM policies)."""
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        env={**os.environ, **(server_env or {})})
    deadline = time.monotonic() + timeout
    while True:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1)
            break
        except urllib.error.HTTPError:  # any HTTP answer: it is up
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("moto's S3 server did not start") from None
            time.sleep(0.1)
    server = S3Server(port, process)
    server.env = {**CREDENTIALS, "AWS_ENDPOINT_URL": server.endpoint}
    return server


def create_bucket(server: S3Server, bucket: str = BUCKET) -> None:
    import pyarrow.fs as pafs

    fs = pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{server.port}", scheme="http",
                           region="us-east-1", access_key="testing", secret_key="testing",
                           allow_bucket_creation=True)
    fs.create_dir(bucket)

"""`sweep dashboard PATH`: a sweep's Optuna studies in optuna-dashboard, served on 127.0.0.1 only.

The studies are the sweep folder's `optuna.db` (SQLite, one study per dataset). A local folder's
file is served as it is, so a running sweep's new trials appear on reload; a URI folder's (s3://,
gs://) is copied to a temporary folder first (SQLite needs a local file) and that copy, a
snapshot taken at start, is served. optuna-dashboard is an optional extra, imported here only.
Ctrl-C or SIGTERM stops the server (exit 0).
"""

from __future__ import annotations

import errno
import signal
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

from common import storage
from common.errors import UserError
from common.layout import SweepLayout, sweep_folder

HOST = "127.0.0.1"  # never another interface: the studies hold the sweep's whole search
DEFAULT_PORT = 8080
INSTALL = 'optuna-dashboard is not installed: pip install -e ".[dashboard]"'
SQLITE_HEADER = b"SQLite format 3\x00"


def serve_dashboard(folder: str, port: int = DEFAULT_PORT,
                    announce: Callable[[str], None] = print) -> None:
    """Serve the studies of the sweep `folder` (a path or URI) on http://127.0.0.1:`port`/ until
    interrupted. Raises UserError (one line) for a missing extra, folder, study file or port."""
    if not 1 <= port <= 65535:
        raise UserError(f"--port must be in 1..65535, got {port}")
    folder = storage.normalise(folder)
    storage.check_reachable(folder)
    folder = sweep_folder(folder)
    layout = SweepLayout(folder)
    if not storage.exists(folder):
        raise UserError(f"{folder}: no such sweep folder")
    if not storage.exists(layout.study):
        raise UserError(f"{folder}: no optuna.db here (not a sweep folder, or no study yet)")
    _check_port(port)
    try:  # after the checks above: it takes a second to import
        import optuna_dashboard
    except ImportError:
        raise UserError(INSTALL) from None
    with tempfile.TemporaryDirectory(prefix="sweep-dashboard-") as tmp:
        if storage.is_uri(folder):
            path = Path(tmp) / "optuna.db"
            path.write_bytes(storage.read_bytes(layout.study))
            source = f"a copy of {layout.study}"
        else:
            path, source = Path(layout.study), layout.study
        url = f"sqlite:///{path}"
        names = study_names(path, url)
        announce(f"sweep dashboard: {len(names)} {'study' if len(names) == 1 else 'studies'} "
                 f"({', '.join(names) or 'none yet'}) of {source} at "
                 f"http://{HOST}:{port}/dashboard (Ctrl-C stops it)")
        with _sigterm_stops():
            try:
                _serve(optuna_dashboard.wsgi(url), port)
            except OSError as e:
                raise UserError(f"--port {port}: cannot listen on {HOST} ({e.strerror})") from None
    announce("sweep dashboard: stopped")


def study_names(path: Path, url: str) -> list[str]:
    """The names of the studies in an optuna.db, or a one-line UserError if it is not one."""
    import optuna
    import sqlalchemy.exc

    try:
        with open(path, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
    except OSError as e:
        raise UserError(f"{path}: cannot read ({e.strerror})") from None
    if header != SQLITE_HEADER:
        raise UserError(f"{path}: not an SQLite database (an Optuna study file)")
    try:
        return sorted(optuna.get_all_study_names(url))
    except (RuntimeError, sqlalchemy.exc.SQLAlchemyError) as e:
        first = str(e).splitlines()[0] if str(e) else type(e).__name__
        raise UserError(f"{path}: cannot read its Optuna studies ({first})") from None


def _check_port(port: int) -> None:
    """Fail in one line, before anything is printed, when the port cannot be listened on."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
        try:
            probe.bind((HOST, port))
        except OSError as e:
            why = "in use" if e.errno == errno.EADDRINUSE else e.strerror
            raise UserError(f"--port {port}: cannot listen on {HOST} ({why})") from None


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # no line per request
        pass


def _serve(app: Any, port: int) -> None:
    """Serve the dashboard's WSGI app on HOST until Ctrl-C (or SIGTERM, as `_sigterm_stops`
    makes it): wsgiref, as optuna-dashboard's own `run_server`, without the banner and the
    line per request that its Bottle server prints to stderr."""
    with make_server(HOST, port, app, handler_class=_QuietHandler) as server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:
            pass


@contextmanager
def _sigterm_stops() -> Iterator[None]:
    """SIGTERM stops the server as Ctrl-C does (the server returns; temporary files go)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, stop)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)

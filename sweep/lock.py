"""One driver at a time per sweep folder: a lease with a heartbeat, kept on the sweep's storage.

`<sweep>/lock.json` names its holder (host, pid, a random token) and when it last beat. The
driver that holds it rewrites it every `HEARTBEAT_S`; another `sweep run`/`resume` on the folder
sees a fresh lease and stops with one line naming the holder. A lease not renewed for `STALE_S`
(its driver died with its node), or held by a process of this host that no longer exists, is
taken over by `resume`. On local disk a new lease is created exclusively (only one driver can
create the file). Otherwise (an object store, or a lease being taken over) a driver writes the
lease, reads it back a moment later and goes on only if it still holds it: two drivers starting
at the same moment without conditional writes cannot both win. Released on exit.
"""

from __future__ import annotations

import json
import os
import socket
import threading
import time
import uuid
from typing import Any

from common import storage
from common.errors import UserError
from common.layout import SweepLayout

HEARTBEAT_S = float(os.environ.get("SWEEP_LOCK_HEARTBEAT_S", "10"))
STALE_S = float(os.environ.get("SWEEP_LOCK_STALE_S", "60"))
SETTLE_S = 0.5  # how long a new holder waits before reading its lease back


class SweepLock:
    def __init__(self, folder: str) -> None:
        self.location = SweepLayout(folder).lock
        self.token = uuid.uuid4().hex
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def holder(self) -> dict[str, Any] | None:
        """The current lease, if it is fresh (renewed within STALE_S)."""
        try:
            lease = json.loads(storage.read_text(self.location))
            heartbeat, pid = float(lease.get("heartbeat", 0)), int(lease.get("pid", 0))
        except (FileNotFoundError, OSError, ValueError, TypeError, AttributeError):
            return None  # none, or not a lease this code wrote (leases are written whole)
        if time.time() - heartbeat >= STALE_S:
            return None
        if lease.get("host") == socket.gethostname() and not _alive(pid):
            return None  # its driver died on this machine: no need to wait for staleness
        return lease

    def acquire(self) -> None:
        held = self.holder()
        if held is not None and held.get("token") != self.token:
            raise UserError(_held_message(self.location, held))
        if not storage.create_exclusive(self.location, self._lease().encode()):
            held = self.holder()  # one just created exclusively does not read its lease back
            if held is not None:
                raise UserError(_held_message(self.location, held))
            self._beat()
            time.sleep(SETTLE_S)
            held = self.holder()
            if held is None or held.get("token") != self.token:
                raise UserError(_held_message(self.location, held or {}))
        self._thread = threading.Thread(target=self._run, name="sweep-lock", daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
        held = self.holder()
        if held is not None and held.get("token") == self.token:
            try:
                storage.delete_file(self.location)
            except OSError:
                pass

    def __enter__(self) -> SweepLock:
        self.acquire()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()

    def _lease(self) -> str:
        return json.dumps({**self.owner, "heartbeat": time.time()})

    def _beat(self) -> None:
        storage.write_text_atomic(self.location, self._lease())

    def _run(self) -> None:
        while not self._stop.wait(HEARTBEAT_S):
            try:
                self._beat()
            except OSError:  # storage hiccup: the next beat tries again
                pass


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return pid > 0


def _held_message(location: str, held: dict[str, Any]) -> str:
    folder = location.rsplit("/", 1)[0]
    since = time.time() - float(held.get("heartbeat", time.time()))
    return (f"{folder} is in use by another driver (host {held.get('host', '?')}, pid "
            f"{held.get('pid', '?')}, alive {since:.0f} s ago); wait for it to end, or if it "
            f"died, `sweep resume` takes over once its lease is {STALE_S:.0f} s old")

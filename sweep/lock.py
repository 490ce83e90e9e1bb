"""One driver at a time per sweep folder: a lease with a heartbeat, kept on the sweep's storage.

`<sweep>/lock.json` names its holder (host, pid, a random token) and when it last beat. The
driver that holds it rewrites it every `HEARTBEAT_S`; another `sweep run`/`resume` on the folder
sees a fresh lease and stops with one line naming the holder. A lease not renewed for `STALE_S`
(its driver died with its node), or held by a process of this host that no longer exists, is
taken over by `resume`. On local disk a new lease is created exclusively (only one driver can
create the file). Otherwise (an object store, or a lease being taken over) a driver writes the
lease, reads it back a moment later and goes on only if it still holds it: two drivers starting
at the same moment without conditional writes cannot both win. Released on exit.

Before each renewal the holder reads its lease back. A driver that finds it taken (it was paused
past STALE_S, by a suspended machine, SIGSTOP or storage out of reach, and another driver's
`resume` took the sweep over) or gone after such a pause steps aside at once: one line on stderr,
then it exits as a killed driver would (`os._exit`; its local Ray and its trials' workers go with
it), writing nothing more, as every write it could still make would race the new holder's. The
sweep's crash-safety makes that exit harmless; the new holder goes on. (Between the paused
driver waking and its next look at the lease, at most a second, both drive the sweep: a lease
without fencing cannot close that window; the result log's rows are keyed by evaluation, so it
costs no duplicate.)
"""

from __future__ import annotations

import json
import os
import socket
import sys
import threading
import time
import uuid
from shlex import quote
from typing import Any

from common import storage
from common.errors import UserError, warn
from common.layout import SweepLayout

HEARTBEAT_S = float(os.environ.get("SWEEP_LOCK_HEARTBEAT_S", "10"))
STALE_S = float(os.environ.get("SWEEP_LOCK_STALE_S", "60"))
SETTLE_S = 0.5  # how long a new holder waits before reading its lease back
EXIT_LOST = 3  # the exit status of a driver that found its lease taken over


class SweepLock:
    def __init__(self, folder: str) -> None:
        self.location = SweepLayout(folder).lock
        self.token = uuid.uuid4().hex
        self.owner = {"host": socket.gethostname(), "pid": os.getpid(), "token": self.token}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.renewed = float("-inf")  # when this driver last wrote its lease (Unix time)

    def holder(self) -> dict[str, Any] | None:
        """The current lease, if it is fresh (renewed within STALE_S)."""
        try:
            lease = self._read()
        except OSError:
            return None
        if lease is None:
            return None
        heartbeat, pid = lease["heartbeat"], lease["pid"]
        if time.time() - heartbeat >= STALE_S:
            return None
        if lease.get("host") == socket.gethostname() and not _alive(pid):
            return None  # its driver died on this machine: no need to wait for staleness
        return lease

    def acquire(self) -> None:
        held = self.holder()
        if held is not None and held.get("token") != self.token:
            raise UserError(_held_message(self.location, held))
        self.renewed = time.time()
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

    def _read(self) -> dict[str, Any] | None:
        """The lease on storage, whatever its age (None: none, or not a lease this code wrote;
        leases are written whole). Storage errors other than a missing file are raised."""
        try:
            lease = json.loads(storage.read_text(self.location))
            return {**lease, "heartbeat": float(lease.get("heartbeat", 0)),
                    "pid": int(lease.get("pid", 0))}
        except (FileNotFoundError, ValueError, TypeError, AttributeError):
            return None

    def _lease(self) -> str:
        return json.dumps({**self.owner, "heartbeat": time.time()})

    def _beat(self) -> None:
        now = time.time()
        storage.write_text_atomic(self.location, self._lease())
        self.renewed = now

    def taken_by(self) -> dict[str, Any] | None:
        """Whoever holds the sweep instead of this driver, or None while it is still this
        driver's: a lease with another token, or none left (`{}`) after this driver went
        STALE_S without renewing it, so that another could take it over and finish."""
        lease = self._read()
        if lease is not None:
            return None if lease.get("token") == self.token else lease
        return {} if time.time() - self.renewed >= STALE_S else None

    def _run(self) -> None:
        # Time is told by the wall clock, looked at every second: a suspended machine's
        # monotonic clock stands still, and a wait of HEARTBEAT_S on it would leave a driver
        # waking from a suspend to drive on for up to that long before looking at its lease.
        tried = time.time()
        while not self._stop.wait(min(1.0, HEARTBEAT_S)):
            if time.time() - tried < HEARTBEAT_S:
                continue
            tried = time.time()
            try:
                taken = self.taken_by()
                if taken is not None and not self._stop.is_set():
                    _step_aside(self.location, taken, time.time() - self.renewed)
                    return  # (os._exit does not return)
                self._beat()
            except OSError:  # storage hiccup: the next beat tries again
                pass
            except Exception as e:  # noqa: BLE001 - the lease must not die in silence
                warn(f"renewing the lease {self.location} failed ({type(e).__name__}: {e}); "
                     "trying again")


def _step_aside(location: str, taken: dict[str, Any], unrenewed_s: float) -> None:
    """Stop this driver at once, as if killed, without writing anything more. The line goes
    out with one unbuffered write, and the exit comes whatever becomes of it (a reader gone:
    a broken pipe; a full pipe would block a buffered print)."""
    folder = location.rsplit("/", 1)[0]
    who = (f"another driver (host {taken.get('host', '?')}, pid {taken.get('pid', '?')}) holds "
           "it now" if taken else "its lease is gone")
    line = (f"sweep: this driver lost {folder} after {unrenewed_s:.0f} s without renewing its "
            f"lease (paused, or storage out of reach): {who}; stopping at once without writing "
            f"more. If no driver is running it, continue with `sweep resume {quote(folder)}`\n")
    try:
        os.write(sys.stderr.fileno(), line.encode())
    except (OSError, ValueError):  # no stderr to write to (closed, or a reader gone)
        pass
    finally:
        os._exit(EXIT_LOST)


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

"""Hand a trial's records to Ray Tune from a thread of their own, so that training goes on while
the driver takes each one in.

Tune's function trainables report synchronously: `tune.report` returns only once the driver has
processed the result and asked for the next one (that is how a scheduler stops a trial at the
result it judged). For a small net evaluated every few tens of milliseconds that round trip is
~4 ms a record here, 10-15% of a short trial spent waiting. `ReportThread` keeps one record in
flight: training computes the next evaluation while the driver takes in the last.

A stop is still obeyed: when Tune ends the trial, its `report` raises `SystemExit` in this
thread, and the training thread raises it at its next `check` (after every training step) or
`send` (Tune ends the function on that, as it does when `report` raises it in the training
thread itself). So a stopped trial trains on for at most one step. (It used to train on until
its next evaluation; a worker that Tune then ended while a step was in torch's C++ code aborted,
and its stack trace reached the sweep's console.) A record that took longer than
`PIPELINE_BELOW_S` to compute is sent synchronously: the training thread waits until the driver
has taken it, exactly as without this thread. Records reach Tune in order, each once; none is
sent after a stop.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable
from typing import Any

PIPELINE_BELOW_S = 0.25  # a record computed faster than this does not wait for the driver


class ReportThread:
    """Sends records with `send` (`ray.tune.report`) from a daemon thread, one at a time."""

    def __init__(self, send: Callable[[dict[str, Any]], None]) -> None:
        self._send = send
        self._records: queue.SimpleQueue[dict[str, Any] | None] = queue.SimpleQueue()
        self._taken = threading.Event()  # the last record handed over has been sent
        self._taken.set()
        self._error: BaseException | None = None
        self._resumed = time.monotonic()  # when training last went on
        self._thread = threading.Thread(target=self._run, name="report", daemon=True)
        self._thread.start()

    def send(self, record: dict[str, Any]) -> None:
        """Hand `record` over once the previous one is sent; when it took longer than
        PIPELINE_BELOW_S to compute, also wait until it is sent. Raises what sending raised
        (SystemExit when Tune stopped the trial)."""
        synchronous = time.monotonic() - self._resumed > PIPELINE_BELOW_S
        self._wait_taken()
        self._taken.clear()
        self._records.put(record)
        if synchronous:
            self._wait_taken()
        self._resumed = time.monotonic()

    def check(self) -> None:
        """Raise what sending raised, if it has (SystemExit once Tune stopped the trial)."""
        if self._error is not None:
            raise self._error

    def flush(self) -> None:
        """Wait until the last record is sent; raises what sending raised."""
        self._wait_taken()

    def stop(self) -> None:
        """End the thread after its current send (call it whether training ended or failed)."""
        self._records.put(None)

    def _wait_taken(self) -> None:
        self._taken.wait()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while (record := self._records.get()) is not None:
            try:
                self._send(record)
            except BaseException as e:  # noqa: BLE001 - SystemExit is how Tune stops a trial
                self._error = e
                self._taken.set()
                return
            self._taken.set()

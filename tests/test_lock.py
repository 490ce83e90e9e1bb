"""The sweep lock's two ways in: a new lease on local disk is created exclusively (no wait), and
a lease already there (a dead or stale holder's, or any on an object store) is written, then read
back after SETTLE_S. test_interrupts runs it between real drivers."""

from __future__ import annotations

import json
import threading
import time

import pytest

from common import storage
from common.errors import UserError
from sweep import lock
from sweep.lock import SweepLock


def test_create_exclusive_creates_once_and_leaves_no_temporary_file(tmp_path):
    target = tmp_path / "f.json"
    assert storage.create_exclusive(str(target), b"first")
    assert not storage.create_exclusive(str(target), b"second")
    assert target.read_bytes() == b"first"
    assert [p.name for p in tmp_path.iterdir()] == ["f.json"]
    assert not storage.create_exclusive(str(tmp_path / "missing" / "f.json"), b"x")


def test_a_mount_without_hard_links_falls_back_to_reading_the_lease_back(tmp_path, monkeypatch):
    # gcsfuse, s3fs-fuse and some SMB shares refuse link(2) with EPERM or ENOTSUP
    def no_links(source, target):
        raise PermissionError(1, "Operation not permitted")

    monkeypatch.setattr(lock, "SETTLE_S", 0.0)
    monkeypatch.setattr(storage.os, "link", no_links)
    assert not storage.create_exclusive(str(tmp_path / "f.json"), b"x")
    assert list(tmp_path.iterdir()) == []  # its temporary file removed
    held = SweepLock(str(tmp_path))
    held.acquire()  # not a traceback: the lease written, then read back
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == held.token
    held.release()


def test_a_new_local_lease_is_taken_without_waiting(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_S", 30.0)  # were it waited for, the test would take 30 s
    started = time.monotonic()
    held = SweepLock(str(tmp_path))
    held.acquire()
    assert time.monotonic() - started < 5
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == held.token
    with pytest.raises(UserError, match="is in use by another driver"):
        SweepLock(str(tmp_path)).acquire()
    held.release()
    assert not (tmp_path / "lock.json").exists()


def test_of_drivers_starting_together_exactly_one_wins(tmp_path):
    outcomes: list[str] = []
    winners: list[SweepLock] = []
    barrier = threading.Barrier(4)

    def start() -> None:
        barrier.wait()
        held = SweepLock(str(tmp_path))
        try:
            held.acquire()
            outcomes.append("won")
            winners.append(held)
        except UserError:
            outcomes.append("refused")

    threads = [threading.Thread(target=start) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for held in winners:
        held.release()
    assert sorted(outcomes) == ["refused"] * 3 + ["won"]


def test_a_dead_holders_lease_is_taken_over_after_reading_it_back(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "SETTLE_S", 0.2)
    dead = {"host": lock.socket.gethostname(), "pid": 2**22 + 12345, "token": "old",
            "heartbeat": time.time()}
    (tmp_path / "lock.json").write_text(json.dumps(dead))
    started = time.monotonic()
    taker = SweepLock(str(tmp_path))
    taker.acquire()
    assert time.monotonic() - started >= 0.2  # the written lease was read back
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == taker.token
    taker.release()


@pytest.mark.parametrize("content", ["[]", '{"heartbeat": "x"}', '{"pid": "x", "heartbeat": 1}',
                                     "null", "{"])
def test_a_lock_file_that_is_no_lease_is_taken_over(tmp_path, monkeypatch, content):
    monkeypatch.setattr(lock, "SETTLE_S", 0.0)
    (tmp_path / "lock.json").write_text(content)
    taken = SweepLock(str(tmp_path))
    assert taken.holder() is None
    taken.acquire()
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == taken.token
    taken.release()


def test_a_holder_whose_lease_was_taken_over_steps_aside_and_writes_no_more(tmp_path,
                                                                            monkeypatch):
    # a driver paused past STALE_S (SIGSTOP, a suspended laptop) while another's `resume` took
    # the sweep over: on waking, its heartbeat must not write its lease back over the new one
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    stepped_aside = []
    monkeypatch.setattr(lock, "_step_aside", lambda location, taken, s: stepped_aside.append(taken))
    paused = SweepLock(str(tmp_path))
    paused.acquire()
    other = {"host": "elsewhere", "pid": 7, "token": "other", "heartbeat": time.time()}
    (tmp_path / "lock.json").write_text(json.dumps(other))
    deadline = time.monotonic() + 5
    while not stepped_aside and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.2)  # beats it would have written by now
    assert stepped_aside and stepped_aside[0]["host"] == "elsewhere"
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == "other"
    paused.release()
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == "other"  # not its own


def test_a_lease_is_lost_when_another_holds_it_or_when_gone_after_going_stale(tmp_path):
    held = SweepLock(str(tmp_path))
    held.renewed = time.time()
    assert held.taken_by() is None  # no lease, renewed just now: nobody could take it over
    (tmp_path / "lock.json").write_text(held._lease())
    assert held.taken_by() is None  # its own
    held.renewed = time.time() - lock.STALE_S - 1
    assert held.taken_by() is None  # its own still, however late: nobody took it
    (tmp_path / "lock.json").unlink()
    assert held.taken_by() == {}  # gone after going stale: another may have taken it and ended
    other = {"host": "h", "pid": 1, "token": "t", "heartbeat": 0}
    (tmp_path / "lock.json").write_text(json.dumps(other))
    assert held.taken_by()["token"] == "t"


def test_the_heartbeat_outlives_an_unexpected_error(tmp_path, monkeypatch):
    monkeypatch.setattr(lock, "HEARTBEAT_S", 0.05)
    real, failures = storage.write_text_atomic, []

    def fails_once(location, text):
        if not failures:
            failures.append(location)
            raise ValueError("a surprise")
        real(location, text)

    held = SweepLock(str(tmp_path))
    held.acquire()
    monkeypatch.setattr(storage, "write_text_atomic", fails_once)
    with pytest.warns(UserWarning, match="renewing the lease .* failed .*a surprise"):
        time.sleep(0.3)
    renewed = held.renewed
    time.sleep(0.3)
    assert failures and held.renewed > renewed  # it went on beating
    held.release()


@pytest.mark.parametrize("given, same", [("s3://b/sweeps/x/", "s3://b/sweeps/x"),
                                         ("gs://b/x//", "gs://b/x"), ("s3://b", "s3://b")])
def test_a_sweep_folder_uri_has_one_spelling(given, same):
    # the lock, the study copy and a moved folder's check all compare folders as strings
    assert storage.normalise(given) == same


def test_a_driver_steps_aside_even_when_it_cannot_say_so(tmp_path):
    # its stderr gone (a reader that died: a broken pipe): the exit must still come, or the
    # driver would go on beside the new holder without renewing its lease
    import subprocess
    import sys
    import textwrap

    script = textwrap.dedent(f"""
        import json, os, time
        from sweep import lock
        lock.HEARTBEAT_S = 0.05
        held = lock.SweepLock({str(tmp_path)!r})
        held.acquire()
        os.close(2)
        other = {{"host": "elsewhere", "pid": 7, "token": "other", "heartbeat": time.time()}}
        with open({str(tmp_path / "lock.json")!r}, "w") as f:
            json.dump(other, f)
        time.sleep(30)
    """)
    started = time.monotonic()
    done = subprocess.run([sys.executable, "-c", script], timeout=60)
    assert done.returncode == lock.EXIT_LOST and time.monotonic() - started < 25
    assert json.loads((tmp_path / "lock.json").read_text())["token"] == "other"

"""Rows before and after each fault, on local and on S3 storage: what docs/reliability.md shows.

Runs each fault once per storage, as the tests do (tests/test_faults.py, test_sweep.py,
test_cloud.py), and counts the result log's (trial, evaluation) rows at the moment of the fault
and at the end: lost = rows logged before the fault missing at the end, duplicated = rows present
more than once at the end. S3 is moto's server on 127.0.0.1 (tests/s3server.py). Usage:
  python bench/fault_rows.py [--faults worker driver head] [--storage local s3]
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "tests"))

from cli import run_sweep  # noqa: E402
from locations import Location  # noqa: E402
from s3server import create_bucket, start_server  # noqa: E402
from test_faults import finish, long_spec, start_sweep, wait_for_running_trial  # noqa: E402


def keys(df) -> set[tuple[str, int]]:
    return set(zip(df["trial_id"], df["evaluation"], strict=True))


def run_fault(fault: str, root: Location, scratch: Path) -> dict:
    folder = root / fault
    spec = long_spec(scratch, trials=4, epochs=25)
    driver = start_sweep("--config", str(spec), "--num-cpus", "2", "--max-concurrent-trials",
                         "2", "--storage", str(root), "--name", fault)
    victim = wait_for_running_trial(folder / "results", min_rows=8)
    if fault == "worker":
        os.kill(int(victim["pid"]), signal.SIGKILL)
        before = (folder / "results").parquet()
        finish(driver)
        code = driver.returncode
    else:
        os.killpg(driver.pid, signal.SIGKILL)
        driver.wait()
        before = (folder / "results").parquet()
        env = {}
        tmp = None
        if fault == "head":  # a new head: fresh HOME and temp dir
            home = scratch / "home"
            home.mkdir()
            tmp = tempfile.mkdtemp(prefix="head", dir="/tmp")
            env = {"HOME": str(home), "TMPDIR": tmp}
        code = run_sweep("resume", str(folder), "--num-cpus", "2", env=env).returncode
        if tmp:
            shutil.rmtree(tmp, ignore_errors=True)
    after = (folder / "results").parquet()
    return {"rows_before": len(before), "rows_after": len(after),
            "lost": len(keys(before) - keys(after)),
            "duplicated": int(after.duplicated(["trial_id", "evaluation"]).sum()),
            "exit": code}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--faults", nargs="+", default=["worker", "driver", "head"])
    parser.add_argument("--storage", nargs="+", default=["local", "s3"])
    args = parser.parse_args()
    server = None
    if "s3" in args.storage:
        server = start_server()
        create_bucket(server)
        os.environ.update(server.env)
    print("| fault | storage | rows at the fault | rows at the end | lost | duplicated | exit |")
    print("|---|---|---|---|---|---|---|")
    try:
        for fault in args.faults:
            for kind in args.storage:
                if fault == "head" and kind == "local":
                    continue  # a lost head takes local storage with it
                with tempfile.TemporaryDirectory() as scratch:
                    root = Location(f"s3://sweeps/{fault}" if kind == "s3" else scratch + "/s")
                    r = run_fault(fault, root, Path(scratch))
                print(f"| {fault} | {kind} | {r['rows_before']} | {r['rows_after']} | "
                      f"{r['lost']} | {r['duplicated']} | {r['exit']} |", flush=True)
    finally:
        if server:
            server.stop()


if __name__ == "__main__":
    main()

"""Faults on real processes: a killed trial worker, a killed driver with corrupted files left
behind, storage that is read-only or fills up, a diverging trial. Nothing may be lost or doubled."""

from __future__ import annotations

import os
import signal
import subprocess
import time
import warnings
from pathlib import Path

import pandas as pd
import pytest
from cli import run_sweep, sweep_command
from locations import Location
from test_sweep import assert_log_complete, assert_rows_match_replay, small_spec, write_spec

from analysis import load_results
from common.errors import UserError
from sweep.results_log import last_logged_evaluation

pytestmark = pytest.mark.slow


def long_spec(tmp_path: Path, trials: int = 3, epochs: int = 30) -> Path:
    return small_spec(tmp_path, trials, epochs)


def start_sweep(*args: str) -> subprocess.Popen:
    return subprocess.Popen([*sweep_command(), "run", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)


def wait_for_running_trial(results: Path | Location, min_rows: int = 4,
                           timeout: float = 240) -> pd.Series:
    """The last row of a trial that has logged `min_rows` rows and is still running."""
    results = Location(str(results))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.3)
        try:
            df = results.parquet()
        except (OSError, ValueError, UserError):  # no rows yet
            continue
        if df.empty:
            continue
        last = df.sort_values("evaluation").groupby("trial_id").tail(1)
        running = last[(last["status"] == "running") & (last["evaluation"] >= min_rows - 1)]
        if not running.empty:
            return running.iloc[0]
    raise AssertionError("no trial got far enough to be interrupted")


def finish(driver: subprocess.Popen, timeout: float = 400) -> str:
    try:
        output, _ = driver.communicate(timeout=timeout)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    return output


def test_killed_trial_worker_is_retried_from_its_last_checkpoint(tmp_path, store):
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=2)), "--num-cpus", "2",
                         "--storage", str(store), "--name", "w")
    victim = wait_for_running_trial(store / "w" / "results")
    os.kill(int(victim["pid"]), signal.SIGKILL)  # the trial's worker process, mid-trial
    output = finish(driver)
    assert driver.returncode == 0, output[-3000:]
    df = (store / "w" / "results").parquet()
    assert_log_complete(df, trials=2)
    rows = df[df["trial_id"] == victim["trial_id"]].sort_values("evaluation")
    assert rows["pid"].nunique() == 2  # a second worker process finished it
    first_new = rows[rows["pid"] != victim["pid"]]["evaluation"].min()
    # Resumed at its checkpoint, not from zero. The bound is the killed worker's last logged row,
    # not `victim` (the log as read before the kill): results already sent by the worker reach
    # the driver's log after the kill, so the log may end later than that reading; and a row
    # whose state the kill kept from being saved is redone (and replaced) by the new worker.
    killed_last = rows[rows["pid"] == victim["pid"]]["evaluation"].max()
    assert 0 < first_new <= killed_last + 1
    assert_rows_match_replay(rows)


def test_resume_with_a_truncated_checkpoint_and_a_truncated_log_file(tmp_path):
    folder = tmp_path / "c"
    # Trials long enough that one is seen running past its 6th evaluation between the log's
    # flushes (a running trial's rows reach storage every 2 s).
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=3, epochs=60)), "--num-cpus",
                         "2", "--max-concurrent-trials", "1", "--storage", str(tmp_path),
                         "--name", "c")
    deadline, finished, running = time.monotonic() + 300, None, None
    while time.monotonic() < deadline and (finished is None or running is None):
        time.sleep(0.3)
        try:
            last = load_results(str(folder)).sort_values("evaluation").groupby(
                "trial_id").tail(1)
        except (OSError, ValueError, KeyError, UserError):
            continue
        done = last[last["status"] == "finished"]
        going = last[(last["status"] == "running") & (last["evaluation"] >= 6)]
        finished = done.iloc[0] if len(done) else None
        running = going.iloc[0] if len(going) else None
    assert finished is not None and running is not None, "the sweep never got that far"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and its Ray, mid-sweep
    driver.wait()
    # The running trial: truncate the state its resume wants (the newest one the log holds).
    logged = last_logged_evaluation(str(folder / "results"), "digits", running["trial_id"])
    states = sorted((folder / "trial_state" / running["trial_id"]).glob("*.pt"))
    checkpoint = [p for p in states if int(p.stem) <= logged][-1]
    assert checkpoint != states[0], "no older state to fall back on"
    checkpoint.write_bytes(checkpoint.read_bytes()[:500])
    # The finished trial: truncate its log file.
    log_file = folder / "results" / f"digits-{finished['trial_id']}.parquet"
    before = pd.read_parquet(log_file)
    log_file.write_bytes(log_file.read_bytes()[:300])

    result = run_sweep("resume", str(folder), "--num-cpus", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"checkpoint {checkpoint} is unreadable" in output  # and an older one is used
    assert f"{log_file} is unreadable" in output and f"{len(before)} rows rebuilt" in output
    assert (folder / "results" / "_set_aside" / f"{log_file.name}.corrupt").exists()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # every remaining file is readable
        df = load_results(str(folder))
    assert_log_complete(df, trials=3)
    rebuilt = df[df["trial_id"] == finished["trial_id"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(rebuilt[before.columns], before, check_dtype=False)
    for _, rows in df.groupby("trial_id"):
        assert_rows_match_replay(rows)


def _tmpfs(path: Path, size: str, read_only: bool = False) -> None:
    path.mkdir()
    options = f"size={size}" + (",ro" if read_only else "")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:  # the file-as-parent cases in test_bad_input cover the rest
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")


def _umount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


@pytest.mark.parametrize("size, read_only, message", [
    ("64m", True, "cannot write there"),
    ("4m", False, "MiB free; a sweep needs at least 20 MiB"),
])
def test_unwritable_or_full_storage_fails_before_any_trial(tmp_path, size, read_only, message):
    storage = tmp_path / "mnt"
    _tmpfs(storage, size, read_only)
    try:
        result = run_sweep("run", "--storage", str(storage), "--name", "s", "--num-cpus", "2")
        assert result.returncode == 2 and message in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert "Started a local Ray" not in result.stdout + result.stderr
        assert list(storage.iterdir()) == []
    finally:
        _umount(storage)


def test_disk_filling_mid_sweep_stops_cleanly_with_the_log_intact(tmp_path):
    storage = tmp_path / "mnt"
    _tmpfs(storage, "48m")
    try:
        driver = start_sweep("--config", str(long_spec(tmp_path, trials=3)), "--num-cpus", "2",
                             "--storage", str(storage), "--name", "full")
        wait_for_running_trial(storage / "full" / "results", min_rows=3)
        subprocess.run(["dd", "if=/dev/zero", f"of={storage}/filler", "bs=1M"],
                       capture_output=True)  # another process fills the disk
        output = finish(driver, timeout=300)
        assert driver.returncode == 2, output[-3000:]
        assert "sweep stopped: cannot write to" in output and "No space left" in output
        assert "Traceback" not in output.split("sweep stopped")[-1]
        results = storage / "full" / "results"
        assert not [p for p in results.iterdir() if p.name.startswith(".")]  # no temporaries
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            df = load_results(str(results))  # every file written is whole
        for _, rows in df.groupby("trial_id"):
            rows = rows.sort_values("evaluation")
            assert rows["evaluation"].tolist() == list(range(len(rows)))
    finally:
        _umount(storage)


def test_a_diverging_trial_ends_as_diverged_and_the_sweep_goes_on(tmp_path):
    spec = write_spec(tmp_path / "nan.yaml", datasets=["digits"], num_samples=3,
                      fixed={"finetune_epochs": 3},
                      search={"strategy": ["none"], "lr": [0.001, 1000000.0]},
                      baselines=[{"lr": 1000000.0}, {"lr": 0.001}, {"lr": 1000000.0}])
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "2", "--storage",
                       str(tmp_path), "--name", "nan")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "nan" / "results")
    assert_log_complete(df, trials=3)
    last = df.sort_values("evaluation").groupby("trial_id").tail(1).set_index("lr")
    assert set(last.loc[[1e6], "status"]) == {"diverged"}
    assert last.loc[0.001, "status"] == "finished"


def test_a_sweep_whose_every_trial_fails_says_so_and_exits_1(tmp_path, monkeypatch, capsys):
    # Every trial raises (as a device or library error would, in each worker); the sweep must
    # not end with "finished" and exit 0.
    from ray import tune

    from sweep import cli, launcher

    def failing(config: dict) -> None:
        tune.report({"evaluation": 0, "dataset": "digits", "status": "running",
                     "trial_id": tune.get_context().get_trial_id(), "sweep": "f",
                     "train_flops": 0, "test_accuracy": 0.1, "search_accuracy": 0.1,
                     "compute_flops": 0})
        raise RuntimeError("no luck in this worker")

    monkeypatch.setattr(launcher, "_trainable", lambda settings, dataset, raw: (
        tune.with_resources(failing, {"cpu": 1})))
    code = cli.main(["run", "--config", str(long_spec(tmp_path, trials=2, epochs=2)),
                     "--num-cpus", "2", "--max-failures", "0", "--storage", str(tmp_path),
                     "--name", "f", "--no-analyze"])
    out, err = capsys.readouterr()
    assert code == 1, err[-3000:]
    last = err.strip().splitlines()[-1]
    assert last.startswith("sweep run: every trial failed after its retries: digits (")
    assert "no luck in this worker" in last
    assert last.endswith(f"their tracebacks are above; results in {tmp_path / 'f' / 'results'}")
    assert "finished" not in out
    # each trial's one row says it failed (not `running`, which reads as interrupted)
    df = pd.read_parquet(tmp_path / "f" / "results")
    assert len(df) == 2 and set(df["status"]) == {"failed"} and set(df["stop_reason"]) == {"error"}


def test_a_tune_folder_without_a_snapshot_starts_its_study_afresh(tmp_path):
    # The driver died after Tune wrote tuner.pkl and before its first experiment snapshot.
    from common.layout import SweepLayout
    from sweep.launcher import _prepare_resume

    layout = SweepLayout(str(tmp_path / "s"))
    experiment = Path(layout.experiment("digits"))
    experiment.mkdir(parents=True)
    (experiment / "tuner.pkl").write_bytes(b"pickled tuner")
    assert _prepare_resume(layout, "digits") is None  # no experiment to continue

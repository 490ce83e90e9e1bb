"""The cloud path: a sweep on S3 storage (the loopback server) that loses its head node, and
analysis of a sweep while it runs. The code under test talks to the server over HTTP as it would
to AWS."""

from __future__ import annotations

import os
import shutil
import signal
import tempfile
import time
from pathlib import Path

import optuna
import pytest
from cli import run_sweep
from conftest import sweep_root
from test_faults import finish, long_spec, start_sweep, wait_for_running_trial
from test_sweep import assert_log_complete, assert_rows_match_replay

pytestmark = pytest.mark.slow


def test_head_loss_resumes_from_s3_alone(tmp_path, request, tmp_path_factory):
    store = sweep_root("s3", request, tmp_path_factory)
    folder = store / "h"
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=4, epochs=25)), "--num-cpus",
                         "2", "--max-concurrent-trials", "2", "--storage", str(store),
                         "--name", "h")
    wait_for_running_trial(folder / "results", min_rows=12)
    os.killpg(driver.pid, signal.SIGKILL)  # the whole head: driver, its Ray, its local files
    driver.wait()
    before = (folder / "results").parquet()
    assert (before.groupby("trial_id")["status"].last() == "running").any()
    # Nothing is left under a temporary name: every object was written whole.
    assert not [name for name in folder.files() if name.endswith(".tmp") or "probe" in name]

    # A new head: no HOME, no temp dir of the old one; only the sweep folder on S3.
    new_home = tmp_path / "new-home"
    new_home.mkdir()
    new_tmp = Path(tempfile.mkdtemp(prefix="head", dir="/tmp"))  # short: Ray's socket paths
    try:
        # spelled with a trailing '/': the same folder (its study copy is found by name)
        result = run_sweep("resume", f"{folder}/", "--num-cpus", "2",
                           env={"HOME": str(new_home), "TMPDIR": str(new_tmp)})
    finally:
        shutil.rmtree(new_tmp, ignore_errors=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = (folder / "results").parquet()
    assert_log_complete(df, trials=4)  # evaluations 0..n of each trial, once each
    for _, rows in df.groupby("trial_id"):
        assert_rows_match_replay(rows)
    # Every row logged before the crash is still there (redone evaluations replace theirs).
    assert set(zip(before["trial_id"], before["evaluation"], strict=True)) <= set(
        zip(df["trial_id"], df["evaluation"], strict=True))
    # The study on S3 holds every finished trial with both objective values.
    study = optuna.load_study(study_name="h-digits", storage=folder.study_url())
    complete = {t.user_attrs["tune_trial_id"]: t.values for t in study.trials
                if t.state == optuna.trial.TrialState.COMPLETE}
    finals = df.sort_values("evaluation").groupby("trial_id").last()
    assert set(complete) == set(finals.index)
    for trial_id, values in complete.items():
        accuracy, compute = values  # compute: training plus selection FLOPs
        assert compute == (finals.loc[trial_id, "train_flops"]
                           + finals.loc[trial_id, "selection_flops"])
        assert accuracy == pytest.approx(finals.loc[trial_id, "test_accuracy"], abs=0.02)
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_analyze_while_the_sweep_runs_and_after(tmp_path, store):
    # Trials long enough to be still running when `analyze` has started and read the folder.
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=2, epochs=100)), "--num-cpus",
                         "2", "--storage", str(store), "--name", "a")
    wait_for_running_trial(store / "a" / "results", min_rows=6)
    during = run_sweep("analyze", str(store / "a"), "--out", str(tmp_path / "during"))
    assert during.returncode == 0, during.stderr
    assert during.stdout.startswith("In progress: ")  # says the sweep is still running
    assert during.stdout.splitlines()[2].split()[0] == "digits"
    assert "**In progress: " in (tmp_path / "during" / "report.md").read_text()
    assert (tmp_path / "during" / "report.md").exists()
    output = finish(driver)
    assert driver.returncode == 0, output[-3000:]
    after = run_sweep("analyze", str(store / "a"), "--out", str(tmp_path / "after"))
    assert after.returncode == 0, after.stderr
    assert not after.stdout.startswith("In progress")
    assert after.stdout.splitlines()[1].split()[:2] == ["digits", "2"]
    assert (tmp_path / "after" / "frontier.parquet").exists()


def test_object_writes_are_single_puts(s3_server):
    """On S3 an object is written by one PutObject (no multipart upload left half done by a
    kill), seen from the operation an auth-enforcing server refuses."""
    from s3server import start_server

    from common import storage
    from common.errors import StorageError

    strict = start_server({"INITIAL_NO_AUTH_ACTION_COUNT": "0"})
    try:
        saved = os.environ["AWS_ENDPOINT_URL"]
        os.environ["AWS_ENDPOINT_URL"] = strict.endpoint
        start = time.monotonic()
        with pytest.raises(OSError, match="during PutObject operation"):
            storage.write_bytes_atomic("s3://sweeps/x/state.pt", b"0" * 2**20)
        with pytest.raises(StorageError, match="s3://sweeps/y: cannot write there"):
            storage.check_writable("s3://sweeps/y")
        assert time.monotonic() - start < 5
    finally:
        os.environ["AWS_ENDPOINT_URL"] = saved
        strict.stop()

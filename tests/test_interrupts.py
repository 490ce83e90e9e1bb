"""Ctrl-C, SIGTERM, two drivers on one folder, and early-stopped trials, on a real local Ray."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest
from cli import run_sweep, sweep_command
from test_faults import long_spec, start_sweep, wait_for_running_trial
from test_sweep import assert_log_complete, write_spec

from analysis import load_results

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("signum, code", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupted_sweep_is_not_done_and_resume_completes_it(tmp_path, signum, code):
    folder = tmp_path / "i"
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=4, epochs=25)), "--num-cpus",
                         "2", "--max-concurrent-trials", "2", "--storage", str(tmp_path),
                         "--name", "i")
    wait_for_running_trial(folder / "results", min_rows=6)
    driver.send_signal(signum)  # to the driver alone, as Ctrl-C or `kill` would
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == code, output[-3000:]
    last = output.strip().splitlines()[-1]
    assert last == (f"sweep run: interrupted ({signal.Signals(signum).name}); continue it with "
                    f"`sweep resume {folder}`")
    assert "finished" not in output.split("results in")[-1]  # no claim that it is done
    assert not (folder / "state.json").exists()
    assert not (folder / "lock.json").exists()  # released
    interrupted = load_results(str(folder))  # running trials' rows are in segments
    assert (interrupted.sort_values("evaluation").groupby("trial_id")["status"].last()
            == "running").any()
    study = optuna.load_study(study_name="i-digits", storage=f"sqlite:///{folder}/optuna.db")
    running = [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]
    assert running and not [t for t in study.trials if t.state == optuna.trial.TrialState.FAIL
                            and "repeat_of" not in t.user_attrs]  # the sampler's repeats are

    result = run_sweep("resume", str(folder), "--num-cpus", "2", "--no-analyze")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "resuming after evaluation" in output  # a worker's line, forwarded by Ray ...
    assert "\x1b[" not in output  # ... without colour codes off a terminal
    df = pd.read_parquet(folder / "results")
    assert_log_complete(df, trials=4)  # every trial the sweep asked for, each row once
    study = optuna.load_study(study_name="i-digits", storage=f"sqlite:///{folder}/optuna.db")
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 4


def test_an_interrupted_sweep_moved_elsewhere_resumes_there_under_its_own_name(tmp_path):
    import shutil

    folder = tmp_path / "i"
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=3, epochs=25)), "--num-cpus",
                         "2", "--max-concurrent-trials", "2", "--storage", str(tmp_path),
                         "--name", "i")
    wait_for_running_trial(folder / "results", min_rows=6)
    driver.send_signal(signal.SIGINT)
    driver.communicate(timeout=120)
    assert driver.returncode == 130
    moved = tmp_path / "elsewhere" / "renamed"
    moved.parent.mkdir()
    shutil.move(folder, moved)

    result = run_sweep("resume", str(moved), "--num-cpus", "2", "--no-analyze", timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert f"results in {moved}/results" in result.stdout
    df = pd.read_parquet(moved / "results")
    assert_log_complete(df, trials=3)
    assert set(df["sweep"]) == {"i"}  # the sweep keeps its name; only its folder moved
    study = optuna.load_study(study_name="i-digits", storage=f"sqlite:///{moved}/optuna.db")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 3
    assert not folder.exists()  # nothing written where it was


def wait_for_ended_trial(results: Path, timeout: float = 240) -> str:
    """The id of a trial whose whole file is written (it ended), its last row finished."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        time.sleep(0.2)
        for file in results.glob("digits-*.parquet"):
            try:
                rows = pd.read_parquet(file)
            except (OSError, ValueError):  # being replaced
                continue
            if rows.sort_values("evaluation")["status"].iloc[-1] == "finished":
                return str(rows["trial_id"].iloc[0])
    raise AssertionError("no trial ended")


def test_a_trial_that_ended_after_the_last_snapshot_is_not_run_again(tmp_path):
    # Tune's experiment snapshot is up to TUNE_GLOBAL_CHECKPOINT_S old when a sweep stops: a
    # trial that ended in between is RUNNING there, and Tune starts it again on resume. Its end
    # is in the log, so it reports that row again and trains nothing; Optuna, told its end from
    # the log, is not told twice (Ray's searcher warned about that with the whole result).
    folder = tmp_path / "e"
    driver = start_sweep("--config", str(long_spec(tmp_path, trials=4, epochs=25)), "--num-cpus",
                         "2", "--max-concurrent-trials", "2", "--storage", str(tmp_path),
                         "--name", "e")
    ended = wait_for_ended_trial(folder / "results")
    driver.send_signal(signal.SIGINT)
    output, _ = driver.communicate(timeout=120)
    assert driver.returncode == 130, output[-3000:]
    before = pd.read_parquet(folder / "results" / f"digits-{ended}.parquet")
    [state] = (folder / "tune" / "digits").glob("experiment_state-*.json")
    snapshot = json.loads(state.read_text())
    for i, (trial_json, metadata) in enumerate(snapshot["trial_data"]):
        trial = json.loads(trial_json)
        if trial["trial_id"] == ended:  # as a snapshot taken before it ended has it
            trial["status"] = "RUNNING"
            snapshot["trial_data"][i] = [json.dumps(trial), metadata]
            break
    else:
        pytest.fail(f"the snapshot does not know trial {ended}")
    state.write_text(json.dumps(snapshot))

    result = run_sweep("resume", str(folder), "--num-cpus", "2", "--no-analyze")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert f"trial {ended}: ended (finished) before the sweep was interrupted" in output
    assert "optuna_search" not in output and "already finished" not in output, output[-3000:]
    after = pd.read_parquet(folder / "results" / f"digits-{ended}.parquet")
    pd.testing.assert_frame_equal(after, before)  # not trained again: placement and times too
    assert_log_complete(pd.read_parquet(folder / "results"), trials=4)
    study = optuna.load_study(study_name="e-digits", storage=f"sqlite:///{folder}/optuna.db")
    assert len([t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]) == 4


@pytest.mark.parametrize("lines_read", [1, 0])
def test_a_reader_that_goes_away_stops_the_sweep_resumably(tmp_path, lines_read):
    # `sweep run | head -1` (or `| true`: gone before the first line): stopped as SIGPIPE would
    # stop it, but with the line to resume it (stderr is still there) and no traceback
    folder = tmp_path / "p"
    driver = subprocess.Popen(
        [*sweep_command(), "run", "--config", str(long_spec(tmp_path, trials=3, epochs=25)),
         "--num-cpus", "2", "--storage", str(tmp_path), "--name", "p"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    for _ in range(lines_read):
        assert driver.stdout.readline()
    driver.stdout.close()  # the reader goes
    _, errors = driver.communicate(timeout=240)
    assert driver.returncode == 128 + signal.SIGPIPE, errors[-3000:]
    assert "Traceback" not in errors and "BrokenPipeError" not in errors, errors[-3000:]
    assert errors.strip().splitlines()[-1] == (
        f"sweep run: interrupted (SIGPIPE); continue it with `sweep resume {folder}`")
    result = run_sweep("resume", str(folder), "--num-cpus", "2", "--no-analyze")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert_log_complete(pd.read_parquet(folder / "results"), trials=3)


def start_leased_driver(tmp_path: Path, name: str, env: dict[str, str], *extra: str,
                        output: int = subprocess.DEVNULL) -> subprocess.Popen:
    """`sweep run` of 3 long trials, one at a time, in a session of its own, with the lease's
    timings in `env`."""
    return subprocess.Popen(
        [*sweep_command(), "run", "--config", str(long_spec(tmp_path, trials=3, epochs=25)),
         "--num-cpus", "2", "--max-concurrent-trials", "1", "--storage", str(tmp_path),
         "--name", name, *extra], stdout=output, stderr=output, text=True,
        start_new_session=True, env={**os.environ, **env})


def test_a_second_driver_is_refused_and_a_stale_lock_taken_over(tmp_path):
    folder = tmp_path / "l"
    env = {"SWEEP_LOCK_STALE_S": "6", "SWEEP_LOCK_HEARTBEAT_S": "1"}
    first = start_leased_driver(tmp_path, "l", env)
    wait_for_running_trial(folder / "results", min_rows=3)
    second = run_sweep("resume", str(folder), "--num-cpus", "2", env=env)
    assert second.returncode == 2, second.stdout[-2000:] + second.stderr[-2000:]
    assert f"{folder} is in use by another driver (host " in second.stderr
    assert len(second.stderr.strip().splitlines()) == 1
    os.killpg(first.pid, signal.SIGKILL)  # the holder dies without releasing its lease
    first.wait()
    lease = json.loads((folder / "lock.json").read_text())
    # As if it had run on another host: only staleness frees its lease.
    (folder / "lock.json").write_text(json.dumps({**lease, "host": "elsewhere"}))
    refused = run_sweep("resume", str(folder), "--num-cpus", "2", env=env)
    assert refused.returncode == 2 and "host elsewhere" in refused.stderr, refused.stderr
    time.sleep(7)  # the lease goes stale
    taken = run_sweep("resume", str(folder), "--num-cpus", "2", "--no-analyze", env=env)
    assert taken.returncode == 0, taken.stdout[-3000:] + taken.stderr[-3000:]
    assert_log_complete(pd.read_parquet(folder / "results"), trials=3)
    assert not (folder / "lock.json").exists()


def test_a_driver_paused_while_another_took_the_sweep_over_steps_aside(tmp_path):
    # SIGSTOP stands for a suspended laptop or a driver stalled past the lease's staleness
    folder = tmp_path / "p"
    env = {"SWEEP_LOCK_STALE_S": "4", "SWEEP_LOCK_HEARTBEAT_S": "0.5"}
    first = start_leased_driver(tmp_path, "p", env, "--no-analyze", output=subprocess.PIPE)
    worker = int(wait_for_running_trial(folder / "results", min_rows=3)["pid"])
    paused_token = json.loads((folder / "lock.json").read_text())["token"]
    os.kill(first.pid, signal.SIGSTOP)  # the driver alone: its Ray and its trial's worker go on
    time.sleep(5)  # its lease goes stale
    second = subprocess.Popen(
        [*sweep_command(), "resume", str(folder), "--num-cpus", "2", "--no-analyze"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
        env={**os.environ, **env})
    try:
        deadline = time.monotonic() + 120
        while json.loads((folder / "lock.json").read_text() or "{}").get(
                "token", paused_token) == paused_token:
            assert time.monotonic() < deadline and second.poll() is None, second.stderr
            time.sleep(0.2)
        os.kill(first.pid, signal.SIGCONT)
        _, first_err = first.communicate(timeout=60)
        assert first.returncode == 3, first_err[-3000:]
        assert "this driver lost" in first_err and "holds it now" in first_err, first_err
        # it went as a killed driver goes: its Ray, and its trial's worker with it
        deadline = time.monotonic() + 30
        while Path(f"/proc/{worker}").exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not Path(f"/proc/{worker}").exists()
        out, err = second.communicate(timeout=600)
        assert second.returncode == 0, out[-3000:] + err[-3000:]
    finally:
        for driver in (first, second):
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGCONT)
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
    assert_log_complete(pd.read_parquet(folder / "results"), trials=3)
    assert not (folder / "lock.json").exists()


def test_early_stopped_trials_are_named_in_the_log(tmp_path):
    spec = write_spec(tmp_path / "asha.yaml", datasets=["digits"], num_samples=6,
                      scheduler="asha", fixed={"width": 8, "finetune_epochs": 20},
                      search={"strategy": ["none"], "lr": {"low": 1e-5, "high": 3e-3, "log": True}},
                      baselines=[{"lr": 0.001}])
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "2", "--storage",
                       str(tmp_path), "--name", "asha")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "asha" / "results")
    last = df.sort_values("evaluation").groupby("trial_id").last()
    stopped = last[last["status"] == "stopped"]
    assert len(stopped) >= 1, last[["status", "epoch"]]
    assert (stopped["stop_reason"] == "early_stopped").all()
    assert (stopped["epoch"] < 20).all()  # stopped before its nominal length
    assert (last["status"].isin(["finished", "stopped"])).all()
    # Every row before a trial's last says running; the progress line names the stop.
    for trial_id in stopped.index:
        rows = df[df["trial_id"] == trial_id].sort_values("evaluation")
        assert (rows["status"].iloc[:-1] == "running").all()
        assert f"{trial_id} (" in result.stdout
    assert re.search(r"stopped after [\d.]+ of \d+ epochs", result.stdout)
    study = optuna.load_study(study_name="asha-digits",
                              storage=f"sqlite:///{tmp_path}/asha/optuna.db")
    told = {t.user_attrs["tune_trial_id"]: t.state for t in study.trials
            if "tune_trial_id" in t.user_attrs}  # not the sampler's repeats (never run)
    assert told == {trial_id: optuna.trial.TrialState.PRUNED if status == "stopped" else
                    optuna.trial.TrialState.COMPLETE for trial_id, status in last["status"].items()}


def test_a_ctrl_c_under_another_handler_still_names_the_folder_to_resume(tmp_path, monkeypatch):
    # Ray and Tune may hold SIGINT for a moment (their own handlers, or Python's default one):
    # Ctrl-C then arrives as KeyboardInterrupt, and the sweep folder already exists
    from search_spaces import load_preset
    from sweep import launcher
    from sweep.settings import SweepSettings

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(launcher, "_run_studies", interrupted)
    settings = SweepSettings(name="s", storage=str(tmp_path))
    with pytest.raises(launcher.Interrupted) as caught:
        launcher._run_datasets(load_preset("quick"), settings, {}, done=[])
    assert (caught.value.signum, caught.value.folder) == (signal.SIGINT, settings.folder)

"""Sweeps on a real local Ray (started by `sweep run` itself), with real Parquet logs."""

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
import yaml
from cli import run_sweep, sweep_command
from conftest import sweep_root
from locations import Location

from trainables import TrialConfig, run_trial

pytestmark = pytest.mark.slow

CONTRACT_COLUMNS = (
    "sweep, trial_id, dataset, model, params, strategy, subset_size, subset_fraction, "
    "overdetermination_ratio, pretrain_epochs, lr, batch_size, seed, phase, epoch, step, "
    "samples_seen, train_flops, eval_flops, train_loss, test_loss, test_accuracy, wall_time_s, "
    "status, node, device"
).split(", ")
TIMING = ["wall_time_s", "train_time_s"]


def write_spec(path: Path, **spec) -> Path:
    path.write_text(yaml.safe_dump(spec))
    return path


def small_spec(tmp_path: Path, trials: int, epochs: int, size_by: str = "fraction") -> Path:
    """Ordinary training and random-subset pretraining on digits, a few seeds."""
    size = ({"subset_fraction": {"low": 0.1, "high": 0.5}} if size_by == "fraction"
            else {"overdetermination_ratio": {"low": 0.5, "high": 2.0}})
    return write_spec(tmp_path / "spec.yaml", datasets=["digits"], num_samples=trials,
                      fixed={"width": 8, "finetune_epochs": epochs},
                      search={"strategy": ["none", "random"], "size_by": [size_by], **size,
                              "pretrain_epochs": {"low": 3, "high": 8}, "seed": [0, 1, 2]},
                      baselines=[{"seed": 0}])


def log_files(folder: Location) -> list[str]:
    """The result-log files a sweep folder holds so far."""
    return [name for name in (folder / "results").files() if name.endswith(".parquet")]


def assert_log_complete(df: pd.DataFrame, trials: int) -> None:
    """Each trial: evaluations 0..n-1 once each, in order, ending with a finished row."""
    assert df["trial_id"].nunique() == trials
    assert not df.duplicated(["trial_id", "evaluation"]).any()
    for trial_id, rows in df.groupby("trial_id"):
        rows = rows.sort_values("evaluation")
        assert rows["evaluation"].tolist() == list(range(len(rows))), trial_id
        assert rows["status"].iloc[-1] in ("finished", "diverged"), trial_id
        assert (rows["status"].iloc[:-1] == "running").all(), trial_id
        assert rows["samples_seen"].is_monotonic_increasing, trial_id


# What a trial's records must repeat exactly when it is run again from its logged config. Losses
# and accuracies are not compared: PyTorch's CPU kernels are not bitwise reproducible across
# processes (they drift by ~1e-6 within a few hundred steps), only within one.
BOOKKEEPING = ["evaluation", "phase", "step", "samples_seen", "train_flops", "eval_flops",
               "subset_size"]


def assert_rows_match_replay(rows: pd.DataFrame) -> None:
    """The trial's logged rows are exactly the records it makes when run alone, in-process."""
    alone = pd.DataFrame(run_trial(TrialConfig.from_dict(json.loads(rows["config_json"].iloc[0]))))
    logged = rows.sort_values("evaluation")[BOOKKEEPING].reset_index(drop=True)
    pd.testing.assert_frame_equal(logged.fillna(-1), alone[BOOKKEEPING].fillna(-1),
                                  check_dtype=False)  # a baseline has no subset_size


OUTPUT: dict[str, subprocess.CompletedProcess] = {}  # the quick sweep's run, by its folder


@pytest.fixture(scope="module", params=["local", "s3"])
def quick(request, tmp_path_factory) -> Location:
    storage = sweep_root(request.param, request, tmp_path_factory)
    result = run_sweep("run", "--preset", "quick", "--num-samples", "6", "--num-cpus", "2",
                       "--storage", str(storage), "--name", "quick", "--seed", "3")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    OUTPUT[str(storage / "quick")] = result
    return storage / "quick"


# What a sweep must not print unless asked to (--verbose): its libraries' start-up chatter.
CHATTER = ["Started a local Ray instance", "Token authentication", "tensorboard", "TensorBoard",
           "A new study created", "Configuration for experiment", "View detailed results",
           "INFO "]


def test_quick_sweep_is_quiet_and_ends_with_the_answer(quick):
    result = OUTPUT[str(quick)]
    output = result.stdout + result.stderr
    assert not [line for line in output.splitlines() if any(c in line for c in CHATTER)]
    lines = result.stdout.strip().splitlines()
    # The analysis of the finished sweep: the summary table, the headline, where it is written.
    summary = next(i for i, line in enumerate(lines) if line.startswith("dataset "))
    assert lines[summary + 1].split()[:2] == ["digits", "6"]
    assert any(line.startswith("digits: ") for line in lines[summary:])  # the headline sentence
    assert lines[-1].startswith(f"wrote {quick / 'analysis'}/report.md")
    assert (quick / "analysis" / "report.md").exists()
    assert (quick / "analysis" / "frontier_digits.png").exists()


def test_quick_sweep_logs_every_evaluation_of_every_trial(quick):
    df = (quick / "results").parquet()
    assert set(CONTRACT_COLUMNS) <= set(df.columns)
    assert_log_complete(df, trials=6)
    assert (df["sweep"] == "quick").all() and (df["device"] == "cpu").all()
    assert "none" in set(df["strategy"])  # the baseline is in the log
    # Every evaluation Tune received for a trial is in the log, and nothing else.
    experiment = quick / "tune" / "digits"
    result_files = [experiment / name for name in experiment.files()
                    if name.endswith("/result.json")]
    assert len(result_files) == 6
    for result_file in result_files:
        reported = [json.loads(line) for line in result_file.read_text().splitlines()]
        trial_id = reported[0]["trial_id"]
        logged = df[df["trial_id"] == trial_id].sort_values("evaluation")
        assert logged["test_accuracy"].tolist() == [r["test_accuracy"] for r in reported]


def test_quick_sweep_rows_match_the_trials_run_alone(quick):
    df = (quick / "results").parquet()
    for _, rows in list(df.groupby("trial_id"))[:3]:
        assert_rows_match_replay(rows)


def test_quick_sweep_study_reloads_in_optuna(quick):
    study = optuna.load_study(study_name="quick-digits", storage=quick.study_url())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6
    assert [d.name for d in study.directions] == ["MAXIMIZE", "MINIMIZE"]
    df = (quick / "results").parquet()
    finals = df.sort_values("evaluation").groupby("trial_id").last()
    assert sorted(t.values[0] for t in complete) == sorted(finals["test_accuracy"])
    # the second objective is compute: training plus the small set's selection FLOPs
    assert sorted(t.values[1] for t in complete) == sorted(
        finals["train_flops"] + finals["selection_flops"].fillna(0))
    assert complete[0].params["strategy"] == "none"  # the enqueued baseline came first
    assert study.best_trials  # a Pareto front exists


def test_finished_sweep_resumes_as_a_no_op(quick):
    before = {name: f.mtime for name, f in quick.files().items()}
    result = run_sweep("resume", str(quick))
    assert result.returncode == 0, result.stderr
    assert "complete; nothing to resume" in result.stdout
    # named by its results/ folder, as `sweep run` prints where the results are
    result = run_sweep("resume", str(quick / "results"))
    assert result.returncode == 0, result.stderr
    assert f"nothing to resume. Results in {quick / 'results'}" in result.stdout
    assert {name: f.mtime for name, f in quick.files().items()} == before


def test_fractional_gpus_run_four_trials_at_once(tmp_path):
    spec = write_spec(tmp_path / "pack.yaml", datasets=["digits"], num_samples=4,
                      fixed={"width": 16, "finetune_epochs": 60},  # outlasts start-up
                      search={"strategy": ["none"], "seed": [0, 1, 2, 3]},
                      baselines=[{"seed": 0}, {"seed": 1}, {"seed": 2}, {"seed": 3}])
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "2", "--num-gpus", "1",
                       "--logical-gpus",
                       "--gpus-per-trial", "0.25", "--cpus-per-trial", "0.5",
                       "--storage", str(tmp_path), "--name", "pack")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "pack" / "results")
    assert_log_complete(df, trials=4)
    spans = df.groupby("trial_id")["unix_time"].agg(["min", "max"])
    # All four were running at one moment: the last to start began before the first ended.
    assert spans["min"].max() < spans["max"].min()
    assert sorted(df.groupby("trial_id")["seed"].first()) == [0, 1, 2, 3]


# Columns that may differ between two runs of one configuration in one process: the clocks,
# and the labels that name the run.
RUN_LABELS = ["sweep", "trial_id", "wall_time_s", "train_time_s", "trial_start_unix",
              "unix_time"]


def test_a_reused_worker_runs_a_trial_exactly_as_a_fresh_one(tmp_path):
    """Trials one after another in one worker (Tune reuses it): the third repeats the first
    one's configuration after a different one (another seed, batch size and learning rate) ran
    there, and its records are the first one's, bit for bit (RNG, threads, model, optimizer,
    data: nothing carries over). A fourth, pretraining on a random subset, runs there too."""
    first = {"seed": 0, "batch_size": 128, "lr": 0.001}
    spec = write_spec(tmp_path / "reuse.yaml", datasets=["digits"], num_samples=4,
                      fixed={"width": 4, "finetune_epochs": 3},
                      search={"strategy": ["none", "random"], "size_by": ["fraction"],
                              "subset_fraction": {"low": 0.1, "high": 0.5},
                              "pretrain_epochs": {"low": 1, "high": 3}, "seed": [0, 1],
                              "batch_size": [32, 128], "lr": [0.001, 0.003]},
                      baselines=[first, {"seed": 1, "batch_size": 32, "lr": 0.003}, first])
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "1", "--no-analyze",
                       "--storage", str(tmp_path), "--name", "reuse")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "reuse" / "results")
    assert_log_complete(df, trials=4)
    assert df["pid"].nunique() == 1  # one worker ran them all
    starts = df.groupby("trial_id")["trial_start_unix"].min().sort_values()
    one, two, three, four = (df[df["trial_id"] == t].sort_values("evaluation")
                             .drop(columns=RUN_LABELS).reset_index(drop=True)
                             for t in starts.index)
    assert two["seed"].iloc[0] == 1 and four["strategy"].iloc[0] == "random"
    pd.testing.assert_frame_equal(one, three)
    assert_rows_match_replay(four)


def test_interrupted_sweep_resumes_without_lost_or_duplicated_rows(tmp_path, store):
    spec = write_spec(tmp_path / "long.yaml", datasets=["digits"], num_samples=6,
                      fixed={"width": 8, "finetune_epochs": 15},
                      search={"strategy": ["none", "random"], "size_by": ["fraction"],
                              "subset_fraction": {"low": 0.1, "high": 0.5},
                              "pretrain_epochs": {"low": 5, "high": 10}, "seed": [0, 1, 2]},
                      baselines=[{"seed": 0}], ordinary_training_epochs=20)
    folder = store / "long"
    driver = subprocess.Popen(
        [*sweep_command(), "run", "--config", str(spec), "--num-cpus", "2",
         "--max-concurrent-trials", "2", "--storage", str(store), "--name", "long"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and len(log_files(folder)) < 3:
        time.sleep(0.5)
    assert driver.poll() is None, "the sweep ended before it could be interrupted"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver and the Ray it started, mid-sweep
    driver.wait()
    interrupted = (folder / "results").parquet()
    assert 0 < interrupted["trial_id"].nunique() < 6 or (interrupted["status"] == "running").any()

    result = run_sweep("resume", str(folder), "--num-cpus", "2")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = (folder / "results").parquet()
    assert_log_complete(df, trials=6)
    for _, rows in df.groupby("trial_id"):
        assert_rows_match_replay(rows)
    # ordinary training ran its own 20 epochs, the other trials 15
    epochs = df.groupby("trial_id").last().groupby("strategy")["finetune_epochs"].unique()
    assert {k: list(v) for k, v in epochs.items()} == {"none": [20], "random": [15]}
    study = optuna.load_study(study_name="long-digits", storage=folder.study_url())
    complete = [t for t in study.trials if t.state == optuna.trial.TrialState.COMPLETE]
    assert len(complete) == 6  # each finished trial once
    assert not [t for t in study.trials if t.state == optuna.trial.TrialState.RUNNING]


def test_trials_import_the_drivers_code_from_any_working_folder(tmp_path):
    # Ray puts the driver's working folder first on its workers' import path: from a folder
    # holding an old clone of the project, trials imported its `sweep` (a user's report)
    stale = tmp_path / "old-clone"
    (stale / "sweep").mkdir(parents=True)
    (stale / "sweep" / "__init__.py").write_text("")
    (stale / "sweep" / "results_log.py").write_text(
        'raise RuntimeError("a stale copy of the project was imported")\n')
    spec = write_spec(tmp_path / "spec.yaml", datasets=["digits"], num_samples=1,
                      fixed={"width": 4, "finetune_epochs": 1}, search={"strategy": ["none"]})
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "2", "--max-failures", "0",
                       "--storage", "sweeps", "--name", "x", "--no-analyze", cwd=stale)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-3000:]
    assert "stale copy" not in result.stderr
    assert len(pd.read_parquet(stale / "sweeps" / "x" / "results")) > 0  # relative storage


def test_presets_are_listed_one_line_each():
    result = run_sweep("presets")
    assert result.returncode == 0
    names = [line.split()[0] for line in result.stdout.splitlines()]
    assert names == ["blog", "frontier", "paper", "quick"]


def test_analyze_a_real_sweep_writes_every_file(quick, tmp_path):
    out = tmp_path / "analysis"
    result = run_sweep("analyze", str(quick), "--out", str(out))
    assert result.returncode == 0, result.stderr
    expected = {"frontier.parquet", "frontier.csv", "savings.csv", "report.md",
                "frontier_digits.png", "q_digits.png", "savings_digits.png"}
    assert expected <= {p.name for p in out.iterdir()}
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary leftovers
    frontier = pd.read_parquet(out / "frontier.parquet")
    rows = (quick / "results").parquet()
    rows = rows[rows["train_flops"] > 0]
    compute = rows["train_flops"] + rows["selection_flops"].fillna(0)
    # the frontier is the trained evaluations no other one dominates on compute (training +
    # selection FLOPs) and test accuracy: each of its rows undominated, and every such row there
    undominated = [not ((compute <= c) & (rows["test_accuracy"] >= a)
                        & ((compute < c) | (rows["test_accuracy"] > a))).any()
                   for c, a in zip(compute, rows["test_accuracy"], strict=True)]
    front = rows[undominated]
    assert sorted(zip(frontier["trial_id"], frontier["evaluation"], strict=True)) == sorted(
        zip(front["trial_id"], front["evaluation"], strict=True))
    assert (frontier["compute_flops"] == frontier["train_flops"]
            + frontier["selection_flops"].fillna(0)).all()
    report = (out / "report.md").read_text()
    assert "## digits" in report and "![frontier_digits](frontier_digits.png)" in report
    assert (out / "frontier_digits.png").read_bytes()[:4] == b"\x89PNG"
    assert result.stdout.splitlines()[1].split()[:2] == ["digits", "6"]


def test_the_paper_presets_protocol_runs_end_to_end(tmp_path):
    # The paper preset's fixed settings (lr, validation split, convergence, early evaluations)
    # and its list of subset sizes, on digits (its datasets need files this machine lacks) and
    # cut to fit a test: the two smallest subsets, fine-tuning capped at 8 epochs.
    from importlib import resources

    preset = resources.files("search_spaces") / "presets" / "paper.yaml"
    spec = yaml.safe_load(preset.read_text())
    preset_fixed = dict(spec["fixed"])
    spec.update(datasets=["digits"], num_samples=3, baselines=[{"augment": False}])
    spec["fixed"]["finetune_epochs"] = 8
    spec["search"].update(size_by=["fraction"], subset_fraction=spec["search"][
        "subset_fraction"][-2:], augment=[False])
    del spec["search"]["overdetermination_ratio"]  # never drawn by fraction alone: refused
    result = run_sweep("run", "--config", str(write_spec(tmp_path / "paper.yaml", **spec)),
                       "--num-cpus", "2", "--storage", str(tmp_path), "--name", "paper",
                       "--seed", "1")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "paper" / "results")
    assert_log_complete(df, trials=3)
    strategies = df.groupby("trial_id")["strategy"].first()
    assert set(strategies) == {"none", "random"}  # the seed draws a pretraining trial
    for trial_id, rows in df.groupby("trial_id"):
        config = json.loads(rows["config_json"].iloc[0])
        assert {k: config[k] for k in preset_fixed if k != "finetune_epochs"} == {
            k: v for k, v in preset_fixed.items() if k != "finetune_epochs"}, trial_id
        assert rows["val_accuracy"].notna().all() and rows["train_sample_loss"].notna().all()
        last = rows.sort_values("evaluation").iloc[-1]
        assert last["stop_reason"] in ("converged", "max_epochs"), trial_id
        if config["strategy"] == "random":
            assert config["subset_fraction"] in (1 / 32, 1 / 64), config
            assert config["pretrain_epochs"] == 100
            ends = rows[rows["pretrain_end"].notna()]
            assert len(ends) == 1 and ends["phase"].iloc[0] == "pretrain"
            assert ends["pretrain_end"].iloc[0] in ("converged", "max_epochs")
    # The answer at the end has the criteria the protocol measures.
    report = (tmp_path / "paper" / "analysis" / "report.md").read_text()
    assert "| lowest training-set loss | train_sample_loss |" in report
    assert re.search(r"\| train_sample_loss \| [0-9.]+ \([0-9.]+ \+1%\) \|", report)
    assert "| best accuracy | val_accuracy |" in report

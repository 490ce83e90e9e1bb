"""The sweep's progress lines count what a resumed sweep had already finished."""

from __future__ import annotations

from types import SimpleNamespace

from sweep.callbacks import ProgressCallback


def trial(trial_id: str, status: str, accuracy: float | None = None) -> SimpleNamespace:
    result = {} if accuracy is None else {
        "test_accuracy": accuracy, "strategy": "none", "status": "finished", "train_flops": 1e9,
        "selection_flops": 0, "dataset": "digits"}
    return SimpleNamespace(trial_id=trial_id, status=status, last_result=result, config={},
                           local_path=None)


def test_a_resumed_sweep_counts_the_trials_that_ended_before(capsys):
    # Restored by Tune on resume: 3 finished (one without a result on record), 1 failed, 2 to go.
    trials = [trial("a", "TERMINATED", 0.81), trial("b", "TERMINATED", 0.85),
              trial("c", "TERMINATED"), trial("d", "ERROR"), trial("e", "PENDING"),
              trial("f", "PENDING")]
    progress = ProgressCallback("digits", 6, status_every_s=0, bar=False)
    progress.setup()
    progress.on_step_begin(0, trials)
    assert (progress.finished, progress.failed) == (3, 1)
    assert progress.best_accuracy() == 0.85
    trials[4].status = "TERMINATED"
    progress.on_trial_result(1, trials, trials[4], {**trials[1].last_result,
                                                    "test_accuracy": 0.8})
    progress.on_trial_complete(1, trials, trials[4])
    progress.on_step_begin(2, trials)  # only the first step catches up
    progress.on_step_end(2, trials)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("[digits] done   e (4/6): ordinary training")
    assert lines[1] == "[digits] 0 running, 4/6 done, best accuracy so far 0.8500"


def test_a_fresh_sweep_starts_from_nothing(capsys):
    progress = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    progress.on_step_begin(0, [trial("a", "PENDING"), trial("b", "PENDING")])
    progress.on_step_end(0, [trial("a", "RUNNING"), trial("b", "PENDING")])
    assert capsys.readouterr().out.splitlines() == [
        "[digits] 1 running, 0/2 done, best accuracy so far 0.0000"]

"""The sweep's progress lines count what a resumed sweep had already finished."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

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
    assert lines[0].endswith(": test 80.00% after 1.00 GFLOPs, finished")
    assert lines[1] == "[digits] 0 running, 4/6 done, best test accuracy so far 85.00%"


def test_a_fresh_sweep_starts_from_nothing(capsys):
    progress = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    progress.on_step_begin(0, [trial("a", "PENDING"), trial("b", "PENDING")])
    progress.on_step_end(0, [trial("a", "RUNNING"), trial("b", "PENDING")])
    assert capsys.readouterr().out.splitlines() == [
        "[digits] 1 running, 0/2 done, best test accuracy so far 0.00%"]


def test_the_live_saving_is_judged_as_the_headline_is():
    # With a validation split, ordinary training's best is 0.905 on validation (on test 0.95,
    # which pretraining never reaches): the target 0.90 is reached at 20 * 0.8 / 0.805 by
    # ordinary training, at 10 by pretraining.
    progress = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    base, pre = trial("b", "RUNNING"), trial("p", "RUNNING")
    for t, strategy, points in ((base, "none", [(0, 0.1, 0.1), (20, 0.95, 0.905)]),
                                (pre, "random", [(0, 0.1, 0.1), (10, 0.93, 0.90)])):
        for flops, test, val in points:
            progress.on_trial_result(0, [base, pre], t, {
                "test_accuracy": test, "val_accuracy": val, "strategy": strategy,
                "train_flops": flops, "selection_flops": 0})
    assert progress.best_saving() == pytest.approx(20 * 0.8 / 0.805 / 10)


def test_a_done_line_says_what_the_search_judges_and_the_compute_it_counts(capsys):
    # k-means pretraining with a validation split: its compute is training plus selection
    progress = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    t = trial("k", "RUNNING")
    progress.on_trial_result(0, [t], t, {
        "test_accuracy": 0.9306, "val_accuracy": 0.9167, "strategy": "kmeans",
        "subset_size": 116, "subset_fraction": 0.081, "overdetermination_ratio": 0.307,
        "train_flops": 6.91e9, "selection_flops": 0.04e9, "status": "finished",
        "stop_reason": "patience", "dataset": "digits"})
    progress.on_trial_complete(0, [t], t)
    progress.stopped["s"] = "stopped: 80.00% at 2 GFLOPs; 85.00% reached by k with 1.5 GFLOPs"
    s = trial("s", "RUNNING")
    progress.on_trial_result(0, [t, s], s, {**trial("s", "", 0.8).last_result,
                                            "status": "running"})
    progress.on_trial_complete(0, [t, s], s)
    done = capsys.readouterr().out.splitlines()
    assert done[0].endswith(": val 91.67%, test 93.06% after 6.95 GFLOPs, finished (patience)")
    assert done[1].endswith(": test 80.00% after 1.00 GFLOPs, stopped: 80.00% at 2 GFLOPs; "
                            "85.00% reached by k with 1.5 GFLOPs")


def test_a_done_line_names_the_epochs_pretraining_ran_before_it_converged(capsys):
    progress = ProgressCallback("digits", 1, status_every_s=0, bar=False)
    t = trial("p", "RUNNING")
    settings = {"strategy": "random", "subset_size": 50, "subset_fraction": 0.5,
                "overdetermination_ratio": 2.0, "pretrain_epochs": 100, "train_flops": 1e9,
                "selection_flops": 0, "dataset": "digits", "status": "running"}
    for phase, epoch, end in (("pretrain", 10.0, None), ("pretrain", 20.25, "converged"),
                              ("finetune", 1.0, None)):
        progress.on_trial_result(0, [t], t, {**settings, "test_accuracy": 0.9, "phase": phase,
                                             "epoch": epoch, "pretrain_end": end})
    progress.on_trial_result(0, [t], t, {**settings, "test_accuracy": 0.95, "phase": "finetune",
                                         "epoch": 2.0, "status": "finished"})
    progress.on_trial_complete(0, [t], t)
    assert capsys.readouterr().out.startswith(
        "[digits] done   p (1/1): random pretraining on K=50 (50.0%, Q=2) for 20.25 of 100 "
        "epochs (converged): test 95.00%")


def test_pretraining_lengths_survive_a_resume_and_an_older_pickle(capsys):
    import pickle

    progress = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    progress.pretrain_ran["p"] = 20.25
    restored = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    restored.set_state(progress.get_state())  # Tune's snapshot of the callback's state
    assert restored.pretrain_ran == {"p": 20.25}
    # a sweep started before the callback kept them pickled it without: it still runs
    state = {k: v for k, v in progress.__getstate__().items() if k != "pretrain_ran"}
    old = pickle.loads(pickle.dumps(progress))
    old.__dict__.clear()
    old.__setstate__(state)
    t = trial("q", "RUNNING", 0.9)
    old.on_trial_result(0, [t], t, {**t.last_result, "pretrain_epochs_run": 3.5,
                                    "strategy": "random", "pretrain_epochs": 8})
    old.on_trial_complete(0, [t], t)  # a replayed logged end names how long pretraining ran
    assert "for 3.50 of 8 epochs (converged)" in capsys.readouterr().out


def test_a_search_that_ran_out_of_configurations_ends_at_what_ran(monkeypatch):
    from sweep import study

    # 3 of the 5 trials asked for: the search had nothing more to run (its space was listable)
    monkeypatch.setattr(study, "RAN_OUT", {"s-digits"})
    progress = ProgressCallback("digits", 5, status_every_s=0, bar=True, study="s-digits")
    progress.setup()
    trials = [trial(t, "TERMINATED", 0.8) for t in "abc"]
    for t in trials:
        progress.on_trial_result(0, trials, t, t.last_result)
        progress.on_trial_complete(0, trials, t)
    bar = progress._bar
    progress.on_experiment_end(trials)
    assert (progress.total, bar.total, bar.n) == (3, 3, 3)
    # a sweep that stopped otherwise (an error: Tune ends its running trials as TERMINATED)
    stopped = ProgressCallback("digits", 5, status_every_s=0, bar=False, study="t-digits")
    stopped.on_experiment_end([trial("a", "TERMINATED", 0.8), trial("b", "TERMINATED")])
    assert stopped.total == 5


def test_a_start_line_names_the_epochs_left_to_the_defaults(capsys):
    # the done line names them (from the records): the start line said nothing before
    progress = ProgressCallback("digits", 2, status_every_s=0, bar=False)
    pretrains = SimpleNamespace(trial_id="p", config={"dataset": "digits", "strategy": "random",
                                                      "subset_fraction": 0.221})
    ordinary = SimpleNamespace(trial_id="o", config={"dataset": "digits", "strategy": "none",
                                                     "finetune_epochs": 1})
    progress.on_trial_start(0, [pretrains, ordinary], pretrains)
    progress.on_trial_start(0, [pretrains, ordinary], ordinary)
    assert capsys.readouterr().out.splitlines() == [
        "[digits] start  p: random pretraining on 22.1% of the training set for 10 epochs",
        "[digits] start  o: ordinary training for 1 epoch"]

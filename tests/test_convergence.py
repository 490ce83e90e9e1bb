"""Convergence as a stop rule, on hand-made loss sequences and in a trial; targets judged on the
validation split when there is one."""

from __future__ import annotations

import io
import math

import pytest
import torch

from common.errors import ConfigError
from trainables import TrialConfig, TrialRunner, run_trial
from trainables.convergence import converged, update

TIMING = {"wall_time_s", "train_time_s"}


def config(**settings) -> TrialConfig:
    return TrialConfig.from_dict({"dataset": "digits", **settings})


def first_converged(losses: list[float], patience: int, min_delta: float) -> int | None:
    """The index of the evaluation that ends the phase, evaluations every 100 samples."""
    best, best_at = math.inf, 0
    for i, loss in enumerate(losses):
        best, best_at = update(best, best_at, loss, 100 * (i + 1), min_delta)
        if converged(best_at, 100 * (i + 1), patience, eval_every=100):
            return i
    return None


LOSSES = [1.0, 0.9, 0.895, 0.91, 0.89, 0.9, 0.95]


def test_convergence_fires_exactly_when_the_rule_says():
    # min_delta 1%: 0.9 improves on 1.0; 0.895 is not 1% below 0.9 (0.891), nor is 0.91: with
    # patience 2 the phase ends at the 4th evaluation (index 3).
    assert first_converged(LOSSES, patience=2, min_delta=0.01) == 3
    # With patience 3, 0.89 (< 0.891) improves first; then 0.9 and 0.95: 2 of 3, no end.
    assert first_converged(LOSSES, patience=3, min_delta=0.01) is None
    # With min_delta 0 every new low counts: 0.895 and 0.89 improve, so two misses in a row
    # come only at the end (0.9, 0.95); one miss is enough at 0.91.
    assert first_converged(LOSSES, patience=2, min_delta=0.0) == 6
    assert first_converged(LOSSES, patience=1, min_delta=0.0) == 3
    assert first_converged([1.0, math.nan, math.nan], patience=2, min_delta=0.0) == 2
    assert first_converged(LOSSES, patience=None, min_delta=0.0) is None


def test_patience_counts_regular_evaluations_so_early_ones_do_not_end_a_phase_sooner():
    # Best at 100 samples; evaluations at 150, 175, 200 (early, dense) then 300.
    best, best_at = update(math.inf, 0, 1.0, 100, 0.0)
    for at in (150, 175, 199):
        best, best_at = update(best, best_at, 1.0, at, 0.0)
        assert not converged(best_at, at, patience=2, eval_every=100)
    assert not converged(best_at, 256, patience=2, eval_every=100)
    assert converged(best_at, 300, patience=2, eval_every=100)


def test_an_evaluation_counts_as_the_multiple_of_eval_every_it_reached():
    # fine-tuning from 1,000 samples, every 100: evaluations at batch ends (64) past 1,100, ...
    assert not converged(1128, 1256, patience=2, eval_every=100, start=1000)
    assert converged(1128, 1320, patience=2, eval_every=100, start=1000)  # 1,100 -> 1,300
    # counted in samples (320 - 128 < 200) it would wait for one more evaluation
    assert converged(1192, 1384, patience=2, eval_every=100, start=1000)  # 1,100 -> 1,300


def test_fine_tuning_ends_when_its_loss_stops_improving():
    # min_delta 0.9: nothing after the first fine-tuning evaluation improves by 90%.
    records = run_trial(config(finetune_epochs=30, patience=2, min_delta=0.9))
    tuned = [r for r in records if r["phase"] == "finetune"]
    assert len(tuned) == 3 and tuned[-1]["epoch"] < 30
    assert records[-1]["status"] == "finished" and records[-1]["stop_reason"] == "converged"
    # Without a validation split fine-tuning watches the training-set loss.
    long = run_trial(config(finetune_epochs=3, patience=1000))
    assert long[-1]["stop_reason"] == "max_epochs"


def test_pretraining_ends_at_convergence_and_fine_tuning_follows():
    settings = dict(strategy="random", subset_fraction=0.2, pretrain_epochs=200,
                    finetune_epochs=2, patience=2, min_delta=0.9, seed=3)
    records = run_trial(config(**settings))
    pre = [r for r in records if r["phase"] == "pretrain"]
    assert len(pre) == 3  # the first sets the best; two more without a 90% improvement
    assert [r["pretrain_end"] for r in pre] == [None, None, "converged"]
    assert pre[-1]["epoch"] < 200 and all(r["small_set_loss"] > 0 for r in pre)
    tuned = [r for r in records if r["phase"] == "finetune"]
    assert tuned and tuned[0]["epoch"] > 0 and tuned[-1]["stop_reason"] == "converged"
    assert all(r["small_set_loss"] is None for r in tuned)
    # A state saved with the record that ended pretraining resumes in fine-tuning.
    saved = io.BytesIO()
    first = TrialRunner(config(**settings))

    class Interrupted(Exception):
        pass

    def crash(record):
        if record["pretrain_end"] == "converged":
            torch.save(first.state_dict(), saved)
            raise Interrupted

    with pytest.raises(Interrupted):
        first.run(crash)
    saved.seek(0)
    second = TrialRunner(config(**settings))
    second.load_state_dict(torch.load(saved, weights_only=True))
    after = second.run()

    def strip(rs):
        return [{k: v for k, v in r.items() if k not in TIMING} for r in rs]

    assert strip(after) == strip(tuned)


def test_a_pretraining_that_runs_its_epochs_says_so():
    records = run_trial(config(strategy="class_mean", pretrain_epochs=3, finetune_epochs=1))
    pre = [r for r in records if r["phase"] == "pretrain"]
    assert pre[-1]["pretrain_end"] == "max_epochs" and pre[-1]["epoch"] == 3
    assert all(r["pretrain_end"] is None for r in records if r is not pre[-1])


def test_target_accuracy_is_judged_on_the_validation_split_when_there_is_one():
    records = run_trial(config(finetune_epochs=20, validation_fraction=0.2,
                               target_accuracy=0.8))
    last, before = records[-1], records[-2]
    assert last["stop_reason"] == "target_accuracy"
    assert last["val_accuracy"] >= 0.8 > before["val_accuracy"]
    on_test = run_trial(config(finetune_epochs=20, validation_fraction=0.2,
                               target_accuracy=0.8, target_on="test"))
    assert on_test[-1]["test_accuracy"] >= 0.8 > on_test[-2]["test_accuracy"]


def test_target_loss_stops_on_the_watched_loss():
    records = run_trial(config(finetune_epochs=20, validation_fraction=0.2, target_loss=0.5))
    assert records[-1]["stop_reason"] == "target_loss"
    assert records[-1]["val_loss"] <= 0.5 < records[-2]["val_loss"]


@pytest.mark.parametrize("settings, message", [
    ({"patience": 0}, "patience must be >= 1"),
    ({"min_delta": 1.0}, "min_delta must be in"),
    ({"monitor": "val"}, "monitor val needs a validation split"),
    ({"target_on": "validation"}, "target_on validation needs a validation split"),
    ({"patience": 3, "train_eval_size": 0}, "give train_eval_size > 0"),
    # fine-tuning watches the validation loss, but pretraining would watch nothing
    ({"patience": 3, "train_eval_size": 0, "validation_fraction": 0.2, "strategy": "random",
      "subset_fraction": 0.1, "pretrain_epochs": 5}, "small set's loss while pretraining"),
    ({"validation_fraction": 0.6}, "validation_fraction must be in"),
    ({"target_on": "train"}, "unknown target_on 'train'"),
])
def test_bad_convergence_settings_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        config(**settings)


def test_early_evaluations_are_log_spaced_at_the_start_of_each_phase():
    settings = dict(strategy="random", subset_fraction=0.5, pretrain_epochs=2, finetune_epochs=1,
                    eval_every=640, batch_size=64)
    plain = run_trial(config(**settings))
    early = run_trial(config(**settings, early_evals=3))

    def samples(records, phase):
        """Samples into the phase at each of its evaluations."""
        start = 0 if phase == "pretrain" else max(
            r["samples_seen"] for r in records if r["phase"] == "pretrain")
        return [r["samples_seen"] - start for r in records if r["phase"] == phase]

    # Pretraining: 719 examples, batches of 64 (the 12th has 15), 2 epochs. Evaluations come at
    # the first step at or past each point of the schedule, and at the end (1,438).
    assert samples(plain, "pretrain") == [640, 1295, 1438]  # 640, 1,280
    assert samples(early, "pretrain") == [128, 192, 320, 640, 1295, 1438]  # 80, 160, 320, ...
    # Fine-tuning (1,437 examples, 1 epoch) restarts the schedule from its own start.
    assert samples(plain, "finetune") == [640, 1280, 1437]
    assert samples(early, "finetune") == [128, 192, 320, 640, 1280, 1437]
    # The same training: the last records agree but for the evaluation FLOPs and indices.
    same = ("train_flops", "samples_seen", "test_accuracy", "test_loss")
    assert {k: early[-1][k] for k in same} == {k: plain[-1][k] for k in same}
    assert early[-1]["eval_flops"] > plain[-1]["eval_flops"]

import io
import math

import pytest
import torch

from trainables import RECORD_COLUMNS, TrialConfig, TrialRunner, run_trial

TIMING = {"wall_time_s", "train_time_s"}


def config(**settings):
    return TrialConfig.from_dict({"dataset": "digits", **settings})


def without_timing(records):
    return [{k: v for k, v in r.items() if k not in TIMING} for r in records]


def test_records_carry_every_result_log_column():
    records = run_trial(config(strategy="stratified", subset_fraction=0.2, pretrain_epochs=1,
                               finetune_epochs=1))
    contract = ("sweep, trial_id, dataset, model, params, strategy, subset_size, subset_fraction, "
                "overdetermination_ratio, pretrain_epochs, lr, batch_size, seed, phase, epoch, "
                "step, samples_seen, train_flops, eval_flops, train_loss, test_loss, "
                "test_accuracy, wall_time_s, status").split(", ")
    for record in records:
        assert list(record) == list(RECORD_COLUMNS)
        assert set(contract) <= set(record)
    first, last = records[0], records[-1]
    assert (first["phase"], first["samples_seen"], first["train_loss"]) == ("init", 0, None)
    assert last["subset_size"] == 288 and last["subset_fraction"] == 288 / 1437
    assert last["overdetermination_ratio"] == pytest.approx(288 * 10 / last["params"])
    assert [r["status"] for r in records] == ["running"] * (len(records) - 1) + ["finished"]
    assert [r["evaluation"] for r in records] == list(range(len(records)))


def test_phases_in_order_and_pretraining_ends_with_an_evaluation():
    records = run_trial(config(strategy="random", subset_fraction=0.1, pretrain_epochs=3,
                               finetune_epochs=2))
    phases = [r["phase"] for r in records]
    assert phases == sorted(phases, key=["init", "pretrain", "finetune"].index)
    last_pretrain = [r for r in records if r["phase"] == "pretrain"][-1]
    assert last_pretrain["epoch"] == 3.0 and last_pretrain["samples_seen"] == 3 * 144
    assert records[-1]["samples_seen"] == 3 * 144 + 2 * 1437


def test_evaluations_are_finer_than_an_epoch():
    records = run_trial(config(finetune_epochs=1, eval_every=200))
    seen = [r["samples_seen"] for r in records]
    # at the first batch end (64 images) past each multiple of 200: the schedule does not drift
    # (before, 200 after the last evaluation: 256, 512, ..., every 256 samples)
    assert seen == [0, 256, 448, 640, 832, 1024, 1216, 1408, 1437]
    default = run_trial(config(finetune_epochs=1))
    # default: every quarter epoch (360 samples), at batch ends, and the epoch's end
    assert [r["samples_seen"] for r in default] == [0, 384, 768, 1088, 1437]


def test_patience_is_that_many_regular_evaluations_without_improvement():
    records = run_trial(config(finetune_epochs=30, eval_every=100, patience=8, min_delta=0.9))
    # min_delta 0.9: only the first fine-tuning evaluation sets a best; 8 more end the phase
    # (before, 800 samples counted from an evaluation at a batch end could be 7 evaluations)
    tuned = [r for r in records if r["phase"] == "finetune"]
    assert len(tuned) == 1 + 8 and tuned[-1]["stop_reason"] == "converged"
    assert [r["samples_seen"] for r in tuned] == [128, 256, 320, 448, 512, 640, 704, 832, 960]


def test_same_seed_same_records_other_seed_other_records():
    settings = dict(strategy="kmeans", overdetermination_ratio=0.5, pretrain_epochs=2,
                    finetune_epochs=2, augment=True)
    a, b = run_trial(config(seed=1, **settings)), run_trial(config(seed=1, **settings))
    assert without_timing(a) == without_timing(b)
    c = run_trial(config(seed=2, **settings))
    assert [r["test_loss"] for r in a] != [r["test_loss"] for r in c]


@pytest.mark.parametrize("stop_at", [0, 3, 7])
def test_resume_from_any_evaluation_repeats_and_skips_nothing(stop_at):
    settings = dict(strategy="random", subset_fraction=0.25, pretrain_epochs=2,
                    finetune_epochs=2, augment=True, seed=5, eval_every=150)
    full = run_trial(config(**settings))

    class Interrupted(Exception):
        pass

    saved = io.BytesIO()
    first = TrialRunner(config(**settings))

    def crash_after(record):
        if record["evaluation"] == stop_at:
            torch.save(first.state_dict(), saved)
            raise Interrupted

    before = []
    with pytest.raises(Interrupted):
        first.run(lambda r: (before.append(r), crash_after(r)))
    saved.seek(0)
    second = TrialRunner(config(**settings))
    second.load_state_dict(torch.load(saved, weights_only=True))
    after = second.run()
    assert without_timing(before + after) == without_timing(full)


@pytest.mark.parametrize("saved_flops", [True, False])  # False: a state saved before it had them
def test_a_resumed_k_means_trial_takes_its_small_set_from_its_state(monkeypatch, saved_flops):
    import trainables.subsets as subsets

    settings = dict(strategy="kmeans", subset_fraction=0.1, pretrain_epochs=3, finetune_epochs=1,
                    seed=3, eval_every=150)
    full = run_trial(config(**settings))
    first = TrialRunner(config(**settings))
    records = []

    def stop_after(record):
        records.append(record)
        if record["evaluation"] == 2:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        first.run(stop_after)
    state = first.state_dict()
    assert state["small"]["selection_flops"] == full[0]["selection_flops"] > 0
    if not saved_flops:
        del state["small"]["selection_flops"]
    built = []
    real = subsets.kmeans_per_class
    monkeypatch.setattr(subsets, "kmeans_per_class",
                        lambda *args, **kwargs: built.append(1) or real(*args, **kwargs))
    second = TrialRunner(config(**settings))
    saved = io.BytesIO()
    torch.save(state, saved)
    saved.seek(0)
    second.load_state_dict(torch.load(saved, weights_only=True))
    after = second.run()
    assert without_timing(records + after) == without_timing(full)
    assert len(built) == (0 if saved_flops else 1)  # k-means ran again only for its FLOPs


def test_target_accuracy_stops_fine_tuning():
    records = run_trial(config(finetune_epochs=20, target_accuracy=0.8))
    last = records[-1]
    assert last["stop_reason"] == "target_accuracy" and last["test_accuracy"] >= 0.8
    assert all(r["test_accuracy"] < 0.8 for r in records[:-1])
    assert last["epoch"] < 20


def test_flops_budget_stops_the_trial():
    per_sample = TrialRunner(config()).ledger.per_train_sample
    records = run_trial(config(flops_budget=per_sample * 1000))
    last = records[-1]
    assert last["stop_reason"] == "flops_budget"
    assert 1000 <= last["samples_seen"] < 1000 + 64  # the step that crossed the budget


def test_a_diverging_loss_ends_the_trial_as_diverged():
    records = run_trial(config(lr=1e6, finetune_epochs=5))
    assert records[-1]["status"] == "diverged" and records[-1]["stop_reason"] == "diverged"
    assert not math.isfinite(records[-1]["train_loss"])
    assert records[0]["status"] == "running"  # the records before it are kept
    assert records[-1]["samples_seen"] < 5 * 1437


def test_optimizer_state_is_carried_over_unless_reset():
    settings = dict(strategy="class_mean", pretrain_epochs=5, finetune_epochs=1)
    carried = TrialRunner(config(**settings))
    carried.run()
    reset = TrialRunner(config(reset_optimizer=True, **settings))
    reset.run()
    # Adam's step count: carried over from pretraining (5 steps of 10 images) or restarted.
    carried_steps = next(iter(carried.optimizer.state.values()))["step"].item()
    reset_steps = next(iter(reset.optimizer.state.values()))["step"].item()
    assert (carried_steps, reset_steps) == (5 + 23, 23)



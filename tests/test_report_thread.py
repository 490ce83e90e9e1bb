"""The trial's reporting thread and its saved states: records reach Tune in order and once,
training runs at most one record ahead of the driver, a stop is obeyed within a step, and
states are saved at most every SAVE_EVERY_S. (Real sweeps in test_sweep and test_faults run the
same code under Ray Tune.)"""

from __future__ import annotations

import threading
import time

import pytest
import torch

from trainables import report_thread, tune_adapter
from trainables.report_thread import ReportThread


class Driver:
    """Stands in for Tune's side of `tune.report`: takes a record, and returns only when the test
    lets it (as Tune returns once the driver asks for the next result); `stop()` makes the
    pending and every later report raise SystemExit, as Tune's does when it ends a trial."""

    def __init__(self) -> None:
        self.taken: list[dict] = []
        self.release = threading.Semaphore(0)
        self.arrived = threading.Semaphore(0)
        self.stopping = False

    def report(self, record: dict) -> None:
        self.taken.append(record)
        self.arrived.release()
        self.release.acquire()
        if self.stopping:
            raise SystemExit(0)

    def stop(self) -> None:
        self.stopping = True
        self.release.release()


def test_fast_records_are_pipelined_one_deep_and_arrive_in_order():
    driver = Driver()
    reporter = ReportThread(driver.report)
    reporter.send({"evaluation": 0})  # fast: handed over without waiting for the driver
    assert driver.arrived.acquire(timeout=5)
    handed = threading.Event()

    def second() -> None:
        reporter.send({"evaluation": 1})  # waits until the driver took evaluation 0
        handed.set()

    worker = threading.Thread(target=second)
    worker.start()
    assert not handed.wait(0.3), "training ran two records ahead of the driver"
    driver.release.release()
    assert handed.wait(5)
    assert driver.arrived.acquire(timeout=5)
    driver.release.release()
    reporter.flush()
    reporter.stop()
    worker.join()
    assert [r["evaluation"] for r in driver.taken] == [0, 1]


def test_a_slow_record_waits_for_the_driver(monkeypatch):
    monkeypatch.setattr(report_thread, "PIPELINE_BELOW_S", 0.05)
    driver = Driver()
    reporter = ReportThread(driver.report)
    time.sleep(0.1)  # the record took longer than PIPELINE_BELOW_S to compute
    returned = threading.Event()
    worker = threading.Thread(target=lambda: (reporter.send({"evaluation": 0}), returned.set()))
    worker.start()
    assert driver.arrived.acquire(timeout=5)
    assert not returned.wait(0.3), "a slow record must be sent synchronously"
    driver.release.release()
    assert returned.wait(5)
    worker.join()
    reporter.stop()


def test_a_stop_is_raised_at_the_next_record_and_nothing_is_sent_after_it():
    driver = Driver()
    reporter = ReportThread(driver.report)
    reporter.send({"evaluation": 0})
    assert driver.arrived.acquire(timeout=5)
    driver.stop()  # the driver judged evaluation 0 and ends the trial
    with pytest.raises(SystemExit):
        reporter.send({"evaluation": 1})
    with pytest.raises(SystemExit):
        reporter.flush()
    reporter.stop()
    assert [r["evaluation"] for r in driver.taken] == [0]


def test_a_stopped_trial_stops_training_within_a_step_not_at_its_next_evaluation(monkeypatch):
    # Tune ends the trial as it takes the first record; the training thread used to learn of it
    # only at its next evaluation (1,400 samples, 22 steps on), training on meanwhile
    from trainables import TrialConfig, TrialRunner

    def stops_at_once(record: dict) -> None:
        raise SystemExit(0)

    monkeypatch.setattr(report_thread, "PIPELINE_BELOW_S", 60)  # record 0 never waits for it

    runner = TrialRunner(TrialConfig.from_dict({"dataset": "digits", "finetune_epochs": 3,
                                                "eval_every": 1400, "batch_size": 64}))
    reporter = ReportThread(stops_at_once)
    made = []
    with pytest.raises(SystemExit):
        runner.run(lambda record: (made.append(record), reporter.send(record)),
                   after_step=reporter.check)
    reporter.stop()
    assert [r["evaluation"] for r in made] == [0]
    assert 0 < runner.progress.samples_seen < 1400


def test_an_error_in_sending_reaches_the_training_thread():
    def broken(record: dict) -> None:
        raise ValueError("not a metric")

    reporter = ReportThread(broken)
    reporter.send({"evaluation": 0})
    with pytest.raises(ValueError, match="not a metric"):
        reporter.flush()
    reporter.stop()


def test_the_thread_ends_after_stop():
    driver = Driver()
    reporter = ReportThread(driver.report)
    reporter.send({"evaluation": 0})
    driver.release.release()
    reporter.flush()
    reporter.stop()
    reporter._thread.join(timeout=5)
    assert not reporter._thread.is_alive()


def test_states_are_saved_at_most_every_save_every_s_and_pruned(tmp_path):
    states = tune_adapter.TrialStates(str(tmp_path / "t"))
    assert not states.due()  # the trial just started
    states.saved_at -= tune_adapter.SAVE_EVERY_S
    assert states.due()
    for evaluation in range(5):
        states.save(evaluation, {"w": torch.tensor([float(evaluation)])}, covered=3)
    assert not states.due()
    # The log holds up to evaluation 3: the two newest of those stay, and 4, which it lacks.
    assert states.evaluations() == [2, 3, 4]
    evaluation, state = states.load_latest(at_most=3)
    assert evaluation == 3 and state["w"].item() == 3.0

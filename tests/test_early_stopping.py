"""The anytime-frontier early-stopping rule (`sweep.early_stopping`) on hand-made learning curves
whose decisions are known, and its settings as a sweep file gives them."""

from __future__ import annotations

import math
import re

import pytest

from common.errors import ConfigError
from search_spaces.spec import parse_spec
from search_spaces.stopping import FrontierOptions
from sweep.early_stopping import AnytimeFrontier, FrontierRule, Point, in_pretraining

N = 100  # training examples
PER_SAMPLE = 10  # training FLOPs per example: one full-set epoch is 1,000 FLOPs
# Rungs (first at 0.5 epoch, eta 3): 500, 1,500, 4,500, ... FLOPs. Another trial dominates at no
# more compute than the trial's own (flops_factor 1) unless a test says otherwise.


def options(**settings) -> FrontierOptions:
    return FrontierOptions(**{"first_rung": 0.5, "flops_factor": 1.0, **settings})


def row(trial: str, evaluation: int, compute: float, accuracy: float, strategy: str = "none",
        phase: str = "finetune", epoch: float = 1.0, pretrain_epochs: int = 0,
        selection: float = 0.0) -> dict:
    return {"trial_id": trial, "evaluation": evaluation, "train_flops": compute - selection,
            "selection_flops": selection, "test_accuracy": accuracy, "strategy": strategy,
            "phase": phase, "epoch": epoch, "pretrain_epochs": pretrain_epochs,
            "flops_per_sample": PER_SAMPLE}


def curve(trial: str, points: list[tuple[float, float]], **kwargs) -> list[dict]:
    return [row(trial, i, c, a, **kwargs) for i, (c, a) in enumerate(points)]


# Ordinary training: the curve every other trial is measured against.
ORDINARY = curve("ordinary", [(0, 0.10), (250, 0.50), (500, 0.70), (750, 0.80), (1000, 0.85),
                              (1500, 0.90), (2000, 0.92), (3000, 0.93), (4500, 0.94)])


def pretraining(trial: str, pretrain: list[tuple[float, float]],
                finetune: list[tuple[float, float]], strategy: str = "random",
                selection: float = 0.0) -> list[dict]:
    """A pretraining trial: init, `pretrain` evaluations (the last one ends pretraining, at its
    10th epoch), then `finetune` evaluations."""
    epochs = 10
    rows = [row(trial, 0, selection, 0.1, strategy, "init", 0.0, epochs, selection)]
    for i, (c, a) in enumerate(pretrain, start=1):
        epoch = epochs * i / len(pretrain)
        rows.append(row(trial, i, c, a, strategy, "pretrain", epoch, epochs, selection))
    for i, (c, a) in enumerate(finetune, start=len(rows)):
        rows.append(row(trial, i, c, a, strategy, "finetune", 1.0, epochs, selection))
    return rows


def replay(rule: FrontierRule, *curves: list[dict]) -> dict[str, list]:
    """Feed curves one evaluation at a time, round robin (as trials running side by side
    report); stop feeding a trial once it is stopped. Returns each trial's verdicts."""
    pending = [list(c) for c in curves]
    stopped: set[str] = set()
    while any(pending):
        for rows in pending:
            if not rows:
                continue
            record = rows.pop(0)
            if record["trial_id"] in stopped:
                rows.clear()
                continue
            verdict = rule.on_result(record)
            if verdict is not None and verdict.stop:
                stopped.add(record["trial_id"])
                rows.clear()
    return {c[0]["trial_id"]: rule.verdicts(c[0]["trial_id"]) for c in curves}


def judged_at(verdicts: list) -> list[tuple[float, bool]]:
    return [(v.point.compute, v.stop) for v in verdicts]


def test_a_dominated_trial_stops_at_its_first_rung_and_a_frontier_setting_one_runs_on():
    rule = FrontierRule(options(stop_ordinary=True), N)
    # Learns more slowly: 0.60 at 500 FLOPs where ordinary training had 0.70.
    slow = curve("slow", [(0, 0.10), (250, 0.40), (500, 0.60), (750, 0.70), (1000, 0.95)])
    # Ahead of ordinary training everywhere: sets the frontier, never stopped.
    fast = curve("fast", [(0, 0.10), (250, 0.60), (500, 0.75), (1000, 0.88), (1500, 0.93),
                          (2000, 0.95), (4500, 0.97)])
    verdicts = replay(rule, ORDINARY, slow, fast)
    assert judged_at(verdicts["slow"]) == [(500, True)]
    assert verdicts["slow"][0].best_other.trial_id == "ordinary"
    assert verdicts["slow"][0].best_other.accuracy == 0.70
    # fast: rungs 500, 1,500 and 4,500; ahead at each, so it runs to its end.
    assert judged_at(verdicts["fast"]) == [(500, False), (1500, False), (4500, False)]
    # Ordinary training is judged too (stop_ordinary). At 500 FLOPs it reports before fast does
    # (round robin): fast's best so far is 0.60, so it continues; at 1,500 fast has 0.93 for
    # 1,500 FLOPs against its 0.90: stopped.
    assert judged_at(verdicts["ordinary"]) == [(500, False), (1500, True)]


def test_ordinary_training_is_not_judged_by_default():
    rule = FrontierRule(options(), N)
    fast = curve("fast", [(0, 0.1), (250, 0.95), (500, 0.99)], strategy="class_mean")
    verdicts = replay(rule, fast, ORDINARY)
    assert verdicts["ordinary"] == []


def test_the_margin_is_what_another_trial_must_be_ahead_by():
    close = curve("close", [(0, 0.10), (250, 0.50), (500, 0.695)], strategy="random")
    continued = replay(FrontierRule(options(margin=0.01), N), ORDINARY, close)["close"]
    stopped = replay(FrontierRule(options(margin=0.0), N), ORDINARY, close)["close"]
    assert judged_at(continued) == [(500, False)]
    assert judged_at(stopped) == [(500, True)]


@pytest.mark.parametrize("accuracy, factor, stop", [
    (0.86, 1.0, True),  # ordinary training had 0.90 with 1,500 FLOPs
    (0.86, 1.5, False),  # with at most 1,000 it had 0.85
    (0.80, 1.5, True),  # 0.85 with 1,000 FLOPs: ahead by 5 points
    (0.80, 2.0, False),  # with at most 750 it had 0.80, not 0.81
])
def test_with_a_flops_factor_the_other_trial_must_have_spent_that_much_less(accuracy, factor,
                                                                            stop):
    rule = FrontierRule(options(flops_factor=factor), N)
    replay(rule, ORDINARY)
    behind = curve("behind", [(0, 0.1), (1500, accuracy)], strategy="random")
    assert judged_at(replay(rule, behind)["behind"]) == [(1500, stop)]


def test_a_trial_is_judged_on_its_best_accuracy_so_far():
    rule = FrontierRule(options(), N)
    replay(rule, ORDINARY)
    # 0.75 at 400 FLOPs, then a dip to 0.65 at 500 (ordinary training: 0.70 at 500): its best
    # so far, 0.75, is what it reached for that compute, so it continues.
    dip = curve("dip", [(0, 0.1), (400, 0.75), (500, 0.65)], strategy="random")
    assert judged_at(replay(rule, dip)["dip"]) == [(500, False)]
    assert rule.verdicts("dip")[0].point.accuracy == 0.75


def test_rungs_follow_the_trial_compute_and_grow_by_eta():
    rule = FrontierRule(options(first_rung=1.0, eta=2.0), N)  # 1,000, 2,000, 4,000
    lone = curve("lone", [(0, 0.1), (900, 0.5), (1100, 0.6), (1900, 0.7), (2500, 0.8),
                          (3000, 0.85), (9000, 0.9)], strategy="random")
    verdicts = replay(rule, lone)["lone"]
    # Judged at its first evaluation past each rung; a rung it jumped over is not judged again.
    assert judged_at(verdicts) == [(1100, False), (2500, False), (9000, False)]
    assert [v.rung for v in verdicts] == [1000, 2000, 4000]
    assert all(v.best_other is None for v in verdicts)  # no other trial: nothing to stop it


def test_pretraining_trials_are_judged_after_pretraining_not_during_it():
    rule = FrontierRule(options(), N)
    # A long pretraining on a subset (2,000 FLOPs, past rungs 500 and 1,500); its accuracy during
    # pretraining is far below ordinary training's at the same compute.
    long_pretraining = pretraining("subset", [(500, 0.30), (1000, 0.40), (1500, 0.45),
                                              (2000, 0.89)],
                                   [(2500, 0.93), (3000, 0.95), (5000, 0.97)])
    replay(rule, ORDINARY)  # ordinary training has run
    verdicts = replay(rule, long_pretraining)["subset"]
    # First judged at the end of pretraining (2,000 FLOPs, 0.89 vs ordinary's 0.92: 3 points
    # behind, stopped): never at the rungs it passed while pretraining.
    assert judged_at(verdicts) == [(2000, True)]
    assert verdicts[0].rung == 500


def test_a_pretraining_trial_ahead_after_pretraining_continues():
    rule = FrontierRule(options(), N)
    # Average images: pretraining costs 20 FLOPs; after it, 0.55 at 20 FLOPs. Below the first
    # rung, so not judged until fine-tuning reaches 500 FLOPs (0.80 vs ordinary's 0.70).
    means = pretraining("means", [(10, 0.40), (20, 0.55)],
                        [(270, 0.7), (520, 0.80), (1020, 0.9), (1520, 0.93), (4520, 0.95)],
                        strategy="class_mean", selection=0.0)
    replay(rule, ORDINARY)
    verdicts = replay(rule, means)["means"]
    assert judged_at(verdicts) == [(520, False), (1520, False), (4520, False)]


def test_with_an_allowance_a_long_pretraining_is_judged_mid_way():
    rule = FrontierRule(options(pretrain_allowance=2.0), N)
    long_pretraining = pretraining("subset", [(500, 0.30), (1000, 0.40), (1500, 0.45),
                                              (2000, 0.89)], [(2500, 0.95)])
    replay(rule, ORDINARY)
    verdicts = replay(rule, long_pretraining)["subset"]
    # Rung 500 passed mid-pretraining; judged once 2 x 500 FLOPs are spent: 0.40 vs 0.85.
    assert judged_at(verdicts) == [(1000, True)]


def test_a_trial_is_not_stopped_by_its_own_earlier_points_nor_when_it_diverges():
    rule = FrontierRule(options(), N)
    wobbly = curve("wobbly", [(0, 0.1), (400, 0.9), (600, 0.5), (800, math.nan),
                              (2000, 0.3)], strategy="random")
    verdicts = replay(rule, wobbly)["wobbly"]
    assert judged_at(verdicts) == [(600, False), (2000, False)]  # NaN at 800: not judged


def test_selection_flops_count_as_compute():
    rule = FrontierRule(options(), N)
    # k-means costs 400 FLOPs before any training: its first rung comes early in fine-tuning.
    kmeans = pretraining("kmeans", [(450, 0.6)], [(600, 0.9)], strategy="kmeans",
                         selection=400)
    verdicts = replay(rule, ORDINARY, kmeans)["kmeans"]
    assert judged_at(verdicts) == [(600, False)]
    assert verdicts[0].point.compute == 600  # 200 training + 400 selection


def test_an_evaluation_before_any_training_is_not_judged_even_past_a_rung():
    rule = FrontierRule(options(), N)
    # k-means costs 800 FLOPs: its evaluation of the untrained net (10%) comes past the first
    # rung (500), where ordinary training had 80%. Judged at the end of pretraining instead.
    kmeans = pretraining("kmeans", [(850, 0.6), (900, 0.88)], [(1000, 0.9)], strategy="kmeans",
                         selection=800)
    replay(rule, ORDINARY)
    assert judged_at(replay(rule, kmeans)["kmeans"]) == [(900, False)]
    # A row read back by pandas says NaN, not None, where pretraining has not ended.
    mid = {**kmeans[1], "pretrain_end": math.nan}
    assert in_pretraining(mid) and not in_pretraining({**mid, "pretrain_end": "converged"})


def test_rows_read_back_after_a_resume_join_the_frontier_once():
    rule = FrontierRule(options(), N)
    for record in ORDINARY:  # the log's rows from before the crash
        rule.observe(record)
    for record in ORDINARY[:4]:  # a resumed trial re-reports evaluations it had made
        rule.observe(record)
    slow = curve("slow", [(0, 0.1), (500, 0.6)], strategy="random")
    assert judged_at(replay(rule, slow)["slow"]) == [(500, True)]


# Ordinary training that has ended (its last row final): the target is 0.94 - 0.005 = 0.935.
ENDED = ORDINARY[:-1] + [{**ORDINARY[-1], "status": "finished"}]
RACE_ONLY = {"dominated": False}  # only the race stops trials


def test_a_trial_beaten_to_the_target_stops_even_mid_pretraining():
    rule = FrontierRule(options(**RACE_ONLY), N)
    winner = pretraining("winner", [(100, 0.5)], [(1000, 0.90), (2000, 0.94), (3000, 0.96)],
                         strategy="class_mean")
    # Still pretraining at 2,500 FLOPs, at 0.60: whatever it reaches next costs more than 2,000.
    loser = pretraining("loser", [(1000, 0.4), (1500, 0.5), (2500, 0.6), (2800, 0.7)],
                        [(4000, 0.97)])
    replay(rule, ENDED)
    verdicts = replay(rule, winner, loser)
    assert rule.target == pytest.approx(0.935)
    assert judged_at(verdicts["loser"]) == [(2500, True)]
    assert verdicts["loser"][0].best_other == Point("winner", 2000, 0.94)
    assert verdicts["loser"][0].explain() == (
        "stopped: 60.00% at 2.5e-06 GFLOPs; beaten to the target 93.50%: 94.00% reached by "
        "winner with 2e-06 GFLOPs")
    assert not any(v.stop or v.target for v in verdicts["winner"])  # first to the target


def test_a_trials_last_record_is_not_judged():
    rule = FrontierRule(options(**RACE_ONLY), N)
    winner = pretraining("winner", [(100, 0.5)], [(1000, 0.90), (2000, 0.94), (3000, 0.96)],
                         strategy="class_mean")
    # It ends (finished) at 2,500 FLOPs below the target the winner reached with 2,000: too
    # late to stop, and a "stopped" note would name a trial its log row calls finished.
    ended = curve("ended", [(0, 0.1), (500, 0.2), (1000, 0.3), (1500, 0.5), (2500, 0.8)],
                  strategy="random")
    ended[-1]["status"] = "finished"
    replay(rule, ENDED)
    verdicts = replay(rule, winner, ended)
    assert verdicts["ended"] == []
    ended[-1]["status"] = "running"  # the same point mid-trial is stopped
    assert FrontierRule.on_result(rule, {**ended[-1], "trial_id": "mid"}).stop


def test_a_trial_that_reached_the_target_or_is_not_yet_beaten_runs_on():
    rule = FrontierRule(options(**RACE_ONLY), N)
    winner = pretraining("winner", [(100, 0.5)], [(1000, 0.90), (2000, 0.94), (3000, 0.96)],
                         strategy="class_mean")
    # Reached the target too, later (at 2,500): its points above it stay for the frontier.
    second = curve("second", [(0, 0.1), (1500, 0.8), (2500, 0.95), (5000, 0.97)],
                   strategy="random")
    # Behind, but with less compute than the winner needed: it could still be first.
    cheap = curve("cheap", [(0, 0.1), (1500, 0.5)], strategy="random")
    replay(rule, ENDED)
    verdicts = replay(rule, winner, second, cheap)
    assert all(not v.stop for v in verdicts["second"] + verdicts["cheap"])


def test_the_race_waits_for_ordinary_training_and_ordinary_training_is_no_winner():
    loser = curve("loser", [(0, 0.1), (3000, 0.5), (6000, 0.6)], strategy="random")
    winner = curve("winner", [(0, 0.1), (2000, 0.94)], strategy="class_mean")
    def stops(rule: FrontierRule, ordinary: list[dict], *curves: list[dict]) -> bool:
        replay(rule, ordinary)
        return any(v.stop for v in replay(rule, *curves)["loser"])

    assert stops(FrontierRule(options(**RACE_ONLY), N), ENDED, winner, loser)
    # Ordinary training still running (no final row): the target may still rise, no race.
    assert not stops(FrontierRule(options(**RACE_ONLY), N), ORDINARY, winner, loser)
    # Ended without a final row (its worker failed for good): the race goes on without it.
    rule = FrontierRule(options(**RACE_ONLY), N)
    replay(rule, ORDINARY)
    rule.ended("ordinary")
    assert any(v.stop for v in replay(rule, winner, loser)["loser"])
    # Ordinary training ended, but only it reached the target: no pretraining trial has won.
    assert not stops(FrontierRule(options(**RACE_ONLY), N), ENDED, loser)
    # Off: the rule never races.
    assert not stops(FrontierRule(options(beaten_to_target=False, **RACE_ONLY), N), ENDED,
                     winner, loser)
    # The tolerance is the analysis's: 0.94 - 0.005, as `sweep analyze` reaches a target.
    from analysis.savings import DEFAULT_TOLERANCE

    assert FrontierOptions().tolerance == DEFAULT_TOLERANCE


def test_anytime_frontier_answers_the_first_point_to_reach_an_accuracy():
    frontier = AnytimeFrontier()
    for i, (c, a) in enumerate([(100, 0.5), (200, 0.7), (300, 0.6)]):
        frontier.add("a", i, c, a)
    frontier.add("b", 0, 150, 0.7)
    assert frontier.first_reaching(0.7, excluding=set()) == Point("b", 150, 0.7)
    assert frontier.first_reaching(0.7, excluding={"b"}) == Point("a", 200, 0.7)
    assert frontier.first_reaching(0.55, excluding={"b"}) == Point("a", 200, 0.7)
    assert frontier.first_reaching(0.8, excluding=set()) is None


def test_anytime_frontier_answers_the_best_point_at_no_more_compute():
    frontier = AnytimeFrontier()
    for i, (c, a) in enumerate([(100, 0.5), (300, 0.4), (200, 0.7), (400, 0.6)]):  # out of order
        frontier.add("a", i, c, a)
    frontier.add("b", 0, 250, 0.65)
    assert frontier.best(50, excluding="") is None
    assert frontier.best(150, excluding="").accuracy == 0.5
    assert frontier.best(200, excluding="").accuracy == 0.7
    assert frontier.best(1000, excluding="a").accuracy == 0.65
    assert frontier.best(260, excluding="b") == frontier.best(1000, excluding="b")
    assert frontier.best(1000, excluding="").trial_id == "a"


@pytest.mark.parametrize("settings, message", [
    ({"margin": -0.1}, "margin must be a finite number >= 0"),
    ({"margin": 1}, r"margin is accuracy as a fraction \(0.01 is 1 pp\), at most 0.2; got 1"),
    ({"dominated": "no"}, "dominated must be true or false"),
    ({"eta": 1}, "eta must be a finite number > 1"),
    ({"first_rung": 0}, "first_rung must be a finite number > 0"),
    ({"pretrain_allowance": 0.5}, "pretrain_allowance must be a finite number >= 1"),
    ({"stop_ordinary": "yes"}, "stop_ordinary must be true or false"),
    ({"beaten_to_target": 1}, "beaten_to_target must be true or false"),
    ({"tolerance": -0.01}, "tolerance must be a finite number >= 0"),
    ({"metric": "test_loss"}, "metric must be one of test_accuracy"),
    ({"patience": 3}, "unknown option 'patience'"),
])
def test_bad_settings_are_one_line_errors(settings, message):
    with pytest.raises(ConfigError, match=message):
        parse_spec({"scheduler": "frontier", "early_stopping": settings}, "s.yaml")


@pytest.mark.parametrize("fixed, ok", [
    ({"validation_fraction": 0.1}, True),
    ({}, False),  # the default: no split
    ({"validation_fraction": 0}, False),
])
def test_a_validation_metric_needs_a_split(fixed, ok):
    # without one every record's val_accuracy is null, and the scheduler stopped nothing
    data = {"scheduler": "frontier", "early_stopping": {"metric": "val_accuracy"},
            "fixed": fixed, "search": {"strategy": ["none"]}}
    if ok:
        assert parse_spec(data, "s.yaml").frontier_options.metric == "val_accuracy"
    else:
        with pytest.raises(ConfigError, match="measured only with validation_fraction above 0"):
            parse_spec(data, "s.yaml")


def test_settings_belong_to_the_frontier_scheduler():
    spec = parse_spec({"scheduler": "frontier", "early_stopping": {"margin": 0.02}}, "s.yaml")
    assert spec.frontier_options == FrontierOptions(margin=0.02)
    assert spec.to_dict()["early_stopping"] == {"margin": 0.02}
    with pytest.raises(ConfigError, match="set scheduler: frontier"):
        parse_spec({"scheduler": "asha", "early_stopping": {"margin": 0.02}}, "s.yaml")
    # `sweep run --scheduler none` on such a file: the settings go with the scheduler, and the
    # spec the sweep saves parses again (its resume reads it back)
    for scheduler in ("none", "asha"):
        other = spec.with_overrides(scheduler=scheduler)
        assert other.early_stopping == {} and other.scheduler == scheduler
        assert parse_spec(other.to_dict(), "sweep.json") == other
    assert spec.with_overrides(num_samples=3).early_stopping == {"margin": 0.02}


def test_a_resumed_sweep_reads_the_frontier_back_from_the_log(tmp_path):
    from sweep.frontier_scheduler import FrontierScheduler
    from sweep.results_log import ResultLog

    results = str(tmp_path / "results")
    (tmp_path / "results").mkdir()
    log = ResultLog(results, flush_every_s=0)
    for record in ENDED:  # an ended trial: its rows in its one file
        log.add({"status": "running", **record, "dataset": "digits"})
    log.close("digits", "ordinary")
    running = curve("running", [(0, 0.1), (200, 0.95)], strategy="random")
    for record in running:  # a trial that was running: its rows in segments only
        log.add({**record, "dataset": "digits", "status": "running"})
    log.flush("digits", "running", now=True)
    assert list((tmp_path / "results" / "_live").iterdir())
    other = curve("other", [(0, 0.1), (100, 0.99)], strategy="random")
    log.add({**other[1], "dataset": "mnist", "status": "running"})  # another dataset's study
    log.close("mnist", "other")

    scheduler = FrontierScheduler(options(), N, results, "digits")
    frontier = scheduler.rule.frontier
    assert frontier.best(1000, excluding="running").accuracy == 0.85
    assert frontier.best(1000, excluding="").trial_id == "running"
    assert frontier.best(150, excluding="").accuracy == 0.1  # mnist's 0.99 at 100 is not here
    assert scheduler.rule.target == pytest.approx(0.935)  # ordinary training ended: the race is on
    # Pickled with the experiment, it forgets the frontier and reads it again when next used.
    import pickle

    restored = pickle.loads(pickle.dumps(scheduler))
    assert restored._rule is None
    assert restored.rule.frontier.best(1000, excluding="").accuracy == 0.95


def test_a_replayed_logged_end_is_not_judged_again():
    # On resume, a trial whose end the log holds reports it again (marked replayed): the rule
    # read that row from the log already, and a verdict now would misname how the trial ended
    from ray.tune.schedulers import TrialScheduler

    from common.records import REPLAYED
    from sweep.frontier_scheduler import FrontierScheduler

    class Unasked:
        def on_result(self, record):
            raise AssertionError("a replayed row was judged")

    scheduler = FrontierScheduler(options(), N, "/nowhere", "digits")
    scheduler._rule = Unasked()
    record = {**ENDED[-1], "dataset": "digits", REPLAYED: True}
    assert scheduler.on_trial_result(None, None, record) == TrialScheduler.CONTINUE
    assert scheduler.stopped == {}


@pytest.mark.slow
def test_a_sweep_with_the_frontier_scheduler_names_its_stopped_trials(tmp_path):
    import optuna
    import pandas as pd
    from cli import run_sweep
    from test_sweep import write_spec

    # Ordinary training at lr 3e-3 runs first; the pretraining trials learn at 1e-5 (hopeless:
    # dominated as soon as they are judged) or 3e-3. Pretraining on half the set for 8 epochs
    # passes the first rungs (1 and 3 epochs) while pretraining.
    spec = write_spec(tmp_path / "frontier.yaml", datasets=["digits"], num_samples=6,
                      scheduler="frontier", early_stopping={"margin": 0.02},
                      fixed={"width": 8, "finetune_epochs": 10},
                      search={"strategy": ["none", "random"], "size_by": ["fraction"],
                              "subset_fraction": {"low": 0.4, "high": 0.5},
                              "pretrain_epochs": {"low": 6, "high": 8},
                              "lr": [0.003, 0.00001], "seed": [0, 1]},
                      baselines=[{"lr": 0.003, "seed": 0}])
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "2", "--max-concurrent-trials",
                       "1", "--storage", str(tmp_path), "--name", "fr", "--sampler", "random",
                       "--no-analyze")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = pd.read_parquet(tmp_path / "fr" / "results")
    last = df.sort_values("evaluation").groupby("trial_id").last()
    assert len(last) == 6
    baseline = last[last["strategy"] == "none"]
    assert (baseline["status"] == "finished").all()  # ordinary training is not judged
    slow = last[(last["strategy"] == "random") & (last["lr"] < 1e-4)]
    assert len(slow) >= 1, last[["strategy", "lr"]]
    assert (slow["status"] == "stopped").all() and (slow["stop_reason"] == "early_stopped").all()
    stopped = last[last["status"] == "stopped"]
    ordinary_best = df.loc[df["strategy"] == "none", "test_accuracy"].max()
    for trial_id, row in stopped.iterrows():
        rows = df[df["trial_id"] == trial_id].sort_values("evaluation")
        assert (rows["status"].iloc[:-1] == "running").all()
        compute = row["train_flops"] + row["selection_flops"]
        best = rows["test_accuracy"].max()
        # The progress line names the trial that stopped it, and the log bears it out.
        line = next(li for li in result.stdout.splitlines() if f"done   {trial_id}" in li)
        other = re.search(r", stopped: .* reached by (\w+) with", line).group(1)
        assert other != trial_id and other in last.index
        theirs = df[df["trial_id"] == other]
        their_compute = theirs["train_flops"] + theirs["selection_flops"]
        race = re.search(r"beaten to the target ([\d.]+)%", line)
        if race:  # another pretraining trial reached the target with less compute
            target = float(race.group(1)) / 100
            assert target <= ordinary_best - 0.005 + 1e-4 and best < target
            assert last.loc[other, "strategy"] != "none"
            assert ((theirs["test_accuracy"] >= target - 1e-4) & (their_compute < compute)).any()
            continue
        # Judged at a rung after pretraining: its last row is fine-tuning or the end of
        # pretraining, past the first rung; the other trial had 2 points more than this one's
        # best with at most 1/1.5 of its compute.
        assert row["phase"] == "finetune" or row["epoch"] == row["pretrain_epochs"], row
        assert compute >= row["flops_per_sample"] * 1437
        assert ((theirs["test_accuracy"] >= best + 0.02) & (their_compute <= compute / 1.5)).any()
    study = optuna.load_study(study_name="fr-digits", storage=f"sqlite:///{tmp_path}/fr/optuna.db")
    states = {t.user_attrs["tune_trial_id"]: t for t in study.trials
              if "tune_trial_id" in t.user_attrs}  # not the sampler's repeats (never run)
    assert set(states) == set(last.index)
    for trial_id, row in last.iterrows():
        told = states[trial_id]
        if row["status"] == "stopped":  # beaten: with the poor trials, not on Optuna's front
            assert told.state == optuna.trial.TrialState.PRUNED and told.values is None
        else:
            assert told.state == optuna.trial.TrialState.COMPLETE
            assert told.values == [row["test_accuracy"],
                                   row["train_flops"] + row["selection_flops"]]


def test_the_rule_can_judge_on_validation_accuracy():
    rule = FrontierRule(options(metric="val_accuracy"), N)
    replay(rule, [{**r, "val_accuracy": r["test_accuracy"]} for r in ORDINARY])
    # Behind on validation (0.6 vs 0.7), ahead on test: judged on validation, stopped.
    slow = [{**r, "val_accuracy": 0.6, "test_accuracy": 0.99}
            for r in curve("slow", [(0, 0.1), (500, 0.0)], strategy="random")]
    assert judged_at(replay(rule, slow)["slow"]) == [(500, True)]
    # A log without the column (no validation split): nothing is judged.
    blind = FrontierRule(options(metric="val_accuracy"), N)
    assert replay(blind, ORDINARY, curve("x", [(0, 0.1), (500, 0.2)], strategy="random"))[
        "x"] == []


def test_what_tune_unpickles_follows_a_moved_sweep_folder(monkeypatch):
    import pickle

    from common import layout
    from sweep.frontier_scheduler import FrontierScheduler
    from sweep.results_log import ResultLog

    monkeypatch.setattr(layout, "_MOVED", {})
    scheduler = FrontierScheduler(options(), N, "/old/s/results", "digits")
    log = ResultLog("/old/s/results")
    searcher_layout = layout.SweepLayout("/old/s")
    pickled = [pickle.dumps(x) for x in (scheduler, log, searcher_layout)]
    other = pickle.dumps(layout.SweepLayout("/old/sibling"))
    layout.follow_move("/old/s", "/new/t")
    scheduler, log, searcher_layout = (pickle.loads(p) for p in pickled)
    assert scheduler.results == "/new/t/results" and log.location == "/new/t/results"
    assert searcher_layout.folder == "/new/t" and searcher_layout.results == "/new/t/results"
    assert pickle.loads(other).folder == "/old/sibling"  # only that folder moved


def test_a_sweep_that_turned_the_rule_off_with_margin_1_resumes_with_it_off():
    from search_spaces.spec import written_before_dominated

    saved = {"scheduler": "frontier", "early_stopping": {"margin": 1, "flops_factor": 2}}
    spec = parse_spec(written_before_dominated(saved), "sweep.json")
    assert spec.frontier_options == FrontierOptions(flops_factor=2, dominated=False)
    assert written_before_dominated({"early_stopping": {"margin": 0.02}}) == {
        "early_stopping": {"margin": 0.02}}
    half = parse_spec(written_before_dominated({"scheduler": "frontier",
                                                "early_stopping": {"margin": 0.5}}), "s")
    assert half.frontier_options == FrontierOptions(dominated=False)  # refused if written now

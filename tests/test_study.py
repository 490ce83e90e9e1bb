"""What Optuna is told of each trial, live (SweepSearch) and when the study is rebuilt from the
result log (open_study): finished trials COMPLETE with (accuracy, compute), accuracy on the
validation split when one is held out; trials a scheduler stopped, or that diverged, PRUNED."""

from functools import partial

import optuna
import pytest

from common.layout import SweepLayout
from search_spaces import define_space, parse_spec
from sweep.results_log import ResultLog
from sweep.study import OBJECTIVES, SweepSearch, open_study, ran_trials, study_name, told_state
from trainables import TrialConfig
from trainables.train import TrialRunner

SPEC = parse_spec({"fixed": {"width": 2, "finetune_epochs": 1, "validation_fraction": 0.1},
                   "search": {"strategy": ["none", "class_mean"],
                              "pretrain_epochs": {"low": 1, "high": 3}, "seed": [0, 1]}},
                  "s.yaml")
COMPLETE, PRUNED = optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED


@pytest.mark.parametrize("status, state", [("finished", COMPLETE), ("stopped", PRUNED),
                                           ("running", PRUNED), ("diverged", PRUNED)])
def test_only_a_finished_trial_is_complete(status, state):
    assert told_state(status) == state  # 'running' last: a scheduler stopped it


def _records(trial_id: str, status: str, **settings) -> list[dict]:
    config = TrialConfig.from_dict({**SPEC.fixed, "dataset": "digits", **settings})
    records = TrialRunner(config, labels={"sweep": "s", "trial_id": trial_id}).run()
    if status != "finished":  # as the log holds a stopped or diverged trial's last row
        records[-1] = {**records[-1], "status": status, "stop_reason": status}
    return records


def test_the_study_rebuilt_from_the_log_tells_what_the_live_search_told(tmp_path):
    layout = SweepLayout(str(tmp_path / "s"))
    (tmp_path / "s" / "results").mkdir(parents=True)
    log = ResultLog(layout.results)
    runs = {"t1": _records("t1", "finished", strategy="none", seed=0),
            "t2": _records("t2", "stopped", strategy="class_mean", pretrain_epochs=2, seed=1),
            "t3": _records("t3", "diverged", strategy="class_mean", pretrain_epochs=3, seed=0)}
    for trial_id, records in runs.items():
        for record in records:
            log.add(record)
        log.close("digits", trial_id)
    study = optuna.load_study(study_name=study_name("s", "digits"),
                              storage=open_study(layout, SPEC, "digits", "s"))
    told = {t.user_attrs["tune_trial_id"]: t for t in study.trials}
    assert told["t1"].state == COMPLETE and told["t2"].state == told["t3"].state == PRUNED
    last = runs["t1"][-1]
    assert 0 < last["val_accuracy"] != last["test_accuracy"]  # judged on validation
    assert told["t1"].values == [last["val_accuracy"], float(last["train_flops"])]
    assert told["t2"].params == {"strategy": "class_mean", "pretrain_epochs": 2, "seed": 1}
    assert study.metric_names == OBJECTIVES[0]


def test_the_live_search_prunes_stopped_and_diverged_trials(tmp_path):
    study_url = f"sqlite:///{tmp_path}/optuna.db"
    search = SweepSearch(space=partial(define_space, spec=SPEC, dataset="digits"),
                         metric=OBJECTIVES[0], mode=OBJECTIVES[1],
                         sampler=optuna.samplers.RandomSampler(seed=0), study_name="s-digits",
                         storage=optuna.storages.RDBStorage(study_url),
                         layout=SweepLayout(str(tmp_path)))
    for trial_id in ("a", "b", "c", "d"):
        search.suggest(trial_id)
    record = {"val_accuracy": 0.9, "test_accuracy": 0.8, "train_flops": 5e9,
              "selection_flops": 1e6}
    results = {"a": {**record, "status": "finished", "search_accuracy": 0.9,
                     "compute_flops": 5.001e9},
               "b": {**record, "status": "running"},  # its last record: a scheduler stopped it
               "c": {**record, "status": "diverged"}}
    for trial_id, result in results.items():
        search.on_trial_complete(trial_id, result)
    search.on_trial_complete("d", None, error=True)
    study = optuna.load_study(study_name="s-digits", storage=study_url)
    states = {t.user_attrs["tune_trial_id"]: (t.state, t.values) for t in study.trials}
    assert states == {"a": (COMPLETE, [0.9, 5.001e9]), "b": (PRUNED, None),
                      "c": (PRUNED, None), "d": (optuna.trial.TrialState.FAIL, None)}


def _search(tmp_path, spec, sampler) -> SweepSearch:
    from search_spaces import baseline_points

    return SweepSearch(space=partial(define_space, spec=spec, dataset="digits"),
                       metric=OBJECTIVES[0], mode=OBJECTIVES[1], sampler=sampler,
                       points_to_evaluate=baseline_points(spec), study_name="g-digits",
                       storage=optuna.storages.RDBStorage(f"sqlite:///{tmp_path}/optuna.db"),
                       layout=SweepLayout(str(tmp_path)))


def _run(search: SweepSearch, count: int) -> list[dict]:
    """Suggest and complete up to `count` trials (accuracy and compute made up from the
    configuration), one at a time; the configurations, until the searcher says FINISHED."""
    from ray.tune.search import Searcher

    configs = []
    for n in range(count):
        config = search.suggest(f"t{n}")
        if config == Searcher.FINISHED:
            break
        configs.append(config)
        epochs = config.get("pretrain_epochs", 0)
        search.on_trial_complete(f"t{n}", {"status": "finished", "search_accuracy": 0.9,
                                           "compute_flops": 1e9 + epochs * 1e8})
    return configs


def test_a_finite_space_is_run_once_each_and_then_the_study_ends(tmp_path):
    from search_spaces.space import enumerate_space

    # the paper preset's shape: 2 baselines (augment off and on) and 2 x 2 x 2 pretraining ones
    spec = parse_spec({"search": {"strategy": ["none", "random"], "size_by": ["fraction"],
                                  "subset_fraction": [0.25, 0.5], "pretrain_epochs": [3, 5],
                                  "augment": [False, True]},
                       "baselines": [{"augment": False}, {"augment": True}]}, "s.yaml")
    grid = enumerate_space(spec, "digits")
    assert len(grid) == 10
    configs = _run(_search(tmp_path, spec, optuna.samplers.TPESampler(seed=0)), 25)
    searched = {"strategy", "size_by", "subset_fraction", "pretrain_epochs", "augment"}
    ran = {frozenset((k, v) for k, v in c.items() if k in searched) for c in configs}
    assert len(configs) == 10  # the whole grid, then FINISHED (it asked for 25)
    assert ran == {frozenset(params.items()) for params in grid}
    study = optuna.load_study(study_name="g-digits", storage=f"sqlite:///{tmp_path}/optuna.db")
    repeats = [t for t in study.trials if "repeat_of" in t.user_attrs]
    assert all(t.state == optuna.trial.TrialState.FAIL for t in repeats)
    assert len([t for t in study.trials if "tune_trial_id" in t.user_attrs]) == 10


def test_ordinary_training_is_not_repeated_once_its_seeds_have_run(tmp_path):
    # ordinary training is 2 configurations (its seeds), pretraining a continuous space
    spec = parse_spec({"search": {"strategy": ["none", "random"], "size_by": ["fraction"],
                                  "subset_fraction": {"low": 0.1, "high": 0.5},
                                  "seed": [0, 1]},
                       "baselines": [{"seed": 0}]}, "s.yaml")
    configs = _run(_search(tmp_path, spec, optuna.samplers.RandomSampler(seed=1)), 14)
    assert len(configs) == 14
    ordinary = [c["seed"] for c in configs if c["strategy"] == "none"]
    assert sorted(ordinary) == [0, 1]  # without the check, random draws ran it ~7 times


def test_a_trial_told_pruned_before_a_restart_is_told_again_without_an_error(tmp_path):
    search = _search(tmp_path, SPEC, optuna.samplers.RandomSampler(seed=0))
    search.suggest("a")
    search.on_trial_complete("a", {"status": "running"})
    search._completed_trials.discard("a")  # as a searcher restored from before the tell
    search.on_trial_complete("a", {"status": "running"})  # Tune ran it again: stopped again
    study = optuna.load_study(study_name="g-digits", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.state for t in study.trials] == [PRUNED]


def test_trials_whose_rows_left_the_log_no_longer_hold_their_configurations(tmp_path):
    """After a crash, trials Tune does not continue have their files set aside: the study fails
    a running one, sets the others aside (their configurations may run again), and a trial that
    failed and then finished when Tune retried it is told as finished."""
    layout = SweepLayout(str(tmp_path / "s"))
    (tmp_path / "s" / "results").mkdir(parents=True)
    url = open_study(layout, SPEC, "digits", "s")
    study = optuna.load_study(study_name=study_name("s", "digits"), storage=url)
    distributions = {"strategy": optuna.distributions.CategoricalDistribution(
        ["none", "class_mean"])}
    for tune_id, state in (("gone-running", optuna.trial.TrialState.RUNNING),
                           ("gone-done", COMPLETE), ("retried", optuna.trial.TrialState.FAIL),
                           ("kept", optuna.trial.TrialState.RUNNING)):
        study.add_trial(optuna.trial.create_trial(
            state=state, params={"strategy": "none"}, distributions=distributions,
            values=[0.5, 1.0] if state == COMPLETE else None,
            user_attrs={"tune_trial_id": tune_id}))
    log = ResultLog(layout.results)
    for record in _records("retried", "finished", strategy="none", seed=0):
        log.add(record)
    log.close("digits", "retried")
    open_study(layout, SPEC, "digits", "s", continuing={"kept", "retried"})
    states = [(t.user_attrs["tune_trial_id"], t.state.name) for t in study.get_trials()]
    assert states == [("gone-running", "FAIL"), ("gone-done", "COMPLETE"), ("retried", "FAIL"),
                      ("kept", "RUNNING"), ("retried", "COMPLETE")]
    held = [t.user_attrs["tune_trial_id"] for t in ran_trials(study)]
    assert held == ["kept", "retried"]  # not gone-done: set aside


def test_a_new_searcher_enqueues_only_the_baselines_the_study_lacks(tmp_path):
    spec = parse_spec({"search": {"strategy": ["none", "class_mean"], "seed": [0, 1]},
                       "baselines": [{"seed": 0}, {"seed": 1}, {"seed": 0}]}, "s.yaml")
    first = _search(tmp_path, spec, optuna.samplers.RandomSampler(seed=0))
    first.suggest("a")  # the first baseline runs; the other two wait
    again = _search(tmp_path, spec, optuna.samplers.RandomSampler(seed=0))  # a restart
    assert again._points_to_evaluate == []  # all three are held already
    study = optuna.load_study(study_name="g-digits", storage=f"sqlite:///{tmp_path}/optuna.db")
    assert [t.system_attrs["fixed_params"]["seed"] for t in study.trials] == [0, 1, 0]


def test_the_frontier_scheduler_judges_validation_accuracy_where_it_is_held_out(tmp_path):
    from sweep.launcher import _scheduler
    from sweep.settings import SweepSettings

    settings = SweepSettings(name="s", storage=str(tmp_path))
    for fixed, options, metric in (({"validation_fraction": 0.1}, {}, "val_accuracy"),
                                   ({}, {}, "test_accuracy"),
                                   ({"validation_fraction": 0.1}, {"metric": "test_accuracy"},
                                    "test_accuracy")):
        spec = parse_spec({"scheduler": "frontier", "early_stopping": options, "fixed": fixed},
                          "s.yaml")
        assert _scheduler(spec, settings, "digits", 1437, {}).options.metric == metric

import re

import optuna
import pytest

from search_spaces import define_space, load_preset, parse_spec, preset_names, trial_settings
from trainables import ConfigError, TrialConfig


@pytest.mark.parametrize("name", preset_names())
def test_presets_round_trip_through_their_dict(name):
    spec = load_preset(name)
    assert parse_spec(spec.to_dict(), "saved") == spec
    assert "none" in spec.strategies  # every preset carries ordinary-training baselines


@pytest.mark.parametrize("name", preset_names())
def test_every_sampled_configuration_is_a_valid_trial(name):
    spec = load_preset(name)
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    seen = set()
    for _ in range(60):
        trial = study.ask()
        constants = define_space(trial, spec, spec.datasets[0])
        settings = {**trial.params, **constants}
        config = TrialConfig.from_dict(trial_settings(settings))
        seen.add(config.strategy)
        if config.strategy in ("random", "stratified", "kmeans"):
            # exactly one size, and the one the trial chose to size by
            by = trial.params["size_by"]
            assert (config.subset_fraction is not None) == (by == "fraction")
            assert (config.overdetermination_ratio is not None) == (by == "ratio")
        else:
            assert "size_by" not in trial.params
        if config.strategy == "none":
            assert "pretrain_epochs" not in trial.params
        study.tell(trial, [0.5, 1.0])
    assert seen == set(spec.strategies)


def test_space_is_conditional_on_strategy():
    spec = parse_spec({"search": {"strategy": ["class_mean"], "pretrain_epochs":
                                  {"low": 1, "high": 5}, "lr": {"low": 1e-4, "high": 1e-2,
                                                                "log": True}},
                       "fixed": {"width": 4}, "baselines": []}, "test")
    trial = optuna.create_study().ask()
    constants = define_space(trial, spec, "digits")
    assert set(trial.params) == {"strategy", "pretrain_epochs", "lr"}
    assert 1 <= trial.params["pretrain_epochs"] <= 5
    assert isinstance(trial.params["pretrain_epochs"], int)
    assert constants == {"width": 4, "dataset": "digits"}  # the sweep's name is not a setting


def test_baselines_run_when_the_sampler_does_not_choose_ordinary_training():
    from search_spaces import baseline_points, replay_space

    # `none` is not among the sampled strategies: ordinary training runs only as the baselines.
    spec = parse_spec({"search": {"strategy": ["class_mean", "random"], "seed": [0, 1, 2],
                                  "size_by": ["fraction"],
                                  "subset_fraction": {"low": 0.1, "high": 0.5},
                                  "pretrain_epochs": {"low": 1, "high": 5}},
                       "baselines": [{"seed": 1}]}, "test")
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for point in baseline_points(spec):
        study.enqueue_trial(point)
    baseline = study.ask()
    constants = define_space(baseline, spec, "digits")
    assert constants["strategy"] == "none"  # a constant: not a parameter the sampler learns
    assert baseline.params == {"seed": 1}
    config = TrialConfig.from_dict(trial_settings({**baseline.params, **constants}))
    assert config.strategy == "none" and config.seed == 1
    strategies = set()
    for _ in range(40):
        trial = study.ask()
        constants = define_space(trial, spec, "digits")
        strategies.add({**trial.params, **constants}["strategy"])
    assert strategies == {"class_mean", "random"}  # the sampler never draws ordinary training
    # Rebuilt from the log (a resumed study), the baseline has the same parameters.
    params, domains = replay_space(spec, "digits", config.__dict__ | {"dataset": "digits"})
    assert params == {"seed": 1} and set(domains) == {"seed"}


def test_a_file_is_read_as_a_user_writes_it():
    spec = parse_spec({"datasets": ["digits", "mnist", "digits"], "sampler": "TPE",
                       "scheduler": "Frontier", "description": 2024}, "s.yaml")
    assert spec.datasets == ("digits", "mnist")  # a name listed twice is swept once
    assert (spec.sampler, spec.scheduler) == ("tpe", "frontier")
    assert spec.description == "2024"
    assert parse_spec({"description": None}, "s.yaml").description == ""
    with pytest.raises(ConfigError, match="s.yaml: description must be text"):
        parse_spec({"description": ["a", "b"]}, "s.yaml")


def test_numbers_are_numbers_however_they_are_written():
    from search_spaces.spec import load_yaml
    from sweep.study import _params

    # PyYAML (YAML 1.1) reads 1e-3 as text: searched as a string choice, a resume could not
    # put the logged 0.003 back into the study; fixed as text, the frontier rule compared it.
    spec = parse_spec(load_yaml("""
scheduler: frontier
early_stopping: {margin: 5e-3}
fixed: {validation_fraction: "1e-1", width: 6.0}
search: {strategy: [none, random], subset_fraction: [0.1],
         lr: [1e-3, "3e-3", 0.001], batch_size: [32, "64"]}
baselines: [{lr: "1e-3"}]
"""), "s.yaml")
    assert spec.fixed == {"validation_fraction": 0.1, "width": 6}
    assert spec.search["lr"] == (0.001, 0.003)  # 1e-3 and 0.001 are one choice
    assert spec.search["batch_size"] == (32, 64)
    assert spec.baselines == ({"lr": 0.001},)
    assert spec.frontier_options.margin == 0.005
    assert spec.frontier_options.metric == "val_accuracy"
    ranged = parse_spec(load_yaml("search: {lr: {low: 1e-4, high: 1E-2, log: true}}"), "s.yaml")
    assert (ranged.search["lr"].low, ranged.search["lr"].high) == (1e-4, 1e-2)
    # what a resume does with a logged trial: its values are among the choices
    config = TrialConfig.from_dict({"dataset": "digits", "lr": 0.003, "batch_size": 64,
                                    "validation_fraction": 0.1, "width": 6})
    params, distributions = _params(spec, "digits", {"config_json": config.to_json()})
    assert params == {"strategy": "none", "lr": 0.003, "batch_size": 64}
    optuna.trial.create_trial(params=params, distributions=distributions, values=[0.5, 1.0])
    assert load_yaml("a: e5\nb: '1e-3'\nc: 1.5") == {"a": "e5", "b": "1e-3", "c": 1.5}


@pytest.mark.parametrize("search, message", [
    ({"strategy": ["none", "random"], "size_by": ["ratio"], "subset_fraction": [0.1],
      "overdetermination_ratio": [1]},
     "search.subset_fraction is never drawn: size_by is [ratio]; add fraction to size_by"),
    ({"strategy": ["none", "class_mean"], "subset_fraction": [0.1]},
     "search.subset_fraction is never drawn: no strategy searched (none, class_mean) takes a "
     "size; random, stratified, kmeans do"),
    ({"strategy": ["none", "class_mean"], "size_by": ["fraction"]}, "search.size_by is never"),
    ({"strategy": ["none"], "pretrain_epochs": {"low": 1, "high": 5}},
     "search.pretrain_epochs is never drawn: ordinary training (strategy none) does not pretrain"),
    ({"pretrain_epochs": [3]}, "search.pretrain_epochs is never drawn"),
])
def test_a_searched_setting_no_trial_would_draw_is_refused(search, message):
    # before, the sweep ran and searched less than its file said
    with pytest.raises(ConfigError, match=re.escape(f"s.yaml: {message}")):
        parse_spec({"search": search}, "s.yaml")


def test_datasets_on_the_command_line_are_each_swept_once():
    from sweep.cli import _split

    assert _split(["digits,mnist", " digits ", "mnist,,cifar10"]) == ("digits", "mnist", "cifar10")
    assert _split(None) is None


@pytest.mark.parametrize("data, message", [
    # Optuna refused the baseline's value when a resume rebuilt the study from the log
    ({"search": {"lr": {"low": 3e-4, "high": 3e-3, "log": True}}, "baselines": [{"lr": 0.1}]},
     "baselines: lr 0.1 is outside search.lr"),
    ({"search": {"batch_size": [32, 64]}, "baselines": [{"batch_size": 256}]},
     "baselines: batch_size 256 is outside search.batch_size"),
    ({"search": {"seed": {"low": 0, "high": 3}}, "baselines": [{"seed": 1.5}]},
     "baselines: seed must be a whole number, got 1.5"),
    # a sized strategy's pretrain_epochs were never checked: each trial failed once Ray ran it
    ({"search": {"strategy": ["random"], "size_by": ["fraction"],
                 "subset_fraction": {"low": 0.1, "high": 0.2},
                 "pretrain_epochs": {"low": -3, "high": 5}}},
     "pretrain_epochs must be >= 0, got -3"),
    # a sampled 0.37 is not a boolean: trials failed mid-sweep
    ({"search": {"augment": {"low": 0, "high": 1}}},
     "search.augment: give a list of choices (a range is for numbers)"),
])
def test_a_sweep_file_that_would_fail_later_is_refused_now(data, message):
    with pytest.raises(ConfigError, match=re.escape(f"s.yaml: {message}")):
        parse_spec(data, "s.yaml")


def test_baselines_within_the_space_are_accepted():
    spec = parse_spec({"search": {"lr": {"low": 3e-4, "high": 3e-3, "log": True},
                                  "seed": [0, 1, 2]},
                       "baselines": [{"lr": 3e-3, "seed": 2}, {"lr": 3e-4, "seed": 0}]}, "s.yaml")
    assert spec.baselines == ({"lr": 3e-3, "seed": 2}, {"lr": 3e-4, "seed": 0})


def test_a_range_of_q_is_judged_by_the_model_searched_that_allows_most():
    # cnn width 6 (the default) allows Q <= 3.797 on digits; width 1 or 2 allow far more
    narrow = {"search": {"strategy": ["random"], "size_by": ["ratio"], "width": [1, 2],
                         "overdetermination_ratio": {"low": 3.9, "high": 8}}}
    assert parse_spec(narrow, "s.yaml").search["width"] == (1, 2)
    with pytest.raises(ConfigError, match="cnn width 6: P=3,784"):
        parse_spec({"search": {**narrow["search"], "width": [6, 8]}}, "s.yaml")


def test_ordinary_training_runs_its_own_epochs_and_pretraining_the_fixed_ones():
    from search_spaces import baseline_points

    # The quick preset's case: a pretraining trial spends up to 30 epochs on half the data on top
    # of its 12 on the full set; a baseline of 12 epochs would leave its curve short of that.
    spec = parse_spec({"fixed": {"finetune_epochs": 12},
                       "search": {"strategy": ["none", "random"], "size_by": ["fraction"],
                                  "subset_fraction": {"low": 0.1, "high": 0.5},
                                  "pretrain_epochs": {"low": 1, "high": 30}, "seed": [0, 1]},
                       "baselines": [{"seed": 1}], "ordinary_training_epochs": 40}, "s.yaml")
    assert parse_spec(spec.to_dict(), "saved") == spec  # a resumed sweep keeps it
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    for point in baseline_points(spec):
        study.enqueue_trial(point)
    epochs = {}
    for _ in range(30):
        trial = study.ask()
        constants = define_space(trial, spec, "digits")
        config = TrialConfig.from_dict(trial_settings({**trial.params, **constants}))
        epochs.setdefault(config.strategy, set()).add(config.finetune_epochs)
        study.tell(trial, [0.5, 1.0])
    assert epochs == {"none": {40}, "random": {12}}  # the baseline and the sampled ones alike
    # ordinary training only as the baselines (none not sampled): the same
    only = parse_spec({**spec.to_dict(), "search": {**spec.to_dict()["search"],
                                                     "strategy": ["random"]}}, "s.yaml")
    study = optuna.create_study()
    study.enqueue_trial(baseline_points(only)[0])
    assert define_space(study.ask(), only, "digits")["finetune_epochs"] == 40
    # without the key, every trial fine-tunes for the fixed epochs, as before
    plain = parse_spec({**spec.to_dict(), "ordinary_training_epochs": None}, "s.yaml")
    assert plain.constants("digits", "none")["finetune_epochs"] == 12
    assert "ordinary_training_epochs" not in plain.to_dict()


@pytest.mark.parametrize("value, message", [
    (0, "ordinary_training_epochs must be a whole number of epochs in [1, 100,000], got 0"),
    (True, "got True"),
    (2.5, "ordinary_training_epochs must be a whole number, got 2.5"),
    ("many", "ordinary_training_epochs must be a whole number, got 'many'"),
    (10**12, "got 1000000000000"),
])
def test_ordinary_training_epochs_that_cannot_run_are_refused(value, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        parse_spec({"ordinary_training_epochs": value}, "s.yaml")


def test_ordinary_training_epochs_are_read_as_a_fixed_whole_number_is():
    for written in (20, 20.0, "20"):
        spec = parse_spec({"ordinary_training_epochs": written}, "s.yaml")
        assert spec.ordinary_training_epochs == 20


@pytest.mark.parametrize("data", [
    {"fixed": {"finetune_epochs": 0}},
    {"search": {"finetune_epochs": {"low": 0, "high": 10}}},
    {"search": {"strategy": ["random"], "subset_fraction": [0.1], "finetune_epochs": [0, 5]},
     "baselines": [{"finetune_epochs": 0}]},
    # a baseline that does not pin finetune_epochs samples it like any trial
    {"search": {"strategy": ["random"], "subset_fraction": [0.1], "finetune_epochs": [0, 5]}},
])
def test_ordinary_training_for_zero_epochs_is_refused(data):
    with pytest.raises(ConfigError, match="s.yaml: finetune_epochs: ordinary training for 0 "
                                          "epochs is no baseline"):
        parse_spec(data, "s.yaml")


def test_zero_finetune_epochs_are_kept_where_ordinary_training_has_its_own():
    spec = parse_spec({"fixed": {"finetune_epochs": 0}, "ordinary_training_epochs": 5,
                       "search": {"strategy": ["none", "random"], "subset_fraction": [0.1]}},
                      "s.yaml")
    assert spec.constants("digits", "random")["finetune_epochs"] == 0
    assert spec.constants("digits", "none")["finetune_epochs"] == 5
    # also beside a searched nuisance setting (its corners carry the fixed 0, not ordinary
    # training's own epochs)
    parse_spec({"fixed": {"finetune_epochs": 0}, "ordinary_training_epochs": 10,
                "search": {"strategy": ["none", "random"], "subset_fraction": [0.1],
                           "lr": [0.001, 0.01]}}, "s.yaml")
    # and with no ordinary training at all, pretraining alone is the user's choice
    alone = parse_spec({"fixed": {"finetune_epochs": 0}, "baselines": [],
                        "search": {"strategy": ["random"], "subset_fraction": [0.1]}}, "s.yaml")
    assert alone.fixed["finetune_epochs"] == 0
    searched = parse_spec({"search": {"strategy": ["random"], "subset_fraction": [0.1],
                                      "finetune_epochs": [0, 5]},
                           "baselines": [{"finetune_epochs": 5}]}, "s.yaml")
    assert searched.search["finetune_epochs"] == (0, 5)  # 0 only for pretraining trials


def test_ordinary_training_epochs_without_ordinary_training_are_refused():
    with pytest.raises(ConfigError, match="s.yaml: ordinary_training_epochs: no ordinary "
                                          "training runs"):
        parse_spec({"search": {"strategy": ["class_mean"]}, "baselines": [],
                    "ordinary_training_epochs": 20}, "s.yaml")


def test_ordinary_training_epochs_beside_searched_fine_tuning_epochs_are_refused():
    with pytest.raises(ConfigError, match="s.yaml: ordinary_training_epochs: finetune_epochs is "
                                          "searched"):
        parse_spec({"search": {"finetune_epochs": [5, 10]}, "ordinary_training_epochs": 20},
                   "s.yaml")


@pytest.mark.parametrize("sizes, by", [
    ({"subset_fraction": {"low": 0.1, "high": 0.5}}, ("fraction",)),
    ({"overdetermination_ratio": {"low": 0.5, "high": 2.0}}, ("ratio",)),
    ({"subset_fraction": [0.1], "overdetermination_ratio": [1.0]}, ("fraction", "ratio")),
])
def test_without_size_by_a_sweep_sizes_by_the_sizes_it_searches(sizes, by):
    # a file that searches subset_fraction alone was refused: size_by defaulted to both
    spec = parse_spec({"search": {"strategy": ["random"], **sizes}}, "s.yaml")
    study = optuna.create_study(directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    chosen = set()
    for _ in range(20):
        trial = study.ask()
        define_space(trial, spec, "digits")
        chosen.add(trial.params["size_by"])
        study.tell(trial, [0.5, 1.0])
    assert chosen == set(by)


def test_a_sized_strategy_with_no_size_searched_says_what_to_give():
    with pytest.raises(ConfigError, match=re.escape(
            "s.yaml: search: strategies random, stratified, kmeans need a size: "
            "search.subset_fraction or search.overdetermination_ratio")):
        parse_spec({"search": {"strategy": ["none", "random"]}}, "s.yaml")

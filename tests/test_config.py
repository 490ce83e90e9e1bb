import pytest

from trainables import ConfigError, TrialConfig


def test_defaults_depend_on_dataset():
    digits = TrialConfig.from_dict({})
    assert (digits.dataset, digits.width, digits.finetune_epochs) == ("digits", 6, 20)
    fashion = TrialConfig.from_dict({"dataset": "fashion_mnist"})
    assert (fashion.width, fashion.finetune_epochs) == (16, 10)
    assert TrialConfig.from_dict({"dataset": "digits", "width": 9}).width == 9


def test_strings_from_the_command_line_are_converted():
    c = TrialConfig.from_dict({"strategy": "random", "overdetermination_ratio": "2.5",
                               "batch_size": "32", "augment": "yes", "target_accuracy": "none"})
    assert c.overdetermination_ratio == 2.5 and c.batch_size == 32 and c.augment is True
    assert c.target_accuracy is None
    assert TrialConfig.from_dict({"batch_size": 64.0}).batch_size == 64  # Optuna/YAML floats


def test_pretrain_epochs_default_only_for_pretraining_strategies():
    assert TrialConfig.from_dict({}).effective_pretrain_epochs == 0
    assert TrialConfig.from_dict({"strategy": "class_mean"}).effective_pretrain_epochs == 10


def test_round_trip_through_json_dict():
    c = TrialConfig.from_dict({"strategy": "kmeans", "subset_fraction": 0.1, "seed": 3})
    assert TrialConfig.from_dict(c.to_dict()) == c


@pytest.mark.parametrize(
    "settings, message",
    [
        ({"dataset": "imagenet"}, "unknown dataset 'imagenet'"),
        ({"strategy": "best"}, "unknown strategy 'best'"),
        ({"model": "resnet"}, "unknown model"),
        ({"strategy": "random", "subset_fraction": 0}, "subset_fraction must be in (0, 1]"),
        ({"strategy": "random", "subset_fraction": 1.01}, "subset_fraction must be in (0, 1]"),
        ({"strategy": "random", "overdetermination_ratio": 0}, "ratio must be > 0"),
        ({"strategy": "random", "overdetermination_ratio": -1}, "ratio must be > 0"),
        ({"strategy": "random", "subset_fraction": 0.5, "overdetermination_ratio": 1},
         "not both"),
        ({"strategy": "random"}, "needs a size"),
        ({"strategy": "none", "subset_fraction": 0.5}, "ordinary training"),
        ({"strategy": "none", "pretrain_epochs": 3}, "ordinary training"),
        ({"strategy": "class_mean", "subset_fraction": 0.5}, "one average image per class"),
        ({"lr": "abc"}, "lr must be a number"),
        ({"lr": 0}, "lr must be > 0"),
        ({"lr": float("nan")}, "lr must be a number"),
        ({"batch_size": 2.5}, "batch_size must be a whole number"),
        ({"batch_size": 0}, "batch_size must be >= 1"),
        ({"augment": "maybe"}, "augment must be true or false"),
        ({"target_accuracy": 1.5}, "target_accuracy must be in (0, 1]"),
        ({"flops_budget": -5}, "flops_budget must be > 0"),
        ({"dataset": 3}, "dataset must be text"),
        ({"learning_rate": 0.1}, "unknown trial setting 'learning_rate'"),
        ({"seed": None}, "seed cannot be empty"),
        # a pretraining strategy that pretrains for 0 epochs is ordinary training under its name
        ({"strategy": "class_mean", "pretrain_epochs": 0}, "pretrain_epochs must be >= 1"),
        ({"strategy": "kmeans", "overdetermination_ratio": 2, "pretrain_epochs": 0},
         "strategy 'kmeans' pretrains: pretrain_epochs must be >= 1"),
        # a split that rounds to no example: the target and patience would watch nothing
        ({"validation_fraction": 0.003}, "validation_fraction 0.003 holds out no digits example"),
        ({"validation_fraction": 0.003, "target_accuracy": 0.5}, "give 0, or 0.0072 or more"),
    ],
)
def test_bad_values_are_rejected_with_one_line(settings, message):
    with pytest.raises(ConfigError) as info:
        TrialConfig.from_dict(settings)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_every_trial_setting_has_a_help_line():
    import dataclasses

    from sweep.cli import build_parser
    from trainables.config import SETTING_HELP

    assert set(SETTING_HELP) == {f.name for f in dataclasses.fields(TrialConfig)}
    trial = build_parser()._subparsers._group_actions[0].choices["trial"]
    helps = {a.dest: a.help for a in trial._actions if a.dest != "help"}
    assert helps == SETTING_HELP


def test_the_smallest_validation_split_that_holds_an_example_is_accepted():
    from trainables.sizing import validation_size

    assert validation_size("digits", 0.0035) == 7  # one of the 7 classes of 143 or more
    assert TrialConfig.from_dict({"validation_fraction": 0.0035}).validation_fraction == 0.0035
    assert validation_size("digits", 0.0072) == 10  # one of each class, as the error advises
    assert validation_size("mnist", 0.003) > 0
    TrialConfig.from_dict({"dataset": "mnist", "validation_fraction": 0.003})

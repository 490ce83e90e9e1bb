"""One trial's configuration: a typed, validated object built from a flat dict.

Ray Tune and Optuna hand a trial its configuration as a flat dict; the command line hands it
strings. Both enter through `TrialConfig.from_dict`, which converts, checks every value once and
rejects bad ones with a one-line `ConfigError`. Everything below it trusts the config.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import math
from dataclasses import dataclass, fields
from typing import Any

from common.errors import ConfigError

DATASETS = ("digits", "fashion_mnist", "mnist", "cifar10", "cifar100")
MODELS = ("cnn", "mlp")
# none: ordinary training (the baseline). The others build a small set to pretrain on.
STRATEGIES = ("none", "random", "stratified", "class_mean", "kmeans")
# Strategies whose small-set size the user chooses (as a fraction or as Q).
SIZED_STRATEGIES = ("random", "stratified", "kmeans")
DEVICES = ("auto", "cpu", "cuda")
TARGET_ON = ("auto", "validation", "test")
MONITORS = ("auto", "train", "val")

DEFAULT_PRETRAIN_EPOCHS = 10
# Bounds that keep a value within what torch, numpy and a machine's memory accept.
MAX_SEED = 2**32 - 1
MAX_WIDTH = 4096
MAX_BATCH = 2**20
MAX_EPOCHS = 100_000
# Defaults that depend on the dataset: digits is tiny (1,437 training images), so its default CNN
# is narrow enough (P = 3,784) that Q = 2 is a real subset (757 images), and an epoch is cheap.
DATASET_DEFAULTS: dict[str, dict[str, int]] = {
    "digits": {"width": 6, "finetune_epochs": 20},
}
GENERIC_DEFAULTS: dict[str, int] = {"width": 16, "finetune_epochs": 10}


def dataset_defaults(dataset: str) -> dict[str, int]:
    """The settings a trial on `dataset` takes where it leaves them unset (width, epochs)."""
    return {**GENERIC_DEFAULTS, **DATASET_DEFAULTS.get(dataset, {})}


# One line per TrialConfig setting, for `sweep trial --help` (a test keeps it complete).
SETTING_HELP: dict[str, str] = {
    "dataset": f"one of {', '.join(DATASETS)} (default digits)",
    "model": "cnn (VGG-style, default) or mlp",
    "width": "first conv block's channels (MLP: 8x this); default per dataset",
    "strategy": f"small set to pretrain on: {', '.join(STRATEGIES)} (default none: ordinary "
                "training)",
    "subset_fraction": "small-set size as a fraction of the training set",
    "overdetermination_ratio": "small-set size by Q = K*M/P (K images, M classes, P parameters)",
    "pretrain_epochs": "most epochs on the small set (default 10; 0 for strategy none)",
    "finetune_epochs": "most epochs on the full training set (default per dataset)",
    "target_accuracy": "stop fine-tuning once this accuracy is reached",
    "target_on": "judge --target-accuracy on: validation, test, auto (validation if a split)",
    "target_loss": "stop fine-tuning once the watched loss is this low",
    "patience": "end a phase when its loss has not improved by --min-delta for this many "
                "evaluation intervals (a quarter epoch each by default: 8 is 2 epochs)",
    "min_delta": "relative improvement that counts for --patience (e.g. 0.01; default 0)",
    "monitor": "fine-tuning's watched loss: train (sample), val, auto (val if a split)",
    "flops_budget": "stop once this many training FLOPs are spent (checked after each step, "
                    "so the last step may pass it by up to one step's FLOPs)",
    "lr": "Adam's learning rate (default 0.001, the paper's)",
    "batch_size": "examples per step (default 64)",
    "reset_optimizer": "fresh Adam state for fine-tuning instead of carrying it over",
    "augment": "random translations (and flips for CIFAR) on whole batches",
    "eval_every": "evaluate every this many training samples (default a quarter epoch)",
    "early_evals": "k more evaluations early in each phase, at eval_every/2^k .. /2",
    "validation_fraction": "of each class, held out of training for validation (default 0)",
    "train_eval_size": "training examples the training-set loss is measured on (default: as "
                       "many as the test set, at most 10,000; 0: not measured)",
    "data_seed": "fixes the validation split and that sample, the same for every trial",
    "seed": "the trial's seed: initialisation, batches, small set",
    "data_dir": "where MNIST/CIFAR files live (torchvision's layout)",
    "download": "download missing MNIST/CIFAR files through torchvision",
    "device": "auto (the GPU if there is one, default), cpu or cuda",
}


@dataclass(frozen=True)
class TrialConfig:
    """Everything that defines one pretrain-then-finetune trial.

    Scientific values (what a study is about): strategy, subset_fraction or
    overdetermination_ratio, pretrain_epochs. Nuisance values (tuned for a fair comparison): lr,
    batch_size, width. The rest is fixed per study.
    """

    dataset: str = "digits"
    model: str = "cnn"  # "cnn" (VGG-style) or "mlp"
    width: int | None = None  # first conv block's channels (MLP: 8x this); None: per dataset
    strategy: str = "none"
    subset_fraction: float | None = None  # small-set size as a fraction of the training set
    overdetermination_ratio: float | None = None  # target Q = K*M/P; K = ceil(Q*P/M)
    pretrain_epochs: int | None = None  # epochs on the small set; None: 10, or 0 for "none"
    finetune_epochs: int | None = None  # most epochs on the full training set; None: per dataset
    target_accuracy: float | None = None  # stop fine-tuning once this accuracy is reached ...
    target_on: str = "auto"  # ... on: validation, test; auto: validation if there is a split
    target_loss: float | None = None  # stop fine-tuning once the watched loss is this low
    patience: int | None = None  # end a phase when its loss has not improved for this many
    min_delta: float = 0.0  # regular evaluations (x eval_every samples) by this relative amount
    monitor: str = "auto"  # fine-tuning's loss: train (sample), val; auto: val if a split
    flops_budget: float | None = None  # stop once this many training FLOPs are spent
    lr: float = 1e-3  # Adam's learning rate (the paper's setting)
    batch_size: int = 64
    reset_optimizer: bool = False  # fresh Adam state for fine-tuning instead of carrying it over
    augment: bool = False  # random translations (and flips for CIFAR) on whole batches
    eval_every: int | None = None  # evaluate every this many training samples; None: 1/4 epoch
    early_evals: int = 0  # k more evaluations early in each phase, at eval_every/2^k .. /2
    validation_fraction: float = 0.0  # of each class, held out of training for validation
    train_eval_size: int | None = None  # training examples the training-set loss is measured
    # on at each evaluation (a fixed sample); None: as many as the test set has, at most
    # 10,000 (all of a smaller training set); 0: not measured
    data_seed: int = 0  # fixes the validation split and that sample, the same for every trial
    seed: int = 0
    data_dir: str | None = None  # where MNIST/CIFAR files live (torchvision's layout)
    download: bool = False  # download missing files through torchvision
    device: str = "auto"  # "auto": the GPU if there is one, else the CPU

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> TrialConfig:
        """Build and validate a config from a flat dict; unknown keys and bad values raise."""
        values = {key: convert_setting(key, raw) for key, raw in d.items()}
        for key, default in dataset_defaults(values.get("dataset", cls.dataset)).items():
            if values.get(key) is None:
                values[key] = default
        config = cls(**values)
        config._validate()
        return config

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    @property
    def finetune_monitor(self) -> str:
        """The loss fine-tuning watches (convergence, target_loss): train or val."""
        if self.monitor != "auto":
            return self.monitor
        return "val" if self.validation_fraction > 0 else "train"

    @property
    def target_split(self) -> str:
        """Where target_accuracy is judged: validation or test."""
        if self.target_on != "auto":
            return self.target_on
        return "validation" if self.validation_fraction > 0 else "test"

    @property
    def effective_pretrain_epochs(self) -> int:
        if self.strategy == "none":
            return 0
        return DEFAULT_PRETRAIN_EPOCHS if self.pretrain_epochs is None else self.pretrain_epochs

    def _validate(self) -> None:
        check_choice("dataset", self.dataset, DATASETS)
        check_choice("model", self.model, MODELS)
        check_choice("strategy", self.strategy, STRATEGIES)
        check_choice("device", self.device, DEVICES)
        _in_range("width", self.width, 1, MAX_WIDTH)
        _in_range("finetune_epochs", self.finetune_epochs, 0, MAX_EPOCHS)
        _in_range("batch_size", self.batch_size, 1, MAX_BATCH)
        _in_range("seed", self.seed, 0, MAX_SEED)  # what torch and numpy both accept
        if self.pretrain_epochs is not None:
            _in_range("pretrain_epochs", self.pretrain_epochs, 0, MAX_EPOCHS)
        if self.eval_every is not None:
            _in_range("eval_every", self.eval_every, 1, 2**62)
        _in_range("early_evals", self.early_evals, 0, 30)
        if not 0 <= self.validation_fraction <= 0.5:
            raise ConfigError("validation_fraction must be in [0, 0.5], got "
                              f"{self.validation_fraction}")
        if self.train_eval_size is not None:
            _in_range("train_eval_size", self.train_eval_size, 0, 2**40)
        _in_range("data_seed", self.data_seed, 0, MAX_SEED)
        if not self.lr > 0:
            raise ConfigError(f"lr must be > 0, got {self.lr}")
        if self.subset_fraction is not None and not 0 < self.subset_fraction <= 1:
            raise ConfigError(f"subset_fraction must be in (0, 1], got {self.subset_fraction}")
        q = self.overdetermination_ratio
        if q is not None and not q > 0:
            raise ConfigError(f"overdetermination_ratio must be > 0, got {q}")
        check_choice("target_on", self.target_on, TARGET_ON)
        check_choice("monitor", self.monitor, MONITORS)
        if self.patience is not None:
            _in_range("patience", self.patience, 1, MAX_EPOCHS)
        if not 0 <= self.min_delta < 1:
            raise ConfigError(f"min_delta must be in [0, 1), got {self.min_delta}")
        if self.target_loss is not None and not self.target_loss > 0:
            raise ConfigError(f"target_loss must be > 0, got {self.target_loss}")
        watches = self.patience is not None or self.target_loss is not None
        if watches and self.finetune_monitor == "train" and self.train_eval_size == 0:
            raise ConfigError("patience and target_loss watch the training-set loss: give "
                              "train_eval_size > 0 or a validation_fraction")
        if (self.patience is not None and self.effective_pretrain_epochs > 0
                and self.train_eval_size == 0):
            raise ConfigError("patience watches the small set's loss while pretraining, measured "
                              "on up to train_eval_size of it: give train_eval_size > 0")
        self._check_validation_split_holds_examples()
        if self.monitor == "val" and self.validation_fraction == 0:
            raise ConfigError("monitor val needs a validation split: give validation_fraction")
        if self.target_on == "validation" and self.validation_fraction == 0:
            raise ConfigError("target_on validation needs a validation split: give "
                              "validation_fraction")
        if self.target_accuracy is not None and not 0 < self.target_accuracy <= 1:
            raise ConfigError(f"target_accuracy must be in (0, 1], got {self.target_accuracy}")
        if self.flops_budget is not None and not self.flops_budget > 0:
            raise ConfigError(f"flops_budget must be > 0, got {self.flops_budget}")
        sized = self.subset_fraction is not None or q is not None
        if self.subset_fraction is not None and q is not None:
            raise ConfigError("give subset_fraction or overdetermination_ratio, not both")
        if self.strategy in SIZED_STRATEGIES and not sized:
            raise ConfigError(
                f"strategy {self.strategy!r} needs a size: subset_fraction or "
                "overdetermination_ratio"
            )
        if self.strategy == "none" and (sized or (self.pretrain_epochs or 0) > 0):
            raise ConfigError(
                "strategy 'none' is ordinary training: it takes no subset size or pretrain_epochs"
            )
        if self.strategy != "none" and self.pretrain_epochs == 0:
            raise ConfigError(f"strategy {self.strategy!r} pretrains: pretrain_epochs must be >= 1 "
                              "(ordinary training is strategy 'none')")
        if self.strategy == "class_mean" and sized:
            raise ConfigError(
                "strategy 'class_mean' uses one average image per class: it takes no subset size"
            )

    def _check_validation_split_holds_examples(self) -> None:
        from trainables.sizing import CLASS_COUNTS, validation_size  # sizing imports this module

        fraction = self.validation_fraction
        if fraction > 0 and validation_size(self.dataset, fraction) == 0:
            every_class = 1 / min(CLASS_COUNTS[self.dataset])
            raise ConfigError(f"validation_fraction {fraction:g} holds out no {self.dataset} "
                              f"example (round(fraction x each class's count) is 0); give 0, or "
                              f"{every_class:.2g} or more for one of each class")


_FIELD_TYPES = {f.name: f.type for f in fields(TrialConfig)}  # a setting's annotation, by name


def check_choice(name: str, value: Any, allowed: tuple[str, ...]) -> None:
    """One line naming the bad value and the allowed ones."""
    if value not in allowed:
        raise ConfigError(f"unknown {name} {value!r}; choose from {', '.join(allowed)}")


def _in_range(name: str, value: int, low: int, high: int) -> None:
    if value < low:
        raise ConfigError(f"{name} must be >= {low}, got {value}")
    if value > high:
        raise ConfigError(f"{name} must be <= {high:,}, got {value:,}")


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def convert_setting(key: str, raw: Any) -> Any:
    """A trial setting's value as TrialConfig holds it: `raw` from YAML, JSON or a command line
    ("1e-3" and 0.001 are one value); an unknown name or a bad value raises ConfigError."""
    if key not in _FIELD_TYPES:
        close = (difflib.get_close_matches(key, _FIELD_TYPES, n=1) if isinstance(key, str)
                 else [])
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise ConfigError(f"unknown trial setting {key!r}{hint}")
    return convert_value(key, raw, _FIELD_TYPES[key])


def convert_value(key: str, raw: Any, annotation: str) -> Any:
    """Convert `raw` (a Python value, or a string from the command line) to the field's type."""
    optional = "None" in annotation
    base = annotation.replace("| None", "").strip()
    if raw is None or (optional and isinstance(raw, str) and raw.lower() in ("", "none", "null")):
        if not optional:
            raise ConfigError(f"{key} cannot be empty")
        return None
    try:
        if base == "bool":
            if isinstance(raw, bool):
                return raw
            if isinstance(raw, str) and raw.lower() in _TRUE | _FALSE:
                return raw.lower() in _TRUE
            if isinstance(raw, int | float) and raw in (0, 1):
                return bool(raw)
            raise ValueError
        if base == "int":
            if isinstance(raw, bool):
                raise ValueError
            number = float(raw)
            if not number.is_integer():
                raise ValueError
            return int(number)
        if base == "float":
            if isinstance(raw, bool):
                raise ValueError
            number = float(raw)
            if math.isnan(number):
                raise ValueError
            if math.isinf(number):
                raise ConfigError(f"{key} must be a finite number, got {raw!r}")
            return number
        if base == "str":
            if not isinstance(raw, str):
                raise ValueError
            return raw
    except ConfigError:
        raise
    except (TypeError, ValueError):
        kind = {"bool": "true or false", "int": "a whole number", "float": "a number"}.get(
            base, "text"
        )
        raise ConfigError(f"{key} must be {kind}, got {raw!r}") from None
    raise AssertionError(f"unhandled field type {annotation}")  # a new field needs a converter

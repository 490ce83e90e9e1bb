"""A sweep's specification: which datasets, what is fixed, what is searched, which baselines.

Presets and users' own files are YAML, read safely (no Python objects; `load_yaml`) and checked
completely here, before Ray starts: every problem is a one-line `ConfigError`.

    description: one line for `sweep presets`
    datasets: [digits]
    num_samples: 12            # trials per dataset, baselines included
    sampler: tpe               # tpe | nsga2 | random
    scheduler: none            # none | frontier | asha (early stopping, below)
    early_stopping: {margin: 0.01}        # the frontier scheduler's settings (all optional)
    fixed: {finetune_epochs: 10}          # settings every trial shares
    search:                               # what is swept; lists are categorical,
      strategy: [none, random, class_mean]  # {low, high, log} are ranges
      size_by: [fraction, ratio]
      subset_fraction: {low: 0.02, high: 0.5, log: true}
      overdetermination_ratio: {low: 0.25, high: 4, log: true}
      pretrain_epochs: {low: 1, high: 20}
      lr: {low: 3.0e-4, high: 3.0e-3, log: true}
    baselines: [{}]            # ordinary-training trials run first (strategy none), sampled
                               # or not (without none in strategy, only these run)
    ordinary_training_epochs: 40   # ordinary training's epochs where they differ from
                               # finetune_epochs: its curve then spans the pretraining trials'
"""

from __future__ import annotations

import dataclasses
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from common.errors import ConfigError
from search_spaces.stopping import MARGIN_MAX, FrontierOptions
from trainables.config import (
    DATASETS,
    MAX_EPOCHS,
    SIZED_STRATEGIES,
    STRATEGIES,
    TrialConfig,
    check_choice,
    convert_setting,
    convert_value,
)
from trainables.sizing import check_ratio_fits, largest_ratio

# Swept values, by role (the tuning playbook's words): scientific ones are what a study is about,
# nuisance ones are tuned so that the comparison is fair.
SCIENTIFIC = ("strategy", "size_by", "subset_fraction", "overdetermination_ratio",
              "pretrain_epochs")
NUISANCE = ("width", "lr", "batch_size", "model", "finetune_epochs", "seed", "augment")
SEARCHABLE = SCIENTIFIC + NUISANCE
SIZE_BY = ("fraction", "ratio")
SIZE_KEYS = {"fraction": "subset_fraction", "ratio": "overdetermination_ratio"}


def size_by(search: dict[str, Domain]) -> tuple[str, ...]:
    """How a sized strategy's set is sized: `search.size_by`, else by whichever of
    subset_fraction and overdetermination_ratio the search has (both where it has neither, for
    `_check_search` to name what is missing)."""
    if "size_by" in search:
        return tuple(search["size_by"])
    return tuple(by for by in SIZE_BY if SIZE_KEYS[by] in search) or SIZE_BY
SAMPLERS = ("tpe", "nsga2", "random")
# frontier: stop a trial that other trials dominate at no more compute (sweep.early_stopping);
# asha: successive halving on the search's accuracy (validation when held out) at equal samples.
SCHEDULERS = ("none", "frontier", "asha")
INT_SETTINGS = {"width", "batch_size", "pretrain_epochs", "finetune_epochs", "seed"}
CATEGORICAL = {"strategy", "size_by", "model", "augment"}  # searched as lists only
# Trial settings a sweep sets for each trial (the study's dataset, the sampled small set), which a
# sweep file cannot fix.
SIZES = ("subset_fraction", "overdetermination_ratio")
NOT_FIXABLE = {"dataset", "strategy", *SIZES}
MAX_SAMPLES = 1_000_000
TOP_LEVEL = {"description", "datasets", "num_samples", "sampler", "scheduler", "early_stopping",
             "fixed", "search", "baselines", "ordinary_training_epochs"}


@dataclass(frozen=True)
class Range:
    low: float
    high: float
    log: bool = False
    integer: bool = False


Domain = Range | tuple[Any, ...]


@dataclass(frozen=True)
class SweepSpec:
    description: str
    datasets: tuple[str, ...]
    num_samples: int
    sampler: str = "tpe"
    scheduler: str = "none"
    early_stopping: dict[str, Any] = field(default_factory=dict)  # FrontierOptions' fields
    fixed: dict[str, Any] = field(default_factory=dict)
    search: dict[str, Domain] = field(default_factory=dict)
    baselines: tuple[dict[str, Any], ...] = ({},)
    # ordinary training's epochs on the full set, where they differ from the fixed
    # finetune_epochs: a pretraining trial spends its pretraining on top of those, and a
    # baseline that stops at them leaves its curve short of the compute that trial spends
    ordinary_training_epochs: int | None = None

    @property
    def frontier_options(self) -> FrontierOptions:
        """The frontier scheduler's settings. Without a `metric`, a sweep that holds out a
        validation split is judged on it, as the search and the analysis judge."""
        options = FrontierOptions.from_dict(self.early_stopping)
        if "metric" not in self.early_stopping and self.fixed.get("validation_fraction", 0) > 0:
            options = dataclasses.replace(options, metric="val_accuracy")
        return options

    def _check_frontier_metric_is_measured(self) -> None:
        """The frontier scheduler judges trials on `early_stopping.metric`: a metric no trial
        measures (no validation split, no training-set sample) is null in every record, and the
        scheduler then stops nothing, without a word."""
        metric = self.early_stopping.get("metric")
        if self.scheduler != "frontier" or metric is None:
            return
        for column, key, how in (("val_accuracy", "validation_fraction", "e.g. 0.1"),
                                 ("train_sample_accuracy", "train_eval_size", "e.g. 1000")):
            value = self.fixed.get(key)  # (neither is searched: SEARCHABLE)
            unmeasured = value is None if key == "validation_fraction" else value == 0
            if metric == column and (unmeasured or (isinstance(value, int | float)
                                                    and value <= 0)):
                raise ConfigError(f"early_stopping: metric {metric} is measured only with "
                                  f"{key} above 0 ({how} under fixed:); without it the "
                                  "frontier scheduler would stop nothing")

    @property
    def strategies(self) -> tuple[str, ...]:
        return tuple(self.search.get("strategy", ("none",)))  # type: ignore[arg-type]

    def with_overrides(self, **overrides: Any) -> SweepSpec:
        """A copy with command-line overrides (datasets, num_samples, fixed values), re-checked.
        A scheduler other than the frontier one drops the file's `early_stopping` settings (they
        are that scheduler's; kept, the saved sweep could not be resumed)."""
        changed = {k: v for k, v in overrides.items() if v is not None}
        if changed.get("scheduler", "frontier") != "frontier":
            changed["early_stopping"] = {}
        fixed = {**self.fixed, **{key: convert_setting(key, value)
                                  for key, value in changed.pop("fixed", {}).items()}}
        spec = dataclasses.replace(self, fixed=fixed, **changed)
        spec.validate()
        return spec

    def to_dict(self) -> dict[str, Any]:
        search = {k: ({"low": v.low, "high": v.high, "log": v.log} if isinstance(v, Range)
                      else list(v)) for k, v in self.search.items()}
        return {"description": self.description, "datasets": list(self.datasets),
                "num_samples": self.num_samples, "sampler": self.sampler,
                "scheduler": self.scheduler, "early_stopping": dict(self.early_stopping),
                "fixed": dict(self.fixed), "search": search,
                "baselines": [dict(b) for b in self.baselines],
                **({} if self.ordinary_training_epochs is None
                   else {"ordinary_training_epochs": self.ordinary_training_epochs})}

    def constants(self, dataset: str, strategy: str | None = None) -> dict[str, Any]:
        """The settings a trial of `dataset` does not search: the fixed ones, with ordinary
        training's own epochs for strategy none (`strategy` None: before it is chosen)."""
        constants = {**self.fixed, "dataset": dataset}
        if strategy == "none" and self.ordinary_training_epochs is not None:
            constants["finetune_epochs"] = self.ordinary_training_epochs
        return constants

    def validate(self) -> None:
        if not self.datasets:
            raise ConfigError("datasets: give at least one")
        for dataset in self.datasets:
            check_choice("dataset", dataset, DATASETS)
        if (not isinstance(self.num_samples, int) or isinstance(self.num_samples, bool)
                or not 1 <= self.num_samples <= MAX_SAMPLES):
            raise ConfigError(f"num_samples must be a whole number in [1, {MAX_SAMPLES:,}], "
                              f"got {self.num_samples!r}")
        if self.num_samples < len(self.baselines):
            raise ConfigError(f"num_samples ({self.num_samples}) is less than the number of "
                              f"baselines ({len(self.baselines)})")
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("scheduler", self.scheduler, SCHEDULERS)
        FrontierOptions.from_dict(self.early_stopping)  # a bad setting is a ConfigError
        self._check_frontier_metric_is_measured()
        for key in self.fixed:
            if key in NOT_FIXABLE:
                one = (f"; one size for every trial is a one-item list: search: {{{key}: "
                       f"[{self.fixed[key]}]}}" if key in SIZES else "")
                raise ConfigError(f"fixed: {key!r} is set by the sweep, not fixed{one}")
            if key in self.search:
                raise ConfigError(f"{key!r} is both fixed and searched")
        _check_search(self.search)
        if self.ordinary_training_epochs is not None:
            epochs = self.ordinary_training_epochs
            if (not isinstance(epochs, int) or isinstance(epochs, bool)
                    or not 1 <= epochs <= MAX_EPOCHS):
                raise ConfigError("ordinary_training_epochs must be a whole number of epochs in "
                                  f"[1, {MAX_EPOCHS:,}], got {epochs!r}")
            if "finetune_epochs" in self.search:
                raise ConfigError("ordinary_training_epochs: finetune_epochs is searched, so "
                                  "ordinary training's epochs are too; set one or the other")
            if "none" not in self.strategies and not self.baselines:
                raise ConfigError("ordinary_training_epochs: no ordinary training runs (none is "
                                  "not among search.strategy and there are no baselines)")
        self._check_ordinary_training_trains()
        for dataset in self.datasets:
            for settings in self._corners(dataset):
                TrialConfig.from_dict(settings)  # raises ConfigError naming the bad value

    def _check_ordinary_training_trains(self) -> None:
        """Ordinary training for 0 epochs is no baseline: refused wherever it could run so (a
        fixed 0, or a searched range or list holding 0 that sampled ordinary-training trials or
        baselines leaving it unpinned draw), unless ordinary training has its own epochs."""
        if self.ordinary_training_epochs is not None:
            return  # >= 1, checked above
        epochs: list[Any] = [b["finetune_epochs"] for b in self.baselines
                             if "finetune_epochs" in b]
        domain = self.search.get("finetune_epochs")
        drawn = "none" in self.strategies or any("finetune_epochs" not in b
                                                 for b in self.baselines)
        if drawn:  # (a baseline pins finetune_epochs only where it is searched)
            epochs += ([self.fixed.get("finetune_epochs")] if domain is None  # None: default
                       else _edges(domain))
        if 0 in epochs:
            raise ConfigError("finetune_epochs: ordinary training for 0 epochs is no baseline; "
                              "give at least 1 (or ordinary_training_epochs)")

    def _corners(self, dataset: str):
        """Trial settings at the edges of the space: each one must be a valid trial."""
        base = self.constants(dataset)
        nuisance = [(k, d) for k, d in self.search.items() if k in NUISANCE]
        for key, domain in nuisance:
            for value in _edges(domain):
                yield {**base, key: value}
        for strategy in self.strategies:
            sizes: list[dict[str, Any]] = [{}]
            if strategy in SIZED_STRATEGIES:
                by = size_by(self.search)
                sizes = []
                if "fraction" in by:
                    sizes += [{"subset_fraction": v}
                              for v in _edges(self.search["subset_fraction"])]
                if "ratio" in by:
                    low = min(_edges(self.search["overdetermination_ratio"]))
                    # Q beyond the training set for every model searched: nothing could run
                    check_ratio_fits(TrialConfig.from_dict(self._roomiest(base)), low)
                    sizes += [{"overdetermination_ratio": v}
                              for v in _edges(self.search["overdetermination_ratio"])]
            settings = {**self.constants(dataset, strategy), "strategy": strategy}
            for size in sizes:
                yield {**settings, **size}
            if strategy != "none" and "pretrain_epochs" in self.search:
                for value in _edges(self.search["pretrain_epochs"]):
                    yield {**settings, **sizes[0], "pretrain_epochs": value}
        for baseline in self.baselines:
            yield {**self.constants(dataset, "none"), "strategy": "none", **baseline}

    def _roomiest(self, base: dict[str, Any]) -> dict[str, Any]:
        """Ordinary-training settings of the model, among those searched, that allows the
        largest Q: each searched model at its narrowest searched width (fewest parameters)."""
        models = list(self.search["model"]) if "model" in self.search else [base.get("model")]
        widths = ([int(min(_edges(self.search["width"])))] if "width" in self.search
                  else [base.get("width")])
        candidates = [{k: v for k, v in {**base, "strategy": "none", "model": model,
                                         "width": width}.items() if v is not None}
                      for model in models for width in widths]
        return max(candidates, key=largest_ratio)


def _whole(key: str, value: Any) -> int | None:
    """A whole number as a fixed setting takes one (20, 20.0 or "20"), or None."""
    return None if value is None else convert_value(key, value, "int")


def _mapping(value: Any, key: str) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ConfigError(f"{key} must be a mapping of setting: value")
    return dict(value)


def _edges(domain: Domain) -> list[Any]:
    return [domain.low, domain.high] if isinstance(domain, Range) else list(domain)


def parse_spec(data: Any, source: str) -> SweepSpec:
    """Check a loaded YAML document and build the spec; errors name `source` and the key."""
    try:
        return _parse(data)
    except ConfigError as e:
        raise ConfigError(f"{source}: {e}") from None


def _parse(data: Any) -> SweepSpec:
    if not isinstance(data, dict):
        raise ConfigError("expected a mapping of settings at the top level")
    unknown = set(data) - TOP_LEVEL
    if unknown:
        check_choice("key", sorted(unknown)[0], tuple(sorted(TOP_LEVEL)))
    datasets = data.get("datasets", ["digits"])
    if isinstance(datasets, str):
        datasets = [datasets]
    if not isinstance(datasets, list) or not all(isinstance(d, str) for d in datasets):
        raise ConfigError("datasets must be a list of names")
    description = data.get("description")
    description = "" if description is None else description
    if isinstance(description, int | float) and not isinstance(description, bool):
        description = str(description)  # YAML reads `description: 2024` as a number
    if not isinstance(description, str):
        raise ConfigError("description must be text (quote it if it has a ':' in it)")
    fixed = data.get("fixed") or {}
    if not isinstance(fixed, dict):
        raise ConfigError("fixed must be a mapping of trial settings")
    fixed = {key: convert_setting(key, value) for key, value in fixed.items()}
    search_raw = data.get("search") or {}
    if not isinstance(search_raw, dict):
        raise ConfigError("search must be a mapping of setting: list or {low, high}")
    search = {key: _domain(key, value) for key, value in search_raw.items()}
    baselines = data.get("baselines", [{}])
    if not isinstance(baselines, list) or not all(isinstance(b, dict) for b in baselines):
        raise ConfigError("baselines must be a list of mappings")
    for b in baselines:
        if b.get("strategy", "none") != "none":
            raise ConfigError("baselines are ordinary training: strategy must be none")
        for key, value in b.items():
            if key == "strategy":
                continue
            if key not in NUISANCE or key not in search:
                # Optuna pins only values the space suggests; fixed ones apply to baselines too.
                raise ConfigError(f"baselines: {key!r} is not a searched nuisance setting")
            try:
                b[key] = value = convert_setting(key, value)
            except ConfigError as e:
                raise ConfigError(f"baselines: {e}") from None
            if not _within(search[key], value):
                # Optuna would refuse it when the study is rebuilt from the log (a resume)
                raise ConfigError(f"baselines: {key} {value!r} is outside search.{key}")
    spec = SweepSpec(
        description=description,
        datasets=tuple(dict.fromkeys(datasets)),  # a name listed twice is swept once
        num_samples=data.get("num_samples", 10),
        sampler=str(data.get("sampler", "tpe")).lower(),
        scheduler=str(data.get("scheduler", "none")).lower(),
        early_stopping=_mapping(data.get("early_stopping"), "early_stopping"),
        fixed=fixed,
        search=search,
        baselines=tuple({k: v for k, v in b.items() if k != "strategy"} for b in baselines),
        ordinary_training_epochs=_whole("ordinary_training_epochs",
                                        data.get("ordinary_training_epochs")),
    )
    spec.validate()
    if spec.early_stopping and spec.scheduler != "frontier":
        raise ConfigError("early_stopping: these are the frontier scheduler's settings; set "
                          "scheduler: frontier")
    return spec


def written_before_dominated(spec: dict[str, Any]) -> dict[str, Any]:
    """A saved spec as today's parser reads it: sweeps made before `dominated` existed turned
    the dominance rule off with a margin of 1 or more (no trial is that far ahead). A saved
    margin above MARGIN_MAX (20 pp), now refused, is read so too: such a rule stopped a trial
    only when another was that far ahead for less compute."""
    options = spec.get("early_stopping") or {}
    margin = options.get("margin")
    if (isinstance(margin, int | float) and margin > MARGIN_MAX
            and "dominated" not in options):
        rest = {k: v for k, v in options.items() if k != "margin"}
        return {**spec, "early_stopping": {**rest, "dominated": False}}
    return spec


def _within(domain: Domain, value: Any) -> bool:
    """Whether the space could suggest `value` for this domain."""
    if not isinstance(domain, Range):
        return value in domain  # as Optuna finds a categorical value (==)
    if not isinstance(value, int | float) or isinstance(value, bool):
        return False
    whole = not domain.integer or float(value).is_integer()
    return whole and domain.low <= value <= domain.high


def _domain(key: str, value: Any) -> Domain:
    check_choice("searched setting", key, SEARCHABLE)
    if isinstance(value, list):
        if not value:
            raise ConfigError(f"search.{key}: empty list")
        if key != "size_by":  # the others are trial settings: '1e-3' and 0.001 are one choice
            value = [convert_setting(key, choice) for choice in value]
        return tuple(dict.fromkeys(value))
    if isinstance(value, dict) and key in CATEGORICAL:
        raise ConfigError(f"search.{key}: give a list of choices (a range is for numbers)")
    if isinstance(value, dict):
        if set(value) - {"low", "high", "log"} or not {"low", "high"} <= set(value):
            raise ConfigError(f"search.{key}: a range is {{low, high, log}}")
        low, high, log = value["low"], value["high"], value.get("log", False)
        numbers = all(isinstance(v, int | float) and not isinstance(v, bool) for v in (low, high))
        if not numbers:
            raise ConfigError(f"search.{key}: low and high must be numbers")
        if not (math.isfinite(low) and math.isfinite(high)):
            raise ConfigError(f"search.{key}: low and high must be finite, got {low}, {high}")
        if low > high:
            raise ConfigError(f"search.{key}: low ({low}) is above high ({high})")
        if not isinstance(log, bool):
            raise ConfigError(f"search.{key}: log must be true or false")
        if log and low <= 0:
            raise ConfigError(f"search.{key}: a log range needs low > 0")
        integer = key in INT_SETTINGS
        if integer and not (float(low).is_integer() and float(high).is_integer()):
            raise ConfigError(f"search.{key}: low and high must be whole numbers")
        return Range(float(low), float(high), log, integer)
    raise ConfigError(f"search.{key}: expected a list of choices or {{low, high}}")


def _check_search(search: dict[str, Domain]) -> None:
    strategies = search.get("strategy", ("none",))
    if isinstance(strategies, Range):
        raise ConfigError("search.strategy must be a list")
    for strategy in strategies:
        check_choice("strategy", strategy, STRATEGIES)
    by = search.get("size_by", SIZE_BY)
    if isinstance(by, Range) or not set(by) <= set(SIZE_BY):
        raise ConfigError("search.size_by must be a list of fraction, ratio")
    by = size_by(search)
    _check_everything_searched_is_drawn(search, strategies, by)
    if any(s in SIZED_STRATEGIES for s in strategies):
        if "size_by" not in search and not any(key in search for key in SIZE_KEYS.values()):
            raise ConfigError(f"search: strategies {', '.join(SIZED_STRATEGIES)} need a size: "
                              "search.subset_fraction or search.overdetermination_ratio (or "
                              "both), each a range or a list")
        for needed, name in SIZE_KEYS.items():
            if needed in by and name not in search:
                only = next(b for b in SIZE_BY if b != needed)
                raise ConfigError(f"search: sizing by {needed} (size_by: [{', '.join(by)}]) needs "
                                  f"search.{name}, a range or a list; or size by {only} "
                                  f"alone: size_by: [{only}]")
    for name in ("subset_fraction", "overdetermination_ratio"):
        domain = search.get(name)
        if domain is not None and not isinstance(domain, Range) and not all(
                isinstance(v, int | float) and not isinstance(v, bool) for v in domain):
            raise ConfigError(f"search.{name} must be a range {{low, high}} or a list of numbers")


def _check_everything_searched_is_drawn(search: dict[str, Domain], strategies: Domain,
                                        by: tuple[str, ...]) -> None:
    """A searched setting no trial would draw: the sweep would search less than its file says."""
    def never(key: str, why: str) -> ConfigError:
        return ConfigError(f"search.{key} is never drawn: {why}; drop it or change the strategies")

    if not any(s in SIZED_STRATEGIES for s in strategies):
        for key in ("size_by", *SIZES):
            if key in search:
                raise never(key, f"no strategy searched ({', '.join(strategies)}) takes a size; "
                                 f"{', '.join(SIZED_STRATEGIES)} do")
    for needed, key in SIZE_KEYS.items():
        if key in search and needed not in by:
            raise ConfigError(f"search.{key} is never drawn: size_by is [{', '.join(by)}]; add "
                              f"{needed} to size_by or drop search.{key}")
    if "pretrain_epochs" in search and set(strategies) == {"none"}:
        raise never("pretrain_epochs", "ordinary training (strategy none) does not pretrain")


def load_spec_file(path: str | Path) -> SweepSpec:
    """A user's own sweep file (safe YAML)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not a text file (not UTF-8)") from None
    try:
        data = load_yaml(text)
    except yaml.YAMLError as e:
        where = getattr(e, "problem_mark", None)
        line = f" at line {where.line + 1}" if where else ""
        raise ConfigError(f"{path}: not valid YAML{line} ({getattr(e, 'problem', e)})") from None
    return parse_spec(data, str(path))


def load_yaml(text: str) -> Any:
    """A sweep file's document: see _UniqueKeyLoader."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 (a SafeLoader)


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.safe_load, except that a mapping naming a key twice is an error (plain YAML keeps
    the last value silently), and so is a key that is not a name (every key of a sweep file
    names a setting); and `1e-3` is a number, as in YAML 1.2 and JSON (PyYAML's YAML 1.1 reads
    it as text, and wants `1.0e-3`)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict:
        seen = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if not isinstance(key, str):
                raise yaml.constructor.ConstructorError(
                    None, None, "a key must be a setting's name, got "
                    + (repr(key) if key is None or isinstance(key, int | float) else
                       f"a {type(key).__name__}"),
                    key_node.start_mark)
            if key in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep)


_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*(?:\.[0-9_]*)?|\.[0-9_]+)[eE][-+]?[0-9]+$"),
    list("-+.0123456789"))

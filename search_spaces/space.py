"""The define-by-run search space: reads like the experiment's description, computes nothing.

    choose a strategy (a baseline is ordinary training, chosen or not);
    if it selects a subset, choose how to size it (fraction or Q) and a fraction's size;
    if it pretrains at all, choose the pretraining epochs;
    choose the nuisance values (width, lr, batch size, ...) that are searched;
    then a Q, where the small set is sized by one: a range of Q ends, for this trial, where the
    small set would be the whole training set (for the model and width just chosen).

Returns the fixed settings as constants; Ray Tune merges them with the suggested values. Of the
suggested values, `SEARCH_ONLY` ones are choices of the search (how to size the small set), not
trial settings: the trainable leaves them out of the trial's config.
"""

from __future__ import annotations

import dataclasses
import math
import random
from typing import Any

from search_spaces.spec import NUISANCE, Domain, Range, SweepSpec, size_by
from trainables.config import SIZED_STRATEGIES, TrialConfig
from trainables.sizing import largest_ratio, ratio_beyond_data

# Suggested values that choose how the search goes on rather than set a trial (`size_by` picks
# which of subset_fraction and overdetermination_ratio is suggested).
SEARCH_ONLY = ("size_by",)


def define_space(trial: Any, spec: SweepSpec, dataset: str) -> dict[str, Any]:
    """Optuna define-by-run function for one dataset's study (bind the last two with partial)."""
    search = spec.search
    chosen: dict[str, Any] = {}
    if _unsampled_baseline(trial, spec):
        strategy = "none"
        constants = {**spec.constants(dataset, strategy), "strategy": strategy}
    else:
        strategy = trial.suggest_categorical("strategy", list(spec.strategies))
        constants = spec.constants(dataset, strategy)
    by = None
    if strategy in SIZED_STRATEGIES:
        by = trial.suggest_categorical("size_by", list(size_by(search)))
        if by == "fraction":
            _suggest(trial, "subset_fraction", search["subset_fraction"])
    if strategy != "none" and "pretrain_epochs" in search:
        _suggest(trial, "pretrain_epochs", search["pretrain_epochs"])
    for key in NUISANCE:
        if key in search:
            chosen[key] = _suggest(trial, key, search[key])
    if by == "ratio":  # last: how large a Q can be depends on the model chosen
        domain = search["overdetermination_ratio"]
        if isinstance(domain, Range):
            high = min(domain.high, largest_ratio({**constants, **chosen}))
            domain = dataclasses.replace(domain, high=max(domain.low, high))
        _suggest(trial, "overdetermination_ratio", domain)
    return constants


def _unsampled_baseline(trial: Any, spec: SweepSpec) -> bool:
    """Whether this is a baseline (an enqueued ordinary-training trial) of a sweep whose sampler
    does not choose ordinary training (`none` not among the strategies): its strategy is then a
    constant, not a parameter the sampler learns from, and ordinary training runs only as the
    baselines say. (Optuna keeps an enqueued trial's values in `_fixed_params`; a trial replayed
    from the log has all of its values fixed.)"""
    fixed = getattr(trial, "_fixed_params", None) or {}
    return "none" not in spec.strategies and fixed.get("strategy") == "none"


def _suggest(trial: Any, name: str, domain: Domain) -> Any:
    if isinstance(domain, Range):
        if domain.integer:
            return trial.suggest_int(name, int(domain.low), int(domain.high), log=domain.log)
        return trial.suggest_float(name, domain.low, domain.high, log=domain.log)
    return trial.suggest_categorical(name, list(domain))


def trial_settings(config: dict[str, Any]) -> dict[str, Any]:
    """A sampled configuration's trial settings: everything but the `SEARCH_ONLY` choices."""
    return {k: v for k, v in config.items() if k not in SEARCH_ONLY}


def beyond_data(config: dict[str, Any]) -> str | None:
    """Why a sampled configuration cannot run as drawn: its Q asks for a small set larger than
    the training set its model pretrains from (the "subset" would be all of it; a wider model
    in the space or a long range of Q can draw one). None where it can."""
    q = config.get("overdetermination_ratio")
    if q is None or config.get("strategy") not in SIZED_STRATEGIES:
        return None
    return ratio_beyond_data(TrialConfig.from_dict(trial_settings(config)), q)


def baseline_points(spec: SweepSpec) -> list[dict[str, Any]]:
    """The ordinary-training trials every study starts with (Optuna's enqueued trials).

    Nuisance values a baseline does not name are sampled like any trial's.
    """
    return [{"strategy": "none", **baseline} for baseline in spec.baselines]


class _Replay:
    """Answers a define-by-run space with a trial's known settings, recording what was asked."""

    def __init__(self, settings: dict[str, Any]) -> None:
        self.settings = settings
        self._fixed_params = settings  # what an enqueued Optuna trial would carry
        self.params: dict[str, Any] = {}
        self.domains: dict[str, tuple[str, tuple[Any, ...], dict[str, Any]]] = {}

    def _answer(self, name: str) -> Any:
        if name == "size_by":
            return "fraction" if self.settings.get("subset_fraction") is not None else "ratio"
        return self.settings[name]

    def _record(self, kind: str, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        value = self._answer(name)
        self.params[name] = value
        self.domains[name] = (kind, args, kwargs)
        return value

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._record("categorical", name, (tuple(choices),), {})

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> Any:
        return self._record("int", name, (low, high), {"log": log})

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> Any:
        if name == "overdetermination_ratio":  # a sweep made before a range of Q ended where
            value = self._answer(name)         # the data does may hold a trial beyond it
            low, high = min(low, value), max(high, value)
        return self._record("float", name, (low, high), {"log": log})


class _Infinite(Exception):
    """A float range: the space has no end to enumerate."""


class _Walk:
    """Answers a define-by-run space along one path of choices (`path[d]` at the d-th question,
    then the first option), recording how many options each question had."""

    def __init__(self, path: list[int]) -> None:
        self.path, self.params, self.counts = path, {}, []

    def _choose(self, name: str, options: list[Any]) -> Any:
        depth = len(self.counts)
        self.counts.append(len(options))
        value = options[self.path[depth] if depth < len(self.path) else 0]
        self.params[name] = value
        return value

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        return self._choose(name, list(choices))

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> Any:
        return self._choose(name, list(range(low, high + 1)))

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> Any:
        raise _Infinite


def enumerate_space(spec: SweepSpec, dataset: str, limit: int = 100_000) -> list[dict] | None:
    """Every configuration the sampler can suggest (each as Optuna's params), or None where the
    space is unbounded (a float range) or holds more than `limit`."""
    found: list[dict] = []
    paths: list[list[int]] = [[]]
    while paths:
        path = paths.pop()
        walk = _Walk(path)
        try:
            define_space(walk, spec, dataset)
        except _Infinite:
            return None
        found.append(walk.params)
        if len(found) > limit:
            return None
        for depth in range(len(path), len(walk.counts)):  # the branches beside this path
            chosen = path[:depth] + [0] * (depth - len(path))
            paths += [chosen + [i] for i in range(1, walk.counts[depth])]
    return found


class _Lot:
    """Answers a define-by-run space by lot: each choice alike, ranges uniformly (in the log
    where the range is log-scaled), as Optuna's RandomSampler draws."""

    def __init__(self, rng: random.Random) -> None:
        self.rng, self.params = rng, {}

    def suggest_categorical(self, name: str, choices: list[Any]) -> Any:
        self.params[name] = value = self.rng.choice(list(choices))
        return value

    def suggest_int(self, name: str, low: int, high: int, log: bool = False) -> Any:
        if log:
            drawn = math.exp(self.rng.uniform(math.log(low - 0.5), math.log(high + 0.5)))
            value = min(high, max(low, round(drawn)))
        else:
            value = self.rng.randint(low, high)
        self.params[name] = value
        return value

    def suggest_float(self, name: str, low: float, high: float, log: bool = False) -> Any:
        value = (math.exp(self.rng.uniform(math.log(low), math.log(high))) if log
                 else self.rng.uniform(low, high))
        self.params[name] = value = min(high, max(low, value))
        return value


def draw_by_lot(spec: SweepSpec, dataset: str, rng: random.Random) -> dict[str, Any]:
    """One configuration of the space drawn by lot (as Optuna's params)."""
    lot = _Lot(rng)
    define_space(lot, spec, dataset)
    return lot.params


def replay_space(spec: SweepSpec, dataset: str,
                 settings: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """The values the space would have suggested for a trial with these settings, and how each
    was suggested: `(params, {name: (kind, args, kwargs)})`, kind one of categorical, int,
    float. What rebuilds a study's trial from the result log (`sweep.study`) needs."""
    replay = _Replay(settings)
    define_space(replay, spec, dataset)
    return replay.params, replay.domains

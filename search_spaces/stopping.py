"""The `early_stopping:` mapping of a sweep file: the settings of `--scheduler frontier` (the rule
itself is `sweep.early_stopping`), checked with the rest of the spec before Ray starts."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from common.errors import ConfigError
from common.records import LOG

MARGIN_MAX = 0.2  # a margin of 20 pp stops nothing worth stopping; 1 or 2 is meant as pp


@dataclass(frozen=True)
class FrontierOptions:
    """The rule's settings (the `early_stopping:` mapping of a sweep file)."""

    margin: float = 0.01  # accuracy another trial must be ahead by (a fraction: 0.01 = 1 pp) ...
    flops_factor: float = 1.5  # ... with at most 1/flops_factor of the trial's compute
    dominated: bool = True  # stop trials so dominated (false: only the race stops trials)
    first_rung: float = 1.0  # the first rung, in full-set epochs of the trial's model
    eta: float = 3.0  # each rung is eta times the last
    pretrain_allowance: float | None = None  # mid-pretraining judged past this x the rung
    stop_ordinary: bool = False  # whether ordinary-training trials may be stopped too
    beaten_to_target: bool = True  # stop trials beaten to the target
    tolerance: float = 0.005  # the target: ordinary training's best accuracy less this
    metric: str = "test_accuracy"  # the accuracy judged; a sweep with a validation split
    # and no `metric` set judges val_accuracy (SweepSpec.frontier_options), as the search does

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> FrontierOptions:
        """Options from a sweep file's mapping; unknown keys and bad values are one-line errors."""
        d = dict(d or {})
        known = {f for f in cls.__dataclass_fields__}
        for key in d:
            if key not in known:
                raise ConfigError(f"early_stopping: unknown option {key!r}; choose from "
                                  f"{', '.join(sorted(known))}")
        options = cls(**d)
        options.validate()
        return options

    def validate(self) -> None:
        def number(name: str, value: Any, low: float, low_open: bool) -> None:
            ok = (isinstance(value, int | float) and not isinstance(value, bool)
                  and math.isfinite(value) and (value > low if low_open else value >= low))
            if not ok:
                bound = f"> {low:g}" if low_open else f">= {low:g}"
                raise ConfigError(f"early_stopping: {name} must be a finite number {bound}, "
                                  f"got {value!r}")

        number("margin", self.margin, 0, low_open=False)
        if self.margin > MARGIN_MAX:
            raise ConfigError(f"early_stopping: margin is accuracy as a fraction (0.01 is 1 pp), "
                              f"at most {MARGIN_MAX:g}; got {self.margin:g}. To stop trials by "
                              "the race to the target only: dominated: false")
        number("first_rung", self.first_rung, 0, low_open=True)
        number("eta", self.eta, 1, low_open=True)
        number("flops_factor", self.flops_factor, 1, low_open=False)
        if self.pretrain_allowance is not None:
            number("pretrain_allowance", self.pretrain_allowance, 1, low_open=False)
        for name in ("stop_ordinary", "beaten_to_target", "dominated"):
            if not isinstance(getattr(self, name), bool):
                raise ConfigError(f"early_stopping: {name} must be true or false, got "
                                  f"{getattr(self, name)!r}")
        number("tolerance", self.tolerance, 0, low_open=False)
        accuracies = [c.name for c in LOG if c.kind == "float" and c.name.endswith("accuracy")]
        if self.metric not in accuracies:
            raise ConfigError(f"early_stopping: metric must be one of {', '.join(accuracies)}, "
                              f"got {self.metric!r}")

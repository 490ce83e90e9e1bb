"""How a sweep runs (its name, storage, resources, retries) and where Ray runs: plain values,
checked before anything starts, saved in sweep.json so that `resume` reuses them. The CLI takes its
defaults from here."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from common import storage
from common.errors import UserError
from common.layout import SweepLayout
from trainables.config import MAX_SEED

RESOURCE_UNIT = 0.0001  # Ray's smallest fraction of a CPU or GPU
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
MAX_NAME = 100


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs (saved in sweep.json; `resume` reuses them)."""

    name: str
    storage: str  # the folder or URI holding the sweep folder
    seed: int = 0  # the sampler's seed
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2  # retries of a failed trial, each from its last checkpoint
    max_concurrent_trials: int | None = None
    # Where the sweep folder is when it was moved or copied after it was made (`resume` sets
    # it); the name still names the sweep: its Optuna studies and its rows' `sweep` column.
    moved_to: str | None = None

    def validate(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise UserError(f"--name {self.name!r}: use letters, digits, '.', '_' and '-'")
        if len(self.name) > MAX_NAME:
            raise UserError(f"--name is {len(self.name)} characters long; use at most "
                            f"{MAX_NAME} (it names files and an Optuna study)")
        for flag, value in (("--cpus-per-trial", self.cpus_per_trial),
                            ("--gpus-per-trial", self.gpus_per_trial)):
            if not math.isfinite(value):
                raise UserError(f"{flag} must be a finite number, got {value}")
        if not self.cpus_per_trial > 0:
            raise UserError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise UserError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        for flag, value in (("--cpus-per-trial", self.cpus_per_trial),
                            ("--gpus-per-trial", self.gpus_per_trial)):
            if 0 < value < RESOURCE_UNIT:
                raise UserError(f"{flag} {value:g}: Ray counts resources in steps of "
                                f"{RESOURCE_UNIT:g}; use at least that")
        if not 0 <= self.seed <= MAX_SEED:
            raise UserError(f"--seed must be in [0, {MAX_SEED}], got {self.seed}")
        if self.max_concurrent_trials is not None and self.max_concurrent_trials < 1:
            raise UserError(f"--max-concurrent-trials must be >= 1, got "
                            f"{self.max_concurrent_trials}")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise UserError("--gpus-per-trial above 1 must be a whole number of GPUs")
        if self.max_failures < 0:
            raise UserError(f"--max-failures must be >= 0, got {self.max_failures}")

    @property
    def folder(self) -> str:
        return self.moved_to or storage.join(self.storage, self.name)

    @property
    def layout(self) -> SweepLayout:
        return SweepLayout(self.folder)


@dataclass(frozen=True)
class RayOptions:
    """Where to run: an existing cluster (`address`), or a local Ray started here."""

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: float | None = None
    verbose: bool = False  # show Ray's and Optuna's own output (quiet otherwise)
    logical_gpus: bool = False  # allow --num-gpus beyond the machine's GPUs (trials use the CPU)

    def validate(self) -> None:
        if self.num_cpus is not None and self.num_cpus < 1:
            raise UserError(f"--num-cpus must be >= 1, got {self.num_cpus}")
        if self.num_gpus is not None and not math.isfinite(self.num_gpus):
            raise UserError(f"--num-gpus must be a finite number, got {self.num_gpus}")
        if self.num_gpus is not None and self.num_gpus < 0:
            raise UserError(f"--num-gpus must be >= 0, got {self.num_gpus}")
        if self.address and (self.num_cpus is not None or self.num_gpus is not None):
            raise UserError("--num-cpus/--num-gpus size a local Ray; a cluster (--address) has "
                            "its own")

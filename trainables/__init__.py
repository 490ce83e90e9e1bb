"""The pretrain-then-finetune pipeline in plain PyTorch, with an exact FLOPs ledger.

Runs and is tested without Ray; `trainables.tune_adapter` wraps it as a Ray Tune trainable.
The names below load on first use, so `trainables.config` and `trainables.sizing` (what the
launcher needs to check a sweep before anything starts) import without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from common.errors import ConfigError, DataNotFoundError
from common.provenance import VERSION as __version__
from common.records import RECORD_COLUMNS
from trainables.config import TrialConfig

_LAZY = {  # name: the module that defines it (imports torch)
    "Dataset": "trainables.data", "RawData": "trainables.data",
    "load_dataset": "trainables.data", "read_raw": "trainables.data",
    "build_model": "trainables.models", "count_params": "trainables.models",
    "TrialRunner": "trainables.train", "run_trial": "trainables.train",
}

__all__ = ["RECORD_COLUMNS", "ConfigError", "DataNotFoundError", "TrialConfig", "__version__",
           *_LAZY]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'trainables' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)

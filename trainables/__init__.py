"""The pretrain-then-finetune pipeline in plain PyTorch, with an exact FLOPs ledger.

Runs and is tested without Ray; `trainables.tune_adapter` wraps it as a Ray Tune trainable.
"""

__version__ = "0.1.0"

from trainables.config import ConfigError, TrialConfig  # noqa: E402
from trainables.data import DataNotFoundError, Dataset, RawData, load_dataset, read_raw  # noqa: E402
from trainables.models import build_model, count_params  # noqa: E402
from trainables.train import RECORD_COLUMNS, TrialRunner, run_trial  # noqa: E402

__all__ = [
    "RECORD_COLUMNS", "ConfigError", "DataNotFoundError", "Dataset", "RawData", "TrialConfig",
    "TrialRunner", "__version__", "build_model", "count_params", "load_dataset", "read_raw",
    "run_trial",
]

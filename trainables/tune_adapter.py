"""The pipeline as a Ray Tune function trainable: report each record, checkpoint, resume.

Every evaluation is reported together with a checkpoint of the whole runner (model, optimizer,
RNG, ledger, subset, position), so a trial restored from its latest checkpoint repeats no record
and skips none. The dataset arrives already read (`tune.with_parameters` puts it in Ray's object
store once; trials on a node share that node's copy). The trial trains on the GPU Ray assigned it,
or on the CPU when it has none.
"""

from __future__ import annotations

import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from trainables.config import TrialConfig
from trainables.data import RawData
from trainables.train import TrialRunner

STATE_FILE = "trial_state.pt"
# Keys the sweep adds to a trial's config that are not trial settings.
SWEEP_KEYS = ("sweep", "size_by")


def tune_trainable(config: dict[str, Any], datasets: dict[str, RawData] | None = None) -> None:
    """Ray Tune function trainable: `tune.with_parameters(tune_trainable, datasets={...})`."""
    import ray
    from ray import tune

    settings = {k: v for k, v in config.items() if k not in SWEEP_KEYS}
    trial_config = TrialConfig.from_dict(settings)
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    runner = TrialRunner(trial_config, raw=(datasets or {}).get(trial_config.dataset))
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            state = torch.load(Path(folder) / STATE_FILE, weights_only=True, map_location="cpu")
        runner.load_state_dict(state)
    runner.labels = {"sweep": str(config.get("sweep", "")),
                     "trial_id": tune.get_context().get_trial_id()}
    where = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
             "trial_start_unix": time.time()}

    def report(record: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as folder:
            torch.save(runner.state_dict(), Path(folder) / STATE_FILE)
            tune.report({**record, **where, "unix_time": time.time()},
                        checkpoint=tune.Checkpoint.from_directory(folder))

    runner.run(report)

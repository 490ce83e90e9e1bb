"""The pipeline as a Ray Tune function trainable: report each record, save state, resume.

After each evaluation is reported, the whole runner (model, optimizer, RNG, ledger, subset,
position) is written atomically to `<state_location>/<trial_id>/<evaluation>.pt`; the newest few
are kept. A trial that starts again (a retry after its worker died, or a resumed sweep) continues
from the newest readable state whose evaluation the result log already holds: the evaluations
after it are made again and replace their rows, so the log has no gap and no duplicate whatever
moment a crash hits. (Tune's own checkpoint registry is not used for this: a snapshot of it can
name a checkpoint that Tune has already deleted, and restoring from it then fails.)

The dataset arrives already read (`tune.with_parameters` puts it in Ray's object store once;
trials on a node share that node's copy). The trial trains on the GPU Ray assigned it, or on the
CPU when it has none.
"""

from __future__ import annotations

import io
import os
import socket
import time
from collections.abc import Callable
from typing import Any

import torch

from trainables import storage
from trainables.config import TrialConfig
from trainables.data import RawData
from trainables.train import TrialRunner

# Keys the sweep adds to a trial's config that are not trial settings.
SWEEP_KEYS = ("sweep", "size_by")
KEEP_STATES = 4


class TrialStates:
    """One trial's saved states, `<location>/<trial_id>/<evaluation>.pt` (local or URI)."""

    def __init__(self, location: str, trial_id: str) -> None:
        self.folder = storage.join(location, trial_id)

    def save(self, evaluation: int, state: dict[str, Any]) -> None:
        buffer = io.BytesIO()
        torch.save(state, buffer)
        storage.make_dirs(self.folder)
        storage.write_bytes_atomic(self._path(evaluation), buffer.getvalue())
        for old in self.evaluations()[:-KEEP_STATES]:
            fs, path = storage.filesystem(self._path(old))
            fs.delete_file(path)

    def evaluations(self) -> list[int]:
        import pyarrow.fs as pafs

        fs, path = storage.filesystem(self.folder)
        try:
            found = fs.get_file_info(pafs.FileSelector(path))
        except FileNotFoundError:
            return []
        return sorted(int(f.base_name[:-3]) for f in found
                      if f.base_name.endswith(".pt") and f.base_name[:-3].isdigit())

    def load_latest(self, at_most: int) -> tuple[int, dict[str, Any]] | None:
        """The newest readable state with evaluation <= `at_most`; unreadable ones are named."""
        for evaluation in reversed(self.evaluations()):
            if evaluation > at_most:
                continue
            location = self._path(evaluation)
            try:
                fs, path = storage.filesystem(location)
                with fs.open_input_stream(path) as f:
                    data = f.read()
                return evaluation, torch.load(io.BytesIO(data), weights_only=True,
                                              map_location="cpu")
            except Exception as e:  # truncated, corrupt or foreign: any of torch's load errors
                print(f"warning: checkpoint {location} is unreadable ({type(e).__name__}: "
                      f"{str(e).splitlines()[0][:200] if str(e) else ''}); trying an older one",
                      flush=True)
        return None

    def _path(self, evaluation: int) -> str:
        return storage.join(self.folder, f"{evaluation:06d}.pt")


def tune_trainable(config: dict[str, Any], datasets: dict[str, RawData] | None = None,
                   state_location: str | None = None,
                   logged_until: Callable[[str], int] | None = None) -> None:
    """Ray Tune function trainable, bound with `tune.with_parameters`: the datasets, where states
    go, and `logged_until(trial_id)`, the last evaluation the result log holds (-1: none)."""
    import ray
    from ray import tune

    settings = {k: v for k, v in config.items() if k not in SWEEP_KEYS}
    trial_config = TrialConfig.from_dict(settings)
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    trial_id = tune.get_context().get_trial_id()
    runner = TrialRunner(trial_config, raw=(datasets or {}).get(trial_config.dataset))
    states = TrialStates(state_location, trial_id) if state_location else None
    if states is not None and logged_until is not None:
        found = states.load_latest(at_most=logged_until(trial_id))
        if found is not None:
            evaluation, state = found
            runner.load_state_dict(state)
            print(f"trial {trial_id}: resuming after evaluation {evaluation}", flush=True)
    runner.labels = {"sweep": str(config.get("sweep", "")), "trial_id": trial_id}
    where = {"node": ray.get_runtime_context().get_node_id(), "hostname": socket.gethostname(),
             "pid": os.getpid(), "trial_start_unix": time.time()}

    def report(record: dict[str, Any]) -> None:
        tune.report({**record, **where, "unix_time": time.time()})
        if states is not None and record["status"] == "running":
            states.save(record["evaluation"], runner.state_dict())

    runner.run(report)

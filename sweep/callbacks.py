"""Ray Tune callbacks on the driver: the result log, and progress lines.

`ResultLogCallback` writes each trial's evaluations to the Parquet log as Tune reports them and
drops a finished trial's saved states (they are only for resuming it). `ProgressCallback` prints
a line per trial started and finished and a status line now and then (strategy, size, Q,
accuracy and GFLOPs, as a researcher scans them).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from ray.tune import Callback

from common import storage
from common.describe import describe_config
from common.layout import SweepLayout
from sweep.results_log import ResultLog


class ResultLogCallback(Callback):
    def __init__(self, layout: SweepLayout) -> None:
        self.layout = layout
        self.log = ResultLog(layout.results)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        storage.delete_dir(self.layout.trial_state_folder(trial.trial_id))

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "evaluation" not in result:  # Tune's own bookkeeping results carry no record
            return
        tune_results = Path(trial.local_path, "result.json") if trial.local_path else None
        self.log.add(result, tune_results)
        self.log.flush(result["dataset"], result["trial_id"])


class ProgressCallback(Callback):
    def __init__(self, dataset: str, total: int, status_every_s: float = 30.0) -> None:
        self.dataset, self.total, self.status_every_s = dataset, total, status_every_s
        self.last: dict[str, dict[str, Any]] = {}
        self.finished = 0
        self._last_status = time.monotonic()

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(f"[{self.dataset}] start  {trial.trial_id}: {describe_config(trial.config)}",
              flush=True)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "test_accuracy" in result:
            self.last[trial.trial_id] = result

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.finished += 1
        r = self.last.get(trial.trial_id, {})
        what = describe_config(r) if r else "?"
        print(f"[{self.dataset}] done   {trial.trial_id} ({self.finished}/{self.total}): "
              f"{what}: acc={r.get('test_accuracy', float('nan')):.4f} "
              f"{r.get('train_flops', 0) / 1e9:.2f} GFLOPs {r.get('status', '')}", flush=True)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        print(f"[{self.dataset}] error  {trial.trial_id}: see {trial.local_path or 'its log'}",
              flush=True)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._last_status < self.status_every_s:
            return
        self._last_status = time.monotonic()
        running = [t for t in trials if t.status == "RUNNING"]
        best = max((r.get("test_accuracy", 0) for r in self.last.values()), default=0.0)
        print(f"[{self.dataset}] {len(running)} running, {self.finished}/{self.total} done, "
              f"best accuracy so far {best:.4f}", flush=True)

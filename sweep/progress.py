"""Progress of a sweep on the driver: a line per trial started and finished, a status line now and
then (strategy, size, Q, accuracy and GFLOPs, as a researcher scans them)."""

from __future__ import annotations

import time
from typing import Any

from ray.tune import Callback


def describe_config(config: dict[str, Any]) -> str:
    strategy = config.get("strategy", "none")
    if strategy == "none":
        return "none (ordinary training)"
    if config.get("subset_fraction") is not None:
        size = f"fraction={config['subset_fraction']:.3g}"
    elif config.get("overdetermination_ratio") is not None:
        size = f"Q={config['overdetermination_ratio']:.3g}"
    else:
        size = "one image per class"
    epochs = config.get("pretrain_epochs")
    return f"{strategy} {size}" + (f", {epochs} pretrain epochs" if epochs is not None else "")


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
        size = "" if r.get("subset_size") is None else (
            f" K={r['subset_size']} Q={r['overdetermination_ratio']:.3g}")
        print(f"[{self.dataset}] done   {trial.trial_id} ({self.finished}/{self.total}): "
              f"{r.get('strategy', '?')}{size} acc={r.get('test_accuracy', float('nan')):.4f} "
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

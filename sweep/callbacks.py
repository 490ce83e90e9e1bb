"""Ray Tune callbacks on the driver: the result log, and progress lines.

`ResultLogCallback` writes each trial's evaluations to the Parquet log as Tune reports them and
drops a finished trial's saved states (they are only for resuming it). `ProgressCallback` shows
a progress bar on a terminal, and otherwise prints a line per trial started and finished and a
status line now and then (strategy, size, Q, accuracy and GFLOPs, as a researcher scans them).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
from ray.tune import Callback

from common import storage
from common.describe import describe_config
from common.layout import SweepLayout
from common.records import PRETRAIN_RAN, REPLAYED, compute_flops
from sweep.results_log import ResultLog


class ResultLogCallback(Callback):
    def __init__(self, layout: SweepLayout) -> None:
        self.layout = layout
        self.log = ResultLog(layout.results)

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        # A trial a scheduler stopped never made a last row of its own: name it on the last.
        self.log.mark_stopped(trial.config["dataset"], trial.trial_id)
        self.log.close(trial.config["dataset"], trial.trial_id)
        storage.delete_dir(self.layout.trial_state_folder(trial.trial_id))

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.log.mark_failed(trial.config["dataset"], trial.trial_id)  # after its retries
        self.log.close(trial.config["dataset"], trial.trial_id)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        self.log.flush_due()  # rows of trials that report rarely still reach storage in time

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        self.log.close_all()  # a finished sweep's log is its trials' files alone

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "evaluation" not in result:  # Tune's own bookkeeping results carry no record
            return
        if result.get(REPLAYED):  # a resumed trial's logged end, reported again: the log has it
            return
        tune_results = Path(trial.local_path, "result.json") if trial.local_path else None
        self.log.add(result, tune_results)
        self.log.flush(result["dataset"], result["trial_id"])


class ProgressCallback(Callback):
    """On a terminal: one progress bar per dataset (trials done of the total, running, failed,
    best accuracy and best saving so far, elapsed and ETA), with a line per finished trial above
    it. Elsewhere (CI, `ray job logs`): plain lines, a status line every `status_every_s`."""

    def __init__(self, dataset: str, total: int, status_every_s: float = 30.0,
                 bar: bool | None = None, stopped: dict[str, str] | None = None,
                 study: str | None = None) -> None:
        """`study`: the Optuna study's name, to learn whether its search ran out early."""
        self.dataset, self.total, self.status_every_s = dataset, total, status_every_s
        self.study = study
        self.stopped = {} if stopped is None else stopped  # filled by the frontier scheduler
        self.want_bar = sys.stdout.isatty() if bar is None else bar
        self.last: dict[str, dict[str, Any]] = {}
        self.curves: dict[str, list[tuple[float, float]]] = {}
        self.baseline: dict[str, bool] = {}
        self.pretrain_ran: dict[str, float] = {}  # epochs pretraining ran, once it has ended
        self.finished = self.failed = 0
        self._last_status = time.monotonic()
        self._bar: Any = None
        self._caught_up = False

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles callbacks; a bar is not state
        return {**self.__dict__, "_bar": None}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self.__dict__.setdefault("pretrain_ran", {})  # pickled by a sweep started before it

    def get_state(self) -> dict[str, Any]:
        """Kept with Tune's experiment snapshot (the pickle is the callback as the sweep
        started): how long pretraining ran in the trials that ended it."""
        return {"pretrain_ran": dict(self.pretrain_ran)}

    def set_state(self, state: dict[str, Any]) -> None:
        self.pretrain_ran.update(state.get("pretrain_ran", {}))

    def _write(self, line: str) -> None:
        if self._bar is not None:
            self._bar.write(line)
        else:
            print(line, flush=True)

    def setup(self, **info: Any) -> None:
        if self.want_bar and self._bar is None:
            from tqdm import tqdm

            self._bar = tqdm(total=self.total, desc=self.dataset, unit="trial",
                             dynamic_ncols=True)

    def on_step_begin(self, iteration: int, trials: list, **info: Any) -> None:
        if not self._caught_up:  # a resumed sweep: count what ended before it was interrupted
            self._caught_up = True
            ended = [t for t in trials if t.status in ("TERMINATED", "ERROR")]
            self.finished = sum(t.status == "TERMINATED" for t in ended)
            self.failed = sum(t.status == "ERROR" for t in ended)
            for t in ended:
                if "test_accuracy" in (t.last_result or {}):
                    self.last[t.trial_id] = t.last_result
            if self._bar is not None and ended:
                self._bar.update(self.finished + self.failed)
                self._refresh(trials)

    def on_trial_start(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        if self._bar is None:
            print(f"[{self.dataset}] start  {trial.trial_id}: "
                  f"{describe_config(with_default_epochs(trial.config))}", flush=True)
        else:
            self._refresh(trials)

    def on_trial_result(self, iteration: int, trials: list, trial: Any, result: dict,
                        **info: Any) -> None:
        if "test_accuracy" in result:
            self.last[trial.trial_id] = result
            self.baseline[trial.trial_id] = result.get("strategy") == "none"
            if result.get("pretrain_end") is not None:  # the evaluation that ended pretraining
                self.pretrain_ran[trial.trial_id] = result["epoch"]
            elif result.get(PRETRAIN_RAN) is not None:  # a logged end, replayed on resume
                self.pretrain_ran[trial.trial_id] = result[PRETRAIN_RAN]
            compute = compute_flops(result)
            # the saving is judged as the report's headline judges it: on the validation split
            # when there is one
            judged = result.get("val_accuracy")
            judged = result["test_accuracy"] if judged is None or judged != judged else judged
            self.curves.setdefault(trial.trial_id, []).append((float(compute), float(judged)))

    def on_trial_complete(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.finished += 1
        r = self.last.get(trial.trial_id, {})
        if r.get("status") == "running":  # ended with no last record: stopped by the scheduler
            r = {**r, "status": "stopped", "stop_reason": "early_stopped"}
        if trial.trial_id in self.pretrain_ran:  # said as the analysis says it
            r = {**r, PRETRAIN_RAN: self.pretrain_ran[trial.trial_id]}
        what = describe_config(r) if r else "?"
        self._write(f"[{self.dataset}] done   {trial.trial_id} ({self.finished}/{self.total}): "
                    f"{what}: {_reached(r)}, {self.stopped.get(trial.trial_id) or _ended(r)}")
        self._advance(trials)

    def on_trial_error(self, iteration: int, trials: list, trial: Any, **info: Any) -> None:
        self.failed += 1
        self._write(f"[{self.dataset}] error  {trial.trial_id}: see "
                    f"{trial.local_path or 'its log'}")
        self._advance(trials)

    def on_step_end(self, iteration: int, trials: list, **info: Any) -> None:
        if time.monotonic() - self._last_status < self.status_every_s:
            return
        self._last_status = time.monotonic()
        if self._bar is not None:
            self._refresh(trials)
            return
        running = [t for t in trials if t.status == "RUNNING"]
        print(f"[{self.dataset}] {len(running)} running, {self.finished}/{self.total} done, "
              f"best test accuracy so far {self.best_accuracy():.2%}", flush=True)

    def on_experiment_end(self, trials: list, **info: Any) -> None:
        from sweep.study import RAN_OUT

        ended = self.finished + self.failed
        if getattr(self, "study", None) in RAN_OUT and ended < self.total:  # (older pickles)
            self.total = ended  # the search had nothing left to run
            if self._bar is not None:
                self._bar.total = ended
        if self._bar is not None:
            self._refresh(trials)
            self._bar.close()
            self._bar = None

    def best_accuracy(self) -> float:
        return max((r.get("test_accuracy", 0.0) for r in self.last.values()), default=0.0)

    def best_saving(self, tolerance: float = 0.005) -> float | None:
        """Ordinary training's least compute to reach its best accuracy (less `tolerance`) over
        pretraining's least compute to reach it, from the curves seen so far (None: no baseline
        or no pretraining trial yet; 0: no pretraining trial reaches it)."""
        from analysis.savings import flops_to_reach, savings_ratio

        base = [c for t, c in self.curves.items() if self.baseline.get(t)]
        pre = [c for t, c in self.curves.items() if not self.baseline.get(t)]
        if not base or not pre:
            return None
        target = max(a for curve in base for _, a in curve) - tolerance

        def least(curves: list[list[tuple[float, float]]]) -> float:
            return min(flops_to_reach(np.array([f for f, _ in c]), np.array([a for _, a in c]),
                                      target) for c in curves)

        return savings_ratio(least(base), least(pre))

    def _advance(self, trials: list) -> None:
        if self._bar is not None:
            self._bar.update(1)
            self._refresh(trials)

    def _refresh(self, trials: list) -> None:
        running = sum(t.status == "RUNNING" for t in trials)
        saving = self.best_saving()
        self._bar.set_postfix_str(
            f"running {running}, failed {self.failed}, best test acc {self.best_accuracy():.2%}, "
            f"saving {'-' if saving is None else f'{saving:.2f}x'}", refresh=True)


def _reached(record: dict[str, Any]) -> str:
    """A trial's last evaluation in a few words: 'val 91.67%, test 92.22% after 9.03 GFLOPs'
    (compute: training plus building the small set, as the search and the analysis count)."""
    if "test_accuracy" not in record:
        return "no evaluation"
    val = record.get("val_accuracy")
    accuracy = f"test {record['test_accuracy']:.2%}"
    if val is not None and val == val:
        accuracy = f"val {val:.2%}, {accuracy}"
    return f"{accuracy} after {compute_flops(record) / 1e9:.2f} GFLOPs"


def _ended(record: dict[str, Any]) -> str:
    """'finished', 'finished (target_accuracy)', 'diverged', ...: how the trial ended (its
    stopping rule, where one ended it before its epochs ran out)."""
    status, reason = record.get("status", ""), record.get("stop_reason")
    named = reason and reason not in (status, "max_epochs")
    return f"{status} ({reason})" if named else status


def with_default_epochs(config: dict[str, Any]) -> dict[str, Any]:
    """A trial's settings with the epochs it will run where they are left to the defaults, so
    that its start line says what its done line will ("for 10 epochs")."""
    from trainables.config import DEFAULT_PRETRAIN_EPOCHS, dataset_defaults

    filled = dict(config)
    if filled.get("finetune_epochs") is None:
        filled["finetune_epochs"] = dataset_defaults(str(config.get("dataset")))["finetune_epochs"]
    if config.get("strategy", "none") != "none" and filled.get("pretrain_epochs") is None:
        filled["pretrain_epochs"] = DEFAULT_PRETRAIN_EPOCHS
    return filled

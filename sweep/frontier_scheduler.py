"""`--scheduler frontier`: the anytime-frontier rule (`sweep.early_stopping`) as a Ray Tune
scheduler.

Tune hands the scheduler every result a trial reports; a result is a result-log record, so the
rule sees exactly the rows the log gets. Tune does not save a scheduler's state with its
experiment, so on a resumed sweep the frontier is read back from the result log (the source of
truth) before the first judgement. A stopped trial ends like any early-stopped one: its last row
says `stopped` / `early_stopped`, and Optuna is told it was pruned (`sweep.study.told_state`).
"""

from __future__ import annotations

from typing import Any

from ray.tune.schedulers import FIFOScheduler, TrialScheduler

from common.layout import relocated
from common.records import REPLAYED
from sweep.early_stopping import FrontierOptions, FrontierRule


class FrontierScheduler(FIFOScheduler):
    """Stops a trial at a compute rung when other trials' evaluations dominate it.

    `results` and `dataset` locate the rows a resumed sweep already has; `stopped` (trial id ->
    the verdict's explanation) is filled as trials are stopped, for the progress lines."""

    def __init__(self, options: FrontierOptions, train_size: int, results: str, dataset: str,
                 stopped: dict[str, str] | None = None) -> None:
        super().__init__()
        self.options, self.train_size = options, train_size
        self.results, self.dataset = results, dataset
        self.stopped = {} if stopped is None else stopped
        self._rule: FrontierRule | None = None

    def on_trial_result(self, tune_controller: Any, trial: Any, result: dict) -> str:
        if "evaluation" not in result:  # Tune's own bookkeeping results carry no record
            return TrialScheduler.CONTINUE
        if result.get(REPLAYED):  # a resumed trial's logged end: the rule observed it already
            return TrialScheduler.CONTINUE
        verdict = self.rule.on_result(result)
        if verdict is not None and verdict.stop:
            self.stopped[result["trial_id"]] = verdict.explain()
            return TrialScheduler.STOP
        return TrialScheduler.CONTINUE

    def on_trial_error(self, tune_controller: Any, trial: Any) -> None:
        self.rule.ended(trial.trial_id)

    def on_trial_remove(self, tune_controller: Any, trial: Any) -> None:
        self.rule.ended(trial.trial_id)

    @property
    def rule(self) -> FrontierRule:
        if self._rule is None:
            self._rule = FrontierRule(self.options, self.train_size)
            for record in _logged_records(self.results, self.dataset, self.options.metric):
                self._rule.observe(record)
        return self._rule

    def debug_string(self) -> str:
        return f"FrontierScheduler: {len(self.stopped)} stopped"

    def __getstate__(self) -> dict[str, Any]:  # Tune pickles it: the frontier is re-read
        return {**self.__dict__, "_rule": None}

    def __setstate__(self, state: dict[str, Any]) -> None:  # the folder may have moved since
        self.__dict__.update(state, results=relocated(state["results"]))


def _logged_records(results: str, dataset: str, metric: str) -> list[dict[str, Any]]:
    """The rows the result log holds for `dataset` (none for a new sweep)."""
    import pyarrow as pa

    from common import storage
    from common.result_files import read_log

    if not storage.exists(results):
        return []
    tables = read_log(results)
    if not tables:
        return []
    table = pa.concat_tables(tables)
    return [row for row in table.select(["dataset", "trial_id", "evaluation", "train_flops",
                                         "selection_flops", "strategy", "status",
                                         metric]).to_pylist()
            if row["dataset"] == dataset]

"""The pipeline as a Ray Tune function trainable: report each record, save state, resume.

Records go to Tune through a `ReportThread` (training goes on while the driver takes the last
one in). After an evaluation is handed over, the whole runner (model, optimizer, RNG, ledger,
subset, position) is written atomically to `trial_state/<trial_id>/<evaluation>.pt`, at most
every `SAVE_EVERY_S` (a save costs a few milliseconds, as much as a small net's evaluation
interval: saving after every one made short trials ~10% slower). Kept: every state the result
log does not cover yet (its rows reach storage up to `FLUSH_S` later) and the two
newest it covers (the newest, and one to fall back on). A trial that starts again (a retry
after its worker died, or a resumed sweep) continues from the newest readable state whose
evaluation the result log already holds: the evaluations after it are made again and replace
their rows, so the log has no gap and no duplicate whatever moment a crash hits. (Tune's own
checkpoint registry is not used for this: a snapshot of it can name a checkpoint that Tune has
already deleted, and restoring from it then fails.)

The dataset arrives already read (`tune.with_parameters` puts it in Ray's object store once;
trials on a node share that node's copy). The trial trains on the GPU Ray assigned it, or on the
CPU when it has none.
"""

from __future__ import annotations

import io
import os
import socket
import sys
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from common import storage
from common.errors import warn
from common.layout import evaluation_of_state_file, state_file_name
from common.records import (
    PLACEMENT_COLUMNS,
    REPLAYED,
    Record,
    compute_flops,
    search_accuracy,
)
from common.result_files import FLUSH_S
from trainables.config import TrialConfig
from trainables.report_thread import ReportThread

if TYPE_CHECKING:
    from trainables.raw_data import RawData

KEEP_COVERED = 2  # saved states kept among those the result log covers
SAVE_EVERY_S = 0.5  # a crash repeats at most this much training, plus the log's FLUSH_S


class TrialStates:
    """One trial's saved states: `<folder>/<evaluation>.pt` (a local folder or a URI), the folder
    being the sweep layout's `trial_state_folder(trial_id)`."""

    def __init__(self, folder: str) -> None:
        self.folder = folder
        self.saved_at = time.monotonic()

    def due(self) -> bool:
        """Whether SAVE_EVERY_S has passed since the last save (or since the trial started)."""
        return time.monotonic() - self.saved_at >= SAVE_EVERY_S

    def save(self, evaluation: int, state: dict[str, Any], covered: int) -> None:
        """Save the state after `evaluation`; `covered` is the last evaluation the result log
        holds on storage: of the states up to it, all but the KEEP_COVERED newest go."""
        import torch

        buffer = io.BytesIO()
        torch.save(state, buffer)
        storage.make_dirs(self.folder)
        storage.write_bytes_atomic(self._path(evaluation), buffer.getvalue())
        for old in [e for e in self.evaluations() if e <= covered][:-KEEP_COVERED]:
            storage.delete_file(self._path(old))
        self.saved_at = time.monotonic()

    def evaluations(self) -> list[int]:
        found = (evaluation_of_state_file(name) for name in storage.list_names(self.folder))
        return sorted(e for e in found if e is not None)

    def load_latest(self, at_most: int) -> tuple[int, dict[str, Any]] | None:
        """The newest readable state with evaluation <= `at_most`; unreadable ones are named."""
        import torch

        for evaluation in reversed(self.evaluations()):
            if evaluation > at_most:
                continue
            location = self._path(evaluation)
            try:
                data = storage.read_bytes(location)
                return evaluation, torch.load(io.BytesIO(data), weights_only=True,
                                              map_location="cpu")
            except Exception as e:  # truncated, corrupt or foreign: any of torch's load errors
                detail = str(e).splitlines()[0][:200] if str(e) else ""
                warn(f"checkpoint {location} is unreadable ({type(e).__name__}: {detail}); "
                     "trying an older one")
        return None

    def _path(self, evaluation: int) -> str:
        return storage.join(self.folder, state_file_name(evaluation))


def tune_trainable(config: dict[str, Any], datasets: dict[str, RawData] | None = None,
                   sweep: str = "", search_only: tuple[str, ...] = (),
                   state_folder: Callable[[str], str] | None = None,
                   logged_until: Callable[[str], int] | None = None,
                   logged_trial: Callable[[str], tuple[int, Record | None]] | None = None
                   ) -> None:
    """Ray Tune function trainable. Bound with `tune.with_parameters`: the datasets, the sweep's
    name, the keys of `config` that are choices of the search rather than trial settings
    (`search_only`), where a trial's states go (`state_folder(trial_id)`),
    `logged_until(trial_id)`, the last evaluation the result log holds (-1: none), and
    `logged_trial(trial_id)`, that and the trial's last row where the log holds its end (None:
    not ended), in one look at the log as the trial starts.

    A trial whose end the log holds (it ended after Tune's last snapshot before the previous
    driver stopped, so Tune runs it again) reports that row again, marked REPLAYED (the result
    log leaves it out: its rows stay as they were), and trains nothing: the search and the
    progress line hear how it ended."""
    import ray
    import torch
    from ray import tune

    from common.errors import format_warning_lines
    from trainables.train import TrialRunner

    format_warning_lines()
    sys.unraisablehook = drop_ignored_exits
    trial_id = tune.get_context().get_trial_id()
    logged_until_now, ended = logged_trial(trial_id) if logged_trial is not None else (None, None)
    if ended is not None:
        print(f"trial {trial_id}: ended ({ended['status']}) before the sweep was interrupted; "
              f"the log has its last evaluation ({ended['evaluation']}), so it is not run again",
              flush=True)
        tune.report({**ended, "search_accuracy": search_accuracy(ended),
                     "compute_flops": compute_flops(ended), REPLAYED: True})
        return
    trial_config = TrialConfig.from_dict({k: v for k, v in config.items()
                                          if k not in search_only})
    cpus = tune.get_context().get_trial_resources().required_resources.get("CPU", 1)
    torch.set_num_threads(max(1, int(cpus)))
    runner = TrialRunner(trial_config, raw=(datasets or {}).get(trial_config.dataset),
                         labels={"sweep": sweep, "trial_id": trial_id})
    states = TrialStates(state_folder(trial_id)) if state_folder else None
    log_covers = _LogPosition(trial_id, logged_until, known=logged_until_now)
    if states is not None and logged_until is not None:
        found = states.load_latest(at_most=log_covers())
        if found is not None:
            evaluation, state = found
            runner.load_state_dict(state)
            print(f"trial {trial_id}: resuming after evaluation {evaluation}", flush=True)
    node, started = ray.get_runtime_context().get_node_id(), time.time()

    def report(record: Record) -> None:
        placement = {"node": node, "hostname": socket.gethostname(), "pid": os.getpid(),
                     "trial_start_unix": started, "unix_time": time.time()}
        assert tuple(placement) == PLACEMENT_COLUMNS  # common.records defines these columns
        # the search's objectives (sweep.study.OBJECTIVES): accuracy, on validation when held
        # out, and compute, with the small set's selection, as the analysis measures them; not
        # columns of the log (they derive from it)
        reporter.send({**record, **placement, "search_accuracy": search_accuracy(record),
                       "compute_flops": compute_flops(record)})
        if states is not None and record["status"] == "running" and states.due():
            states.save(record["evaluation"], runner.state_dict(), covered=log_covers())

    reporter = ReportThread(tune.report)
    try:
        runner.run(report, after_step=reporter.check)
        reporter.flush()
    finally:
        reporter.stop()


def drop_ignored_exits(unraisable: Any) -> None:
    """`sys.unraisablehook` for a trial's worker: a `SystemExit` that Python cannot raise (it
    came up in a weakref callback or a `__del__`) is dropped without a word; anything else is
    printed as Python prints it. Ray stops a worker with SIGTERM, and its handler raises
    SystemExit wherever the worker's main thread is. At the end of a sweep that is sometimes
    inside such a callback, as Tune removes the placement groups of trials whose workers are
    still exiting: Python then ignores the SystemExit and prints "Exception ignored in" with its
    traceback, which reached the sweep's console as if a trial had failed. Ignored it stays (the
    worker is already on its way out); only the print goes."""
    if not isinstance(unraisable.exc_value, SystemExit):
        sys.__unraisablehook__(unraisable)


class _LogPosition:
    """The last evaluation of a trial the result log holds on storage, looked up at most every
    FLUSH_S (the log's own pace); -1 without a log."""

    def __init__(self, trial_id: str, logged_until: Callable[[str], int] | None,
                 known: int | None = None) -> None:
        """`known`: the position just looked up, if it was."""
        self.trial_id, self.logged_until = trial_id, logged_until
        self.value, self.checked = -1, float("-inf")
        if known is not None:
            self.value, self.checked = known, time.monotonic()

    def __call__(self) -> int:
        if self.logged_until is not None and time.monotonic() - self.checked >= FLUSH_S:
            self.value, self.checked = self.logged_until(self.trial_id), time.monotonic()
        return self.value


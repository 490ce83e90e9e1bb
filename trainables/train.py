"""One trial: pretrain on a small set derived from the data, then fine-tune on the full set.

The loop is a `TrialRunner` whose whole position (model, optimizer, RNG, ledger, phase, epoch,
batch and the epoch's permutation) is a `state_dict`, taken at evaluations. A runner restored from
one continues exactly where it stopped: it repeats no record and skips none.

Phases: "init" (one evaluation before any training), "pretrain" (pretrain_epochs on the small set),
"finetune" (the full training set until the target accuracy, finetune_epochs, or the FLOPs budget).
Evaluations happen every `eval_every` training samples, at the end of pretraining and at the end.
Each evaluation makes one record: a row of the result log, whose columns `common.records` defines.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import nn

from common.provenance import VERSION, revision
from common.records import RECORD_COLUMNS, Record
from trainables import convergence
from trainables.augment import augment_batch
from trainables.config import TrialConfig
from trainables.data import Dataset, RawData, read_raw, to_device
from trainables.flops import FlopsLedger, measure
from trainables.models import build_model, count_params
from trainables.sizing import resolve_size
from trainables.splits import MAX_TRAIN_EVAL_SIZE, train_sample, validation_split
from trainables.subsets import SmallSet, build_small_set

EVAL_BATCH = 1024

@dataclass
class Progress:
    """Where a trial stands; everything in it is plain numbers and strings."""

    phase: str = "init"
    epoch: int = 0  # completed epochs in the current phase
    batch: int = 0  # next batch of the current epoch
    step: int = 0  # optimizer steps so far, both phases
    samples_seen: int = 0
    next_eval_at: int = 0
    last_eval_at: int = -1  # samples_seen at the last evaluation
    evaluations: int = 0
    wall_time_s: float = 0.0
    train_time_s: float = 0.0
    finished: bool = False
    best_loss: float = math.inf  # the current phase's watched loss: best so far (convergence)
    best_at: int = 0  # samples_seen when it was reached
    phase_start: int = 0  # samples_seen when the current phase began


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_label(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu"


class TrialRunner:
    """Runs one trial; `state_dict`/`load_state_dict` make it resumable at any evaluation."""

    def __init__(self, config: TrialConfig, raw: RawData | None = None,
                 device: torch.device | str | None = None,
                 labels: dict[str, str] | None = None) -> None:
        """`labels`: the record's `sweep` and `trial_id` (empty for a trial run alone)."""
        self.config = config
        self.labels = {"sweep": "", "trial_id": "", **(labels or {})}
        self.device = resolve_device(config.device) if device is None else torch.device(device)
        raw = raw if raw is not None else read_raw(config.dataset, config.data_dir,
                                                   config.download)
        validation = validation_split(raw.train_y, config.validation_fraction, config.data_seed)
        self.data: Dataset = to_device(raw, self.device, validation)
        # By default as many training examples as the test set has (at most 10,000): the two
        # losses are measured as precisely, for the same evaluation cost.
        self.default_sample = min(len(self.data.test_y), MAX_TRAIN_EVAL_SIZE)
        sample = train_sample(len(self.data.train_y), config.train_eval_size, config.data_seed,
                              self.default_sample)
        self.train_sample = torch.from_numpy(sample).to(self.device)
        shape, classes = self.data.input_shape, self.data.num_classes
        self.model: nn.Module = build_model(config, shape, classes).to(self.device)
        self.params = count_params(self.model)
        self.size = resolve_size(config, len(self.data.train_y), classes, self.params)
        self.pretrain_epochs = config.effective_pretrain_epochs
        self.generator = torch.Generator().manual_seed(config.seed)
        # The small set is built when the trial starts to run (`small`), not here: a trial
        # resumed from a saved state takes it from the state (k-means is not run again).
        self._small: SmallSet | None = None
        self._small_pending = self.size is not None and self.pretrain_epochs > 0
        self.small_sample = torch.from_numpy(train_sample(
            self.size.subset_size if self._small_pending else 0, config.train_eval_size,
            config.data_seed, self.default_sample)).to(self.device)  # the small set's loss
        flops = measure(self.model, shape, self.device)
        self.ledger = FlopsLedger(flops.per_train_sample, flops.per_eval_sample)
        self.macs_forward = flops.thop_macs
        self.optimizer = self._new_optimizer()
        self.eval_every = config.eval_every or max(1, math.ceil(len(self.data.train_y) / 4))
        self.progress = Progress()
        self.progress.next_eval_at = self._next_eval_at()
        self.perm: torch.Tensor | None = None
        self._loss_sum = torch.zeros((), device=self.device)
        self._loss_batches = 0

    @property
    def small(self) -> SmallSet | None:
        """The set pretrained on (None: no pretraining), built at first use from the trial's
        generator as it stands after construction, which is where the draws of a fresh run take
        it (nothing else draws from it before the loop does)."""
        if self._small_pending:
            self._small_pending = False
            self._small = self._build_small(self.generator)
        return self._small

    def _build_small(self, generator: torch.Generator) -> SmallSet:
        assert self.size is not None
        return build_small_set(self.config.strategy, self.size.subset_size, self.data.train_x,
                               self.data.train_y, self.data.num_classes, generator)

    def _new_optimizer(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.model.parameters(), lr=self.config.lr)

    # ---- checkpointing ------------------------------------------------------------------------

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue; loadable with `torch.load(weights_only=True)`."""
        small = None
        if self.small is not None:
            small = ({"indices": self.small.indices.cpu()} if self.small.indices is not None
                     else {"x": self.small.x.cpu(), "y": self.small.y.cpu()})
            small["selection_flops"] = self.small.selection_flops
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "generator": self.generator.get_state(),
            "progress": asdict(self.progress),
            "ledger": {"train_flops": self.ledger.train_flops,
                       "eval_flops": self.ledger.eval_flops},
            "perm": None if self.perm is None else self.perm.cpu(),
            "small": small,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.generator.set_state(state["generator"])
        self.progress = Progress(**state["progress"])
        self.ledger.train_flops = state["ledger"]["train_flops"]
        self.ledger.eval_flops = state["ledger"]["eval_flops"]
        self.perm = None if state["perm"] is None else state["perm"].to(self.device)
        small = state["small"]
        if small is not None and (self._small_pending or self._small is not None):
            flops = small.get("selection_flops")
            if flops is None:  # a state saved before it held them: build the set once more,
                fresh = torch.Generator().manual_seed(self.config.seed)  # as construction did
                flops = self._build_small(fresh).selection_flops
            if "indices" in small:
                idx = small["indices"].to(self.device)
                self._small = SmallSet(self.data.train_x[idx], self.data.train_y[idx], idx,
                                       int(flops))
            else:
                self._small = SmallSet(small["x"].to(self.device), small["y"].to(self.device),
                                       None, int(flops))
            self._small_pending = False

    # ---- the loop -----------------------------------------------------------------------------

    def run(self, on_record: Callable[[Record], None] | None = None,
            after_step: Callable[[], None] | None = None) -> list[Record]:
        """Train to the end (or divergence); return the records made by this call.
        `after_step()` is called after every training step; what it raises ends training
        there (a trial its sweep stopped ends within a step, not at its next evaluation)."""
        records: list[Record] = []

        def emit(record: Record) -> None:
            records.append(record)
            if on_record is not None:
                on_record(record)

        _ = self.small  # built before the clocks start, unless a saved state brought it
        p = self.progress
        started = time.perf_counter() - p.wall_time_s
        self._clock = started
        self._train_started = time.perf_counter()
        if p.phase == "init":
            record = self._evaluate(self._budget_spent())
            p.phase = "pretrain" if self.small is not None else "finetune"
            emit(record)  # after the phase moved on, so a checkpoint taken here resumes past it
        while not p.finished:
            x, y, epochs = self._phase_data()
            if p.epoch >= epochs:
                self._next_phase()
                continue
            n = len(y)
            batches = math.ceil(n / self.config.batch_size)
            if p.batch == 0:
                self.perm = torch.randperm(n, generator=self.generator).to(self.device)
            switched = False
            while p.batch < batches and not p.finished and not switched:
                lo = p.batch * self.config.batch_size
                idx = self.perm[lo : lo + self.config.batch_size]
                self._step(x[idx], y[idx])
                p.batch += 1
                if after_step is not None:
                    after_step()
                phase_done = p.batch == batches and p.epoch + 1 == epochs
                spent = self._budget_spent(phase_done)
                if spent or phase_done or p.samples_seen >= p.next_eval_at:
                    record = self._evaluate(spent, phase_done)
                    if record["pretrain_end"] == "converged":
                        self._next_phase()  # before the record goes out: a state saved with it
                        switched = True     # resumes in fine-tuning
                    emit(record)
            if not p.finished and not switched:
                p.batch = 0
                p.epoch += 1
        return records

    def _phase_data(self) -> tuple[torch.Tensor, torch.Tensor, int]:
        if self.progress.phase == "pretrain":
            assert self.small is not None
            return self.small.x, self.small.y, self.pretrain_epochs
        return self.data.train_x, self.data.train_y, self.config.finetune_epochs

    def _epoch_position(self) -> float:
        """Epochs done in the current phase, fractional within an epoch."""
        p = self.progress
        if p.phase == "init":
            return 0.0
        batches = math.ceil(len(self._phase_data()[1]) / self.config.batch_size)
        return p.epoch + p.batch / batches

    def _next_phase(self) -> None:
        p = self.progress
        assert p.phase == "pretrain", "fine-tuning ends through _stop_reason, not here"
        p.phase, p.epoch, p.batch = "finetune", 0, 0
        p.best_loss, p.best_at = math.inf, p.samples_seen
        p.phase_start = p.samples_seen
        p.next_eval_at = self._next_eval_at()
        if self.config.reset_optimizer:
            self.optimizer = self._new_optimizer()

    def _next_eval_at(self) -> int:
        """The evaluation schedule: every `eval_every` samples from the start of the phase
        (each evaluation at the first whole batch past a multiple: the schedule does not drift
        by a batch's rounding each time), and with `early_evals` k, also at eval_every / 2^k,
        ..., / 4, / 2 samples into each phase (log-spaced, where accuracy moves fastest)."""
        p, every = self.progress, self.eval_every
        points = [p.phase_start + math.ceil(every / 2**k)
                  for k in range(self.config.early_evals, 0, -1)] + [p.phase_start + every]
        regular = p.phase_start + every * ((p.samples_seen - p.phase_start) // every + 1)
        return next((at for at in points if at > p.samples_seen), regular)

    def _step(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if self.config.augment:
            x = augment_batch(x, self.generator, flip=self.data.name.startswith("cifar"))
        loss = nn.functional.cross_entropy(self.model(x), y)
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        self._loss_sum += loss.detach()
        self._loss_batches += 1
        p = self.progress
        p.step += 1
        p.samples_seen += len(y)
        self.ledger.add_train(len(y))

    @property
    def _in_last_phase(self) -> bool:
        p = self.progress
        return p.phase == "finetune" or (p.phase == "pretrain" and self.config.finetune_epochs == 0)

    def _budget_spent(self, phase_done: bool = False) -> str | None:
        """The budget rule, checked after every step: the FLOPs budget is spent, or the last
        phase's epochs are done (`phase_done`: the current phase just finished its last epoch).
        Before any training, a trial with no epochs at all has spent its budget."""
        p = self.progress
        budget = self.config.flops_budget
        if budget is not None and self.ledger.train_flops >= budget:
            return "flops_budget"
        if p.phase == "init":
            no_epochs = self.pretrain_epochs == 0 and self.config.finetune_epochs == 0
            return "max_epochs" if no_epochs else None
        return "max_epochs" if phase_done and self._in_last_phase else None

    def _stop_reason(self, spent: str | None, measured: dict[str, float | None],
                     diverged: bool, converged: bool) -> str | None:
        """Why the trial ends at this evaluation, if it does: divergence first, then the budget
        (`spent`, from `_budget_spent`), then, in the last phase, the target accuracy (on the
        validation split or the test set), the target loss (the watched loss) and convergence."""
        if diverged:
            return "diverged"
        if spent is not None:
            return spent
        if not self._in_last_phase:
            return None
        c = self.config
        split = "val_accuracy" if c.target_split == "validation" else "test_accuracy"
        if c.target_accuracy is not None and measured[split] >= c.target_accuracy:
            return "target_accuracy"
        watched = measured.get(self._watched)
        if c.target_loss is not None and watched is not None and watched <= c.target_loss:
            return "target_loss"
        return "converged" if converged else None

    @property
    def _watched(self) -> str:
        """The column of the loss the current phase watches: the small set's while pretraining,
        the training-set sample's or the validation split's while fine-tuning."""
        if self.progress.phase == "pretrain":
            return "small_set_loss"
        return "val_loss" if self.config.finetune_monitor == "val" else "train_sample_loss"

    @torch.no_grad()
    def _evaluate(self, spent: str | None, phase_done: bool = False) -> Record:
        p = self.progress
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        now = time.perf_counter()
        if p.phase != "init":
            p.train_time_s += now - self._train_started
        train_loss = (self._loss_sum / self._loss_batches).item() if self._loss_batches else None
        test_loss, test_accuracy = self._measure(self.data.test_x, self.data.test_y)
        measured = {"test_loss": test_loss, "test_accuracy": test_accuracy}
        if len(self.train_sample):
            idx = self.train_sample
            measured["train_sample_loss"], measured["train_sample_accuracy"] = self._measure(
                self.data.train_x[idx], self.data.train_y[idx])
        if self.data.val_x is not None:
            measured["val_loss"], measured["val_accuracy"] = self._measure(self.data.val_x,
                                                                           self.data.val_y)
        if p.phase == "pretrain" and len(self.small_sample):
            idx = self.small_sample
            measured["small_set_loss"] = self._measure(self.small.x[idx], self.small.y[idx])[0]
        diverged = not all(math.isfinite(v) for v in (train_loss or 0.0, test_loss))
        watched = measured.get(self._watched)
        if p.phase != "init" and watched is not None:
            p.best_loss, p.best_at = convergence.update(p.best_loss, p.best_at, watched,
                                                        p.samples_seen, self.config.min_delta)
        converged = p.phase != "init" and convergence.converged(
            p.best_at, p.samples_seen, self.config.patience, self.eval_every, p.phase_start)
        end_reason = self._stop_reason(spent, measured, diverged, converged)
        if p.phase == "pretrain" and end_reason is None and (phase_done or converged):
            measured["pretrain_end"] = "max_epochs" if phase_done else "converged"
        p.finished = end_reason is not None
        p.evaluations += 1
        p.last_eval_at = p.samples_seen
        p.next_eval_at = self._next_eval_at()
        p.wall_time_s = time.perf_counter() - self._clock
        record = self._record(train_loss, measured, end_reason, diverged)
        self._loss_sum.zero_()
        self._loss_batches = 0
        self._train_started = time.perf_counter()
        return record

    def _measure(self, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of the model on (x, y); its forward FLOPs are
        evaluation FLOPs."""
        self.model.eval()
        loss = torch.zeros((), device=self.device)
        correct = torch.zeros((), device=self.device, dtype=torch.long)
        for lo in range(0, len(y), EVAL_BATCH):
            logits = self.model(x[lo : lo + EVAL_BATCH])
            loss += nn.functional.cross_entropy(logits, y[lo : lo + EVAL_BATCH], reduction="sum")
            correct += (logits.argmax(dim=1) == y[lo : lo + EVAL_BATCH]).sum()
        self.model.train()
        self.ledger.add_eval(len(y))
        return loss.item() / len(y), correct.item() / len(y)

    def _record(self, train_loss: float | None, measured: dict[str, float],
                end_reason: str | None, diverged: bool) -> Record:
        """`measured`: test_loss and test_accuracy, and where measured train_sample_* and
        val_*."""
        c, p, size = self.config, self.progress, self.size
        status = "running" if end_reason is None else ("diverged" if diverged else "finished")
        values = {
            **self.labels,
            "dataset": c.dataset, "model": c.model, "params": self.params,
            "strategy": c.strategy,
            "subset_size": size.subset_size if size else None,
            "subset_fraction": size.subset_fraction if size else None,
            "overdetermination_ratio": size.overdetermination_ratio if size else None,
            "pretrain_epochs": self.pretrain_epochs, "lr": c.lr, "batch_size": c.batch_size,
            "seed": c.seed, "phase": p.phase, "epoch": self._epoch_position(),
            "step": p.step, "samples_seen": p.samples_seen,
            "train_flops": self.ledger.train_flops, "eval_flops": self.ledger.eval_flops,
            "train_loss": train_loss, "test_loss": measured["test_loss"],
            "test_accuracy": measured["test_accuracy"],
            "wall_time_s": p.wall_time_s, "status": status,
            "width": c.width, "finetune_epochs": c.finetune_epochs, "augment": c.augment,
            "evaluation": p.evaluations - 1, "stop_reason": end_reason,
            "train_time_s": p.train_time_s, "flops_per_sample": self.ledger.per_train_sample,
            "macs_forward": self.macs_forward,
            "selection_flops": self.small.selection_flops if self.small else 0,
            "device": device_label(self.device), "version": VERSION, "revision": revision(),
            "config_json": c.to_json(),
            "train_sample_loss": measured.get("train_sample_loss"),
            "train_sample_accuracy": measured.get("train_sample_accuracy"),
            "train_sample_size": len(self.train_sample),
            "val_loss": measured.get("val_loss"), "val_accuracy": measured.get("val_accuracy"),
            "val_size": 0 if self.data.val_y is None else len(self.data.val_y),
            "small_set_loss": measured.get("small_set_loss"),
            "pretrain_end": measured.get("pretrain_end"),
        }
        return {column: values[column] for column in RECORD_COLUMNS}


def run_trial(config: TrialConfig, on_record: Callable[[Record], None] | None = None,
              raw: RawData | None = None) -> list[Record]:
    """Run one trial to its end and return its evaluation records (the result-log rows).

    `on_record(record)` is called as each record is made. `raw` is an already-read dataset (as a
    Ray node shares it); without it the dataset is read from disk.
    """
    return TrialRunner(config, raw=raw).run(on_record)

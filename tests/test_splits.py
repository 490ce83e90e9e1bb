"""The training-set loss (on a fixed sample of the training set) and the validation split held
out of training: measured as a direct computation would, never trained on, the same rows for
every trial."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch import nn

from common.records import LOG_COLUMNS
from common.result_files import read_table
from trainables import TrialConfig, TrialRunner
from trainables.data import RawData, read_raw
from trainables.splits import MAX_TRAIN_EVAL_SIZE, train_sample, validation_split


def config(**settings) -> TrialConfig:
    return TrialConfig.from_dict({"dataset": "digits", **settings})


def test_training_set_loss_equals_a_direct_computation_on_the_same_sample():
    runner = TrialRunner(config(finetune_epochs=1, train_eval_size=500, eval_every=720))
    sample = train_sample(len(runner.data.train_y), 500, seed=0)
    checked = []

    def check(record: dict) -> None:
        with torch.no_grad():
            runner.model.eval()
            logits = runner.model(runner.data.train_x[sample])
            runner.model.train()
        y = runner.data.train_y[sample]
        loss = nn.functional.cross_entropy(logits, y).item()
        accuracy = (logits.argmax(dim=1) == y).float().mean().item()
        assert record["train_sample_loss"] == pytest.approx(loss, rel=1e-5)
        assert record["train_sample_accuracy"] == pytest.approx(accuracy)
        assert record["train_sample_size"] == 500
        checked.append(record["evaluation"])

    records = runner.run(check)
    assert checked == list(range(len(records))) and len(records) >= 3
    assert records[-1]["train_sample_loss"] < records[0]["train_sample_loss"]  # it trained
    assert records[0]["val_loss"] is None and records[0]["val_size"] == 0


def test_the_training_set_sample_is_all_of_a_small_set_and_fixed_by_the_data_seed():
    assert np.array_equal(train_sample(1437, None, seed=0), np.arange(1437))
    assert len(train_sample(60_000, None, seed=0)) == MAX_TRAIN_EVAL_SIZE
    assert len(train_sample(60_000, None, seed=0, default=500)) == 500
    # A trial's default: as many as the test set (digits: 360 of 1,437).
    runner = TrialRunner(config(finetune_epochs=0))
    assert len(runner.train_sample) == 360
    assert torch.equal(runner.train_sample.cpu(),
                       torch.from_numpy(train_sample(1437, 360, seed=0)))
    assert len(train_sample(1437, 0, seed=0)) == 0
    a, b = train_sample(60_000, 100, seed=3), train_sample(60_000, 100, seed=3)
    assert np.array_equal(a, b) and len(np.unique(a)) == 100
    assert not np.array_equal(a, train_sample(60_000, 100, seed=4))


def test_the_validation_split_is_stratified_and_the_same_for_every_trial():
    labels = read_raw("digits").train_y
    held = validation_split(labels, 0.2, seed=0)
    for label in range(10):
        assert (labels[held] == label).sum() == round(0.2 * (labels == label).sum())
    assert np.array_equal(held, validation_split(labels, 0.2, seed=0))
    assert not np.array_equal(held, validation_split(labels, 0.2, seed=1))
    # Trials with different seeds hold out the same rows (the data seed fixes them).
    one = TrialRunner(config(validation_fraction=0.2, seed=1, finetune_epochs=0))
    two = TrialRunner(config(validation_fraction=0.2, seed=2, finetune_epochs=0))
    assert torch.equal(one.data.val_x, two.data.val_x)
    assert len(validation_split(labels, 0.0, seed=0)) == 0


def unique_images(n: int = 400, classes: int = 4) -> RawData:
    """Images no two of which are equal (each carries its index in two pixels)."""
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, (n, 1, 8, 8), dtype=np.uint8)
    x[:, 0, 0, 0], x[:, 0, 0, 1] = np.arange(n) % 256, np.arange(n) // 256
    return RawData("digits", x, np.arange(n) % classes, x[:40], np.arange(40) % classes,
                   classes, "synthetic")


def rows_in(rows: torch.Tensor, table: torch.Tensor) -> torch.Tensor:
    """For each row of `rows`, whether it equals a row of `table`."""
    return (rows.flatten(1)[:, None, :] == table.flatten(1)[None, :, :]).all(dim=2).any(dim=1)


@pytest.mark.parametrize("strategy, size", [("random", {"subset_fraction": 0.3}),
                                            ("kmeans", {"subset_fraction": 0.1}),
                                            ("class_mean", {})])
def test_validation_rows_never_appear_in_training_batches_or_small_sets(strategy, size):
    raw = unique_images()
    runner = TrialRunner(config(strategy=strategy, **size, pretrain_epochs=2, finetune_epochs=2,
                                validation_fraction=0.25, width=2), raw=raw)
    held = validation_split(raw.train_y, 0.25, seed=0)
    assert len(runner.data.val_y) == len(held) == 100
    assert len(runner.data.train_y) == 300
    trained_on = []
    step = runner._step

    def recording_step(x: torch.Tensor, y: torch.Tensor) -> None:
        trained_on.append(x.clone())
        step(x, y)

    runner._step = recording_step
    records = runner.run()
    batches = torch.cat(trained_on)
    if runner.small.indices is not None:  # rows (class means and k-means centroids are not)
        assert not rows_in(runner.small.x, runner.data.val_x).any()
        assert rows_in(runner.small.x, runner.data.train_x).all()
    finetune_batches = batches[-(2 * 300):]  # 2 epochs of the 300 training rows
    assert rows_in(finetune_batches, runner.data.train_x).all()
    assert not rows_in(batches, runner.data.val_x).any()
    # The held-out rows are those the split names, normalised like the training rows.
    mean, std = runner.data.train_x.mean(), runner.data.train_x.std()
    assert mean == pytest.approx(0, abs=1e-4) and std == pytest.approx(1, abs=1e-2)
    expected_val_y = torch.tensor(raw.train_y[held])
    assert torch.equal(runner.data.val_y.cpu(), expected_val_y)
    last = records[-1]
    assert last["val_size"] == 100 and 0 <= last["val_accuracy"] <= 1
    assert last["train_sample_size"] == 40  # as many as the test set
    # Every evaluation: test (40), training-set sample (40), validation (100); while
    # pretraining also the small set (up to 40 of it).
    pretraining = sum(r["phase"] == "pretrain" for r in records)
    small = min(len(runner.small.y), 40)
    assert pretraining >= 1 and all(
        (r["small_set_loss"] is not None) == (r["phase"] == "pretrain") for r in records)
    assert last["eval_flops"] == runner.ledger.per_eval_sample * (
        len(records) * (40 + 40 + 100) + pretraining * small)


def test_a_log_file_from_before_these_columns_reads_with_them_null(tmp_path):
    old = [c for c in LOG_COLUMNS if not c.startswith(("train_sample", "val_"))]
    table = pa.table({c: pa.array([None, None], pa.string()) for c in old})
    table = table.set_column(old.index("evaluation"), "evaluation", pa.array([0, 1]))
    pq.write_table(table, tmp_path / "digits-t.parquet")
    read = read_table(str(tmp_path / "digits-t.parquet"))
    assert read.column_names == list(LOG_COLUMNS)
    assert read.column("val_accuracy").null_count == 2
    assert read.column("evaluation").to_pylist() == [0, 1]

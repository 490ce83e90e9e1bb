"""Savings by criterion (`analysis.criteria`) on a hand-made log whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.criteria import savings_by_criterion
from analysis.savings import reach


def trial(trial_id: str, strategy: str, seed: int, points: list[tuple]) -> list[dict]:
    """points: (compute, test accuracy, training-set loss) per evaluation."""
    return [{"sweep": "s", "trial_id": trial_id, "dataset": "digits", "strategy": strategy,
             "seed": seed, "evaluation": i, "train_flops": c, "selection_flops": 0,
             "test_accuracy": a, "train_sample_loss": loss, "val_accuracy": np.nan}
            for i, (c, a, loss) in enumerate(points)]


# Ordinary training, seeds 0 and 1; pretraining (random), seeds 0 and 1.
LOG = pd.DataFrame(
    trial("b0", "none", 0, [(0, 0.1, 2.3), (100, 0.6, 1.0), (200, 0.8, 0.5), (400, 0.9, 0.20),
                            (800, 0.92, 0.10)])
    + trial("b1", "none", 1, [(0, 0.1, 2.3), (100, 0.5, 1.2), (200, 0.7, 0.6), (400, 0.88, 0.25),
                              (800, 0.91, 0.12)])
    + trial("p0", "random", 0, [(0, 0.1, 2.3), (50, 0.7, 0.8), (100, 0.85, 0.4),
                                (200, 0.92, 0.15), (400, 0.93, 0.101)])
    + trial("p1", "random", 1, [(0, 0.1, 2.3), (100, 0.6, 1.0), (300, 0.9, 0.3),
                                (600, 0.91, 0.2)])
)


def test_reach_interpolates_and_brackets_the_crossing():
    found = reach(np.array([0, 100, 200]), np.array([0.1, 0.5, 0.9]), 0.7)
    assert (found.flops, found.low, found.high) == (150, 100, 200)
    loss = reach(np.array([0, 100, 200]), np.array([2.0, 1.0, 0.5]), 0.75, higher=False)
    assert (loss.flops, loss.low, loss.high) == (150, 100, 200)
    assert reach(np.array([0, 10]), np.array([0.9, 0.95]), 0.5).high == 0
    assert reach(np.array([0, 10]), np.array([0.1, 0.2]), 0.5).flops == np.inf


def test_savings_by_each_criterion_on_a_hand_made_log():
    table = savings_by_criterion(LOG, tolerance=0.005, epsilon=0.01).set_index("criterion")
    assert list(table.index) == ["accuracy", "loss_minimum", "converged_accuracy"]

    # (a) best ordinary accuracy 0.92 - 0.005 = 0.915 (no validation split: on test).
    a = table.loc["accuracy"]
    assert a["metric"] == "test_accuracy" and a["target"] == pytest.approx(0.915)
    # b0 crosses between 400 (0.90) and 800 (0.92): 400 + 0.015/0.02 * 400 = 700.
    assert (a["baseline_flops"], a["baseline_low"], a["baseline_high"]) == pytest.approx(
        (700, 400, 800))
    # p0 between 100 (0.85) and 200 (0.92): 100 + 0.065/0.07 * 100.
    assert a["pretrain_flops"] == pytest.approx(100 + 0.065 / 0.07 * 100)
    assert (a["pretrain_low"], a["pretrain_high"]) == (100, 200)
    assert a["pretrain_trial"] == "s/p0"
    assert a["savings"] == pytest.approx(700 / a["pretrain_flops"])
    assert (a["savings_low"], a["savings_high"]) == pytest.approx((400 / 200, 800 / 100))
    assert a["resolved"]  # 2x to 8x: it saves, whatever happened between evaluations
    # Per seed: seed 0 700 vs p0; seed 1: b1 never reaches 0.915 (skipped).
    assert a["seeds"] == 1 and a["seed_median"] == pytest.approx(a["savings"])

    # (b) lowest ordinary training-set loss 0.10 (b0 at 800); within 1%: 0.101.
    b = table.loc["loss_minimum"]
    assert b["metric"] == "train_sample_loss" and b["target"] == pytest.approx(0.101)
    assert b["baseline_flops"] == pytest.approx(400 + (0.2 - 0.101) / 0.1 * 400)
    assert b["pretrain_flops"] == pytest.approx(400)  # p0 reaches 0.101 exactly at 400
    assert (b["pretrain_low"], b["pretrain_high"]) == (200, 400)
    assert (b["savings_low"], b["savings_high"]) == pytest.approx((400 / 400, 800 / 200))
    assert not b["resolved"]  # the interval [1, 4] touches 1: the evaluations cannot tell

    # (c) ordinary training's converged test accuracy: median of 0.92 and 0.91, less 0.005.
    c = table.loc["converged_accuracy"]
    assert c["target"] == pytest.approx(0.91)
    assert c["baseline_flops"] == pytest.approx(400 + 0.01 / 0.02 * 400)  # b0: 600
    assert c["pretrain_flops"] == pytest.approx(100 + 0.06 / 0.07 * 100)  # p0
    # Per seed: seed 0: 600 / p0's; seed 1: b1 reaches 0.91 at 800, p1 at 600: 1.33.
    assert c["seeds"] == 2
    assert c["seed_max"] == pytest.approx(600 / (100 + 0.06 / 0.07 * 100))
    assert c["seed_min"] == pytest.approx(800 / 600)


def test_the_validation_split_sets_the_accuracy_target_when_logged():
    log = LOG.copy()
    log["val_accuracy"] = log["test_accuracy"] - 0.05
    a = savings_by_criterion(log).set_index("criterion").loc["accuracy"]
    assert a["metric"] == "val_accuracy" and a["target"] == pytest.approx(0.87 - 0.005)


def test_a_log_without_training_set_loss_answers_the_other_criteria():
    table = savings_by_criterion(LOG.drop(columns=["train_sample_loss", "val_accuracy"]))
    assert list(table["criterion"]) == ["accuracy", "converged_accuracy"]


def test_the_report_shows_savings_by_criterion(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    from analysis.report import analyze
    from common.records import arrow_schema

    folder = tmp_path / "results"
    folder.mkdir()
    common = dict(model="cnn", width=6, lr=1e-3, batch_size=64, augment=False,
                  finetune_epochs=5, phase="finetune", status="running")
    for trial_id, rows in LOG.groupby("trial_id"):
        records = [{**{c: None for c in arrow_schema().names}, **common, **row,
                    "val_accuracy": None,
                    "pretrain_epochs": 0 if row["strategy"] == "none" else 3,
                    "subset_size": None if row["strategy"] == "none" else 50}
                   for row in rows.to_dict("records")]
        records[-1]["status"] = "finished"
        pq.write_table(pa.Table.from_pylist(records, schema=arrow_schema()),
                       folder / f"digits-{trial_id}.parquet")
    analyze([str(tmp_path)], tmp_path / "out")
    report = (tmp_path / "out" / "report.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("| lowest training-set")]
    # 796 and 400 FLOPs (in GFLOPs), brackets 400-800 and 200-400, interval 1.00-4.00x.
    assert lines == ["| lowest training-set loss (+1%) | train_sample_loss | 0.101 | 7.96e-07 "
                     "(4e-07-8e-07) | 4e-07 (2e-07-4e-07) | 1.99x (not resolved) | 1.00-4.00x | "
                     "1.99x (1.99-1.99), 1 |"]
    table = pd.read_csv(tmp_path / "out" / "criteria.csv")
    assert list(table["criterion"]) == ["accuracy", "loss_minimum", "converged_accuracy"]

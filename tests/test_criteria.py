"""Savings by criterion (`analysis.criteria`) on a hand-made log whose answers are known."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from analysis.criteria import savings_by_criterion, targets_by_criterion
from analysis.savings import NEVER, least_to_reach, reach


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


def test_least_compute_is_bracketed_over_every_trial_not_only_the_chosen_one():
    # a crosses at 150 (between 100 and 200); b crosses later by interpolation (168.4), but its
    # evaluations only say it crossed somewhere after 40 and by 170: so may the least compute
    chosen = (("s", "a"), 0, np.array([0.0, 100, 200]), np.array([0.1, 0.7, 0.9]))
    other = (("s", "b"), 0, np.array([0.0, 40, 170]), np.array([0.1, 0.1, 0.81]))
    found, trial = least_to_reach([chosen, other], 0.8)
    assert trial == ("s", "a") and found.flops == pytest.approx(150)
    assert (found.low, found.high) == (40, 170)
    never = (("s", "c"), 0, np.array([0.0, 10]), np.array([0.1, 0.2]))
    assert least_to_reach([never], 0.8) == (NEVER, None)
    assert least_to_reach([chosen, never], 0.8)[0] == reach(chosen[2], chosen[3], 0.8)


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
    # Per seed, each to its own ordinary training's best: seed 0 to 0.915 (700 vs p0's);
    # seed 1 to 0.91 - 0.005: b1 at 400 + 0.025/0.03 * 400, p1 at 300 + 0.005/0.01 * 300.
    seed_1 = (400 + 0.025 / 0.03 * 400) / (300 + 0.005 / 0.01 * 300)
    assert a["seeds"] == 2
    assert (a["seed_max"], a["seed_min"]) == pytest.approx((a["savings"], seed_1))

    # (b) lowest ordinary training-set loss 0.10 (b0 at 800); within 1%: 0.101.
    b = table.loc["loss_minimum"]
    assert b["metric"] == "train_sample_loss" and b["target"] == pytest.approx(0.101)
    assert b["baseline_flops"] == pytest.approx(400 + (0.2 - 0.101) / 0.1 * 400)
    assert b["pretrain_flops"] == pytest.approx(400)  # p0 reaches 0.101 exactly at 400
    assert (b["pretrain_low"], b["pretrain_high"]) == (200, 400)
    assert (b["savings_low"], b["savings_high"]) == pytest.approx((400 / 400, 800 / 200))
    assert not b["resolved"]  # the interval [1, 4] touches 1: the evaluations cannot tell
    # Per seed: seed 0 as pooled (796 / 400); seed 1's own lowest is 0.12, so 0.1212: b1
    # reaches it (between 400 and 800), p1 never does (its lowest is 0.2): 0x.
    assert b["seeds"] == 2 and (b["seed_min"], b["seed_max"]) == pytest.approx((0, 796 / 400))

    # (c) ordinary training's converged test accuracy: median of 0.92 and 0.91, less 0.005.
    c = table.loc["converged_accuracy"]
    assert c["target"] == pytest.approx(0.91)
    assert c["baseline_flops"] == pytest.approx(400 + 0.01 / 0.02 * 400)  # b0: 600
    assert c["pretrain_flops"] == pytest.approx(100 + 0.06 / 0.07 * 100)  # p0
    # Per seed, to its own final accuracy - 0.005: seed 0 ends at 0.92, seed 1 at 0.91, so the
    # same targets, hence savings, as the best-accuracy criterion's.
    assert c["seeds"] == 2
    assert (c["seed_max"], c["seed_min"]) == pytest.approx((a["seed_max"], a["seed_min"]))


def test_a_fixed_target_is_a_criterion_with_its_seed_spread():
    two = pd.concat([LOG, LOG.assign(dataset="other")], ignore_index=True)
    table = savings_by_criterion(two, target=0.8)
    fixed = table[table["criterion"] == "target"]
    assert list(fixed["dataset"]) == ["digits", "other"] and (fixed["target"] == 0.8).all()
    t = fixed.iloc[0]
    # b0 reaches 0.8 at 200; p0 at 50 + 0.1/0.15 * 50. Per seed: that, and seed 1's
    # b1 at 200 + 0.1/0.18 * 200 over p1 at 100 + 0.2/0.3 * 200.
    p0 = 50 + 0.1 / 0.15 * 50
    assert t["savings"] == pytest.approx(200 / p0) and t["seeds"] == 2
    assert (t["seed_max"], t["seed_min"]) == pytest.approx(
        (200 / p0, (200 + 0.1 / 0.18 * 200) / (100 + 0.2 / 0.3 * 200)))


def test_a_fixed_target_neither_side_reaches_is_no_saving_and_not_resolved(tmp_path):
    from analysis.report import analyze

    t = savings_by_criterion(LOG, target=0.99).set_index("criterion").loc["target"]
    assert np.isinf(t["baseline_flops"]) and np.isinf(t["pretrain_flops"])
    assert np.isnan(t["savings"]) and not t["resolved"]
    assert np.isnan(t["savings_low"]) and np.isnan(t["savings_high"]) and t["seeds"] == 0
    # only pretraining reaches it: an unbounded saving, resolved
    only = savings_by_criterion(LOG, target=0.925).set_index("criterion").loc["target"]
    assert np.isinf(only["baseline_flops"]) and only["pretrain_trial"] == "s/p0"
    assert np.isinf(only["savings"]) and only["resolved"]

    write_results(tmp_path / "results", LOG.assign(val_accuracy=np.nan))
    analyze([str(tmp_path)], tmp_path / "out", target=0.99)
    rows = [line for line in (tmp_path / "out" / "report.md").read_text().splitlines()
            if line.startswith("| fixed (--target)")]
    assert rows == ["| fixed (--target) | test_accuracy | 0.99 | not reached | not reached | "
                    "neither reaches it | - | - |"]


def test_the_criteria_table_says_not_reached_and_unbounded_in_words(tmp_path):
    from analysis.report import analyze

    def criteria_rows(log, target, out):
        analyze([str(tmp_path / log)], tmp_path / out, target=target)
        return {line.split(" | ")[0]: line.split(" | ")[5:7]  # saving, interval
                for line in (tmp_path / out / "report.md").read_text().splitlines()
                if line.startswith(("| fixed", "| best accuracy"))}

    (tmp_path / "all").mkdir()
    (tmp_path / "weak").mkdir()
    # only pretraining reaches 0.925 (p0, 0.93): an unbounded saving, and interval
    write_results(tmp_path / "all" / "results", LOG.assign(val_accuracy=np.nan))
    assert criteria_rows("all", 0.925, "out1")["| fixed (--target)"] == [
        "unbounded", "unbounded"]
    # without p0, pretraining reaches neither 0.915 nor ordinary training's best less the
    # tolerance (0.915): not reached, not a saving of 0.00x in 0.00-0.00x
    write_results(tmp_path / "weak" / "results",
                  LOG[LOG["trial_id"] != "p0"].assign(val_accuracy=np.nan))
    rows = criteria_rows("weak", 0.915, "out2")
    assert rows == {"| fixed (--target)": ["not reached", "-"],
                    "| best accuracy": ["not reached", "-"]}


def test_criteria_files_keep_their_columns_without_a_comparison(tmp_path):
    pretraining_only = LOG[LOG["strategy"] != "none"]
    assert list(savings_by_criterion(pretraining_only).columns)[:4] == [
        "dataset", "criterion", "metric", "target"]
    assert savings_by_criterion(pretraining_only).empty
    reach_table = targets_by_criterion(pretraining_only)
    assert reach_table.empty and "median_savings_same_seed" in reach_table.columns


def test_the_validation_split_sets_the_accuracy_target_when_logged():
    log = LOG.copy()
    log["val_accuracy"] = log["test_accuracy"] - 0.05
    a = savings_by_criterion(log).set_index("criterion").loc["accuracy"]
    assert a["metric"] == "val_accuracy" and a["target"] == pytest.approx(0.87 - 0.005)


def test_with_a_validation_split_the_headline_and_savings_are_judged_on_it(tmp_path):
    from analysis.report import analyze
    from analysis.savings import headlines, savings_table

    # Test accuracy would set the target at 0.95 (never reached by pretraining); validation
    # sets it at 0.90 - 0.005: ordinary training at 20 + 0.015/0.02 * 10, pretraining at
    # 5 + 0.295/0.32 * 5. Ordinary training's last evaluation is not its best on validation.
    log = pd.DataFrame(
        trial("b0", "none", 0, [(0, 0.1, 2.3), (10, 0.5, 1.0), (20, 0.8, 0.5), (30, 0.95, 0.4),
                                (40, 0.95, 0.3)])
        + trial("p0", "random", 0, [(0, 0.1, 2.3), (5, 0.6, 1.0), (10, 0.93, 0.5),
                                    (15, 0.93, 0.4)]))
    log["val_accuracy"] = [0.1, 0.5, 0.88, 0.90, 0.89, 0.1, 0.6, 0.92, 0.92]
    log = configured(log)
    h = headlines(log)[0]
    assert h.metric == "val_accuracy" and h.baseline_accuracy == 0.90
    assert h.savings == pytest.approx((20 + 0.015 / 0.02 * 10) / (5 + 0.295 / 0.32 * 5))
    assert h.sentence().startswith(f"digits: random pretraining on K=50 (Q=2) for 3 epochs "
                                   f"reaches ordinary training's best validation accuracy "
                                   f"90.00% (within 0.5 pp) with {h.savings:.2f}x fewer FLOPs")
    accuracy = savings_by_criterion(log).set_index("criterion").loc["accuracy"]
    assert accuracy["savings"] == pytest.approx(h.savings)  # the report agrees with itself
    table = savings_table(log, points=3)
    assert set(table["metric"]) == {"val_accuracy"}
    assert table["target_accuracy"].tolist() == pytest.approx([0.45, 0.675, 0.90])

    write_results(tmp_path / "results", log)
    summary = analyze([str(tmp_path)], tmp_path / "out")
    # best over every evaluation, on validation (b0 ends at 0.89)
    assert summary.splitlines()[1].split()[:6] == ["digits", "2", "90.00%", "val", "92.00%",
                                                   "val"]
    report = (tmp_path / "out" / "report.md").read_text()
    assert report.splitlines()[2].startswith(
        "**Answer: digits: pretraining reaches ordinary training's best validation accuracy "
        "(within 0.5 pp) with 2.86x fewer FLOPs")


def test_a_log_without_training_set_loss_answers_the_other_criteria():
    table = savings_by_criterion(LOG.drop(columns=["train_sample_loss", "val_accuracy"]))
    assert list(table["criterion"]) == ["accuracy", "converged_accuracy"]


CONFIG = dict(model="cnn", width=6, lr=1e-3, batch_size=64, augment=False, finetune_epochs=5,
              phase="finetune", status="running")


def configured(log: pd.DataFrame) -> pd.DataFrame:
    """LOG with what names a configuration: ordinary training, and random pretraining (K=50,
    3 epochs), each on seeds 0 and 1."""
    pretrained = log["strategy"] != "none"
    return log.assign(**CONFIG, pretrain_epochs=np.where(pretrained, 3, 0),
                      subset_size=np.where(pretrained, 50, np.nan),
                      overdetermination_ratio=np.where(pretrained, 2.0, np.nan))


def write_results(folder, log: pd.DataFrame) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    from common.records import arrow_schema

    folder.mkdir()
    for trial_id, rows in configured(log).groupby("trial_id"):
        records = [{**{c: None for c in arrow_schema().names},
                    **{k: (None if isinstance(v, float) and np.isnan(v) else v)
                       for k, v in row.items()}}
                   for row in rows.to_dict("records")]
        records[-1]["status"] = "finished"
        pq.write_table(pa.Table.from_pylist(records, schema=arrow_schema()),
                       folder / f"digits-{trial_id}.parquet")


def test_compute_to_each_criterion_per_configuration_across_seeds():
    table = targets_by_criterion(configured(LOG), target=0.8)
    assert list(dict.fromkeys(table["criterion"])) == [
        "target", "accuracy", "loss_minimum", "converged_accuracy"]
    rows = {(r["criterion"], r["strategy"]): r for r in table.to_dict("records")}

    # --target 0.8 on test (no validation split): b0 at 200, b1 at 200 + 0.1/0.18 * 200;
    # p0 at 50 + 0.1/0.15 * 50, p1 at 100 + 0.2/0.3 * 200.
    b = [200, 200 + 0.1 / 0.18 * 200]
    p = [50 + 0.1 / 0.15 * 50, 100 + 0.2 / 0.3 * 200]
    target = rows[("target", "random")]
    assert target["metric"] == "test_accuracy" and target["target"] == 0.8
    assert target["median_gflops"] * 1e9 == pytest.approx(np.median(p))
    ratios = [b[0] / p[0], b[1] / p[1]]
    assert [target[f"{k}_savings_same_seed"] for k in ("median", "min", "max")] == \
        pytest.approx([np.median(ratios), min(ratios), max(ratios)])

    # Training-set loss 0.101: only seed 0 reaches it on either side (796 and 400).
    loss = rows[("loss_minimum", "random")]
    assert loss["metric"] == "train_sample_loss" and (loss["seeds"], loss["reached"]) == (2, 1)
    assert loss["min_gflops"] * 1e9 == pytest.approx(400)
    assert loss["median_savings_same_seed"] == pytest.approx(796 / 400)
    assert rows[("loss_minimum", "none")]["reached"] == 1

    # Converged accuracy 0.91: ordinary training 600 and 800, pretraining p0's and 600.
    converged = rows[("converged_accuracy", "random")]
    ratios = [600 / (100 + 0.06 / 0.07 * 100), 800 / 600]
    assert (converged["min_savings_same_seed"], converged["max_savings_same_seed"]) == \
        pytest.approx((min(ratios), max(ratios)))
    assert rows[("converged_accuracy", "none")]["median_gflops"] * 1e9 == pytest.approx(700)


def test_a_target_is_judged_on_validation_when_the_log_has_it():
    log = configured(LOG).assign(val_accuracy=LOG["test_accuracy"] - 0.1)
    table = targets_by_criterion(log, target=0.8)
    assert set(table[table["criterion"] == "target"]["metric"]) == {"val_accuracy"}
    on_test = targets_by_criterion(log, target=0.8, target_on="test")
    assert set(on_test[on_test["criterion"] == "target"]["metric"]) == {"test_accuracy"}
    # On validation (test - 0.1): b0 reaches 0.8 at 400, b1 between 400 (0.78) and 800 (0.81).
    none = table[(table["criterion"] == "target") & (table["strategy"] == "none")].iloc[0]
    assert (none["min_gflops"] * 1e9, none["max_gflops"] * 1e9) == pytest.approx(
        (400, 400 + 0.02 / 0.03 * 400))


def test_the_report_shows_savings_by_criterion(tmp_path):
    from analysis.report import analyze

    write_results(tmp_path / "results", LOG.assign(val_accuracy=np.nan))
    analyze([str(tmp_path)], tmp_path / "out", target=0.8)
    report = (tmp_path / "out" / "report.md").read_text()
    lines = [line for line in report.splitlines() if line.startswith("| lowest training-set")]
    # 796 and 400 FLOPs (in GFLOPs), brackets 400-800 and 200-400, interval 1.00-4.00x; per
    # seed 1.99x and 0x (seed 1's pretraining never reaches its own lowest loss).
    assert lines == ["| lowest training-set loss | train_sample_loss | 0.101 (0.1 +1%) | "
                     "7.96e-07 (4e-07-8e-07) | 4e-07 (2e-07-4e-07) | 1.99x (not resolved) | "
                     "1.00-4.00x | 0.99x (0.00-1.99), 2 |"]
    # an accuracy target is ordinary training's best (or median final) less the tolerance:
    # named with the value it is set from, never as that value itself
    assert "its best or its final accuracy less the tolerance (0.5 pp)" in report
    assert "| best accuracy | test_accuracy | 0.915 (0.92 less 0.5 pp) |" in report
    assert "| final test accuracy (median) | test_accuracy | 0.91 (0.915 less 0.5 pp) |" in report
    table = pd.read_csv(tmp_path / "out" / "criteria.csv")
    assert list(table["criterion"]) == ["target", "accuracy", "loss_minimum",
                                        "converged_accuracy"]
    assert table["target"].tolist() == pytest.approx([0.8, 0.915, 0.101, 0.91])
    assert table["reference"].tolist() == pytest.approx([np.nan, 0.92, 0.1, 0.915],
                                                        nan_ok=True)
    assert "| fixed (--target) | test_accuracy | 0.8 |" in report
    # The --target table by criterion: pretraining's row for the training-set loss.
    target_rows = [line for line in report.splitlines()
                   if line.startswith("| training-set loss 0.101") and "random" in line]
    assert target_rows == ["| training-set loss 0.101 (ordinary training's lowest 0.1 +1%) | "
                           "random pretraining on K=50 (Q=2) for 3 epochs | 2 (1) | "
                           "not reached | 4e-07-not reached | 1.99x |"]
    targets = {line.split(" | ")[0] for line in report.splitlines()  # the target table's
               if line.split(" | ")[1:2] == ["random pretraining on K=50 (Q=2) for 3 epochs"]}
    assert targets == {"| 80.0% test accuracy (--target)",
                       "| 91.50% test accuracy (ordinary training's best 92.00% less 0.5 pp)",
                       "| training-set loss 0.101 (ordinary training's lowest 0.1 +1%)",
                       "| 91.00% test accuracy (ordinary training's median final 91.50% less "
                       "0.5 pp)"}
    assert set(pd.read_csv(tmp_path / "out" / "target.csv")["criterion"]) == {
        "target", "accuracy", "loss_minimum", "converged_accuracy"}
    # A frontier figure on the training-set loss (logged); none on validation (not logged).
    assert (tmp_path / "out" / "frontier_digits_train_sample_loss.png").stat().st_size > 10_000
    assert not (tmp_path / "out" / "frontier_digits_val_accuracy.png").exists()


def test_a_target_on_validation_needs_a_validation_split(tmp_path):
    from analysis.report import analyze
    from common.errors import UserError

    write_results(tmp_path / "results", LOG.assign(val_accuracy=np.nan))
    with pytest.raises(UserError, match="--target-on validation: these results have no "
                                        "validation split"):
        analyze([str(tmp_path)], tmp_path / "out", target=0.8, target_on="validation")

import dataclasses
import math
import re
import warnings

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from analysis import flops_to_reach, headlines, load_results, savings_table
from analysis.load import with_compute
from analysis.savings import format_gflops, savings_band, target_table
from common.errors import SweepWarning, UserError
from common.records import arrow_schema


def record(trial, evaluation, flops, accuracy, strategy="none", dataset="digits", sweep="s",
           **extra):
    row = {c: None for c in arrow_schema().names}
    row.update(sweep=sweep, trial_id=trial, dataset=dataset, strategy=strategy,
               evaluation=evaluation, train_flops=flops, test_accuracy=accuracy,
               selection_flops=0, status="running", phase="finetune", **extra)
    return row


def write_log(folder, rows_by_trial):
    folder.mkdir(parents=True, exist_ok=True)
    for trial, rows in rows_by_trial.items():
        table = pa.Table.from_pylist(rows, schema=arrow_schema())
        pq.write_table(table, folder / f"digits-{trial}.parquet")


# A hand-made log. Baseline: 0.1 -> 0.5 -> 0.8 at 0, 100, 200 FLOPs.
# Pretraining (random, K=50): 0.1 -> 0.5 -> 0.8 at 0, 20, 50 FLOPs, plus 10 FLOPs of selection.
BASE = [record("base", i, f, a) for i, (f, a) in enumerate([(0, 0.1), (100, 0.5), (200, 0.8)])]
PRE = [record("pre", i, f, a, strategy="random", subset_size=50, subset_fraction=0.5,
              overdetermination_ratio=2.0, pretrain_epochs=3)
       | {"selection_flops": 10}
       for i, (f, a) in enumerate([(0, 0.1), (20, 0.5), (50, 0.8)])]


def test_gflops_keep_three_significant_digits_side_by_side():
    # "0.922 vs 1.90", not "0.922 vs 1.9"; no exponent where rounding reaches a thousand
    assert [format_gflops(v) for v in (0.922, 1.9, 7.0, 12.4, 100.0, 0.0)] == [
        "0.922", "1.90", "7.00", "12.4", "100", "0"]
    assert [format_gflops(v) for v in (999.4, 999.6, 12345.6)] == ["999", "1,000", "12,346"]
    assert format_gflops(float("inf")) == "not reached"


def test_flops_to_reach_interpolates_between_evaluations():
    flops, acc = pd.Series([0, 100, 200]).to_numpy(), pd.Series([0.1, 0.5, 0.8]).to_numpy()
    assert flops_to_reach(flops, acc, 0.65) == pytest.approx(150)  # halfway from 0.5 to 0.8
    assert flops_to_reach(flops, acc, 0.5) == 100  # reached exactly at an evaluation
    assert flops_to_reach(flops, acc, 0.05) == 0
    assert flops_to_reach(flops, acc, 0.9) == math.inf


def test_savings_on_a_hand_made_log():
    df = pd.DataFrame(BASE + PRE)
    table = savings_table(df, points=3)  # targets 0.4, 0.6, 0.8
    assert table["target_accuracy"].tolist() == pytest.approx([0.4, 0.6, 0.8])
    # baseline to 0.6: 100 + (0.1/0.3)*100; pretraining (with selection) to 0.6: 30 + (0.1/0.3)*30
    row = table.iloc[1]
    assert row["baseline_flops"] == pytest.approx(100 + 100 / 3)
    assert row["pretrain_flops"] == pytest.approx(30 + 10)
    assert row["savings"] == pytest.approx((100 + 100 / 3) / 40)
    assert table.iloc[2]["savings"] == pytest.approx(200 / 60)
    # Each crossing's bracket: the evaluations either side of it. To 0.6, ordinary training
    # crosses between 100 and 200, pretraining between 30 and 60: the saving lies in
    # [100/60, 200/30], above 1 whatever happened between the evaluations (resolved).
    assert (row["baseline_low"], row["baseline_high"]) == (100, 200)
    assert (row["pretrain_low"], row["pretrain_high"]) == (30, 60)
    assert (row["savings_low"], row["savings_high"]) == pytest.approx((100 / 60, 200 / 30))
    assert row["resolved"]
    # To 0.4 ordinary training crosses between 0 and 100 FLOPs: the saving lies in [0, 10],
    # which the evaluations cannot resolve.
    first = table.iloc[0]
    assert (first["savings_low"], first["savings_high"]) == pytest.approx((0, 100 / 10))
    assert not first["resolved"]
    # Drawn on a log axis, the open end (0) runs to the band's floor, below the y range shown;
    # the other intervals are drawn as they are.
    band, (bottom, top) = savings_band(table)
    assert band["savings_low"].tolist() == pytest.approx(
        [0.05, 100 / 60, table.iloc[2]["savings_low"]])
    assert band["savings_high"].tolist() == pytest.approx(table["savings_high"].tolist())
    assert bottom > 0.05 and bottom <= table["savings"].min() and top >= table["savings"].max()


def test_headline_names_the_configuration_and_the_ratio():
    [h] = headlines(pd.DataFrame(BASE + PRE), tolerance=0.0)
    assert (h.baseline_accuracy, h.baseline_flops, h.pretrain_flops) == (0.8, 200, 60)
    assert h.savings == pytest.approx(200 / 60)
    assert h.sentence(0.0) == (
        "digits: random pretraining on K=50 (50.0%, Q=2) for 3 epochs reaches ordinary "
        "training's best accuracy 80.00% (within 0.0 pp) with 3.33x fewer FLOPs "
        "(6e-08 vs 2e-07 GFLOPs; 1.67-6.67x from the evaluations either side)")
    assert h.interval == pytest.approx((100 / 60, 200 / 30))  # (100-200) against (30-60)
    costs = dataclasses.replace(h, baseline_flops=60, pretrain_flops=200, savings=0.3,
                                interval=(0.4, 2 / 3))  # pretraining needs more: said as more
    assert costs.sentence(0.0).endswith(
        "needs 3.33x more FLOPs than ordinary training to reach ordinary training's best "
        "accuracy 80.00% (within 0.0 pp) (2e-07 vs 6e-08 GFLOPs; 1.50-2.50x more from the "
        "evaluations either side)")
    wide = dataclasses.replace(h, interval=(0.8, np.inf))
    assert wide.sentence(0.0).endswith(
        "(6e-08 vs 2e-07 GFLOPs; at least 0.80x from the evaluations either side, not "
        "resolved)")
    # costing more, the interval's open low end (0) is an open high end of 'more'
    open_more = dataclasses.replace(costs, savings=0.5, interval=(0.0, 0.8))
    assert open_more.sentence(0.0).endswith(
        "(2e-07 vs 6e-08 GFLOPs; at least 1.25x more from the evaluations either side)")
    # and its open high end (pretraining's bracket starts at no compute) a closed one
    capped_more = dataclasses.replace(costs, savings=0.6, interval=(0.5, np.inf))
    assert capped_more.sentence(0.0).endswith(
        "(2e-07 vs 6e-08 GFLOPs; at most 2.00x more from the evaluations either side, not "
        "resolved)")  # was '0.00-2.00x more'
    capped = dataclasses.replace(h, savings=1.5, interval=(0.0, 2.0))
    assert capped.sentence(0.0).endswith("; at most 2.00x from the evaluations either side, "
                                         "not resolved)")


@pytest.mark.parametrize("best_at, reason, said", [(20, "max_epochs", True),
                                                    (17, "max_epochs", False),
                                                    (20, "patience", False)])
def test_headline_says_when_ordinary_training_may_still_have_been_improving(
        tmp_path, best_at, reason, said):
    from analysis.report import analyze

    # ordinary training for 20 epochs, evaluated every epoch, its best (0.8) at `best_at`
    base = [record("base", e, 10 * e, 0.8 if e == best_at else 0.5 + 0.01 * e, epoch=float(e))
            for e in range(21)]
    base[-1] |= {"status": "finished", "stop_reason": reason}
    [h] = headlines(pd.DataFrame(base + PRE), tolerance=0.0)
    assert (h.caveat is not None) == said
    write_log(tmp_path / "results", {"base": base, "pre": PRE})
    summary = analyze([str(tmp_path)], tmp_path / "out")
    report = (tmp_path / "out" / "report.md").read_text()
    html = (tmp_path / "out" / "report.html").read_text()
    if said:  # a best in the last tenth of its epochs, which then ran out
        assert h.baseline_cut_at == 20 and "last tenth of its 20 epochs" in h.caveat
        assert summary.splitlines()[-2] == h.caveat  # after the headline, in all three
        assert f"{h.caveat}." in report and "last tenth of its 20 epochs" in html
        assert (", against ordinary training of 20 epochs, which may still have been "
                "improving." in report.splitlines()[2])  # the answer says it too
    else:
        assert "last tenth" not in summary + report + html
        assert "may still have been improving" not in report + html
    # no validation split: the report says the best points are chosen on the test set
    assert "No validation split was held out" in report and "No validation split" in html


def test_the_report_says_nothing_of_a_test_set_choice_where_a_split_was_held_out():
    from analysis.report import chosen_on_test

    with_split = pd.DataFrame([r | {"val_accuracy": r["test_accuracy"]} for r in BASE + PRE])
    assert chosen_on_test(with_split) is None
    assert chosen_on_test(pd.DataFrame(BASE + PRE)).startswith("No validation split")
    [h] = headlines(pd.DataFrame(BASE + PRE), tolerance=0.0)  # no epochs, no stop reason
    assert h.caveat is None


def test_headline_when_pretraining_never_gets_there():
    weak = [r | {"test_accuracy": min(r["test_accuracy"], 0.6)} for r in PRE]
    [h] = headlines(pd.DataFrame(BASE + weak))
    assert h.pretrain_flops == math.inf and "no pretraining configuration reaches" in h.sentence()
    # how close it came: its best accuracy, and what each side needs to reach that
    assert h.closest == 0.6
    assert h.closest_flops == pytest.approx((100 + 100 / 3, 50 + 10))  # 0.5 -> 0.8 at 100 -> 200
    assert h.sentence().endswith(
        "; the most accurate, random pretraining on K=50 (50.0%, Q=2) for 3 epochs, gets to "
        "60.00% (19.50 pp short of the target), with 2.22x fewer FLOPs than ordinary training "
        "needs to reach 60.00% (6e-08 vs 1.33e-07 GFLOPs; 1.67-6.67x from the evaluations "
        "either side)")
    # a second trial gets to 60% too, with less compute: it is the one named, with its compute
    tie = [r | {"trial_id": "tie", "subset_size": 20, "selection_flops": 0,
                "test_accuracy": min(r["test_accuracy"], 0.6)}
           for r in PRE[:2]] + [PRE[2] | {"trial_id": "tie", "subset_size": 20,
                                           "selection_flops": 0, "train_flops": 30,
                                           "test_accuracy": 0.6}]
    [h] = headlines(pd.DataFrame(BASE + weak + tie))
    assert h.closest_config["trial_id"] == "tie" and h.closest_flops[1] == 30
    assert "K=20" in h.sentence() and "4.44x fewer FLOPs" in h.sentence()
    # no better than untrained: there is nothing to compare
    flat = [r | {"test_accuracy": 0.1} for r in PRE]
    [h] = headlines(pd.DataFrame(BASE + flat))
    assert h.sentence().endswith("gets to 10.00% (69.50 pp short of the target), which "
                                 "ordinary training reaches untrained")


def test_load_results_from_several_sweeps_with_proper_dtypes(tmp_path):
    write_log(tmp_path / "one" / "results", {"base": BASE})
    write_log(tmp_path / "two" / "results", {"pre": [r | {"sweep": "t"} for r in PRE]})
    df = load_results([str(tmp_path / "one"), str(tmp_path / "two" / "results")])
    assert len(df) == 6 and sorted(df["sweep"].unique()) == ["s", "t"]
    assert df["train_flops"].dtype == "int64" and df["test_accuracy"].dtype == "float64"
    assert list(df.columns) == [*arrow_schema().names, "compute_flops", "pretrain_epochs_run"]
    # compute: training FLOPs plus the small set's selection FLOPs (10 for PRE)
    assert (df["compute_flops"] - df["train_flops"]).tolist() == [0, 0, 0, 10, 10, 10]


def test_results_given_twice_are_read_once(tmp_path):
    from analysis.report import analyze

    sweep, results = tmp_path / "q", tmp_path / "q" / "results"
    write_log(results, {"base": BASE, "pre": PRE})
    pre = results / "digits-pre.parquet"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results([str(sweep), f"{results}/", str(pre)])
    assert [str(w.message) for w in caught] == [
        f"{results}/: the same results as {sweep}; read once",  # the same folder
        f"evaluations given more than once in {sweep}, {results}/, {pre}: 3 of them, each "
        "read once"]  # a file of it
    assert df[["trial_id", "evaluation"]].values.tolist() == [
        ["base", 0], ["base", 1], ["base", 2], ["pre", 0], ["pre", 1], ["pre", 2]]
    # the report counts each trial once: 1 run of each configuration, trial ids not repeated
    with pytest.warns(SweepWarning, match="the same results as"):
        summary = analyze([str(sweep), str(results)], tmp_path / "out")
    assert summary.splitlines()[2].split()[:2] == ["digits", "2"]
    rows = [line for line in (tmp_path / "out" / "report.md").read_text().splitlines()
            if line.startswith("| random pretraining")]
    assert rows and all("| 1 / 1 |" in line and line.endswith("| pre |") for line in rows)


def test_load_results_skips_corrupt_and_partial_files_naming_them(tmp_path):
    results = tmp_path / "results"
    write_log(results, {"base": BASE, "pre": PRE})
    good = (results / "digits-pre.parquet").read_bytes()
    (results / "digits-pre.parquet").write_bytes(good[: len(good) // 2])  # partial
    (results / "digits-junk.parquet").write_bytes(b"not parquet at all")
    (results / ".digits-x.parquet.1234.tmp").write_bytes(b"being written")  # ignored silently
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = load_results(str(tmp_path))
    messages = sorted(str(w.message) for w in caught)
    assert len(messages) == 2
    assert "digits-junk.parquet" in messages[0] and "digits-pre.parquet" in messages[1]
    assert df["trial_id"].unique().tolist() == ["base"]


def test_load_results_with_nothing_there_is_a_user_error(tmp_path):
    with pytest.raises(UserError, match="no such file or folder"):
        load_results(str(tmp_path / "missing"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(UserError, match="no results in"):
        load_results(str(tmp_path / "empty"))


def test_hypervolumes_are_on_compute_with_the_selection():
    from analysis.report import frontier_hypervolumes

    volumes = frontier_hypervolumes(pd.DataFrame(BASE + PRE).pipe(with_compute)).iloc[0]
    # PRE's trained evaluations at 20+10 and 50+10 FLOPs of compute (0.5, 0.8); BASE's at
    # 100 and 200 (the reference: the largest compute, log10 200).
    lg = math.log10
    assert volumes["reference_log10_flops"] == pytest.approx(lg(200))
    assert volumes["hypervolume_pretraining"] == pytest.approx(
        (lg(60) - lg(30)) * 0.5 + (lg(200) - lg(60)) * 0.8)
    assert volumes["hypervolume_ordinary"] == pytest.approx((lg(200) - lg(100)) * 0.5)


def test_target_table_across_seeds_with_same_seed_savings():
    # Two seeds of ordinary training and of one pretraining configuration; compute to 0.8:
    # baseline 200 (seed 0) and 100 (seed 1); pretraining 50+10 and 40+10 (selection included).
    rows = []
    for seed, (base, pre) in enumerate([(200, 50), (100, 40)]):
        rows += [record(f"b{seed}", i, f, a, seed=seed, model="cnn", width=6, lr=1e-3,
                        batch_size=64, augment=False, pretrain_epochs=0, finetune_epochs=5)
                 for i, (f, a) in enumerate([(0, 0.1), (base, 0.8)])]
        rows += [record(f"p{seed}", i, f, a, strategy="random", seed=seed, subset_size=50,
                        overdetermination_ratio=2.0, pretrain_epochs=3, model="cnn", width=6,
                        lr=1e-3, batch_size=64, augment=False, finetune_epochs=5)
                 | {"selection_flops": 10}
                 for i, (f, a) in enumerate([(0, 0.1), (pre, 0.8)])]
    table = target_table(pd.DataFrame(rows), 0.8).set_index("strategy")
    assert table.loc["random", "median_gflops"] == pytest.approx(55e-9)
    assert (table.loc["random", "min_gflops"], table.loc["random", "max_gflops"]) == \
        pytest.approx((50e-9, 60e-9))
    same_seed = table.loc["random", "median_savings_same_seed"]
    assert same_seed == pytest.approx((200 / 60 + 100 / 50) / 2)
    assert table.loc["none", "median_savings_same_seed"] == 1.0
    assert (table.loc["random", "seeds"], table.loc["random", "reached"]) == (2, 2)


def test_target_table_compares_with_the_baseline_that_reaches_the_target():
    # Short ordinary training (3 seeds) never gets to 0.8; long ordinary training (2 seeds) does:
    # savings are measured against the long one.
    common = dict(model="cnn", width=6, lr=1e-3, batch_size=64, augment=False, pretrain_epochs=0)
    rows = []
    for seed in range(3):
        rows += [record(f"short{seed}", i, f, a, seed=seed, finetune_epochs=2, **common)
                 for i, (f, a) in enumerate([(0, 0.1), (50, 0.7)])]
    for seed in range(2):
        rows += [record(f"long{seed}", i, f, a, seed=seed, finetune_epochs=9, **common)
                 for i, (f, a) in enumerate([(0, 0.1), (100, 0.7), (300, 0.9)])]
        rows += [record(f"pre{seed}", i, f, a, strategy="random", seed=seed, subset_size=9,
                        overdetermination_ratio=1.0, finetune_epochs=9,
                        **(common | {"pretrain_epochs": 2}))
                 for i, (f, a) in enumerate([(0, 0.1), (100, 0.9)])]
    table = target_table(pd.DataFrame(rows), 0.8)
    pre = table[table["strategy"] == "random"].iloc[0]
    assert pre["median_savings_same_seed"] == pytest.approx(200 / (100 * 0.7 / 0.8))
    short = table[(table["strategy"] == "none") & (table["finetune_epochs"] == 2)].iloc[0]
    assert short["reached"] == 0 and short["median_gflops"] == float("inf")


def test_target_table_counts_a_seed_pretraining_does_not_bring_there_as_zero():
    # Three seeds; ordinary training reaches 0.9 at 30 on each, pretraining at 10 on seed 0 only.
    # Same seed: 3x, 0, 0 (median 0, as analysis.criteria says); a seed ordinary training does
    # not bring there (seed 3) is not compared.
    common = dict(model="cnn", width=6, lr=1e-3, batch_size=64, augment=False,
                  finetune_epochs=5)
    rows = []
    for seed in range(4):
        base = [(0, 0.1), (10, 0.5), (30, 0.9)] if seed < 3 else [(0, 0.1), (30, 0.5)]
        rows += [record(f"b{seed}", i, f, a, seed=seed, pretrain_epochs=0, **common)
                 for i, (f, a) in enumerate(base)]
        rows += [record(f"p{seed}", i, f, a, strategy="random", seed=seed, subset_size=9,
                        overdetermination_ratio=1.0, pretrain_epochs=2, **common)
                 for i, (f, a) in enumerate([(0, 0.1), (10, 0.9 if seed == 0 else 0.7)])]
    pre = target_table(pd.DataFrame(rows), 0.9).set_index("strategy").loc["random"]
    assert (pre["seeds"], pre["reached"]) == (4, 1)
    assert pre[["median_savings_same_seed", "min_savings_same_seed",
                "max_savings_same_seed"]].tolist() == [0, 0, 3]


def test_result_log_keeps_one_row_per_evaluation_and_ends_at_the_final_row(tmp_path):
    from sweep.results_log import ResultLog, last_logged_evaluation

    log = ResultLog(str(tmp_path))
    first_attempt = [record("t", i, 10 * i, 0.1 * i) for i in range(6)]  # got to evaluation 5
    for row in first_attempt:
        log.add(row)
    log.flush("digits", "t")
    assert last_logged_evaluation(str(tmp_path), "digits", "t") == 5
    again = ResultLog(str(tmp_path))  # a resumed driver: reads the file back
    for i in range(2, 5):  # redone from evaluation 2; this attempt ends at evaluation 4
        status = "finished" if i == 4 else "running"
        again.add(record("t", i, 10 * i, 0.11 * i) | {"status": status})
    again.flush("digits", "t")
    df = load_results(str(tmp_path))
    assert df["evaluation"].tolist() == [0, 1, 2, 3, 4]
    assert df["test_accuracy"].tolist() == pytest.approx([0, 0.1, 0.22, 0.33, 0.44])
    assert df["status"].iloc[-1] == "finished"


def test_analysis_of_a_running_sweep_says_so(tmp_path):
    from analysis.report import analyze

    done = [record("done", i, 10 * i, 0.1 * i) for i in range(4)]
    done[-1]["status"] = "finished"
    going = [record("going", i, 10 * i, 0.1 * i, strategy="class_mean", pretrain_epochs=2)
             for i in range(2)]  # its last row: running
    write_log(tmp_path / "results", {"done": done, "going": going})
    summary = analyze([str(tmp_path)], tmp_path / "out")
    assert summary.splitlines()[0].startswith("In progress: 1 of 2 trials are still running")
    report = (tmp_path / "out" / "report.md").read_text()
    assert "**In progress: 1 of 2 trials" in report
    going[-1]["status"] = "failed"
    write_log(tmp_path / "results", {"done": done, "going": going})
    assert analyze([str(tmp_path)], tmp_path / "out3").splitlines()[0] == (
        "1 of 2 trials failed (an error, after their retries); their latest evaluations are "
        "shown as they stand, not as results.")
    going[-1]["status"] = "finished"
    write_log(tmp_path / "results", {"done": done, "going": going})
    assert not analyze([str(tmp_path)], tmp_path / "out2").startswith("In progress")


def test_the_summary_with_no_tolerance_says_baseline_accuracy_without_minus_zero(tmp_path):
    from analysis.report import analyze

    write_log(tmp_path / "results", {"base": BASE, "pre": PRE})
    assert "3.33x fewer FLOPs at baseline accuracy\n" in analyze(
        [str(tmp_path)], tmp_path / "out", tolerance=0.0) + "\n"
    assert "fewer FLOPs at baseline accuracy -0.5pp" in analyze([str(tmp_path)], tmp_path / "o2")


def test_analysis_before_any_training_says_there_is_nothing_yet(tmp_path, recwarn):
    from analysis.report import analyze

    # a sweep just started: each trial has logged its untrained evaluation only
    write_log(tmp_path / "results", {
        "b": [record("b", 0, 0, 0.1)],
        "p": [record("p", 0, 0, 0.1, strategy="random", subset_size=5,
                     overdetermination_ratio=1.0, pretrain_epochs=2)]})
    summary = analyze([str(tmp_path)], tmp_path / "out")
    assert summary.startswith("In progress: 2 of 2 trials are still running")
    assert "Frontier: no evaluation after some training yet." in (
        tmp_path / "out" / "report.md").read_text()
    assert pd.read_csv(tmp_path / "out" / "frontier.csv").empty
    assert not [w for w in recwarn if "legend" in str(w.message)]


def test_analyze_of_a_results_folder_or_file_writes_beside_the_log_not_into_it(tmp_path):
    from cli import run_sweep

    results = tmp_path / "sweep" / "results"
    write_log(results, {"base": BASE, "pre": PRE})
    for path in (results, results / "digits-pre.parquet"):
        run = run_sweep("analyze", str(path))
        assert run.returncode == 0, run.stderr
        assert run.stdout.splitlines()[-1].startswith(
            f"wrote {tmp_path / 'sweep' / 'analysis'}/report.md")
        assert sorted(p.name for p in results.iterdir()) == ["digits-base.parquet",
                                                              "digits-pre.parquet"]
    assert len(load_results(str(tmp_path / "sweep"))) == len(BASE) + len(PRE)


def test_an_analysis_is_not_read_as_results(tmp_path):
    from cli import run_sweep

    from analysis.report import analyze

    # frontier.parquet has the columns that once told a log file (sweep, trial_id, dataset,
    # evaluation, train_flops, test_accuracy): its folder, or it, named instead of the sweep
    write_log(tmp_path / "sweep" / "results", {"base": BASE, "pre": PRE})
    analysis = tmp_path / "sweep" / "analysis"
    analyze([str(tmp_path / "sweep")], analysis)
    written = sorted(p.name for p in analysis.iterdir())
    run = run_sweep("analyze", str(analysis))
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr == (f"sweep analyze: error: {analysis}: what `sweep analyze` wrote, not "
                          "results (analyze the sweep folder or its results/)\n")
    assert sorted(p.name for p in analysis.iterdir()) == written  # no analysis/analysis
    with pytest.raises(UserError, match="frontier.parquet: a table `sweep analyze` wrote, not "
                                        "a result-log file"):
        load_results(str(analysis / "frontier.parquet"))
    # one written before the outputs were marked: told apart by the log's own columns
    pd.read_parquet(analysis / "frontier.parquet").to_parquet(tmp_path / "old.parquet")
    with pytest.raises(UserError, match="not a result-log file: no status, step column"):
        load_results(str(tmp_path / "old.parquet"))


def test_analyze_out_on_s3_uploads_the_outputs_and_writes_nothing_locally(tmp_path, s3_server):
    from cli import run_sweep
    from s3server import BUCKET

    from common import storage

    write_log(tmp_path / "sweep" / "results", {"base": BASE, "pre": PRE})
    out = f"s3://{BUCKET}/analyses/{tmp_path.name}"
    run = run_sweep("analyze", str(tmp_path / "sweep"), "--out", out, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].startswith(f"wrote {out}/report.md, report.html")
    assert {"report.md", "report.html", "frontier.parquet", "frontier.csv", "savings.csv",
            "criteria.csv", "frontier_digits.png", "savings_digits.png"} <= set(
        storage.list_names(out))
    assert storage.read_text(f"{out}/report.md").startswith("# Sweep report")
    # nothing local: no ./s3:/sweeps/... folder, no sweep/analysis
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]
    assert sorted(p.name for p in (tmp_path / "sweep").iterdir()) == ["results"]
    # a bucket that is not there: one line, exit 2
    run = run_sweep("analyze", str(tmp_path / "sweep"), "--out", "s3://no-such-bucket/x",
                    cwd=tmp_path)
    assert (run.returncode, run.stdout) == (2, "")
    assert run.stderr.startswith("sweep analyze: error: s3://no-such-bucket/x: cannot write "
                                 "there") and len(run.stderr.splitlines()) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["sweep"]


def test_a_dataset_without_pretraining_trials_has_no_savings_figure(tmp_path):
    from analysis.report import analyze

    # mnist: ordinary training alone; it has nothing to compare, so no savings at all
    mnist = [r | {"dataset": "mnist", "trial_id": "m"} for r in BASE]
    write_log(tmp_path / "results", {"base": BASE, "pre": PRE, "m": mnist})
    summary = analyze([str(tmp_path)], tmp_path / "out")
    assert summary.splitlines()[3].split()[:2] == ["mnist", "1"]
    assert summary.splitlines()[3].endswith("  no pretraining trials")
    out = tmp_path / "out"
    assert (out / "savings_digits.png").exists() and not (out / "savings_mnist.png").exists()
    assert set(pd.read_csv(out / "savings.csv")["dataset"]) == {"digits"}
    report = (out / "report.md").read_text()
    assert "mnist: no comparison (no pretraining trials)." in report.splitlines()[2]
    assert ("**mnist: no pretraining trials, so no saving to show (no headline, savings table "
            "or savings figure).**") in report
    html = (out / "report.html").read_text()
    assert 'data-figures="3"' in html  # two of digits, mnist's frontier
    assert "mnist: compute saved" not in html and "digits: compute saved" in html


def seeded(trial, seed, points, **config):
    """A trial's rows with the configuration keys a report groups by."""
    common = dict(model="cnn", width=6, lr=1e-3, batch_size=64, augment=False, finetune_epochs=5)
    return [record(trial, i, f, a, seed=seed, **(common | config))
            | {"status": "finished" if i == len(points) - 1 else "running"}
            for i, (f, a) in enumerate(points)]


RANDOM = dict(strategy="random", subset_size=50, subset_fraction=0.5, overdetermination_ratio=2.0,
              pretrain_epochs=3)


def test_report_collapses_frontier_seeds_of_one_configuration(tmp_path):
    from analysis.report import analyze

    # ordinary training: one seed; random pretraining: three seeds, two on the frontier
    # (5 GFLOPs at 0.85 and 6 at 0.87; the third, 7 at 0.84, is dominated)
    write_log(tmp_path / "results", {
        "b0": [r | {"epoch": 2.5 * r["evaluation"]} for r in
               seeded("b0", 0, [(0, 0.1), (4e9, 0.7), (8e9, 0.86)], pretrain_epochs=0)],
        "p0": seeded("p0", 0, [(0, 0.1), (5e9, 0.85)], **RANDOM),
        "p1": seeded("p1", 1, [(0, 0.1), (6e9, 0.87)], **RANDOM),
        "p2": seeded("p2", 2, [(0, 0.1), (7e9, 0.84)], **RANDOM),
    })
    analyze([str(tmp_path)], tmp_path / "out")
    report = (tmp_path / "out" / "report.md").read_text()
    rows = [line for line in report.splitlines() if line.startswith(("| random pretraining",
                                                                       "| ordinary training"))]
    # every trained evaluation is a candidate: ordinary training stopped at 2.5 epochs (4
    # GFLOPs at 0.70) is on the frontier; its end (8 GFLOPs at 0.86) is dominated
    assert rows == [
        "| ordinary training stopped after 2.50 of 5 epochs | "
        "0.001 | 64 | 6 | 1 | 1 / 1 | 0.7000 | 4.000 | b0 |",
        "| random pretraining on K=50 (50.0%, Q=2) for 3 epochs | 0.001 | 64 | 6 | 2 "
        "| 2 / 3 | 0.8600 (0.8500-0.8700) | 5.500 (5.000-6.000) | p0, p1 |"]
    frontier = pd.read_csv(tmp_path / "out" / "frontier.csv")
    assert frontier[["trial_id", "evaluation", "final"]].values.tolist() == [
        ["b0", 1, False], ["p0", 1, True], ["p1", 1, True]]
    assert frontier["compute_flops"].tolist() == [4e9, 5e9, 6e9]


def test_collapse_seeds_keeps_configurations_apart():
    from analysis import pareto_front
    from analysis.load import final_rows
    from analysis.report import collapse_seeds

    rows = (seeded("p0", 0, [(0, 0.1), (5e9, 0.85)], **RANDOM)
            + seeded("p1", 0, [(0, 0.1), (6e9, 0.87)], **(RANDOM | {"lr": 2e-3}))
            + seeded("p2", 1, [(0, 0.1), (7e9, 0.9)], **RANDOM))
    df = pd.DataFrame(rows)
    table = collapse_seeds(pareto_front(df), final_rows(df))
    assert table["trials"].tolist() == ["p0, p2", "p1"]  # both 6 GFLOPs median: 0.875 first
    assert table["seeds"].tolist() == [2, 1] and table["runs"].tolist() == [2, 1]
    assert table.loc[0, ["min_gflops", "median_gflops", "max_gflops"]].tolist() == \
        pytest.approx([5, 6, 7])


def test_report_and_summary_say_not_reached_never_inf(tmp_path):
    from analysis.report import analyze

    # pretraining never gets to ordinary training's 0.86, nor to the target 0.8
    write_log(tmp_path / "results", {
        "b0": seeded("b0", 0, [(0, 0.1), (4e9, 0.7), (8e9, 0.86)], pretrain_epochs=0),
        "p0": seeded("p0", 0, [(0, 0.1), (5e9, 0.6)], **RANDOM),
        "p1": seeded("p1", 1, [(0, 0.1), (6e9, 0.75)], **RANDOM),
    })
    summary = analyze([str(tmp_path)], tmp_path / "out", target=0.8)
    report = (tmp_path / "out" / "report.md").read_text()
    for text in (summary, report):
        assert not re.search(r"\binf", text), text
    assert summary.splitlines()[1].split()[:2] == ["digits", "3"]
    assert summary.splitlines()[1].endswith("not reached")
    target_rows = [line for line in report.splitlines()
                   if line.startswith("| 80.0% test accuracy (--target) | random")]
    assert target_rows == ["| 80.0% test accuracy (--target) | random pretraining on K=50 (Q=2) "
                           "for 3 epochs | 2 (0) | not reached | not reached | 0.00x |"]
    # (seed 0's ordinary training reaches 0.8, its pretraining does not: a saving of 0, not "-")
    # the answer first, then each dataset's section starts with its headline
    lines = report.splitlines()
    assert lines[2] == ("**Answer: digits: no pretraining configuration reaches ordinary "
                        "training's best accuracy (within 0.5 pp).**")
    section = lines.index("## digits")
    assert lines[section + 2].startswith("**digits: no pretraining configuration reaches")
    assert lines[section + 4].startswith("The headline compares the best of 2 pretraining "
                                         "trials with the best of 1 of ordinary training")


def test_a_frontier_row_never_has_more_trials_on_it_than_runs():
    # p0 finishes and its evaluation at 2.5 epochs is on the frontier; p1 (same settings, seed 1)
    # was stopped early at 2.5 epochs: one row "..., stopped after 2.50 of 5 epochs", 2 of 2 runs
    from analysis.load import final_rows
    from analysis.report import collapse_seeds, frontier_points

    p0 = [r | {"epoch": 2.5 * r["evaluation"]}
          for r in seeded("p0", 0, [(0, 0.1), (5e9, 0.85), (9e9, 0.86)], **RANDOM)]
    p1 = [r | {"epoch": 2.5 * r["evaluation"]}
          for r in seeded("p1", 1, [(0, 0.1), (5e9, 0.85)], **RANDOM)]
    p1[-1]["status"] = "stopped"
    df = pd.DataFrame(p0 + p1)
    table = collapse_seeds(frontier_points(df), final_rows(df)).set_index("configuration")
    row = table.loc["random pretraining on K=50 (50.0%, Q=2) for 3 epochs, fine-tuning stopped "
                    "after 2.50 of 5 epochs"]
    assert (row["on_frontier"], row["runs"], row["seeds"]) == (2, 2, 2)
    assert table["runs"].tolist() == [2, 2]  # p0's end (9 GFLOPs at 0.86): one of the 2 runs


def test_frontier_rows_say_how_their_trial_ended_not_the_row_status(tmp_path):
    from analysis.report import analyze

    p0 = seeded("p0", 0, [(0, 0.1), (5e9, 0.85), (9e9, 0.9)], **RANDOM)
    p1 = seeded("p1", 1, [(0, 0.1), (2e9, 0.8)], **RANDOM)
    p1[-1]["status"] = "running"  # still running
    write_log(tmp_path / "results", {"p0": p0, "p1": p1})
    analyze([str(tmp_path)], tmp_path / "out")
    front = pd.read_csv(tmp_path / "out" / "frontier.csv").set_index(["trial_id", "evaluation"])
    assert "status" not in front.columns
    assert front["trial_status"].to_dict() == {
        ("p1", 1): "running", ("p0", 1): "finished", ("p0", 2): "finished"}
    assert front["final"].to_dict() == {("p1", 1): True, ("p0", 1): False, ("p0", 2): True}


def test_pretraining_stopped_at_convergence_is_named_with_the_epochs_it_ran(tmp_path):
    from analysis.report import analyze

    def converged_at(rows, epoch):
        """The trial's evaluation 1 ends its pretraining at convergence, `epoch` of 3."""
        rows[1] |= {"phase": "pretrain", "epoch": epoch, "pretrain_end": "converged"}
        return rows

    # two seeds of one configuration whose pretraining stopped at 2.5 and 1.5 of 3 epochs
    write_log(tmp_path / "results", {
        "b0": seeded("b0", 0, [(0, 0.1), (4e9, 0.7), (8e9, 0.86)], pretrain_epochs=0),
        "p0": converged_at(seeded("p0", 0, [(0, 0.1), (1e9, 0.5), (5e9, 0.87)], **RANDOM), 2.5),
        "p1": converged_at(seeded("p1", 1, [(0, 0.1), (1e9, 0.5), (6e9, 0.88)], **RANDOM), 1.5),
    })
    df = load_results(str(tmp_path))
    assert df.groupby("trial_id")["pretrain_epochs_run"].agg(list).to_dict() == {
        "b0": [pytest.approx(np.nan, nan_ok=True)] * 3, "p0": [2.5] * 3, "p1": [1.5] * 3}
    summary = analyze([str(tmp_path)], tmp_path / "out")
    # the headline's trial (p0, the first to 0.86) is named with the epochs it ran
    assert ("digits: random pretraining on K=50 (50.0%, Q=2) for 2.50 of 3 epochs (converged) "
            "reaches ordinary training's best accuracy") in summary
    report = (tmp_path / "out" / "report.md").read_text()
    # the seeds still share a frontier row, under their most, and the caption says so
    assert ("| random pretraining on K=50 (50.0%, Q=2) for 3 epochs | 0.001 | 64 | 6 | 2 "
            "| 2 / 2 |") in report
    assert "Pretraining stopped at convergence in 2 of these 2 pretraining trials" in report
    frontier = pd.read_csv(tmp_path / "out" / "frontier.csv")
    ran = frontier[frontier["final"]].set_index("trial_id")["pretrain_epochs_run"]
    assert ran.loc[["p0", "p1"]].tolist() == [2.5, 1.5]


@pytest.mark.parametrize("path, out, refused", [
    ("s3://b/sweeps/s", "s3://b/sweeps/s/results", True),
    ("s3://b/sweeps/s/results", "s3://b/sweeps/s/results/", True),
    ("s3://b/sweeps/s", "s3://b/sweeps/s/analysis", False),
    ("s3://b/sweeps/s", "s3://b/sweeps/s", False),  # beside results/, not among its files
    ("s3://b/sweeps/s", "results", False),
])
def test_out_among_a_buckets_result_files_is_refused(path, out, refused):
    from common.errors import UserError
    from sweep.cli import _check_out_is_not_in_a_log

    # a URI --out is uploaded now: among the result files, frontier.parquet would be listed
    # with them at every later read
    if refused:
        with pytest.raises(UserError, match="the folder of the result files of"):
            _check_out_is_not_in_a_log(out, [path])
    else:
        _check_out_is_not_in_a_log(out, [path])

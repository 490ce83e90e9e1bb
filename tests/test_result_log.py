"""The result log's storage format: a running trial's rows as segments, merged when it ends.

On a local folder and on the loopback S3 server alike (`store`)."""

from __future__ import annotations

import time

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from test_analysis import record

from analysis import load_results
from common import storage
from common.layout import segment_file_name, segments_folder
from common.records import arrow_schema
from common.result_files import MERGED_KEY, read_file, trial_files
from sweep.results_log import (
    LogUnreadable,
    ResultLog,
    last_logged_evaluation,
    logged_trial,
    set_aside_unknown_trials,
    write_rows,
)


def rows(trial, evaluations, accuracy=0.1, last="running"):
    out = [record(trial, e, 10 * e, accuracy * e) for e in evaluations]
    out[-1]["status"] = last
    return out


def read_parquet_folder(results: str):
    """`pandas.read_parquet(results)`, as the README tells a user to read the log, on either
    storage."""
    fs, path = storage.filesystem(results)
    return pq.read_table(path, filesystem=fs).to_pandas()


def segment_names(results: str) -> list[str]:
    return storage.list_names(segments_folder(results))


@pytest.fixture
def results(store) -> str:
    location = str(store / "results")
    storage.make_dirs(location)
    return location


def test_a_running_trial_is_logged_in_segments_and_ends_as_one_file(results):
    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(5)):
        log.add(row)
        log.flush("digits", "t")
    assert len(segment_names(results)) == 5  # one per flush, nothing rewritten
    assert trial_files(results)["digits-t.parquet"].file is None
    assert load_results(results)["evaluation"].tolist() == [0, 1, 2, 3, 4]
    assert last_logged_evaluation(results, "digits", "t") == 4
    log.add(rows("t", [5], last="finished")[0])
    log.flush("digits", "t")
    assert segment_names(results) == []  # merged into the trial's file, then deleted
    files = trial_files(results)["digits-t.parquet"]
    assert files.file is not None and read_file(files.file)[1] == 5
    df = load_results(results)
    assert df["evaluation"].tolist() == list(range(6)) and df["status"].iloc[-1] == "finished"


def test_a_trial_start_reads_its_position_and_its_end_from_one_look(results):
    assert logged_trial(results, "digits", "t") == (-1, None)  # nothing logged yet
    log = ResultLog(results, flush_every_s=0, merge_after=2)
    trial = rows("t", range(4), last="finished")
    trial[1]["pretrain_end"] = "converged"
    trial[1]["epoch"] = 2.5
    for row in trial[:3]:
        log.add(row)
        log.flush("digits", "t")
    # merged into the trial's file while it runs (merge_after), and not ended
    assert trial_files(results)["digits-t.parquet"].file is not None
    assert logged_trial(results, "digits", "t") == (2, None)
    log.add(trial[3])
    log.flush("digits", "t")
    evaluation, end = logged_trial(results, "digits", "t")
    assert evaluation == 3 and end is not None
    assert end["status"] == "finished" and end["evaluation"] == 3
    assert end["pretrain_epochs_run"] == 2.5  # from the row where pretraining ended


def test_rows_wait_at_most_the_flush_interval(results):
    log = ResultLog(results, flush_every_s=0.3)
    first, second = rows("t", range(2))
    log.add(first)
    log.flush("digits", "t")  # a trial's first rows go out at once
    log.add(second)
    log.flush("digits", "t")
    assert last_logged_evaluation(results, "digits", "t") == 0  # the second waits
    time.sleep(0.35)
    log.flush_due()  # what the callback does at every step of Tune's loop
    assert last_logged_evaluation(results, "digits", "t") == 1


def test_segments_are_merged_once_they_pile_up(results):
    log = ResultLog(results, flush_every_s=0, merge_after=3)
    for row in rows("t", range(7)):
        log.add(row)
        log.flush("digits", "t")
    assert len(segment_names(results)) <= 3  # never more than merge_after
    assert trial_files(results)["digits-t.parquet"].file is not None
    assert load_results(results)["evaluation"].tolist() == list(range(7))


def test_a_resumed_log_continues_the_segments_and_a_redone_trial_ends_where_it_ends(results):
    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(6)):  # the first attempt got to evaluation 5, then the driver died
        log.add(row)
        log.flush("digits", "t")
    again = ResultLog(results, flush_every_s=0)  # a resumed driver
    for row in rows("t", range(2, 5), accuracy=0.11, last="finished"):  # redone from 2, ends at 4
        again.add(row)
        again.flush("digits", "t")
    df = load_results(results)
    assert df["evaluation"].tolist() == [0, 1, 2, 3, 4]
    assert df["test_accuracy"].tolist() == pytest.approx([0, 0.1, 0.22, 0.33, 0.44])
    assert segment_names(results) == []


def test_segments_a_crash_left_behind_a_merge_are_ignored_then_removed(results):
    # The trial's file covers segments up to 2; segments 1 and 2 (stale: the crash came between
    # writing the file and deleting them) hold older values; segment 3 is newer than the file.
    file_rows = rows("t", range(4), accuracy=0.2)
    table = pa.Table.from_pylist(file_rows, schema=arrow_schema())
    storage.write_parquet_atomic(f"{results}/digits-t.parquet",
                                 table.replace_schema_metadata({MERGED_KEY: b"2"}))
    storage.make_dirs(segments_folder(results))
    for seq, segment in ((1, rows("t", [0, 1])), (2, rows("t", [2, 3, 4, 5])),
                         (3, rows("t", [4], accuracy=0.3))):
        write_rows(f"{segments_folder(results)}/{segment_file_name('digits', 't', seq)}", segment)
    df = load_results(results)
    assert df["evaluation"].tolist() == [0, 1, 2, 3, 4]
    assert df["test_accuracy"].tolist() == pytest.approx([0, 0.2, 0.4, 0.6, 1.2])
    log = ResultLog(results)
    log.add(rows("t", [5], accuracy=0.3)[0])
    assert segment_names(results) == [segment_file_name("digits", "t", 3)]
    log.flush("digits", "t", now=True)
    assert segment_names(results)[-1] == segment_file_name("digits", "t", 4)


def test_trials_a_restored_sweep_does_not_know_are_set_aside_with_their_segments(results):
    log = ResultLog(results, flush_every_s=0)
    for trial in ("known", "unknown"):
        for row in rows(trial, range(3)):
            log.add(row)
            log.flush("digits", trial)
    log.add(rows("known", [3], last="finished")[0])
    log.flush("digits", "known")
    assert set_aside_unknown_trials(results, "digits", {"known"}) == ["unknown"]
    assert set(load_results(results)["trial_id"]) == {"known"}
    assert segment_names(results) == []
    aside = storage.list_names(f"{results}/_set_aside")
    assert aside and all(n.startswith("digits-unknown.") and n.endswith(".parquet.abandoned")
                         for n in aside)
    # pandas reads any file name in the folder (not only *.parquet): set aside out of its sight
    assert set(read_parquet_folder(results)["trial_id"]) == {"known"}


def test_a_trial_costs_two_object_writes_however_many_results_it_reports(results, monkeypatch):
    writes = []
    real = storage.write_bytes_atomic
    monkeypatch.setattr(storage, "write_bytes_atomic",
                        lambda location, data: (writes.append(location), real(location, data)))
    log = ResultLog(results, flush_every_s=3600)
    for row in rows("t", range(300), last="finished"):
        log.add(row)
        log.flush("digits", "t")
    # Its first rows (at once), then its whole file when it ends; the segment is deleted.
    assert [w.rsplit("/", 1)[-1] for w in writes] == [segment_file_name("digits", "t", 1),
                                                      "digits-t.parquet"]
    assert len(load_results(results)) == 300 and segment_names(results) == []


def test_a_trial_that_reports_no_more_is_closed_into_its_file(results):
    """A trial that failed after its retries (or any trial when the sweep ends) has its rows
    merged, so `pandas.read_parquet(results)` of a finished sweep holds every row."""
    import pandas as pd

    log = ResultLog(results, flush_every_s=0)
    for row in rows("failed", range(3)):
        log.add(row)
        log.flush("digits", "failed")
    log.close("digits", "failed")
    assert segment_names(results) == []
    assert pd.read_parquet(results)["evaluation"].tolist() == [0, 1, 2]


def test_a_trial_that_failed_says_so_and_a_resumed_one_runs_on(results):
    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(3)):
        log.add(row)
        log.flush("digits", "t")
    log.mark_failed("digits", "t")  # what the callback does when Tune gives up on the trial
    log.close("digits", "t")
    df = load_results(results)
    assert df["status"].tolist() == ["running", "running", "failed"]  # not read as interrupted
    assert df["stop_reason"].iloc[-1] == "error"
    again = ResultLog(results, flush_every_s=0)  # `sweep resume` runs an errored trial again
    for row in rows("t", [3, 4], last="finished"):
        again.add(row)
        again.flush("digits", "t")
    df = load_results(results)
    assert df["status"].tolist() == ["running"] * 4 + ["finished"]
    assert pd.isna(df["stop_reason"].iloc[2])


def test_a_trial_stopped_sooner_than_its_earlier_attempt_went_is_stopped_where_it_stopped(
        results):
    # its first attempt reached evaluation 5, then its worker died; the retry resumed from an
    # earlier state and a scheduler stopped it at 3: rows 4-5 are the first attempt's
    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(6)):
        log.add(row)
        log.flush("digits", "t")
    for row in rows("t", [2, 3], accuracy=0.2):
        log.add(row)
        log.flush("digits", "t")
    log.mark_stopped("digits", "t")
    log.close("digits", "t")
    df = load_results(results)
    assert df["evaluation"].tolist() == [0, 1, 2, 3]
    assert df["status"].tolist() == ["running"] * 3 + ["stopped"]
    assert df["test_accuracy"].tolist()[2:] == pytest.approx([0.4, 0.6])


def test_a_reader_beside_the_sweep_rereads_a_trial_merged_while_it_reads(results, monkeypatch,
                                                                        recwarn):
    # the reader lists the trial's segments, then the sweep ends the trial (merging them into
    # its file and deleting them) before the reader gets to them
    import common.result_files as result_files

    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(4)):
        log.add(row)
        log.flush("digits", "t")
    before = trial_files(results)
    assert len(before["digits-t.parquet"].segments) == 4
    log.add(rows("t", [4], last="finished")[0])
    log.flush("digits", "t")
    assert segment_names(results) == []
    listings = iter([before])
    real = result_files.trial_files
    monkeypatch.setattr(result_files, "trial_files", lambda r: next(listings, None) or real(r))
    df = load_results(results)
    assert df["evaluation"].tolist() == [0, 1, 2, 3, 4] and df["status"].iloc[-1] == "finished"
    assert not [w for w in recwarn if "unreadable" in str(w.message)]


def test_a_storage_error_while_a_resumed_driver_reads_a_segment_is_raised_not_skipped(
        results, monkeypatch):
    # A network error is not damage: skipping the segment would drop its rows at the next
    # merge (and delete it), while the trial's worker, whose own read succeeded, resumes after
    # them: a gap for good. Raised, the driver stops; resumed again, every row is there.
    import common.result_files as result_files

    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(6)):
        log.add(row)
        log.flush("digits", "t")  # segments 1..6; then the driver dies
    real, failed = result_files.read_table, []

    def flaky(location):
        if location.endswith(segment_file_name("digits", "t", 4)) and not failed:
            failed.append(location)
            raise OSError("AWS Error NETWORK_CONNECTION during GetObject operation")
        return real(location)

    monkeypatch.setattr(result_files, "read_table", flaky)
    with pytest.raises(LogUnreadable, match="cannot read the result log in .*NETWORK_CONNECTION"):
        ResultLog(results, flush_every_s=0).add(rows("t", [6])[0])
    again = ResultLog(results, flush_every_s=0)  # the storage is back
    for row in rows("t", [6, 7], last="finished"):
        again.add(row)
        again.flush("digits", "t")
    assert load_results(results)["evaluation"].tolist() == list(range(8))


def test_a_storage_error_reading_a_trial_file_is_not_taken_for_damage(results, monkeypatch):
    import sweep.results_log as results_log

    log = ResultLog(results, flush_every_s=0)
    for row in rows("u", range(4), last="finished"):
        log.add(row)
        log.flush("digits", "u")
    real, failed = results_log.read_file, []

    def flaky(location):
        if not failed:
            failed.append(location)
            raise OSError("AWS Error SLOW_DOWN during GetObject operation")
        return real(location)

    monkeypatch.setattr(results_log, "read_file", flaky)
    with pytest.raises(LogUnreadable, match="digits-u.parquet .*SLOW_DOWN.*nothing was changed"):
        ResultLog(results, flush_every_s=0).close("digits", "u")
    assert storage.list_names(f"{results}/_set_aside") == []  # not moved aside
    assert load_results(results)["evaluation"].tolist() == [0, 1, 2, 3]


def test_a_damaged_trial_file_is_rebuilt_from_tunes_record_once_per_evaluation(results,
                                                                               tmp_path):
    # Tune appends to result.json: a retried trial reported evaluations 2-3 twice, and its
    # first attempt went on to 5 before the retry ended at 4
    import json

    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(3)):
        log.add(row)
        log.flush("digits", "t", now=True)
    log.close("digits", "t")
    storage.write_bytes_atomic(f"{results}/digits-t.parquet", b"PAR1 cut short")
    first = rows("t", range(6), accuracy=0.1)
    second = rows("t", [2, 3, 4], accuracy=0.2, last="finished")
    tune_results = tmp_path / "result.json"
    tune_results.write_text("".join(json.dumps(r) + "\n" for r in first + second)
                            + '{"evaluation": 5, "cut')
    with pytest.warns(UserWarning, match="is unreadable .* 5 rows rebuilt from"):
        ResultLog(results, flush_every_s=0).add(rows("t", [4], accuracy=0.2,
                                                     last="finished")[0], tune_results)
    df = load_results(results)
    assert df["evaluation"].tolist() == [0, 1, 2, 3, 4]
    assert df["test_accuracy"].tolist() == pytest.approx([0, 0.1, 0.4, 0.6, 0.8])
    assert df["status"].tolist()[-1] == "finished"
    assert storage.exists(f"{results}/_set_aside/digits-t.parquet.corrupt")
    assert read_parquet_folder(results)["evaluation"].tolist() == [0, 1, 2, 3, 4]


def test_a_reader_skips_a_segment_storage_does_not_give_and_keeps_the_trial(results,
                                                                            monkeypatch):
    # the analysis (a reader) shows what it can: the trial, less one segment, with a warning
    # naming it; only the driver, which merges what it reads, must stop instead
    import common.result_files as result_files

    log = ResultLog(results, flush_every_s=0)
    for row in rows("t", range(4)):
        log.add(row)
        log.flush("digits", "t")
    real = result_files.read_table

    def flaky(location):
        if location.endswith(segment_file_name("digits", "t", 2)):
            raise OSError("AWS Error NETWORK_CONNECTION during GetObject operation")
        return real(location)

    monkeypatch.setattr(result_files, "read_table", flaky)
    with pytest.warns(UserWarning, match=r"skipped log segment .*\.00000002\.parquet: storage "):
        df = load_results(results)
    assert df["evaluation"].tolist() == [0, 2, 3]


def test_the_driver_finds_the_logs_words_in_the_text_tune_raises():
    from sweep.launcher import _unreadable_log

    text = ("Traceback (most recent call last):\n  ...\nsweep.results_log.LogUnreadable: "
            "cannot read the result log in /s/results: digits-t.parquet (timeout); nothing was "
            "changed\n")
    assert _unreadable_log(RuntimeError(text)) == (
        "cannot read the result log in /s/results: digits-t.parquet (timeout); nothing was "
        "changed")
    assert _unreadable_log(RuntimeError("something else")) is None

"""The driver's result log: results per second against the rows a trial already has.

For a trial that already has n evaluations on storage (n = 10, 100, 1,000, 10,000), the next
results are fed to `sweep.results_log.ResultLog` exactly as the Tune callback does (`add`, then
`flush`), and timed until the last of them is on storage. Side by side, in one run:
  segments            the log as it ships: a segment of new rows at most every FLUSH_S
  segments, each      flush_every_s=0: every result written out (a segment each) at once
  rewrite (before)    the previous design: the trial's whole file rewritten at every result
on local disk and on S3 (moto's server on 127.0.0.1, the same server the tests use). Object
writes (PUTs) and deletes are counted on S3. Rows are real records of a digits trial.  Usage:
  python bench/result_log.py [--results 1000] [--sizes 10 100 1000 10000] [--no-s3]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from common import storage  # noqa: E402
from sweep import results_log  # noqa: E402
from sweep.results_log import ResultLog, write_rows  # noqa: E402

COUNTS: Counter[str] = Counter()


def _counting(name: str, function):  # noqa: ANN001, ANN202 - a thin wrapper for the bench
    def wrapper(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        COUNTS[name] += 1
        return function(*args, **kwargs)
    return wrapper


storage.write_bytes_atomic = _counting("writes", storage.write_bytes_atomic)
storage.delete_file = _counting("deletes", storage.delete_file)


def sample_row() -> dict:
    from trainables import TrialConfig, run_trial

    return run_trial(TrialConfig.from_dict({"dataset": "digits", "width": 2,
                                            "finetune_epochs": 1}))[1]


def rows(template: dict, trial: str, first: int, count: int) -> list[dict]:
    return [{**template, "trial_id": trial, "evaluation": e, "status": "running"}
            for e in range(first, first + count)]


def run(mode: str, results: str, template: dict, existing: int, count: int) -> tuple[float, int,
                                                                                       int]:
    """Results per second, object writes and deletes for `count` results after `existing`."""
    trial = f"{mode.split()[0]}{existing}"
    write_rows(storage.join(results, f"digits-{trial}.parquet"),
               rows(template, trial, 0, existing))
    new = rows(template, trial, existing, count)
    if mode == "rewrite":
        everything = rows(template, trial, 0, existing)
        COUNTS.clear()
        start = time.perf_counter()
        for row in new:
            everything.append(row)
            write_rows(storage.join(results, f"digits-{trial}.parquet"), everything)
    else:
        log = ResultLog(results, flush_every_s=0.0 if mode == "each" else results_log.FLUSH_S)
        log.add(new[0])  # reads the trial's file back once, as a resumed driver does
        log.flush("digits", trial)
        COUNTS.clear()
        start = time.perf_counter()
        for row in new[1:]:
            log.add(row)
            log.flush("digits", trial)
        log.flush("digits", trial, now=True)  # the last result is on storage too
        count -= 1
    return count / (time.perf_counter() - start), COUNTS["writes"], COUNTS["deletes"]


MODES = {"segments": "segments (as shipped)", "each": "segments, every result written",
         "rewrite": "whole file per result (before)"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", type=int, default=1000)
    parser.add_argument("--rewrite-results", type=int, default=200,
                        help="results timed for the rewrite design (it is slow at large n)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 100, 1000, 10000])
    parser.add_argument("--no-s3", action="store_true")
    args = parser.parse_args()
    template = sample_row()
    places = [("local disk", None)] + ([] if args.no_s3 else [("S3 (moto, 127.0.0.1)", "s3")])
    table = []
    for where, kind in places:
        server = None
        if kind == "s3":
            sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
            from s3server import create_bucket, start_server

            server = start_server()
            os.environ.update(server.env)
            create_bucket(server)
        with tempfile.TemporaryDirectory() as tmp:
            results = "s3://sweeps/bench/results" if kind == "s3" else f"{tmp}/results"
            storage.make_dirs(results)
            for n in args.sizes:
                for mode in MODES:
                    count = args.rewrite_results if mode == "rewrite" else args.results
                    rate, writes, deletes = run(mode, results, template, n, count)
                    table.append((where, n, MODES[mode], rate, writes, deletes, count))
                    print(f"{where} n={n} {MODES[mode]}: {rate:,.0f} results/s, "
                          f"{writes} writes, {deletes} deletes", flush=True)
        if server is not None:
            server.stop()
    import pyarrow

    print(f"\n# pyarrow {pyarrow.__version__}; FLUSH_S {results_log.FLUSH_S:g} s, merge after "
          f"{results_log.MERGE_AFTER} segments; {args.results} results timed "
          f"({args.rewrite_results} for the rewrite design)")
    print("| storage | evaluations already logged | log design | results/s | object writes "
          "| deletes |")
    print("|---|---|---|---|---|---|")
    for where, n, mode, rate, writes, deletes, _count in table:
        print(f"| {where} | {n:,} | {mode} | {rate:,.0f} | {writes} | {deletes} |")


if __name__ == "__main__":
    main()

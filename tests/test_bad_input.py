"""The bad-input catalogue: wrong inputs across `sweep trial/run/resume/analyze/check-cluster`,
config files, data folders and cluster configs. Each must give one clear line on stderr, exit
code 2, no traceback, and write nothing.

`python tests/test_bad_input.py` prints the catalogue as the Markdown table of
docs/reliability.md, running every case.
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from cli import run_sweep  # noqa: E402
from factories import write_cifar, write_mnist_like  # noqa: E402
from s3server import CREDENTIALS  # noqa: E402

ROOT = Path(__file__).parent.parent


@dataclass
class Case:
    id: str
    area: str
    args: Callable[[Path], list[str]]  # given a scratch folder (set up as needed), the argv
    message: str  # what the one line must say


def _parquet(columns: dict) -> Callable[[Path], list[str]]:
    """`sweep analyze` of a Parquet file with these columns."""
    def args(tmp: Path) -> list[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.table(columns), tmp / "table.parquet")
        return ["analyze", str(tmp / "table.parquet"), "--out", str(tmp / "out")]
    return args


def _log_with_out(out: str) -> Callable[[Path], list[str]]:
    """`sweep analyze` of a sweep folder with a result file, `--out` at `out` within it."""
    def args(tmp: Path) -> list[str]:
        import pyarrow as pa
        import pyarrow.parquet as pq

        from common.records import arrow_schema

        (tmp / "s" / "results").mkdir(parents=True)
        row = {c: None for c in arrow_schema().names} | {
            "sweep": "s", "trial_id": "t", "dataset": "digits", "strategy": "none",
            "evaluation": 0, "train_flops": 0, "test_accuracy": 0.1, "status": "finished"}
        pq.write_table(pa.Table.from_pylist([row], schema=arrow_schema()),
                       tmp / "s" / "results" / "digits-t.parquet")
        return ["analyze", str(tmp / "s"), "--out", str(tmp / "s" / out)]
    return args


def _file(name: str, content: bytes, command: str) -> Callable[[Path], list[str]]:
    """`sweep run --config` or `sweep check-cluster` of a file holding `content`."""
    def args(tmp: Path) -> list[str]:
        (tmp / name).write_bytes(content)
        if command == "run":
            return ["run", "--config", str(tmp / name), "--storage", str(tmp / "store")]
        return [command, str(tmp / name)]
    return args


def _yaml(text: str) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        (tmp / "sweep.yaml").write_text(text)
        return ["run", "--config", str(tmp / "sweep.yaml"), "--storage", str(tmp / "store")]
    return args


def _run(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["run", *extra, "--storage", str(tmp / "store"), "--name", "x"]


def _trial(*extra: str) -> Callable[[Path], list[str]]:
    return lambda tmp: ["trial", *extra]


def _mnist(damage: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        raw = tmp / "data" / "MNIST" / "raw"
        write_mnist_like(raw)
        damage(raw)
        return ["trial", "--dataset", "mnist", "--data-dir", str(tmp / "data")]
    return args


def _cifar(damage: Callable[[Path], None]) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        damage(write_cifar(tmp / "data", classes=10))
        return ["trial", "--dataset", "cifar10", "--data-dir", str(tmp / "data")]
    return args


def _folder(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def _truncate(path: Path, keep: int) -> None:
    path.write_bytes(path.read_bytes()[:keep])


class _Exploit:
    def __reduce__(self):
        return (print, ("never",))


def _cluster(edit: Callable[[str], str]) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        (tmp / "cluster.yaml").write_text(edit((ROOT / "cluster.yaml").read_text()))
        return ["check-cluster", str(tmp / "cluster.yaml")]
    return args


def _sweep_folder(content: str | bytes | None) -> Callable[[Path], list[str]]:
    def args(tmp: Path) -> list[str]:
        (tmp / "old").mkdir()
        if content is not None:
            data = content.encode() if isinstance(content, str) else content
            (tmp / "old" / "sweep.json").write_bytes(data)
        return ["resume", str(tmp / "old")]
    return args


def _sweep_state(state: str | None) -> Callable[[Path], list[str]]:
    """A sweep folder with a good sweep.json and this state.json (None: a folder in its
    place)."""
    def args(tmp: Path) -> list[str]:
        import dataclasses
        import json

        from search_spaces import load_preset
        from sweep.settings import SweepSettings

        (tmp / "old").mkdir()
        record = {"spec": load_preset("quick").to_dict(),
                  "settings": dataclasses.asdict(SweepSettings(name="old", storage=str(tmp)))}
        (tmp / "old" / "sweep.json").write_text(json.dumps(record))
        if state is None:
            (tmp / "old" / "state.json").mkdir()
        else:
            (tmp / "old" / "state.json").write_text(state)
        return ["resume", str(tmp / "old")]
    return args


def _running_sweep(tmp: Path) -> list[str]:
    """A sweep whose lease a live driver holds (this test's own process stands for it)."""
    import json
    import os
    import socket
    import time

    _sweep_state('{"done": []}')(tmp)
    (tmp / "old" / "lock.json").write_text(json.dumps(
        {"host": socket.gethostname(), "pid": os.getpid(), "token": "t",
         "heartbeat": time.time()}))
    return ["run", "--storage", str(tmp), "--name", "old"]


def _occupied(tmp: Path) -> list[str]:
    (tmp / "store" / "taken").mkdir(parents=True)
    return ["run", "--storage", str(tmp / "store"), "--name", "taken"]


def _spaced_sweep(tmp: Path) -> list[str]:
    """A sweep under a folder whose name has a space: the command it names must paste back."""
    spaced = tmp / "my sweeps"
    spaced.mkdir()
    _sweep_state('{"done": []}')(spaced)
    return ["run", "--storage", str(spaced), "--name", "old"]


def _under_a_file(tmp: Path) -> list[str]:
    (tmp / "a-file").write_text("not a folder")
    return ["run", "--storage", str(tmp / "a-file" / "sweeps"), "--name", "x"]


CASES = [
    # sweep trial: values
    Case("trial-unknown-dataset", "trial", _trial("--dataset", "imagenet"), "unknown dataset 'imagenet'"),
    Case("trial-unknown-strategy", "trial", _trial("--strategy", "coreset"), "unknown strategy 'coreset'"),
    Case("trial-validation-split-of-no-example", "trial",
         _trial("--validation-fraction", "0.003", "--target-accuracy", "0.5"),
         "validation_fraction 0.003 holds out no digits example"),
    Case("trial-pretraining-for-zero-epochs", "trial",
         _trial("--strategy", "kmeans", "--overdetermination-ratio", "2", "--pretrain-epochs", "0"),
         "strategy 'kmeans' pretrains: pretrain_epochs must be >= 1"),
    Case("trial-fraction-zero", "trial", _trial("--strategy", "random", "--subset-fraction", "0"),
         "subset_fraction must be in (0, 1]"),
    Case("trial-fraction-above-one", "trial",
         _trial("--strategy", "random", "--subset-fraction", "1.5"), "subset_fraction must be in"),
    Case("trial-q-zero", "trial", _trial("--strategy", "random", "--overdetermination-ratio", "0"),
         "overdetermination_ratio must be > 0"),
    Case("trial-q-negative", "trial",
         _trial("--strategy", "random", "--overdetermination-ratio", "-2"), "must be > 0"),
    Case("trial-q-beyond-the-data", "trial",
         _trial("--strategy", "random", "--overdetermination-ratio", "50"),
         "asks for more than the 1,437 training examples"),
    Case("trial-fraction-and-q", "trial", _trial("--strategy", "random", "--subset-fraction",
                                                 "0.5", "--overdetermination-ratio", "1"), "not both"),
    Case("trial-no-size", "trial", _trial("--strategy", "kmeans"), "needs a size"),
    Case("trial-patience-on-no-pretraining-loss", "trial",
         _trial("--strategy", "random", "--subset-fraction", "0.1", "--patience", "2",
                "--validation-fraction", "0.2", "--train-eval-size", "0"),
         "patience watches the small set's loss while pretraining"),
    Case("trial-lr-not-a-number", "trial", _trial("--lr", "fast"), "lr must be a number, got 'fast'"),
    Case("trial-batch-not-whole", "trial", _trial("--batch-size", "1e-3"),
         "batch_size must be a whole number"),
    Case("trial-unknown-option", "trial", _trial("--learning-rate", "1"), "unrecognized arguments"),
    Case("trial-lr-infinite", "trial", _trial("--lr", "inf"), "lr must be a finite number, got 'inf'"),
    Case("trial-lr-nan", "trial", _trial("--lr", "nan"), "lr must be a number, got 'nan'"),
    Case("trial-seed-negative", "trial", _trial("--seed", "-1"), "seed must be >= 0, got -1"),
    Case("trial-seed-huge", "trial", _trial("--seed", "1e20"), "seed must be <= 4,294,967,295"),
    Case("trial-width-huge", "trial", _trial("--width", "1e9"), "width must be <= 4,096"),
    Case("trial-batch-huge", "trial", _trial("--batch-size", "1e30"), "batch_size must be <= 1,048,576"),
    Case("trial-epochs-huge", "trial", _trial("--finetune-epochs", "1e12"), "finetune_epochs must be <= 100,000"),
    Case("trial-budget-infinite", "trial", _trial("--flops-budget", "inf"), "flops_budget must be a finite number"),
    Case("trial-target-nan", "trial", _trial("--target-accuracy", "nan"), "target_accuracy must be a number"),
    Case("trial-bool-not-bool", "trial", _trial("--augment", "maybe"), "augment must be true or false"),
    Case("trial-cuda-missing", "trial", _trial("--device", "cuda"), "device 'cuda': this machine has no CUDA GPU"),
    Case("trial-unknown-device", "trial", _trial("--device", "tpu"), "unknown device 'tpu'"),
    # data folders
    Case("data-mnist-missing", "data", lambda t: ["trial", "--dataset", "mnist", "--data-dir",
                                                  str(_folder(t / "empty"))],
         "mnist: files not found in"),
    Case("data-dir-not-there", "data", _trial("--dataset", "fashion_mnist", "--data-dir",
                                              "/nonexistent"),
         "data_dir /nonexistent: no such folder"),  # not Debian's files instead, unsaid
    Case("data-mnist-truncated", "data",
         _mnist(lambda raw: _truncate(raw / "train-images-idx3-ubyte", 5000)),
         "train-images-idx3-ubyte: unreadable idx file"),
    Case("data-mnist-corrupt-header", "data",
         _mnist(lambda raw: (raw / "t10k-labels-idx1-ubyte").write_bytes(b"garbage!" * 4)),
         "t10k-labels-idx1-ubyte: unreadable idx file"),
    Case("data-cifar-missing-batch", "data",
         _cifar(lambda f: (f / "data_batch_4").unlink()), "it needs data_batch_4"),
    Case("data-cifar-truncated", "data", _cifar(lambda f: _truncate(f / "test_batch", 100)),
         "test_batch: unreadable CIFAR batch"),
    Case("data-cifar-builds-objects", "data",
         _cifar(lambda f: (f / "data_batch_1").write_bytes(pickle.dumps(_Exploit()))),
         "refusing to load builtins.print"),
    # sweep run: options
    Case("run-unknown-preset", "run", _run("--preset", "nope"), "unknown preset 'nope'"),
    Case("run-unknown-dataset", "run", _run("--dataset", "imagenet"), "unknown dataset 'imagenet'"),
    Case("run-zero-samples", "run", _run("--num-samples", "0"), "num_samples must be a whole number"),
    Case("run-negative-gpus", "run", _run("--gpus-per-trial", "-1"), "--gpus-per-trial must be >= 0"),
    Case("run-zero-cpus", "run", _run("--cpus-per-trial", "0"), "--cpus-per-trial must be > 0"),
    Case("run-fractional-multi-gpu", "run", _run("--gpus-per-trial", "1.5"), "whole number of GPUs"),
    Case("run-local-size-with-address", "run", _run("--address", "auto", "--num-cpus", "2"),
         "a cluster (--address) has its own"),
    Case("run-name-escapes", "run", lambda t: ["run", "--storage", str(t / "store"), "--name",
                                               "../escape"], "--name '../escape'"),
    Case("run-data-missing", "run", _run("--dataset", "mnist", "--data-dir", "/nonexistent"),
         "data_dir /nonexistent: no such folder (for mnist"),
    Case("run-storage-under-a-file", "run", _under_a_file, "cannot write there"),
    Case("run-more-gpus-than-exist", "run", _run("--num-cpus", "2", "--num-gpus", "0", "--gpus-per-trial", "0.5"),
         "each trial asks for 0.5 GPU but the local Ray has 0"),
    Case("run-name-taken", "run", _occupied, "already exists and is not a sweep folder"),
    Case("run-sweep-exists", "run",
         lambda t: _sweep_state('{"done": []}')(t) and [
             "run", "--storage", str(t), "--name", "old"],
         "already exists: continue it with `sweep resume"),
    Case("run-sweep-running", "run", _running_sweep,
         "already exists and is running (host "),  # not "continue it with sweep resume"
    Case("run-sweep-exists-spaced", "run", _spaced_sweep,
         "already exists: continue it with `sweep resume '"),  # quoted, as a shell needs it
    Case("run-sweep-finished", "run",
         lambda t: _sweep_state('{"done": ["digits"]}')(t) and [
             "run", "--storage", str(t), "--name", "old"],
         "already exists and has finished: its analysis is `sweep analyze"),
    Case("run-gpus-nan", "run", _run("--gpus-per-trial", "nan"), "--gpus-per-trial must be a finite number"),
    Case("run-cpus-infinite", "run", _run("--cpus-per-trial", "inf"), "--cpus-per-trial must be a finite number"),
    Case("run-concurrency-zero", "run", _run("--max-concurrent-trials", "0"), "--max-concurrent-trials must be >= 1"),
    Case("run-seed-negative", "run", _run("--seed", "-1"), "--seed must be in [0, 4294967295]"),
    Case("run-seed-huge", "run", _run("--seed", str(2**40)), "--seed must be in [0, 4294967295]"),
    Case("run-name-too-long", "run", lambda t: ["run", "--storage", str(t / "store"), "--name", "n" * 300],
         "--name is 300 characters long; use at most 100"),
    Case("run-num-gpus-nan", "run", _run("--num-gpus", "nan"), "--num-gpus must be a finite number"),
    Case("run-gpus-the-machine-lacks", "run", _run("--num-cpus", "2", "--num-gpus", "1"),
         "--num-gpus 1: this machine has 0 GPU(s) that torch can use"),
    Case("run-negative-retries", "run", _run("--max-failures", "-1"), "--max-failures must be >= 0"),
    Case("run-empty-config", "run", _run("--config", ""), "--config is empty"),
    Case("run-http-address", "run", _run("--address", "http://127.0.0.1:8265"),
         "an HTTP address (a dashboard's?); give the head node's host:port"),
    Case("run-data-dir-missing", "run", _run("--dataset", "mnist"),
         "mnist: no --data-dir given; it needs train-images-idx3-ubyte"),
    Case("run-storage-of-no-such-user", "run",
         lambda t: ["run", "--storage", "~no-such-user-here/x", "--name", "x"],
         "~no-such-user-here/x: Could not determine home directory"),
    Case("run-cpu-fraction-too-fine", "run", _run("--cpus-per-trial", "1e-10"),
         "Ray counts resources in steps of 0.0001"),
    Case("run-empty-preset", "run", _run("--preset", " "), "--preset is empty"),
    Case("run-negative-samples", "run", _run("--num-samples", "-3"), "num_samples must be a whole number"),
    Case("run-address-nothing-listens", "run", _run("--address", "127.0.0.1:1"),
         "--address 127.0.0.1:1: no Ray cluster answers there"),
    Case("run-address-not-host-port", "run", _run("--address", "somewhere"),
         "expected host:port, auto, or ray://host:port"),
    # sweep run --config FILE
    Case("config-missing-file", "config", _run("--config", "/nonexistent.yaml"), "cannot read"),
    Case("config-malformed-yaml", "config", _yaml("datasets: [digits\n"), "not valid YAML at line"),
    Case("config-python-object", "config", _yaml("!!python/object/apply:os.system ['echo x']\n"),
         "not valid YAML"),
    Case("config-not-a-mapping", "config", _yaml("- a\n- b\n"), "expected a mapping"),
    Case("config-unknown-key", "config", _yaml("num_sample: 3\n"), "unknown key 'num_sample'"),
    Case("config-wrong-type", "config", _yaml("fixed: {lr: fast}\n"), "lr must be a number"),
    Case("config-low-above-high", "config",
         _yaml("search: {strategy: [random], subset_fraction: {low: 0.5, high: 0.1}}\n"),
         "low (0.5) is above high (0.1)"),
    Case("config-fraction-out-of-range", "config",
         _yaml("search: {strategy: [random], size_by: [fraction],\n"
               "         subset_fraction: {low: 0.1, high: 2}}\n"), "subset_fraction must be in"),
    Case("config-q-beyond-the-data", "config",
         _yaml("search: {strategy: [random], size_by: [ratio],\n"
               "         overdetermination_ratio: {low: 20, high: 40}}\n"),
         "overdetermination_ratio 20 asks for more"),
    Case("config-q-beyond-the-validation-split", "config",
         _yaml("fixed: {validation_fraction: 0.2}\n"
               "search: {strategy: [random], size_by: [ratio],\n"
               "         overdetermination_ratio: {low: 3.5, high: 4}}\n"),
         "left after its validation split of 287"),
    Case("config-baseline-outside-the-space", "config",
         _yaml("search: {strategy: [none], lr: {low: 3.0e-4, high: 3.0e-3, log: true}}\n"
               "baselines: [{lr: 0.1}]\n"), "baselines: lr 0.1 is outside search.lr"),
    Case("config-ordinary-epochs-zero", "config", _yaml("ordinary_training_epochs: 0\n"),
         "ordinary_training_epochs must be a whole number of epochs in [1, 100,000], got 0"),
    Case("config-searched-but-never-drawn", "config",
         _yaml("search: {strategy: [none, class_mean], subset_fraction: [0.1, 0.2]}\n"),
         "search.subset_fraction is never drawn"),
    Case("config-ordinary-training-for-zero-epochs", "config",
         _yaml("fixed: {finetune_epochs: 0}\n"),
         "finetune_epochs: ordinary training for 0 epochs is no baseline"),
    Case("config-ordinary-epochs-and-searched-epochs", "config",
         _yaml("search: {finetune_epochs: [5, 10]}\nordinary_training_epochs: 20\n"),
         "ordinary_training_epochs: finetune_epochs is searched"),
    Case("config-negative-pretrain-epochs", "config",
         _yaml("search: {strategy: [random], size_by: [fraction],\n"
               "         subset_fraction: {low: 0.1, high: 0.2}, pretrain_epochs: {low: -3, high: 5}}\n"),
         "pretrain_epochs must be >= 0, got -3"),
    Case("config-range-for-a-boolean", "config", _yaml("search: {augment: {low: 0, high: 1}}\n"),
         "search.augment: give a list of choices"),
    Case("config-description-a-list", "config", _yaml("description: [a, b]\n"),
         "description must be text"),
    Case("config-sizing-without-range", "config",
         _yaml("search: {strategy: [random], size_by: [ratio]}\n"),
         "needs search.overdetermination_ratio, a range or a list; or size by fraction alone"),
    Case("config-size-fixed", "config",
         _yaml("fixed: {subset_fraction: 0.1}\nsearch: {strategy: [none, random]}\n"),
         "one size for every trial is a one-item list: search: {subset_fraction: [0.1]}"),
    Case("config-typo-named-before-the-space", "config",  # not the missing size first
         _yaml("sampler: tpee\nsearch: {strategy: [none, random]}\n"),
         "unknown sampler 'tpee'"),
    Case("config-sizes-not-numbers", "config",
         _yaml("search: {strategy: [random], size_by: [fraction],\n"
               "         subset_fraction: [half, quarter]}\n"),
         "subset_fraction must be a number, got 'half'"),
    Case("config-size-list-beyond-the-data", "config",
         _yaml("search: {strategy: [random], size_by: [fraction],\n"
               "         subset_fraction: [0.5, 1.5]}\n"),
         "subset_fraction must be in"),
    Case("config-q-beyond-every-model-searched", "config",
         _yaml("search: {strategy: [random], size_by: [ratio], width: [64, 128],\n"
               "         overdetermination_ratio: {low: 0.5, high: 4}}\n"),
         "overdetermination_ratio 0.5 asks for more than the 1,437 training examples of digits "
         "(cnn width 64"),
    Case("config-fixes-the-dataset", "config", _yaml("fixed: {dataset: mnist}\n"),
         "'dataset' is set by the sweep"),
    Case("config-fixed-and-searched", "config",
         _yaml("fixed: {lr: 0.01}\nsearch: {strategy: [none], lr: [0.1, 0.01]}\n"),
         "'lr' is both fixed and searched"),
    Case("config-too-few-samples", "config", _yaml("num_samples: 1\nbaselines: [{}, {}]\n"),
         "less than the number of baselines"),
    Case("config-baseline-pretrains", "config", _yaml("baselines: [{strategy: random}]\n"),
         "strategy must be none"),
    Case("config-unknown-sampler", "config", _yaml("sampler: grid\n"), "unknown sampler 'grid'"),
    Case("config-early-stopping-bad", "config",
         _yaml("scheduler: frontier\nearly_stopping: {margin: -1}\n"),
         "margin must be a finite number >= 0"),
    Case("config-early-stopping-metric-unmeasured", "config",
         _yaml("scheduler: frontier\nearly_stopping: {metric: val_accuracy}\n"),
         "metric val_accuracy is measured only with validation_fraction above 0"),
    Case("config-early-stopping-metric-no-sample", "config",
         _yaml("scheduler: frontier\nearly_stopping: {metric: train_sample_accuracy}\n"
               "fixed: {train_eval_size: 0}\n"),
         "metric train_sample_accuracy is measured only with train_eval_size above 0"),
    Case("config-infinite-bound", "config",
         _yaml("search: {strategy: [none], lr: {low: 1.0e-4, high: .inf}}\n"), "low and high must be finite"),
    Case("config-nan-bound", "config",
         _yaml("search: {strategy: [none], lr: {low: .nan, high: 0.1}}\n"), "low and high must be finite"),
    Case("config-bool-as-number", "config", _yaml("num_samples: true\n"), "num_samples must be a whole number"),
    Case("config-bool-in-range", "config",
         _yaml("search: {strategy: [none], lr: {low: true, high: 0.1}}\n"), "low and high must be numbers"),
    Case("config-duplicate-key", "config", _yaml("num_samples: 3\nnum_samples: 4\n"), "duplicate key 'num_samples'"),
    Case("config-duplicate-nested-key", "config", _yaml("fixed: {width: 4, width: 8}\n"), "duplicate key 'width'"),
    Case("config-infinite-fixed-lr", "config", _yaml("fixed: {lr: .inf}\n"), "lr must be a finite number"),
    Case("config-too-many-samples", "config", _yaml("num_samples: 100000000\n"), "num_samples must be a whole number in [1, 1,000,000]"),
    Case("config-seed-out-of-range", "config", _yaml("fixed: {seed: -5}\n"), "seed must be >= 0"),
    Case("config-not-text", "config", _file("sweep.yaml", b"\xff\xfe\x00binary", "run"),
         "not a text file (not UTF-8)"),
    Case("config-number-as-key", "config", _yaml("fixed: {1: 2}\n"),
         "a key must be a setting's name, got 1"),
    Case("config-list-as-key", "config", _yaml("? [a]\n: 1\n"),
         "a key must be a setting's name, got a list"),
    Case("config-cuda-without-gpus", "config", _yaml("fixed: {device: cuda}\n"),
         "device: cuda needs --gpus-per-trial above 0"),

    # sweep resume / analyze
    Case("resume-not-a-sweep", "resume", _sweep_folder(None), "not a sweep folder"),
    Case("resume-no-such-folder", "resume", lambda t: ["resume", str(t / "nowhere")],
         "nowhere: no such folder"),
    Case("resume-corrupt-record", "resume", _sweep_folder("{ not json"), "unreadable sweep record"),
    Case("resume-record-not-utf8", "resume", _sweep_folder(b"\xff\xfe\x00binary"), "unreadable sweep record"),
    Case("resume-record-is-a-folder", "resume",
         lambda t: (t / "old" / "sweep.json").mkdir(parents=True) or ["resume", str(t / "old")],
         "sweep.json: unreadable sweep record"),
    Case("resume-state-not-a-list", "resume", _sweep_state('{"done": 5}'),
         "state.json: unreadable sweep state ('done' is 5, not a list of datasets)"),
    Case("resume-state-not-json", "resume", _sweep_state("{"), "state.json: unreadable sweep state"),
    Case("resume-state-is-a-folder", "resume", _sweep_state(None),
         "state.json: unreadable sweep state"),
    Case("analyze-target-on-without-target", "analyze",
         lambda t: ["analyze", str(t), "--target-on", "test"],
         "--target-on test judges --target, which is not given"),
    Case("analyze-missing", "analyze", lambda t: ["analyze", str(t / "nothing"), "--out",
                                                  str(t / "out")], "no such file or folder"),
    Case("analyze-no-results", "analyze", lambda t: ["analyze", str(t), "--out", str(t / "out")],
         "no results in"),
    Case("analyze-bad-tolerance", "analyze", lambda t: ["analyze", str(t), "--tolerance", "2"],
         "--tolerance must be in [0, 1)"),
    Case("analyze-not-a-log-file", "analyze", _parquet({"a": [1, 2]}),
         "not a result-log file: no sweep, trial_id, dataset"),
    Case("analyze-a-device", "analyze", lambda t: ["analyze", "/dev/null", "--out", str(t / "o")],
         "/dev/null: neither a folder nor a Parquet file"),
    Case("analyze-out-among-results", "analyze", _log_with_out("results"),
         "the folder of the result files of"),
    # cluster configs
    Case("cluster-missing-file", "cluster", lambda t: ["check-cluster", str(t / "none.yaml")],
         "cannot read"),
    Case("cluster-malformed", "cluster", _cluster(lambda s: s + "\n  bad: [\n"), "not valid YAML"),
    Case("cluster-not-text", "cluster", _file("cluster.yaml", b"\xff\xfe\x00binary",
                                              "check-cluster"), "not a text file (not UTF-8)"),
    Case("cluster-unknown-provider", "cluster",
         _cluster(lambda s: s.replace("  type: aws", "  type: foo")),
         "Unsupported node provider: foo"),
    Case("cluster-kuberay-provider", "cluster",
         _cluster(lambda s: s.replace("  type: aws", "  type: kuberay")),
         "a KubeRay cluster is made by the KubeRay operator"),
    Case("cluster-local-without-ips", "cluster",
         _file("cluster.yaml", b"cluster_name: x\nprovider: {type: local}\n", "check-cluster"),
         "Please supply a `head_ip`"),
    Case("cluster-min-above-max", "cluster",
         _cluster(lambda s: s.replace("    min_workers: 0\n    max_workers: 8",
                                      "    min_workers: 5\n    max_workers: 1")),
         "gpu_worker: min_workers (5) is above max_workers (1)"),
    Case("cluster-unknown-head-type", "cluster",
         _cluster(lambda s: s.replace("head_node_type: head", "head_node_type: boss")),
         "`head_node_type` must be one of `available_node_types`"),
    Case("cluster-wrong-type", "cluster",
         _cluster(lambda s: s.replace("max_workers: 8             #", "max_workers: many #")),
         "max_workers: 'many' is not of type"),
    Case("cluster-unknown-key", "cluster", _cluster(lambda s: s + "\nworkers_max: 3\n"),
         "Additional properties are not allowed"),
    Case("cluster-public-dashboard", "cluster",
         _cluster(lambda s: s.replace("--dashboard-host=127.0.0.1", "--dashboard-host=0.0.0.0")),
         "--dashboard-host=127.0.0.1"),
]


def files_under(folder: Path) -> set[Path]:
    return {p for p in folder.rglob("*")}


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input_gets_one_line_and_exit_2(case, tmp_path):
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    args = case.args(scratch)
    before = files_under(scratch)
    result = run_sweep(*args, cwd=scratch)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and case.message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert files_under(scratch) == before  # nothing written


@pytest.mark.parametrize("stem, name", [("my_sweep.v2", "my_sweep.v2"), ("ü n", "n"),
                                        (".hidden", "hidden"), ("a" * 120, "a" * 60),
                                        ("üï", "sweep"), ("x y--z", "x-y--z")])
def test_a_sweep_files_name_becomes_a_valid_sweep_name(stem, name):
    from sweep.cli import _name_part
    from sweep.settings import NAME_PATTERN

    assert _name_part(stem) == name and NAME_PATTERN.match(f"{name}-20261201-000000")


def test_device_cuda_on_logical_gpus_without_a_gpu_is_refused(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has a GPU: device cuda works there")
    args = _yaml("fixed: {device: cuda}\n")(tmp_path) + [
        "--gpus-per-trial", "0.5", "--num-gpus", "1", "--logical-gpus"]
    result = run_sweep(*args, cwd=tmp_path)
    assert result.returncode == 2, result.stderr[-2000:]
    assert result.stderr.strip() == ("sweep run: error: device: cuda with --logical-gpus on a "
                                     "machine without a GPU that torch can use: the trials "
                                     "would run on the CPU; use device auto")
    assert not (tmp_path / "store").exists()


def test_unreachable_google_cloud_storage_fails_in_one_line_not_a_hang(tmp_path):
    import socket

    with socket.socket() as probe:  # a loopback port nothing listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    result = run_sweep("run", "--storage", "gs://sweeps/x", "--name", "n", cwd=tmp_path,
                       env={"STORAGE_EMULATOR_HOST": f"http://127.0.0.1:{closed}"},
                       timeout=120)  # Arrow's own retries would take 15 minutes
    assert result.returncode == 2, result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("sweep run: error: gs://sweeps/x: cannot "
                                                   "reach it (")
    assert "Could not connect to server" in lines[0] and "error_info" not in lines[0]


# Storage a sweep cannot use: (id, area, the environment's AWS_* variables, argv, message).
# "served" is the loopback S3 server; "strict" one that checks credentials and IAM policies;
# "closed" a port where nothing listens.

def _on(server: str, **extra: str):
    def env(servers: dict) -> dict[str, str]:
        chosen = servers[server]
        return {**CREDENTIALS, "AWS_ENDPOINT_URL": chosen, **extra}
    return env


STORAGE_CASES: list[tuple[str, str, Callable[[dict], dict[str, str]], list[str], str]] = [
    ("storage-unreachable-endpoint", "run", _on("closed"),
     ["run", "--storage", "s3://sweeps/x", "--name", "n"], "NETWORK_CONNECTION"),
    ("storage-missing-bucket", "run", _on("served"),
     ["run", "--storage", "s3://no-such-bucket/x", "--name", "n"], "s3://no-such-bucket/x"),
    ("storage-no-credentials", "run",
     _on("strict", AWS_ACCESS_KEY_ID="", AWS_SECRET_ACCESS_KEY="",
         AWS_SHARED_CREDENTIALS_FILE="/nonexistent", AWS_CONFIG_FILE="/nonexistent"),
     ["run", "--storage", "s3://sweeps/x", "--name", "n"], "no AWS credentials"),
    ("storage-access-denied", "run", _on("strict", DENIED="1"),
     ["run", "--storage", "s3://sweeps/x", "--name", "n"], "ACCESS_DENIED"),
    ("storage-unknown-scheme", "run", _on("served"),
     ["run", "--storage", "foo://bucket/x", "--name", "n"], "unusable storage URI"),
    ("storage-no-bucket-named", "run", _on("served"),
     ["run", "--storage", "s3://", "--name", "n"], "no bucket named"),
    ("storage-resume-unreachable", "resume", _on("closed"), ["resume", "s3://sweeps/x/n"],
     "NETWORK_CONNECTION"),
    ("storage-resume-no-such-folder", "resume", _on("served"), ["resume", "s3://sweeps/nothing"],
     "s3://sweeps/nothing: no such folder"),
    ("storage-analyze-access-denied", "analyze", _on("strict", DENIED="1"),
     ["analyze", "s3://sweeps/x", "--out", "out"], "ACCESS_DENIED"),
]


@pytest.fixture
def servers(s3_server, strict_s3) -> dict:
    from s3server import free_port

    strict, denied = strict_s3
    return {"served": s3_server.endpoint, "strict": strict.endpoint, "denied": denied,
            "closed": f"http://127.0.0.1:{free_port()}"}


@pytest.mark.parametrize("case", STORAGE_CASES, ids=[c[0] for c in STORAGE_CASES])
def test_unusable_storage_gets_one_line_and_exit_2(case, servers, tmp_path):
    _, _, env_of, args, message = case
    env = env_of(servers)
    if env.pop("DENIED", None):
        env.update(servers["denied"])
    before = _bucket_objects()
    result = run_sweep(*args, cwd=tmp_path, env=env)
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], result.stderr
    assert "Traceback" not in result.stderr and result.stdout == ""
    assert list(tmp_path.iterdir()) == [] and _bucket_objects() == before  # nothing written


def _bucket_objects() -> list[str]:
    from locations import Location

    return sorted(Location("s3://sweeps").files())


def test_the_catalogue_covers_every_area_with_at_least_90_cases():
    assert len(CASES) + len(STORAGE_CASES) >= 90 and len({c.id for c in CASES}) == len(CASES)
    assert len({c[0] for c in STORAGE_CASES} | {c.id for c in CASES}) == len(CASES) + len(
        STORAGE_CASES)
    assert {c.area for c in CASES} == {"trial", "data", "run", "config", "resume", "analyze",
                                       "cluster"}


def markdown() -> str:
    import tempfile

    rows = ["| # | area | input | command | exit | the one line on stderr |",
            "|---|---|---|---|---|---|"]
    for i, case in enumerate(CASES, 1):
        with tempfile.TemporaryDirectory() as tmp:
            scratch = Path(tmp)
            args = case.args(scratch)
            result = run_sweep(*args, cwd=scratch)
            shown = " ".join(a.replace(tmp, "$TMP") for a in args)
            line = result.stderr.strip().replace(tmp, "$TMP").replace("|", "\\|")
        rows.append(f"| {i} | {case.area} | {case.id} | `sweep {shown}` | {result.returncode} "
                    f"| {line} |")
    return "\n".join(rows)


if __name__ == "__main__":
    print(markdown())

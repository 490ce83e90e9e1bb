"""The layering the README's Layout section describes, checked: what each edge imports, and the
one record contract every layer shares."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest
from cli import sweep_command

from common.layout import (
    SweepLayout,
    evaluation_of_state_file,
    result_file_name,
    state_file_name,
    trial_of_result_file,
)
from common.records import LOG_COLUMNS, RECORD_COLUMNS, arrow_schema

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("torch", "ray")


def loaded_after(code: str) -> set[str]:
    """Top-level modules loaded in a fresh interpreter after running `code`."""
    out = subprocess.run([sys.executable, "-c", f"{code}\nimport sys\n"
                          "print(' '.join(sorted({m.split('.')[0] for m in sys.modules})))"],
                         capture_output=True, text=True, check=True, cwd=ROOT)
    return set(out.stdout.split())


@pytest.mark.parametrize("code", [
    "import analysis", "import search_spaces", "import common.records, common.layout",
    "import trainables", "import trainables.config, trainables.sizing",
    "import sweep.cli", "import sweep.results_log",
    "from analysis import load_results, pareto_front, savings_table",
])
def test_light_edges_import_neither_torch_nor_ray(code):
    assert not loaded_after(code) & set(HEAVY)


def cli_imports(*args: str, cwd: Path | None = None) -> tuple[subprocess.CompletedProcess,
                                                                set[str]]:
    """Run the console script with -X importtime: its result, and the top-level modules it
    imported (each is listed on stderr)."""
    script = sweep_command()
    target = [script[0]] if script[0] != sys.executable else script[1:]
    result = subprocess.run([sys.executable, "-X", "importtime", *target, *args],
                            capture_output=True, text=True, cwd=cwd)
    imported = {line.split("|")[-1].strip().split(".")[0]
                for line in result.stderr.splitlines() if "|" in line}
    return result, imported


def test_sweep_help_loads_neither_torch_nor_ray():
    result, imported = cli_imports("--help")
    assert result.returncode == 0 and "usage: sweep" in result.stdout
    assert "sweep" in imported and not imported & set(HEAVY)


def _imports(package: str) -> set[str]:
    """Top-level packages of this project that `package`'s modules import (at any depth)."""
    found = set()
    for path in (ROOT / package).glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.add(node.module.split(".")[0])
            elif isinstance(node, ast.Import):
                found |= {alias.name.split(".")[0] for alias in node.names}
    return found & {"common", "trainables", "search_spaces", "sweep", "analysis"}


@pytest.mark.parametrize("package, allowed", [
    ("common", {"common"}),
    ("trainables", {"common", "trainables"}),
    ("search_spaces", {"common", "trainables", "search_spaces"}),
    ("analysis", {"common", "analysis"}),
    ("sweep", {"common", "trainables", "search_spaces", "sweep", "analysis"}),
])
def test_data_flows_one_way(package, allowed):
    assert _imports(package) <= allowed


def test_record_columns_and_arrow_schema_come_from_one_definition():
    schema = arrow_schema()
    assert tuple(schema.names) == LOG_COLUMNS
    assert LOG_COLUMNS[:len(RECORD_COLUMNS)] == RECORD_COLUMNS
    kinds = {str(schema.field(name).type) for name in LOG_COLUMNS}
    assert kinds == {"string", "double", "int64", "bool"}
    assert str(schema.field("test_accuracy").type) == "double"
    assert str(schema.field("hostname").type) == "string"  # no column falls back to int64


def test_a_trials_records_hold_exactly_the_record_columns():
    from trainables import TrialConfig, run_trial

    records = run_trial(TrialConfig.from_dict({"finetune_epochs": 1, "width": 2}))
    assert all(tuple(r) == RECORD_COLUMNS for r in records)
    assert records[0]["version"] == "0.1.0"
    revision = records[0]["revision"]
    assert revision is None or len(revision.removesuffix("+dirty")) == 40


def test_sweep_layout_names_and_parses_its_files():
    layout = SweepLayout("s3://bucket/sweeps/x")
    assert layout.result_file("digits", "ab_00001") == (
        "s3://bucket/sweeps/x/results/digits-ab_00001.parquet")
    assert layout.trial_state_folder("t1") == "s3://bucket/sweeps/x/trial_state/t1"
    assert layout.experiment("cifar10") == "s3://bucket/sweeps/x/tune/cifar10"
    name = result_file_name("fashion_mnist", "3f_00002")
    assert trial_of_result_file(name, "fashion_mnist") == "3f_00002"
    assert trial_of_result_file(name, "mnist") is None  # 'fashion_mnist-' is not 'mnist-'
    assert trial_of_result_file(f"{name}.corrupt", "fashion_mnist") is None
    assert trial_of_result_file("digits-.parquet", "digits") is None
    assert evaluation_of_state_file(state_file_name(17)) == 17
    assert evaluation_of_state_file(".000017.pt.tmp") is None


@pytest.mark.parametrize("args", [
    ["trial", "--lr", "inf"], ["run", "--gpus-per-trial", "nan", "--name", "x"],
    ["run", "--config", "/nonexistent.yaml"],
    ["run", "--num-cpus", "2", "--num-gpus", "64"],  # GPUs counted without torch
])
def test_a_bad_input_error_loads_neither_torch_nor_ray(args, tmp_path):
    result, imported = cli_imports(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert "sweep" in imported and not imported & set(HEAVY)


def test_gpus_are_counted_as_torch_counts_them_without_importing_it():
    code = ("import sys; from sweep.gpus import torch_gpu_count; n = torch_gpu_count(); "
            "assert 'torch' not in sys.modules; import torch; "
            "print(n, torch.cuda.device_count() if torch.cuda.is_available() else 0)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    ours, torchs = out.stdout.split()
    assert ours == torchs


@pytest.mark.parametrize("text, build", [
    ("cuda: Optional[str] = '13.0'\nhip: Optional[str] = None\n", 13),
    ("cuda = '11.8'\nhip = None\n", 11),
    ("cuda: Optional[str] = None\nhip: Optional[str] = None\n", 0),  # a CPU build
    ("cuda: Optional[str] = None\nhip: Optional[str] = '6.2.4'\n", None),  # ROCm: ask torch
    ("__version__ = '2.0'\n", None),
])
def test_torch_build_is_read_from_its_version_file(text, build, tmp_path):
    from sweep.gpus import torch_build

    (tmp_path / "version.py").write_text(text)
    assert torch_build(tmp_path) == build
    assert torch_build(tmp_path / "missing") is None

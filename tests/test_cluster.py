"""Cluster configs checked as Ray's launcher checks them, and sweeps on a real multi-node Ray
(a head and worker nodes with their own resources, started with Ray's own cluster utilities)."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
import yaml
from cli import run_sweep, sweep_command
from test_sweep import assert_log_complete, assert_rows_match_replay, small_spec, write_spec

from common.errors import UserError
from sweep.cluster_config import check_cluster_config

ROOT = Path(__file__).parent.parent
CONFIGS = [ROOT / "cluster.yaml", *sorted((ROOT / "examples").glob("cluster-*.yaml"))]


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_cluster_configs_pass_rays_checks(path):
    config = check_cluster_config(path)
    if config["provider"]["type"] != "local":
        assert config["head_node_type"] in config["available_node_types"]
        workers = [t for n, t in config["available_node_types"].items()
                   if n != config["head_node_type"]]
        assert all(t.get("min_workers", 0) <= t["max_workers"] for t in workers)


def test_the_templates_bucket_is_named_as_left_to_replace(tmp_path, capsys):
    from sweep import cli

    assert cli.main(["check-cluster", str(ROOT / "cluster.yaml")]) == 0
    assert capsys.readouterr().out.strip().endswith(
        "valid (head, gpu_worker); before `ray up`, replace the template's "
        "SWEEP_STORAGE=s3://YOUR-BUCKET/sweeps (setup_commands)")
    named = _variant(tmp_path, lambda c: c.update(setup_commands=[
        command.replace("YOUR-BUCKET", "lab-sweeps") for command in c["setup_commands"]]))
    assert cli.main(["check-cluster", str(named)]) == 0
    assert capsys.readouterr().out.strip() == f"{named}: valid (gpu_worker, head)"  # (sorted)


def test_aws_config_opens_only_ssh_and_uses_spot_gpu_workers():
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    rules = config["provider"]["security_group"]["IpPermissions"]
    assert [(r["FromPort"], r["ToPort"]) for r in rules] == [(22, 22)]
    worker = config["available_node_types"]["gpu_worker"]
    assert worker["min_workers"] == 0 and worker["node_config"]["InstanceType"] == "g5.xlarge"
    assert worker["node_config"]["InstanceMarketOptions"]["MarketType"] == "spot"


def _variant(tmp_path: Path, change) -> Path:
    config = yaml.safe_load((ROOT / "cluster.yaml").read_text())
    change(config)
    path = tmp_path / "cluster.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda c: c.update(head_node_type="missing"), "head_node_type"),
        (lambda c: c.pop("provider"), "'provider' is a required property"),
        (lambda c: c.update(max_workers="many"), "max_workers: 'many' is not of type"),
        (lambda c: c.update(unknown_key=1), "Additional properties are not allowed"),
        (lambda c: c["available_node_types"]["gpu_worker"].update(node_config="g5"),
         "is not of type 'object'"),
        (lambda c: c.update(head_start_ray_commands=["ray start --head"]),
         "--dashboard-host=127.0.0.1"),
        (lambda c: c["setup_commands"].append("export SWEEP_STORAGE=s3://other"),
         "name the result storage once"),
    ],
)
def test_invalid_cluster_configs_get_one_line(tmp_path, change, message):
    path = _variant(tmp_path, change)
    with pytest.raises(UserError, match=None) as info:
        check_cluster_config(path)
    assert message in str(info.value) and "\n" not in str(info.value)


# ---- a real multi-node Ray on this machine -------------------------------------------------------


@pytest.fixture
def cluster(tmp_path, monkeypatch):
    """A head with no CPUs for trials and two worker nodes of 1 CPU each."""
    from ray.cluster_utils import Cluster

    monkeypatch.setenv("SWEEPS_DATA_READ_LOG", str(tmp_path / "reads.log"))
    c = Cluster(initialize_head=True, head_node_args={"num_cpus": 0})
    workers = [c.add_node(num_cpus=1) for _ in range(2)]
    c.wait_for_nodes()
    yield c, workers
    c.shutdown()


@pytest.mark.slow
def test_sweep_spreads_over_nodes_and_reads_data_once(store, cluster, tmp_path):
    c, workers = cluster
    spec = small_spec(tmp_path, 4, 8, size_by="ratio")
    result = run_sweep("run", "--config", str(spec), "--address", c.address,
                       "--storage", str(store), "--name", "multi")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = (store / "multi" / "results").parquet()
    assert_log_complete(df, trials=4)
    worker_ids = {w.node_id for w in workers}
    assert set(df["node"]) <= worker_ids and df["node"].nunique() == 2  # both workers ran trials
    reads = (tmp_path / "reads.log").read_text().splitlines()
    # One disk read in all: the driver's; the nodes get the arrays through the object store.
    assert len(reads) == 1 and reads[0].startswith("digits ")


@pytest.mark.slow
def test_a_local_sweep_starts_a_ray_of_its_own_beside_a_running_cluster(store, cluster, tmp_path):
    # ray.init() without an address joins the cluster last started on this machine (as `ray
    # start` leaves one) and refused a local sweep's resources for it: "When connecting to an
    # existing cluster, num_cpus and num_gpus must not be provided"
    spec = write_spec(tmp_path / "spec.yaml", datasets=["digits"], num_samples=1,
                      fixed={"width": 4, "finetune_epochs": 1}, search={"strategy": ["none"]})
    result = run_sweep("run", "--config", str(spec), "--num-cpus", "2", "--storage", str(store),
                       "--name", "beside", "--no-analyze")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    df = (store / "beside" / "results").parquet()
    c, workers = cluster
    cluster_nodes = {c.head_node.node_id, *(w.node_id for w in workers)}
    assert len(df) > 0 and not set(df["node"]) & cluster_nodes  # not the cluster's nodes


@pytest.mark.slow
def test_killed_worker_node_trials_retry_elsewhere_from_checkpoints(store, cluster, tmp_path):
    c, workers = cluster
    folder = store / "killed"
    driver = subprocess.Popen(
        [*sweep_command(), "run", "--config", str(small_spec(tmp_path, 4, 25, size_by="ratio")),
         "--address", c.address, "--storage", str(store), "--name", "killed"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True)
    victim = workers[0]
    deadline = time.monotonic() + 240
    running_there = False
    while time.monotonic() < deadline and not running_there:
        time.sleep(0.5)
        try:
            df = (folder / "results").parquet()
        except (FileNotFoundError, OSError, ValueError):
            continue
        if df.empty:
            continue
        last = df.sort_values("evaluation").groupby("trial_id").tail(1)
        running_there = ((last["node"] == victim.node_id) & (last["status"] == "running")
                         & (last["evaluation"] >= 3)).any()
    assert running_there, "no trial was running on the node to kill"
    c.remove_node(victim, allow_graceful=False)  # the node's raylet and workers, killed
    try:
        output, _ = driver.communicate(timeout=420)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
    assert driver.returncode == 0, output[-3000:]
    df = (folder / "results").parquet()
    assert_log_complete(df, trials=4)
    moved = df.groupby("trial_id")["node"].nunique()
    assert (moved > 1).any()  # a trial that began on the killed node finished on the other
    for trial_id in moved[moved > 1].index:
        rows = df[df["trial_id"] == trial_id]
        assert rows.sort_values("evaluation")["node"].iloc[-1] == workers[1].node_id
        assert_rows_match_replay(rows)  # resumed from its checkpoint: nothing repeated or lost

"""`sweep dashboard PATH`, run for real: the command starts optuna-dashboard on the sweep's
optuna.db, its HTTP API on 127.0.0.1 lists the study with its trials, and SIGTERM stops it.
Mistakes (no study file, no folder, the extra missing) are one line and exit code 2."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
from cli import run_sweep, sweep_command
from s3server import BUCKET, free_port
from test_security import listening

from common import storage

pytest.importorskip("optuna_dashboard", reason="the dashboard extra: pip install -e '.[test]'")

TRIALS = [({"strategy": "none", "lr": 1e-3}, [0.90, 5.7e9]),
          ({"strategy": "random", "lr": 2e-3}, [0.93, 8.1e9]),
          ({"strategy": "kmeans", "lr": 1e-3}, [0.92, 6.9e9])]


def make_study(db: Path, name: str = "s-digits") -> None:
    """A two-objective study (accuracy up, FLOPs down) with three finished trials."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage=f"sqlite:///{db}", study_name=name,
                                directions=["maximize", "minimize"])
    distributions = {"strategy": optuna.distributions.CategoricalDistribution(
        ["none", "random", "kmeans"]), "lr": optuna.distributions.FloatDistribution(1e-4, 1e-2)}
    for params, values in TRIALS:
        study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                                  values=values))


@pytest.fixture
def sweep_folder(tmp_path) -> Path:
    folder = tmp_path / "sweeps" / "s"
    (folder / "results").mkdir(parents=True)
    (folder / "sweep.json").write_text("{}")  # what makes it a sweep folder
    make_study(folder / "optuna.db")
    return folder


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=5) as answer:
        assert answer.status == 200
        return json.loads(answer.read())


class Dashboard:
    """`sweep dashboard` in a subprocess, its output in files."""

    def __init__(self, folder: str, port: int, tmp_path: Path) -> None:
        self.port = port
        self.out, self.err = tmp_path / "stdout", tmp_path / "stderr"
        with open(self.out, "w") as out, open(self.err, "w") as err:
            self.process = subprocess.Popen(
                [*sweep_command(), "dashboard", folder, "--port", str(port)],
                stdout=out, stderr=err, env={**os.environ, "PYTHONUNBUFFERED": "1"})

    def api(self, route: str, timeout: float = 60) -> dict:
        """GET a route of the dashboard's API, waiting until the server answers."""
        deadline = time.monotonic() + timeout
        while True:
            assert self.process.poll() is None, self.err.read_text()
            try:
                return get_json(f"http://127.0.0.1:{self.port}{route}")
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline, "the dashboard did not answer in time"
                time.sleep(0.3)

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        try:
            return self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            raise


def check_served(dashboard: Dashboard) -> None:
    """The study and its trials, as optuna-dashboard's API serves them."""
    [study] = dashboard.api("/api/studies")["study_summaries"]
    assert study["study_name"] == "s-digits"
    assert study["directions"] == ["maximize", "minimize"]
    detail = dashboard.api(f"/api/studies/{study['study_id']}")
    assert detail["name"] == "s-digits"
    trials = sorted(detail["trials"], key=lambda t: t["number"])
    assert [t["state"] for t in trials] == ["Complete"] * 3
    assert [t["values"] for t in trials] == [values for _, values in TRIALS]
    served = [{p["name"]: p["param_external_value"] for p in t["params"]} for t in trials]
    assert served == [{k: str(v) for k, v in params.items()} for params, _ in TRIALS]


def test_dashboard_serves_the_sweeps_study_on_loopback_and_stops(sweep_folder, tmp_path):
    port = free_port()
    # named by its results/ folder, as `sweep run` prints where the results are
    dashboard = Dashboard(str(sweep_folder / "results"), port, tmp_path)
    try:
        check_served(dashboard)
        page = urllib.request.urlopen(f"http://127.0.0.1:{port}/dashboard", timeout=5)
        assert page.status == 200 and b"<html" in page.read().lower()
        # Bound to loopback only: every socket listening on the port is 127.0.0.1's (read from
        # /proc, so no packet goes to any other address).
        bound = {address for address, p in listening() if p == port}
        assert bound == {"0100007F"}, bound
    finally:
        code = dashboard.stop()
    assert code == 0, dashboard.err.read_text()
    out = dashboard.out.read_text().splitlines()
    assert out == [f"sweep dashboard: 1 study (s-digits) of {sweep_folder}/optuna.db at "
                   f"http://127.0.0.1:{port}/dashboard (Ctrl-C stops it)",
                   "sweep dashboard: stopped"]
    assert dashboard.err.read_text() == ""  # no server banner, no line per request
    with pytest.raises(OSError):  # the port is closed again
        socket.create_connection(("127.0.0.1", port), timeout=3).close()


def test_dashboard_serves_a_copy_of_a_study_on_s3(s3_server, tmp_path):
    make_study(tmp_path / "optuna.db")
    folder = f"s3://{BUCKET}/dashboard-test/s"
    storage.write_bytes_atomic(f"{folder}/optuna.db", (tmp_path / "optuna.db").read_bytes())
    port = free_port()
    dashboard = Dashboard(folder, port, tmp_path)
    try:
        check_served(dashboard)
    finally:
        code = dashboard.stop()
    assert code == 0, dashboard.err.read_text()
    assert dashboard.out.read_text().splitlines()[0].startswith(
        f"sweep dashboard: 1 study (s-digits) of a copy of {folder}/optuna.db at ")


def test_a_folder_without_a_study_is_one_line_and_exit_2(tmp_path):
    (tmp_path / "empty").mkdir()
    result = run_sweep("dashboard", str(tmp_path / "empty"), timeout=120)
    assert result.returncode == 2
    assert result.stderr == (f"sweep dashboard: error: {tmp_path / 'empty'}: no optuna.db here "
                             "(not a sweep folder, or no study yet)\n")
    result = run_sweep("dashboard", str(tmp_path / "missing"), timeout=120)
    assert result.returncode == 2
    assert result.stderr == (f"sweep dashboard: error: {tmp_path / 'missing'}: no such sweep "
                             "folder\n")


def test_a_file_that_is_not_a_study_and_a_busy_port_are_one_line(sweep_folder, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "optuna.db").write_text("not a database")
    result = run_sweep("dashboard", str(bad), "--port", str(free_port()), timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"sweep dashboard: error: {bad}/optuna.db: not an SQLite database "
                             "(an Optuna study file)\n")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        result = run_sweep("dashboard", str(sweep_folder), "--port", str(port), timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr == (f"sweep dashboard: error: --port {port}: cannot listen on "
                             "127.0.0.1 (in use)\n")


def test_without_the_extra_it_says_how_to_install_it(sweep_folder):
    # optuna-dashboard made unimportable the way Python reports a missing package (None in
    # sys.modules raises ImportError), then the real CLI is run
    code = ("import sys; sys.modules['optuna_dashboard'] = None\n"
            "from sweep.cli import main\n"
            f"sys.exit(main(['dashboard', {str(sweep_folder)!r}]))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120, cwd=Path(__file__).resolve().parent.parent)
    assert result.returncode == 2
    assert result.stderr == ("sweep dashboard: error: optuna-dashboard is not installed: "
                             'pip install -e ".[dashboard]"\n')


def test_a_study_file_that_is_a_folder_is_one_line(tmp_path):
    (tmp_path / "s" / "optuna.db").mkdir(parents=True)
    with socket.socket() as probe:  # a port free now
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    result = run_sweep("dashboard", str(tmp_path / "s"), "--port", str(port), timeout=120)
    assert (result.returncode, result.stdout) == (2, "")
    assert result.stderr.startswith(f"sweep dashboard: error: {tmp_path / 's' / 'optuna.db'}: "
                                    "cannot read (Is a directory)")

"""Security basics on a real sweep: the dashboard listens on localhost only; no secret from the
environment ends up in any file the sweep writes."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import pytest
from cli import sweep_command
from test_sweep import write_spec

pytestmark = pytest.mark.slow

DASHBOARD_PORT = 8265
SECRET = "AKIAFAKESECRET0000000000xyz"


def listening() -> set[tuple[str, int]]:
    """(local address in /proc's hex, port) of every TCP socket listening on this machine."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.rsplit(":", 1)
            if state == "0A":
                found.add((address, int(hex_port, 16)))
    return found


def test_dashboard_on_localhost_and_no_secrets_in_the_sweep_folder(tmp_path):
    spec = write_spec(tmp_path / "s.yaml", datasets=["digits"], num_samples=2,
                      fixed={"finetune_epochs": 40}, search={"strategy": ["none"], "seed": [0, 1]},
                      baselines=[{"seed": 0}, {"seed": 1}])
    env = {"AWS_SECRET_ACCESS_KEY": SECRET, "AWS_ACCESS_KEY_ID": SECRET}
    driver = subprocess.Popen(
        [*sweep_command(), "run", "--config", str(spec), "--num-cpus", "2", "--storage",
         str(tmp_path), "--name", "sec"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True, env={**__import__("os").environ, **env})
    before = listening()
    seen: set[tuple[str, int]] = set()
    while driver.poll() is None:
        seen |= listening() - before
        time.sleep(0.2)
    output = driver.stdout.read()
    assert driver.returncode == 0, output[-3000:]
    assert len(seen) >= 3, "Ray's services were never seen listening: nothing was checked"
    localhost = {"0100007F", "00000000000000000000000001000000"}  # 127.0.0.1 and ::1
    dashboard = {address for address, port in seen if port == DASHBOARD_PORT}
    assert dashboard <= localhost, f"the dashboard listened on {dashboard}"
    written = [p for p in (tmp_path / "sec").rglob("*") if p.is_file()]
    assert len(written) > 10
    for path in written:
        assert SECRET.encode() not in path.read_bytes(), path
    assert SECRET not in output

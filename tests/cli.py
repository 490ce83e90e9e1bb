"""Run the installed `sweep` command as a user would, in a subprocess."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path


def sweep_command() -> list[str]:
    script = Path(sys.executable).parent / "sweep"
    return [str(script)] if script.exists() else [sys.executable, "-m", "sweep.cli"]


def run_sweep(*args: str, cwd: Path | None = None, timeout: float = 600,
              env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*sweep_command(), *args], cwd=cwd, capture_output=True, text=True, timeout=timeout,
        env={**os.environ, **(env or {})},
    )

"""How long the `sweep` command takes to answer when it has nothing heavy to do.

Each command runs in a fresh process, as a user types it; median and range of --repeats runs.
With `python -X importtime`, the heaviest modules each one imports are listed too, and whether
torch or Ray was among them.  Usage:
  python bench/cli_latency.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

SWEEP = str(Path(sys.executable).with_name("sweep"))
COMMANDS = {
    "sweep --help": [SWEEP, "--help"],
    "sweep run --preset nope (bad input, exit 2)": [SWEEP, "run", "--preset", "nope"],
    "sweep trial --lr -1 (bad input, exit 2)": [SWEEP, "trial", "--lr", "-1"],
    "sweep run --num-gpus 1000 (GPUs counted, exit 2)": [SWEEP, "run", "--num-cpus", "2",
                                                         "--num-gpus", "1000"],
    "python -c 'import analysis'": [sys.executable, "-c", "import analysis"],
    "python -c 'import search_spaces'": [sys.executable, "-c", "import search_spaces"],
}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, capture_output=True)
    return time.perf_counter() - start


def heavy_imports(command: list[str]) -> tuple[bool, bool, list[tuple[str, float]]]:
    """(torch imported, ray imported, the five slowest top-level imports in s)."""
    python = [sys.executable, "-X", "importtime"]
    argv = python + (["-c", "from sweep.cli import main; import sys; sys.exit(main())"]
                     + command[1:] if command[0] == SWEEP else command[1:])
    lines = subprocess.run(argv, capture_output=True, text=True).stderr.splitlines()
    modules, top = set(), []
    for line in lines:
        if not line.startswith("import time:") or "|" not in line:
            continue
        _, cumulative, name = (part.strip() for part in line[len("import time:"):].split("|"))
        if not cumulative.isdigit():
            continue
        modules.add(name.strip())
        if not name.startswith(" "):
            top.append((name.strip(), int(cumulative) / 1e6))
    top.sort(key=lambda item: -item[1])
    return "torch" in modules, "ray" in modules, top[:5]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print("| command | median s | range s | torch loaded | Ray loaded | slowest imports (s) |")
    print("|---|---|---|---|---|---|")
    for label, command in COMMANDS.items():
        times = [timed(command) for _ in range(args.repeats)]
        torch, ray, top = heavy_imports(command)
        slowest = ", ".join(f"{name} {seconds:.2f}" for name, seconds in top[:3])
        print(f"| `{label}` | {statistics.median(times):.2f} | {min(times):.2f}-{max(times):.2f} "
              f"| {'yes' if torch else 'no'} | {'yes' if ray else 'no'} | {slowest} |",
              flush=True)


if __name__ == "__main__":
    main()

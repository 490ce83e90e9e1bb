"""Every `sweep` command the README shows parses with the real parser: a flag renamed or removed
fails here, not in a user's terminal (the cluster example once passed a `--download` that
`sweep run` did not have)."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from sweep.cli import build_parser

README = Path(__file__).resolve().parent.parent / "README.md"


def readme_commands() -> list[str]:
    """The `sweep ...` commands of the README's bash blocks, continuation lines joined, comments
    dropped (also one run through another command, as `ray job submit ... -- sweep run ...`)."""
    text = README.read_text()
    lines = [line for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S)
             for line in block.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"^\$ (sweep .*)$", text, flags=re.M)  # shown with their output
    commands = []
    for line in lines:
        words = shlex.split(line, comments=True)
        for start, word in enumerate(words):
            if Path(word).name == "sweep" and (start == 0 or words[start - 1] in ("--", "&&")):
                end = words.index("&&", start) if "&&" in words[start:] else len(words)
                commands.append(shlex.join(words[start + 1:end]))
    return commands


def test_the_readme_shows_the_commands_users_start_with():
    commands = readme_commands()
    assert "run --preset quick" in commands  # the main job (after `.venv/bin/`)
    assert any(c.startswith("run --preset paper --dataset cifar10") and "--download" in c
               for c in commands)  # the cluster example, through `ray job submit ... --`
    assert {c.split()[0] for c in commands} >= {"presets", "run", "resume", "dashboard",
                                                "analyze", "check-cluster", "trial"}


@pytest.mark.parametrize("command", readme_commands(), ids=lambda command: command[:40])
def test_a_readme_command_parses(command):
    build_parser().parse_args(shlex.split(command))  # argparse exits 2 on what it refuses

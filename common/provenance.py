"""What code made a row: the project's version and, in a git checkout, its revision.

Every log row carries both, so each number can be traced to the code that made it (airbench
saves its own source beside its results for the same reason).
"""

from __future__ import annotations

import subprocess
from functools import cache
from pathlib import Path

VERSION = "0.1.0"


@cache
def revision() -> str | None:
    """The git commit this code was checked out at, with '+dirty' when tracked files had changes;
    None when the project is not a git checkout (an installed wheel) or git is missing."""
    root = Path(__file__).resolve().parent.parent
    if not (root / ".git").exists():
        return None
    try:
        head = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True,
                              text=True, timeout=10, check=True).stdout.strip()
        changes = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                  "--untracked-files=no"], capture_output=True, text=True,
                                 timeout=10, check=True).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return head + ("+dirty" if changes else "")

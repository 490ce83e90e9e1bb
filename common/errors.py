"""The project's exceptions and warnings, in one place (as Optuna's `exceptions.py`).

`UserError` is the one base class for "the user can fix this": a value, a file, a path, a cluster
address, a storage location. Its message is one clear line; the CLI prints it and exits with 2.
Anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import warnings


class UserError(ValueError):
    """Bad input the user can fix; the message is one line naming the value and the problem."""


class ConfigError(UserError):
    """A setting (a trial's, a sweep file's, an option's) is not acceptable."""


class DataNotFoundError(UserError):
    """A dataset's files are not where they were looked for (and were not downloaded)."""


class StorageError(UserError):
    """A storage location cannot be used: unknown scheme, unreachable, not writable, full."""


class TrialsFailed(RuntimeError):
    """Every trial of a dataset failed after its retries: the sweep has nothing to show. The
    CLI prints the message (the trials' tracebacks came before it) and exits with 1."""


class Interrupted(KeyboardInterrupt):
    """The sweep was stopped by a signal (SIGINT: Ctrl-C, or SIGTERM), or by its output's reader
    going away (SIGPIPE: `sweep run | head`); `folder` says what to resume. The CLI exits with
    128 + the signal's number."""

    def __init__(self, signum: int, folder: str | None = None) -> None:
        super().__init__(signum)
        self.signum, self.folder = signum, folder


class SweepWarning(UserWarning):
    """Something worth knowing that does not stop the work (a skipped file, a repaired log)."""


def warn(message: str) -> None:
    """The one way this project warns: a `SweepWarning`, which the `sweep` command prints as a
    single `warning: ...` line (Python code can filter or record it as any warning)."""
    warnings.warn(message, SweepWarning, stacklevel=2)


def format_warning_lines() -> None:
    """Print `SweepWarning`s as `warning: <message>` on stderr (the CLI and Ray workers). Once
    is enough: a reused worker calls it at every trial's start, and wrapping the wrapper again
    each time would end, some thousand trials on, in a RecursionError at a warning."""
    original = warnings.showwarning
    if getattr(original, "prints_sweep_warnings", False):
        return

    def show(message, category, filename, lineno, file=None, line=None):  # noqa: ANN001
        if issubclass(category, SweepWarning):
            import sys

            print(f"warning: {message}", file=file or sys.stderr, flush=True)
        else:
            original(message, category, filename, lineno, file, line)

    show.prints_sweep_warnings = True  # type: ignore[attr-defined]
    warnings.showwarning = show

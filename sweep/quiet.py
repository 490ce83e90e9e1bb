"""Quiet by default: a sweep's output is its own progress and answer, not its libraries' chatter.

Without `--verbose`: Ray's start-up lines (banner, auth-token and dashboard notices) and Tune's
INFO lines are dropped, Optuna logs warnings only, Tune writes no CSV or TensorBoard files (the
Parquet log replaces them; its JSON results stay, the log's repair reads them), and a warning
that repeats is shown once. With `--verbose`, everything is shown as the libraries print it.
Either way, off a terminal the workers' lines that Ray forwards carry no colour codes.
"""

from __future__ import annotations

import logging
import os
import sys

# Lines that say nothing a sweep's user needs (matched as substrings of a log record's message).
CHATTER = (
    "Token authentication is",  # Ray: auth-token notices at start-up
    "Started a local Ray instance",
    "View the dashboard",
    "Connecting to existing Ray cluster",
    "tensorboard --logdir",
    "Wrote the latest version of all result files",
    "Failed to fetch metrics for",  # Tune on resume: trials stopped before their first JSON
    # result (the Parquet log, not Tune's JSON, is the record; the trials resume regardless)
    "A new study created",  # Optuna
)


class _Quiet(logging.Filter):
    """Drops chatter, and any message already shown once."""

    def __init__(self) -> None:
        super().__init__()
        self.seen: set[str] = set()

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(text in message for text in CHATTER) or message in self.seen:
            return False
        self.seen.add(message)
        return True


def configure(verbose: bool) -> int:
    """Set up the driver's logging before Ray or Optuna start; returns the level to give
    `ray.init(logging_level=...)`."""
    # Tune's automatic loggers: CSV and TensorBoard files off (JSON results are added back by
    # the launcher), and with them the TensorBoard hint.
    os.environ.setdefault("TUNE_DISABLE_AUTO_CALLBACK_LOGGERS", "1")
    if not sys.stdout.isatty():  # a log file or CI: workers' lines without colour codes
        os.environ.setdefault("RAY_COLOR_PREFIX", "0")
    if verbose:
        return logging.INFO
    # Tune's new output engine prints an experiment table even at verbose=0; the legacy one
    # prints nothing at verbose=0.
    os.environ.setdefault("RAY_AIR_NEW_OUTPUT", "0")
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    quiet = _Quiet()
    for name in ("ray", "ray.tune", "ray.train", "ray._private", "optuna"):
        logger = logging.getLogger(name)
        logger.addFilter(quiet)
        for handler in logger.handlers:
            handler.addFilter(quiet)
    logging.getLogger("ray.tune").setLevel(logging.WARNING)
    return logging.WARNING

"""The `sweep` command: parse, validate, call one function, print.

Mistakes a user can make (bad values, missing data, unreadable files) end with one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from collections.abc import Sequence

from trainables import ConfigError, TrialConfig


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _add_trial_options(parser: argparse.ArgumentParser) -> None:
    """One --option per TrialConfig field; values stay strings until TrialConfig converts them."""
    for field in dataclasses.fields(TrialConfig):
        flag = "--" + field.name.replace("_", "-")
        if field.type == "bool":
            parser.add_argument(flag, dest=field.name, nargs="?", const="true", default=None,
                                metavar="BOOL")
        else:
            parser.add_argument(flag, dest=field.name, default=None,
                                metavar=field.name.split("_")[-1].upper())


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sweep", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    trial = commands.add_parser("trial", help="run one trial in-process (no Ray), print its table")
    _add_trial_options(trial)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "trial":
            from sweep.trial_command import run_trial_command

            names = {f.name for f in dataclasses.fields(TrialConfig)}
            settings = {k: v for k, v in vars(args).items() if k in names and v is not None}
            run_trial_command(settings)
        return 0
    except ConfigError as e:
        print(f"sweep {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"sweep {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

"""The `sweep` command: parse, validate, call one function, print.

Mistakes a user can make (bad values, missing data, unreadable files) end with one line on
stderr and exit code 2; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from shlex import quote

from common.errors import Interrupted, TrialsFailed, UserError, format_warning_lines
from search_spaces.presets import preset_names
from search_spaces.spec import SAMPLERS, SCHEDULERS
from sweep.dashboard import DEFAULT_PORT
from sweep.settings import RayOptions, SweepSettings
from trainables.config import SETTING_HELP, TrialConfig

DEFAULTS = {f.name: f.default for f in dataclasses.fields(SweepSettings)}


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # one line, exit 2 (argparse prints usage too)
        print(f"{self.prog}: error: {message}", file=sys.stderr)
        sys.exit(2)


def _add_trial_options(parser: argparse.ArgumentParser) -> None:
    """One --option per TrialConfig field; values stay strings until TrialConfig converts them."""
    for field in dataclasses.fields(TrialConfig):
        flag = "--" + field.name.replace("_", "-")
        text = SETTING_HELP.get(field.name)
        if field.type == "bool":
            parser.add_argument(flag, dest=field.name, nargs="?", const="true", default=None,
                                metavar="BOOL", help=text)
        else:
            parser.add_argument(flag, dest=field.name, default=None,
                                metavar=field.name.split("_")[-1].upper(), help=text)


def _add_ray_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--address", help="join a running Ray cluster (e.g. auto)")
    parser.add_argument("--num-cpus", type=int, help="CPUs of the local Ray started here")
    parser.add_argument("--num-gpus", type=float, help="GPUs of the local Ray started here")
    parser.add_argument("--logical-gpus", action="store_true",
                        help="let --num-gpus exceed this machine's GPUs: Ray schedules with "
                             "them, the trials train on the CPU (to try out GPU packing)")
    parser.add_argument("--verbose", action="store_true",
                        help="show Ray's and Optuna's own output (quiet by default)")
    parser.add_argument("--no-analyze", dest="analyze", action="store_false",
                        help="end without analysing the sweep (`sweep analyze` does it later)")


DESCRIPTION = ("Sweep, with Ray Tune and Optuna, how much training compute pretraining on a "
               "small subset of the data saves, and show the answer as Pareto frontiers of "
               "accuracy against FLOPs. Start with `sweep run --preset quick`.")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="sweep", description=DESCRIPTION)
    commands = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    run = commands.add_parser("run", help="run a sweep (a preset or your own YAML file)")
    source = run.add_mutually_exclusive_group()
    source.add_argument("--preset", help=f"a named preset: {', '.join(preset_names())} "
                                         "(`sweep presets` says what each is); default quick")
    source.add_argument("--config", help="your own sweep file (YAML)")
    run.add_argument("--dataset", action="append",
                     help="dataset(s) to sweep instead of the preset's (repeat, or comma-separate)")
    run.add_argument("--num-samples", type=int, help="trials per dataset, baselines included")
    run.add_argument("--storage", default=os.environ.get("SWEEP_STORAGE", "results"),
                     help="folder or URI (s3://...) for sweeps (default: $SWEEP_STORAGE, "
                          "else ./results)")
    run.add_argument("--name", help="the sweep's name (default: preset and time)")
    run.add_argument("--gpus-per-trial", type=float, default=DEFAULTS["gpus_per_trial"],
                     help="fraction of a GPU per trial (0.25: four trials share one GPU)")
    run.add_argument("--cpus-per-trial", type=float, default=DEFAULTS["cpus_per_trial"],
                     help="CPUs per trial (default 1); each trial trains on that many threads")
    run.add_argument("--data-dir", help="folder of MNIST/CIFAR files (torchvision's layout)")
    run.add_argument("--download", action="store_true",
                     help="download missing MNIST/CIFAR files into --data-dir first")
    run.add_argument("--seed", type=int, default=DEFAULTS["seed"],
                     help="the sampler's seed (the same trials again when they run one at a "
                          "time; side by side, the order they end in steers later ones)")
    run.add_argument("--sampler", choices=SAMPLERS, help="override the preset's sampler")
    run.add_argument("--scheduler", choices=SCHEDULERS,
                     help="frontier: stop a trial once other trials reached more accuracy for "
                          "less FLOPs, or another pretraining trial reached ordinary training's "
                          "best for less (settings: early_stopping in a sweep file); asha: "
                          "successive halving on accuracy (validation when held out) at equal "
                          "samples")
    run.add_argument("--max-failures", type=int, default=DEFAULTS["max_failures"],
                     help="retries of a failed trial, each from its last saved state "
                          f"(default {DEFAULTS['max_failures']})")
    run.add_argument("--max-concurrent-trials", type=int,
                     default=DEFAULTS["max_concurrent_trials"],
                     help="most trials at once (default: as many as the CPUs and GPUs fit)")
    _add_ray_options(run)

    resume = commands.add_parser("resume", help="continue an interrupted sweep")
    resume.add_argument("path", help="the sweep's folder, <storage>/<name> (or its results/)")
    _add_ray_options(resume)

    commands.add_parser("presets", help="list the presets", description="The named sweeps "
                        "`sweep run --preset NAME` runs, one line each.")

    check = commands.add_parser("check-cluster", help="check a `ray up` cluster config",
                                description="Check a cluster config as `ray up` reads it, and "
                                            "what this project needs of it, before any cloud "
                                            "call.")
    check.add_argument("file", help="the cluster's YAML, as given to `ray up`")

    analyze = commands.add_parser("analyze", help="frontiers, savings, figures and a report")
    analyze.add_argument("paths", nargs="+", help="sweep folders, results/ folders or files")
    analyze.add_argument("--out", help="where to write (default: <first sweep>/analysis)")
    analyze.add_argument("--tolerance", type=float, default=0.005,
                         help="'reaches the baseline's accuracy' within this (default 0.005)")
    analyze.add_argument("--target", type=float,
                         help="also tabulate compute to reach this accuracy and each criterion's "
                              "target, per configuration across seeds (target.csv)")
    analyze.add_argument("--target-on", choices=("auto", "validation", "test"), default="auto",
                         help="judge --target on the validation split or the test set (default "
                              "auto: validation when the results have one)")

    dashboard = commands.add_parser(
        "dashboard", help="serve a sweep's Optuna studies with optuna-dashboard on 127.0.0.1 "
                          "(needs the extra: pip install -e \".[dashboard]\")")
    dashboard.add_argument("path", help="the sweep's folder, <storage>/<name> (or its results/)")
    dashboard.add_argument("--port", type=int, default=DEFAULT_PORT,
                           help=f"port on 127.0.0.1 (default {DEFAULT_PORT})")

    trial = commands.add_parser("trial", help="run one trial in-process (no Ray), print its table")
    _add_trial_options(trial)
    return parser


def _split(values: list[str] | None) -> tuple[str, ...] | None:
    if not values:
        return None
    names = (v.strip() for value in values for v in value.split(","))
    return tuple(dict.fromkeys(name for name in names if name))  # each once, in order


def _run(args: argparse.Namespace) -> None:
    import time

    from search_spaces import load_preset, load_spec_file
    from sweep.launcher import run_sweep

    for flag, value in (("--config", args.config), ("--preset", args.preset)):
        if value is not None and not value.strip():  # an unset shell variable, most likely
            raise UserError(f"{flag} is empty")
    spec = load_spec_file(args.config) if args.config else load_preset(args.preset or "quick")
    fixed = {"data_dir": args.data_dir} if args.data_dir else {}
    if args.download:
        fixed["download"] = True
    spec = spec.with_overrides(datasets=_split(args.dataset), num_samples=args.num_samples,
                               sampler=args.sampler, scheduler=args.scheduler, fixed=fixed)
    source = _name_part(Path(args.config).stem) if args.config else (args.preset or "quick")
    name = args.name or f"{source}-{time.strftime('%Y%m%d-%H%M%S')}"
    settings = SweepSettings(name=name, storage=args.storage, seed=args.seed,
                             cpus_per_trial=args.cpus_per_trial,
                             gpus_per_trial=args.gpus_per_trial, max_failures=args.max_failures,
                             max_concurrent_trials=args.max_concurrent_trials)
    folder = run_sweep(spec, settings, _ray_options(args))
    if args.analyze:
        _answer(folder)


def _name_part(stem: str) -> str:
    """A sweep file's name as the start of a sweep's name: what --name allows (letters, digits,
    '.', '_', '-'; others become '-'), at most 60 characters; 'sweep' if nothing is left."""
    import re

    return re.sub(r"[^A-Za-z0-9._-]+", "-", stem).strip("-._")[:60].rstrip("-._") or "sweep"


def _ray_options(args: argparse.Namespace) -> RayOptions:
    return RayOptions(address=args.address, num_cpus=args.num_cpus, num_gpus=args.num_gpus,
                      verbose=args.verbose, logical_gpus=args.logical_gpus)


def _answer(folder: str) -> None:
    """The analysis of a finished sweep, written to <sweep>/analysis/ (on a URI too): the
    summary and the headline per dataset, and where the report and figures are."""
    from analysis.report import analyze
    from common.layout import SweepLayout

    print(analyze([folder], SweepLayout(folder).analysis), flush=True)


def _analyze(args: argparse.Namespace) -> None:
    from analysis.report import analyze

    if not 0 <= args.tolerance < 1:
        raise UserError(f"--tolerance must be in [0, 1), got {args.tolerance}")
    if args.target is not None and not 0 < args.target <= 1:
        raise UserError(f"--target must be in (0, 1], got {args.target}")
    if args.target is None and args.target_on != "auto":
        raise UserError(f"--target-on {args.target_on} judges --target, which is not given "
                        "(e.g. --target 0.9)")
    out = args.out or _default_analysis_folder(args.paths[0])
    _check_out_is_not_in_a_log(out, args.paths)
    print(analyze(args.paths, out, args.tolerance, args.target, args.target_on))


def _log_folder(path: str) -> Path:
    """The folder of result files a local `sweep analyze` path reads: a sweep folder's
    results/, a results/ folder itself, or a single file's folder."""
    p = Path(path)
    if p.is_file():
        return p.parent
    return p if p.name == "results" or not (p / "results").is_dir() else p / "results"


def _default_analysis_folder(first: str) -> str:
    """<sweep>/analysis for a sweep folder, its results/ or one of its files; a URI: ./analysis."""
    from common import storage

    if storage.is_uri(first):
        return "analysis"
    log = _log_folder(first)
    return str((log.parent if log.name == "results" else log) / "analysis")


def _check_out_is_not_in_a_log(out: str, paths: list[str]) -> None:
    """Analysis files written among result files (frontier.parquet) would be read back as
    results (a subfolder is not read)."""
    from common import storage

    for path in paths:
        if storage.is_uri(out) != storage.is_uri(path):
            continue
        if storage.is_uri(out):  # the same bucket path: results/ or the sweep's results/
            given, where = storage.normalise(path).rstrip("/"), storage.normalise(out).rstrip("/")
            logs = {storage.join(given, "results")} | ({given} if given.endswith("/results")
                                                       else set())
            inside = where in logs
        else:
            inside = Path(out).resolve() == _log_folder(path).resolve()
        if inside:
            raise UserError(f"--out {out}: the folder of the result files of {path}; its "
                            "Parquet files would be read as results next time; choose another "
                            "folder")


def _presets() -> None:
    from search_spaces import load_preset, preset_names

    for name in preset_names():
        spec = load_preset(name)
        print(f"{name:9} {spec.description} [{', '.join(spec.datasets)}; "
              f"{spec.num_samples} trials]")


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    if not (sys.argv[1:] if argv is None else argv):  # a bare `sweep`: what it can do
        parser.print_help(sys.stderr)
        return 2
    args = parser.parse_args(argv)
    format_warning_lines()
    try:
        if args.command == "run":
            _run(args)
        elif args.command == "resume":
            from sweep.launcher import resume_sweep

            folder = resume_sweep(args.path, _ray_options(args))
            if folder is not None and args.analyze:
                _answer(folder)
        elif args.command == "presets":
            _presets()
        elif args.command == "check-cluster":
            from sweep.cluster_config import check_cluster_config, placeholders

            config = check_cluster_config(args.file)
            types = ", ".join(config.get("available_node_types", {})) or config["provider"]["type"]
            left = placeholders(config)
            print(f"{args.file}: valid ({types})" + (
                f"; before `ray up`, replace the template's {', '.join(left)} (setup_commands)"
                if left else ""))
        elif args.command == "analyze":
            _analyze(args)
        elif args.command == "dashboard":
            from sweep.dashboard import serve_dashboard

            serve_dashboard(args.path, args.port, announce=lambda line: print(line, flush=True))
        elif args.command == "trial":
            names = {f.name for f in dataclasses.fields(TrialConfig)}
            settings = {k: v for k, v in vars(args).items() if k in names and v is not None}
            TrialConfig.from_dict(settings)  # bad values fail here, before torch loads
            from sweep.trial_command import run_trial_command

            run_trial_command(settings)
        return 0
    except UserError as e:
        _shut_down_ray()
        print(f"sweep {args.command}: error: {e}", file=sys.stderr)
        return 2
    except TrialsFailed as e:
        _shut_down_ray()
        print(f"sweep {args.command}: {e}", file=sys.stderr)
        return 1
    except Interrupted as e:
        if e.signum == signal.SIGPIPE:
            _stdout_to_devnull()
        _shut_down_ray()
        how = f"; continue it with `sweep resume {quote(e.folder)}`" if e.folder else ""
        print(f"sweep {args.command}: interrupted ({signal.Signals(e.signum).name}){how}",
              file=sys.stderr)
        return 128 + e.signum
    except KeyboardInterrupt:
        _shut_down_ray()
        print(f"sweep {args.command}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # stdout's reader went away (`sweep trial | head -3`): stop quietly,
        _stdout_to_devnull()  # as other tools stop on SIGPIPE
        _shut_down_ray()
        return 128 + signal.SIGPIPE


def _stdout_to_devnull() -> None:
    """Point stdout at /dev/null once its reader has gone: what is still buffered, and any later
    print, would otherwise raise BrokenPipeError again (at exit: 'Exception ignored')."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)


def _shut_down_ray() -> None:
    """Stop the Ray this process started or joined, if any, so that what its workers print as
    they are stopped (a killed worker's traceback) comes before the sweep's last line, not
    after it."""
    if "ray" in sys.modules:
        import ray

        if ray.is_initialized():
            _stop_autoscaler_monitor()
            ray.shutdown()


def _stop_autoscaler_monitor() -> None:
    """Kill the autoscaler monitor of a Ray this process started, ahead of `ray.shutdown`. The
    monitor does not exit on SIGTERM, so the shutdown waits its whole grace second for it (1 s
    of the 1.4 s a shutdown takes here). It holds nothing of the sweep's; on a cluster this
    process only joined there is no such process to kill."""
    from ray._private import ray_constants, worker

    node = getattr(worker, "_global_node", None)
    monitor = getattr(ray_constants, "PROCESS_TYPE_MONITOR", "monitor")
    for info in getattr(node, "all_processes", {}).get(monitor, []):
        if info.process.poll() is None:
            info.process.kill()
            info.process.wait(timeout=5)


if __name__ == "__main__":
    sys.exit(main())


def entry() -> None:
    """The `sweep` console command: `main`, then an exit that skips the interpreter's slow
    teardown (1.5 s after a sweep, from the native libraries' destructors). Everything a sweep
    writes is complete and closed by then; a local Ray this process started is shut down first
    (its processes share the driver's fate either way)."""
    code = main()
    _shut_down_ray()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""Run and resume sweeps: one Ray Tune Tuner (and one Optuna study) per dataset.

A sweep lives in `<storage>/<name>/`, laid out as `common.layout.SweepLayout` describes.
Everything a user can get wrong is checked before Ray starts or anything is written. A resume
first prepares the folder (`_prepare_resume`: sets aside what Tune cannot continue, repairs
unreadable log files), then restores the Tuner; a new sweep builds its Tuner in one place
(`_new_tuner`).
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import signal
import socket
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from functools import partial
from pathlib import Path
from shlex import quote
from typing import TYPE_CHECKING, Any

from common import storage
from common.errors import Interrupted, TrialsFailed, UserError, warn
from common.layout import SweepLayout, follow_move, sweep_folder
from common.provenance import VERSION, revision
from search_spaces import SEARCH_ONLY, SweepSpec, baseline_points, define_space, parse_spec
from search_spaces.spec import written_before_dominated
from sweep.lock import SweepLock
from sweep.settings import RayOptions, SweepSettings

if TYPE_CHECKING:
    from trainables.raw_data import RawData

# Tune snapshots its experiment (which trials exist) at most this often; a crash loses trials
# started since the last one (the resume sets their rows aside). Tune's default is longer.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")



def run_sweep(spec: SweepSpec, settings: SweepSettings, ray_options: RayOptions) -> str:
    """Start a new sweep; returns its folder."""
    settings = dataclasses.replace(settings, storage=storage.normalise(settings.storage))
    settings.validate()
    ray_options.validate()
    folder = settings.folder
    storage.check_reachable(settings.storage)
    if storage.exists(folder):
        if not storage.exists(settings.layout.spec):
            raise UserError(f"{folder} already exists and is not a sweep folder; choose "
                            "another --name or --storage")
        if _finished(settings.layout):
            raise UserError(f"{folder} already exists and has finished: its analysis is "
                            f"`sweep analyze {quote(folder)}`; choose another --name for a new "
                            "sweep")
        held = SweepLock(folder).holder()
        if held is not None:  # a driver runs it now: resuming it would be refused too
            raise UserError(f"{folder} already exists and is running (host "
                            f"{held.get('host', '?')}, pid {held.get('pid', '?')}); choose "
                            "another --name for a new sweep")
        raise UserError(f"{folder} already exists: continue it with "
                        f"`sweep resume {quote(folder)}`, or choose another --name")
    _check_local_resources(ray_options, settings)
    _check_device(spec, ray_options, settings)
    _check_address(ray_options)
    _check_datasets(spec, spec.datasets)
    storage.check_writable(settings.storage)
    raw = _read_datasets_while_ray_starts(spec, spec.datasets, ray_options, settings)
    layout = settings.layout
    storage.make_dirs(layout.results)
    record = {"spec": spec.to_dict(), "settings": dataclasses.asdict(settings),
              "ray": dataclasses.asdict(ray_options), "version": VERSION,
              "revision": revision(), "command": " ".join(["sweep", *sys.argv[1:]]),
              "created": time.time()}
    with SweepLock(folder):
        storage.write_text_atomic(layout.spec, json.dumps(record, indent=2))
        _say(f"sweep {settings.name}: {', '.join(spec.datasets)}, {spec.num_samples} trials "
             f"each; results in {layout.results}", settings.folder)
        return _run_datasets(spec, settings, raw, done=[])


def _finished(layout: SweepLayout) -> bool:
    """Whether a sweep folder's every dataset has finished (a damaged record: not known so)."""
    try:
        datasets = json.loads(storage.read_text(layout.spec))["spec"]["datasets"]
        done = json.loads(storage.read_text(layout.state))["done"]
        return set(datasets) <= set(done)
    except (OSError, ValueError, KeyError, TypeError):
        return False


def resume_sweep(folder: str, ray_options: RayOptions) -> str | None:
    """Continue an interrupted sweep in `folder` and return it; a finished one resumes as a
    no-op that writes nothing and returns None."""
    folder = storage.normalise(folder)
    ray_options.validate()
    storage.check_reachable(folder)
    folder = sweep_folder(folder)
    layout = SweepLayout(folder)
    if not storage.exists(layout.spec):
        if not storage.exists(folder):
            raise UserError(f"{folder}: no such folder")
        raise UserError(f"{folder}: not a sweep folder (no sweep.json there)")
    try:
        saved = json.loads(storage.read_text(layout.spec))
        spec = parse_spec(written_before_dominated(saved["spec"]), layout.spec)
        settings = SweepSettings(**saved["settings"])
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{layout.spec}: unreadable sweep record ({e})") from None
    try:
        done = json.loads(storage.read_text(layout.state))["done"] if storage.exists(
            layout.state) else []
        if not isinstance(done, list) or not all(isinstance(d, str) for d in done):
            raise TypeError(f"'done' is {done!r}, not a list of datasets")
    except (OSError, json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{layout.state}: unreadable sweep state ({e}); it lists the datasets "
                        "whose study has finished: fix it, or delete it to run them all "
                        "again") from None
    if storage.normalise(settings.folder) != folder:  # the folder was moved: follow it
        follow_move(storage.normalise(settings.folder), folder)  # in what Tune unpickles
        settings = dataclasses.replace(settings, moved_to=folder)
    remaining = [d for d in spec.datasets if d not in done]
    if not remaining:
        print(f"sweep {settings.name} is complete; nothing to resume. Results in "
              f"{layout.results}; its analysis: `sweep analyze {quote(folder)}`")
        return None
    _check_local_resources(ray_options, settings)
    _check_address(ray_options)
    _check_datasets(spec, remaining)
    with SweepLock(folder):
        raw = _read_datasets_while_ray_starts(spec, remaining, ray_options, settings)
        _say(f"resuming sweep {settings.name}: {', '.join(remaining)}", settings.folder)
        return _run_datasets(spec, settings, raw, done=done)


def _say(line: str, folder: str) -> None:
    """Print a line of a sweep whose folder exists; a reader gone already stops it resumably."""
    try:
        print(line, flush=True)
    except BrokenPipeError:  # `sweep run | true`
        raise Interrupted(signal.SIGPIPE, folder) from None


def _check_local_resources(options: RayOptions, settings: SweepSettings) -> None:
    """A local Ray has --num-cpus/--num-gpus, or what this machine has: a trial must fit."""
    if options.address:
        return  # a cluster may scale up to fit its trials
    gpus = 0
    if options.num_gpus is not None or settings.gpus_per_trial > 0:
        from sweep.gpus import torch_gpu_count

        gpus = torch_gpu_count()
    if options.num_gpus is not None and options.num_gpus > gpus and not options.logical_gpus:
        raise UserError(f"--num-gpus {options.num_gpus:g}: this machine has {gpus} GPU(s) that "
                        "torch can use, so the trials would run on the CPU; add --logical-gpus "
                        "to schedule with GPUs it lacks (to try out packing)")
    have = {"CPU": options.num_cpus if options.num_cpus is not None else os.cpu_count() or 1,
            "GPU": options.num_gpus if options.num_gpus is not None else gpus}
    for kind, need in (("CPU", settings.cpus_per_trial), ("GPU", settings.gpus_per_trial)):
        if need > have[kind]:
            raise UserError(f"each trial asks for {need:g} {kind} but the local Ray has "
                            f"{have[kind]:g} (--num-{kind.lower()}s)")


CONNECT_TIMEOUT_S = float(os.environ.get("SWEEP_CONNECT_TIMEOUT_S", "30"))


def _check_address(options: RayOptions) -> None:
    """A cluster address given as host:port must answer within CONNECT_TIMEOUT_S, before
    anything is written (Ray itself retries for many minutes)."""
    address = options.address
    if address and address.startswith(("http://", "https://")):
        raise UserError(f"--address {address}: an HTTP address (a dashboard's?); give the head "
                        "node's host:port (e.g. <head>:6379), auto on a cluster node, or "
                        "ray://<head>:10001")
    if not address or address in ("auto", "local") or "://" in address:
        return
    host, _, port = address.rpartition(":")
    if not host or not port.isdigit():
        raise UserError(f"--address {address!r}: expected host:port, auto, or ray://host:port")
    try:
        socket.create_connection((host, int(port)), timeout=CONNECT_TIMEOUT_S).close()
    except OSError as e:
        raise UserError(f"--address {address}: no Ray cluster answers there within "
                        f"{CONNECT_TIMEOUT_S:g} s ({e.strerror or e})") from None


def _data_source(spec: SweepSpec) -> tuple[str | None, bool]:
    return spec.fixed.get("data_dir"), bool(spec.fixed.get("download", False))


def _check_device(spec: SweepSpec, options: RayOptions, settings: SweepSettings) -> None:
    """`device: cuda` needs a GPU for every trial: each would fail otherwise, after Ray had
    started and retried it."""
    if str(spec.fixed.get("device", "auto")).lower() != "cuda":
        return
    if settings.gpus_per_trial == 0:
        raise UserError("device: cuda needs --gpus-per-trial above 0 (a trial without one sees "
                        "no GPU); or use device auto")
    if not options.address and options.logical_gpus:
        from sweep.gpus import torch_gpu_count

        if torch_gpu_count() == 0:
            raise UserError("device: cuda with --logical-gpus on a machine without a GPU that "
                            "torch can use: the trials would run on the CPU; use device auto")


def _check_datasets(spec: SweepSpec, datasets: list[str]) -> None:
    """Missing data files are a user's error: found out in milliseconds, before Ray starts."""
    from trainables.raw_data import check_available

    for dataset in datasets:
        check_available(dataset, *_data_source(spec))


def _read_datasets_while_ray_starts(spec: SweepSpec, datasets: list[str], options: RayOptions,
                                    settings: SweepSettings) -> dict[str, RawData]:
    """Read the datasets on a thread while Ray starts (both take seconds; Ray's start is mostly
    waiting for its processes). A reading error is raised first: it is the user's to fix."""
    from concurrent.futures import ThreadPoolExecutor

    import ray  # noqa: F401 - here, so that the two threads never import the same modules

    from trainables.raw_data import read_raw

    def read() -> dict[str, RawData]:
        return {d: read_raw(d, *_data_source(spec)) for d in datasets}

    with ThreadPoolExecutor(1, thread_name_prefix="read-data") as pool:
        reading = pool.submit(read)
        try:
            _start_ray(options, settings)
        except BaseException:
            reading.result()
            raise
        return reading.result()


# A local Ray made for short trials:
# - no metrics collection: there is no dashboard, and without ray[default] no metrics agent
#   either; the raylet waited ~1 s for one at every start;
# - the workers Ray starts with the driver (one per CPU) import what a trial imports (~3.5 s:
#   torch, the compiler stack its optimizers load, Ray Tune, the pipeline) while Ray and the
#   driver are still setting up, so that the first trials start in a ready process. Trials can
#   take those workers because `_share_prestarted_workers` gives them no runtime_env. (Importing
#   these initialises no GPU: a trial's GPUs are assigned when it starts.) A worker holds ~450 MB
#   once it has imported them, so `_start_ray` keeps no more idle workers than trials run at
#   once (`num_workers_soft_limit`): Ray ends the others after a second idle.
LOCAL_RAY_SYSTEM_CONFIG = {
    "enable_metrics_collection": False,
    "preload_python_modules": ["torch", "torch._dynamo", "ray.tune", "trainables.tune_adapter",
                               "trainables.train"],
}


def _share_prestarted_workers() -> None:
    """Let Tune's trial actors take the idle workers Ray starts ahead. Tune gives every trainable
    a runtime_env of environment variables: `PL_DISABLE_FORK` (for PyTorch Lightning, which this
    pipeline does not use), and AWS credentials where they are set. Ray runs an actor only in a
    worker of its runtime_env, and the idle workers have none, so each of the first trials
    started a new process (~4 s of imports). Without that variable the runtime_env is empty
    unless credentials must travel (a sweep on S3 then starts its workers as before). Tune keeps
    the variable in a private table; should it move, trials start in new workers again."""
    try:
        from ray.tune.execution import class_cache
    except ImportError:
        return
    defaults = getattr(class_cache, "DEFAULT_ENV_VARS", None)
    if isinstance(defaults, dict):
        defaults.pop("PL_DISABLE_FORK", None)


def _job_config() -> Any:
    """The sweep's Ray job: without the driver's working folder on its workers' import path.
    Ray puts it first there, so a sweep run from a folder holding another copy of this project
    (an old clone) had its trials import that copy's `sweep` while the driver ran this one.
    Ray leaves the folder out for a job it marks `_client_job` (a Ray Client's, whose folder is
    on another machine), and that mark does nothing else without a job-level runtime_env (this
    sweep sets none). Should the mark go from a later Ray, the folder comes back (a test says
    so)."""
    import ray

    try:
        return ray.job_config.JobConfig(_client_job=True)
    except TypeError:
        return ray.job_config.JobConfig()


def _start_ray(options: RayOptions, settings: SweepSettings) -> None:
    import ray

    from sweep import quiet

    if ray.is_initialized():
        return
    level = quiet.configure(options.verbose)
    job = _job_config()
    try:
        if options.address:
            ray.init(address=options.address, logging_level=level, job_config=job)
        else:
            # No dashboard for a local Ray (and were one started, it would be localhost only).
            at_once = _trials_at_once(
                options.num_cpus or os.cpu_count() or 1,
                float("inf") if options.num_gpus is None else options.num_gpus, settings)
            # "local": a Ray of its own, even where `ray start` left one running on this machine
            # (ray.init would join that one, and refuse these resources for it)
            ray.init(address="local", num_cpus=options.num_cpus, num_gpus=options.num_gpus,
                     dashboard_host="127.0.0.1", include_dashboard=False, job_config=job,
                     logging_level=level, _system_config={**LOCAL_RAY_SYSTEM_CONFIG,
                                                          "num_workers_soft_limit": at_once})
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = options.address or "a local Ray"
        words = " ".join(str(e).split()) or type(e).__name__  # Ray's own, on one line
        raise UserError(f"cannot start or reach {where}: {words}") from None
    if options.address:
        available = ray.cluster_resources()
        for kind, need in (("CPU", settings.cpus_per_trial), ("GPU", settings.gpus_per_trial)):
            if need > available.get(kind, 0.0):
                warn(f"each trial asks for {need:g} {kind} but the cluster has "
                     f"{available.get(kind, 0.0):g}; trials wait until it scales up")


def _trials_at_once(cpus: float, gpus: float, settings: SweepSettings) -> int:
    """How many trials fit side by side in `cpus` CPUs and `gpus` GPUs (at least one), no more
    than --max-concurrent-trials."""
    fits = [have / need for have, need in
            ((cpus, settings.cpus_per_trial), (gpus, settings.gpus_per_trial)) if need > 0]
    return max(1, min(int(min(fits, default=1)), settings.max_concurrent_trials or 2**31))


@contextmanager
def _pending_trials_allowed(settings: SweepSettings) -> Iterator[None]:
    """Let Tune start as many trials at once as fit the Ray it has, for one `fit`. (With a search
    algorithm it keeps one trial pending at a time: while that one's worker starts, the other
    slots idle.) A user's own TUNE_MAX_PENDING_TRIALS_PG stands."""
    import ray

    if "TUNE_MAX_PENDING_TRIALS_PG" in os.environ:
        yield
        return
    available = ray.cluster_resources()
    at_once = _trials_at_once(available.get("CPU", 0.0), available.get("GPU", 0.0), settings)
    os.environ["TUNE_MAX_PENDING_TRIALS_PG"] = str(at_once)
    try:
        yield
    finally:
        del os.environ["TUNE_MAX_PENDING_TRIALS_PG"]


def _run_datasets(spec: SweepSpec, settings: SweepSettings, raw: dict[str, RawData],
                  done: list[str]) -> str:
    """Run each dataset's study not yet done. SIGINT (Ctrl-C) and SIGTERM stop it at once, as a
    crash would (the log is exactly-once whatever moment a crash hits; Tune's experiment
    snapshot is at most TUNE_GLOBAL_CHECKPOINT_S old): nothing is marked done, running trials
    stay RUNNING in Optuna, and `Interrupted` names the folder to resume. (Tune's own SIGINT
    handling is off: its graceful stop marks interrupted trials as terminated.)"""
    previous = {signum: signal.signal(signum, _interrupted) for signum in STOP_SIGNALS}
    try:
        return _run_studies(spec, settings, raw, done)
    except Interrupted as e:
        e.folder = settings.folder
        raise
    except KeyboardInterrupt:  # a SIGINT while Ray or Tune had a handler of their own in place
        raise Interrupted(signal.SIGINT, settings.folder) from None
    except BrokenPipeError:  # stdout's reader went away (`sweep run | head`): as SIGPIPE would
        raise Interrupted(signal.SIGPIPE, settings.folder) from None
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
os.environ["TUNE_DISABLE_SIGINT_HANDLER"] = "1"


def _interrupted(signum: int, frame: Any) -> None:
    raise Interrupted(signum)


def _run_studies(spec: SweepSpec, settings: SweepSettings, raw: dict[str, RawData],
                 done: list[str]) -> str:
    from sweep.study import fail_abandoned, open_study, snapshot

    layout = settings.layout
    all_failed: list[str] = []  # datasets whose every trial failed, and the first error's words
    for dataset in spec.datasets:
        if dataset in done:
            continue
        trainable = _trainable(settings, dataset, raw[dataset])
        continuing = _prepare_resume(layout, dataset)  # the log repaired before the study
        study_url = open_study(layout, spec, dataset, settings.name, continuing or set())
        if continuing is not None:
            from ray import tune

            tuner = tune.Tuner.restore(layout.experiment(dataset), trainable=trainable,
                                       resume_unfinished=True, resume_errored=True)
        else:
            tuner = _new_tuner(spec, settings, dataset, trainable, study_url,
                               len(raw[dataset].train_y))
        try:
            with _pending_trials_allowed(settings):
                results = tuner.fit()
            fail_abandoned(settings.name, dataset)
        except Exception as e:
            unreadable = _unreadable_log(e)
            if unreadable is not None:
                raise UserError(f"sweep stopped: {unreadable}; `sweep resume "
                                f"{quote(settings.folder)}` once storage answers") from None
            cause = _storage_failure(e)
            if cause is None:
                raise
            raise UserError(f"sweep stopped: cannot write to {settings.folder} ({cause}); the "
                            "rows written so far are intact; make room, then "
                            f"`sweep resume {quote(settings.folder)}`") from None
        errors = len(results.errors)
        if errors and errors == len(results):
            last = str(results.errors[0]).strip().splitlines() or ["?"]
            all_failed.append(f"{dataset} ({last[-1].strip()[:300]})")
        elif errors:
            print(f"[{dataset}] {errors} trial(s) failed after retries; their rows so far are "
                  "in the log", flush=True)
        snapshot(layout)
        done.append(dataset)
        storage.write_text_atomic(layout.state, json.dumps({"done": done}))
    if all_failed:
        raise TrialsFailed(f"every trial failed after its retries: {'; '.join(all_failed)}; "
                           f"their tracebacks are above; results in {layout.results}")
    print(f"sweep {settings.name} finished: results in {layout.results}\n"
          f"  load them:   pandas.read_parquet({layout.results!r})\n"
          f"  analysis:    sweep analyze {quote(settings.folder)}", flush=True)
    return settings.folder


STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EFBIG}


def _causes(error: BaseException) -> Iterator[BaseException]:
    """An error and each error behind it (`__cause__`, `__context__`), once each."""
    seen: set[int] = set()
    stack: list[BaseException | None] = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        stack += [e.__cause__, e.__context__]


def _unreadable_log(error: BaseException) -> str | None:
    """The result log's own words where storage did not give it a file (LogUnreadable), found
    in the error or its causes, or in the text Tune re-raises a callback's error as."""
    from sweep.results_log import UNREADABLE, LogUnreadable

    for e in _causes(error):
        if isinstance(e, LogUnreadable):
            return str(e)
        for line in str(e).splitlines():
            if UNREADABLE in line:
                return line[line.index(UNREADABLE):].strip()
    return None


def _storage_failure(error: BaseException) -> str | None:
    """The storage problem (disk full, read-only, ...) behind an error, if that is what it is."""
    for e in _causes(error):
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return os.strerror(e.errno)
        text = str(e)
        for number in STORAGE_ERRNOS:
            if os.strerror(number) in text:  # Tune re-raises some errors as text only
                return os.strerror(number)
    return None


def _scheduler(spec: SweepSpec, settings: SweepSettings, dataset: str, train_size: int,
               stopped: dict[str, str]) -> Any:
    """The early-stopping scheduler a spec names (None: every trial runs to its end)."""
    if spec.scheduler == "frontier":
        from sweep.frontier_scheduler import FrontierScheduler

        return FrontierScheduler(spec.frontier_options, train_size, settings.layout.results,
                                 dataset, stopped)
    if spec.scheduler == "asha":
        from ray.tune.schedulers import ASHAScheduler

        # One metric: the search's accuracy (validation when held out), compared at equal
        # training samples (rungs every 3x, from one epoch of the full training set). Optuna is
        # told a stopped trial as PRUNED (sweep.study.told_state).
        return ASHAScheduler(metric="search_accuracy", mode="max", time_attr="samples_seen",
                             grace_period=train_size, max_t=10**12, reduction_factor=3)
    return None


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":  # suggestions independent of results: the same trials whatever stops
        return optuna.samplers.RandomSampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _trainable(settings: SweepSettings, dataset: str, raw: RawData) -> Any:
    """The trial function with what is not a trial setting bound to it (Ray's object store
    carries the dataset once), and the resources each trial asks for."""
    from ray import tune

    from sweep.results_log import last_logged_evaluation, logged_trial
    from trainables.tune_adapter import tune_trainable

    _share_prestarted_workers()
    layout = settings.layout
    return tune.with_resources(
        tune.with_parameters(
            tune_trainable, datasets={dataset: raw}, sweep=settings.name, search_only=SEARCH_ONLY,
            state_folder=layout.trial_state_folder,
            logged_until=partial(last_logged_evaluation, layout.results, dataset),
            logged_trial=partial(logged_trial, layout.results, dataset)),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )


def _prepare_resume(layout: SweepLayout, dataset: str) -> set[str] | None:
    """Before a dataset's study (re)starts: set aside the log files of trials Tune cannot
    continue and, for a restorable experiment, repair unreadable ones from Tune's own results.
    The trials Tune will continue, or None when there is no experiment to restore."""
    from ray import tune

    from sweep.results_log import repair_unreadable, set_aside_unknown_trials

    experiment = layout.experiment(dataset)
    # Tune writes tuner.pkl first and its experiment snapshot later: a driver that died between
    # the two left nothing to restore from (the dataset's study starts afresh, as if it had not)
    restorable = tune.Tuner.can_restore(experiment) and any(
        name.startswith("experiment_state") and name.endswith(".json")
        for name in storage.list_names(experiment))
    known = ({t.trial_id for t in tune.ExperimentAnalysis(experiment).trials} if restorable
             else set())
    abandoned = set_aside_unknown_trials(layout.results, dataset, known)
    if restorable and not storage.is_uri(experiment):
        repair_unreadable(layout.results, dataset, Path(experiment))
    if abandoned:
        print(f"[{dataset}] {len(abandoned)} trial(s) started after the last snapshot before the "
              f"crash were set aside (results/_set_aside/*.abandoned): {', '.join(abandoned)}",
              flush=True)
    return known if restorable else None


def _new_tuner(spec: SweepSpec, settings: SweepSettings, dataset: str, trainable: Any,
               study_url: str, train_size: int) -> Any:
    """A dataset's Tuner: Optuna's multi-objective search, optional ASHA, the log callbacks."""
    import optuna
    from ray import tune
    from ray.tune.logger import JsonLoggerCallback

    from sweep.callbacks import ProgressCallback, ResultLogCallback
    from sweep.study import OBJECTIVES, SweepSearch, study_name

    metric, mode = OBJECTIVES
    stopped: dict[str, str] = {}  # trial id -> why the frontier scheduler stopped it
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(
            search_alg=SweepSearch(
                space=partial(define_space, spec=spec, dataset=dataset), metric=metric, mode=mode,
                points_to_evaluate=baseline_points(spec),
                sampler=_sampler(spec.sampler, settings.seed),
                study_name=study_name(settings.name, dataset),
                storage=optuna.storages.RDBStorage(study_url), layout=settings.layout,
            ),
            scheduler=_scheduler(spec, settings, dataset, train_size, stopped),
            num_samples=spec.num_samples,
            max_concurrent_trials=settings.max_concurrent_trials,
            reuse_actors=True,
        ),
        run_config=tune.RunConfig(
            name=dataset,
            storage_path=settings.layout.tune,
            # Tune's automatic loggers are off (sweep.quiet); its JSON results stay, for the
            # log's repair after a crash.
            callbacks=[JsonLoggerCallback(), ResultLogCallback(settings.layout),
                       ProgressCallback(dataset, spec.num_samples, stopped=stopped,
                                        study=study_name(settings.name, dataset))],
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,
        ),
    )

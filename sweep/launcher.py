"""Run and resume sweeps: one Ray Tune Tuner (and one Optuna study) per dataset.

A sweep lives in `<storage>/<name>/`:
    sweep.json      the spec, the settings and the command that made it (written first)
    state.json      datasets whose study has finished
    results/        the Parquet result log (one file per trial)
    tune/<dataset>/ Ray Tune's experiment: trials and searcher state, for `resume`
    trial_state/    each running trial's latest saved states (removed when it finishes)
    optuna.db       the Optuna studies (SQLite; `optuna-dashboard sqlite:///.../optuna.db`)
Everything a user can get wrong is checked before Ray starts or anything is written.
"""

from __future__ import annotations

import dataclasses
import errno
import json
import os
import re
import sys
import time
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from search_spaces import SweepSpec, baseline_points, define_space, parse_spec
from sweep.errors import UserError
from trainables import RawData, __version__, read_raw, storage

# Tune snapshots its experiment (which trials exist) at most this often; a crash loses trials
# started since the last one (the resume sets their rows aside). Tune's default is longer.
os.environ.setdefault("TUNE_GLOBAL_CHECKPOINT_S", "2")

OBJECTIVES = (["test_accuracy", "train_flops"], ["max", "min"])
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
LOCAL_STUDY_CACHE = Path.home() / ".cache" / "subset-sweeps"


@dataclass(frozen=True)
class SweepSettings:
    """How a sweep runs (saved in sweep.json; `resume` reuses them)."""

    name: str
    storage: str  # the folder or URI holding the sweep folder
    seed: int = 0  # the sampler's seed
    cpus_per_trial: float = 1.0
    gpus_per_trial: float = 0.0
    max_failures: int = 2  # retries of a failed trial, each from its last checkpoint
    max_concurrent_trials: int | None = None

    def validate(self) -> None:
        if not NAME_PATTERN.match(self.name):
            raise UserError(f"--name {self.name!r}: use letters, digits, '.', '_' and '-'")
        if not self.cpus_per_trial > 0:
            raise UserError(f"--cpus-per-trial must be > 0, got {self.cpus_per_trial}")
        if self.gpus_per_trial < 0:
            raise UserError(f"--gpus-per-trial must be >= 0, got {self.gpus_per_trial}")
        if self.gpus_per_trial > 1 and not float(self.gpus_per_trial).is_integer():
            raise UserError("--gpus-per-trial above 1 must be a whole number of GPUs")
        if self.max_failures < 0:
            raise UserError(f"--max-failures must be >= 0, got {self.max_failures}")

    @property
    def folder(self) -> str:
        return storage.join(self.storage, self.name)


@dataclass(frozen=True)
class RayOptions:
    """Where to run: an existing cluster (`address`), or a local Ray started here."""

    address: str | None = None
    num_cpus: int | None = None
    num_gpus: float | None = None


def sweep_paths(folder: str) -> dict[str, str]:
    return {
        "spec": storage.join(folder, "sweep.json"),
        "state": storage.join(folder, "state.json"),
        "results": storage.join(folder, "results"),
        "tune": storage.join(folder, "tune"),
        "states": storage.join(folder, "trial_state"),
        "study": storage.join(folder, "optuna.db"),
    }


def run_sweep(spec: SweepSpec, settings: SweepSettings, ray_options: RayOptions) -> str:
    """Start a new sweep; returns its folder."""
    settings = dataclasses.replace(settings, storage=storage.normalise(settings.storage))
    settings.validate()
    _check_ray_options(ray_options)
    folder = settings.folder
    if storage.exists(folder):
        raise UserError(f"{folder} already exists: continue it with `sweep resume {folder}`, "
                        "or choose another --name")
    _check_local_resources(ray_options, settings)
    raw = _read_datasets(spec)
    storage.check_writable(settings.storage)
    _start_ray(ray_options, settings)
    paths = sweep_paths(folder)
    storage.make_dirs(paths["results"])
    record = {"spec": spec.to_dict(), "settings": dataclasses.asdict(settings),
              "ray": dataclasses.asdict(ray_options), "version": __version__,
              "command": " ".join(["sweep", *sys.argv[1:]]), "created": time.time()}
    storage.write_text_atomic(paths["spec"], json.dumps(record, indent=2))
    print(f"sweep {settings.name}: {', '.join(spec.datasets)}, {spec.num_samples} trials each; "
          f"results in {paths['results']}", flush=True)
    return _run_datasets(spec, settings, raw, done=[])


def resume_sweep(folder: str, ray_options: RayOptions) -> str:
    """Continue an interrupted sweep in `folder`; a finished one resumes as a no-op."""
    folder = storage.normalise(folder)
    _check_ray_options(ray_options)
    paths = sweep_paths(folder)
    if not storage.exists(paths["spec"]):
        raise UserError(f"{folder}: not a sweep folder (no sweep.json there)")
    try:
        saved = json.loads(storage.read_text(paths["spec"]))
        spec = parse_spec(saved["spec"], paths["spec"])
        settings = SweepSettings(**saved["settings"])
        done = json.loads(storage.read_text(paths["state"]))["done"] if storage.exists(
            paths["state"]) else []
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise UserError(f"{paths['spec']}: unreadable sweep record ({e})") from None
    if storage.normalise(settings.folder) != folder:  # the folder was moved: follow it
        parent, _, name = folder.rstrip("/").rpartition("/")
        settings = dataclasses.replace(settings, storage=parent, name=name)
    remaining = [d for d in spec.datasets if d not in done]
    if not remaining:
        print(f"sweep {settings.name} is complete; nothing to resume. Results in "
              f"{paths['results']}")
        return folder
    _check_local_resources(ray_options, settings)
    raw = _read_datasets(spec, remaining)
    _start_ray(ray_options, settings)
    print(f"resuming sweep {settings.name}: {', '.join(remaining)}", flush=True)
    return _run_datasets(spec, settings, raw, done=done)


def _check_ray_options(options: RayOptions) -> None:
    if options.num_cpus is not None and options.num_cpus < 1:
        raise UserError(f"--num-cpus must be >= 1, got {options.num_cpus}")
    if options.num_gpus is not None and options.num_gpus < 0:
        raise UserError(f"--num-gpus must be >= 0, got {options.num_gpus}")
    if options.address and (options.num_cpus is not None or options.num_gpus is not None):
        raise UserError("--num-cpus/--num-gpus size a local Ray; a cluster (--address) has its own")


def _check_local_resources(options: RayOptions, settings: SweepSettings) -> None:
    """A local Ray has --num-cpus/--num-gpus, or what this machine has: a trial must fit."""
    if options.address:
        return  # a cluster may scale up to fit its trials
    import torch

    have = {"CPU": options.num_cpus if options.num_cpus is not None else os.cpu_count() or 1,
            "GPU": options.num_gpus if options.num_gpus is not None
            else torch.cuda.device_count()}
    for kind, need in (("CPU", settings.cpus_per_trial), ("GPU", settings.gpus_per_trial)):
        if need > have[kind]:
            raise UserError(f"each trial asks for {need:g} {kind} but the local Ray has "
                            f"{have[kind]:g} (--num-{kind.lower()}s)")


def _read_datasets(spec: SweepSpec, datasets: list[str] | None = None) -> dict[str, RawData]:
    data_dir, download = spec.fixed.get("data_dir"), bool(spec.fixed.get("download", False))
    return {d: read_raw(d, data_dir, download) for d in (datasets or spec.datasets)}


def _start_ray(options: RayOptions, settings: SweepSettings) -> None:
    import ray

    if ray.is_initialized():
        return
    try:
        if options.address:
            ray.init(address=options.address)
        else:
            # No dashboard for a local Ray (and were one started, it would be localhost only).
            ray.init(num_cpus=options.num_cpus, num_gpus=options.num_gpus,
                     dashboard_host="127.0.0.1", include_dashboard=False)
    except (ConnectionError, ValueError, RuntimeError) as e:
        where = options.address or "a local Ray"
        raise UserError(f"cannot start or reach {where}: {str(e).splitlines()[0]}") from None
    if options.address:
        available = ray.cluster_resources()
        for kind, need in (("CPU", settings.cpus_per_trial), ("GPU", settings.gpus_per_trial)):
            if need > available.get(kind, 0.0):
                print(f"warning: each trial asks for {need:g} {kind} but the cluster has "
                      f"{available.get(kind, 0.0):g}; trials wait until it scales up", flush=True)


def _run_datasets(spec: SweepSpec, settings: SweepSettings, raw: dict[str, RawData],
                  done: list[str]) -> str:
    paths = sweep_paths(settings.folder)
    for dataset in spec.datasets:
        if dataset in done:
            continue
        tuner = _tuner(spec, settings, dataset, raw[dataset])
        try:
            results = tuner.fit()
            _fail_abandoned_study_trials(settings, dataset)
        except Exception as e:
            cause = _storage_failure(e)
            if cause is None:
                raise
            raise UserError(f"sweep stopped: cannot write to {settings.folder} ({cause}); the "
                            "rows written so far are intact; make room, then "
                            f"`sweep resume {settings.folder}`") from None
        errors = len(results.errors)
        if errors:
            print(f"[{dataset}] {errors} trial(s) failed after retries; their rows so far are "
                  "in the log", flush=True)
        _save_study(settings)
        done.append(dataset)
        storage.write_text_atomic(paths["state"], json.dumps({"done": done}))
    print(f"sweep {settings.name} finished: results in {paths['results']}\n"
          f"  load them:   pandas.read_parquet({paths['results']!r})\n"
          f"  analyse:     sweep analyze {settings.folder}", flush=True)
    return settings.folder


STORAGE_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT, errno.EACCES, errno.EFBIG}


def _storage_failure(error: BaseException) -> str | None:
    """The storage problem (disk full, read-only, ...) behind an error, if that is what it is."""
    seen: set[int] = set()
    stack = [error]
    while stack:
        e = stack.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        if isinstance(e, OSError) and e.errno in STORAGE_ERRNOS:
            return os.strerror(e.errno)
        text = str(e)
        for number in STORAGE_ERRNOS:
            if os.strerror(number) in text:  # Tune re-raises some errors as text only
                return os.strerror(number)
        stack += [e.__cause__, e.__context__]
    return None


def _study_url(settings: SweepSettings) -> str:
    if storage.is_uri(settings.folder):  # SQLite needs a local file: keep it here, copy it there
        local = LOCAL_STUDY_CACHE / settings.name / "optuna.db"
        local.parent.mkdir(parents=True, exist_ok=True)
        return f"sqlite:///{local}"
    return f"sqlite:///{sweep_paths(settings.folder)['study']}"


def _save_study(settings: SweepSettings) -> None:
    if storage.is_uri(settings.folder):
        local = Path(_study_url(settings).removeprefix("sqlite:///"))
        storage.write_bytes_atomic(sweep_paths(settings.folder)["study"], local.read_bytes())


def _fail_abandoned_study_trials(settings: SweepSettings, dataset: str) -> None:
    """Once a study's sweep is over, a trial still RUNNING in it was abandoned by a crash."""
    import optuna

    study = optuna.load_study(study_name=f"{settings.name}-{dataset}",
                              storage=_study_url(settings))
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


def _sampler(name: str, seed: int) -> Any:
    import optuna

    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed)
    return optuna.samplers.TPESampler(seed=seed)


def _tuner(spec: SweepSpec, settings: SweepSettings, dataset: str, raw: RawData) -> Any:
    import optuna
    from ray import tune
    from ray.tune.schedulers import ASHAScheduler
    from ray.tune.search.optuna import OptunaSearch

    from sweep.progress import ProgressCallback
    from sweep.results_log import (
        ResultLogCallback,
        last_logged_evaluation,
        repair_unreadable,
        set_aside_unknown_trials,
    )
    from trainables.tune_adapter import tune_trainable

    paths = sweep_paths(settings.folder)
    trainable = tune.with_resources(
        tune.with_parameters(
            tune_trainable, datasets={dataset: raw}, state_location=paths["states"],
            logged_until=partial(last_logged_evaluation, paths["results"], dataset)),
        {"cpu": settings.cpus_per_trial, "gpu": settings.gpus_per_trial},
    )
    experiment = storage.join(paths["tune"], dataset)
    restorable = tune.Tuner.can_restore(experiment)
    known = ({t.trial_id for t in tune.ExperimentAnalysis(experiment).trials} if restorable
             else set())
    abandoned = set_aside_unknown_trials(paths["results"], dataset, known)
    if restorable and not storage.is_uri(experiment):
        repair_unreadable(paths["results"], dataset, Path(experiment))
    if abandoned:
        print(f"[{dataset}] {len(abandoned)} trial(s) started after the last snapshot before the "
              f"crash were set aside (results/*.abandoned): {', '.join(abandoned)}", flush=True)
    if restorable:
        return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True,
                                  resume_errored=True)
    metric, mode = OBJECTIVES
    searcher = OptunaSearch(
        space=partial(define_space, spec=spec, dataset=dataset, sweep=settings.name),
        metric=metric, mode=mode, points_to_evaluate=baseline_points(spec),
        sampler=_sampler(spec.sampler, settings.seed), study_name=f"{settings.name}-{dataset}",
        storage=optuna.storages.RDBStorage(_study_url(settings)),
    )
    scheduler = None
    if spec.scheduler == "asha":
        # Early stopping needs one metric: test accuracy, compared at equal training samples
        # (rungs every 3x, from one epoch of the full training set). A stopped trial's last
        # evaluation is what Optuna sees: a real (accuracy, FLOPs) point, at a low budget.
        scheduler = ASHAScheduler(metric="test_accuracy", mode="max", time_attr="samples_seen",
                                  grace_period=len(raw.train_y), max_t=10**12,
                                  reduction_factor=3)
    return tune.Tuner(
        trainable,
        tune_config=tune.TuneConfig(search_alg=searcher, scheduler=scheduler,
                                    num_samples=spec.num_samples,
                                    max_concurrent_trials=settings.max_concurrent_trials),
        run_config=tune.RunConfig(
            name=dataset,
            storage_path=paths["tune"],
            callbacks=[ResultLogCallback(paths["results"], paths["states"]),
                       ProgressCallback(dataset, spec.num_samples)],
            failure_config=tune.FailureConfig(max_failures=settings.max_failures),
            verbose=0,
        ),
    )

"""The Optuna study of a sweep: derived state, rebuilt from the result log when it is missing.

Each dataset's study (`<sweep>-<dataset>`) lives in the sweep folder's `optuna.db` (SQLite).
SQLite needs a local file, so for a sweep on an object store (s3://, gs://) the driver works on a
local copy (under the temp dir, named by the folder) and snapshots it to the sweep folder as
trials finish: one whole-object PUT each time, so the folder always holds a readable study.

The Parquet log is the source of truth: before a study runs (new sweep or resume), `open_study`
downloads the snapshot, then makes it agree with the log: every trial whose last row ended it
(finished, diverged) is COMPLETE with its (test accuracy, training FLOPs). So a head node that
lost everything local (a crash before the last snapshot, a new machine) resumes with a study
that holds every finished trial.

`SweepSearch` is Ray Tune's OptunaSearch made location-independent: it pickles (Tune's tuner.pkl
and searcher state) without its study or storage, names its Optuna trials by the Tune trial id (a
user attribute), and after Tune restores it, reopens the study `open_study` prepared and finds its
trials there again, recreating one the snapshot missed.
"""

from __future__ import annotations

import hashlib
import math
import tempfile
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search.optuna import OptunaSearch

from common import storage
from common.errors import UserError
from common.layout import SweepLayout
from search_spaces import SweepSpec, replay_space

# What the search maximises and minimises: test accuracy, and compute (training plus small-set
# selection FLOPs, reported by each trial; `analysis.load.compute` derives it from a log's rows)
OBJECTIVES = (["test_accuracy", "compute_flops"], ["max", "min"])
TUNE_ID = "tune_trial_id"  # the Optuna trial's user attribute naming its Tune trial
ENDED = ("finished", "diverged", "stopped")  # a last row that ended its trial

# The study URL and sweep folder of each study this driver has opened, by study name: a restored
# searcher finds its study here, wherever the previous driver kept it, and snapshots it to the
# sweep folder as it is now (the one it pickled may be an earlier place of a moved folder).
_OPENED: dict[str, str] = {}
_FOLDERS: dict[str, SweepLayout] = {}


def study_name(sweep: str, dataset: str) -> str:
    return f"{sweep}-{dataset}"


def working_copy(layout: SweepLayout) -> Path:
    """Where this machine keeps the study: the sweep folder's own file, or for a URI folder a
    local copy under the temp dir."""
    if not storage.is_uri(layout.folder):
        return Path(layout.study)
    digest = hashlib.sha256(layout.folder.encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / "subset-sweeps" / digest / "optuna.db"


def snapshot(layout: SweepLayout) -> None:
    """Copy the local study to a URI sweep folder (one whole-object PUT); local: nothing to do."""
    if storage.is_uri(layout.folder):
        storage.write_bytes_atomic(layout.study, working_copy(layout).read_bytes())


def open_study(layout: SweepLayout, spec: SweepSpec, dataset: str, sweep: str) -> str:
    """Prepare the dataset's study for a run or a resume and return its storage URL: the latest
    snapshot (URI folders), created if missing, then reconciled with the result log."""
    from sweep.results_log import logged_trials

    local = working_copy(layout)
    local.parent.mkdir(parents=True, exist_ok=True)
    if storage.is_uri(layout.folder):
        data = storage.read_bytes(layout.study) if storage.exists(layout.study) else b""
        tmp = local.with_name(f".{local.name}.download")
        tmp.write_bytes(data)
        tmp.replace(local)  # an empty file is a new SQLite database
    url = f"sqlite:///{local}"
    name = study_name(sweep, dataset)
    directions = ["maximize" if m == "max" else "minimize" for m in OBJECTIVES[1]]
    study = optuna.create_study(storage=url, study_name=name, directions=directions,
                                load_if_exists=True)
    ended = _ended_trials({t: f.file for t, f in logged_trials(layout.results, dataset).items()
                           if f.file is not None})  # an ended trial's rows are all in its file
    by_tune_id = _by_tune_id(study)
    for tune_id, row in ended.items():
        values = [float(row[m]) for m in OBJECTIVES[0]]
        known = by_tune_id.get(tune_id)
        if known is not None and known.state == optuna.trial.TrialState.COMPLETE:
            continue
        if not all(math.isfinite(v) for v in values):
            continue  # Optuna refuses such values; Tune's own tell would have failed too
        if known is not None and known.state == optuna.trial.TrialState.RUNNING:
            study.tell(known.number, values)
            continue
        params, distributions = _params(spec, dataset, row)
        study.add_trial(optuna.trial.create_trial(
            params=params, distributions=distributions, values=values,
            user_attrs={TUNE_ID: tune_id}))
    _OPENED[name], _FOLDERS[name] = url, layout
    return url


def _by_tune_id(study: optuna.Study) -> dict[str | None, optuna.trial.FrozenTrial]:
    """A study's trials by the Tune trial each stands for."""
    return {t.user_attrs.get(TUNE_ID): t for t in study.get_trials(deepcopy=False)}


def _ended_trials(files: dict[str, str]) -> dict[str, dict[str, Any]]:
    """Tune trial id -> its last row, for the trials whose last row ended them."""
    if not files:
        return {}
    from analysis.load import final_rows, load_results

    try:
        df = load_results(list(files.values()))
    except UserError:  # none readable (each is named in a warning)
        return {}
    return {r["trial_id"]: r for r in final_rows(df).to_dict("records") if r["status"] in ENDED}


def _params(spec: SweepSpec, dataset: str, row: dict[str, Any]) -> tuple[dict, dict]:
    import json

    settings = json.loads(row["config_json"])
    params, domains = replay_space(spec, dataset, settings)
    return params, {name: _distribution(kind, args, kwargs)
                    for name, (kind, args, kwargs) in domains.items()}


def _distribution(kind: str, args: tuple, kwargs: dict) -> optuna.distributions.BaseDistribution:
    if kind == "categorical":
        return optuna.distributions.CategoricalDistribution(list(args[0]))
    if kind == "int":
        return optuna.distributions.IntDistribution(*args, **kwargs)
    return optuna.distributions.FloatDistribution(*args, **kwargs)


def fail_abandoned(sweep: str, dataset: str) -> None:
    """Once a study's sweep is over, a trial still RUNNING in it was abandoned by a crash."""
    name = study_name(sweep, dataset)
    study = optuna.load_study(study_name=name, storage=_OPENED[name])
    for trial in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.RUNNING,)):
        study.tell(trial.number, state=optuna.trial.TrialState.FAIL)


class SweepSearch(OptunaSearch):
    """OptunaSearch that pickles without its study and snapshots it as trials finish."""

    def __init__(self, *args: Any, layout: SweepLayout, **kwargs: Any) -> None:
        self._layout = layout
        super().__init__(*args, **kwargs)

    def suggest(self, trial_id: str) -> dict | None:
        if self._ot_study is None:  # restored without a saved searcher state
            self._reopen()
        config = super().suggest(trial_id)
        self._ot_trials[trial_id].set_user_attr(TUNE_ID, trial_id)
        return config

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if self._ot_study is None:
            self._reopen()
        super().on_trial_complete(trial_id, result, error)
        snapshot(self._layout)

    # ---- pickling: Tune saves the searcher with the experiment and restores it on resume ------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        study = state.pop("_ot_study", None)
        trials = state.pop("_ot_trials", {})
        state.pop("_storage", None)
        state["_study_name"] = study.study_name if study is not None else self._study_name
        state["_trial_templates"] = {tune_id: (t.params, t.distributions)
                                     for tune_id, t in trials.items()}
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        templates = state.pop("_trial_templates", {})
        self.__dict__.update(state)
        self._storage, self._ot_study, self._ot_trials = None, None, {}
        self._pending_templates = templates

    def save(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "wb") as f:
            pickle.dump(self.__getstate__(), f)

    def restore(self, checkpoint_path: str) -> None:
        import pickle

        with open(checkpoint_path, "rb") as f:
            self.__setstate__(pickle.load(f))
        self._reopen()

    def _reopen(self) -> None:
        """Find the study `open_study` prepared, and this searcher's trials in it by Tune id."""
        url = _OPENED.get(self._study_name)
        if url is None:
            raise RuntimeError(f"study {self._study_name} was not opened before the restore")
        self._layout = _FOLDERS.get(self._study_name, self._layout)
        self._storage = optuna.storages.RDBStorage(url)
        self._ot_study = optuna.load_study(study_name=self._study_name, storage=self._storage,
                                           sampler=self._sampler)
        by_tune_id = _by_tune_id(self._ot_study)
        for tune_id, (params, distributions) in self._pending_templates.items():
            found = by_tune_id.get(tune_id)
            if found is None:  # started after the last snapshot: recreate it, still running
                self._ot_study.add_trial(optuna.trial.create_trial(
                    state=optuna.trial.TrialState.RUNNING, params=params,
                    distributions=distributions, user_attrs={TUNE_ID: tune_id}))
                found = self._ot_study.get_trials(deepcopy=False)[-1]
            self._ot_trials[tune_id] = optuna.trial.Trial(self._ot_study, found._trial_id)
        self._pending_templates = {}

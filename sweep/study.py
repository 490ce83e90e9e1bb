"""The Optuna study of a sweep: derived state, rebuilt from the result log when it is missing.

Each dataset's study (`<sweep>-<dataset>`) lives in the sweep folder's `optuna.db` (SQLite).
SQLite needs a local file, so for a sweep on an object store (s3://, gs://) the driver works on a
local copy (under the temp dir, named by the folder) and snapshots it to the sweep folder as
trials finish: one whole-object PUT each time, so the folder always holds a readable study.

The Parquet log is the source of truth: before a study runs (new sweep or resume), `open_study`
downloads the snapshot, then makes it agree with the log: every trial whose last row ended it is
there as the live search told it (`told_state`): COMPLETE with its objectives if it finished,
PRUNED if a scheduler stopped it or it diverged. So a head node that lost everything local (a
crash before the last snapshot, a new machine) resumes with a study that holds every ended trial.

`SweepSearch` is Ray Tune's OptunaSearch made location-independent: it pickles (Tune's tuner.pkl
and searcher state) without its study or storage, names its Optuna trials by the Tune trial id (a
user attribute), and after Tune restores it, reopens the study `open_study` prepared and finds its
trials there again, recreating one the snapshot missed.
"""

from __future__ import annotations

import hashlib
import math
import random
import tempfile
import warnings
from pathlib import Path
from typing import Any

import optuna
from ray.tune.search import Searcher
from ray.tune.search.optuna import OptunaSearch

from common import storage
from common.errors import UserError
from common.layout import SweepLayout
from common.records import ENDED, compute_flops, search_accuracy
from search_spaces import SweepSpec, beyond_data, replay_space

# What the search maximises and minimises: accuracy (on validation when held out, else test) and
# compute (training plus small-set selection FLOPs), reported by each trial and derived from a
# log's rows by the same functions
OBJECTIVES = (["search_accuracy", "compute_flops"], ["max", "min"])
OBJECTIVE_OF = {"search_accuracy": search_accuracy, "compute_flops": compute_flops}
TUNE_ID = "tune_trial_id"  # the Optuna trial's user attribute naming its Tune trial
REPEAT_OF = "repeat_of"  # a sampler's repeat of a configuration (told FAIL, never run): of which
BEYOND_DATA = "beyond_data"  # a drawn Q its model cannot have on the data (told FAIL, never run)
REDRAWS = 20  # repeats in a row before a configuration not yet run is drawn by lot
SET_ASIDE = "set_aside"  # the study's attribute: numbers of trials whose rows left the log
_TOLD = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
_RAN = (*_TOLD, optuna.trial.TrialState.RUNNING, optuna.trial.TrialState.WAITING)

# The study URL and sweep folder of each study this driver has opened, by study name: a restored
# searcher finds its study here, wherever the previous driver kept it, and snapshots it to the
# sweep folder as it is now (the one it pickled may be an earlier place of a moved folder).
_OPENED: dict[str, str] = {}
# Studies whose search ended before num_samples in this driver (nothing left to run): their
# progress bars end at what ran
RAN_OUT: set[str] = set()
_FOLDERS: dict[str, SweepLayout] = {}


def told_state(status: str | None) -> optuna.trial.TrialState:
    """How an ended trial is told to Optuna, by its last record's status. Only a trial that
    finished is COMPLETE with its last point. One a scheduler stopped (its last record still
    says `running`; the log says `stopped`) was beaten by others, and a diverged one learned
    nothing: told with their last points, their low compute would put them on Optuna's front and
    draw the sampler to the configurations that lost. PRUNED puts them with the poor trials."""
    if status == "finished":
        return optuna.trial.TrialState.COMPLETE
    return optuna.trial.TrialState.PRUNED


def objective_values(record: dict[str, Any]) -> list[float]:
    return [OBJECTIVE_OF[name](record) for name in OBJECTIVES[0]]


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


def open_study(layout: SweepLayout, spec: SweepSpec, dataset: str, sweep: str,
               continuing: set[str] = frozenset()) -> str:
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
    with warnings.catch_warnings():  # experimental since Optuna 3.2, and still there
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.set_metric_names(OBJECTIVES[0])  # named in optuna-dashboard
    logged = logged_trials(layout.results, dataset)
    _set_aside(study, live=set(logged) | set(continuing))
    ended = _ended_trials({t: f.file for t, f in logged.items()
                           if f.file is not None})  # an ended trial's rows are all in its file
    by_tune_id = _by_tune_id(study)
    for tune_id, row in ended.items():
        state = told_state(row["status"])
        values = objective_values(row) if state == optuna.trial.TrialState.COMPLETE else None
        known = by_tune_id.get(tune_id)
        if known is not None and known.state in _TOLD:
            continue  # told already (a sweep made before stopped trials were PRUNED: COMPLETE)
        if known is not None and known.state == optuna.trial.TrialState.FAIL:
            known = None  # failed, then finished when Tune retried it: told anew below
        if known is not None:  # RUNNING: the driver stopped before telling it
            if values is None or all(math.isfinite(v) for v in values):
                study.tell(known.number, values, state=state)
            continue  # (Optuna refuses non-finite values; Tune's own tell would have failed)
        _add_ended(study, tune_id, *_params(spec, dataset, row), row["status"],
                   objective_values(row))
    _OPENED[name], _FOLDERS[name] = url, layout
    return url


def _add_ended(study: optuna.Study, tune_id: str, params: dict[str, Any],
               distributions: dict[str, Any], status: str | None,
               values: list[float]) -> optuna.trial.FrozenTrial | None:
    """Add an ended trial as the live search tells it (`told_state`: COMPLETE with `values`
    or PRUNED); None, and nothing added, where its values are not finite (Optuna refuses them,
    and Tune's own tell would have failed too)."""
    state = told_state(status)
    if state != optuna.trial.TrialState.COMPLETE:
        values = None
    elif not all(math.isfinite(v) for v in values):
        return None
    study.add_trial(optuna.trial.create_trial(params=params, distributions=distributions,
                                              values=values, state=state,
                                              user_attrs={TUNE_ID: tune_id}))
    return study.get_trials(deepcopy=False)[-1]


def _set_aside(study: optuna.Study, live: set[str]) -> None:
    """Trials of the study whose Tune trial is neither in the log nor continued by Tune (their
    files were set aside after a crash, or the experiment starts afresh) no longer count: a
    running one is failed, and the numbers of the others are kept in the study's SET_ASIDE
    attribute, so that their configurations may run again (`SweepSearch`)."""
    aside = set(study.user_attrs.get(SET_ASIDE, []))
    for trial in study.get_trials(deepcopy=False):
        tune_id = trial.user_attrs.get(TUNE_ID)
        if tune_id in live or (tune_id is None and trial.state != optuna.trial.TrialState.RUNNING):
            continue
        if trial.state == optuna.trial.TrialState.RUNNING:  # no Tune id: asked, never handed out
            study.tell(trial.number, state=optuna.trial.TrialState.FAIL)
        elif trial.state in _TOLD:
            aside.add(trial.number)
    study.set_user_attr(SET_ASIDE, sorted(aside))


def ran_trials(study: optuna.Study) -> list[optuna.trial.FrozenTrial]:
    """The study's trials that ran, are running or wait to run, less those set aside."""
    aside = set(study.user_attrs.get(SET_ASIDE, []))
    return [t for t in study.get_trials(deepcopy=False, states=_RAN) if t.number not in aside]


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


def _key(params: dict[str, Any]) -> tuple:
    return tuple(sorted(params.items()))


def _lacking(points: list[dict[str, Any]],
             held: list[optuna.trial.FrozenTrial]) -> list[dict[str, Any]]:
    """The baselines (`points`, each `{strategy: none, ...}`) no trial of `held` stands for; one
    listed twice needs two. An enqueued trial stands for the point it was enqueued with; a
    trial rebuilt from the log (it carries no such mark), for a point its parameters match."""
    unmatched = list(held)
    lacking = []
    for point in points:
        match = next((t for t in unmatched if _stands_for(t, point)), None)
        if match is None:
            lacking.append(point)
        else:
            unmatched.remove(match)
    return lacking


def _stands_for(trial: optuna.trial.FrozenTrial, point: dict[str, Any]) -> bool:
    if "fixed_params" in trial.system_attrs:
        return _key(trial.system_attrs["fixed_params"]) == _key(point)
    # strategy is no parameter where it is a constant (ordinary training only as baselines)
    return all(trial.params.get(key, "none" if key == "strategy" else None) == value
               for key, value in point.items())


class SweepSearch(OptunaSearch):
    """OptunaSearch that pickles without its study and snapshots it as trials finish."""

    def __init__(self, *args: Any, layout: SweepLayout, **kwargs: Any) -> None:
        self._layout = layout
        super().__init__(*args, **kwargs)

    def suggest(self, trial_id: str) -> dict | str | None:
        """A configuration no trial of the study has run or is running (training is
        deterministic: the same again would only repeat its records), or a listed baseline
        (Optuna's enqueued trials: run as the sweep file lists them). A sampler's repeat is
        told as FAIL (neutral to the sampler, marked `repeat_of`) and the sampler asked again,
        and so is a Q its model cannot have on this data (marked `beyond_data`: the "subset"
        would be the whole training set); after REDRAWS such draws in a row, a runnable
        configuration not yet run is drawn by lot: from those left where the space can be
        listed, else from the whole space (`_by_lot`). Where none is left the study is over
        (FINISHED, and the study named in RAN_OUT)."""
        if self._ot_study is None:  # restored without a saved searcher state
            self._reopen()
        for _ in range(REDRAWS):
            config = super().suggest(trial_id)
            trial = self._ot_trials[trial_id]
            # a baseline the sweep file lists runs as listed, twice if listed twice
            twin = None if trial._fixed_params else self._twin(trial)
            beyond = None if twin is not None else beyond_data(config)
            if twin is None and beyond is None:
                trial.set_user_attr(TUNE_ID, trial_id)
                return config
            if twin is not None:
                trial.set_user_attr(REPEAT_OF, twin)
            else:
                trial.set_user_attr(BEYOND_DATA, beyond)
                self._say_beyond_data(beyond)
            self._ot_study.tell(trial, state=optuna.trial.TrialState.FAIL)
            del self._ot_trials[trial_id]
        # the sampler keeps to what has run or cannot run: a new configuration by lot
        unexplored = self._unexplored()
        lot = random.Random(len(self._ot_study.get_trials(deepcopy=False)))
        drawn = lot.choice(unexplored) if unexplored else (
            self._by_lot(lot) if unexplored is None else None)
        if drawn is not None:
            self._ot_study.enqueue_trial(drawn)
        elif self._space_of() is not None:
            why = ("every configuration of its space has run or is running"
                   if unexplored == [] and self._grid
                   else "no configuration of its space that has not run can run (each draw "
                   "was a repeat, or a Q beyond the data)")
            print(f"{self._study_name}: {why}; no more trials", flush=True)
            RAN_OUT.add(self._study_name)
            return Searcher.FINISHED
        # the one drawn; for a space other than `define_space`, the sampler's repeat
        config = super().suggest(trial_id)
        self._ot_trials[trial_id].set_user_attr(TUNE_ID, trial_id)
        return config

    def _setup_study(self, mode: Any) -> None:
        """Optuna's study, with the baselines enqueued that it does not hold yet (a restart
        with a new searcher enqueued them all again; one listed twice is held twice)."""
        try:
            held = ran_trials(optuna.load_study(study_name=self._study_name,
                                                storage=self._storage))
        except KeyError:  # no such study yet
            held = []
        self._points_to_evaluate = _lacking(self._points_to_evaluate, held)
        super()._setup_study(mode)

    def _twin(self, trial: optuna.trial.Trial) -> int | None:
        """The number of another trial with the same configuration that ran or is running."""
        key = _key(trial.params)
        for other in ran_trials(self._ot_study):
            if other.number != trial.number and _key(other.params) == key:
                return other.number
        return None

    def _space_of(self) -> tuple[SweepSpec, str] | None:
        """The sweep's spec and dataset this searcher's space is bound to (None: another)."""
        space = getattr(self._space, "keywords", {})  # partial(define_space, spec, dataset)
        return (space["spec"], space["dataset"]) if {"spec", "dataset"} <= set(space) else None

    def _runnable(self, params: dict[str, Any]) -> bool:
        spec, dataset = self._space_of()
        return beyond_data({**spec.constants(dataset, params.get("strategy")), **params}) is None

    def _unexplored(self) -> list[dict] | None:
        """The space's runnable configurations no trial has run (None: the space cannot be
        listed)."""
        from search_spaces.space import enumerate_space

        if "_grid" not in self.__dict__:
            bound = self._space_of()
            grid = enumerate_space(*bound) if bound else None
            self._grid = None if grid is None else [p for p in grid if self._runnable(p)]
        if self._grid is None:
            return None
        ran = {_key(t.params) for t in ran_trials(self._ot_study)}
        return [params for params in self._grid if _key(params) not in ran]

    def _by_lot(self, lot: random.Random, tries: int = 1000) -> dict[str, Any] | None:
        """A runnable configuration of an unbounded space that no trial has run, drawn by lot
        (None: not found in `tries` draws)."""
        from search_spaces.space import draw_by_lot

        bound = self._space_of()
        if bound is None:
            return None
        ran = {_key(t.params) for t in ran_trials(self._ot_study)}
        for _ in range(tries):
            params = draw_by_lot(*bound, lot)
            if _key(params) not in ran and self._runnable(params):
                return params
        return None

    def _say_beyond_data(self, reason: str) -> None:
        """Say once per study that draws of a Q beyond the data are not run."""
        if self.__dict__.get("_said_beyond_data"):
            return
        self._said_beyond_data = True
        print(f"{self._study_name}: a draw whose {reason} is not run; such draws are drawn "
              f"again (marked {BEYOND_DATA} in the study)", flush=True)

    def on_trial_complete(self, trial_id: str, result: dict | None = None,
                          error: bool = False) -> None:
        if self._ot_study is None:
            self._reopen()
        if self._told_already(trial_id):
            # A resumed sweep's trial that had ended before the last driver stopped (after
            # Tune's last snapshot): the log told Optuna (`open_study`) and the trial only
            # reported its logged end again. Optuna refuses a second tell, and Tune's searcher
            # says so in a warning with the whole result.
            self._completed_trials.add(trial_id)
            snapshot(self._layout)
            return
        status = (result or {}).get("status")  # the trial's last record's
        if status and not error and self._failed_before(trial_id):
            self._tell_anew(trial_id, result)
            snapshot(self._layout)
            return
        if (status and not error and trial_id not in self._completed_trials
                and told_state(status) == optuna.trial.TrialState.PRUNED):
            # told already if the driver restarted after telling it and Tune ran it again
            self._ot_study.tell(self._ot_trials[trial_id], state=optuna.trial.TrialState.PRUNED,
                                skip_if_finished=True)
            self._completed_trials.add(trial_id)
        else:
            super().on_trial_complete(trial_id, result, error)
        snapshot(self._layout)

    def _state(self, trial_id: str) -> optuna.trial.TrialState | None:
        """The state of the trial's Optuna trial (None: none handed out)."""
        trial = self._ot_trials.get(trial_id)
        return None if trial is None else self._storage.get_trial(trial._trial_id).state

    def _failed_before(self, trial_id: str) -> bool:
        """Whether the trial's Optuna trial was told FAIL: it failed in an earlier driver, and
        `sweep resume` ran it again (Tune reruns errored trials). Optuna takes no second tell,
        and Tune's searcher would drop the end with a warning: it is told anew."""
        return self._state(trial_id) == optuna.trial.TrialState.FAIL

    def _tell_anew(self, trial_id: str, result: dict[str, Any]) -> None:
        """A new Optuna trial for a rerun of a failed one, told its end as `open_study` tells a
        logged one (the failed trial stays, as FAIL, out of `ran_trials`)."""
        failed = self._storage.get_trial(self._ot_trials[trial_id]._trial_id)
        values = [float(result[name]) for name in OBJECTIVES[0]]  # as Tune's searcher tells
        told = _add_ended(self._ot_study, trial_id, failed.params, failed.distributions,
                          result.get("status"), values)
        if told is not None:
            self._ot_trials[trial_id] = optuna.trial.Trial(self._ot_study, told._trial_id)
        self._completed_trials.add(trial_id)

    def _told_already(self, trial_id: str) -> bool:
        """Whether the trial's Optuna trial was told its end (COMPLETE or PRUNED)."""
        return self._state(trial_id) in _TOLD

    # ---- pickling: Tune saves the searcher with the experiment and restores it on resume ------

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state.pop("_grid", None)  # listed again when needed
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
        # a sweep saved before its objective was named search_accuracy: trials report both
        self._metric = list(OBJECTIVES[0])
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
        # A study rebuilt from the log (its snapshot lost with the head node) lacks the
        # baselines that were waiting to run: enqueued once, in the searcher's first study.
        # A trial that failed stands for its baseline too: Tune runs it again.
        failed = self._ot_study.get_trials(deepcopy=False,
                                           states=(optuna.trial.TrialState.FAIL,))
        standing = {t.user_attrs[TUNE_ID]: t for t in failed if TUNE_ID in t.user_attrs}
        standing.update({t.user_attrs.get(TUNE_ID, f"#{t.number}"): t
                         for t in ran_trials(self._ot_study)})  # one per Tune trial
        for point in _lacking(self._points_to_evaluate, list(standing.values())):
            self._ot_study.enqueue_trial(point)

"""A sweep folder's layout: where each of its files lives, and how per-trial files are named.

    <storage>/<name>/
        sweep.json                  the spec, the settings and the command that made the sweep
        state.json                  datasets whose study has finished
        lock.json                   the lease of the one driver running the sweep
        results/<dataset>-<trial>.parquet   the result log: one file per trial
        results/_live/<dataset>-<trial>.<seq>.parquet   a running trial's newest rows, not yet
                                    merged into its file (`common.result_files`)
        results/_set_aside/         files taken out of the log, kept for inspection: a damaged
                                    trial file (`.corrupt`), the rows of trials a resumed sweep
                                    cannot continue (`.abandoned`)
        tune/<dataset>/             Ray Tune's experiment (trials, searcher), for `resume`
        trial_state/<trial>/<evaluation>.pt   a running trial's newest saved states
        optuna.db                   the Optuna studies, one per dataset (SQLite)
        analysis/                   what `sweep analyze` writes by default

The result log is the source of truth; the rest can be rebuilt or is only needed to resume.
"""

from __future__ import annotations

from dataclasses import dataclass

from common import storage

PARQUET = ".parquet"
STATE = ".pt"


# Sweep folders moved or copied since their Tune experiment was pickled: old location -> new,
# in this process (`sweep resume` of a moved folder). What Tune restores from its pickles (the
# searcher, the callbacks, the scheduler) follows a move through `relocated`.
_MOVED: dict[str, str] = {}


def follow_move(old: str, new: str) -> None:
    """Record that the sweep folder `old` is now at `new`."""
    _MOVED[old.rstrip("/")] = new.rstrip("/")


def relocated(path: str) -> str:
    """`path`, or where it is now if it lies in a sweep folder that was moved."""
    for old, new in _MOVED.items():
        if path == old or path.startswith(old + "/"):
            return new + path[len(old):]
    return path


def sweep_folder(path: str) -> str:
    """The sweep folder a user named: `path` itself, or the folder above it where `path` is a
    sweep's results/ (what `sweep run` prints as where the results are)."""
    path = path.rstrip("/") or path
    parent, _, last = path.rpartition("/")
    if (last == "results" and parent and not storage.exists(SweepLayout(path).spec)
            and storage.exists(SweepLayout(parent).spec)):
        return parent
    return path


@dataclass(frozen=True)
class SweepLayout:
    """The paths of one sweep folder (a local path or a URI)."""

    folder: str

    def __setstate__(self, state: dict) -> None:  # unpickled: follow a moved folder
        object.__setattr__(self, "folder", relocated(state["folder"]))

    @property
    def spec(self) -> str:
        return storage.join(self.folder, "sweep.json")

    @property
    def state(self) -> str:
        return storage.join(self.folder, "state.json")

    @property
    def lock(self) -> str:
        return storage.join(self.folder, "lock.json")

    @property
    def results(self) -> str:
        return storage.join(self.folder, "results")

    @property
    def tune(self) -> str:
        return storage.join(self.folder, "tune")

    @property
    def trial_states(self) -> str:
        return storage.join(self.folder, "trial_state")

    @property
    def study(self) -> str:
        return storage.join(self.folder, "optuna.db")

    @property
    def analysis(self) -> str:
        return storage.join(self.folder, "analysis")

    def experiment(self, dataset: str) -> str:
        """Ray Tune's experiment folder for one dataset's study."""
        return storage.join(self.tune, dataset)

    def result_file(self, dataset: str, trial_id: str) -> str:
        return storage.join(self.results, result_file_name(dataset, trial_id))

    @property
    def segments(self) -> str:
        return segments_folder(self.results)

    def trial_state_folder(self, trial_id: str) -> str:
        return storage.join(self.trial_states, trial_id)


def result_file_name(dataset: str, trial_id: str) -> str:
    return f"{dataset}-{trial_id}{PARQUET}"


def trial_of_result_file(name: str, dataset: str) -> str | None:
    """The trial id of a log file's name, if it is one of `dataset`'s (dataset names hold no
    '-')."""
    prefix = f"{dataset}-"
    if name.startswith(prefix) and name.endswith(PARQUET) and len(name) > len(prefix + PARQUET):
        return name[len(prefix):-len(PARQUET)]
    return None


SEGMENTS = "_live"  # a leading "_": pandas/pyarrow leave it out of `read_parquet(results)`


def segments_folder(results: str) -> str:
    return storage.join(results, SEGMENTS)


SET_ASIDE = "_set_aside"  # as `_live`, out of `read_parquet(results)`, which reads any name


def set_aside_location(results: str, file: str, why: str) -> str:
    """Where a file of the log taken out of it goes: `results/_set_aside/<name>.<why>`."""
    return storage.join(results, SET_ASIDE, f"{file.rsplit('/', 1)[-1]}.{why}")


def segment_file_name(dataset: str, trial_id: str, seq: int) -> str:
    return f"{dataset}-{trial_id}.{seq:08d}{PARQUET}"


def split_segment_file_name(name: str) -> tuple[str, int] | None:
    """(the trial's result file name, the segment's sequence number) of a segment's name."""
    stem, dot, seq = name[:-len(PARQUET)].rpartition(".")
    if not name.endswith(PARQUET) or not dot or not seq.isdigit():
        return None
    return f"{stem}{PARQUET}", int(seq)


def state_file_name(evaluation: int) -> str:
    return f"{evaluation:06d}{STATE}"


def evaluation_of_state_file(name: str) -> int | None:
    stem = name[:-len(STATE)]
    return int(stem) if name.endswith(STATE) and stem.isdigit() else None

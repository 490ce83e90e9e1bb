"""The local Ray a sweep starts: the modules its idle workers import ahead exist, and Tune's trial
actors carry no runtime_env, so that they run in those workers rather than in new processes
(bench/quick_vs_loop.py measures what that saves)."""

from __future__ import annotations

import importlib

import pytest

from sweep import launcher


@pytest.mark.parametrize("module", launcher.LOCAL_RAY_SYSTEM_CONFIG["preload_python_modules"])
def test_every_module_the_workers_import_ahead_exists(module):
    importlib.import_module(module)  # Ray only logs a failed preload; a typo would go unseen


def test_trial_actors_get_no_runtime_env_unless_credentials_must_travel(monkeypatch):
    from ray.tune.execution.class_cache import ENV_VARS_TO_PROPAGATE, _ActorClassCache
    from ray.tune.trainable import Trainable

    class Trial(Trainable):
        pass

    for name in ENV_VARS_TO_PROPAGATE:
        monkeypatch.delenv(name, raising=False)
    launcher._share_prestarted_workers()
    assert not _ActorClassCache().get(Trial)._default_options["runtime_env"].get("env_vars")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "key")  # an S3 sweep: Tune must still pass it on
    runtime_env = _ActorClassCache().get(Trial)._default_options["runtime_env"]
    assert runtime_env == {"env_vars": {"AWS_ACCESS_KEY_ID": "key"}}


def test_shutting_down_the_local_ray_ends_every_process_it_started():
    import ray

    from sweep import cli

    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False,
             _system_config=launcher.LOCAL_RAY_SYSTEM_CONFIG)
    node = ray._private.worker._global_node
    processes = {kind: [info.process for info in infos]
                 for kind, infos in node.all_processes.items()}
    assert processes.get("monitor"), "no autoscaler monitor to stop first"
    cli._shut_down_ray()
    assert not ray.is_initialized()
    assert {kind: [p.pid for p in started if p.poll() is None]
            for kind, started in processes.items()} == {kind: [] for kind in processes}


@pytest.mark.parametrize("cpus, gpus, settings, expected", [
    (2, 0, {}, 2),
    (16, 0, {"cpus_per_trial": 4}, 4),
    (16, 1, {"gpus_per_trial": 0.25}, 4),  # the GPU is what runs out first
    (16, float("inf"), {"gpus_per_trial": 0.5}, 16),  # GPUs not counted yet: CPUs decide
    (16, 0, {"max_concurrent_trials": 3}, 3),
    (1, 0, {"cpus_per_trial": 2}, 1),  # never fewer than one
])
def test_trials_at_once(cpus, gpus, settings, expected):
    from sweep.settings import SweepSettings

    settings = SweepSettings(name="x", storage="s", **settings)
    assert launcher._trials_at_once(cpus, gpus, settings) == expected

"""What a trial's worker prints when Python cannot raise an exception (in a weakref callback):
the SystemExit of Ray's SIGTERM handler is dropped, anything else is printed as before."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

# A weakref callback raising each exception; then with the hook a trial's worker uses.
FINALIZERS = textwrap.dedent("""
    import sys, weakref

    class Box:
        pass

    def finalizer_raising(error):
        def callback(_):
            raise error

        box = Box()
        ref = weakref.ref(box, callback)
        del box  # the callback runs here
        return ref

    if sys.argv[1] == "hooked":
        from trainables.tune_adapter import drop_ignored_exits
        sys.unraisablehook = drop_ignored_exits
    finalizer_raising(SystemExit(1))
    finalizer_raising(ValueError("a finalizer's own bug"))
    print("still running", flush=True)
""")

# A real Ray worker gets SIGTERM while its main thread runs weakref callbacks (as at the end of a
# sweep, when Tune removes placement groups of workers that are still exiting); the driver prints
# what the worker wrote, as `sweep run` does.
SIGTERM_IN_CALLBACK = textwrap.dedent("""
    import os, signal, sys, time
    import ray

    hooked = sys.argv[1] == "hooked"
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=True)

    @ray.remote
    class Worker:
        def pid(self):
            if hooked:
                from trainables.tune_adapter import drop_ignored_exits
                sys.unraisablehook = drop_ignored_exits
            return os.getpid()

        def finalize_for(self, seconds):
            import weakref

            class Box:
                pass

            def callback(_):  # ~all of the main thread's time is spent in here
                until = time.perf_counter() + 0.01
                while time.perf_counter() < until:
                    pass

            end = time.time() + seconds
            while time.time() < end:
                box = Box()
                ref = weakref.ref(box, callback)
                del box, ref

    worker = Worker.remote()
    pid = ray.get(worker.pid.remote())
    worker.finalize_for.remote(4)
    time.sleep(1)
    os.kill(pid, signal.SIGTERM)
    time.sleep(3)  # the driver prints the worker's output as it comes
    ray.shutdown()
    print("driver done", flush=True)
""")


def run(script: str, mode: str) -> str:
    result = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True,
                            timeout=120, check=True)
    return result.stdout + result.stderr


def test_python_prints_an_exit_it_cannot_raise() -> None:
    """Without the hook, the SystemExit is printed with its traceback (what reached the console)."""
    output = run(FINALIZERS, "plain")
    assert "still running" in output
    assert "SystemExit: 1" in output
    assert "ValueError: a finalizer's own bug" in output


def test_a_trials_worker_drops_only_the_exit() -> None:
    output = run(FINALIZERS, "hooked")
    assert "still running" in output
    assert "SystemExit" not in output
    assert "Exception ignored in" in output  # the ValueError, printed as before
    assert "ValueError: a finalizer's own bug" in output
    assert output.count("Traceback") == 1


@pytest.mark.slow
@pytest.mark.parametrize("mode", ["plain", "hooked"])
def test_sigterm_in_a_ray_workers_callback(mode: str) -> None:
    output = run(SIGTERM_IN_CALLBACK, mode)
    assert "driver done" in output
    if mode == "plain":  # what a sweep's console showed at times
        assert "Exception ignored in" in output and "SystemExit: 1" in output
        assert "sigterm_handler" in output
    else:
        assert "SystemExit" not in output and "Exception ignored" not in output


def test_warning_lines_are_set_up_once_however_many_trials_a_worker_runs(capsys) -> None:
    import warnings

    from common.errors import format_warning_lines, warn

    before = warnings.showwarning
    try:
        format_warning_lines()
        first = warnings.showwarning
        for _ in range(3 * sys.getrecursionlimit()):  # a reused worker: once per trial
            format_warning_lines()
        assert warnings.showwarning is first  # not a wrapper of a wrapper of ...
        with warnings.catch_warnings():
            warnings.simplefilter("always")
            warn("a skipped file")  # wrapped 3,000 deep, this raised RecursionError
        assert capsys.readouterr().err == "warning: a skipped file\n"
    finally:
        warnings.showwarning = before

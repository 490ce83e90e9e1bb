from cli import run_sweep


def test_trial_prints_a_table_ending_above_90_percent():
    result = run_sweep("trial", "--dataset", "digits", "--strategy", "random",
                       "--overdetermination-ratio", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "K=757" in lines[0] and "Q=2" in lines[0]
    header = lines[1].split()
    assert header[:3] == ["phase", "epoch", "samples"]
    assert {"trainset_loss", "val_acc", "test_acc"} <= set(header)
    last_row = dict(zip(header, lines[-2].split(), strict=True))
    assert last_row["phase"] == "finetune" and last_row["status"] == "finished"
    assert float(last_row["test_acc"]) > 0.90
    assert 0 < float(last_row["trainset_loss"]) < 0.5 and last_row["val_acc"] == "-"
    assert lines[-1].startswith("finished (max_epochs): test accuracy")


def test_trial_boolean_flags_and_budget():
    result = run_sweep("trial", "--strategy", "class_mean", "--pretrain-epochs", "3",
                       "--augment", "--flops-budget", "2e8", "--model", "mlp")
    assert result.returncode == 0, result.stderr
    assert "finished (flops_budget)" in result.stdout
    # compute as the search counts it: the class means of digits' 1,437 training images of 64
    # pixels cost N*D adds and M*D divisions, 1,437*64 + 10*64 = 92,608 FLOPs
    assert "GFLOPs of compute (" in result.stdout
    assert "GFLOPs of training, 92,608 FLOPs selecting the small set), in " in result.stdout


def test_the_last_line_adds_the_small_sets_selection_to_training():
    from sweep.trial_command import spent

    assert spent({"train_flops": 983_320_416, "selection_flops": 280_331_520}) == (
        "1.264 GFLOPs of compute (0.983 GFLOPs of training, 0.280 GFLOPs selecting the small set)")
    assert spent({"train_flops": 983_320_416, "selection_flops": 0}) == (
        "0.983 GFLOPs of training")


def test_a_reader_that_goes_away_stops_the_trial_quietly():
    # `sweep trial | head -1`: the rows after the reader left are not written, and neither is
    # a BrokenPipeError's traceback; the exit status is a pipe's, 128 + SIGPIPE
    import signal
    import subprocess

    from cli import sweep_command

    trial = subprocess.Popen([*sweep_command(), "trial", "--finetune-epochs", "30"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert "ordinary training" in trial.stdout.readline()
    trial.stdout.close()
    _, errors = trial.communicate(timeout=120)
    assert (trial.returncode, errors) == (128 + signal.SIGPIPE, "")

from cli import run_sweep


def test_trial_prints_a_table_ending_above_90_percent():
    result = run_sweep("trial", "--dataset", "digits", "--strategy", "random",
                       "--overdetermination-ratio", "2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "K=757" in lines[0] and "Q=2" in lines[0]
    assert lines[1].split()[:3] == ["phase", "epoch", "samples"]
    last_row = lines[-2].split()
    assert last_row[0] == "finetune" and last_row[-1] == "finished"
    assert float(last_row[6]) > 0.90
    assert lines[-1].startswith("finished (max_epochs): test accuracy")


def test_trial_boolean_flags_and_budget():
    result = run_sweep("trial", "--strategy", "class_mean", "--pretrain-epochs", "3",
                       "--augment", "--flops-budget", "2e8", "--model", "mlp")
    assert result.returncode == 0, result.stderr
    assert "finished (flops_budget)" in result.stdout

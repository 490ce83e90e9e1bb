import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from trainables import TrialConfig, TrialRunner, build_model
from trainables.flops import eval_flops_per_sample, thop_macs, train_flops_per_sample


def test_linear_layer_flops_by_hand():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 5))
    # forward 2*12*5; backward: weight grad 2*12*5, no input grad (the input needs none).
    assert eval_flops_per_sample(model, (1, 3, 4)) == 120
    assert train_flops_per_sample(model, (1, 3, 4)) == 240
    assert thop_macs(model, (1, 3, 4)) == 60


@pytest.mark.parametrize("model", ["cnn", "mlp"])
def test_thop_macs_are_half_the_forward_flops(model):
    config = TrialConfig.from_dict({"dataset": "fashion_mnist", "model": model})
    net = build_model(config)
    forward = eval_flops_per_sample(net, (1, 28, 28))
    assert thop_macs(net, (1, 28, 28)) == pytest.approx(forward / 2, rel=0.01)
    assert train_flops_per_sample(net, (1, 28, 28)) / forward < 3.0


def test_mlp_training_flops_by_hand():
    net = build_model(TrialConfig.from_dict({"dataset": "fashion_mnist", "model": "mlp"}))
    layers = [(784, 128), (128, 128), (128, 10)]
    forward = sum(2 * i * o for i, o in layers)
    # backward: every weight gradient, plus input gradients for all but the first layer
    backward = forward + sum(2 * i * o for i, o in layers[1:])
    assert eval_flops_per_sample(net, (1, 28, 28)) == forward == 236_032
    assert train_flops_per_sample(net, (1, 28, 28)) == forward + backward == 507_392


@pytest.mark.parametrize(
    "settings",
    [
        {"strategy": "random", "subset_fraction": 0.3, "pretrain_epochs": 2, "finetune_epochs": 2},
        {"strategy": "class_mean", "pretrain_epochs": 5, "finetune_epochs": 1, "augment": True},
        {"strategy": "none", "finetune_epochs": 2, "model": "mlp", "batch_size": 50},
    ],
)
def test_ledger_matches_flop_counter_over_the_whole_run(settings):
    runner = TrialRunner(TrialConfig.from_dict({"dataset": "digits", **settings}))
    with FlopCounterMode(display=False) as counter:
        records = runner.run()
    ledger = records[-1]["train_flops"] + records[-1]["eval_flops"]
    assert ledger == pytest.approx(counter.get_total_flops(), rel=0.01)
    # The evaluation share is itself exact: per evaluation, the test set (360) and the
    # training-set sample (as many), while pretraining the small set too (up to as many), times
    # the forward FLOPs of one example.
    pretraining = sum(r["phase"] == "pretrain" for r in records)
    small = 0 if runner.small is None else min(len(runner.small.y), 360)
    assert records[-1]["eval_flops"] == runner.ledger.per_eval_sample * (
        len(records) * (360 + 360) + pretraining * small)


def test_ledger_counts_every_sample_of_every_step():
    records = TrialRunner(TrialConfig.from_dict({"finetune_epochs": 1, "batch_size": 100})).run()
    last = records[-1]
    assert last["samples_seen"] == 1437
    assert last["step"] == 15  # 14 full batches and one of 37
    assert last["train_flops"] == 1437 * last["flops_per_sample"]

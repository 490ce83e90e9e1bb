"""The FLOPs ledger: training compute measured for the actual model, counted after every step.

FLOPs per training sample (forward + backward) and per evaluated sample (forward) are measured
once with `torch.utils.flop_counter.FlopCounterMode` on a copy of the model: 2 FLOPs per
multiply-add of every matmul and convolution; elementwise work, pooling and the optimizer's update
count as zero. Both are exactly linear in the batch size, so the ledger multiplies them by the
samples processed. thop's forward MACs are kept as a cross-check (about half the forward FLOPs).
`measure` does all three once per architecture, input shape and device type in a process (the
first FlopCounterMode use loads sympy, ~1 s); a worker that runs many trials reuses them.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def train_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...],
                           device: torch.device | str = "cpu") -> int:
    """Forward + backward FLOPs of one training sample through `model` with cross-entropy."""
    probe = copy.deepcopy(model).to(device).train()
    x = torch.zeros((1, *input_shape), device=device)
    with FlopCounterMode(display=False) as counter:
        target = torch.zeros(1, dtype=torch.long, device=device)
        loss = nn.functional.cross_entropy(probe(x), target)
        loss.backward()
    return int(counter.get_total_flops())


def eval_flops_per_sample(model: nn.Module, input_shape: tuple[int, ...],
                          device: torch.device | str = "cpu") -> int:
    """Forward FLOPs of one evaluated sample."""
    probe = copy.deepcopy(model).to(device).eval()
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        probe(torch.zeros((1, *input_shape), device=device))
    return int(counter.get_total_flops())


def thop_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """thop's forward multiply-accumulates of one sample (a cross-check, not the ledger)."""
    import thop

    probe = copy.deepcopy(model).cpu()  # thop adds buffers to the modules it profiles
    macs, _ = thop.profile(probe, inputs=(torch.zeros((1, *input_shape)),), verbose=False)
    return int(macs)


@dataclass(frozen=True)
class ModelFlops:
    per_train_sample: int
    per_eval_sample: int
    thop_macs: int


_MEASURED: dict[tuple[str, tuple[int, ...], str], ModelFlops] = {}


def measure(model: nn.Module, input_shape: tuple[int, ...],
            device: torch.device | str = "cpu") -> ModelFlops:
    """The model's FLOPs per training and evaluated sample and thop's MACs, measured once per
    architecture (the module tree's description, which names every layer's shape), input shape
    and device type."""
    key = (repr(model), tuple(input_shape), torch.device(device).type)
    if key not in _MEASURED:
        _MEASURED[key] = ModelFlops(train_flops_per_sample(model, input_shape, device),
                                    eval_flops_per_sample(model, input_shape, device),
                                    thop_macs(model, input_shape))
    return _MEASURED[key]


@dataclass
class FlopsLedger:
    """Cumulative training and evaluation FLOPs of one trial."""

    per_train_sample: int
    per_eval_sample: int
    train_flops: int = 0
    eval_flops: int = 0

    def add_train(self, samples: int) -> None:
        self.train_flops += self.per_train_sample * samples

    def add_eval(self, samples: int) -> None:
        self.eval_flops += self.per_eval_sample * samples

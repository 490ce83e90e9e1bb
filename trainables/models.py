"""The model family: an MLP and a VGG-style CNN for 8x8, 28x28 and 32x32 inputs, with a width.

The width scales every hidden layer, so the parameter count P, and with it the overdetermination
ratio Q = K*M/P of a subset of K examples, can be varied at a fixed architecture.
`trainables.sizing.param_count` gives P by arithmetic, without building the network.
"""

from __future__ import annotations

import torch
from torch import nn

from trainables.config import TrialConfig
from trainables.sizing import cnn_blocks, dataset_shape


def build_model(config: TrialConfig, input_shape: tuple[int, int, int] | None = None,
                num_classes: int | None = None) -> nn.Module:
    """The config's model, initialised from `config.seed`.

    `input_shape` (C, H, W) and `num_classes` default to the config's dataset's.
    """
    if input_shape is None or num_classes is None:
        input_shape, num_classes = dataset_shape(config.dataset)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        if config.model == "mlp":
            return mlp(input_shape, num_classes, config.width)
        return vgg_cnn(input_shape, num_classes, config.width)


def count_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def mlp(input_shape: tuple[int, int, int], num_classes: int, width: int) -> nn.Module:
    """Two hidden layers of 8*width units."""
    c, h, w = input_shape
    hidden = 8 * width
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(c * h * w, hidden), nn.ReLU(),
        nn.Linear(hidden, hidden), nn.ReLU(),
        nn.Linear(hidden, num_classes),
    )


def vgg_cnn(input_shape: tuple[int, int, int], num_classes: int, width: int) -> nn.Module:
    """VGG-style: blocks of two 3x3 convolutions and a 2x2 max-pool, channels doubling per block.

    Two blocks for 8x8 and 28x28 inputs (ending at 2x2 and 7x7), three for 32x32 (ending at 4x4),
    then a hidden fully connected layer of 4*width units.
    """
    c, h, _ = input_shape
    blocks = cnn_blocks(h)
    layers: list[nn.Module] = []
    channels_in = c
    for i in range(blocks):
        channels = width * 2**i
        layers += [
            nn.Conv2d(channels_in, channels, 3, padding=1), nn.ReLU(),
            nn.Conv2d(channels, channels, 3, padding=1), nn.ReLU(),
            nn.MaxPool2d(2),
        ]
        channels_in = channels
        h //= 2
    layers += [
        nn.Flatten(),
        nn.Linear(channels_in * h * h, 4 * width), nn.ReLU(),
        nn.Linear(4 * width, num_classes),
    ]
    return nn.Sequential(*layers)

"""Training-data augmentation on whole batches on the device, as in the paper.

MNIST-like and digits: random translations. CIFAR: random crops of the zero-padded image (that is,
translations) and horizontal flips. One random draw per sample, no per-sample Python work.
"""

from __future__ import annotations

import torch

# Largest shift in pixels per input size: a few pixels for 28x28 and 32x32, one for 8x8.
_MAX_SHIFT = {8: 1, 28: 2, 32: 4}


def augment_batch(x: torch.Tensor, generator: torch.Generator, flip: bool) -> torch.Tensor:
    """Randomly translate each image of `x` (N, C, H, W), filling with zeros; optionally flip.

    Random numbers come from `generator` (on the CPU, so a trial is reproducible whatever the
    device).
    """
    n, _, h, w = x.shape
    pad = _MAX_SHIFT.get(h, max(1, h // 8))
    shifts = torch.randint(0, 2 * pad + 1, (2, n), generator=generator).to(x.device)
    padded = torch.nn.functional.pad(x, (pad, pad, pad, pad))
    rows = (torch.arange(h, device=x.device)[None, :] + shifts[0][:, None])  # (N, H)
    cols = (torch.arange(w, device=x.device)[None, :] + shifts[1][:, None])  # (N, W)
    out = padded[
        torch.arange(n, device=x.device)[:, None, None, None],
        torch.arange(x.shape[1], device=x.device)[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]
    if flip:
        mirror = (torch.rand(n, generator=generator) < 0.5).to(x.device)
        out = torch.where(mirror[:, None, None, None], out.flip(3), out)
    return out

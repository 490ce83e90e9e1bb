"""The average-image blog post's FLOPs totals, reproduced to the FLOP, and the same runs in ours.

The post (Dec 2023) trains an MNIST network to 90% test accuracy two ways and reports
1,419,179,520 FLOPs for ordinary training (214 steps of 64 images) against 995,354,880 for 28
epochs on the 10 average images (one step of 10 each) followed by 145 steps of 64: "30% fewer".
Both totals are matched exactly by one accounting: a forward pass of f = 100,480 FLOPs per image,
plus one backward pass charged once per *step* at 2f whatever the batch size:

    214 x (64 + 2) f                 = 1,419,179,520
    28 x (10 + 2) f + 145 x (64 + 2) f =   995,354,880

This project's ledger charges the backward pass per *sample* (forward + backward = 3f per
training image, `trainables.flops`), which makes both runs about three times dearer in absolute
terms but keeps their ratio: 29.9% saved in the post's accounting, 30.2% in ours. Either way the
saving is the ratio of full-set steps (145 against 214: 32.2% fewer) less the small cost of the
28 steps on 10 images: the average images save steps on the full set, not FLOPs per step.
"""

from __future__ import annotations

from dataclasses import dataclass

BLOG_FORWARD_FLOPS = 100_480  # f: the post's forward FLOPs of one MNIST image


@dataclass(frozen=True)
class Steps:
    """`count` optimizer steps on batches of `batch` images."""

    count: int
    batch: int


BLOG_ORDINARY = (Steps(214, 64),)
BLOG_AVERAGE_IMAGE = (Steps(28, 10), Steps(145, 64))


def blog_flops(run: tuple[Steps, ...], forward: int = BLOG_FORWARD_FLOPS) -> int:
    """The post's accounting: every image's forward pass, plus one backward pass (2f) a step."""
    return sum(s.count * (s.batch + 2) * forward for s in run)


def ledger_flops(run: tuple[Steps, ...], forward: int = BLOG_FORWARD_FLOPS) -> int:
    """This project's accounting: forward and backward (3f) for every training image."""
    return sum(s.count * s.batch * 3 * forward for s in run)


def blog_comparison() -> dict[str, float]:
    """Both runs under both accountings, and the saving each implies."""
    blog = [blog_flops(run) for run in (BLOG_ORDINARY, BLOG_AVERAGE_IMAGE)]
    ours = [ledger_flops(run) for run in (BLOG_ORDINARY, BLOG_AVERAGE_IMAGE)]
    full_set_steps = [sum(s.count for s in run if s.batch == 64)
                      for run in (BLOG_ORDINARY, BLOG_AVERAGE_IMAGE)]
    return {
        "blog_ordinary": blog[0], "blog_average_image": blog[1],
        "blog_saving": 1 - blog[1] / blog[0],
        "ledger_ordinary": ours[0], "ledger_average_image": ours[1],
        "ledger_saving": 1 - ours[1] / ours[0],
        "full_set_step_saving": 1 - full_set_steps[1] / full_set_steps[0],
    }

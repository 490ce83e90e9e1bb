"""The blog's FLOPs totals, reproduced to the FLOP (`analysis.blog_arithmetic`)."""

from __future__ import annotations

import pytest

from analysis.blog_arithmetic import (
    BLOG_AVERAGE_IMAGE,
    BLOG_ORDINARY,
    Steps,
    blog_comparison,
    blog_flops,
    ledger_flops,
)


def test_the_blog_totals_are_reproduced_exactly():
    assert blog_flops(BLOG_ORDINARY) == 1_419_179_520  # 214 steps of 64
    assert blog_flops(BLOG_AVERAGE_IMAGE) == 995_354_880  # 28 x 10 average images + 145 x 64


def test_our_ledger_charges_the_backward_pass_per_sample():
    assert ledger_flops((Steps(1, 64),)) == 64 * 3 * 100_480
    assert blog_flops((Steps(1, 64),)) == 66 * 100_480
    assert ledger_flops(BLOG_ORDINARY) == 214 * 64 * 3 * 100_480
    assert ledger_flops(BLOG_AVERAGE_IMAGE) == (28 * 10 + 145 * 64) * 3 * 100_480


def test_both_accountings_give_the_blogs_thirty_percent():
    result = blog_comparison()
    assert result["blog_saving"] == pytest.approx(1 - 995_354_880 / 1_419_179_520)
    assert round(result["blog_saving"], 2) == round(result["ledger_saving"], 2) == 0.30
    assert result["full_set_step_saving"] == pytest.approx(1 - 145 / 214)

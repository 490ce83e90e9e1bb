import math

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import hypervolume, pareto_front, pareto_mask


def brute_force(x, y):
    """Point i is on the front when no j has x_j <= x_i, y_j >= y_i, one of them strict."""
    n = len(x)
    return np.array([
        not any(x[j] <= x[i] and y[j] >= y[i] and (x[j] < x[i] or y[j] > y[i]) for j in range(n))
        for i in range(n)
    ], dtype=bool)


@pytest.mark.parametrize(
    "x, y, front",
    [
        ([], [], []),
        ([3.0], [0.5], [True]),  # a single point
        ([1, 1], [0.5, 0.5], [True, True]),  # exact duplicates do not dominate each other
        ([1, 1], [0.5, 0.7], [False, True]),  # same FLOPs, less accurate: dominated
        ([1, 2], [0.7, 0.7], [True, False]),  # same accuracy, more FLOPs: dominated
        ([1, 2, 3], [0.9, 0.8, 0.7], [True, False, False]),  # the cheapest is also the best
        ([1, 2, 3], [0.1, 0.5, 0.9], [True, True, True]),  # a clean trade-off
        ([0, math.inf], [0.1, 0.99], [True, True]),  # infinite FLOPs still trades off
        ([1, 2], [-math.inf, 0.3], [True, True]),
        ([2, 1, 2, 1], [0.5, 0.4, 0.5, 0.4], [True, True, True, True]),  # duplicate pairs
    ],
)
def test_pareto_mask_edge_cases(x, y, front):
    assert pareto_mask(np.array(x, float), np.array(y, float)).tolist() == front


coordinates = st.lists(st.tuples(st.integers(0, 8), st.integers(0, 8)), max_size=60)


@settings(max_examples=300, deadline=None)
@given(coordinates)
def test_pareto_mask_equals_brute_force_with_many_ties(points):
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float) / 8
    assert pareto_mask(x, y).tolist() == brute_force(x, y).tolist()


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.floats(0, 1e15), st.floats(0, 1)), max_size=80))
def test_pareto_mask_equals_brute_force_on_floats(points):
    x = np.array([p[0] for p in points], float)
    y = np.array([p[1] for p in points], float)
    assert pareto_mask(x, y).tolist() == brute_force(x, y).tolist()


def log(rows):
    """A tiny result log: (dataset, trial, evaluation, flops, accuracy) tuples."""
    return pd.DataFrame(
        [{"sweep": "s", "dataset": d, "trial_id": t, "evaluation": e, "train_flops": f,
          "test_accuracy": a, "strategy": "random"} for d, t, e, f, a in rows])


def test_pareto_front_final_and_all_points_per_dataset():
    df = log([
        ("a", "t1", 0, 0, 0.1), ("a", "t1", 1, 10, 0.6), ("a", "t1", 2, 20, 0.7),
        ("a", "t2", 0, 0, 0.1), ("a", "t2", 1, 15, 0.8),
        ("b", "t3", 0, 0, 0.2), ("b", "t3", 1, 5, 0.3),
    ])
    final = pareto_front(df)
    # dataset a: t1 ends at (20, 0.7), dominated by t2's end (15, 0.8)
    assert final[["dataset", "trial_id"]].values.tolist() == [["a", "t2"], ["b", "t3"]]
    every = pareto_front(df, points="all")
    a = every[every["dataset"] == "a"]
    # (0, 0.1) twice (a tie), (10, 0.6) from t1, (15, 0.8) from t2; (20, 0.7) is dominated
    assert list(zip(a["train_flops"], a["test_accuracy"], strict=True)) == [
        (0, 0.1), (0, 0.1), (10, 0.6), (15, 0.8)]
    # Pooled (by=None): t3's end (5, 0.3) is cheaper than t2's (15, 0.8); both stay.
    assert sorted(pareto_front(df, by=None)["trial_id"]) == ["t2", "t3"]


def test_pareto_front_counts_the_small_sets_selection_as_compute():
    # k-means pretraining is as accurate for half the training FLOPs, but building its small
    # set cost 100 FLOPs: on compute (training + selection) ordinary training wins.
    df = log([("a", "b", 0, 0, 0.1), ("a", "b", 1, 10, 0.5), ("a", "b", 2, 30, 0.9),
              ("a", "k", 0, 0, 0.1), ("a", "k", 1, 5, 0.5), ("a", "k", 2, 15, 0.9)])
    df["selection_flops"] = [0, 0, 0, 100, 100, 100]
    front = pareto_front(df, x="compute_flops", points="all")
    assert front["trial_id"].tolist() == ["b", "b", "b"]
    assert front["compute_flops"].tolist() == [0, 10, 30]
    # on training FLOPs alone (the API's documented default), k would dominate
    assert set(pareto_front(df, points="all")["trial_id"]) == {"k", "b"}
    assert pareto_front(df)["trial_id"].tolist() == ["k"]


def test_pareto_front_by_a_key_some_rows_lack_keeps_them_as_a_group():
    df = log([("a", "b", 0, 10, 0.5), ("a", "p", 0, 20, 0.9), ("a", "q", 0, 30, 0.8)])
    df["subset_size"] = [None, 50, 50]  # ordinary training has no subset
    front = pareto_front(df, by="subset_size")
    assert sorted(front["trial_id"]) == ["b", "p"]


def test_pareto_front_of_a_loss_keeps_the_lowest():
    df = log([("a", "t1", 0, 0, 2.3), ("a", "t1", 1, 10, 0.9), ("a", "t1", 2, 20, 0.5),
              ("a", "t2", 0, 0, 2.3), ("a", "t2", 1, 15, 1.0), ("a", "t2", 2, 30, 0.2)])
    front = pareto_front(df, y="test_accuracy", points="all", higher=False)
    # (15, 1.0) is dominated by (10, 0.9): more compute, higher loss; the rest step down.
    assert list(zip(front["train_flops"], front["test_accuracy"], strict=True)) == [
        (0, 2.3), (0, 2.3), (10, 0.9), (20, 0.5), (30, 0.2)]


def test_pareto_front_drops_nan_rows_with_a_warning():
    df = log([("a", "t1", 0, 10, float("nan")), ("a", "t2", 0, 5, 0.5)])
    with pytest.warns(UserWarning, match="dropped 1 row"):
        front = pareto_front(df)
    assert front["trial_id"].tolist() == ["t2"]


@pytest.mark.parametrize(
    "x, y, reference, expected",
    [
        ([1, 2], [0.5, 0.8], (4, 0), 1 * 0.5 + 2 * 0.8),  # two steps
        ([2], [0.5], (4, 0.1), 2 * 0.4),  # one rectangle above a non-zero floor
        ([1, 1.5, 2], [0.5, 0.4, 0.8], (4, 0), 2.1),  # a dominated point adds nothing
        ([5, 1], [0.9, 0.5], (4, 0), 3 * 0.5),  # beyond the reference: ignored
        ([1, 1], [0.5, 0.5], (3, 0), 1.0),  # duplicates count once
        ([], [], (1, 0), 0.0),
    ],
)
def test_hypervolume_hand_computed(x, y, reference, expected):
    assert hypervolume(np.array(x, float), np.array(y, float), reference) == pytest.approx(expected)

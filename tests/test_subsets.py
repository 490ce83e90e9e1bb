from pathlib import Path

import pytest
import torch

from trainables.sizing import size_from_fraction, size_from_ratio
from trainables.subsets import build_small_set, class_means, per_class_counts


@pytest.mark.parametrize(
    # K = ceil(Q * P / M), capped at N; hand-computed.
    "q, params, classes, n, k",
    [
        (2, 3784, 10, 1437, 757),  # 2*3784/10 = 756.8 -> 757
        (1, 421_642, 10, 60_000, 42_165),  # 42164.2 -> 42165
        (0.1, 1000, 10, 500, 10),  # exactly 10: no float round-up to 11
        (0.3, 100, 3, 500, 10),  # exactly 10 (0.3 is not exact in binary)
        (10, 117_434, 10, 60_000, 60_000),  # 117,434 > N: capped
        (1e-9, 100, 10, 50, 1),  # at least one example
        (4, 138_330, 100, 50_000, 5_534),  # CIFAR-100: 5533.2 -> 5534
    ],
)
def test_subset_size_from_overdetermination_ratio(q, params, classes, n, k):
    size = size_from_ratio(q, n, classes, params)
    assert size.subset_size == k
    assert size.subset_fraction == k / n
    assert size.overdetermination_ratio == pytest.approx(k * classes / params)


def test_subset_size_from_fraction():
    assert size_from_fraction(0.5, 1437, 10, 3784).subset_size == 719  # ceil(718.5)
    assert size_from_fraction(0.1, 60_000, 10, 1).subset_size == 6_000  # exact, not 6001
    assert size_from_fraction(1.0, 1437, 10, 3784).subset_size == 1437
    size = size_from_fraction(0.25, 1000, 10, 500)
    assert (size.subset_size, size.overdetermination_ratio) == (250, 5.0)


@pytest.mark.parametrize(
    "k, sizes, expected",
    [
        (10, [5, 5], [5, 5]),
        (7, [10, 10, 10], [3, 2, 2]),  # remainder to earlier classes
        (10, [1, 20, 20], [1, 5, 4]),  # a small class caps, the rest is shared out
        (100, [3, 4], [3, 4]),  # more asked than exist
        (2, [5, 5, 5], [1, 1, 0]),  # fewer than classes
    ],
)
def test_per_class_counts(k, sizes, expected):
    assert per_class_counts(k, sizes) == expected


def test_the_classes_that_get_one_more_are_drawn_by_the_seed():
    draws = []
    for seed in range(20):
        counts = per_class_counts(4, [50] * 10, torch.Generator().manual_seed(seed))
        assert sorted(counts) == [0] * 6 + [1] * 4
        draws.append(tuple(counts))
    assert len(set(draws)) > 10  # which four classes: the seed's draw, not always classes 0-3
    again = per_class_counts(4, [50] * 10, torch.Generator().manual_seed(3))
    assert tuple(again) == draws[3]  # one seed, one draw
    counts = per_class_counts(15, [142] * 9 + [1], torch.Generator().manual_seed(0))
    assert counts[9] == 1 and sum(counts) == 15 and max(counts[:9]) - min(counts[:9]) <= 1


@pytest.mark.parametrize("strategy", ["stratified", "kmeans"])
def test_fewer_than_one_per_class_draws_its_classes(strategy):
    x, y = _toy(n_per_class=5, classes=10)
    labels = set()
    for seed in range(6):
        small = build_small_set(strategy, 3, x, y, 10, torch.Generator().manual_seed(seed))
        assert len(small.y) == 3 and len(set(small.y.tolist())) == 3
        labels |= set(small.y.tolist())
    assert labels - {0, 1, 2}  # the label order gave classes 0, 1 and 2 at every seed


def _toy(n_per_class=30, classes=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(classes).repeat_interleave(n_per_class)
    x = torch.randn(len(y), 1, 4, 4, generator=g) + y.view(-1, 1, 1, 1).float() * 3
    return x, y


def test_random_subset_is_k_distinct_training_rows():
    x, y = _toy()
    small = build_small_set("random", 17, x, y, 3, torch.Generator().manual_seed(1))
    assert len(small.indices) == 17 == len(set(small.indices.tolist()))
    assert torch.equal(small.x, x[small.indices]) and torch.equal(small.y, y[small.indices])


def test_stratified_subset_is_class_balanced():
    x, y = _toy(n_per_class=40, classes=3)
    small = build_small_set("stratified", 12, x, y, 3, torch.Generator().manual_seed(1))
    assert torch.bincount(small.y, minlength=3).tolist() == [4, 4, 4]
    assert torch.equal(small.x, x[small.indices])


def test_class_mean_images_are_the_per_class_means():
    x, y = _toy(n_per_class=7, classes=4)
    small = build_small_set("class_mean", 4, x, y, 4, torch.Generator())
    assert small.y.tolist() == [0, 1, 2, 3]
    for c in range(4):
        torch.testing.assert_close(small.x[c], x[y == c].mean(dim=0))
    means, flops = class_means(x, y, 4)
    assert flops == x.numel() + means.numel()


def test_kmeans_centroids_per_class():
    x, y = _toy(n_per_class=30, classes=3)
    small = build_small_set("kmeans", 6, x, y, 3, torch.Generator().manual_seed(0))
    assert torch.bincount(small.y, minlength=3).tolist() == [2, 2, 2]
    # Each centroid is a mean of points of its own class: it lies nearer its class mean than
    # any other class's mean (classes are 3 standard deviations apart).
    means, _ = class_means(x, y, 3)
    nearest = torch.cdist(small.x.flatten(1), means.flatten(1)).argmin(dim=1)
    assert torch.equal(nearest, small.y)
    d = x[0].numel()
    assert small.selection_flops == 20 * 3 * (2 * 30 * d * 2 + 30 * d)


def test_kmeans_with_one_centroid_per_point_returns_the_points():
    x, y = _toy(n_per_class=3, classes=2)
    small = build_small_set("kmeans", 6, x, y, 2, torch.Generator().manual_seed(0))
    for c in range(2):
        got = sorted(small.x[small.y == c].flatten(1).tolist())
        want = sorted(x[y == c].flatten(1).tolist())
        torch.testing.assert_close(torch.tensor(got), torch.tensor(want))


@pytest.mark.parametrize("dataset", ["digits", "fashion_mnist", "cifar10", "cifar100"])
@pytest.mark.parametrize("model", ["cnn", "mlp"])
@pytest.mark.parametrize("width", [1, 6, 16])
def test_parameter_count_by_arithmetic_matches_the_built_network(dataset, model, width):
    from trainables import TrialConfig, build_model, count_params
    from trainables.sizing import dataset_shape, param_count

    config = TrialConfig.from_dict({"dataset": dataset, "model": model, "width": width})
    shape, classes = dataset_shape(dataset)
    assert param_count(model, width, shape, classes) == count_params(build_model(config))


@pytest.mark.parametrize("fraction", [0.0, 0.1, 0.2, 0.25, 0.5])
def test_training_set_size_less_its_validation_split_is_known_without_the_data(fraction):
    from trainables.raw_data import read_raw
    from trainables.sizing import CLASS_COUNTS, train_size
    from trainables.splits import validation_split

    labels = read_raw("digits").train_y
    assert tuple(int(n) for n in torch.bincount(torch.as_tensor(labels))) == CLASS_COUNTS["digits"]
    held = validation_split(labels, fraction, seed=0)
    assert train_size("digits", fraction) == len(labels) - len(held)


@pytest.mark.skipif(not Path("/usr/share/datasets/fashion-mnist").is_dir(),
                    reason="Debian's dataset-fashion-mnist")
def test_fashion_mnist_class_counts_are_those_of_the_data():
    from trainables.raw_data import read_raw
    from trainables.sizing import CLASS_COUNTS

    labels = torch.as_tensor(read_raw("fashion_mnist").train_y)
    assert tuple(int(n) for n in torch.bincount(labels)) == CLASS_COUNTS["fashion_mnist"]


def test_a_ratio_beyond_what_the_validation_split_leaves_is_refused():
    from trainables import ConfigError, TrialConfig
    from trainables.sizing import check_ratio_fits

    # digits, CNN width 6: P = 3,784, M = 10; a 20% split leaves 1,150 of 1,437 (Q <= 3.039)
    config = TrialConfig.from_dict({"validation_fraction": 0.2})
    check_ratio_fits(config, 3.039)
    with pytest.raises(ConfigError, match="left after its validation split of 287 .*at most "
                                          r"3\.039\)"):
        check_ratio_fits(config, 3.5)  # fits the 1,437 without a split: it used to pass
    check_ratio_fits(TrialConfig.from_dict({}), 3.797)
    with pytest.raises(ConfigError, match=r"1,437 training examples of digits \(.*most 3\.797\)"):
        check_ratio_fits(TrialConfig.from_dict({}), 3.8)  # the message said "at most 3.8"

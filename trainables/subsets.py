"""Small-set builders ("strategies"): the set a trial pretrains on, of a size K chosen by
`trainables.sizing` (as a fraction of the training set, or by overdetermination ratio Q).

- random:     K examples drawn uniformly without replacement.
- stratified: K examples, as equal a share per class as the classes allow.
- class_mean: one average image per class (M synthetic examples), the blog's method.
- kmeans:     per-class k-means centroids (K synthetic examples, K/M per class): a selection that
              covers each class's modes rather than sampling them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

KMEANS_ITERATIONS = 20


@dataclass
class SmallSet:
    """The set to pretrain on: images and labels on the device, plus how it was made."""

    x: torch.Tensor
    y: torch.Tensor
    indices: torch.Tensor | None  # rows of the training set, for the selecting strategies
    selection_flops: int  # arithmetic spent building the set (0 for pure index selection)


def build_small_set(strategy: str, k: int, x: torch.Tensor, y: torch.Tensor, num_classes: int,
                    generator: torch.Generator) -> SmallSet:
    """Build the small set of `strategy` with K examples from the training tensors."""
    if strategy == "random":
        idx = torch.randperm(len(x), generator=generator)[:k].to(x.device)
        return SmallSet(x[idx], y[idx], idx, 0)
    if strategy == "stratified":
        idx = stratified_indices(y.cpu(), k, num_classes, generator).to(x.device)
        return SmallSet(x[idx], y[idx], idx, 0)
    if strategy == "class_mean":
        means, flops = class_means(x, y, num_classes)
        return SmallSet(means, torch.arange(num_classes, device=x.device), None, flops)
    if strategy == "kmeans":
        return kmeans_per_class(x, y, k, num_classes, generator)
    raise ValueError(f"no small set for strategy {strategy!r}")


def per_class_counts(k: int, class_sizes: list[int],
                     generator: torch.Generator | None = None) -> list[int]:
    """Split K over classes as evenly as their sizes allow. What does not split evenly goes one
    each to classes in an order drawn from `generator` (without one, in label order): in label
    order, K below the number of classes would leave the same last classes out at every seed."""
    counts = [0] * len(class_sizes)
    order = (range(len(class_sizes)) if generator is None
             else torch.randperm(len(class_sizes), generator=generator).tolist())
    remaining = min(k, sum(class_sizes))
    while remaining > 0:
        open_classes = [c for c in order if counts[c] < class_sizes[c]]
        share, extra = divmod(remaining, len(open_classes))
        for rank, c in enumerate(open_classes):
            add = min(share + (1 if rank < extra else 0), class_sizes[c] - counts[c])
            counts[c] += add
            remaining -= add
    return counts


def stratified_indices(y: torch.Tensor, k: int, num_classes: int,
                       generator: torch.Generator) -> torch.Tensor:
    members = [torch.nonzero(y == c).flatten() for c in range(num_classes)]
    counts = per_class_counts(k, [len(m) for m in members], generator)
    chosen = [m[torch.randperm(len(m), generator=generator)[:n]]
              for m, n in zip(members, counts, strict=True)]
    return torch.cat(chosen)


def class_means(x: torch.Tensor, y: torch.Tensor, num_classes: int) -> tuple[torch.Tensor, int]:
    """One average image per class, and the additions and divisions it took."""
    sums = torch.zeros((num_classes, *x.shape[1:]), device=x.device, dtype=x.dtype)
    sums.index_add_(0, y, x)
    counts = torch.bincount(y, minlength=num_classes).clamp_min(1).to(x.dtype)
    means = sums / counts.view(-1, *([1] * (x.dim() - 1)))
    return means, x.numel() + means.numel()


def kmeans_per_class(x: torch.Tensor, y: torch.Tensor, k: int, num_classes: int,
                     generator: torch.Generator) -> SmallSet:
    """Lloyd's k-means within each class; the centroids, labelled by class, are the small set.

    FLOPs counted: per iteration, 2*n*c*d for the distance matmul and n*d for the centroid sums.
    """
    members = [torch.nonzero(y == c).flatten() for c in range(num_classes)]
    counts = per_class_counts(k, [len(m) for m in members], generator)
    centroids, labels, flops = [], [], 0
    for c, (rows, n_centroids) in enumerate(zip(members, counts, strict=True)):
        if n_centroids == 0:
            continue
        points = x[rows].flatten(1)
        start = torch.randperm(len(points), generator=generator)[:n_centroids].to(x.device)
        centres = points[start].clone()
        for _ in range(KMEANS_ITERATIONS):
            assign = torch.cdist(points, centres).argmin(dim=1)
            sums = torch.zeros_like(centres).index_add_(0, assign, points)
            sizes = torch.bincount(assign, minlength=n_centroids)
            # An empty cluster keeps its old centre rather than collapsing to zero.
            centres = torch.where(sizes[:, None] > 0, sums / sizes.clamp_min(1)[:, None], centres)
            flops += 2 * points.numel() * n_centroids + points.numel()
        centroids.append(centres.view(n_centroids, *x.shape[1:]))
        labels.append(torch.full((n_centroids,), c, device=x.device, dtype=y.dtype))
    return SmallSet(torch.cat(centroids), torch.cat(labels), None, flops)

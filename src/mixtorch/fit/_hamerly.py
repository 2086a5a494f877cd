"""Hamerly's distance bounds for Lloyd's iterations: per-row labels and bounds, cluster
sums and counts, so that after the first few iterations only the rows near a cluster
boundary are looked at again (O(N) memory: a label and two bounds per row). With row
weights the sums and counts are weighted (the bounds do not depend on them)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._kmeans_chunks import Prepared

__all__ = ["HamerlyBounds"]


class HamerlyBounds:
    """Hamerly's per-row state: labels, upper and lower distance bounds; cluster sums and
    counts (summed weights) of the (shifted, weighted) rows in float64."""

    def __init__(self, prepared: Prepared, n_clusters: int) -> None:
        self.chunks, X = prepared.chunks, prepared.chunks.X
        self.norms = prepared.norms[: X.shape[0]]
        self.weights = None if prepared.weights is None else prepared.weights[: X.shape[0]]
        n, dtype = X.shape[0], X.dtype
        self.labels = torch.zeros(n, dtype=torch.long, device=X.device)
        self.upper = torch.full((n,), math.inf, dtype=dtype, device=X.device)
        self.lower = torch.zeros(n, dtype=dtype, device=X.device)
        self.sums = torch.zeros(n_clusters, X.shape[1], dtype=torch.float64, device=X.device)
        self.counts = torch.zeros(n_clusters, dtype=torch.float64, device=X.device)
        self.half_gap = torch.zeros(n_clusters, dtype=dtype, device=X.device)
        # relative margin for the rounding of the bound updates
        self.slack = (1 - 64 * torch.finfo(dtype).eps) / (1 + 64 * torch.finfo(dtype).eps)
        self.first = True

    def reassign(self, centers: Tensor) -> None:
        """Assign every row that may have changed cluster to its nearest centre."""
        if self.first:
            # the first move from seeds to means loosens all bounds: no second-nearest
            self._assign_all(centers, second_nearest=False)
            self.first = False
            return
        # (index_select: several times faster than advanced indexing on CPU)
        bound = torch.maximum(self.lower, self.half_gap.index_select(0, self.labels))
        rows = torch.nonzero(self.upper > bound.mul_(self.slack)).flatten()
        # gathering rows costs more than reading them in order past about a quarter
        if 4 * rows.shape[0] > self.labels.shape[0]:
            self._assign_all(centers, second_nearest=True)
            return
        for start in range(0, rows.shape[0], self.chunks.rows):
            index = rows[start : start + self.chunks.rows]
            Y = self.chunks.X.index_select(0, index)
            self._assign(index, Y if self.chunks.shift is None else Y - self.chunks.shift, centers)
        self._recount()

    def _assign_all(self, centers: Tensor, second_nearest: bool) -> None:
        """Assign every row, in order; cluster sums and counts from scratch. Without
        ``second_nearest`` the lower bounds are zero."""
        weights, squared = self.chunks.scores_matrix(centers)
        K, D = centers.shape
        sums = self.chunks.X.new_zeros(-(-self.labels.shape[0] // self.chunks.rows), K, D)
        nearest = torch.empty_like(self.upper)
        second = torch.full_like(self.lower, -math.inf)
        for index, (start, Y) in enumerate(self.chunks):
            rows = slice(start, start + Y.shape[0])
            scores = torch.addmm(squared, Y, weights)
            values, labels = torch.min(scores, 1)
            nearest[rows], self.labels[rows] = values, labels
            if second_nearest:
                scores.scatter_(1, labels[:, None], math.inf)
                torch.amin(scores, 1, out=second[rows])
            sums[index].index_add_(
                0, labels, Y if self.weights is None else Y * self.weights[rows, None]
            )
        self.sums = sums.sum(0, dtype=torch.float64)
        self.counts = torch.bincount(self.labels, self._weights64(), minlength=K).to(torch.float64)
        self.upper, self.lower = distance_bounds(self.norms, nearest, second, squared, D)

    def _assign(self, index: Tensor, Y: Tensor, centers: Tensor) -> None:
        weights, squared = self.chunks.scores_matrix(centers)
        scores = torch.addmm(squared, Y, weights)
        nearest, labels = torch.min(scores, 1)
        second = scores.scatter_(1, labels[:, None], math.inf).amin(1)
        norms = self.norms.index_select(0, index)
        upper, lower = distance_bounds(norms, nearest, second, squared, Y.shape[1])
        self.upper.index_copy_(0, index, upper)
        self.lower.index_copy_(0, index, lower)
        old = self.labels.index_select(0, index)
        changed = torch.nonzero(old != labels).flatten()
        moved, mass = self._weighted_rows(Y.index_select(0, changed), index[changed])
        new, old = labels.index_select(0, changed), old.index_select(0, changed)
        self.sums.index_add_(0, new, moved).index_add_(0, old, -moved)
        self.counts.index_add_(0, new, mass).index_add_(0, old, -mass)
        self.labels.index_copy_(0, index, labels)

    def _recount(self) -> None:
        """Weighted counts afresh from the labels: adding and taking away weights leaves
        rounding residue, and an empty cluster must count exactly 0."""
        if self.weights is not None:
            self.counts = torch.bincount(
                self.labels, self._weights64(), minlength=self.counts.shape[0]
            )

    def _weights64(self) -> Tensor | None:
        return None if self.weights is None else self.weights.to(torch.float64)

    def _weighted_rows(self, Y: Tensor, rows: Tensor) -> tuple[Tensor, Tensor]:
        """``w_i y_i`` (float64) of the given rows and their weights ``w_i`` (1 without)."""
        Y = Y.to(torch.float64)
        if self.weights is None:
            return Y, Y.new_ones(Y.shape[0])
        mass = self.weights.index_select(0, rows).to(torch.float64)
        return Y * mass[:, None], mass

    def centres_moved(self, distances: Tensor, centers: Tensor) -> None:
        """Loosen the bounds by the centres' movements (K,) and renew the half gaps."""
        self.upper += distances.to(self.upper.dtype).index_select(0, self.labels)
        self.lower -= float(distances.max())
        gaps = torch.cdist(centers.to(torch.float64), centers.to(torch.float64))
        gaps.fill_diagonal_(math.inf)
        self.half_gap = (0.5 * gaps.amin(1)).to(self.half_gap.dtype)

    def relocate_empty(self, centers: Tensor) -> None:
        """Move the rows (of positive weight) farthest from their centres into the empty
        clusters, as scikit-learn does; those rows leave their old clusters."""
        empty = torch.nonzero(self.counts == 0).flatten()
        weights, squared = self.chunks.scores_matrix(centers)
        shifted_centers = -0.5 * weights.T
        far_distances, far_rows = [], []
        for start, Y in self.chunks:
            labels = self.labels[start : start + Y.shape[0]]
            distances = (Y - shifted_centers[labels]).square_().sum(1)
            if self.weights is not None:
                distances.masked_fill_(self.weights[start : start + Y.shape[0]] == 0, -math.inf)
            top = torch.topk(distances, min(int(empty.numel()), distances.shape[0]))
            far_distances.append(top.values)
            far_rows.append(top.indices + start)
        order = torch.argsort(torch.cat(far_distances), descending=True)[: empty.numel()]
        rows = torch.cat(far_rows)[order]
        targets, old = empty[: rows.numel()], self.labels[rows]
        moved = self.chunks.X[rows]
        shifted = moved if self.chunks.shift is None else moved - self.chunks.shift
        moved, mass = self._weighted_rows(shifted, rows)
        self.sums.index_add_(0, old, -moved).index_add_(0, targets, moved)
        self.counts.index_add_(0, old, -mass).index_add_(0, targets, mass)
        self.labels[rows] = targets
        self.upper[rows] = math.inf
        self._recount()


def distance_bounds(
    norms: Tensor, nearest: Tensor, second: Tensor, squared: Tensor, n_features: int
) -> tuple[Tensor, Tensor]:
    """Upper and lower bounds on the distances to the nearest and second-nearest centre,
    from the two smallest ``||c||^2 - 2 y.c`` and ``||y||^2`` of each row."""
    # bounds the rounding error of ||y||^2 + ||c||^2 - 2 y.c (sums of D products)
    eps = torch.finfo(norms.dtype).eps
    error = (norms + squared.max()).mul_(4 * (n_features + 2) * eps)
    upper = (norms + nearest).add_(error).clamp_min_(0).sqrt_()
    return upper, (norms + second).sub_(error).clamp_min_(0).sqrt_()

"""k-means++ seeding and Lloyd iterations in torch, chunked, on the data's device.

Distances to the centres come from one matrix product per chunk: ``||c||^2 - 2 y.c`` is
``||y - c||^2 - ||y||^2``, which ranks the centres, and the row norms ``||y||^2`` are
computed once. Data that sit far from the origin compared with their spread are shifted
by their column mean chunk by chunk first, so that float32 does not cancel. Chunk sums are
taken in the data's dtype and added up in float64.

Lloyd's iterations keep Hamerly's distance bounds per row (O(N) memory: a label and two
bounds), so that after the first few iterations only the rows near a cluster boundary are
looked at again; the assignments, and so the centres, are those of plain Lloyd.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET

__all__ = [
    "KMeansResult",
    "kmeans",
    "kmeans_chunk_rows",
    "kmeans_plusplus",
    "lloyd",
    "nearest_centers",
]

#: Rows per block when a k-means++ candidate is drawn: a block is picked from the block
#: totals, then a row from that block's cumulative sum, so no (N,) cumulative sum is built.
_SAMPLING_BLOCK = 1024


def kmeans_chunk_rows(
    n_clusters: int, n_features: int, budget: int = DEFAULT_ELEMENT_BUDGET // 2
) -> int:
    """Rows per k-means chunk: a (rows, K) score block and a shifted (rows, D) chunk within
    ``budget`` elements (1 MiB of float32 by default).

    Measured on 2 CPU cores (N=200k, K=D=16), the row-wise minimum over the score block
    costs half as much per row at 8192 rows as at 16384 or more, where the blocks leave
    the L2 cache, while fewer rows add per-operation overhead.
    """
    return max(256, budget // (max(n_clusters, 1) + max(n_features, 1)))


class _Chunks:
    """Row chunks of ``X``, minus ``shift`` (into a reused buffer) when one is given."""

    def __init__(self, X: Tensor, rows: int, shift: Tensor | None) -> None:
        self.X, self.rows, self.shift = X, max(1, min(int(rows), X.shape[0])), shift
        self._buffer = None if shift is None else torch.empty_like(X[: self.rows])

    def __iter__(self) -> Iterator[tuple[int, Tensor]]:
        """Yield ``(start, y)``; a shifted ``y`` is overwritten by the next chunk."""
        for start in range(0, self.X.shape[0], self.rows):
            chunk = self.X[start : start + self.rows]
            if self.shift is None or self._buffer is None:
                yield start, chunk
            else:
                yield start, torch.sub(chunk, self.shift, out=self._buffer[: chunk.shape[0]])

    def scores_matrix(self, centers: Tensor) -> tuple[Tensor, Tensor]:
        """``-2 c^T`` (D, m) and ``||c||^2`` (m,) of the centres in chunk coordinates."""
        shifted = centers.to(self.X.dtype)
        if self.shift is not None:
            shifted = shifted - self.shift
        return -2.0 * shifted.T, (shifted * shifted).sum(1)

    def original(self, Y: Tensor) -> Tensor:
        return Y if self.shift is None else Y + self.shift


@dataclass
class _Prepared:
    chunks: _Chunks
    norms: Tensor  #: ||y_i||^2, padded with zeros to whole sampling blocks
    scatter: float  #: sum_i ||x_i - mean||^2, in float64


def _prepare(X: Tensor, rows: int) -> _Prepared:
    """Row norms and total scatter. The data are shifted by their mean when it lies
    farther from the origin than their root-mean-square spread about it: then
    ``||c||^2 - 2 y.c`` would lose float32 digits to the offset."""
    n_samples = X.shape[0]
    chunks = _Chunks(X, rows, None)
    norms = X.new_zeros(n_samples + (-n_samples % _SAMPLING_BLOCK))
    total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
    for start, Y in chunks:
        total += Y.sum(0, dtype=torch.float64)
        torch.linalg.vecdot(Y, Y, out=norms[start : start + Y.shape[0]])
    mean = total / max(n_samples, 1)
    offset = float(mean @ mean) * n_samples
    squares = float(norms.sum(dtype=torch.float64))
    if offset <= squares - offset:
        return _Prepared(chunks, norms, max(squares - offset, 0.0))
    shift = mean.to(X.dtype)
    chunks = _Chunks(X, rows, shift)
    for start, Y in chunks:
        torch.linalg.vecdot(Y, Y, out=norms[start : start + Y.shape[0]])
    residual = mean - shift.to(torch.float64)
    squares = float(norms.sum(dtype=torch.float64))
    return _Prepared(chunks, norms, max(squares - float(residual @ residual) * n_samples, 0.0))


def kmeans_plusplus(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator,
    rows: int | None = None,
    n_local_trials: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, with local trials).

    Each new centre is the best, by resulting potential, of ``n_local_trials`` (default
    ``2 + int(log K)``, as scikit-learn) rows drawn with probability proportional to their
    squared distance to the closest centre so far.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    n_clusters : int
    generator : torch.Generator
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.
    n_local_trials : int, optional

    Returns
    -------
    centers : Tensor of shape (n_clusters, n_features)
    indices : Tensor of shape (n_clusters,)
        The rows the centres were taken from.
    """
    prepared = _prepare(X, rows or kmeans_chunk_rows(n_clusters, X.shape[1]))
    return _seed(prepared, n_clusters, generator, n_local_trials)


def _seed(
    prepared: _Prepared, n_clusters: int, generator: torch.Generator, n_local_trials: int | None
) -> tuple[Tensor, Tensor]:
    """k-means++ on prepared chunks.

    ``gap`` holds ``closest - ||y||^2`` (closest: squared distance to the nearest chosen
    centre), so a candidate only needs one product and one minimum per chunk.
    """
    X, norms = prepared.chunks.X, prepared.norms
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    # (trials, rows) scores: longer chunks than Lloyd's (rows, K) ones fit the same budget
    rows = max(prepared.chunks.rows, DEFAULT_ELEMENT_BUDGET // (trials + X.shape[1]))
    chunks = _Chunks(X, rows, prepared.chunks.shift)
    first = torch.randint(X.shape[0], (1,), generator=generator, device=generator.device)
    indices = [first.to(X.device)]
    gap = norms.new_full((1, X.shape[0]), math.inf)
    gap = _candidate_gaps(chunks, X[indices[0]], gap)
    norm_blocks = norms.view(-1, _SAMPLING_BLOCK).sum(1, dtype=torch.float64)
    for _ in range(1, n_clusters):
        candidates = _draw_rows(gap[0], norms, norm_blocks, trials, generator)
        gaps = _candidate_gaps(chunks, X[candidates], gap)
        # float32 sums (cascaded, accurate to ~1e-7): a float64 one would copy all gaps
        best = torch.argmin(gaps.sum(1))
        indices.append(candidates[best, None])
        gap = gaps[best, None]
    index_tensor = torch.cat(indices)
    return X[index_tensor].clone(), index_tensor


def _candidate_gaps(chunks: _Chunks, candidates: Tensor, gap: Tensor) -> Tensor:
    """min(``gap``, ||c||^2 - 2 y.c) for each candidate, shape (m, N)."""
    weights, squared = chunks.scores_matrix(candidates)
    weights, squared = weights.T.contiguous(), squared[:, None]
    result = gap.new_empty(candidates.shape[0], chunks.X.shape[0])
    for start, Y in chunks:
        stop = start + Y.shape[0]
        scores = torch.addmm(squared, weights, Y.T)
        torch.minimum(scores, gap[:, start:stop], out=result[:, start:stop])
    return result


def _draw_rows(
    gap: Tensor, norms: Tensor, norm_blocks: Tensor, count: int, generator: torch.Generator
) -> Tensor:
    """``count`` rows drawn with probability proportional to ``gap + norms`` (clamped at 0).

    ``norms`` is padded with zeros to whole blocks; ``norm_blocks`` are its block sums.
    """
    n, block = gap.shape[0], _SAMPLING_BLOCK
    padded = torch.nn.functional.pad(gap, (0, norms.shape[0] - n)).view(-1, block)
    block_totals = (padded.sum(1, dtype=torch.float64) + norm_blocks).clamp_min_(0.0)
    cumulative = block_totals.cumsum_(0)
    draws = torch.rand(count, dtype=torch.float64, generator=generator, device=generator.device)
    targets = draws.to(gap.device) * cumulative[-1]
    blocks = torch.searchsorted(cumulative, targets, right=True).clamp_(max=padded.shape[0] - 1)
    weights = (padded[blocks] + norms.view(-1, block)[blocks]).clamp_min_(0.0)
    inner = weights.cumsum(1, dtype=torch.float64)
    inner_targets = targets - (cumulative[blocks] - inner[:, -1])
    offsets = torch.searchsorted(inner, inner_targets[:, None], right=True)[:, 0]
    return (blocks * block + offsets.clamp_(max=block - 1)).clamp_(max=n - 1)


def nearest_centers(X: Tensor, centers: Tensor, rows: int | None = None) -> Tensor:
    """Index of the nearest centre for every row of ``X``, shape (N,)."""
    shift = centers.to(X.dtype).mean(0)
    chunks = _Chunks(X, rows or kmeans_chunk_rows(*centers.shape), shift)
    weights, squared = chunks.scores_matrix(centers)
    labels = torch.empty(X.shape[0], dtype=torch.long, device=X.device)
    for start, Y in chunks:
        scores = torch.addmm(squared, Y, weights)
        torch.argmin(scores, 1, out=labels[start : start + Y.shape[0]])
    return labels


@dataclass
class KMeansResult:
    """The outcome of Lloyd's iterations.

    Attributes
    ----------
    centers : Tensor of shape (K, D)
    n_iter : int
        Lloyd iterations run.
    inertia : float
        Summed squared distance of every row to the returned centre of its cluster.
    labels : Tensor of shape (N,)
        The cluster of every row in the last assignment step; the centres are the means
        of these clusters. (scikit-learn assigns once more to the final centres; the two
        differ at most in a few rows on cluster boundaries, and not at all once the
        centres stop moving.)
    """

    centers: Tensor
    n_iter: int
    inertia: float
    labels: Tensor


def kmeans(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator,
    rows: int | None = None,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> KMeansResult:
    """Lloyd's algorithm (:func:`lloyd`) from a k-means++ start, chunked over rows.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    n_clusters : int
    generator : torch.Generator
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.
    max_iter, tol
        As :func:`lloyd`.
    """
    prepared = _prepare(X, rows or kmeans_chunk_rows(n_clusters, X.shape[1]))
    centers, _ = _seed(prepared, n_clusters, generator, None)
    return _lloyd(prepared, centers, tol, max_iter)


def lloyd(
    X: Tensor,
    centers: Tensor,
    rows: int | None = None,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> KMeansResult:
    """Lloyd iterations from ``centers`` (K, D), as scikit-learn's ``algorithm="lloyd"``.

    Stops when the summed squared movement of the centres is at most ``tol`` times the
    mean feature variance of ``X`` (so ``tol=0`` runs until the centres stop moving), or
    after ``max_iter`` iterations. A cluster left empty takes the row farthest from its
    assigned centre, which leaves its old cluster, as in scikit-learn.
    """
    prepared = _prepare(X, rows or kmeans_chunk_rows(*centers.shape))
    return _lloyd(prepared, centers.to(X.dtype), tol, max_iter)


def _lloyd(prepared: _Prepared, centers: Tensor, tol: float, max_iter: int) -> KMeansResult:
    """Lloyd's iterations with Hamerly's bounds.

    Every row keeps an upper bound on the distance to its centre and a lower bound on the
    distance to any other centre; both are moved by how far the centres moved. Only rows
    whose upper bound exceeds both the lower bound and half the distance from their
    centre to the nearest other centre can change cluster, so only those are recomputed,
    and the cluster sums are updated by the rows that moved. The assignments are exactly
    those of plain Lloyd (the bounds carry a margin for rounding).
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}.")
    chunks, X = prepared.chunks, prepared.chunks.X
    state = _Bounds(prepared, centers.shape[0])
    threshold = tol * prepared.scatter / max(X.numel(), 1)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state.reassign(centers)
        if bool((state.counts == 0).any()):
            state.relocate_empty(centers)
        means = state.sums / state.counts.clamp_min(1)[:, None]
        new_centers = chunks.original(means.to(centers.dtype))
        moved = (new_centers - centers).to(torch.float64).square_().sum(1)
        centers, movement = new_centers, float(moved.sum())
        if movement <= threshold:
            break
        state.centres_moved(moved.sqrt_(), centers)
    inertia = float(prepared.norms.sum(dtype=torch.float64) - (state.sums * means).sum())
    return KMeansResult(centers, n_iter, inertia, state.labels)


class _Bounds:
    """Hamerly's per-row state: labels, upper and lower distance bounds; cluster sums and
    counts of the (shifted) rows in float64."""

    def __init__(self, prepared: _Prepared, n_clusters: int) -> None:
        self.chunks, X = prepared.chunks, prepared.chunks.X
        self.norms = prepared.norms[: X.shape[0]]
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
            sums[index].index_add_(0, labels, Y)
        self.sums = sums.sum(0, dtype=torch.float64)
        self.counts = torch.bincount(self.labels, minlength=K).to(torch.float64)
        self.upper, self.lower = _distance_bounds(self.norms, nearest, second, squared, D)

    def _assign(self, index: Tensor, Y: Tensor, centers: Tensor) -> None:
        weights, squared = self.chunks.scores_matrix(centers)
        scores = torch.addmm(squared, Y, weights)
        nearest, labels = torch.min(scores, 1)
        second = scores.scatter_(1, labels[:, None], math.inf).amin(1)
        norms = self.norms.index_select(0, index)
        upper, lower = _distance_bounds(norms, nearest, second, squared, Y.shape[1])
        self.upper.index_copy_(0, index, upper)
        self.lower.index_copy_(0, index, lower)
        old = self.labels.index_select(0, index)
        changed = torch.nonzero(old != labels).flatten()
        moved = Y.index_select(0, changed).to(torch.float64)
        new, old = labels.index_select(0, changed), old.index_select(0, changed)
        self.sums.index_add_(0, new, moved).index_add_(0, old, -moved)
        ones = moved.new_ones(changed.shape[0])
        self.counts.index_add_(0, new, ones).index_add_(0, old, -ones)
        self.labels.index_copy_(0, index, labels)

    def centres_moved(self, distances: Tensor, centers: Tensor) -> None:
        """Loosen the bounds by the centres' movements (K,) and renew the half gaps."""
        self.upper += distances.to(self.upper.dtype).index_select(0, self.labels)
        self.lower -= float(distances.max())
        gaps = torch.cdist(centers.to(torch.float64), centers.to(torch.float64))
        gaps.fill_diagonal_(math.inf)
        self.half_gap = (0.5 * gaps.amin(1)).to(self.half_gap.dtype)

    def relocate_empty(self, centers: Tensor) -> None:
        """Move the rows farthest from their centres into the empty clusters, as
        scikit-learn does; those rows leave their old clusters."""
        empty = torch.nonzero(self.counts == 0).flatten()
        weights, squared = self.chunks.scores_matrix(centers)
        shifted_centers = -0.5 * weights.T
        far_distances, far_rows = [], []
        for start, Y in self.chunks:
            labels = self.labels[start : start + Y.shape[0]]
            distances = (Y - shifted_centers[labels]).square_().sum(1)
            top = torch.topk(distances, min(int(empty.numel()), distances.shape[0]))
            far_distances.append(top.values)
            far_rows.append(top.indices + start)
        order = torch.argsort(torch.cat(far_distances), descending=True)[: empty.numel()]
        rows = torch.cat(far_rows)[order]
        targets, old = empty[: rows.numel()], self.labels[rows]
        moved = self.chunks.X[rows]
        moved = (moved if self.chunks.shift is None else moved - self.chunks.shift).double()
        ones = moved.new_ones(rows.shape[0])
        self.sums.index_add_(0, old, -moved).index_add_(0, targets, moved)
        self.counts.index_add_(0, old, -ones).index_add_(0, targets, ones)
        self.labels[rows] = targets
        self.upper[rows] = math.inf


def _distance_bounds(
    norms: Tensor, nearest: Tensor, second: Tensor, squared: Tensor, n_features: int
) -> tuple[Tensor, Tensor]:
    """Upper and lower bounds on the distances to the nearest and second-nearest centre,
    from the two smallest ``||c||^2 - 2 y.c`` and ``||y||^2`` of each row."""
    # bounds the rounding error of ||y||^2 + ||c||^2 - 2 y.c (sums of D products)
    eps = torch.finfo(norms.dtype).eps
    error = (norms + squared.max()).mul_(4 * (n_features + 2) * eps)
    upper = (norms + nearest).add_(error).clamp_min_(0).sqrt_()
    return upper, (norms + second).sub_(error).clamp_min_(0).sqrt_()

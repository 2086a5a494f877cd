"""k-means++ seeding and Lloyd iterations in torch, chunked, on the data's device.

Distances to the centres come from one matrix product per chunk: ``||c||^2 - 2 y.c`` is
``||y - c||^2 - ||y||^2``, which ranks the centres, and the row norms ``||y||^2`` are
computed once. Data that sit far from the origin compared with their spread are shifted
by their column mean chunk by chunk first, so that float32 does not cancel. Chunk sums are
taken in the data's dtype and added up in float64.

Lloyd's iterations keep Hamerly's distance bounds per row (O(N) memory: a label and two
bounds), so that after the first few iterations only the rows near a cluster boundary are
looked at again; the assignments, and so the centres, are those of plain Lloyd.

With ``sample_weight`` (frequency weights, as ``KMeans.fit`` takes them) seeds are drawn
with probability proportional to ``w_i D(x_i)^2`` and centres are weighted means (plain
Lloyd, without the bounds); a row of weight 0 counts as absent.

This module is the driver; the row chunks live in :mod:`mixtorch.fit._kmeans_chunks`,
the seeding in :mod:`mixtorch.fit._kmeans_seeding` and the bounds in
:mod:`mixtorch.fit._hamerly`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._validation import check_sample_weight
from ._hamerly import HamerlyBounds
from ._kmeans_chunks import Prepared, kmeans_chunk_rows, nearest_centers, prepare
from ._kmeans_seeding import kmeans_plusplus, seed

__all__ = [
    "KMeansResult",
    "kmeans",
    "kmeans_chunk_rows",
    "kmeans_plusplus",
    "lloyd",
    "nearest_centers",
    "weighted_kmeans_plusplus",
]


@dataclass
class KMeansResult:
    """The outcome of Lloyd's iterations (returned by :func:`kmeans` and :func:`lloyd`).

    Attributes
    ----------
    centers : Tensor of shape (K, D)
        The cluster centres, in the data's dtype.
    n_iter : int
        Lloyd iterations run.
    inertia : float
        Summed squared distance of every row to the returned centre of its cluster.
    labels : Tensor of shape (N,)
        The cluster of every row in the last assignment step; the centres are the means
        of these clusters. (scikit-learn assigns once more to the final centres; the two
        differ at most in a few rows on cluster boundaries, and not at all once the
        centres stop moving.)

    See Also
    --------
    kmeans, lloyd

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.kmeans import KMeansResult
    >>> labels = torch.zeros(5, dtype=torch.long)
    >>> result = KMeansResult(torch.zeros(2, 3), n_iter=1, inertia=0.0, labels=labels)
    >>> result.centers.shape, result.labels.shape
    (torch.Size([2, 3]), torch.Size([5]))
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
    sample_weight: Tensor | None = None,
) -> KMeansResult:
    """Lloyd's algorithm (:func:`lloyd`) from a k-means++ start, chunked over rows.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data, on the device and in the dtype of the computation.
    n_clusters : int
        Number of clusters K (at most ``n_samples``).
    generator : torch.Generator
        Draws the k-means++ seeds (on ``X``'s device).
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.
    max_iter : int, default=300
        Most Lloyd iterations.
    tol : float, default=1e-4
        Stop when the summed squared movement of the centres is at most ``tol`` times
        the mean feature variance.
    sample_weight : Tensor of shape (n_samples,), optional
        Non-negative frequency weights (at least ``n_clusters`` of them positive): seeds
        by :func:`weighted_kmeans_plusplus`, weighted means and inertia, the variance of
        ``tol`` weighted too. None weighs every row 1.

    Returns
    -------
    KMeansResult
        Centres (K, D), labels (N,), inertia and iterations run.

    Raises
    ------
    ValueError
        If ``max_iter`` is below 1, or ``sample_weight`` is not a valid weight vector.

    See Also
    --------
    kmeans_plusplus : The seeding.
    lloyd : The iterations, from given centres.
    sklearn.cluster.KMeans : scikit-learn's estimator (same seeding and iterations).

    References
    ----------
    .. [1] D. Arthur and S. Vassilvitskii (2007), "k-means++: the advantages of careful
       seeding", *SODA*.
    .. [2] G. Hamerly (2010), "Making k-means even faster", *SDM* (the distance bounds).

    Examples
    --------
    >>> import math
    >>> import torch
    >>> from mixtorch.fit.kmeans import kmeans
    >>> noise = torch.Generator().manual_seed(0)
    >>> near, far = torch.randn(100, 2, generator=noise), torch.randn(100, 2, generator=noise)
    >>> X = torch.cat([near, far + 10]).double()
    >>> result = kmeans(X, 2, torch.Generator().manual_seed(1))
    >>> sorted(round(x) for x in result.centers[:, 0].tolist())
    [0, 10]
    >>> result.labels[:100].unique().numel(), result.labels[100:].unique().numel()
    (1, 1)
    >>> brute_force = float(((X - result.centers[result.labels]) ** 2).sum())
    >>> math.isclose(result.inertia, brute_force, rel_tol=1e-12)
    True
    """
    rows = rows or kmeans_chunk_rows(n_clusters, X.shape[1])
    if sample_weight is not None:
        weighting = _checked_weights(sample_weight, X, n_clusters)
        centers = weighted_kmeans_plusplus(X, n_clusters, weighting[0], generator, rows)[0]
        return _weighted_lloyd(X, centers, weighting, rows, tol, max_iter)
    prepared = prepare(X, rows)
    centers, _ = seed(prepared, n_clusters, generator, None)
    return _lloyd(prepared, centers, tol, max_iter)


def lloyd(
    X: Tensor,
    centers: Tensor,
    rows: int | None = None,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
    sample_weight: Tensor | None = None,
) -> KMeansResult:
    """Lloyd iterations from ``centers`` (K, D), as scikit-learn's ``algorithm="lloyd"``.

    Stops when the summed squared movement of the centres is at most ``tol`` times the
    mean feature variance of ``X`` (so ``tol=0`` runs until the centres stop moving), or
    after ``max_iter`` iterations. A cluster left empty takes the row farthest from its
    assigned centre, which leaves its old cluster, as in scikit-learn. Only rows near a
    cluster boundary are looked at again after the first iterations (Hamerly's bounds);
    the assignments are those of plain Lloyd.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data.
    centers : Tensor of shape (K, n_features)
        Starting centres (cast to ``X``'s dtype).
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.
    max_iter : int, default=300
        Most iterations.
    tol : float, default=1e-4
        Relative tolerance on the centres' movement (see above).
    sample_weight : Tensor of shape (n_samples,), optional
        Non-negative frequency weights (at least K positive), as
        ``sklearn.cluster.KMeans.fit(X, sample_weight=...)`` takes them: centres are
        weighted means, an empty cluster (no weight) takes the row of positive weight
        farthest from its centre, and ``tol`` scales with the weighted variance.

    Returns
    -------
    KMeansResult
        Centres (K, D), labels (N,), inertia and iterations run.

    Raises
    ------
    ValueError
        If ``max_iter`` is below 1, or ``sample_weight`` is not a valid weight vector.

    See Also
    --------
    kmeans : With k-means++ seeds.
    nearest_centers : One assignment step.

    References
    ----------
    .. [1] S. P. Lloyd (1982), "Least squares quantization in PCM", *IEEE Transactions
       on Information Theory* 28(2).
    .. [2] G. Hamerly (2010), "Making k-means even faster", *SDM*.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.kmeans import lloyd
    >>> X = torch.tensor([[0.0, 0.0], [0.0, 1.0], [5.0, 5.0], [5.0, 6.0]])
    >>> result = lloyd(X, torch.tensor([[0.0, 0.0], [0.0, 1.0]]), tol=0.0)
    >>> result.centers
    tensor([[0.0000, 0.5000],
            [5.0000, 5.5000]])
    >>> result.labels, result.inertia
    (tensor([0, 0, 1, 1]), 1.0)
    """
    rows = rows or kmeans_chunk_rows(*centers.shape)
    if sample_weight is not None:
        weighting = _checked_weights(sample_weight, X, centers.shape[0])
        return _weighted_lloyd(X, centers.to(X.dtype), weighting, rows, tol, max_iter)
    return _lloyd(prepare(X, rows), centers.to(X.dtype), tol, max_iter)


def _lloyd(prepared: Prepared, centers: Tensor, tol: float, max_iter: int) -> KMeansResult:
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
    state = HamerlyBounds(prepared, centers.shape[0])
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


# -- weighted rows ---------------------------------------------------------------------
def weighted_kmeans_plusplus(
    X: Tensor,
    n_clusters: int,
    sample_weight: Tensor,
    generator: torch.Generator,
    rows: int | None = None,
    n_local_trials: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Greedy k-means++ seeding of weighted rows (scikit-learn's ``kmeans_plusplus`` with
    ``sample_weight``): the first centre is drawn with probability proportional to
    ``w_i``, each next one is the best (lowest ``sum_i w_i D(x_i)^2``) of
    ``n_local_trials`` rows drawn with probability proportional to ``w_i D(x_i)^2``, ``D``
    the distance to the closest centre so far. Rows of weight 0 are never drawn.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data.
    n_clusters : int
        Number of centres K (at most the number of rows of positive weight).
    sample_weight : Tensor of shape (n_samples,)
        Non-negative frequency weights.
    generator : torch.Generator
        Draws the rows.
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.
    n_local_trials : int, optional
        Candidates tried per centre; ``2 + int(log K)`` by default.

    Returns
    -------
    centers : Tensor of shape (n_clusters, n_features)
        Rows of ``X``.
    indices : Tensor of shape (n_clusters,)
        The rows the centres were taken from.

    Raises
    ------
    ValueError
        If ``sample_weight`` is invalid or has fewer than ``n_clusters`` positive entries.

    See Also
    --------
    kmeans_plusplus : The unweighted seeding.
    sklearn.cluster.kmeans_plusplus : scikit-learn's counterpart.

    Examples
    --------
    Rows of weight 0 are never seeds:

    >>> import torch
    >>> from mixtorch.fit.kmeans import weighted_kmeans_plusplus
    >>> X = torch.tensor([[0.0], [0.1], [5.0], [9.0], [9.1]], dtype=torch.float64)
    >>> weights = torch.tensor([1.0, 0.0, 2.0, 0.0, 1.0], dtype=torch.float64)
    >>> centers, indices = weighted_kmeans_plusplus(X, 3, weights, torch.Generator().manual_seed(0))
    >>> sorted(indices.tolist())
    [0, 2, 4]
    """
    weights = _checked_weights(sample_weight, X, n_clusters)[0]
    rows = rows or kmeans_chunk_rows(n_clusters, X.shape[1])
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    shift = _weighted_mean(X, weights, rows).to(X.dtype)
    chosen = [_draw(weights, 1, generator)]
    closest = _squared_distances(X, X[chosen[0]], shift, rows)[:, 0].to(torch.float64)
    for _ in range(1, n_clusters):
        mass = weights * closest
        # only duplicates of the centres are left: draw among them by weight
        candidates = _draw(mass if float(mass.sum()) > 0 else weights, trials, generator)
        distances = _squared_distances(X, X[candidates], shift, rows).to(torch.float64)
        distances = torch.minimum(distances, closest[:, None])
        best = int(torch.argmin(weights @ distances))
        chosen.append(candidates[best : best + 1])
        closest = distances[:, best]
    indices = torch.cat(chosen)
    return X[indices].clone(), indices


def _checked_weights(sample_weight: Tensor, X: Tensor, n_clusters: int) -> tuple[Tensor, float]:
    """``sample_weight`` checked by the shared check, in float64 scaled so the largest is 1,
    with that scale; at least ``n_clusters`` entries must be positive."""
    weights = check_sample_weight(sample_weight, X).to(torch.float64)
    positive = int((weights > 0).sum())
    if positive < n_clusters:
        raise ValueError(
            f"k-means with {n_clusters} clusters needs at least {n_clusters} rows of "
            f"positive sample_weight, got {positive}."
        )
    largest = torch.as_tensor(sample_weight).detach().to(torch.float64).max()
    return weights, float(largest)


def _draw(mass: Tensor, count: int, generator: torch.Generator) -> Tensor:
    """``count`` row indices drawn with probability proportional to ``mass`` (float64,
    non-negative, positive sum) by inverting its cumulative sum: a row of zero mass
    is never drawn, so such rows count as absent."""
    cumulative = mass.cumsum(0)
    uniform = torch.rand(count, dtype=torch.float64, generator=generator, device=generator.device)
    targets = uniform.to(mass.device) * cumulative[-1]
    last = int(torch.nonzero(mass).max())  # a target rounded up to the total lands here
    return torch.searchsorted(cumulative, targets, right=True).clamp_(max=last)


def _weighted_mean(X: Tensor, weights: Tensor, rows: int) -> Tensor:
    """The weighted column means (float64), summed in chunks."""
    total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], rows):
        total += weights[start : start + rows] @ X[start : start + rows].double()
    return total / weights.sum()


def _squared_distances(X: Tensor, centers: Tensor, shift: Tensor, rows: int) -> Tensor:
    """``||x_i - c_j||^2`` (n, m) in ``X``'s dtype, both shifted by ``shift`` first (the
    weighted mean), so float32 data far from the origin keep their digits."""
    shifted = centers.to(X.dtype) - shift
    squared = (shifted * shifted).sum(1)
    out = X.new_empty(X.shape[0], centers.shape[0])
    for start in range(0, X.shape[0], rows):
        Y = X[start : start + rows] - shift
        block = torch.addmm(squared, Y, shifted.T, alpha=-2.0).add_((Y * Y).sum(1, keepdim=True))
        out[start : start + rows] = block.clamp_min_(0.0)
    return out


def _weighted_lloyd(
    X: Tensor, centers: Tensor, weighting: tuple[Tensor, float], rows: int, tol: float,
    max_iter: int,
) -> KMeansResult:  # fmt: skip
    """Plain Lloyd on weighted rows: centres are weighted means (float64 sums about the
    weighted mean of ``X``)."""
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}.")
    weights, scale = weighting
    shift = _weighted_mean(X, weights, rows)
    spread = weights @ _squared_distances(X, shift[None], shift.to(X.dtype), rows)[:, 0].double()
    threshold = tol * float(spread) / (float(weights.sum()) * max(X.shape[1], 1))
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        labels = nearest_centers(X, centers, rows)
        sums = torch.zeros(centers.shape, dtype=torch.float64, device=X.device)
        for start in range(0, X.shape[0], rows):
            block = (X[start : start + rows].double() - shift) * weights[start : start + rows, None]
            sums.index_add_(0, labels[start : start + rows], block)
        counts = torch.zeros_like(weights[: centers.shape[0]]).index_add_(0, labels, weights)
        if bool((counts == 0).any()):
            _relocate_empty(X, labels, weights, centers, (sums, counts, shift), rows)
        means = sums / counts.clamp_min(torch.finfo(torch.float64).tiny)[:, None] + shift
        new_centers = torch.where((counts > 0)[:, None], means, centers.double()).to(X.dtype)
        movement = float((new_centers - centers).to(torch.float64).square_().sum())
        centers = new_centers
        if movement <= threshold:
            break
    distances = _row_distances(X, labels, centers, rows)
    return KMeansResult(centers, n_iter, float(weights @ distances) * scale, labels)


def _row_distances(X: Tensor, labels: Tensor, centers: Tensor, rows: int) -> Tensor:
    """Squared distance of every row to the centre of its label (float64, (n,))."""
    out = torch.empty(X.shape[0], dtype=torch.float64, device=X.device)
    for start in range(0, X.shape[0], rows):
        block = X[start : start + rows] - centers.index_select(0, labels[start : start + rows])
        out[start : start + rows] = block.double().square_().sum(1)
    return out


def _relocate_empty(
    X: Tensor,
    labels: Tensor,
    weights: Tensor,
    centers: Tensor,
    sums_counts_shift: tuple[Tensor, Tensor, Tensor],
    rows: int,
) -> None:
    """Move the rows of positive weight farthest from their centres into the clusters
    that received no weight, as scikit-learn does (those rows leave their old clusters);
    updates ``labels`` and the cluster sums and counts in place."""
    sums, counts, shift = sums_counts_shift
    empty = torch.nonzero(counts == 0).flatten()
    distances = _row_distances(X, labels, centers, rows).masked_fill_(weights == 0, -math.inf)
    far = torch.topk(distances, int(empty.numel())).indices
    moved = (X[far].double() - shift) * weights[far, None]
    old = labels[far]
    sums.index_add_(0, old, -moved).index_add_(0, empty, moved)
    counts.index_add_(0, old, -weights[far]).index_add_(0, empty, weights[far])
    labels[far] = empty

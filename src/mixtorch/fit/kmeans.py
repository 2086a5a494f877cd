"""k-means++ seeding and Lloyd iterations in torch, chunked, on the data's device.

Distances to the centres come from one matrix product per chunk: ``||c||^2 - 2 y.c`` is
``||y - c||^2 - ||y||^2``, which ranks the centres, and the row norms ``||y||^2`` are
computed once. Data that sit far from the origin compared with their spread are shifted
by their column mean chunk by chunk first, so that float32 does not cancel. Chunk sums are
taken in the data's dtype and added up in float64.

Lloyd's iterations keep Hamerly's distance bounds per row (O(N) memory: a label and two
bounds), so that after the first few iterations only the rows near a cluster boundary are
looked at again; the assignments, and so the centres, are those of plain Lloyd.

With ``sample_weight`` (frequency weights, as ``KMeans.fit`` takes them) the same chunks,
seeding and bounds run on weighted rows: seeds are drawn with probability proportional to
``w_i D(x_i)^2``, centres are weighted means; a row of weight 0 counts as absent.

This module is the driver; the row chunks live in :mod:`mixtorch.fit._kmeans_chunks`,
the seeding in :mod:`mixtorch.fit._kmeans_seeding` and the bounds in
:mod:`mixtorch.fit._hamerly`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor

from ._hamerly import HamerlyBounds
from ._kmeans_chunks import (
    Prepared,
    checked_weights,
    kmeans_chunk_rows,
    nearest_centers,
    prepare,
)
from ._kmeans_seeding import kmeans_plusplus, seed

__all__ = [
    "KMeansResult",
    "kmeans",
    "kmeans_chunk_rows",
    "kmeans_plusplus",
    "lloyd",
    "nearest_centers",
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
        by :func:`kmeans_plusplus` with these weights, weighted means and inertia, the variance of
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
    weights, scale = checked_weights(sample_weight, X, n_clusters)
    prepared = prepare(X, rows or kmeans_chunk_rows(n_clusters, X.shape[1]), weights)
    centers, _ = seed(prepared, n_clusters, generator, None)
    return _lloyd(prepared, centers, tol, max_iter, scale)


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
    weights, scale = checked_weights(sample_weight, X, centers.shape[0])
    prepared = prepare(X, rows or kmeans_chunk_rows(*centers.shape), weights)
    return _lloyd(prepared, centers.to(X.dtype), tol, max_iter, scale)


def _lloyd(
    prepared: Prepared, centers: Tensor, tol: float, max_iter: int, scale: float = 1.0
) -> KMeansResult:
    """Lloyd's iterations with Hamerly's bounds.

    Every row keeps an upper bound on the distance to its centre and a lower bound on the
    distance to any other centre; both are moved by how far the centres moved. Only rows
    whose upper bound exceeds both the lower bound and half the distance from their
    centre to the nearest other centre can change cluster, so only those are recomputed,
    and the cluster sums are updated by the rows that moved. The assignments are exactly
    those of plain Lloyd (the bounds carry a margin for rounding). With weights (scaled
    by ``1 / scale``) the sums and counts are weighted; the inertia is scaled back.
    """
    if max_iter < 1:
        raise ValueError(f"max_iter must be at least 1, got {max_iter}.")
    chunks, X = prepared.chunks, prepared.chunks.X
    state = HamerlyBounds(prepared, centers.shape[0])
    threshold = tol * prepared.scatter / max(prepared.mass * X.shape[1], 1)
    n_iter = 0
    while n_iter < max_iter:
        n_iter += 1
        state.reassign(centers)
        if bool((state.counts == 0).any()):
            state.relocate_empty(centers)
        counts = state.counts[:, None]  # a cluster left empty keeps its zero sum
        means = torch.where(counts > 0, state.sums / counts, state.sums)
        new_centers = chunks.original(means.to(centers.dtype))
        moved = (new_centers - centers).to(torch.float64).square_().sum(1)
        centers, movement = new_centers, float(moved.sum())
        if movement <= threshold:
            break
        state.centres_moved(moved.sqrt_(), centers)
    inertia = float(prepared.weighted_sum(prepared.norms) - (state.sums * means).sum())
    return KMeansResult(centers, n_iter, inertia * scale, state.labels)

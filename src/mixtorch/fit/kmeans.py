"""k-means++ seeding and Lloyd iterations in torch, chunked, on the data's device."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .._chunks import column_mean, iter_chunks

__all__ = ["KMeansResult", "kmeans", "kmeans_plusplus", "squared_distances"]


def squared_distances(Y: Tensor, centers: Tensor) -> Tensor:
    """||y_i - c_j||^2, shape (n, m), by matrix product (inputs already shifted)."""
    cross = Y @ centers.T
    distances = (Y * Y).sum(1, keepdim=True) - 2.0 * cross + (centers * centers).sum(1)
    return distances.clamp_min_(0.0)


def _min_distances(X: Tensor, shift: Tensor, centers: Tensor, rows: int) -> Tensor:
    """Squared distance of every row to each of ``centers``, (n, m), in float64."""
    shifted_centers = centers - shift
    blocks = [
        squared_distances(chunk - shift, shifted_centers).to(torch.float64)
        for chunk in iter_chunks(X, rows)
    ]
    return torch.cat(blocks)


def kmeans_plusplus(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator,
    rows: int,
    n_local_trials: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, with local trials).

    Returns the centres (K, D) and the row indices they were taken from (K,).
    """
    n_samples = X.shape[0]
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    shift = column_mean(X, rows)
    first = int(torch.randint(n_samples, (1,), generator=generator, device=generator.device))
    indices = [first]
    closest = _min_distances(X, shift, X[first : first + 1], rows)[:, 0]
    potential = closest.sum()
    for _ in range(1, n_clusters):
        draws = torch.rand(
            trials, dtype=torch.float64, generator=generator, device=generator.device
        )
        cumulative = torch.cumsum(closest, 0)
        candidates = torch.searchsorted(cumulative, draws.to(X.device) * potential)
        candidates = candidates.clamp_(max=n_samples - 1)
        distances = torch.minimum(closest[:, None], _min_distances(X, shift, X[candidates], rows))
        potentials = distances.sum(0)
        best = int(torch.argmin(potentials))
        indices.append(int(candidates[best]))
        closest, potential = distances[:, best], potentials[best]
    index_tensor = torch.tensor(indices, device=X.device)
    return X[index_tensor].clone(), index_tensor


@dataclass
class KMeansResult:
    centers: Tensor
    n_iter: int
    inertia: float


def kmeans(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator,
    rows: int,
    *,
    max_iter: int = 300,
    tol: float = 1e-4,
) -> KMeansResult:
    """Lloyd's algorithm from a k-means++ start, chunked over rows.

    ``tol`` is relative to the mean feature variance, as in scikit-learn. An empty
    cluster is moved to the point farthest from its centre.
    """
    centers, _ = kmeans_plusplus(X, n_clusters, generator, rows)
    shift = column_mean(X, rows)
    variance = sum(
        ((chunk - shift) ** 2).sum(0, dtype=torch.float64) for chunk in iter_chunks(X, rows)
    )
    threshold = tol * float(torch.as_tensor(variance).mean() / X.shape[0])
    inertia, n_iter = math.inf, 0
    while n_iter < max_iter:
        n_iter += 1
        new_centers, inertia = _lloyd_step(X, centers, shift, rows)
        movement = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if movement <= threshold:
            break
    return KMeansResult(centers, n_iter, inertia)


def _lloyd_step(X: Tensor, centers: Tensor, shift: Tensor, rows: int) -> tuple[Tensor, float]:
    n_clusters, n_features = centers.shape
    sums = torch.zeros(n_clusters, n_features, dtype=torch.float64, device=X.device)
    counts = torch.zeros(n_clusters, dtype=torch.float64, device=X.device)
    shifted_centers = centers - shift
    inertia = torch.zeros((), dtype=torch.float64, device=X.device)
    far_distances, far_rows = [], []
    for start in range(0, X.shape[0], rows):
        Y = X[start : start + rows] - shift
        distances, labels = squared_distances(Y, shifted_centers).min(1)
        sums.index_add_(0, labels, Y.to(torch.float64))
        counts += torch.bincount(labels, minlength=n_clusters).to(torch.float64)
        inertia += distances.sum(dtype=torch.float64)
        top = torch.topk(distances, min(n_clusters, distances.shape[0]))
        far_distances.append(top.values)
        far_rows.append(top.indices + start)
    new_centers = (sums / counts.clamp_min(1)[:, None]).to(X.dtype) + shift
    empty = torch.nonzero(counts == 0).flatten()
    if empty.numel():
        order = torch.argsort(torch.cat(far_distances), descending=True)
        farthest = torch.cat(far_rows)[order[: empty.numel()]]
        new_centers[empty[: farthest.numel()]] = X[farthest]
    return new_centers, float(inertia)

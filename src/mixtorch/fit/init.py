"""Initial mixtures for EM: from k-means, k-means++ seeds, random responsibilities or
random data points, following scikit-learn's ``init_params`` semantics."""

from __future__ import annotations

import torch
from torch import Tensor

from .._chunks import iter_chunks
from ..covariance import Covariance
from ..mixture import Mixture
from ..stats import (
    ACCUMULATOR_DTYPE,
    ResponsibilityFn,
    SufficientStatistics,
    statistics_from_responsibilities,
)
from .kmeans import kmeans, kmeans_chunk_rows, kmeans_plusplus, nearest_centers

__all__ = [
    "INIT_METHODS",
    "initial_mixture",
    "initial_responsibilities",
    "mixture_from_labels",
    "mixture_from_responsibilities",
]

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")


def mixture_from_responsibilities(
    X: Tensor,
    responsibility_fn: ResponsibilityFn,
    covariance_type: type[Covariance],
    reg_covar: float,
    reference: Tensor,
    rows: int,
) -> Mixture:
    """One M-step from responsibilities given chunk by chunk, summed across ranks.

    ``reference`` (K, D) is a guess of the means (for accurate float32 moments); under a
    process group it must be the same on every rank.
    """
    chunks = iter_chunks(X, rows)
    stats = statistics_from_responsibilities(chunks, responsibility_fn, covariance_type, reference)
    return stats.all_reduce().m_step(covariance_type, reg_covar, X.dtype)


def mixture_from_labels(
    X: Tensor,
    labels: Tensor,
    centers: Tensor,
    covariance_type: type[Covariance],
    reg_covar: float,
    rows: int | None = None,
) -> Mixture:
    """One M-step from hard labels, such as k-means clusters.

    Counts, sums and scatter are gathered per label (``index_add_``, and for full/tied
    covariances one ``Z^T Z`` product per cluster over the chunk's rows sorted by
    label), never through (rows, K) one-hot responsibilities or (K, rows, D)
    differences. Moments are taken about ``centers`` so they stay accurate in float32.
    Only these rows count (no sum across ranks): callers pass either all the data or
    rows that are the same on every rank (k-means++ seeds).

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    labels : Tensor of shape (n_samples,)
        Integer cluster of every row, in ``[0, n_components)``.
    centers : Tensor of shape (n_components, n_features)
        A guess of the cluster means (the k-means centres): the reference point of the
        moments, not assumed to be the means.
    covariance_type : type of Covariance
    reg_covar : float
    rows : int, optional
        Rows per chunk; :func:`~mixtorch.fit.kmeans.kmeans_chunk_rows` by default.
    """
    K, D = centers.shape
    centers = centers.to(X.dtype)
    full = covariance_type.centred_per_component  # (K, D, D) scatter, else diagonals
    rows = rows or kmeans_chunk_rows(K, D)
    counts = torch.bincount(labels, minlength=K).to(ACCUMULATOR_DTYPE)
    sums = torch.zeros(K, D, dtype=ACCUMULATOR_DTYPE, device=X.device)
    scatter = sums.new_zeros((K, D, D) if full else (K, D))
    for start in range(0, X.shape[0], rows):
        chunk_labels = labels[start : start + rows]
        differences = X[start : start + rows] - centers.index_select(0, chunk_labels)
        sums += X.new_zeros(K, D).index_add_(0, chunk_labels, differences)
        if full:
            scatter += _scatter_by_label(differences, chunk_labels, K)
        else:
            scatter += X.new_zeros(K, D).index_add_(0, chunk_labels, differences.square_())
    stats = SufficientStatistics(
        counts,
        sums,
        scatter,
        centers,
        torch.zeros((), dtype=ACCUMULATOR_DTYPE, device=X.device),
        torch.tensor(float(X.shape[0]), dtype=ACCUMULATOR_DTYPE, device=X.device),
    )
    return stats.m_step(covariance_type, reg_covar, X.dtype)


def _scatter_by_label(differences: Tensor, labels: Tensor, n_components: int) -> Tensor:
    """``sum_{i: label_i = k} z_i z_i^T`` for every k, (K, D, D), one product per label."""
    D = differences.shape[1]
    result = differences.new_zeros(n_components, D, D)
    counts = torch.bincount(labels, minlength=n_components).tolist()
    ordered = differences.index_select(0, torch.argsort(labels))
    for k, block in enumerate(ordered.split(counts)):
        if block.shape[0]:
            torch.mm(block.T, block, out=result[k])
    return result


def initial_mixture(
    X: Tensor,
    n_components: int,
    covariance_type: type[Covariance],
    init_params: str,
    reg_covar: float,
    generator: torch.Generator,
    rows: int,
) -> Mixture:
    """The starting mixture for EM, as scikit-learn's ``_initialize_parameters`` builds it.

    ``rows`` is the EM chunk length, used by the responsibility-based methods; k-means and
    its hard-label M-step size their own chunks (:func:`~mixtorch.fit.kmeans.kmeans_chunk_rows`).
    """
    if init_params == "kmeans":
        result = kmeans(X, n_components, generator)
        return mixture_from_labels(X, result.labels, result.centers, covariance_type, reg_covar)
    fn, centers = initial_responsibilities(X, n_components, init_params, generator, rows)
    if init_params in ("k-means++", "random_from_data"):
        # one-hot on the seed rows only: every other row has zero responsibility
        labels = torch.arange(n_components, device=X.device)
        return mixture_from_labels(centers, labels, centers, covariance_type, reg_covar)
    return mixture_from_responsibilities(X, fn, covariance_type, reg_covar, centers, rows)


def initial_responsibilities(
    X: Tensor, n_components: int, init_params: str, generator: torch.Generator, rows: int
) -> tuple[ResponsibilityFn, Tensor]:
    """Initial responsibilities (as a per-chunk function) and a (K, D) guess of the means.

    ``rows`` is not used: k-means and k-means++ size their own chunks
    (:func:`~mixtorch.fit.kmeans.kmeans_chunk_rows`).
    """
    if init_params == "kmeans":
        centers = kmeans(X, n_components, generator).centers
        fn = _nearest_center(centers)
    elif init_params in ("k-means++", "random_from_data"):
        if init_params == "k-means++":
            centers, indices = kmeans_plusplus(X, n_components, generator)
        else:
            indices = torch.randperm(X.shape[0], generator=generator, device=generator.device)
            indices = indices[:n_components].to(X.device)
            centers = X[indices].clone()
        fn = _one_hot_rows(indices, n_components)
    elif init_params == "random":
        fn = _random_responsibilities(n_components, generator)
        centers = X[:1].expand(n_components, -1)
    else:
        raise ValueError(f"init_params must be one of {INIT_METHODS}, got {init_params!r}.")
    return fn, centers


def _nearest_center(centers: Tensor) -> ResponsibilityFn:
    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        labels = nearest_centers(chunk, centers, rows=chunk.shape[0])
        return torch.nn.functional.one_hot(labels, centers.shape[0])

    return responsibilities


def _one_hot_rows(indices: Tensor, n_components: int) -> ResponsibilityFn:
    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        result = torch.zeros(chunk.shape[0], n_components, device=chunk.device)
        local = indices - start
        inside = (local >= 0) & (local < chunk.shape[0])
        result[local[inside], torch.arange(n_components, device=chunk.device)[inside]] = 1.0
        return result

    return responsibilities


def _random_responsibilities(n_components: int, generator: torch.Generator) -> ResponsibilityFn:
    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        values = torch.rand(
            chunk.shape[0], n_components, generator=generator, device=generator.device
        ).to(chunk.device)
        return values / values.sum(1, keepdim=True)

    return responsibilities

"""Initial mixtures for EM: from k-means, k-means++ seeds, random responsibilities or
random data points, following scikit-learn's ``init_params`` semantics.

With ``sample_weight`` (frequency weights) a row of weight ``w`` counts as ``w`` copies of
the row: k-means seeds and iterations are weighted (``sample_weight`` of
:func:`~mixtorch.fit.kmeans.kmeans_plusplus` and :func:`~mixtorch.fit.kmeans.kmeans`),
``'random'`` responsibilities and k-means clusters enter the M-step times the weights,
and ``'random_from_data'`` draws distinct rows one after another, each with probability
proportional to its weight among the rows not drawn yet. A seed row (``'k-means++'``,
``'random_from_data'``) counts once whatever its weight, as one copy of a repeated row
would.
"""

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
    sample_weight: Tensor | None = None,
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
    sample_weight : Tensor of shape (n_samples,), optional
        Row weights: counts, sums and scatter are weighted by them.
    """
    K, D = centers.shape
    centers = centers.to(X.dtype)
    full = covariance_type.centred_per_component  # (K, D, D) scatter, else diagonals
    rows = rows or kmeans_chunk_rows(K, D)
    weights = None if sample_weight is None else sample_weight.to(X.dtype)
    counts = torch.bincount(labels, weights, minlength=K).to(ACCUMULATOR_DTYPE)
    sums = torch.zeros(K, D, dtype=ACCUMULATOR_DTYPE, device=X.device)
    scatter = sums.new_zeros((K, D, D) if full else (K, D))
    for start in range(0, X.shape[0], rows):
        chunk_labels = labels[start : start + rows]
        differences = X[start : start + rows] - centers.index_select(0, chunk_labels)
        weighted = differences
        if weights is not None:
            weighted = differences * weights[start : start + rows, None]
        sums += X.new_zeros(K, D).index_add_(0, chunk_labels, weighted)
        if full:
            scatter += _scatter_by_label(differences, weighted, chunk_labels, K)
        else:
            scatter += X.new_zeros(K, D).index_add_(0, chunk_labels, weighted * differences)
    total = float(X.shape[0]) if weights is None else weights.sum(dtype=ACCUMULATOR_DTYPE)
    stats = SufficientStatistics(
        counts,
        sums,
        scatter,
        centers,
        torch.zeros((), dtype=ACCUMULATOR_DTYPE, device=X.device),
        torch.as_tensor(total, dtype=ACCUMULATOR_DTYPE, device=X.device),
    )
    return stats.m_step(covariance_type, reg_covar, X.dtype)


def _scatter_by_label(
    differences: Tensor, weighted: Tensor, labels: Tensor, n_components: int
) -> Tensor:
    """``sum_{i: label_i = k} w_i z_i z_i^T`` for every k, (K, D, D), one product per
    label (``weighted`` holds the rows ``w_i z_i``, ``differences`` the ``z_i``)."""
    D = differences.shape[1]
    result = differences.new_zeros(n_components, D, D)
    counts = torch.bincount(labels, minlength=n_components).tolist()
    order = torch.argsort(labels)
    ordered = differences.index_select(0, order)
    ordered_weighted = ordered if weighted is differences else weighted.index_select(0, order)
    pairs = zip(ordered.split(counts), ordered_weighted.split(counts), strict=True)
    for k, (block, block_weighted) in enumerate(pairs):
        if block.shape[0]:
            torch.mm(block.T, block_weighted, out=result[k])
    return result


def initial_mixture(
    X: Tensor,
    n_components: int,
    covariance_type: type[Covariance],
    init_params: str,
    reg_covar: float,
    generator: torch.Generator,
    rows: int,
    sample_weight: Tensor | None = None,
) -> Mixture:
    """The starting mixture for EM, as scikit-learn's ``_initialize_parameters`` builds it.

    ``rows`` is the EM chunk length, used by the responsibility-based methods; k-means and
    its hard-label M-step size their own chunks (:func:`~mixtorch.fit.kmeans.kmeans_chunk_rows`).
    ``sample_weight`` (n_samples,) weighs the rows as the module notes say.
    """
    if init_params == "kmeans":
        result = kmeans(X, n_components, generator, sample_weight=sample_weight)
        return mixture_from_labels(
            X, result.labels, result.centers, covariance_type, reg_covar,
            sample_weight=sample_weight,
        )  # fmt: skip
    fn, centers = initial_responsibilities(
        X, n_components, init_params, generator, rows, sample_weight
    )
    if init_params in ("k-means++", "random_from_data"):
        # one-hot on the seed rows only: every other row has zero responsibility
        labels = torch.arange(n_components, device=X.device)
        return mixture_from_labels(centers, labels, centers, covariance_type, reg_covar)
    return mixture_from_responsibilities(X, fn, covariance_type, reg_covar, centers, rows)


def initial_responsibilities(
    X: Tensor,
    n_components: int,
    init_params: str,
    generator: torch.Generator,
    rows: int,
    sample_weight: Tensor | None = None,
) -> tuple[ResponsibilityFn, Tensor]:
    """Initial responsibilities (as a per-chunk function) and a (K, D) guess of the means.

    ``rows`` is not used: k-means and k-means++ size their own chunks
    (:func:`~mixtorch.fit.kmeans.kmeans_chunk_rows`). With ``sample_weight`` (n_samples,)
    the responsibilities of k-means clusters and of ``'random'`` come multiplied by the
    weights; those of seed rows do not (see the module notes).
    """
    weights = sample_weight
    if init_params == "kmeans":
        centers = kmeans(X, n_components, generator, sample_weight=weights).centers
        fn = _nearest_center(centers)
    elif init_params in ("k-means++", "random_from_data"):
        if init_params == "k-means++":
            centers, indices = kmeans_plusplus(X, n_components, generator, sample_weight=weights)
        else:
            indices = _random_rows(X.shape[0], n_components, generator, weights).to(X.device)
            centers = X[indices].clone()
        return _one_hot_rows(indices, n_components), centers
    elif init_params == "random":
        fn = _random_responsibilities(n_components, generator)
        centers = X[:1].expand(n_components, -1)
    else:
        raise ValueError(f"init_params must be one of {INIT_METHODS}, got {init_params!r}.")
    return (fn if weights is None else _weighted(fn, weights)), centers


def _random_rows(
    n_samples: int, count: int, generator: torch.Generator, weights: Tensor | None
) -> Tensor:
    """``count`` distinct rows: uniformly, or one after another with probability
    proportional to ``weights`` among the rows not drawn yet (rows of weight 0 never):
    the ``count`` smallest ``E_i / w_i`` with ``E_i`` standard exponential draws
    (Efraimidis and Spirakis), without ``torch.multinomial``'s limit of 2**24 rows."""
    if weights is None:
        return torch.randperm(n_samples, generator=generator, device=generator.device)[:count]
    positive = int((weights > 0).sum())
    if positive < count:
        raise ValueError(
            f"init_params='random_from_data' draws {count} distinct rows of positive "
            f"sample_weight, but only {positive} have one."
        )
    mass = weights.to(device=generator.device, dtype=torch.float64)
    keys = torch.empty_like(mass).exponential_(generator=generator) / mass
    return torch.topk(keys, count, largest=False).indices


def _weighted(fn: ResponsibilityFn, weights: Tensor) -> ResponsibilityFn:
    """``fn``'s responsibilities times the weights of their rows."""

    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        weight = weights[start : start + chunk.shape[0], None]
        return fn(chunk, start).to(chunk.dtype) * weight.to(chunk.dtype)

    return responsibilities


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

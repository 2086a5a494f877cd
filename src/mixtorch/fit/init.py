"""Initial mixtures for EM: from k-means, k-means++ seeds, random responsibilities or
random data points, following scikit-learn's ``init_params`` semantics."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor

from ..covariance import Covariance
from ..mixture import Mixture
from ..stats import SufficientStatistics, chunk_statistics
from .kmeans import kmeans, kmeans_plusplus, squared_distances

__all__ = [
    "INIT_METHODS",
    "initial_mixture",
    "initial_responsibilities",
    "mixture_from_responsibilities",
]

INIT_METHODS = ("kmeans", "k-means++", "random", "random_from_data")

#: responsibilities for the rows ``start:start + len(chunk)``
ResponsibilityFn = Callable[[Tensor, int], Tensor]


def mixture_from_responsibilities(
    X: Tensor,
    responsibility_fn: ResponsibilityFn,
    covariance_type: type[Covariance],
    reg_covar: float,
    reference: Tensor,
    rows: int,
) -> Mixture:
    """One M-step from responsibilities given chunk by chunk.

    ``reference`` (K, D) is a guess of the means (for accurate float32 moments).
    """
    shift = reference.mean(0)
    moment_reference = (
        reference if covariance_type.centred_per_component else shift.expand_as(reference)
    )
    total: SufficientStatistics | None = None
    for start in range(0, X.shape[0], rows):
        chunk = X[start : start + rows]
        responsibilities = responsibility_fn(chunk, start).to(X.dtype)
        stats = chunk_statistics(
            covariance_type, chunk - shift, responsibilities, moment_reference, shift
        )
        total = stats if total is None else total + stats
    assert total is not None
    return total.all_reduce().m_step(covariance_type, reg_covar, X.dtype)


def initial_mixture(
    X: Tensor,
    n_components: int,
    covariance_type: type[Covariance],
    init_params: str,
    reg_covar: float,
    generator: torch.Generator,
    rows: int,
) -> Mixture:
    """The starting mixture for EM, as scikit-learn's ``_initialize_parameters`` builds it."""
    # k-means holds (rows, K) distances, not (K, rows, D) differences: longer chunks fit
    # the same memory and cut per-chunk overhead.
    kmeans_rows = rows * max(1, X.shape[1] // 2)
    fn, centers = initial_responsibilities(X, n_components, init_params, generator, kmeans_rows)
    return mixture_from_responsibilities(X, fn, covariance_type, reg_covar, centers, rows)


def initial_responsibilities(
    X: Tensor, n_components: int, init_params: str, generator: torch.Generator, rows: int
) -> tuple[ResponsibilityFn, Tensor]:
    """Initial responsibilities (as a per-chunk function) and a (K, D) guess of the means."""
    if init_params == "kmeans":
        centers = kmeans(X, n_components, generator, rows).centers
        fn = _nearest_center(centers)
    elif init_params in ("k-means++", "random_from_data"):
        if init_params == "k-means++":
            centers, indices = kmeans_plusplus(X, n_components, generator, rows)
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
    shift = centers.mean(0)

    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        labels = squared_distances(chunk - shift, centers - shift).argmin(1)
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

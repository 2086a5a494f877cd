"""Initial responsibilities over the union of the shards of a ``torch.distributed`` group.

Under a process group each rank holds only its own rows, yet every rank must start from
the same parameters, and statistics may only be summed when every rank took its moments
about the same point. :func:`initial_statistics` follows scikit-learn's ``init_params``
on the union of the shards as ``GaussianMixture``'s streaming path does: a reservoir
sample merged across ranks (identical on every rank), k-means on it, Lloyd passes over
every rank's rows, then the statistics of the resulting responsibilities taken about the
(shared) centres and summed across ranks. The random generator must be synchronised
(:func:`mixtorch.distributed.synchronised_generator`) and draws the same numbers on every
rank; rows' own random responsibilities (``init_params='random'``) come from a
generator of their own, so the shared one stays in step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ..covariance import Covariance
from ..distributed import rank
from ..stats import ResponsibilityFn, SufficientStatistics, statistics_from_responsibilities
from .kmeans import kmeans, kmeans_plusplus, nearest_centers
from .streaming import reservoir_sample, stream_lloyd

__all__ = ["DEFAULT_SAMPLE_SIZE", "initial_statistics"]

#: Rows of the merged reservoir sample that k-means runs on (as GaussianMixture's
#: ``init_sample_size`` default).
DEFAULT_SAMPLE_SIZE = 100_000


def initial_statistics(
    chunks: Callable[[], Iterator[Tensor]],
    n_components: int,
    init_params: str,
    covariance_type: type[Covariance],
    generator: torch.Generator,
    sample_size: int = DEFAULT_SAMPLE_SIZE,
) -> SufficientStatistics:
    """Statistics of scikit-learn's initial responsibilities on the union of the shards.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterator over this rank's row blocks (Tensors of shape (n, D)).
    n_components : int
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}
    covariance_type : type of Covariance
    generator : torch.Generator
        Seeded identically on every rank.
    sample_size : int
        Rows of the merged reservoir sample.

    Returns
    -------
    SufficientStatistics
        Summed over every rank (identical on every rank).
    """
    sample, _ = reservoir_sample(chunks, sample_size, generator)
    K = n_components
    if init_params == "kmeans":
        centers = kmeans(sample, K, generator).centers
        centers = stream_lloyd(chunks, centers, sample)
        stats = statistics_from_responsibilities(
            chunks(), _nearest(centers), covariance_type, centers
        )
        return stats.all_reduce()
    if init_params == "random":
        seed = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
        rows_generator = torch.Generator(device=generator.device).manual_seed(seed + rank())
        reference = sample.mean(0).expand(K, -1)
        stats = statistics_from_responsibilities(
            chunks(), _random(K, rows_generator), covariance_type, reference
        )
        return stats.all_reduce()
    # k-means++ / random_from_data: one-hot on K seed rows only, as scikit-learn does;
    # the seeds are the same on every rank, so their statistics are not summed.
    if init_params == "k-means++":
        seeds = kmeans_plusplus(sample, K, generator)[0]
    else:
        order = torch.randperm(sample.shape[0], generator=generator, device=generator.device)
        seeds = sample[order[:K].to(sample.device)]
    identity: ResponsibilityFn = lambda chunk, start: torch.eye(  # noqa: E731
        K, dtype=chunk.dtype, device=chunk.device
    )
    return statistics_from_responsibilities([seeds], identity, covariance_type, seeds)


def _nearest(centers: Tensor) -> ResponsibilityFn:
    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        labels = nearest_centers(chunk, centers, rows=chunk.shape[0])
        return torch.nn.functional.one_hot(labels, centers.shape[0]).to(chunk.dtype)

    return responsibilities


def _random(n_components: int, generator: torch.Generator) -> ResponsibilityFn:
    def responsibilities(chunk: Tensor, start: int) -> Tensor:
        values = torch.rand(
            chunk.shape[0], n_components, generator=generator, device=generator.device
        ).to(device=chunk.device, dtype=chunk.dtype)
        return values / values.sum(1, keepdim=True)

    return responsibilities

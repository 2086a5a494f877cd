"""Fitting from data streams and across ranks: the pieces of exact EM over a chunk source.

An estimator's ``fit`` on a :class:`~mixtorch.sources.ChunkSource` (or on a rank's shard
while a ``torch.distributed`` process group is initialised) runs:

1. one pass that draws a uniform *reservoir sample* of at most ``init_sample_size`` rows
   (merged across ranks, so it is a sample of the union of the shards) and counts rows
   (:func:`reservoir_sample`);
2. k-means++ and Lloyd on that sample, then Lloyd over the full stream (at most
   :data:`LLOYD_PASSES` passes, sums and counts summed across ranks)
   (:func:`stream_start_mixture`);
3. exact EM passes over the stream (:func:`~mixtorch.fit.em.fit_em`), one ``all_reduce``
   of sufficient statistics per pass.

Given the same starting parameters, step 3 is the in-memory EM up to summation order.
Every function here takes and returns values (tensors, mixtures, :class:`PassMeter`);
none sees an estimator. A rank whose shard has no rows takes part with empty chunks and
contributes nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor

from .._chunks import iter_chunks
from ..covariance import Covariance
from ..distributed import all_reduce_sum, gather_rows, rank
from ..mixture import Mixture
from ..stats import (
    ACCUMULATOR_DTYPE,
    statistics_from_responsibilities,
)
from .init import _nearest_center, _random_responsibilities, mixture_from_labels
from .kmeans import kmeans, kmeans_plusplus, nearest_centers
from .start import StartSpec

__all__ = [
    "LLOYD_PASSES",
    "PassMeter",
    "gaussian_from_stream",
    "reservoir_sample",
    "stream_lloyd",
    "stream_start_mixture",
]

#: Lloyd passes over the full stream after k-means has converged on the sample.
LLOYD_PASSES = 10

Chunks = Callable[[], Iterator[Tensor]]


class PassMeter:
    """Wraps a chunk callable: moves chunks to the compute device and dtype, splits them to
    ``rows``, and records rows and seconds of the last pass for progress reports.

    An empty chunk (a rank with no rows) is passed on as it is, so the rank still takes
    part in every collective.
    """

    def __init__(self, source: Callable[[], Any], rows: int, device: torch.device, dtype: Any):
        self.source, self.rows, self.device, self.dtype = source, rows, device, dtype
        self.last_rows, self.last_seconds = 0, 0.0

    def __call__(self) -> Iterator[Tensor]:
        start, seen = time.perf_counter(), 0
        for chunk in self.source():
            if chunk.shape[0] == 0:
                yield chunk.to(device=self.device, dtype=self.dtype)
            for piece in iter_chunks(chunk, self.rows):
                seen += piece.shape[0]
                yield piece.to(device=self.device, dtype=self.dtype)
        self.last_rows, self.last_seconds = seen, time.perf_counter() - start

    def describe(self) -> str:
        """The last pass, for progress lines."""
        return f"{self.last_rows} rows in {self.last_seconds:.2f} s"


# -- initialisation on a stream --------------------------------------------------------
def reservoir_sample(
    chunks: Chunks, size: int, generator: torch.Generator, n_features: int | None = None
) -> tuple[Tensor, int]:
    """A uniform sample without replacement of at most ``size`` rows, in one pass.

    Every row gets a uniform random key and the ``size`` largest keys are kept, chunk by
    chunk (memory ~ ``size + chunk``). Across ranks the kept rows are gathered and the
    largest keys overall win, so the sample is uniform over the union of the shards and
    identical on every rank. Also returns the total number of rows (all ranks).
    A rank whose chunks hold no rows contributes none (``n_features`` sizes its empty
    sample when it yields no chunk at all).
    """
    if size < 1:
        raise ValueError(f"init_sample_size must be a positive integer, got {size!r}.")
    key_generator = torch.Generator(device=generator.device)
    base = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    key_generator.manual_seed(base + rank())  # ranks draw different keys
    kept_rows: Tensor | None = None
    kept_keys = torch.empty(0, dtype=torch.float64, device=generator.device)
    n_seen = 0
    for chunk in chunks():
        n_seen += chunk.shape[0]
        keys = torch.rand(
            chunk.shape[0], generator=key_generator, device=generator.device, dtype=torch.float64
        )
        rows = chunk if kept_rows is None else torch.cat([kept_rows, chunk])
        kept_keys = torch.cat([kept_keys, keys])
        if kept_keys.shape[0] > size:
            top = torch.topk(kept_keys, size).indices
            rows, kept_keys = rows[top.to(rows.device)], kept_keys[top]
        kept_rows = rows.clone() if rows is chunk else rows
    if kept_rows is None:
        if n_features is None:
            raise ValueError("The data source yielded no chunks.")
        kept_rows = torch.empty(0, n_features, device=generator.device)
    all_keys = torch.cat(gather_rows(kept_keys))
    all_rows = torch.cat(gather_rows(kept_rows))
    order = torch.argsort(all_keys, descending=True)[:size]
    total = all_reduce_sum(torch.tensor(float(n_seen), dtype=torch.float64))
    return all_rows[order.to(all_rows.device)], int(total)


def stream_start_mixture(
    chunks: Chunks, sample: Tensor, spec: StartSpec, generator: torch.Generator
) -> Mixture:
    """scikit-learn's ``init_params`` on a stream (k-means on ``sample``, then Lloyd over
    the stream); the parameters given in ``spec`` take precedence."""
    complete = spec.complete()
    if complete is not None:
        return complete
    K, reg_covar, method, covariance = (
        spec.n_components,
        spec.reg_covar,
        spec.method,
        spec.covariance,
    )
    if method == "kmeans":
        centers = kmeans(sample, K, generator).centers
        centers = stream_lloyd(chunks, centers, sample)
        start = mixture_from_stream(
            chunks, _nearest_center(centers), covariance, reg_covar, centers
        )
    elif method == "random":
        fn = _random_responsibilities(K, generator)
        start = mixture_from_stream(chunks, fn, covariance, reg_covar, sample.mean(0).expand(K, -1))
    else:  # k-means++ / random_from_data: one-hot on the seed rows only, as scikit-learn
        if method == "k-means++":
            seeds = kmeans_plusplus(sample, K, generator)[0]
        else:
            order = torch.randperm(sample.shape[0], generator=generator, device=generator.device)
            seeds = sample[order[:K].to(sample.device)]
        labels = torch.arange(K, device=seeds.device)
        start = mixture_from_labels(seeds, labels, seeds, covariance, reg_covar)
    return spec.override(start)


def stream_lloyd(chunks: Chunks, centers: Tensor, sample: Tensor, tol: float = 1e-4) -> Tensor:
    """Lloyd passes over the stream from ``centers`` until they move less than ``tol``
    times the mean feature variance (of the sample), at most :data:`LLOYD_PASSES` passes.

    A cluster that receives no rows keeps its centre.
    """
    shift = sample.mean(0)
    threshold = tol * float(sample.var(0, unbiased=False).mean())
    K, D = centers.shape
    for _ in range(LLOYD_PASSES):
        totals = torch.zeros(K, D + 1, dtype=ACCUMULATOR_DTYPE, device=centers.device)
        for chunk in chunks():
            labels = nearest_centers(chunk, centers, rows=chunk.shape[0])
            Y = chunk - shift
            totals[:, :D].index_add_(0, labels, Y.to(ACCUMULATOR_DTYPE))
            totals[:, D] += torch.bincount(labels, minlength=K).to(ACCUMULATOR_DTYPE)
        totals = all_reduce_sum(totals)  # one collective: sums and counts together
        counts = totals[:, D]
        means = (totals[:, :D] / counts.clamp_min(1)[:, None]).to(centers.dtype) + shift
        new_centers = torch.where((counts > 0)[:, None], means, centers)
        movement = float(((new_centers - centers) ** 2).sum())
        centers = new_centers
        if movement <= threshold:
            break
    return centers


def mixture_from_stream(
    chunks: Chunks,
    responsibility_fn: Callable[[Tensor, int], Tensor],
    covariance_type: type[Covariance],
    reg_covar: float,
    reference: Tensor,
) -> Mixture:
    """One M-step from per-chunk responsibilities, summed over the stream and ranks."""
    stats = statistics_from_responsibilities(
        chunks(), responsibility_fn, covariance_type, reference
    )
    return stats.all_reduce().m_step(covariance_type, reg_covar, reference.dtype)


# -- single Gaussian ---------------------------------------------------------------------
def gaussian_from_stream(
    chunks: Chunks,
    covariance: type[Covariance],
    reg_covar: float,
    n_features: int,
    device: Any,
    dtype: torch.dtype,
) -> Mixture:
    """A single Gaussian in two passes over the stream (and ranks): the mean, then the
    scatter about it, each summed over chunks and ranks."""
    totals = torch.zeros(n_features + 1, dtype=ACCUMULATOR_DTYPE, device=device)
    for chunk in chunks():
        totals[:n_features] += chunk.sum(0, dtype=ACCUMULATOR_DTYPE)
        totals[n_features] += chunk.shape[0]
    totals = all_reduce_sum(totals)
    if float(totals[n_features]) < 2:
        raise ValueError(
            f"Found {int(totals[n_features])} sample(s) while a minimum of 2 is required."
        )
    mean = (totals[:n_features] / totals[n_features]).to(dtype)

    def ones(chunk: Tensor, start: int) -> Tensor:
        return torch.ones(chunk.shape[0], 1, dtype=chunk.dtype, device=chunk.device)

    return mixture_from_stream(chunks, ones, covariance, reg_covar, mean[None])

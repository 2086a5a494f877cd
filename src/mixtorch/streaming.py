"""Fitting from data streams and across ranks: exact EM over a chunk source.

``GaussianMixture.fit`` hands a :class:`~mixtorch.sources.ChunkSource` (or anything
:func:`~mixtorch.sources.as_source` recognises) to :func:`fit_source`, which also serves
every in-memory fit while a ``torch.distributed`` process group is initialised:

1. one pass draws a uniform *reservoir sample* of at most ``init_sample_size`` rows
   (merged across ranks, so it is a sample of the union of the shards) and counts rows;
2. k-means++ and Lloyd run on that sample, then Lloyd continues over the full stream
   (at most :data:`LLOYD_PASSES` passes, sums and counts summed across ranks);
3. exact EM passes over the stream (:func:`~mixtorch.fit.em.fit_em`), one ``all_reduce``
   of sufficient statistics per pass.

Given the same starting parameters, step 3 is the in-memory EM up to summation order.

:func:`partial_fit` (stepwise EM) lives in :mod:`mixtorch.stepwise`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import torch
from sklearn.exceptions import ConvergenceWarning
from torch import Tensor

from ._chunks import chunk_rows, iter_chunks
from ._validation import OutputKind, as_output, check_random_generator, resolve_dtype, to_tensor
from .covariance import Covariance, covariance_class
from .distributed import all_reduce_sum, gather_rows, is_distributed, rank, synchronised_generator
from .fit.em import EMTrace, fit_em
from .fit.init import _nearest_center, _random_responsibilities, mixture_from_labels
from .fit.kmeans import kmeans, kmeans_plusplus, nearest_centers
from .mixture import Mixture
from .sources import ChunkSource, as_source, from_tensor, is_source
from .stats import ACCUMULATOR_DTYPE, SufficientStatistics, chunk_statistics
from .stepwise import partial_fit

__all__ = [
    "LLOYD_PASSES",
    "fit_gaussian_source",
    "fit_source",
    "partial_fit",
    "reservoir_sample",
    "stream_lloyd",
    "uses_streaming",
    "uses_streaming_gaussian",
]

#: Lloyd passes over the full stream after k-means has converged on the sample.
LLOYD_PASSES = 10

Chunks = Callable[[], Iterator[Tensor]]


def uses_streaming(estimator: Any, X: Any) -> bool:
    """Whether ``fit(X)`` goes through :func:`fit_source` (sources, or any EM fit while a
    process group is initialised, so initialisation is global too)."""
    return is_source(X) or (is_distributed() and getattr(estimator, "algorithm", "em") == "em")


class _PassMeter:
    """Wraps a chunk callable: moves chunks to the compute device and dtype, splits them to
    ``rows``, and records rows and seconds of the last pass for progress reports."""

    def __init__(self, source: ChunkSource, rows: int, device: torch.device, dtype: Any):
        self.source, self.rows, self.device, self.dtype = source, rows, device, dtype
        self.last_rows, self.last_seconds = 0, 0.0

    def __call__(self) -> Iterator[Tensor]:
        start, seen = time.perf_counter(), 0
        for chunk in self.source():
            for piece in iter_chunks(chunk, self.rows):
                seen += piece.shape[0]
                yield piece.to(device=self.device, dtype=self.dtype)
        self.last_rows, self.last_seconds = seen, time.perf_counter() - start


# -- fitting from a source -------------------------------------------------------------
def fit_source(estimator: Any, X: Any, return_labels: bool = True) -> Any:
    """``GaussianMixture.fit_predict`` for a chunk source (or a rank's shard).

    Returns the labels (NumPy for sources, as the input for arrays/tensors) when
    ``return_labels``, else None.
    """
    estimator._check_parameters()
    if estimator.algorithm != "em":
        raise ValueError("Fitting from a data source or across ranks needs algorithm='em'.")
    warm = bool(estimator.warm_start) and hasattr(estimator, "mixture_")
    source, kind, dtype, device = _prepare_source(estimator, X, warm)
    n_features = int(source.n_features or 0)
    rows = chunk_rows(
        estimator.n_components, n_features, estimator.chunk_size, estimator.covariance_type
    )
    chunks = _PassMeter(source, rows, device, dtype)
    size = estimator.init_sample_size
    if isinstance(size, bool) or not isinstance(size, int) or size < estimator.n_components:
        raise ValueError(f"init_sample_size must be an integer >= n_components, got {size!r}.")
    generator = synchronised_generator(check_random_generator(estimator.random_state), device)
    sample, n_samples = reservoir_sample(chunks, int(estimator.init_sample_size), generator)
    if n_samples < max(2, estimator.n_components):
        raise ValueError(
            f"Expected n_samples >= max(2, n_components) but got n_samples = {n_samples}, "
            f"n_components = {estimator.n_components}."
        )
    given = estimator._initial_parameters(n_features, sample)
    best: tuple[Mixture, EMTrace] | None = None
    for init in range(1 if warm else estimator.n_init):
        if warm:
            start, previous = estimator.mixture_.to(device, dtype), estimator.lower_bound_
        else:
            start = _stream_initialise(estimator, chunks, sample, generator, rows, given)
            previous = -math.inf
        estimator._say(1, f"Initialization {init}")
        result = fit_em(
            chunks,
            start,
            tol=estimator.tol,
            max_iter=estimator.max_iter,
            reg_covar=estimator.reg_covar,
            previous_lower_bound=previous,
            callback=_progress(estimator, chunks),
        )
        if best is None or result[1].lower_bound > best[1].lower_bound:
            best = result
    assert best is not None
    if not best[1].converged and estimator.max_iter > 0:
        warnings.warn(
            "Best performing initialization did not converge. Try different init "
            "parameters, or increase max_iter, tol, or check for degenerate data.",
            ConvergenceWarning,
            stacklevel=3,
        )
    estimator._store(best[0], best[1], kind)
    if not return_labels:
        return None
    labels = [best[0].predict(chunk, rows) for chunk in chunks()]
    return as_output(torch.cat(labels), kind)


def _prepare_source(
    estimator: Any, X: Any, warm: bool
) -> tuple[ChunkSource, OutputKind, torch.dtype, torch.device]:
    if is_source(X):
        source = as_source(X)
        first = source.first_chunk()
        dtype = estimator.mixture_.dtype if warm else resolve_dtype(estimator.dtype, first)
        n_features = int(first.shape[1])
        if warm and n_features != estimator.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        device = torch.device(estimator.device) if estimator.device is not None else first.device
        kind = OutputKind(False)
    else:
        dtype = estimator.mixture_.dtype if warm else resolve_dtype(estimator.dtype, X)
        tensor, kind = to_tensor(estimator, X, reset=not warm, dtype=dtype, device=estimator.device)
        source, device = from_tensor(tensor, max(1, tensor.shape[0])), tensor.device
    columns = float(source.n_features or 0)
    total = all_reduce_sum(torch.tensor([columns, columns**2], dtype=torch.float64))
    count = float(all_reduce_sum(torch.ones((), dtype=torch.float64)))
    if float(total[1]) * count != float(total[0]) ** 2:  # variance of n_features across ranks
        raise ValueError("Every rank's shard must have the same number of features.")
    return source, kind, dtype, device


def _progress(estimator: Any, meter: _PassMeter) -> Callable[[int, float, float], None] | None:
    if not estimator.verbose:
        return None

    def report(iteration: int, lower_bound: float, change: float) -> None:
        if iteration % estimator.verbose_interval == 0:
            estimator._say(
                1,
                f"  Pass {iteration}: {meter.last_rows} rows in {meter.last_seconds:.2f} s"
                f"\t lower bound {lower_bound:.5f}\t change {change:.3g}",
            )

    return report


# -- initialisation on a stream --------------------------------------------------------
def reservoir_sample(chunks: Chunks, size: int, generator: torch.Generator) -> tuple[Tensor, int]:
    """A uniform sample without replacement of at most ``size`` rows, in one pass.

    Every row gets a uniform random key and the ``size`` largest keys are kept, chunk by
    chunk (memory ~ ``size + chunk``). Across ranks the kept rows are gathered and the
    largest keys overall win, so the sample is uniform over the union of the shards and
    identical on every rank. Also returns the total number of rows (all ranks).
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
        raise ValueError("The data source yielded no chunks.")
    all_keys = torch.cat(gather_rows(kept_keys))
    all_rows = torch.cat(gather_rows(kept_rows))
    order = torch.argsort(all_keys, descending=True)[:size]
    total = all_reduce_sum(torch.tensor(float(n_seen), dtype=torch.float64))
    return all_rows[order.to(all_rows.device)], int(total)


def _stream_initialise(
    estimator: Any,
    chunks: Chunks,
    sample: Tensor,
    generator: torch.Generator,
    rows: int,
    given: dict[str, Any],
) -> Mixture:
    """scikit-learn's ``init_params`` on a stream; ``*_init`` parameters override."""
    if len(given) == 3:
        return Mixture(given["weights"], given["means"], given["covariance"])
    covariance_type = covariance_class(estimator.covariance_type)
    K, reg_covar, method = estimator.n_components, estimator.reg_covar, estimator.init_params
    if method == "kmeans":
        centers = kmeans(sample, K, generator).centers
        centers = stream_lloyd(chunks, centers, sample)
        start = _mixture_from_stream(
            chunks, _nearest_center(centers), covariance_type, reg_covar, centers
        )
    elif method == "random":
        fn = _random_responsibilities(K, generator)
        start = _mixture_from_stream(
            chunks, fn, covariance_type, reg_covar, sample.mean(0).expand(K, -1)
        )
    else:  # k-means++ / random_from_data: one-hot on the seed rows only, as scikit-learn
        if method == "k-means++":
            seeds = kmeans_plusplus(sample, K, generator)[0]
        else:
            order = torch.randperm(sample.shape[0], generator=generator, device=generator.device)
            seeds = sample[order[:K].to(sample.device)]
        labels = torch.arange(K, device=seeds.device)
        start = mixture_from_labels(seeds, labels, seeds, covariance_type, reg_covar)
    return Mixture(
        given.get("weights", start.weights),
        given.get("means", start.means),
        given.get("covariance", start.covariance),
    )


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


def _mixture_from_stream(
    chunks: Chunks,
    responsibility_fn: Callable[[Tensor, int], Tensor],
    covariance_type: type[Covariance],
    reg_covar: float,
    reference: Tensor,
) -> Mixture:
    """One M-step from per-chunk responsibilities, summed over the stream and ranks."""
    shift = reference.mean(0)
    moment_reference = (
        reference if covariance_type.centred_per_component else shift.expand_as(reference)
    )
    total: SufficientStatistics | None = None
    start = 0
    for chunk in chunks():
        responsibilities = responsibility_fn(chunk, start).to(chunk.dtype)
        stats = chunk_statistics(
            covariance_type, chunk - shift, responsibilities, moment_reference, shift
        )
        total = stats if total is None else total + stats
        start += chunk.shape[0]
    assert total is not None
    return total.all_reduce().m_step(covariance_type, reg_covar, reference.dtype)


# -- single Gaussian ---------------------------------------------------------------------
def uses_streaming_gaussian(estimator: Any, X: Any) -> bool:
    """Whether ``Gaussian.fit(X)`` goes through :func:`fit_gaussian_source`."""
    closed_form = getattr(estimator, "algorithm", "closed_form") == "closed_form"
    return is_source(X) or (is_distributed() and closed_form)


def fit_gaussian_source(estimator: Any, X: Any, sample_weight: Any = None) -> None:
    """``Gaussian.fit`` in two passes over a source (or across ranks): the mean, then the
    scatter about it, each summed over chunks and ranks."""
    if sample_weight is not None:
        raise ValueError("sample_weight is not supported for data sources or across ranks.")
    if estimator.algorithm != "closed_form":
        raise ValueError(
            "Fitting from a data source or across ranks needs algorithm='closed_form'."
        )
    covariance_type = covariance_class(estimator.covariance_type)
    source, kind, dtype, device = _prepare_source(estimator, X, warm=False)
    n_features = int(source.n_features or 0)
    chunks = _PassMeter(source, chunk_rows(1, n_features, estimator.chunk_size), device, dtype)
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

    estimator._store(
        _mixture_from_stream(chunks, ones, covariance_type, estimator.reg_covar, mean[None]),
        kind,
    )

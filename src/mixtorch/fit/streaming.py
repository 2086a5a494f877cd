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
from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from .._chunks import iter_chunks
from ..covariance import Covariance
from ..distributed import all_reduce_sum
from ..mixture import Mixture
from ..stats import (
    ACCUMULATOR_DTYPE,
    statistics_from_responsibilities,
)
from ._reservoir import reservoir_sample
from .init import _nearest_center, _random_responsibilities, mixture_from_labels
from .kmeans import kmeans, kmeans_plusplus, nearest_centers
from .start import StartSpec

__all__ = [
    "LLOYD_PASSES",
    "PassMeter",
    "gaussian_from_stream",
    "reservoir_sample",
    "stream_lloyd",
    "stream_mean",
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

    Parameters
    ----------
    source : callable
        Returns a fresh iterable of row chunks (n_i, D) on each call.
    rows : int
        Most rows per chunk handed on.
    device : torch.device
        Where the chunks are moved.
    dtype : torch.dtype
        The dtype they are cast to.

    Attributes
    ----------
    last_rows : int
        Rows of the last complete pass.
    last_seconds : float
        Its duration.

    See Also
    --------
    mixtorch.fit.em.fit_em : Takes it as its ``chunks``.
    mixtorch.sources.ChunkSource : The data sources it usually wraps.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.streaming import PassMeter
    >>> meter = PassMeter(lambda: [torch.ones(5, 2)], 2, torch.device("cpu"), torch.float64)
    >>> [chunk.shape[0] for chunk in meter()], meter.last_rows
    ([2, 2, 1], 5)
    >>> next(iter(meter())).dtype
    torch.float64
    """

    def __init__(self, source: Callable[[], Any], rows: int, device: torch.device, dtype: Any):
        self.source, self.rows, self.device, self.dtype = source, rows, device, dtype
        self.last_rows, self.last_seconds = 0, 0.0

    def __call__(self) -> Iterator[Tensor]:
        start, seen = time.perf_counter(), 0
        chunks = iter(self.source())
        # Not a for loop: its variable would keep the previous chunk (and the last piece,
        # a view of it) alive while the source reads the next one, two chunks at once.
        while (chunk := next(chunks, None)) is not None:
            if chunk.shape[0] == 0:
                yield chunk.to(device=self.device, dtype=self.dtype)
            pieces = iter_chunks(chunk, self.rows)
            del chunk  # the pieces hold it until the last one is handed on
            while (piece := next(pieces, None)) is not None:
                seen += piece.shape[0]
                moved = piece.to(device=self.device, dtype=self.dtype)
                del piece
                yield moved
                del moved
        self.last_rows, self.last_seconds = seen, time.perf_counter() - start

    def describe(self) -> str:
        """The last pass, for progress lines.

        Returns
        -------
        str
            Rows and seconds of the last complete pass.

        See Also
        --------
        mixtorch.fit.em.fit_em : A consumer of the chunks whose passes it times.
        """
        return f"{self.last_rows} rows in {self.last_seconds:.2f} s"


# -- initialisation on a stream --------------------------------------------------------
def stream_start_mixture(
    chunks: Chunks, sample: Tensor, spec: StartSpec, generator: torch.Generator
) -> Mixture:
    """scikit-learn's ``init_params`` on a stream (k-means on ``sample``, then Lloyd over
    the stream); the parameters given in ``spec`` take precedence.

    ``'kmeans'`` seeds k-means on the sample, refines the centres by
    :func:`stream_lloyd`, then takes one M-step over the stream from hard assignments;
    ``'random'`` takes one M-step from random responsibilities; ``'k-means++'`` and
    ``'random_from_data'`` use the seed rows alone, as scikit-learn does.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (n_i, D) on each call.
    sample : Tensor of shape (n_sample, D)
        A uniform sample of the stream (:func:`reservoir_sample`).
    spec : StartSpec
        Components, covariance type, method, ``reg_covar`` and given parameters.
    generator : torch.Generator
        Draws seeds and random responsibilities.

    Returns
    -------
    Mixture
        The starting mixture.

    See Also
    --------
    mixtorch.fit.start.start_mixture : The in-memory counterpart.
    mixtorch.fit.em.fit_em : What runs from it.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance
    >>> from mixtorch.fit.start import StartSpec
    >>> from mixtorch.fit.streaming import stream_start_mixture
    >>> noise = torch.Generator().manual_seed(0)
    >>> near, far = torch.randn(50, 2, generator=noise), torch.randn(50, 2, generator=noise)
    >>> X = torch.cat([near, far + 8])
    >>> spec = StartSpec(2, FullCovariance, "kmeans", 1e-6)
    >>> start = stream_start_mixture(lambda: [X[:30], X[30:]], X[::2], spec, noise)
    >>> sorted(round(value) for value in start.means[:, 0].tolist()), start.weights.tolist()
    ([0, 8], [0.5, 0.5])
    """
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

    A cluster that receives no rows keeps its centre. Sums and counts are summed across
    ``torch.distributed`` ranks in one collective per pass.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (n_i, D) on each call.
    centers : Tensor of shape (K, D)
        Starting centres.
    sample : Tensor of shape (n_sample, D)
        Sets the shift and the scale of ``tol``.
    tol : float, default=1e-4
        Relative tolerance on the summed squared movement of the centres.

    Returns
    -------
    Tensor of shape (K, D)
        The centres after the last pass.

    See Also
    --------
    mixtorch.fit.kmeans.lloyd : The in-memory iterations.

    References
    ----------
    .. [1] S. P. Lloyd (1982), "Least squares quantization in PCM", *IEEE Transactions
       on Information Theory* 28(2).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.streaming import stream_lloyd
    >>> X = torch.tensor([[0.0], [1.0], [9.0], [11.0]])
    >>> stream_lloyd(lambda: [X[:2], X[2:]], torch.tensor([[1.0], [9.0]]), X)
    tensor([[ 0.5000],
            [10.0000]])
    """
    shift = sample.mean(0)
    threshold = tol * float(sample.var(0, unbiased=False).mean())
    K, D = centers.shape
    for _ in range(LLOYD_PASSES):
        totals = torch.zeros(K, D + 1, dtype=ACCUMULATOR_DTYPE, device=centers.device)
        stream = iter(chunks())
        # Not a for loop: its variable (and labels, Y) would keep the previous chunk alive
        # while the source reads the next one (see PassMeter).
        while (chunk := next(stream, None)) is not None:
            labels = nearest_centers(chunk, centers, rows=chunk.shape[0])
            Y = chunk - shift
            totals[:, :D].index_add_(0, labels, Y.to(ACCUMULATOR_DTYPE))
            totals[:, D] += torch.bincount(labels, minlength=K).to(ACCUMULATOR_DTYPE)
            del chunk, labels, Y
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
    scatter about it, each summed over chunks and ranks.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (n_i, D) on each call.
    covariance : type of Covariance
        The covariance kind of the result.
    reg_covar : float
        Added to the diagonal of the covariance.
    n_features : int
        D.
    device : torch.device
        Where the sums are kept.
    dtype : torch.dtype
        dtype of the result.

    Returns
    -------
    Mixture
        One component: the mean and the biased covariance (maximum likelihood).

    Raises
    ------
    ValueError
        If the stream holds fewer than 2 rows over all ranks.

    See Also
    --------
    mixtorch.Gaussian : The estimator that calls it on chunked data.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance
    >>> from mixtorch.fit.streaming import gaussian_from_stream
    >>> X = torch.randn(100, 2, generator=torch.Generator().manual_seed(0)).double()
    >>> fitted = gaussian_from_stream(lambda: [X[:40], X[40:]], FullCovariance, 0.0, 2, "cpu",
    ...                               torch.float64)
    >>> torch.allclose(fitted.covariance.covariances[0], torch.cov(X.T, correction=0))
    True
    """
    mean = stream_mean(chunks, n_features, dtype, device, min_rows=2)

    def ones(chunk: Tensor, start: int) -> Tensor:
        return torch.ones(chunk.shape[0], 1, dtype=chunk.dtype, device=chunk.device)

    return mixture_from_stream(chunks, ones, covariance, reg_covar, mean[None])


def stream_mean(
    chunks: Callable[[], Iterable[Tensor]],
    n_features: int,
    dtype: torch.dtype,
    device: Any,
    min_rows: int = 1,
) -> Tensor:
    """The mean of the rows of a stream (and of the ranks' shards), summed in float64.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (n_i, D) on each call; read once.
    n_features : int
        D.
    dtype : torch.dtype
        dtype of the result.
    device : torch.device
        Where the sums are kept.
    min_rows : int, default=1
        The fewest rows, over all ranks, the caller can use.

    Returns
    -------
    Tensor of shape (n_features,)
        The column means of every row read, in ``dtype`` on ``device``.

    Raises
    ------
    ValueError
        If the stream holds fewer than ``min_rows`` rows over all ranks.

    See Also
    --------
    gaussian_from_stream : The mean pass of a Gaussian fitted from a stream.

    Examples
    --------
    >>> import torch
    >>> chunks = lambda: [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([[5.0, 9.0]])]
    >>> stream_mean(chunks, 2, torch.float64, "cpu")
    tensor([3., 5.], dtype=torch.float64)
    """
    totals = torch.zeros(n_features + 1, dtype=ACCUMULATOR_DTYPE, device=device)
    stream = iter(chunks())
    while (chunk := next(stream, None)) is not None:  # holds one chunk at a time
        totals[:n_features] += chunk.sum(0, dtype=ACCUMULATOR_DTYPE)
        totals[n_features] += chunk.shape[0]
        del chunk
    totals = all_reduce_sum(totals)
    if float(totals[n_features]) < min_rows:
        raise ValueError(
            f"Found {int(totals[n_features])} sample(s) while a minimum of {min_rows} is required."
        )
    return (totals[:n_features] / totals[n_features]).to(dtype)

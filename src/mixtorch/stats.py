"""Additive sufficient statistics of a Gaussian mixture: the one statistics engine.

In-memory, chunked, streaming and distributed EM and variational Bayes are one piece of
code: accumulate :class:`SufficientStatistics` over chunks (``+``), sum them across
processes (:meth:`SufficientStatistics.all_reduce`), then turn them into parameters:
:meth:`SufficientStatistics.m_step` for maximum likelihood, or the counts, means and
centred scatter of :meth:`SufficientStatistics.moments` for the variational update.
Statistics come from one of two passes:

* :func:`accumulate_statistics`, the E-step under a mixture, through the kernels of
  :mod:`mixtorch.estep` (threads, float32 guard, bounded memory); the variational E-step
  is the same pass with its own per-component bias (``log_weights``) and the
  responsibilities' entropy;
* :func:`statistics_from_responsibilities`, given responsibilities (an initialisation).

Moments are taken about a *reference* point per component (the current means for
full/tied covariances, the mixture centre for diag/spherical), so the final
``scatter - N * delta delta^T`` correction only involves the small step ``delta`` of the
means and float32 does not cancel. Chunk results are added up in float64.

:class:`SufficientStatistics` itself lives in :mod:`mixtorch._sufficient_statistics` and
is re-exported here; this module holds the passes over data.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence

import torch
from torch import Tensor

from ._parallel import chunk_workers, fold_in_threads
from ._sufficient_statistics import ACCUMULATOR_DTYPE, SufficientStatistics
from .covariance import Covariance
from .estep import ChunkSums, EStepKernel
from .mixture import Mixture

__all__ = [
    "ResponsibilityFn",
    "SufficientStatistics",
    "accumulate_statistics",
    "chunk_statistics",
    "pass_chunks",
    "statistics_from_responsibilities",
]

#: Fewest rows :func:`pass_chunks` cuts a chunk down to so that threads get enough chunks.
MIN_THREAD_CHUNK_ROWS = 2048

#: ``fn(chunk, start)``: the (rows, K) responsibilities of rows ``start:start + len(chunk)``
ResponsibilityFn = Callable[[Tensor, int], Tensor]


def chunk_statistics(
    covariance_type: type[Covariance],
    Y: Tensor,
    responsibilities: Tensor,
    reference: Tensor,
    shift: Tensor,
    log_likelihood: Tensor | None = None,
    sample_weight: Tensor | None = None,
) -> SufficientStatistics:
    """Statistics of one chunk.

    Parameters
    ----------
    covariance_type : type of Covariance
        Decides whether the scatter is full (K, D, D) or diagonal (K, D).
    Y : Tensor of shape (rows, D)
        The chunk minus ``shift``.
    responsibilities : Tensor of shape (rows, K)
        Responsibilities of its rows.
    reference : Tensor of shape (K, D)
        Where moments are taken, in original coordinates.
    shift : Tensor of shape (D,)
        The point subtracted from the chunk.
    log_likelihood : Tensor, default=None
        The chunk's summed log-likelihood; None records zero.
    sample_weight : Tensor of shape (rows,), default=None
        Row weights multiplying the responsibilities; None weighs every row 1.

    Returns
    -------
    SufficientStatistics
        In float64.

    See Also
    --------
    statistics_from_responsibilities : Sums this over chunks.

    Examples
    --------
    Two rows wholly in one component, moments about the origin:

    >>> import torch
    >>> from mixtorch import DiagCovariance
    >>> from mixtorch.stats import chunk_statistics
    >>> X = torch.tensor([[1.0, 2.0], [3.0, 4.0]], dtype=torch.float64)
    >>> zero = torch.zeros(2, dtype=torch.float64)
    >>> stats = chunk_statistics(DiagCovariance, X, torch.ones(2, 1, dtype=torch.float64),
    ...                          zero[None], shift=zero)
    >>> stats.counts.tolist(), stats.sums.tolist(), stats.scatter.tolist()  # N, sum x, sum x**2
    ([2.0], [[4.0, 6.0]], [[10.0, 20.0]])
    """
    if sample_weight is not None:
        responsibilities = responsibilities * sample_weight[:, None]
    sums, scatter = covariance_type.moments(Y, responsibilities, reference - shift)
    n_samples = sample_weight.sum() if sample_weight is not None else torch.tensor(Y.shape[0])
    ll = log_likelihood if log_likelihood is not None else torch.zeros(())
    return SufficientStatistics(
        counts=responsibilities.sum(0).to(ACCUMULATOR_DTYPE),
        sums=sums.to(ACCUMULATOR_DTYPE),
        scatter=scatter.to(ACCUMULATOR_DTYPE),
        reference=reference,
        log_likelihood=ll.to(device=Y.device, dtype=ACCUMULATOR_DTYPE),
        n_samples=n_samples.to(device=Y.device, dtype=ACCUMULATOR_DTYPE),
    )


def pass_chunks(X: Tensor, rows: int) -> list[Tensor]:
    """Row blocks of in-memory ``X`` for E-step passes.

    At most ``rows`` rows each, and on a CPU with several threads enough blocks for the
    chunk threads of :func:`accumulate_statistics` (four per thread, see
    :func:`mixtorch._parallel.chunk_workers`) while each keeps at least
    :data:`MIN_THREAD_CHUNK_ROWS` rows. Without this a diag model on 100k rows (three
    43690-row chunks) ran every operation across both threads: on a loaded 2-core
    machine a variational pass took 155-235 ms against 20-49 ms with whole chunks per
    thread (one thread alone: 42 ms with 43690 rows, 33-37 ms with 6250-12500).

    Parameters
    ----------
    X : Tensor of shape (n_samples, D)
        The data.
    rows : int
        Largest chunk (from :func:`mixtorch._chunks.chunk_rows`).

    Returns
    -------
    list of Tensor
        Views of consecutive row blocks of ``X``.

    See Also
    --------
    accumulate_statistics

    Examples
    --------
    >>> import torch
    >>> from mixtorch.stats import pass_chunks
    >>> sum(len(block) for block in pass_chunks(torch.zeros(10_000, 2), rows=4096))
    10000
    """
    threads = torch.get_num_threads() if X.device.type == "cpu" else 1
    wanted = 4 * threads
    if threads > 1 and X.shape[0] < wanted * rows:
        rows = max(min(rows, MIN_THREAD_CHUNK_ROWS), math.ceil(X.shape[0] / wanted))
    return list(X.split(rows))


def statistics_from_responsibilities(
    chunks: Iterable[Tensor],
    responsibility_fn: ResponsibilityFn,
    covariance_type: type[Covariance],
    reference: Tensor,
) -> SufficientStatistics:
    """Statistics of given responsibilities, summed over ``chunks`` (this rank only).

    The one "M-step from a responsibility function" of every initialisation: follow it
    with :meth:`SufficientStatistics.all_reduce` when ``chunks`` is one rank's shard
    (``reference`` must then be the same on every rank), then an M-step.

    Parameters
    ----------
    chunks : iterable of Tensor of shape (rows, D)
        Consecutive row blocks; ``responsibility_fn`` gets each with its first row index.
    responsibility_fn : callable
        ``fn(chunk, start)`` gives the (rows, K) responsibilities of the chunk.
    covariance_type : type of Covariance
        The kind of covariance the statistics are for.
    reference : Tensor of shape (K, D)
        A guess of the means: moments are taken about it (full/tied) or about its mean
        (diag/spherical), so float32 does not cancel.

    Returns
    -------
    SufficientStatistics
        Summed over the chunks, with zero log-likelihood.

    Raises
    ------
    ValueError
        If ``chunks`` is empty.

    See Also
    --------
    accumulate_statistics : Responsibilities from a mixture instead.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import DiagCovariance
    >>> from mixtorch.stats import statistics_from_responsibilities
    >>> X = torch.arange(8.0, dtype=torch.float64).reshape(4, 2)
    >>> halves = lambda chunk, start: torch.full((len(chunk), 2), 0.5, dtype=chunk.dtype)
    >>> stats = statistics_from_responsibilities([X], halves, DiagCovariance, torch.zeros(2, 2))
    >>> stats.counts
    tensor([2., 2.], dtype=torch.float64)
    """
    shift = reference.mean(0)
    about = reference if covariance_type.centred_per_component else shift.expand_as(reference)
    total: SufficientStatistics | None = None
    start = 0
    stream = iter(chunks)
    while (chunk := next(stream, None)) is not None:  # each chunk dropped before the next
        chunk = chunk.to(reference.dtype)
        responsibilities = responsibility_fn(chunk, start).to(chunk.dtype)
        stats = chunk_statistics(covariance_type, chunk - shift, responsibilities, about, shift)
        total = stats if total is None else total + stats
        start += chunk.shape[0]
        del chunk, responsibilities, stats
    if total is None:
        raise ValueError("The data source yielded no chunks.")
    return total


def accumulate_statistics(
    mixture: Mixture,
    chunks: Iterable[Tensor | tuple[Tensor, Tensor]],
    *,
    log_weights: Tensor | None = None,
    entropy: bool = False,
) -> SufficientStatistics:
    """One E-step pass: responsibilities of every chunk under ``mixture``, summed.

    A sequence of chunks (already in memory) is shared out to threads on CPU (see
    :mod:`mixtorch._parallel`); any other iterable is consumed one chunk at a time. Chunk
    sums are added up in float64, in chunk order; the moments are returned about the
    means for full/tied covariances and about the mixture centre for diag/spherical ones.

    Parameters
    ----------
    mixture : Mixture
        The current model (its E-step kernel computes the responsibilities).
    chunks : iterable of Tensor of shape (rows, D), or of (Tensor, Tensor) pairs
        Row blocks, or ``(chunk, sample_weight)`` pairs.
    log_weights : Tensor of shape (K,), default=None
        Per-component constants used instead of ``log(mixture.weights)``: the
        log-probabilities are ``log_weights_k + log N(x | mean_k, Sigma_k)``. The
        variational E-step passes the expected log-weights plus its Wishart terms here
        (:meth:`mixtorch.fit.variational.VariationalPosterior.log_offsets`).
    entropy : bool, default=False
        Also sum ``-sum_k r_ik log r_ik`` (:attr:`SufficientStatistics.entropy`).

    Returns
    -------
    SufficientStatistics
        With the summed log-likelihood of the data under ``mixture``.

    Raises
    ------
    ValueError
        If ``chunks`` is empty.

    See Also
    --------
    SufficientStatistics.m_step : The M-step that follows.
    statistics_from_responsibilities

    Examples
    --------
    The summed log-likelihood is that of ``torch.distributions``:

    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.stats import accumulate_statistics
    >>> mixture = Mixture.from_parameters([0.4, 0.6], [[0.0], [3.0]], [[[1.0]], [[2.0]]],
    ...                                   dtype=torch.float64)
    >>> X = torch.linspace(-2, 5, 20, dtype=torch.float64)[:, None]
    >>> stats = accumulate_statistics(mixture, [X[:7], X[7:]])
    >>> float(stats.n_samples), float(stats.counts.sum())
    (20.0, 20.0)
    >>> expected = mixture.to_torch().log_prob(X).sum()
    >>> bool(torch.isclose(stats.log_likelihood, expected))
    True
    """
    kernel, dtype = _kernel(mixture, log_weights, entropy), mixture.dtype

    def chunk_sums(item: Tensor | tuple[Tensor, Tensor]) -> tuple[ChunkSums, Tensor | int]:
        X, weight = item if isinstance(item, tuple) else (item, None)
        if weight is None:
            return kernel(X.to(dtype)), X.shape[0]
        weight = weight.to(dtype)
        return kernel(X.to(dtype), weight), weight.sum(dtype=ACCUMULATOR_DTYPE)

    totals: list[Tensor] | None = None
    n_samples = torch.zeros((), dtype=ACCUMULATOR_DTYPE, device=mixture.device)

    def add(result: tuple[ChunkSums, Tensor | int]) -> None:
        nonlocal totals
        chunk, count = result
        n_samples.add_(count)
        values = [value for value in chunk if value is not None]
        if totals is None:
            totals = [value.to(ACCUMULATOR_DTYPE, copy=True) for value in values]
        else:
            for total, value in zip(totals, values, strict=True):
                total.add_(value)

    # Sums are added in chunk order, so they do not depend on timing; each chunk's
    # results are added as soon as the chunks before it are (see fold_in_threads).
    try:
        if isinstance(chunks, Sequence):  # in memory: chunks are shared out to threads
            workers = chunk_workers(mixture.device, len(chunks))
            fold_in_threads(chunk_sums, chunks, workers, add)
        else:  # a stream: one chunk at a time, dropped before the next is read
            stream = iter(chunks)
            while (item := next(stream, None)) is not None:
                add(chunk_sums(item))
                del item
    finally:
        kernel.release()
    if totals is None:
        raise ValueError("The data source yielded no chunks.")
    log_likelihood, counts, first, second, *summed_entropy = totals
    sums, scatter = kernel.finish(first, second)
    origin = kernel.origin.to(ACCUMULATOR_DTYPE) + mixture.center.to(ACCUMULATOR_DTYPE)
    stats = SufficientStatistics(
        counts, sums, scatter, origin, log_likelihood, n_samples, *summed_entropy
    )
    if mixture.covariance.centred_per_component:
        return stats.about(mixture.means)
    return stats


def _kernel(mixture: Mixture, log_weights: Tensor | None, entropy: bool) -> EStepKernel:
    """The mixture's own (cached) kernel, or a fresh one with other constants/entropy."""
    if log_weights is None and not entropy:
        return mixture.e_step_kernel
    constants = mixture.log_weights if log_weights is None else log_weights
    kernel = mixture.covariance.e_step_kernel(mixture.center, mixture.centred_means, constants)
    kernel.track_entropy = entropy
    return kernel

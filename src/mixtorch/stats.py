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
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._parallel import chunk_workers, map_in_threads
from .covariance import Covariance
from .distributed import all_reduce_tensors
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

ACCUMULATOR_DTYPE = torch.float64

#: Fewest rows :func:`pass_chunks` cuts a chunk down to so that threads get enough chunks.
MIN_THREAD_CHUNK_ROWS = 2048

#: ``fn(chunk, start)``: the (rows, K) responsibilities of rows ``start:start + len(chunk)``
ResponsibilityFn = Callable[[Tensor, int], Tensor]


@dataclass
class SufficientStatistics:
    """Sums over samples that determine the M-step.

    Add them over chunks (``+``), sum them across ranks (:meth:`all_reduce`), then turn
    them into parameters (:meth:`m_step`, or :meth:`moments` for variational updates):
    the sufficient statistics of EM for mixtures [1]_ [2]_.

    Attributes
    ----------
    counts : Tensor of shape (K,)
        Summed responsibilities (times sample weights).
    sums : Tensor of shape (K, D)
        ``sum_i r_ik (x_i - reference_k)``.
    scatter : Tensor of shape (K, D, D) or (K, D)
        ``sum_i r_ik (x_i - reference_k)(x_i - reference_k)^T`` (diagonals only for
        diag and spherical covariances).
    reference : Tensor of shape (K, D)
        The point about which moments are taken; identical for all added statistics.
    log_likelihood : Tensor, scalar
        Summed (weighted) log-likelihood of the samples under the model that produced the
        responsibilities (NaN-free; zero for hard-assignment statistics).
    n_samples : Tensor, scalar
        Summed sample weights.
    entropy : Tensor, scalar, optional
        ``-sum_ik r_ik log r_ik`` of the responsibilities (times sample weights), when
        the pass tracked it (the variational lower bound needs it); else None.

    See Also
    --------
    accumulate_statistics : The E-step pass that produces them.
    statistics_from_responsibilities : The same from given responsibilities.

    References
    ----------
    .. [1] A. P. Dempster, N. M. Laird and D. B. Rubin (1977), "Maximum likelihood from
       incomplete data via the EM algorithm", *JRSS B* 39(1).
    .. [2] T. F. Chan, G. H. Golub and R. J. LeVeque (1983), "Algorithms for computing the
       sample variance", *The American Statistician* 37(3) (merging moments of chunks).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance, Mixture
    >>> from mixtorch.stats import accumulate_statistics
    >>> X = torch.randn(100, 2, dtype=torch.float64)
    >>> start = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]],
    ...                                 dtype=torch.float64)
    >>> stats = accumulate_statistics(start, [X[:60], X[60:]])
    >>> stats.counts
    tensor([100.], dtype=torch.float64)
    >>> fitted = stats.m_step(FullCovariance, reg_covar=0.0, dtype=torch.float64)
    >>> torch.allclose(fitted.means[0], X.mean(0))
    True
    """

    counts: Tensor
    sums: Tensor
    scatter: Tensor
    reference: Tensor
    log_likelihood: Tensor
    n_samples: Tensor
    entropy: Tensor | None = None

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        entropy = None
        if self.entropy is not None and other.entropy is not None:
            entropy = self.entropy + other.entropy
        return SufficientStatistics(
            self.counts + other.counts,
            self.sums + other.sums,
            self.scatter + other.scatter,
            self.reference,
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
            entropy,
        )

    def all_reduce(self, group: Any = None) -> SufficientStatistics:
        """Sum over all ranks of ``torch.distributed`` (one collective); a no-op otherwise.

        Every rank must have taken its moments about the same :attr:`reference`.

        Parameters
        ----------
        group : torch.distributed.ProcessGroup, default=None
            The group to sum over; None is the default group.

        Returns
        -------
        SufficientStatistics
            The summed statistics (this rank's own when not distributed).

        See Also
        --------
        mixtorch.distributed.all_reduce_tensors : The collective.
        """
        fields = [self.counts, self.sums, self.scatter, self.log_likelihood, self.n_samples]
        if self.entropy is not None:
            fields.append(self.entropy)
        summed = all_reduce_tensors(fields, group)
        counts, sums, scatter, log_likelihood, n_samples = summed[:5]
        entropy = summed[5] if self.entropy is not None else None
        return SufficientStatistics(
            counts, sums, scatter, self.reference, log_likelihood, n_samples, entropy
        )

    def about(self, reference: Tensor) -> SufficientStatistics:
        """The same statistics with moments taken about ``reference`` instead.

        Exact in float64: with ``d = reference - self.reference``, the sums lose
        ``counts * d`` and the scatter ``s d^T + d s^T - counts d d^T`` (diagonals only
        for diag/spherical scatter).

        Parameters
        ----------
        reference : Tensor of shape (K, D)
            The new point per component.

        Returns
        -------
        SufficientStatistics
            Equal statistics about ``reference`` (counts, log-likelihood unchanged).

        See Also
        --------
        SufficientStatistics.moments
        """
        target = reference.to(ACCUMULATOR_DTYPE)
        step = target - self.reference.to(ACCUMULATOR_DTYPE)
        counts = self.counts[:, None]
        sums = self.sums - counts * step
        if self.scatter.ndim == 3:
            cross = self.sums[:, :, None] * step[:, None, :]
            scatter = (
                self.scatter
                - cross
                - cross.mT
                + counts[:, :, None] * step[:, :, None] * step[:, None, :]
            )
        else:
            scatter = self.scatter - 2.0 * self.sums * step + counts * step * step
        return SufficientStatistics(
            self.counts, sums, scatter, target, self.log_likelihood, self.n_samples, self.entropy
        )

    @property
    def mean_log_likelihood(self) -> float:
        """Average log-likelihood per (weighted) sample."""
        return float(self.log_likelihood / self.n_samples)

    def moments(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Counts, means and scatter about the means, in float64.

        The algebra of every M-step (maximum likelihood and variational). ``10 * eps`` of
        ``dtype`` is added to every count, as scikit-learn does, so an empty component gives
        finite numbers.

        Parameters
        ----------
        dtype : torch.dtype
            The model's dtype, whose ``eps`` guards the counts.

        Returns
        -------
        counts : Tensor of shape (K,)
            Guarded summed responsibilities.
        means : Tensor of shape (K, D)
            Weighted means.
        centred : Tensor of shape (K, D, D), or (K, D) (diagonals) for diag/spherical
            ``sum_i r_ik (x_i - mean_k)(x_i - mean_k)^T``.

        See Also
        --------
        SufficientStatistics.m_step
        """
        counts = self.counts.to(ACCUMULATOR_DTYPE) + 10 * torch.finfo(dtype).eps
        step = self.sums / counts[:, None]
        if self.scatter.ndim == 3:
            centred = self.scatter - counts[:, None, None] * step[:, :, None] * step[:, None, :]
        else:
            centred = (self.scatter - counts[:, None] * step * step).clamp_min(0.0)
        return counts, self.reference.to(ACCUMULATOR_DTYPE) + step, centred

    def m_step(
        self, covariance_type: type[Covariance], reg_covar: float, dtype: torch.dtype
    ) -> Mixture:
        """Maximum-likelihood weights, means and covariances from these statistics.

        Callers detect and re-seed empty components (see :meth:`moments`).

        Parameters
        ----------
        covariance_type : type of Covariance
            The kind of covariance to estimate (:func:`mixtorch.covariance.covariance_class`).
        reg_covar : float
            Added to every variance.
        dtype : torch.dtype
            The dtype of the returned mixture.

        Returns
        -------
        Mixture
            The M-step's mixture.

        Raises
        ------
        mixtorch.CovarianceError
            If a covariance cannot be factored even with ``reg_covar``.

        See Also
        --------
        SufficientStatistics.moments, mixtorch.covariance.Covariance.from_scatter
        """
        counts, means, centred = self.moments(dtype)
        covariance = covariance_type.from_scatter(centred.to(dtype), counts.to(dtype), reg_covar)
        weights = (counts / counts.sum()).to(dtype)
        return Mixture(weights, means.to(dtype), covariance)


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
    for chunk in chunks:
        chunk = chunk.to(reference.dtype)
        responsibilities = responsibility_fn(chunk, start).to(chunk.dtype)
        stats = chunk_statistics(covariance_type, chunk - shift, responsibilities, about, shift)
        total = stats if total is None else total + stats
        start += chunk.shape[0]
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
    """
    kernel, dtype = _kernel(mixture, log_weights, entropy), mixture.dtype

    def chunk_sums(item: Tensor | tuple[Tensor, Tensor]) -> tuple[ChunkSums, Tensor | int]:
        X, weight = item if isinstance(item, tuple) else (item, None)
        if weight is None:
            return kernel(X.to(dtype)), X.shape[0]
        weight = weight.to(dtype)
        return kernel(X.to(dtype), weight), weight.sum(dtype=ACCUMULATOR_DTYPE)

    results: Iterable[tuple[ChunkSums, Tensor | int]]
    if isinstance(chunks, Sequence):  # in memory: chunks are shared out to threads
        workers = chunk_workers(mixture.device, len(chunks))
        results = map_in_threads(chunk_sums, chunks, workers)
    else:  # a stream: one chunk at a time
        results = map(chunk_sums, chunks)
    totals: list[Tensor] | None = None
    n_samples = torch.zeros((), dtype=ACCUMULATOR_DTYPE, device=mixture.device)
    for chunk, count in results:  # in chunk order: the sums do not depend on timing
        n_samples += count
        values = [value for value in chunk if value is not None]
        if totals is None:
            totals = [value.to(ACCUMULATOR_DTYPE, copy=True) for value in values]
        else:
            for total, value in zip(totals, values, strict=True):
                total.add_(value)
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

"""Additive sufficient statistics of a Gaussian mixture.

In-memory, chunked, streaming and distributed EM are one piece of code: accumulate
:class:`SufficientStatistics` over chunks (``+``), sum them across processes
(:meth:`SufficientStatistics.all_reduce`), then take one M-step
(:meth:`SufficientStatistics.m_step`).

Moments are taken about a *reference* point per component (the current means for
full/tied covariances, the mixture centre for diag/spherical), so the final
``scatter - N * delta delta^T`` correction only involves the small step ``delta`` of the
means and float32 does not cancel. Chunk results are added up in float64.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._parallel import chunk_workers, map_in_threads
from .covariance import Covariance
from .estep import ChunkSums
from .mixture import Mixture

__all__ = ["SufficientStatistics", "accumulate_statistics", "chunk_statistics"]

ACCUMULATOR_DTYPE = torch.float64


@dataclass
class SufficientStatistics:
    """Sums over samples that determine the M-step.

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
    """

    counts: Tensor
    sums: Tensor
    scatter: Tensor
    reference: Tensor
    log_likelihood: Tensor
    n_samples: Tensor

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        return SufficientStatistics(
            self.counts + other.counts,
            self.sums + other.sums,
            self.scatter + other.scatter,
            self.reference,
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
        )

    def _fields(self) -> list[Tensor]:
        return [self.counts, self.sums, self.scatter, self.log_likelihood, self.n_samples]

    def all_reduce(self, group: Any = None) -> SufficientStatistics:
        """Sum over all ranks of ``torch.distributed`` (one call); a no-op otherwise."""
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            return self
        fields = self._fields()
        flat = torch.cat([field.reshape(-1) for field in fields])
        dist.all_reduce(flat, group=group)
        pieces = flat.split([field.numel() for field in fields])
        restored = [piece.reshape(field.shape) for piece, field in zip(pieces, fields, strict=True)]
        counts, sums, scatter, log_likelihood, n_samples = restored
        return SufficientStatistics(
            counts, sums, scatter, self.reference, log_likelihood, n_samples
        )

    def about(self, reference: Tensor) -> SufficientStatistics:
        """The same statistics with moments taken about ``reference`` (K, D) instead.

        Exact in float64: with ``d = reference - self.reference``, the sums lose
        ``counts * d`` and the scatter ``s d^T + d s^T - counts d d^T`` (diagonals only
        for diag/spherical scatter).
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
            self.counts, sums, scatter, target, self.log_likelihood, self.n_samples
        )

    @property
    def mean_log_likelihood(self) -> float:
        """Average log-likelihood per (weighted) sample."""
        return float(self.log_likelihood / self.n_samples)

    def m_step(
        self, covariance_type: type[Covariance], reg_covar: float, dtype: torch.dtype
    ) -> Mixture:
        """Maximum-likelihood weights, means and covariances from these statistics.

        ``10 * eps`` is added to every count, as scikit-learn does, so an empty component
        gives finite numbers; callers detect and re-seed empty components.
        """
        eps = torch.finfo(dtype).eps
        counts = self.counts + 10 * eps
        step = self.sums / counts[:, None]
        if self.scatter.ndim == 3:
            centred = self.scatter - counts[:, None, None] * step[:, :, None] * step[:, None, :]
        else:
            centred = (self.scatter - counts[:, None] * step * step).clamp_min(0.0)
        means = (self.reference.to(ACCUMULATOR_DTYPE) + step).to(dtype)
        covariance = covariance_type.from_scatter(centred.to(dtype), counts.to(dtype), reg_covar)
        weights = (counts / counts.sum()).to(dtype)
        return Mixture(weights, means, covariance)


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

    ``Y`` is the chunk minus ``shift``; ``reference`` is in original coordinates.
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


def accumulate_statistics(
    mixture: Mixture,
    chunks: Iterable[Tensor | tuple[Tensor, Tensor]],
) -> SufficientStatistics:
    """One E-step pass: responsibilities of every chunk under ``mixture``, summed.

    ``chunks`` yields tensors, or ``(chunk, sample_weight)`` pairs; a sequence (chunks
    already in memory) is shared out to threads on CPU (see :mod:`mixtorch._parallel`),
    any other iterable is consumed one chunk at a time. Chunk sums are added up in
    float64, in chunk order; the moments are returned about the means for full/tied covariances and
    about the mixture centre for diag/spherical ones.
    """
    kernel, dtype = mixture.e_step_kernel, mixture.dtype

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
        if totals is None:
            totals = [value.to(ACCUMULATOR_DTYPE, copy=True) for value in chunk]
        else:
            for total, value in zip(totals, chunk, strict=True):
                total.add_(value)
    kernel.release()
    if totals is None:
        raise ValueError("The data source yielded no chunks.")
    log_likelihood, counts, first, second = totals
    sums, scatter = kernel.finish(first, second)
    origin = kernel.origin.to(ACCUMULATOR_DTYPE) + mixture.center.to(ACCUMULATOR_DTYPE)
    stats = SufficientStatistics(counts, sums, scatter, origin, log_likelihood, n_samples)
    if mixture.covariance.centred_per_component:
        return stats.about(mixture.means)
    return stats

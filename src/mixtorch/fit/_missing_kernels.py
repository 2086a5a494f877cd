"""The batched kernels of the missing-value E-step and scoring (:mod:`mixtorch.fit.missing`).

Each row's ``log w_k + log N(x_o | mu_ko, S_koo)`` over its observed entries, many patterns
of missing entries at a time: by segments of rows grouped by pattern for full and tied
covariances (:func:`_segment_log_prob`, the covariance of every pattern factored in one
batched call), feature by feature for diagonal and spherical ones
(:func:`_independent_log_prob`). :class:`_BatchedSums` goes on from these to the expected
sufficient statistics (a base of :class:`~mixtorch.fit.missing._BatchedRows`, which buffers
and groups the rows); :func:`~mixtorch.fit.missing.observed_weighted_log_prob` scores with
the same kernels.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET
from ..mixture import Mixture
from ..stats import ACCUMULATOR_DTYPE, SufficientStatistics
from ._missing_layout import _Segments

_LOG_2PI = math.log(2.0 * math.pi)


class _Sums:
    """Expected sufficient statistics about the means, summed in float64."""

    def __init__(self, mixture: Mixture) -> None:
        K, D, device = mixture.n_components, mixture.n_features, mixture.device
        self.mixture = mixture
        self.counts = torch.zeros(K, device=device, dtype=ACCUMULATOR_DTYPE)
        self.sums = torch.zeros(K, D, device=device, dtype=ACCUMULATOR_DTYPE)
        self.scatter = torch.zeros(K, D, D, device=device, dtype=ACCUMULATOR_DTYPE)
        self.log_likelihood = torch.zeros((), device=device, dtype=ACCUMULATOR_DTYPE)
        self.n_samples = torch.zeros((), device=device, dtype=ACCUMULATOR_DTYPE)

    def statistics(self) -> SufficientStatistics:
        layout = type(self.mixture.covariance).scatter_from_dense(self.scatter)
        return SufficientStatistics(
            self.counts, self.sums, layout, self.mixture.means, self.log_likelihood, self.n_samples
        )


class _BatchedSums(_Sums):
    """The batched E-step kernels of :class:`~mixtorch.fit.missing._BatchedRows` (a base
    of it): the statistics of segments, or of blocks of rows, added to the sums."""

    if TYPE_CHECKING:  # set by _BatchedRows
        full_matrices: Tensor
        matrices: Tensor
        variances: Tensor
        weights: Tensor | None

    def _add_segments(self, rows: Tensor, part: _Segments) -> Tensor | None:
        """Add segments of full or tied covariances; the indices of far rows, if any.

        Blocks are component-major, (K, S, R, D), so that sums over segments and rows
        are matrix products of views."""
        mixture, matrices = self.mixture, self.matrices
        log_prob, factor, differences, whitened = _segment_log_prob(mixture, matrices, rows, part)
        seen = part.observed.to(rows.dtype)
        cross = matrices[:, None] * (seen[:, :, None] * (1.0 - seen)[:, None, :])  # S_om, else 0
        reach = torch.linalg.solve_triangular(factor, cross, upper=False)
        # Filled rows less the means: x_o - mu_o, and S_mo S_oo^-1 (x_o - mu_o).
        filled = differences + whitened.mT @ reach
        evidence = torch.logsumexp(log_prob, 0)  # (S, R)
        responsibilities = torch.exp(log_prob - evidence)
        far_rows, evidence, responsibilities, filled = _set_aside(
            part, evidence, responsibilities, filled
        )
        if self.weights is not None:  # (S, R) weights of the segments' rows
            row_weights = self.weights[part.rows]
            evidence, responsibilities = evidence * row_weights, responsibilities * row_weights
        K, S, R, D = filled.shape
        totals = responsibilities.sum(2)  # (K, S)
        weighted = responsibilities[..., None] * filled
        outer = weighted.reshape(K, S * R, D).mT @ filled.reshape(K, S * R, D)
        # sum_s t_ks C_ks, C = S_mm - (L^-1 S_om)^T (L^-1 S_om) in the missing block.
        unseen = (~part.observed).to(rows.dtype)
        missing_block = (unseen[:, :, None] * unseen[:, None, :]).view(S, D * D)
        spread = self.full_matrices * (totals @ missing_block).view(K, D, D)
        scaled = (reach * totals.sqrt()[..., None, None]).reshape(K, S * D, D)
        spread -= scaled.mT @ scaled
        self.counts += totals.sum(1).to(ACCUMULATOR_DTYPE)
        self.sums += weighted.sum((1, 2)).to(ACCUMULATOR_DTYPE)
        self.scatter += (outer + spread).to(ACCUMULATOR_DTYPE)
        self.log_likelihood += evidence.sum().to(ACCUMULATOR_DTYPE)
        return far_rows

    def _add_independent(self, rows: Tensor, observed: Tensor) -> list[Tensor | None]:
        """Add rows of diagonal or spherical covariances (``observed`` their (n, D) mask);
        the indices of far rows, if any, for each block of rows."""
        mixture = self.mixture
        K, D = mixture.n_components, mixture.n_features
        step = max(1, DEFAULT_ELEMENT_BUDGET // (K * D))
        far: list[Tensor | None] = []
        for start in range(0, rows.shape[0], step):
            seen, block = observed[start : start + step], rows[start : start + step]
            log_prob, differences, squares = _independent_log_prob(
                mixture, self.variances, block, seen
            )
            evidence = torch.logsumexp(log_prob, 1)
            responsibilities = torch.exp(log_prob - evidence[:, None])
            outside = ~torch.isfinite(evidence)
            if bool(outside.any()):
                far.append(torch.nonzero(outside).flatten() + start)
                responsibilities = responsibilities.masked_fill(outside[:, None], 0.0)
                differences = differences.masked_fill(outside[:, None, None], 0.0)
                squares = squares.masked_fill(outside[:, None, None], 0.0)
                evidence = evidence.masked_fill(outside, 0.0)
            if self.weights is not None:
                block_weights = self.weights[start : start + step]
                responsibilities = responsibilities * block_weights[:, None]
                evidence = evidence * block_weights
            totals = responsibilities.sum(0)
            weighted = responsibilities[:, :, None] * differences
            # Only the diagonal counts for these kinds (scatter_from_dense takes it).
            second = (responsibilities[:, :, None] * squares).sum(0)
            second += (responsibilities.T @ (~seen).to(rows.dtype)) * self.variances
            self.counts += totals.to(ACCUMULATOR_DTYPE)
            self.sums += weighted.sum(0).to(ACCUMULATOR_DTYPE)
            self.scatter.diagonal(dim1=-2, dim2=-1).add_(second.to(ACCUMULATOR_DTYPE))
            self.log_likelihood += evidence.sum().to(ACCUMULATOR_DTYPE)
        return far


def _distinct(matrices: Tensor) -> Tensor:
    """``matrices`` (K, D, D), or the first alone when all are one (tied): a tied
    covariance is factored once per pattern, not once per component."""
    return matrices[:1] if matrices.shape[0] > 1 and matrices.stride(0) == 0 else matrices


def _factor_patterns(matrices: Tensor, observed: Tensor) -> tuple[Tensor, Tensor]:
    """For covariances ``matrices`` (K, D, D) (or (1, D, D) when tied) and patterns
    ``observed`` (S, D): the factors (K, S, D, D) and the constants
    ``log|S_oo| + |o| log(2 pi)`` (K, S) of every pattern and component.

    The covariance is factored with its missing rows and columns those of the identity:
    its factor holds that of ``S_oo`` and solves with it leave the missing block alone,
    so patterns of any size are factored in one batched call."""
    seen = observed.to(matrices.dtype)
    joint = matrices[:, None] * (seen[:, :, None] * seen[:, None, :])
    joint.diagonal(dim1=-2, dim2=-1).add_(1.0 - seen)
    factor = torch.linalg.cholesky(joint)
    log_det = 2.0 * torch.log(torch.diagonal(factor, dim1=-2, dim2=-1)).sum(-1)
    return factor, log_det + seen.sum(1) * _LOG_2PI


def _segment_log_prob(
    mixture: Mixture, matrices: Tensor, rows: Tensor, part: _Segments
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """``log w_k + log N(x_o | mu_ko, S_koo)`` (K, S, R) of the rows of segments ``part``
    (full or tied ``matrices``, see :func:`_factor_patterns`), with the factors
    (K, S, D, D), the differences ``x_o - mu_o`` (K, S, R, D; 0 where missing) and their
    whitened transposes (K, S, D, R) that the E-step goes on with.

    Blocks are component-major, so that sums over segments and rows are matrix products
    of views."""
    factor, constant = _factor_patterns(matrices, part.observed)
    differences = rows[part.rows] - mixture.means[:, None, None]  # (K, S, R, D)
    differences = torch.where(part.observed[:, None], differences, 0.0)
    whitened = torch.linalg.solve_triangular(factor, differences.mT, upper=False)
    squares = whitened.square().sum(-2)  # (K, S, R)
    log_prob = mixture.log_weights[:, None, None] - 0.5 * (squares + constant[..., None])
    return log_prob, factor, differences, whitened


def _independent_log_prob(
    mixture: Mixture, variances: Tensor, rows: Tensor, observed: Tensor
) -> tuple[Tensor, Tensor, Tensor]:
    """``log w_k + log N(x_o | mu_ko, S_koo)`` (b, K) of ``rows`` (b, D) with observed
    entries ``observed`` under diagonal or spherical covariances (``variances`` (K, D)),
    with the differences ``x - mu`` (b, K, D; 0 where missing) and their squares."""
    differences = rows[:, None] - mixture.means  # (b, K, D)
    differences = torch.where(observed[:, None], differences, 0.0)
    squares = differences.square()
    log_normalisers = (torch.log(variances) + _LOG_2PI).T  # (D, K)
    terms = (squares * (1.0 / variances)).sum(-1) + observed.to(rows.dtype) @ log_normalisers
    return mixture.log_weights - 0.5 * terms, differences, squares


def _set_aside(
    part: _Segments, evidence: Tensor, responsibilities: Tensor, filled: Tensor
) -> tuple[Tensor | None, Tensor, Tensor, Tensor]:
    """Zero what padding rows (repeats) and far rows (no finite density) would add; the
    indices of the far rows (None if there are none), to go the per-pattern way."""
    outside = ~torch.isfinite(evidence)  # (S, R)
    if bool(outside.any()):
        far = part.rows[outside if part.valid is None else outside & part.valid]
        if part.valid is not None:
            outside |= ~part.valid
        filled = filled.masked_fill(outside[..., None], 0.0)
        return far, *_zero_rows(outside, evidence, responsibilities), filled
    if part.valid is None:
        return None, evidence, responsibilities, filled
    return None, *_zero_rows(~part.valid, evidence, responsibilities), filled


def _zero_rows(rows: Tensor, evidence: Tensor, responsibilities: Tensor) -> tuple[Tensor, Tensor]:
    return evidence.masked_fill(rows, 0.0), responsibilities.masked_fill(rows, 0.0)

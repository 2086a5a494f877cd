"""EM and scoring for data with entries missing at random (Ghahramani & Jordan 1994).

A row with missing entries is scored by the marginal of the mixture over its observed
entries. In the E-step each component ``k`` also fills the missing entries ``m`` of a row
with their conditional expectation given the observed ones ``o``,

    x_hat_km = mu_km + S_kmo S_koo^{-1} (x_o - mu_ko),

and adds the conditional covariance ``C_k = S_kmm - S_kmo S_koo^{-1} S_kom`` to the second
moment of the ``m`` block. With these expected sufficient statistics the M-step is the
complete-data one, and every iteration increases the observed-data likelihood (this is
exact EM, not imputation followed by EM).

Rows are grouped by their pattern of missing entries; each pattern is conditioned once
per chunk (:func:`mixtorch.conditioning.condition`), with Cholesky factors and moments
taken about the current means, so float32 stays accurate. A row with no observed entry
contributes its prior (responsibilities = weights) and a log-likelihood of zero.
"""

from __future__ import annotations

from collections.abc import Iterable

import torch
from torch import Tensor

from ..conditioning import condition
from ..mixture import Mixture
from ..stats import ACCUMULATOR_DTYPE, SufficientStatistics

__all__ = ["fill_column_means", "missing_statistics", "observed_weighted_log_prob", "patterns"]


def patterns(X: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct patterns of observed entries (P, D) and each row's pattern (n,)."""
    observed = ~torch.isnan(X)
    unique, inverse = torch.unique(observed, dim=0, return_inverse=True)
    return unique, inverse


def fill_column_means(X: Tensor) -> Tensor:
    """A copy of ``X`` with every NaN replaced by its column's observed mean (0 for a
    column with no observed entry): only a starting point for EM, never its data."""
    observed = ~torch.isnan(X)
    counts = observed.sum(0).clamp_min(1)
    means = torch.where(observed, X, torch.zeros_like(X)).sum(0) / counts
    return torch.where(observed, X, means.expand_as(X))


def observed_weighted_log_prob(mixture: Mixture, X: Tensor) -> Tensor:
    """``log w_k + log N(x_o | mu_ko, S_koo)`` over each row's observed entries, (n, K)."""
    X = X.to(mixture.dtype)
    result = torch.empty(X.shape[0], mixture.n_components, dtype=X.dtype, device=X.device)
    unique, inverse = patterns(X)
    for index, pattern in enumerate(unique):
        rows = torch.nonzero(inverse == index).flatten()
        given = torch.nonzero(pattern).flatten().cpu()
        if given.numel() == mixture.n_features:
            result[rows] = mixture.weighted_log_prob(X[rows])
        elif given.numel() == 0:
            result[rows] = mixture.log_weights
        else:
            observed = X[rows][:, given.to(X.device)]
            result[rows] = mixture.marginal(given).weighted_log_prob(observed)
    return result


def _pattern_moments(
    mixture: Mixture, rows: Tensor, given: Tensor
) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Responsibilities (b, K), per-component filled rows (b, K, D), the conditional
    covariance padded to (K, D, D), and log-likelihoods (b,) of one pattern's rows."""
    K, D = mixture.n_components, mixture.n_features
    b = rows.shape[0]
    padded = torch.zeros(K, D, D, dtype=rows.dtype, device=rows.device)
    if given.numel() == D:
        weighted = mixture.weighted_log_prob(rows)
        log_likelihood = torch.logsumexp(weighted, dim=1)
        responsibilities = (weighted - log_likelihood[:, None]).exp()
        return responsibilities, rows[:, None, :].expand(b, K, D), padded, log_likelihood
    if given.numel() == 0:
        responsibilities = mixture.weights.expand(b, K)
        filled = mixture.means.expand(b, K, D)
        padded = mixture.covariance.full_matrices(K).expand(K, D, D)
        return responsibilities, filled, padded, torch.zeros(b, dtype=rows.dtype)
    given_device = given.to(rows.device)
    conditionals = condition(
        mixture.log_weights, mixture.means, mixture.covariance, given, rows[:, given_device]
    )
    free = conditionals.free
    filled = torch.empty(b, K, D, dtype=rows.dtype, device=rows.device)
    filled[:, :, given_device] = rows[:, None, given_device]
    filled[:, :, free] = conditionals.means
    block = conditionals.covariance.full_matrices(K)
    padded[:, free[:, None], free[None, :]] = block
    return conditionals.log_weights.exp(), filled, padded, conditionals.log_evidence


def missing_statistics(mixture: Mixture, chunks: Iterable[Tensor]) -> SufficientStatistics:
    """One E-step pass over chunks that may contain NaN: expected sufficient statistics.

    Moments are taken about the current means (per component) in float64; the scatter is
    returned in the covariance kind's layout, ready for
    :meth:`~mixtorch.stats.SufficientStatistics.m_step`.
    """
    K, D = mixture.n_components, mixture.n_features
    device = mixture.device
    counts = torch.zeros(K, device=device, dtype=ACCUMULATOR_DTYPE)
    sums = torch.zeros(K, D, device=device, dtype=ACCUMULATOR_DTYPE)
    scatter = torch.zeros(K, D, D, device=device, dtype=ACCUMULATOR_DTYPE)
    log_likelihood = torch.zeros((), device=device, dtype=ACCUMULATOR_DTYPE)
    n_samples = torch.zeros((), device=device, dtype=ACCUMULATOR_DTYPE)
    seen = False
    for chunk in chunks:
        chunk = chunk.to(mixture.dtype)
        seen = True
        unique, inverse = patterns(chunk)
        for index, pattern in enumerate(unique):
            rows = chunk[torch.nonzero(inverse == index).flatten()]
            given = torch.nonzero(pattern).flatten().cpu()
            responsibilities, filled, padded, ll = _pattern_moments(mixture, rows, given)
            differences = filled - mixture.means[None]
            weighted = responsibilities[:, :, None] * differences
            totals = responsibilities.sum(0)
            counts += totals.to(ACCUMULATOR_DTYPE)
            sums += weighted.sum(0).to(ACCUMULATOR_DTYPE)
            outer = torch.einsum("bkd,bke->kde", weighted, differences)
            scatter += (outer + totals[:, None, None] * padded).to(ACCUMULATOR_DTYPE)
            log_likelihood += ll.sum().to(ACCUMULATOR_DTYPE)
            n_samples += rows.shape[0]
    if not seen:
        raise ValueError("The data source yielded no chunks.")
    layout = type(mixture.covariance).scatter_from_dense(scatter)
    return SufficientStatistics(counts, sums, layout, mixture.means, log_likelihood, n_samples)

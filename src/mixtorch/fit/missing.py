"""EM and scoring for data with entries missing at random (Ghahramani & Jordan 1994).

A row with missing entries is scored by the marginal of the mixture over its observed
entries. In the E-step each component ``k`` also fills the missing entries ``m`` of a row
with their conditional expectation given the observed ones ``o``,

    x_hat_km = mu_km + S_kmo S_koo^{-1} (x_o - mu_ko),

and adds the conditional covariance ``C_k = S_kmm - S_kmo S_koo^{-1} S_kom`` to the second
moment of the ``m`` block. With these expected sufficient statistics the M-step is the
complete-data one, and every iteration increases the observed-data likelihood (this is
exact EM, not imputation followed by EM).

Complete rows take the complete-data pass (:func:`~mixtorch.stats.accumulate_statistics`);
the other rows are grouped by their pattern of missing entries and each pattern is
conditioned once per chunk (:func:`mixtorch.conditioning.condition`), with Cholesky
factors and moments taken about the current means, so float32 stays accurate. A row with
no observed entry contributes its prior (responsibilities = weights) and a
log-likelihood of zero. The statistics are additive like the complete-data ones, so
chunked, streaming and ``torch.distributed`` fits run the same
:func:`~mixtorch.fit.em.fit_em` loop with :func:`missing_statistics` as its E-step.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

import torch
from torch import Tensor

from ..conditioning import condition_unchecked
from ..mixture import Mixture
from ..stats import ACCUMULATOR_DTYPE, SufficientStatistics, accumulate_statistics

__all__ = [
    "check_observed_columns",
    "check_observed_counts",
    "column_means",
    "fill_column_means",
    "fill_missing",
    "missing_statistics",
    "observed_weighted_log_prob",
    "patterns",
]


def patterns(X: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct patterns of observed entries (P, D) and each row's pattern (n,)."""
    observed = ~torch.isnan(X)
    unique, inverse = torch.unique(observed, dim=0, return_inverse=True)
    return unique, inverse


def column_means(X: Tensor) -> Tensor:
    """The mean of each column's observed (non-NaN) entries, (D,); 0 for an empty column."""
    observed = ~torch.isnan(X)
    counts = observed.sum(0).clamp_min(1)
    return torch.where(observed, X, torch.zeros_like(X)).sum(0) / counts


def check_observed_columns(X: Tensor, first_batch: bool = False) -> None:
    """Refuse data with a column that has no observed (non-NaN) entry: no parameter of
    that feature can be estimated, and a made-up value would be returned silently.
    ``first_batch``: ``X`` is the first ``partial_fit`` batch, which places the start."""
    check_observed_counts((~torch.isnan(X)).sum(0), first_batch)


def check_observed_counts(counts: Tensor, first_batch: bool = False) -> None:
    """:func:`check_observed_columns` from per-column counts of observed entries (summed
    over a stream's chunks, or over ranks)."""
    empty = torch.nonzero(counts == 0).flatten().tolist()
    if empty and first_batch:
        raise ValueError(
            f"Feature(s) {empty} have no observed value in the first partial_fit batch "
            "(every entry is NaN), which places the mixture's start; give a first batch "
            "with at least one observed value in every feature, or drop those columns."
        )
    if empty:
        raise ValueError(
            f"Feature(s) {empty} have no observed value (every entry is NaN), so a mixture "
            "cannot estimate them; drop those columns before fitting."
        )


def fill_missing(X: Tensor, values: Tensor) -> Tensor:
    """A copy of ``X`` (n, D) with every NaN in column ``j`` replaced by ``values[j]``."""
    return torch.where(torch.isnan(X), values.to(X.dtype).expand_as(X), X)


def fill_column_means(X: Tensor) -> Tensor:
    """A copy of ``X`` with every NaN replaced by its column's observed mean (0 for a
    column with no observed entry): only a starting point for EM, never its data."""
    return fill_missing(X, column_means(X))


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
    covariance padded to (K, D, D), and log-likelihoods (b,) of one pattern's rows (each
    with at least one missing entry)."""
    K, D = mixture.n_components, mixture.n_features
    b = rows.shape[0]
    if given.numel() == 0:
        responsibilities = mixture.weights.expand(b, K)
        filled = mixture.means.expand(b, K, D)
        padded = mixture.covariance.full_matrices(K).expand(K, D, D)
        return responsibilities, filled, padded, rows.new_zeros(b)
    given_device = given.to(rows.device)
    conditionals = condition_unchecked(
        mixture.log_weights, mixture.means, mixture.covariance, given, rows[:, given_device]
    )
    free = conditionals.free
    filled = torch.empty(b, K, D, dtype=rows.dtype, device=rows.device)
    filled[:, :, given_device] = rows[:, None, given_device]
    filled[:, :, free] = conditionals.means
    padded = torch.zeros(K, D, D, dtype=rows.dtype, device=rows.device)
    padded[:, free[:, None], free[None, :]] = conditionals.covariance.full_matrices(K)
    return conditionals.log_weights.exp(), filled, padded, conditionals.log_evidence


class _IncompleteRows:
    """Expected sufficient statistics of rows with missing entries, about the means.

    Rows are buffered until they fill a chunk (as many rows as the largest chunk seen),
    so each pattern is conditioned once per chunk's worth of incomplete rows rather than
    once per chunk: with few holes that is once per pass, with memory for one more chunk.
    """

    def __init__(self, mixture: Mixture) -> None:
        K, D, device = mixture.n_components, mixture.n_features, mixture.device
        self.mixture = mixture
        self.counts = torch.zeros(K, device=device, dtype=ACCUMULATOR_DTYPE)
        self.sums = torch.zeros(K, D, device=device, dtype=ACCUMULATOR_DTYPE)
        self.scatter = torch.zeros(K, D, D, device=device, dtype=ACCUMULATOR_DTYPE)
        self.log_likelihood = torch.zeros((), device=device, dtype=ACCUMULATOR_DTYPE)
        self.n_samples = torch.zeros((), device=device, dtype=ACCUMULATOR_DTYPE)
        self.buffer: list[Tensor] = []
        self.buffered = 0

    def add(self, rows: Tensor, chunk_rows: int) -> None:
        """Buffer rows that each miss at least one entry (from a chunk of ``chunk_rows``)."""
        self.buffer.append(rows)
        self.buffered += rows.shape[0]
        if self.buffered >= chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Add the buffered rows to the statistics, one pattern at a time."""
        if not self.buffer:
            return
        chunk = torch.cat(self.buffer)
        self.buffer, self.buffered = [], 0
        mixture = self.mixture
        unique, inverse = patterns(chunk)
        for index, pattern in enumerate(unique):
            rows = chunk[torch.nonzero(inverse == index).flatten()]
            given = torch.nonzero(pattern).flatten().cpu()
            responsibilities, filled, padded, ll = _pattern_moments(mixture, rows, given)
            differences = filled - mixture.means[None]
            weighted = responsibilities[:, :, None] * differences
            totals = responsibilities.sum(0)
            self.counts += totals.to(ACCUMULATOR_DTYPE)
            self.sums += weighted.sum(0).to(ACCUMULATOR_DTYPE)
            outer = torch.einsum("bkd,bke->kde", weighted, differences)
            self.scatter += (outer + totals[:, None, None] * padded).to(ACCUMULATOR_DTYPE)
            self.log_likelihood += ll.sum().to(ACCUMULATOR_DTYPE)
            self.n_samples += rows.shape[0]

    def statistics(self) -> SufficientStatistics:
        self.flush()
        layout = type(self.mixture.covariance).scatter_from_dense(self.scatter)
        return SufficientStatistics(
            self.counts, self.sums, layout, self.mixture.means, self.log_likelihood, self.n_samples
        )


def missing_statistics(mixture: Mixture, chunks: Iterable[Tensor]) -> SufficientStatistics:
    """One E-step pass over chunks that may contain NaN: expected sufficient statistics.

    Complete rows go through the complete-data pass
    (:func:`~mixtorch.stats.accumulate_statistics`, with its kernels and float32 guard),
    rows with missing entries through the conditional moments of their pattern; chunks
    are read one at a time, so a stream or one rank's shard works as in memory. The
    moments of both are taken about the current means (the same point on every
    ``torch.distributed`` rank, so :meth:`~mixtorch.stats.SufficientStatistics.all_reduce`
    sums them) and added in float64; the scatter is in the covariance kind's layout,
    ready for :meth:`~mixtorch.stats.SufficientStatistics.m_step`.

    Parameters
    ----------
    mixture : Mixture
        The current parameters, K components over D features.
    chunks : iterable of Tensor of shape (rows, D)
        Row blocks, NaN marking missing entries; an empty block contributes nothing.

    Returns
    -------
    SufficientStatistics
        Summed over the chunks of this process only.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.missing import missing_statistics
    >>> mixture = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[1.0, 1.0]], "diag")
    >>> X = torch.tensor([[1.0, 2.0], [3.0, float("nan")]], dtype=torch.float64)
    >>> stats = missing_statistics(mixture, [X])
    >>> stats.sums.tolist()  # the missing entry is filled with its conditional mean, 0
    [[4.0, 2.0]]
    """
    incomplete = _IncompleteRows(mixture)

    def complete_rows() -> Iterator[Tensor]:
        largest = 0
        for chunk in chunks:
            chunk = chunk.to(mixture.dtype)
            largest = max(largest, chunk.shape[0])
            holes = torch.isnan(chunk).any(1)
            if bool(holes.any()):
                incomplete.add(chunk[holes], largest)
                chunk = chunk[~holes]
            yield chunk

    complete = accumulate_statistics(mixture, complete_rows()).about(mixture.means)
    return complete + incomplete.statistics()

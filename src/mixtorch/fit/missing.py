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
the others are buffered across chunks and handled many patterns of missing entries at a
time, so a pass costs a few dozen tensor operations per buffer and segment length, however
many patterns there are (one small operation per pattern made in-memory EM on a few
hundred rows dispatch-bound, and thousands of patterns took minutes per iteration):

- diagonal and spherical covariances need no grouping: the observed marginal of a row is
  a sum over its observed features, the conditional mean of a missing entry its
  component mean and its conditional variance the component variance;
- full and tied covariances group the rows by pattern into segments of a power-of-two
  number of rows. For each pattern and component the covariance with its missing rows and
  columns replaced by those of the identity is factored (its Cholesky factor holds that
  of ``S_koo``, and solves with it leave the missing block alone), so patterns of any size
  are factored in one batched call, once per buffer; a triangular solve and one matrix
  product whiten and fill the rows of all segments of a length.

Moments are taken about the current means from explicit differences, so float32 stays
accurate. The arithmetic differs from conditioning one pattern at a time only by rounding
(float64: about 1e-15 relative, also after many EM iterations). The grouping depends only
on where the NaN are, so it is kept while the chunk tensors live, least recently used
first to go past 128 MiB (``mixtorch.fit._missing_layout``): in-memory EM groups once per
fit, and a chunk whose NaN moved (a source that refills its tensor) is grouped anew. A
row with no observed entry contributes its prior (responsibilities = weights) and a
log-likelihood of zero, to rounding. A row too far from every component for a finite
density takes the per-pattern path of :func:`~mixtorch.conditioning.condition`, which
finds the limit along its ray. The statistics are additive like the complete-data ones,
so chunked, streaming and ``torch.distributed`` fits run the same
:func:`~mixtorch.fit.em.fit_em` loop with :func:`missing_statistics` as its E-step. Rows may
carry weights (``(chunk, sample_weight)`` pairs, as for the complete-data pass): every
row's responsibilities, conditional moments and log-likelihood are multiplied by its
weight, so a row of weight 2 adds what the row twice would.

Scoring (:func:`observed_weighted_log_prob`) takes the same kernels, with the rows grouped
anew in every call (a scored array is seldom scored again). The kernels live in
``mixtorch.fit._missing_kernels``, the scoring in ``mixtorch.fit._missing_scoring``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torch import Tensor

from ..conditioning import condition_unchecked
from ..mixture import Mixture
from ..stats import ACCUMULATOR_DTYPE, SufficientStatistics, accumulate_statistics
from ._missing_kernels import _BatchedSums, _distinct, _Sums
from ._missing_layout import (
    _LAYOUTS,
    _ChunkLayout,
    _layout,
    _LayoutCache,
    _Segments,
    _segments,
)
from ._missing_scoring import observed_weighted_log_prob

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


#: Elements of buffered rows with missing entries (see :class:`_BatchedRows`).
_BUFFER_ELEMENTS = 1 << 22


def patterns(X: Tensor) -> tuple[Tensor, Tensor]:
    """The distinct patterns of observed entries (P, D) and each row's pattern (n,)."""
    observed = ~torch.isnan(X)
    unique, inverse = torch.unique(observed, dim=0, return_inverse=True)
    return unique, inverse


def column_means(X: Tensor, weights: Tensor | None = None) -> Tensor:
    """The mean of each column's observed (non-NaN) entries, (D,), weighted by the rows'
    ``weights`` (n,) if given; 0 for an empty column."""
    observed = ~torch.isnan(X)
    values = torch.where(observed, X, torch.zeros_like(X))
    if weights is None:
        return values.sum(0) / observed.sum(0).clamp_min(1)
    mass = weights.to(X.dtype) @ observed.to(X.dtype)
    return (weights.to(X.dtype) @ values) / torch.where(mass > 0, mass, 1.0)


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


def fill_column_means(X: Tensor, weights: Tensor | None = None) -> Tensor:
    """A copy of ``X`` with every NaN replaced by its column's observed mean (weighted by
    ``weights`` if given; 0 for a column with no observed entry): only a starting point
    for EM, never its data."""
    return fill_missing(X, column_means(X, weights))


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


class _PatternRows(_Sums):
    """Rows with missing entries, one pattern at a time (:func:`_pattern_moments`): the
    path of rows too far for finite densities, and the reference of the batched one.

    Rows are buffered until they fill a chunk (as many rows as the largest chunk seen),
    so each pattern is conditioned once per chunk's worth of incomplete rows.
    """

    def __init__(self, mixture: Mixture) -> None:
        super().__init__(mixture)
        self.buffer: list[tuple[Tensor, Tensor | None]] = []
        self.buffered = 0

    def add(self, rows: Tensor, chunk_rows: int, weights: Tensor | None = None) -> None:
        """Buffer rows that each miss at least one entry (from a chunk of ``chunk_rows``),
        with their weights if any."""
        self.buffer.append((rows, weights))
        self.buffered += rows.shape[0]
        if self.buffered >= chunk_rows:
            self.flush()

    def flush(self) -> None:
        """Add the buffered rows to the statistics, one pattern at a time."""
        if not self.buffer:
            return
        pieces, self.buffer, self.buffered = self.buffer, [], 0
        chunk, weights = torch.cat([piece[0] for piece in pieces]), _joined_weights(pieces)
        mixture = self.mixture
        unique, inverse = patterns(chunk)
        for index, pattern in enumerate(unique):
            members = torch.nonzero(inverse == index).flatten()
            rows = chunk[members]
            given = torch.nonzero(pattern).flatten().cpu()
            responsibilities, filled, padded, ll = _pattern_moments(mixture, rows, given)
            if weights is not None:
                responsibilities = responsibilities * weights[members, None]
                ll = ll * weights[members]
            differences = filled - mixture.means[None]
            weighted = responsibilities[:, :, None] * differences
            totals = responsibilities.sum(0)
            self.counts += totals.to(ACCUMULATOR_DTYPE)
            self.sums += weighted.sum(0).to(ACCUMULATOR_DTYPE)
            outer = torch.einsum("bkd,bke->kde", weighted, differences)
            self.scatter += (outer + totals[:, None, None] * padded).to(ACCUMULATOR_DTYPE)
            self.log_likelihood += ll.sum().to(ACCUMULATOR_DTYPE)
            self.n_samples += rows.shape[0] if weights is None else weights[members].sum()

    def statistics(self) -> SufficientStatistics:
        self.flush()
        return super().statistics()


class _BatchedRows(_BatchedSums):
    """Rows with missing entries, many patterns at a time (see the module docstring).

    Rows are buffered until there are ``2**22 / D`` of them (32 MiB of float64; at least
    a chunk's worth), so that a pattern found in many chunks is factored once per buffer
    rather than once per chunk.
    """

    def __init__(self, mixture: Mixture, layouts: _LayoutCache | None) -> None:
        super().__init__(mixture)
        K, D = mixture.n_components, mixture.n_features
        matrices = mixture.covariance.full_matrices(K)
        #: Diagonal and spherical covariances: every feature on its own, no grouping.
        self.independent = mixture.covariance.independent_features
        self.full_matrices = matrices
        self.matrices = _distinct(matrices)
        self.variances = torch.diagonal(matrices, dim1=-2, dim2=-1)
        self.layouts = layouts
        self.buffer: list[tuple[Tensor, _ChunkLayout, Tensor | None]] = []
        self.buffered = 0
        self.weights: Tensor | None = None  #: of the rows being added, if weighted
        self.limit = max(1, _BUFFER_ELEMENTS // D)
        self.far = _PatternRows(mixture)
        self.n_far = 0

    def add(self, chunk: Tensor, layout: _ChunkLayout, weights: Tensor | None = None) -> None:
        """Buffer the rows of ``chunk`` that miss an entry (``layout.incomplete``), with
        their ``weights`` (of all the chunk's rows) if given."""
        kept = None if weights is None else weights.index_select(0, layout.incomplete)
        self.buffer.append((chunk.index_select(0, layout.incomplete), layout, kept))
        self.buffered += layout.incomplete.shape[0]
        if self.buffered >= max(self.limit, chunk.shape[0]):
            self.flush()

    def flush(self) -> None:
        """Add the buffered rows to the statistics."""
        if not self.buffer:
            return
        pieces, self.buffer, self.buffered = self.buffer, [], 0
        rows = pieces[0][0] if len(pieces) == 1 else torch.cat([piece[0] for piece in pieces])
        layouts = tuple(piece[1] for piece in pieces)
        self.weights = _joined_weights([(piece[0], piece[2]) for piece in pieces])
        if self.independent:
            observed = torch.cat([layout.observed for layout in layouts])
            far = self._add_independent(rows, observed)
        else:
            far = [
                self._add_segments(rows, part)
                for group in self._grouping(layouts)
                for part in group.parts(self.mixture.n_components)
            ]
        weights = self.weights
        self.n_samples += rows.shape[0] if weights is None else weights.sum()
        found = [indices for indices in far if indices is not None]
        if found:  # rare: the per-pattern path finds their limits (see far_labels)
            indices = torch.cat(found)
            far_rows, far_weights = rows[indices], None if weights is None else weights[indices]
            self.n_far += far_rows.shape[0]
            self.n_samples -= far_rows.shape[0] if far_weights is None else far_weights.sum()
            self.far.add(far_rows, 0, far_weights)

    def statistics(self) -> SufficientStatistics:
        self.flush()
        # Conditional covariances and outer products, summed by matrix products: the
        # halves of the scatter may differ by rounding, so it is made symmetric.
        self.scatter = 0.5 * (self.scatter + self.scatter.mT)
        statistics = super().statistics()
        return statistics + self.far.statistics() if self.n_far else statistics

    def _grouping(self, layouts: tuple[_ChunkLayout, ...]) -> list[_Segments]:
        """The buffered rows grouped by pattern, as in the last pass if the same layouts
        made the buffer."""
        last, before = layouts[-1], layouts[:-1]
        segments = last.kept_grouping(before)
        if segments is None:
            observed = last.observed if not before else torch.cat([l.observed for l in layouts])
            segments = _segments(observed)
            if self.layouts is not None:
                self.layouts.keep_grouping(last, before, segments)
        return segments


def _joined_weights(pieces: list[tuple[Tensor, Tensor | None]]) -> Tensor | None:
    """The weights of buffered ``(rows, weights)`` pieces, concatenated (1 for the rows
    of a piece without weights); None when no piece has any."""
    if all(weights is None for _, weights in pieces):
        return None
    return torch.cat([
        rows.new_ones(rows.shape[0]) if weights is None else weights.to(rows.dtype)
        for rows, weights in pieces
    ])  # fmt: skip


def _split(item: Tensor | tuple[Tensor, Tensor], dtype: torch.dtype) -> tuple[Tensor, Any]:
    """A chunk, or a ``(chunk, sample_weight)`` pair, as (chunk in ``dtype``, weights or
    None)."""
    chunk, weights = item if isinstance(item, tuple) else (item, None)
    return chunk.to(dtype), None if weights is None else weights.to(dtype)


def missing_statistics(
    mixture: Mixture, chunks: Iterable[Tensor | tuple[Tensor, Tensor]]
) -> SufficientStatistics:
    """One E-step pass over chunks that may contain NaN: expected sufficient statistics.

    Complete rows go through the complete-data pass
    (:func:`~mixtorch.stats.accumulate_statistics`, with its kernels and float32 guard),
    rows with missing entries through the conditional moments of their pattern, many
    patterns at a time; chunks are read one at a time, so a stream or one rank's shard
    works as in memory. The grouping of rows by pattern is kept while the chunk tensors
    live and their NaN stay where they were (see the module docstring), so passes over
    the same chunks group them once. The moments of both are taken about the current
    means (the same point on every ``torch.distributed`` rank, so
    :meth:`~mixtorch.stats.SufficientStatistics.all_reduce` sums them) and added in
    float64; the scatter is in the covariance kind's layout, ready for
    :meth:`~mixtorch.stats.SufficientStatistics.m_step`.

    Parameters
    ----------
    mixture : Mixture
        The current parameters, K components over D features.
    chunks : iterable of Tensor of shape (rows, D), or of (Tensor, Tensor) pairs
        Row blocks, NaN marking missing entries, or ``(chunk, sample_weight)`` pairs
        (rows weighted as in :func:`~mixtorch.stats.accumulate_statistics`); an empty
        block contributes nothing.

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
    return _missing_pass(mixture, chunks, layouts=_LAYOUTS)


def _missing_pass(
    mixture: Mixture,
    chunks: Iterable[Tensor | tuple[Tensor, Tensor]],
    *,
    layouts: _LayoutCache | None = None,
    batched: bool = True,
) -> SufficientStatistics:
    """:func:`missing_statistics` with layouts kept in ``layouts`` (None: grouped anew),
    or, with ``batched=False``, one pattern at a time (the path it replaced)."""
    if not batched:
        return _pattern_pass(mixture, chunks)
    incomplete = _BatchedRows(mixture, layouts)

    def complete_rows() -> Iterator[Tensor | tuple[Tensor, Tensor]]:
        for item in chunks:
            chunk, weights = _split(item, mixture.dtype)
            missing = torch.isnan(chunk)
            if not bool(missing.any()):
                yield chunk if weights is None else (chunk, weights)
                continue
            layout = _layout(chunk, missing, layouts)
            incomplete.add(chunk, layout, weights)
            kept = chunk.index_select(0, layout.complete)
            yield kept if weights is None else (kept, weights.index_select(0, layout.complete))

    complete = accumulate_statistics(mixture, complete_rows()).about(mixture.means)
    return complete + incomplete.statistics()


def _pattern_pass(
    mixture: Mixture, chunks: Iterable[Tensor | tuple[Tensor, Tensor]]
) -> SufficientStatistics:
    """:func:`missing_statistics` one pattern at a time, rows buffered across chunks."""
    incomplete = _PatternRows(mixture)

    def complete_rows() -> Iterator[Tensor | tuple[Tensor, Tensor]]:
        largest = 0
        for item in chunks:
            chunk, weights = _split(item, mixture.dtype)
            largest = max(largest, chunk.shape[0])
            holes = torch.isnan(chunk).any(1)
            if bool(holes.any()):
                incomplete.add(chunk[holes], largest, None if weights is None else weights[holes])
                chunk = chunk[~holes]
                weights = None if weights is None else weights[~holes]
            yield chunk if weights is None else (chunk, weights)

    complete = accumulate_statistics(mixture, complete_rows()).about(mixture.means)
    return complete + incomplete.statistics()

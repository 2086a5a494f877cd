"""Scoring of rows with missing entries by their observed marginals
(:func:`observed_weighted_log_prob`, re-exported by :mod:`mixtorch.fit.missing`), with
the E-step's batched kernels (:mod:`mixtorch.fit._missing_kernels`)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET
from ..mixture import Mixture
from ._missing_kernels import _distinct, _independent_log_prob, _segment_log_prob
from ._missing_layout import _ChunkLayout, _segments


def observed_weighted_log_prob(mixture: Mixture, X: Tensor) -> Tensor:
    """``log w_k + log N(x_o | mu_ko, S_koo)`` over each row's observed entries, (n, K).

    Complete rows take the mixture's own kernel (:meth:`Mixture.weighted_log_prob`), the
    others the E-step's, many patterns at a time; a row with no observed entry gets
    ``log w_k`` and one too far for a finite density ``-inf``."""
    X = X.to(mixture.dtype)
    K, D = mixture.n_components, mixture.n_features
    layout = _ChunkLayout.of(torch.isnan(X))
    result = torch.empty(X.shape[0], K, dtype=X.dtype, device=X.device)
    if layout.complete.numel():
        result[layout.complete] = mixture.weighted_log_prob(X.index_select(0, layout.complete))
    rows, incomplete = X.index_select(0, layout.incomplete), layout.incomplete
    if mixture.covariance.independent_features:
        variances = torch.diagonal(mixture.covariance.full_matrices(K), dim1=-2, dim2=-1)
        step = max(1, DEFAULT_ELEMENT_BUDGET // (K * D))
        for start in range(0, rows.shape[0], step):
            seen, block = layout.observed[start : start + step], rows[start : start + step]
            log_prob = _independent_log_prob(mixture, variances, block, seen)[0]
            result[incomplete[start : start + step]] = log_prob
        return result
    matrices = _distinct(mixture.covariance.full_matrices(K))
    for group in _segments(layout.observed) if rows.shape[0] else []:
        for part in group.parts(K):
            log_prob = _segment_log_prob(mixture, matrices, rows, part)[0].permute(1, 2, 0)
            chosen = part.rows if part.valid is None else part.rows[part.valid]
            values = log_prob.reshape(-1, K) if part.valid is None else log_prob[part.valid]
            result[incomplete[chosen.flatten()]] = values
    return result

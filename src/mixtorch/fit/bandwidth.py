"""Bandwidth selection for Gaussian kernel density estimation.

Conventions follow ``scipy.stats.gaussian_kde``: the kernel covariance is
``factor**2 * data_covariance``, where ``data_covariance`` is the weighted, unbiased sample
covariance and the rules of thumb use the effective sample size ``1 / sum(w**2)``.

The maximum-likelihood choice maximises the leave-one-out (LOO) log-likelihood

    l(H) = N * sum_i w_i log[ sum_{j != i} w_j N(x_i | x_j, H) / sum_{j != i} w_j ],

which for equal weights is ``sum_i log[(1/(N-1)) sum_{j != i} N(x_i | x_j, H)]``. The naive
likelihood (keeping ``j = i``) grows without bound as ``H -> 0`` and is provided only to
show that.

**Ties.** With duplicated points (integer counts, rounded measurements) the plain LOO
likelihood is unbounded too: a held-out point keeps its copies, whose kernels grow
without bound as ``H -> 0`` (it picked a factor of 2e-13). The decision taken here: the
LOO sum for point ``i`` leaves out *every copy* of ``x_i`` (rows equal to it), normalised
by the weight of the points that remain, i.e. the density of ``x_i`` is estimated from
the other distinct values only. This is bounded below zero bandwidth, equals the usual
LOO likelihood when there are no ties, and a :class:`DuplicatePointsWarning` says that
it was applied (the chosen bandwidth then reflects the spacing of the distinct values).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

__all__ = [
    "DuplicatePointsWarning",
    "LooResult",
    "data_covariance",
    "duplicate_labels",
    "effective_n",
    "loo_log_likelihood",
    "naive_log_likelihood",
    "optimise_loo_factor",
    "optimise_loo_matrix",
    "rule_of_thumb_factor",
    "weighted_mean",
]

#: Rows of the (rows x N) pairwise block; bounds memory of the LOO passes.
_PAIR_BLOCK_ELEMENTS = 2**22


class DuplicatePointsWarning(UserWarning):
    """The data hold repeated points; leave-one-out leaves out every copy (see above)."""


def duplicate_labels(X: Tensor) -> Tensor | None:
    """Label of each row's distinct value, shape (N,), or None when all rows differ.

    Warns with :class:`DuplicatePointsWarning` when there are repeated rows.
    """
    _, labels, counts = torch.unique(X, dim=0, return_inverse=True, return_counts=True)
    if int(counts.max()) <= 1:
        return None
    repeated = int((counts > 1).sum())
    warnings.warn(
        f"The data hold {X.shape[0] - counts.shape[0]} repeated rows ({repeated} distinct "
        "values occur more than once). The leave-one-out likelihood leaves out every copy "
        "of the held-out point; without that it would choose a bandwidth near zero.",
        DuplicatePointsWarning,
        stacklevel=3,
    )
    return labels


def _copy_weight(weights: Tensor, copies: Tensor | None) -> Tensor:
    """Total weight of each point's copies (itself included), shape (N,)."""
    if copies is None:
        return weights
    totals = torch.zeros_like(weights).index_add_(0, copies, weights)
    return totals[copies]


@dataclass(frozen=True)
class LooResult:
    """Outcome of the scalar LOO search.

    Attributes
    ----------
    factor : float
        The maximiser: the kernel covariance is ``factor**2 * data_covariance``.
    log_likelihood : float
        The LOO log-likelihood at ``factor``.
    factors, log_likelihoods : ndarray of shape (n_grid,)
        The coarse grid and the curve on it, plus the refined optimum, sorted by factor.
    """

    factor: float
    log_likelihood: float
    factors: np.ndarray
    log_likelihoods: np.ndarray


def effective_n(weights: Tensor) -> float:
    """Kish's effective sample size ``1 / sum(w**2)`` of normalised weights."""
    return float(1.0 / weights.to(torch.float64).square().sum())


def weighted_mean(X: Tensor, weights: Tensor) -> Tensor:
    """``sum_i w_i x_i`` (normalised weights), shape (D,).

    Summed about the first row: a float32 dot product of large offset values loses the
    spread (a 1e-6 relative error on 1000 is 1e-3), the shifted one does not.
    """
    shift = X[0]
    return shift + weights @ (X - shift)


def data_covariance(X: Tensor, weights: Tensor) -> Tensor:
    """Weighted unbiased covariance (``numpy.cov(X.T, aweights=weights)``), shape (D, D).

    ``weights`` must be normalised. Computed about the weighted mean, so float32 data with
    a large offset stays accurate.
    """
    centred = X - weighted_mean(X, weights)
    scatter = (centred * weights[:, None]).T @ centred
    denominator = 1.0 - float(weights.to(torch.float64).square().sum())
    if not denominator > 0:
        raise ValueError("The data covariance needs at least two points with positive weight.")
    return scatter / denominator


def rule_of_thumb_factor(rule: str, n_effective: float, n_features: int) -> float:
    """Scott's ``n**(-1/(D+4))`` or Silverman's ``(n (D+2)/4)**(-1/(D+4))``."""
    exponent = -1.0 / (n_features + 4)
    if rule == "scott":
        return float(n_effective**exponent)
    if rule == "silverman":
        return float((n_effective * (n_features + 2) / 4.0) ** exponent)
    raise ValueError(f"Unknown bandwidth rule {rule!r}; expected 'scott' or 'silverman'.")


def _pair_blocks(Z: Tensor) -> Iterator[tuple[int, Tensor]]:
    """Blocks of squared distances ``||z_i - z_j||^2`` (rows x N), the diagonal set to inf."""
    n = Z.shape[0]
    rows = max(1, _PAIR_BLOCK_ELEMENTS // n)
    norms = Z.square().sum(1)
    for start in range(0, n, rows):
        block = Z[start : start + rows]
        distances = (norms[start : start + rows, None] + norms[None, :]) - 2.0 * block @ Z.T
        distances.clamp_(min=0.0)
        index = torch.arange(block.shape[0], device=Z.device)
        distances[index, index + start] = math.inf
        yield start, distances


def loo_log_likelihood(
    Z: Tensor,
    weights: Tensor,
    factors: Tensor,
    log_det_base: float,
    naive: bool = False,
    copies: Tensor | None = None,
) -> Tensor:
    """LOO log-likelihood for kernel covariances ``factor**2 * Sigma``, for many factors.

    Parameters
    ----------
    Z : Tensor of shape (N, D)
        Data whitened by the Cholesky factor of ``Sigma``.
    weights : Tensor of shape (N,)
        Normalised weights.
    factors : Tensor of shape (G,)
        Positive scale factors.
    log_det_base : float
        ``log det Sigma``; turns whitened densities into densities of the original data.
    naive : bool
        Keep each point's own kernel (the naive likelihood, maximised by ``factor -> 0``).
    copies : Tensor of shape (N,), optional
        Labels from :func:`duplicate_labels`: every copy of a held-out point is left out.

    Returns
    -------
    Tensor of shape (G,), float64
    """
    n, d = Z.shape
    # Pair distances by the expansion |a|^2 + |b|^2 - 2ab: in float64, so that float32
    # data with a small optimal factor do not lose the distances to rounding.
    Z, weights = Z.to(torch.float64), weights.to(torch.float64)
    factors = factors.to(Z)
    log_w = torch.log(weights)
    kept = _copy_weight(weights, None if naive else copies)
    total = torch.zeros(factors.shape[0], dtype=torch.float64, device=Z.device)
    for start, distances in _pair_blocks(Z):
        stop = start + distances.shape[0]
        block_w, block_kept = weights[start:stop], kept[start:stop]
        if naive:
            index = torch.arange(distances.shape[0], device=Z.device)
            distances[index, index + start] = 0.0
        elif copies is not None:
            distances.masked_fill_(copies[start:stop, None] == copies[None, :], math.inf)
        # (G, rows, N) would be large; loop over factors, the pair block is reused.
        for g, factor in enumerate(factors):
            log_kernel = log_w - 0.5 * distances / factor**2
            log_sum = torch.logsumexp(log_kernel, dim=1)
            if not naive:
                log_sum = log_sum - torch.log1p(-block_kept)
            total[g] += (block_w * log_sum).sum().to(torch.float64)
    normaliser = 0.5 * d * math.log(2 * math.pi) + 0.5 * log_det_base
    log_factor = torch.log(factors.to(torch.float64))
    return n * total - n * (normaliser + d * log_factor)


def optimise_loo_factor(
    Z: Tensor,
    weights: Tensor,
    log_det_base: float,
    start_factor: float,
    copies: Tensor | None = None,
    n_grid: int = 25,
) -> LooResult:
    """Maximise the scalar LOO log-likelihood: a log-spaced grid, then a bounded refinement.

    The grid spans ``start_factor / 20`` to ``start_factor * 20`` (``start_factor`` is
    Scott's rule); if the best grid point is at an edge the grid is extended that way.
    ``copies`` (from :func:`duplicate_labels`) leaves out every copy of a held-out point.
    """
    log_grid = np.linspace(math.log(start_factor / 20), math.log(start_factor * 20), n_grid)
    step = log_grid[1] - log_grid[0]

    def curve(log_factors: np.ndarray) -> np.ndarray:
        factors = torch.as_tensor(np.exp(log_factors), dtype=Z.dtype, device=Z.device)
        values = loo_log_likelihood(Z, weights, factors, log_det_base, copies=copies)
        return values.cpu().numpy()

    values = curve(log_grid)
    for _ in range(20):
        best = int(np.nanargmax(values))
        if 0 < best < len(log_grid) - 1:
            break
        extra = log_grid[best] + step * (np.arange(1, 6) if best else -np.arange(1, 6))
        log_grid = np.concatenate([log_grid, extra])
        values = np.concatenate([values, curve(extra)])
        order = np.argsort(log_grid)
        log_grid, values = log_grid[order], values[order]
    best = int(np.nanargmax(values))
    lower, upper = log_grid[max(best - 1, 0)], log_grid[min(best + 1, len(log_grid) - 1)]
    refined = minimize_scalar(
        lambda t: -float(curve(np.array([t]))[0]),
        bounds=(lower, upper),
        method="bounded",
        options={"xatol": 1e-7},
    )
    log_opt = float(refined.x) if -refined.fun >= values[best] else float(log_grid[best])
    value = max(-float(refined.fun), float(values[best]))
    order = np.argsort(np.append(log_grid, log_opt))
    return LooResult(
        factor=math.exp(log_opt),
        log_likelihood=value,
        factors=np.exp(np.append(log_grid, log_opt)[order]),
        log_likelihoods=np.append(values, value)[order],
    )


def naive_log_likelihood(
    Z: Tensor, weights: Tensor, factors: Tensor, log_det_base: float
) -> Tensor:
    """The naive (in-sample) log-likelihood: increases without bound as ``factor -> 0``.

    Same arguments as :func:`loo_log_likelihood`. For teaching only; never used to choose.
    """
    return loo_log_likelihood(Z, weights, factors, log_det_base, naive=True)


def loo_log_likelihood_matrix(
    X: Tensor, weights: Tensor, cholesky: Tensor, copies: Tensor | None = None
) -> Tensor:
    """Differentiable LOO log-likelihood for a kernel covariance ``L L^T`` (``cholesky``).

    Holds the (N, N) distance matrix, so it is meant for the moderate N where a matrix
    bandwidth is worth optimising.
    """
    n, d = X.shape
    Z = torch.linalg.solve_triangular(cholesky, (X - weighted_mean(X, weights)).T, upper=False).T
    norms = Z.square().sum(1)
    distances = (norms[:, None] + norms[None, :] - 2.0 * Z @ Z.T).clamp(min=0.0)
    if copies is None:
        left_out = torch.eye(n, dtype=torch.bool, device=X.device)
    else:
        left_out = copies[:, None] == copies[None, :]
    log_kernel = torch.log(weights)[None, :] - 0.5 * distances.masked_fill(left_out, math.inf)
    log_sum = torch.logsumexp(log_kernel, dim=1) - torch.log1p(-_copy_weight(weights, copies))
    log_det = torch.log(torch.diagonal(cholesky)).sum()
    return n * ((weights * log_sum).sum() - 0.5 * d * math.log(2 * math.pi) - log_det)


def optimise_loo_matrix(
    X: Tensor,
    weights: Tensor,
    start: Tensor,
    shape: str,
    max_iter: int = 200,
    learning_rate: float = 0.05,
    copies: Tensor | None = None,
) -> tuple[Tensor, float]:
    """Gradient ascent (Adam) of the LOO log-likelihood over a diagonal or full bandwidth.

    Parameters
    ----------
    X : Tensor of shape (N, D)
    weights : Tensor of shape (N,)
        Normalised weights.
    start : Tensor of shape (D, D)
        Starting kernel covariance (the scalar LOO optimum).
    shape : {'diag', 'full'}
    max_iter : int
    learning_rate : float
    copies : Tensor of shape (N,), optional
        Labels from :func:`duplicate_labels` (every copy of a held-out point left out).

    Returns
    -------
    bandwidth : Tensor of shape (D, D)
        The best kernel covariance seen, so the result is never worse than ``start``.
    log_likelihood : float
    """
    if shape not in ("diag", "full"):
        raise ValueError(f"shape must be 'diag' or 'full', got {shape!r}.")
    X64, w64 = X.detach().to(torch.float64), weights.detach().to(torch.float64)
    start64 = start.detach().to(torch.float64)
    if shape == "diag":
        start64 = torch.diag(torch.diagonal(start64))
    factor = torch.linalg.cholesky(start64)
    log_diagonal = torch.log(torch.diagonal(factor)).clone().requires_grad_(True)
    lower = torch.tril(factor, -1).clone().requires_grad_(shape == "full")
    params = [log_diagonal, lower] if shape == "full" else [log_diagonal]
    optimizer = torch.optim.Adam(params, lr=learning_rate)

    def cholesky_of_params() -> Tensor:
        return torch.diag(torch.exp(log_diagonal)) + torch.tril(lower, -1)

    best_value = -math.inf
    best = cholesky_of_params().detach()
    for _ in range(int(max_iter) + 1):
        optimizer.zero_grad()
        L = cholesky_of_params()
        value = loo_log_likelihood_matrix(X64, w64, L, copies)
        current = float(value.detach())
        if current > best_value:
            best_value, best = current, L.detach().clone()
        (-value).backward()
        optimizer.step()
    return (best @ best.T).to(X.dtype), best_value

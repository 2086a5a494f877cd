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
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch
from scipy.optimize import minimize_scalar
from torch import Tensor

from ._bandwidth_data import (
    DuplicatePointsWarning,
    copy_weight,
    data_covariance,
    duplicate_labels,
    effective_n,
    rule_of_thumb_factor,
    weighted_mean,
)
from ._loo_matrix import loo_log_likelihood_matrix, optimise_loo_matrix

__all__ = [
    "DuplicatePointsWarning",
    "LooResult",
    "data_covariance",
    "duplicate_labels",
    "effective_n",
    "loo_log_likelihood",
    "loo_log_likelihood_matrix",
    "naive_log_likelihood",
    "optimise_loo_factor",
    "optimise_loo_matrix",
    "rule_of_thumb_factor",
    "weighted_mean",
]

#: Rows of the (rows x N) pairwise block; bounds memory of the LOO passes.
_PAIR_BLOCK_ELEMENTS = 2**22


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

    See Also
    --------
    optimise_loo_factor : Returns it.
    mixtorch.GaussianKDE : Keeps it as ``loo_result_``.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.fit.bandwidth import LooResult
    >>> result = LooResult(0.5, -3.0, np.array([0.25, 0.5, 1.0]), np.array([-4.0, -3.0, -3.5]))
    >>> bool(result.factors[np.argmax(result.log_likelihoods)] == result.factor)
    True
    """

    factor: float
    log_likelihood: float
    factors: np.ndarray
    log_likelihoods: np.ndarray


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
        The LOO log-likelihood (summed over points) for each factor.

    See Also
    --------
    optimise_loo_factor : Maximises it.
    naive_log_likelihood : Without leaving anything out.
    loo_log_likelihood_matrix : For a matrix bandwidth, differentiable.

    References
    ----------
    .. [1] B. W. Silverman (1986), *Density Estimation for Statistics and Data Analysis*,
       Chapman & Hall, section 3.4.4 (likelihood cross-validation).

    Examples
    --------
    Against the definition, with equal weights and ``Sigma = I``:

    >>> import torch
    >>> from torch.distributions import Normal
    >>> from mixtorch.fit.bandwidth import loo_log_likelihood
    >>> Z = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    >>> weights = torch.full((3,), 1 / 3, dtype=torch.float64)
    >>> def by_definition(h):  # sum_i log[(1/(N-1)) sum_{j != i} N(z_i | z_j, h**2)]
    ...     kernels = Normal(Z, h).log_prob(Z.T).exp().fill_diagonal_(0.0)
    ...     return float((kernels.sum(0) / 2).log().sum())
    >>> values = loo_log_likelihood(Z, weights, torch.tensor([0.5, 1.0]), log_det_base=0.0)
    >>> expected = [by_definition(0.5), by_definition(1.0)]
    >>> torch.allclose(values, torch.tensor(expected, dtype=torch.float64))
    True
    """
    n, d = Z.shape
    # Pair distances by the expansion |a|^2 + |b|^2 - 2ab: in float64, so that float32
    # data with a small optimal factor do not lose the distances to rounding.
    Z, weights = Z.to(torch.float64), weights.to(torch.float64)
    factors = factors.to(Z)
    log_w = torch.log(weights)
    kept = copy_weight(weights, None if naive else copies)
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

    Parameters
    ----------
    Z : Tensor of shape (N, D)
        Data whitened by the Cholesky factor of the data covariance ``Sigma``.
    weights : Tensor of shape (N,)
        Normalised weights.
    log_det_base : float
        ``log det Sigma``.
    start_factor : float
        Centre of the grid (Scott's factor).
    copies : Tensor of shape (N,), optional
        Labels from :func:`duplicate_labels`.
    n_grid : int, default=25
        Points of the first grid.

    Returns
    -------
    LooResult
        The maximiser, its log-likelihood and the curve on the grid.

    See Also
    --------
    loo_log_likelihood : The curve.
    optimise_loo_matrix : Refines a diagonal or full bandwidth from this optimum.

    References
    ----------
    .. [1] B. W. Silverman (1986), *Density Estimation for Statistics and Data Analysis*,
       Chapman & Hall, section 3.4.4 (likelihood cross-validation).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.bandwidth import loo_log_likelihood, optimise_loo_factor
    >>> Z = torch.randn(60, 1, generator=torch.Generator().manual_seed(0)).double()
    >>> weights = torch.full((60,), 1 / 60, dtype=torch.float64)
    >>> result = optimise_loo_factor(Z, weights, 0.0, start_factor=60 ** -0.2)
    >>> bool((result.log_likelihoods <= result.log_likelihood + 1e-9).all())
    True
    >>> factor = torch.tensor([result.factor], dtype=torch.float64)
    >>> value = loo_log_likelihood(Z, weights, factor, 0.0)
    >>> bool(torch.isclose(value, torch.tensor(result.log_likelihood, dtype=torch.float64)))
    True
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

    For teaching only; never used to choose a bandwidth.

    Parameters
    ----------
    Z : Tensor of shape (N, D)
        Data whitened by the Cholesky factor of ``Sigma``.
    weights : Tensor of shape (N,)
        Normalised weights.
    factors : Tensor of shape (G,)
        Positive scale factors.
    log_det_base : float
        ``log det Sigma``.

    Returns
    -------
    Tensor of shape (G,), float64
        The in-sample log-likelihood for each factor.

    See Also
    --------
    loo_log_likelihood : The bounded, leave-one-out version.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.bandwidth import naive_log_likelihood
    >>> Z = torch.tensor([[0.0], [1.0], [3.0]], dtype=torch.float64)
    >>> weights = torch.full((3,), 1 / 3, dtype=torch.float64)
    >>> values = naive_log_likelihood(Z, weights, torch.tensor([1.0, 1e-2, 1e-4]), 0.0)
    >>> bool(values[0] < values[1] < values[2])  # grows as the factor shrinks
    True
    """
    return loo_log_likelihood(Z, weights, factors, log_det_base, naive=True)

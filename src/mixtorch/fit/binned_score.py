"""Log-density of a binned Gaussian KDE at arbitrary queries (``score_samples`` of
``GaussianKDE(algorithm="fft")``): a whitened grid of log-densities, interpolated.

The method and the error that holds where are stated in :mod:`mixtorch.fit.fft_kde`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

from .binned import (
    RegularGrid,
    binning_corrected_variance,
    dense_gaussian_convolution,
    linear_binning,
    multilinear_interpolation,
)
from .fft_kde import (
    MAX_FAR_FRACTION,
    MAX_SCORE_SPACING,
    SCORE_CELLS,
    SCORE_MARGIN,
    SCORE_MAX_SIZES,
    TAIL_POINTS,
    bulk_quantiles,
    check_binned_features,
)

__all__ = ["LogDensityGrid", "log_density_grid"]

#: Log-density standing in for an underflowed node, and the level below which an
#: interpolated value counts as touched by one (and is evaluated exactly).
_UNDERFLOW = -1e300
_UNDERFLOW_FLAG = -1e290


@dataclass(frozen=True)
class LogDensityGrid:
    """Log-density of a Gaussian KDE on a whitened grid, with exactly summed far points.

    Attributes
    ----------
    center : Tensor of shape (D,)
    cholesky : Tensor of shape (D, D)
        Lower Cholesky factor ``L`` of the kernel covariance; ``z = L^-1 (x - center)``.
    grid : RegularGrid
        In whitened coordinates.
    log_values : Tensor of shape grid.sizes
        Log of the whitened density at the nodes (-inf where it underflows).
    extremes : Tensor of shape (2, D)
        Smallest and largest whitened coordinates of the binned points.
    far_points : Tensor of shape (F, D)
        Whitened points outside the grid, summed exactly for every query.
    far_log_weights : Tensor of shape (F,)
    tail : tuple of Tensors of shapes (T, D) and (T,)
        Whitened binned points extreme along some direction of {-1, 0, 1}**D, and their
        log-weights: their exact sum bounds the density beyond the grid from below.
    """

    center: Tensor
    cholesky: Tensor
    grid: RegularGrid
    log_values: Tensor
    extremes: Tensor
    far_points: Tensor
    far_log_weights: Tensor
    tail: tuple[Tensor, Tensor]

    def log_density(self, queries: Tensor) -> tuple[Tensor, Tensor]:
        """Log-density at ``queries`` (m, D), and the mask of queries to evaluate exactly
        (only where the grid density underflows float64).

        Returns
        -------
        log_density : Tensor of shape (m,), float64
        needs_exact : Tensor of shape (m,), bool
        """
        columns = queries.T.to(torch.float64).contiguous() - self.center[:, None]
        z = torch.linalg.solve_triangular(self.cholesky, columns, upper=False)
        low, high = self.grid.origin.tolist(), self.grid.upper.tolist()
        clamped = torch.stack([z[d].clamp(low[d], high[d]) for d in range(z.shape[0])])
        log_f = multilinear_interpolation(self.log_values, self.grid, clamped)
        outside = (z != clamped).any(0)
        if bool(outside.any()):
            log_f[outside] = self._beyond_grid(
                z[:, outside].T, clamped[:, outside].T, log_f[outside]
            )
        if self.far_points.shape[0] > 0:
            far = _log_kernel_sum(z.T, self.far_points, self.far_log_weights)
            log_f = torch.logaddexp(log_f, far)
        log_det = torch.log(torch.diagonal(self.cholesky)).sum()
        return log_f - log_det, log_f < _UNDERFLOW_FLAG

    def _beyond_grid(self, z: Tensor, edge: Tensor, log_edge: Tensor) -> Tensor:
        """log f beyond the grid (see :mod:`mixtorch.fit.fft_kde`): the exact sum over
        the tail points, and within one kernel width of the grid the tangent of the
        convex ``log f + |z|**2 / 2`` at the nearest grid point if that is larger."""
        step = z - edge
        tangent = torch.zeros_like(log_edge)
        a_edge = log_edge + 0.5 * edge.square().sum(1)
        for d in range(z.shape[1]):
            moved = step[:, d] != 0
            if not bool(moved.any()):
                continue
            inward = edge[moved].clone()
            inward[:, d] -= torch.sign(step[moved, d]) * self.grid.spacing[d]
            log_inward = multilinear_interpolation(self.log_values, self.grid, inward.T)
            a_inward = log_inward + 0.5 * inward.square().sum(1)
            slope = (a_edge[moved] - a_inward) / self.grid.spacing[d]
            tangent[moved] += slope * step[moved, d].abs()
        shift = 0.5 * (edge.square().sum(1) - z.square().sum(1))
        tail = _log_kernel_sum(z, *self.tail)
        # Extrapolating the grid's small errors far out would amplify them: the tangent
        # serves only within one kernel width of the grid.
        near = step.norm(dim=1) <= 1.0
        return torch.where(near, torch.maximum(log_edge + shift + tangent, tail), tail)


def log_density_grid(
    X: Tensor, weights: Tensor, H: Tensor, grid_size: list[int] | None = None
) -> LogDensityGrid:
    """Build the :class:`LogDensityGrid` of a weighted Gaussian KDE.

    Parameters
    ----------
    X : Tensor of shape (N, D), D <= 3
    weights : Tensor of shape (N,), summing to 1
    H : Tensor of shape (D, D)
        Kernel covariance (positive definite).
    grid_size : list of D ints, optional
        Nodes per axis (validated by :func:`~mixtorch.fit.fft_kde.check_grid_size`); by
        default ``SCORE_CELLS`` per kernel width, at most ``SCORE_MAX_SIZES``.

    Raises
    ------
    ValueError
        If the data span too many kernel widths for a grid of spacing at most
        ``MAX_SCORE_SPACING`` kernel widths (outliers aside).
    """
    n_features = X.shape[1]
    check_binned_features(n_features)
    cholesky, info = torch.linalg.cholesky_ex(H.to(torch.float64))
    if int(info) != 0:
        raise ValueError("algorithm='fft' needs a positive definite bandwidth matrix.")
    weights64 = weights.to(torch.float64)
    center = weights64 @ X.to(torch.float64)
    z = torch.linalg.solve_triangular(cholesky, (X.to(torch.float64) - center).T, upper=False)
    lattice, inside = _whitened_grid(z, grid_size)
    n_far = 0 if inside is None else z.shape[1] - int(inside.sum())
    if n_far > max(1, MAX_FAR_FRACTION * z.shape[1]):
        raise _too_wide(z, list(lattice.sizes))
    log_weights = torch.log(weights64)
    if inside is None:
        binned, binned_weights, far = z, weights64, (z[:, :0].T, log_weights[:0])
    else:
        binned, binned_weights = z[:, inside], weights64[inside]
        far = (z[:, ~inside].T, log_weights[~inside])
    uniform = bool(weights64.min() == weights64.max())
    counts = linear_binning(binned, None if uniform else binned_weights, lattice)
    if uniform:  # linear_binning gave each binned point 1 / (number binned)
        counts *= binned.shape[1] / z.shape[1]
    eye = torch.eye(n_features, dtype=torch.float64, device=X.device)
    variances = torch.diagonal(binning_corrected_variance(eye, lattice.spacing))
    density = dense_gaussian_convolution(counts, lattice.spacing, variances)
    extremes = torch.stack([binned.amin(1), binned.amax(1)])
    tail = _tail_points(binned, torch.log(binned_weights))
    # Underflowed nodes get a finite stand-in, so interpolation weights of 0 stay exact.
    log_values = torch.log(density).clamp(min=_UNDERFLOW)
    return LogDensityGrid(center, cholesky, lattice, log_values, extremes, *far, tail)


def _whitened_grid(z: Tensor, grid_size: list[int] | None) -> tuple[RegularGrid, Tensor | None]:
    """The grid over the whitened data (columns ``z``, (D, N)) and the mask of points
    inside it (None when all are)."""
    n_features = z.shape[0]
    cap = torch.tensor(grid_size or [SCORE_MAX_SIZES[n_features]] * n_features, device=z.device).to(
        torch.float64
    )
    bounds = torch.stack([z.amin(1), z.amax(1)])
    wide = (bounds[1] - bounds[0]) > (cap - 1) * MAX_SCORE_SPACING - 2 * SCORE_MARGIN
    inside = None
    if bool(wide.any()):
        bounds = torch.where(wide, bulk_quantiles(z), bounds)
    low, high = bounds[0] - SCORE_MARGIN, bounds[1] + SCORE_MARGIN
    if bool(wide.any()):
        inside = ((z >= low[:, None]) & (z <= high[:, None])).all(0)
    wanted = torch.ceil((high - low) * SCORE_CELLS[n_features]) + 1
    sizes = grid_size or [int(n) for n in torch.minimum(wanted, cap).tolist()]
    spacing = (high - low) / (torch.tensor(sizes, device=z.device) - 1)
    if bool((spacing > MAX_SCORE_SPACING).any()):
        raise _too_wide(z, sizes)
    return RegularGrid(low, spacing, tuple(sizes)), inside


def _log_kernel_sum(z: Tensor, points: Tensor, log_weights: Tensor) -> Tensor:
    """log sum_i w_i N(z | points_i, I) for each row of z (m, D), exactly."""
    squared = torch.cdist(z, points).square()
    log_terms = log_weights - 0.5 * squared
    return torch.logsumexp(log_terms, 1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def _tail_points(z: Tensor, log_weights: Tensor) -> tuple[Tensor, Tensor]:
    """For each direction u of :func:`_directions`, the TAIL_POINTS points that weigh most in
    the density at ``t u`` just beyond the grid (largest ``t u.z_i - |z_i|**2 / 2 + log
    w_i``), as rows of the points (columns of z), with their log-weights."""
    directions = _directions(z.shape[0], z.dtype, z.device)
    projections = directions @ z  # (directions, N)
    # Points 40 kernel widths behind the front in every direction weigh e**-800 less
    # than the front there: leave them out before scoring.
    front = projections.amax(1, keepdim=True)
    candidates = torch.nonzero((projections >= front - 40.0).any(0)).reshape(-1)
    z, log_weights, projections = (
        z[:, candidates],
        log_weights[candidates],
        projections[:, candidates],
    )
    score = (front + SCORE_MARGIN) * projections - 0.5 * z.square().sum(0) + log_weights
    k = min(TAIL_POINTS, z.shape[1])
    chosen = torch.topk(score, k, dim=1).indices.reshape(-1).unique()
    return z[:, chosen].T, log_weights[chosen]


def _directions(n_features: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Unit vectors spread evenly: +-1 in 1-D, 32 angles in 2-D, 96 points of a
    Fibonacci sphere in 3-D. Shape (K, D)."""
    if n_features == 1:
        return torch.tensor([[-1.0], [1.0]], dtype=dtype, device=device)
    if n_features == 2:
        angles = torch.arange(32, dtype=dtype, device=device) * (2 * math.pi / 32)
        return torch.stack([angles.cos(), angles.sin()], 1)
    index = torch.arange(96, dtype=dtype, device=device) + 0.5
    height = 1 - 2 * index / 96
    radius = torch.sqrt(1 - height.square())
    angle = index * math.pi * (3 - math.sqrt(5))
    return torch.stack([radius * angle.cos(), radius * angle.sin(), height], 1)


def _too_wide(z: Tensor, sizes: list[int]) -> ValueError:
    span = float((z.amax(1) - z.amin(1)).max())
    return ValueError(
        f"algorithm='fft': the data span {span:.3g} kernel widths, more than a grid of "
        f"{sizes} nodes resolves at {MAX_SCORE_SPACING} kernel widths per cell. Use "
        f"algorithm='exact', a larger bandwidth, or a larger grid_size."
    )

"""Binned Gaussian KDE in 1-D, 2-D and 3-D: densities on a grid, log-densities anywhere.

Two grids, both built from linearly binned data (:mod:`mixtorch.fit.binned`):

**Density on a grid** (:func:`density_on_grid`, behind ``GaussianKDE.evaluate_grid``).
The data are binned on the evaluation grid itself (extended just enough to hold every
point within :data:`KERNEL_RADIUS` kernel standard deviations of it) and convolved by FFT
(``torch.fft.rfftn``, zero-padded so no value wraps around) with the kernel truncated
outside the Mahalanobis radius :data:`KERNEL_RADIUS`. Points farther than that from every
node are left out. Error at every node, *absolute*, relative to the kernel's peak height
``K0 = (2 pi)**(-D/2) det(H)**(-1/2)``:

- truncation and left-out points: at most ``exp(-KERNEL_RADIUS**2 / 2) K0`` = 9e-17 K0;
- FFT round-off: about 1e-16 times the largest density on the grid;
- binning: the kernel is narrowed by the average variance binning adds
  (:func:`~mixtorch.fit.binned.binning_corrected_variance`), which cancels the
  ``spacing**2 / 12 * f''`` term for data spread smoothly across cells; what remains is
  of order ``(spacing / h)**4`` relative to the peak density (measured in
  ``docs/bench/kde.md``: 1e-9 to 1e-6 of the peak on KDEpy's grids). For data sitting on
  the nodes (ties on a lattice) the term does not cancel and is at most
  ``spacing**2 / 8 * max|f''|``.

Relative errors are not bounded here: far below the peak (1e-14 of it and less) the FFT
values are round-off.

**Log-density at any query** (:class:`LogDensityGrid`, behind ``score_samples``). The
data are whitened by the bandwidth (``z = L^-1 (x - c)``, ``H = L L^T``), so the kernel
is the standard normal in every direction, and binned on a grid with :data:`SCORE_CELLS`
nodes per kernel width (fewer when the data span too many; never fewer than
``1 / MAX_SCORE_SPACING``) reaching :data:`SCORE_MARGIN` kernel widths beyond the data.
The convolution is a dense product along each axis: every term is positive, so each
node's density is exact to round-off *relative to its own value* (no noise floor), and
``log f`` is interpolated multilinearly. In whitened units, with spacing ``s`` (at most
1/8 by default) and ``r`` the distance from a query to the data points that dominate its
density:

- inside the grid, ``|log error| <= sum_d (r s + s**2/2)**2 / 8`` from binning (the
  worst case, one isolated point; smooth data cancel most of it) plus ``sum_d s**2 / 8``
  times the curvature of ``log f`` from interpolation (the curvature is 1 in the tails);
  at the grid's edge (r = 6, s = 1/8) the first term is at most 0.07 per axis, near the
  data it is below 1e-3, and measured errors are far below both;
- beyond the grid, ``log f = A(z) - |z|**2/2`` with ``A`` convex; ``A`` is bounded below
  by its tangent at the nearest grid point and above by the data's extreme coordinates,
  and the midpoint is returned: the error is at most half the gap, ``|z - z0| * (extreme
  - kernel-weighted mean seen from z0) / 2`` - exact for a single extreme point, about
  ``|z - z0| / (2 SCORE_MARGIN)`` for a dense edge;
- no query falls back to a sum over the data, except where the grid density underflows
  float64 (more than ~37 kernel widths from every point of the bulk): the caller
  evaluates those exactly (``needs_exact``).

**Outliers.** When the data span more than the grid can hold at :data:`MAX_SCORE_SPACING`,
the grid covers the bulk between the :data:`BULK_QUANTILE` and ``1 - BULK_QUANTILE``
quantiles of each axis; the few points outside (at most :data:`MAX_FAR_FRACTION` of
them) are summed exactly for each query, so an outlier neither stretches the grid nor is
lost. More spread-out data are refused with a ``ValueError`` recommending
``algorithm='exact'``.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .binned import (
    RegularGrid,
    binning_corrected_variance,
    dense_gaussian_convolution,
    fast_fft_size,
    fft_gaussian_convolution,
    linear_binning,
    multilinear_interpolation,
)

__all__ = [
    "LogDensityGrid",
    "check_grid_size",
    "density_on_grid",
    "log_density_grid",
]

#: Kernel truncation radius (Mahalanobis): exp(-8.6**2 / 2) = 9e-17.
KERNEL_RADIUS = 8.6
#: Automatic evaluation grids reach this many kernel standard deviations past the data.
GRID_MARGIN = 5.0
#: Nodes per axis of an automatic evaluation grid, by dimension.
DEFAULT_GRID_SIZES = {1: 1024, 2: 256, 3: 64}
#: Log-density grid: nodes per kernel width, margin, coarsest spacing (kernel widths).
SCORE_CELLS = 8
SCORE_MARGIN = 6.0
MAX_SCORE_SPACING = 0.5
#: Most nodes per axis of the log-density grid, by dimension (dense products cost M**(D+1)).
SCORE_MAX_SIZES = {1: 4096, 2: 1024, 3: 192}
BULK_QUANTILE = 1e-3
#: An automatic evaluation grid covers only the bulk when the full range is this much wider.
OUTLIER_STRETCH = 4.0
MAX_FAR_FRACTION = 0.01
#: Points kept exactly per direction of {-1, 0, 1}**D for the density beyond the grid.
TAIL_POINTS = 32
#: Largest working memory a grid may take.
MEMORY_LIMIT_BYTES = 2 * 2**30
_MAX_FEATURES = 3


def check_grid_size(value: Any, n_features: int) -> list[int] | None:
    """Validate ``grid_size`` (None, an int, or one int per axis) and the memory it needs.

    Returns
    -------
    list of n_features ints, or None
    """
    if value is None:
        return None
    if n_features > _MAX_FEATURES:
        raise ValueError(f"algorithm='fft' handles 1-D to 3-D data, got {n_features}-D.")
    items = list(value) if isinstance(value, (list, tuple)) else [value] * n_features
    if len(items) != n_features:
        raise ValueError(f"grid_size needs {n_features} entries, got {value!r}.")
    sizes = []
    for item in items:
        integral = isinstance(item, numbers.Integral) or (
            isinstance(item, float) and math.isfinite(item) and item.is_integer()
        )
        if isinstance(item, bool) or not integral or int(item) < 2:
            raise ValueError(f"grid_size must be an integer of at least 2, got {value!r}.")
        sizes.append(int(item))
    _check_memory(_score_bytes(sizes), "grid_size", value)
    return sizes


def _score_bytes(sizes: list[int]) -> int:
    return 8 * (3 * math.prod(sizes) + sum(size * size for size in sizes))


def _fft_bytes(sizes: list[int]) -> int:
    return 8 * 6 * math.prod(fast_fft_size(2 * size) for size in sizes)


def _check_memory(n_bytes: int, parameter: str, value: Any) -> None:
    if n_bytes > MEMORY_LIMIT_BYTES:
        raise ValueError(
            f"{parameter}={value!r} would need about {n_bytes / 2**30:.3g} GiB of memory "
            f"for the grid (limit {MEMORY_LIMIT_BYTES / 2**30:.0f} GiB): use fewer nodes."
        )


# -- density on an evaluation grid ------------------------------------------------------
def density_on_grid(X: Tensor, weights: Tensor, H: Tensor, grid: Any) -> tuple[Tensor, Tensor]:
    """Density of the weighted Gaussian KDE at every node of a regular grid.

    Parameters
    ----------
    X : Tensor of shape (N, D), D <= 3
    weights : Tensor of shape (N,), summing to 1
    H : Tensor of shape (D, D)
        Kernel covariance.
    grid : int, sequence of D ints, or array-like of shape (M, D)
        Nodes per axis of an automatic grid (the data's range plus :data:`GRID_MARGIN`
        kernel standard deviations), or the nodes of an equidistant grid listed with the
        last axis varying fastest (as ``itertools.product`` / KDEpy list them).

    Returns
    -------
    points : Tensor of shape (M, D), float64
    density : Tensor of shape (M,), float64, non-negative
    """
    X64, H64 = X.to(torch.float64), H.to(torch.float64)
    std = torch.sqrt(torch.diagonal(H64))
    if _is_point_array(grid):
        lattice = _grid_from_points(grid, X64.shape[1], X.device)
    else:
        sizes = check_grid_size(grid, X64.shape[1])
        assert sizes is not None
        lattice = _automatic_grid(X64, std, sizes)
    _check_memory(_fft_bytes(list(lattice.sizes)), "grid", _describe(grid))
    pad_low, pad_high = _padding(X64, std, lattice)
    extended = RegularGrid(
        lattice.origin - pad_low * lattice.spacing,
        lattice.spacing,
        tuple(
            int(size + lo + hi)
            for size, lo, hi in zip(lattice.sizes, pad_low, pad_high, strict=True)
        ),
    )
    _check_memory(_fft_bytes(list(extended.sizes)), "grid", _describe(grid))
    reach = KERNEL_RADIUS * std
    near = ((X64 >= lattice.origin - reach) & (X64 <= lattice.upper + reach)).all(1)
    counts = linear_binning(X64[near], weights[near], extended)
    kernel = binning_corrected_variance(H64, lattice.spacing)
    density = fft_gaussian_convolution(counts, lattice.spacing, kernel, KERNEL_RADIUS)
    crop = tuple(
        slice(int(lo), int(lo) + size) for lo, size in zip(pad_low, lattice.sizes, strict=True)
    )
    return lattice.points(), density[crop].clamp(min=0.0).reshape(-1)


def _is_point_array(grid: Any) -> bool:
    if isinstance(grid, torch.Tensor):
        return grid.ndim == 2
    return isinstance(grid, np.ndarray) and grid.ndim == 2


def _describe(grid: Any) -> Any:
    return f"array of shape {tuple(grid.shape)}" if _is_point_array(grid) else grid


def _automatic_grid(X: Tensor, std: Tensor, sizes: list[int]) -> RegularGrid:
    """The data's range plus GRID_MARGIN kernel standard deviations; on axes where
    outliers would stretch it more than OUTLIER_STRETCH times, the bulk's range."""
    size_tensor = torch.tensor(sizes, dtype=torch.float64, device=X.device)
    levels = torch.tensor([BULK_QUANTILE, 1 - BULK_QUANTILE], dtype=X.dtype, device=X.device)
    quantiles = _quantiles(X, levels)
    bulk_span = quantiles[1] - quantiles[0] + 2 * GRID_MARGIN * std
    low, high = _bulk_bounds(X, OUTLIER_STRETCH * bulk_span)
    low, high = low - GRID_MARGIN * std, high + GRID_MARGIN * std
    return RegularGrid(low, (high - low) / (size_tensor - 1), tuple(sizes))


def _grid_from_points(grid: Any, n_features: int, device: Any) -> RegularGrid:
    points = torch.as_tensor(np.asarray(grid) if not isinstance(grid, Tensor) else grid)
    points = points.to(dtype=torch.float64, device=device)
    if points.shape[1] != n_features or not bool(torch.isfinite(points).all()):
        raise ValueError(
            f"grid must be finite points of shape (M, {n_features}), got shape "
            f"{tuple(points.shape)}."
        )
    axes = [torch.unique(points[:, d]) for d in range(n_features)]
    sizes = tuple(int(axis.numel()) for axis in axes)
    if min(sizes) < 2:
        raise ValueError("grid needs at least 2 distinct values along every axis.")
    origin = torch.stack([axis[0] for axis in axes])
    spacing = torch.stack([(axis[-1] - axis[0]) / (axis.numel() - 1) for axis in axes])
    lattice = RegularGrid(origin, spacing, sizes)
    scale = float((points.abs().max() + spacing.max()).clamp(min=1.0))
    if math.prod(sizes) != points.shape[0] or not bool(
        torch.allclose(points, lattice.points(), rtol=0.0, atol=1e-9 * scale)
    ):
        raise ValueError(
            "grid must list every node of an equidistant grid, the last axis varying "
            "fastest (as itertools.product or KDEpy produce them)."
        )
    return lattice


def _padding(X: Tensor, std: Tensor, lattice: RegularGrid) -> tuple[Tensor, Tensor]:
    """Nodes to add below / above each axis so the grid holds every point that lies
    within KERNEL_RADIUS kernel standard deviations of the evaluation grid."""
    reach = KERNEL_RADIUS * std
    low = torch.maximum(X.min(0).values, lattice.origin - reach)
    high = torch.minimum(X.max(0).values, lattice.upper + reach)
    pad_low = torch.ceil((lattice.origin - low) / lattice.spacing).clamp(min=0)
    pad_high = torch.ceil((high - lattice.upper) / lattice.spacing).clamp(min=0)
    return pad_low.long(), pad_high.long()


def _bulk_bounds(X: Tensor, usable: Tensor) -> tuple[Tensor, Tensor]:
    """Per-axis range of the data, or of their central quantiles on axes where the
    whole range is wider than ``usable``."""
    low, high = X.min(0).values, X.max(0).values
    wide = (high - low) > usable
    if bool(wide.any()):
        levels = torch.tensor([BULK_QUANTILE, 1 - BULK_QUANTILE], dtype=X.dtype, device=X.device)
        quantiles = _quantiles(X, levels)
        low = torch.where(wide, quantiles[0], low)
        high = torch.where(wide, quantiles[1], high)
    return low, high


def _quantiles(X: Tensor, levels: Tensor) -> Tensor:
    """Quantiles per column, shape (len(levels), D) (torch.quantile caps its input size)."""
    ordered = torch.sort(X, dim=0).values
    index = (levels * (X.shape[0] - 1)).round().long()
    return ordered[index]


# -- log-density anywhere ---------------------------------------------------------------
@dataclass(frozen=True)
class LogDensityGrid:
    """Log-density of a Gaussian KDE on a whitened grid, with exactly summed far points.

    Attributes
    ----------
    center : Tensor of shape (D,)
    cholesky : Tensor of shape (D, D)
        Lower Cholesky factor ``L`` of the kernel covariance.
    grid : RegularGrid
        In whitened coordinates.
    log_values : Tensor of shape grid.sizes
        Log of the whitened density at the nodes (-inf where it underflows).
    extremes : Tensor of shape (2, D)
        Smallest and largest whitened coordinates of the binned points.
    far_points : Tensor of shape (F, D)
        Whitened points outside the grid, summed exactly.
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
        """Log-density at ``queries`` (m, D) and the mask of queries to evaluate exactly
        (only where the grid density underflows float64).

        Returns
        -------
        log_density : Tensor of shape (m,), float64
        needs_exact : Tensor of shape (m,), bool
        """
        z = self._whiten(queries.to(torch.float64))
        clamped = torch.maximum(torch.minimum(z, self.grid.upper), self.grid.origin)
        log_f = multilinear_interpolation(self.log_values, self.grid, clamped)
        outside = (z != clamped).any(1)
        if bool(outside.any()):
            log_f[outside] = self._beyond_grid(z[outside], clamped[outside], log_f[outside])
        if self.far_points.shape[0] > 0:
            log_f = torch.logaddexp(log_f, self._far_sum(z))
        log_det = torch.log(torch.diagonal(self.cholesky)).sum()
        return log_f - log_det, ~torch.isfinite(log_f)

    def _whiten(self, X: Tensor) -> Tensor:
        centred = (X - self.center).T
        return torch.linalg.solve_triangular(self.cholesky, centred, upper=False).T

    def _beyond_grid(self, z: Tensor, edge: Tensor, log_edge: Tensor) -> Tensor:
        """The larger of two lower bounds on log f beyond the grid (see the module
        docstring), capped by the upper bound."""
        step = z - edge
        tangent = torch.zeros_like(log_edge)
        upper = torch.zeros_like(log_edge)
        for d in range(z.shape[1]):
            moved = step[:, d] != 0
            if not bool(moved.any()):
                continue
            direction = torch.sign(step[moved, d])
            inward = edge[moved].clone()
            inward[:, d] -= direction * self.grid.spacing[d]
            log_inward = multilinear_interpolation(self.log_values, self.grid, inward)
            a_edge = log_edge[moved] + 0.5 * edge[moved].square().sum(1)
            a_inward = log_inward + 0.5 * inward.square().sum(1)
            slope = (a_edge - a_inward) / self.grid.spacing[d]
            extreme = torch.where(direction > 0, self.extremes[1, d], -self.extremes[0, d])
            extreme = extreme + self.grid.spacing[d]
            tangent[moved] += slope * step[moved, d].abs()
            upper[moved] += torch.maximum(extreme, slope) * step[moved, d].abs()
        # A(z) = log f(z) + |z|**2 / 2 is convex: tangent below, support function above.
        shift = 0.5 * (edge.square().sum(1) - z.square().sum(1))
        lower = torch.maximum(log_edge + shift + tangent, _log_kernel_sum(z, *self.tail))
        return torch.minimum(lower, log_edge + shift + upper)

    def _far_sum(self, z: Tensor) -> Tensor:
        return _log_kernel_sum(z, self.far_points, self.far_log_weights)


def _log_kernel_sum(z: Tensor, points: Tensor, log_weights: Tensor) -> Tensor:
    """log sum_i w_i N(z | points_i, I) for each row of z (m, D), exactly."""
    squared = torch.cdist(z, points).square()
    log_terms = log_weights - 0.5 * squared
    return torch.logsumexp(log_terms, 1) - 0.5 * z.shape[1] * math.log(2 * math.pi)


def _tail_points(z: Tensor, log_weights: Tensor) -> tuple[Tensor, Tensor]:
    """The TAIL_POINTS most extreme points along each direction of {-1, 0, 1}**D."""
    n_features = z.shape[1]
    steps = torch.tensor([-1.0, 0.0, 1.0], dtype=z.dtype, device=z.device)
    directions = torch.cartesian_prod(*[steps] * n_features).reshape(-1, n_features)
    directions = directions[directions.abs().sum(1) > 0]
    k = min(TAIL_POINTS, z.shape[0])
    chosen = torch.topk(z @ directions.T, k, dim=0).indices.reshape(-1).unique()
    return z[chosen], log_weights[chosen]


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
        Nodes per axis (from :func:`check_grid_size`); by default :data:`SCORE_CELLS` per
        kernel width, at most :data:`SCORE_MAX_SIZES`.

    Raises
    ------
    ValueError
        If the data span too many kernel widths for a grid of spacing at most
        :data:`MAX_SCORE_SPACING` (outliers aside).
    """
    n_samples, n_features = X.shape
    if n_features > _MAX_FEATURES:
        raise ValueError(f"algorithm='fft' handles 1-D to 3-D data, got {n_features}-D.")
    X64, H64 = X.to(torch.float64), H.to(torch.float64)
    cholesky, info = torch.linalg.cholesky_ex(H64)
    if int(info) != 0:
        raise ValueError("algorithm='fft' needs a positive definite bandwidth matrix.")
    center = (weights.to(torch.float64)[:, None] * X64).sum(0)
    z = torch.linalg.solve_triangular(cholesky, (X64 - center).T, upper=False).T
    cap = grid_size or [SCORE_MAX_SIZES[n_features]] * n_features
    usable = torch.tensor(cap, dtype=torch.float64, device=X.device) - 1
    low, high = _bulk_bounds(z, usable * MAX_SCORE_SPACING - 2 * SCORE_MARGIN)
    low, high = low - SCORE_MARGIN, high + SCORE_MARGIN
    inside = ((z >= low) & (z <= high)).all(1)
    n_far = n_samples - int(inside.sum())
    if n_far > max(1, MAX_FAR_FRACTION * n_samples):
        raise _too_wide(z, cap)
    sizes = grid_size or [
        min(c, math.ceil(float(span) * SCORE_CELLS) + 1)
        for c, span in zip(cap, high - low, strict=True)
    ]
    lattice = RegularGrid(
        low, (high - low) / (torch.tensor(sizes, device=X.device) - 1), tuple(sizes)
    )
    if bool((lattice.spacing > MAX_SCORE_SPACING).any()):
        raise _too_wide(z, sizes)
    counts = linear_binning(z[inside], weights[inside], lattice)
    log_weights = torch.log(weights.to(torch.float64))
    variances = torch.diagonal(
        binning_corrected_variance(
            torch.eye(n_features, dtype=torch.float64, device=X.device), lattice.spacing
        )
    )
    density = dense_gaussian_convolution(counts, lattice.spacing, variances)
    return LogDensityGrid(
        center,
        cholesky,
        lattice,
        torch.log(density),
        torch.stack([z[inside].min(0).values, z[inside].max(0).values]),
        z[~inside],
        log_weights[~inside],
        _tail_points(z[inside], log_weights[inside]),
    )


def _too_wide(z: Tensor, sizes: list[int]) -> ValueError:
    span = (z.max(0).values - z.min(0).values).max()
    return ValueError(
        f"algorithm='fft': the data span {float(span):.3g} kernel widths, more than a grid "
        f"of {sizes} nodes resolves at {MAX_SCORE_SPACING} kernel widths per cell. Use "
        f"algorithm='exact', a larger bandwidth, or a larger grid_size."
    )

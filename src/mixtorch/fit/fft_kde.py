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

**Log-density at any query** (:class:`~mixtorch.fit.binned_score.LogDensityGrid`,
behind ``score_samples``). The data are whitened by the bandwidth (``z = L^-1 (x - c)``,
``H = L L^T``), so the kernel is the standard normal in every direction, and binned on a
grid with :data:`SCORE_CELLS` nodes per kernel width (16 in 1-D, 8 in 2-D and 3-D; fewer
when the data span more than :data:`SCORE_MAX_SIZES` nodes, never fewer than
``1 / MAX_SCORE_SPACING``) reaching :data:`SCORE_MARGIN` kernel widths beyond the data.
The convolution is a dense product along each axis: every term is positive, so each
node's density is exact to round-off *relative to its own value* (no noise floor), and
``log f`` is interpolated multilinearly. In whitened units, with spacing ``s`` and ``r``
the distance from a query to the points that dominate its density:

- inside the grid, ``|log error| <= sum_d (r s + s**2/2)**2 / 8`` from binning (the
  worst case, one isolated point; smooth data cancel most of it) plus ``sum_d s**2 / 8``
  times the curvature of ``log f`` from interpolation (the curvature is 1 in the tails).
  Near the data (r <= 2) this is below 1e-3 per axis in 1-D and 4e-3 in 2-D and 3-D; at
  the grid's edge (r = 6) below 0.02 (1-D) and 0.07 per axis (s = 1/8). Measured errors
  are far below both (``tests/test_binned_kde.py``, ``docs/bench/kde.md``);
- beyond the grid: the exact kernel sum over the :data:`TAIL_POINTS` points that weigh
  most just beyond the grid in each of 2 (1-D), 32 (2-D) or 96 (3-D) evenly spread
  directions (a lower bound,
  exact once those points dominate, which the Gaussian decay makes true far out), and
  within one kernel width of the grid the tangent of the convex ``log f + |z|**2 / 2``
  at the nearest grid node if that is larger. Measured on normal data: 1e-12 nats along
  the axes and diagonals 20 to 200 kernel widths out; in directions between them, up
  to 0.1 (2-D) and 0.35 (3-D) nats a few kernel widths beyond the grid, where neither
  bound is tight yet (``benchmarks/bench_binned_kde.py`` prints the figure);
- no query falls back to a sum over the data, except where the grid density underflows
  float64 (more than ~37 kernel widths from every point of the bulk): the caller
  evaluates those exactly (``needs_exact``).

**Outliers.** When the data span more than the grid can hold at :data:`MAX_SCORE_SPACING`,
the grid covers the bulk between the :data:`BULK_QUANTILE` and ``1 - BULK_QUANTILE``
quantiles of each axis; the few points outside (at most :data:`MAX_FAR_FRACTION` of
them) are summed exactly for each query, so an outlier neither stretches the grid nor is
lost. More spread-out data are refused with a ``ValueError`` recommending
``algorithm='exact'``. An automatic evaluation grid likewise covers only the bulk when
outliers would stretch it more than :data:`OUTLIER_STRETCH` times; points beyond
``KERNEL_RADIUS`` kernel widths of the grid cannot change its values (see above).
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .binned import (
    RegularGrid,
    binning_corrected_variance,
    fast_fft_size,
    fft_gaussian_convolution,
    linear_binning,
)

__all__ = [
    "bulk_quantiles",
    "check_binned_features",
    "check_grid_size",
    "check_score_grid_size",
    "density_on_grid",
]

#: Kernel truncation radius (Mahalanobis): exp(-8.6**2 / 2) = 9e-17.
KERNEL_RADIUS = 8.6
#: Automatic evaluation grids reach this many kernel standard deviations past the data.
GRID_MARGIN = 5.0
#: Nodes per axis of an automatic evaluation grid, by dimension.
DEFAULT_GRID_SIZES = {1: 1024, 2: 256, 3: 64}
#: Log-density grid: nodes per kernel width, margin, coarsest spacing (kernel widths).
SCORE_CELLS = {1: 16, 2: 8, 3: 8}
SCORE_MARGIN = 6.0
MAX_SCORE_SPACING = 0.5
#: The fewest nodes per axis any log-density grid can have: SCORE_MARGIN kernel widths on
#: each side of the data at MAX_SCORE_SPACING, for data on a single point (25).
MIN_SCORE_GRID_SIZE = math.ceil(2 * SCORE_MARGIN / MAX_SCORE_SPACING) + 1
#: Most nodes per axis of the log-density grid, by dimension (dense products cost M**(D+1)).
SCORE_MAX_SIZES = {1: 4096, 2: 1024, 3: 192}
BULK_QUANTILE = 1e-3
#: An automatic evaluation grid covers only the bulk when the full range is this much wider.
OUTLIER_STRETCH = 4.0
MAX_FAR_FRACTION = 0.01
#: Points kept exactly per direction of {-1, 0, 1}**D for the density beyond the grid.
TAIL_POINTS = 128
#: Largest working memory a grid may take.
MEMORY_LIMIT_BYTES = 2 * 2**30
MAX_FEATURES = 3


def check_binned_features(n_features: int) -> None:
    """Refuse data of more than :data:`MAX_FEATURES` features, saying what to use instead.

    Examples
    --------
    >>> check_binned_features(3)
    >>> check_binned_features(4)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: algorithm='fft' handles 1-D to 3-D data, got 4-D; use algorithm='exact' ...
    """
    if n_features > MAX_FEATURES:
        raise ValueError(
            f"algorithm='fft' handles 1-D to 3-D data, got {n_features}-D; use "
            "algorithm='exact' for more features."
        )


def check_grid_size(
    value: Any, n_features: int, parameter: str = "grid_size", minimum: int = 2
) -> list[int] | None:
    """Validate ``grid_size`` (None, an int, or one int per axis) and the memory it needs;
    errors name ``parameter``.

    Parameters
    ----------
    value : None, int or sequence of ints
    n_features : int
    parameter : str, default='grid_size'
        The name errors give.
    minimum : int, default=2
        The fewest nodes per axis accepted: 2 for an evaluation grid,
        :data:`MIN_SCORE_GRID_SIZE` for the log-density grid of ``score_samples``.

    Returns
    -------
    list of n_features ints, or None

    Examples
    --------
    >>> check_grid_size(64, 2)
    [64, 64]
    >>> check_grid_size(24, 1, minimum=MIN_SCORE_GRID_SIZE)  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    ValueError: grid_size must be an integer of at least 25 (nodes per axis)...
    """
    if value is None:
        return None
    check_binned_features(n_features)
    if isinstance(value, (np.ndarray, Tensor)) and value.ndim == 1:
        value = value.tolist()  # one size per axis, as a sequence
    nodes = " (grid nodes go in an (M, n_features) array)" if parameter == "grid" else ""
    items = list(value) if isinstance(value, (list, tuple)) else [value] * n_features
    if len(items) != n_features:
        raise ValueError(
            f"{parameter} needs {n_features} entries (nodes per axis), got {value!r}{nodes}."
        )
    sizes = []
    for item in items:
        integral = isinstance(item, numbers.Integral) or (
            isinstance(item, float) and math.isfinite(item) and item.is_integer()
        )
        if isinstance(item, bool) or not integral or int(item) < minimum:
            why = (
                f" (algorithm='fft' scores queries on a log-density grid reaching "
                f"{SCORE_MARGIN:g} kernel widths past the data with at most "
                f"{MAX_SCORE_SPACING:g} kernel widths per cell)"
                if minimum > 2
                else ""
            )
            raise ValueError(
                f"{parameter} must be an integer of at least {minimum} (nodes per axis), or "
                f"one such integer per axis, got {value!r}{nodes}{why}."
            )
        sizes.append(int(item))
    _check_memory(_score_bytes(sizes), parameter, value)
    return sizes


def check_score_grid_size(X: Tensor, weights: Tensor, H: Tensor, sizes: list[int]) -> None:
    """Refuse a ``grid_size`` too small for the log-density grid of these data and this
    bandwidth, with a ValueError naming the smallest that works.

    The grid (:func:`mixtorch.fit.binned_score.log_density_grid`, which this mirrors)
    spans the whitened data, or on an axis they span too widely for ``sizes`` the bulk
    between the :data:`BULK_QUANTILE` quantiles (at most :data:`MAX_FAR_FRACTION` of the
    points outside it, summed exactly), plus :data:`SCORE_MARGIN` kernel widths on each
    side, at most :data:`MAX_SCORE_SPACING` kernel widths per cell. So an axis of span
    ``S`` kernel widths needs ``ceil((S + 2 SCORE_MARGIN) / MAX_SCORE_SPACING) + 1``
    nodes; fewer would fit, then fail at the first ``score_samples``.

    Parameters
    ----------
    X : Tensor of shape (N, D)
    weights : Tensor of shape (N,), summing to 1
    H : Tensor of shape (D, D)
        Kernel covariance (positive definite).
    sizes : list of D ints
        Nodes per axis (``grid_size`` checked by :func:`check_grid_size`).

    Raises
    ------
    ValueError
        Naming ``grid_size`` and the nodes per axis these data need.
    """
    cholesky, info = torch.linalg.cholesky_ex(H.to(torch.float64))
    if int(info) != 0:
        return  # the grid's own check says so, in the words of the fit that needs it
    X64 = X.to(torch.float64)
    center = weights.to(torch.float64) @ X64
    z = torch.linalg.solve_triangular(cholesky, (X64 - center).T, upper=False)
    spans = z.amax(1) - z.amin(1)
    bulk = bulk_quantiles(z)
    if _grid_holds(z, spans, bulk, sizes):
        return
    every_bulk = torch.ones(z.shape[0], dtype=torch.bool, device=z.device)
    bulk_suffices = _n_far(z, bulk, every_bulk) <= max(1, MAX_FAR_FRACTION * z.shape[1])
    # (n - 1) MAX_SCORE_SPACING >= span + 2 SCORE_MARGIN, the margins being 24 cells.
    needed = [
        math.ceil(float(span) / MAX_SCORE_SPACING) + MIN_SCORE_GRID_SIZE
        for span in (bulk[1] - bulk[0] if bulk_suffices else spans)
    ]
    raise ValueError(
        f"grid_size={sizes if len(sizes) > 1 else sizes[0]} is too small for these data and "
        f"this bandwidth: algorithm='fft' scores queries on a log-density grid that spans "
        f"the data ({_spans_text(spans)} kernel widths) plus {SCORE_MARGIN:g} on each side, "
        f"at most {MAX_SCORE_SPACING:g} kernel widths per cell, which needs grid_size of at "
        f"least {needed if len(needed) > 1 else needed[0]}. "
        + _grid_size_advice(z, spans, bulk, needed)
    )


def _grid_holds(z: Tensor, spans: Tensor, bulk: Tensor, sizes: list[int]) -> bool:
    """Whether a log-density grid of ``sizes`` nodes holds the whitened data ``z`` (the
    span, or the bulk with few enough points beyond it, at MAX_SCORE_SPACING)."""
    room = (torch.tensor(sizes, dtype=torch.float64, device=z.device) - 1) * MAX_SCORE_SPACING
    wide = spans > room - 2 * SCORE_MARGIN
    if not bool(wide.any()):
        return True
    fits = bool((bulk[1] - bulk[0] <= room - 2 * SCORE_MARGIN).all())
    return fits and _n_far(z, bulk, wide) <= max(1, MAX_FAR_FRACTION * z.shape[1])


def _grid_size_advice(z: Tensor, spans: Tensor, bulk: Tensor, needed: list[int]) -> str:
    """What to do instead of a too small ``grid_size``: offer the needed size only if it
    fits in memory, and ``None`` only if its default grid (capped at SCORE_MAX_SIZES
    nodes per axis) holds the data."""
    if _score_bytes(needed) > MEMORY_LIMIT_BYTES:
        return (
            f"A grid that large would need about {_score_bytes(needed) / 2**30:.3g} GiB "
            f"(limit {MEMORY_LIMIT_BYTES / 2**30:.0f} GiB): use a larger bandwidth, or "
            "algorithm='exact'."
        )
    cap = SCORE_MAX_SIZES[z.shape[0]]
    if _grid_holds(z, spans, bulk, [cap] * z.shape[0]):
        return (
            "Pass a grid_size that large (or None to size the grid from the data), or use "
            "algorithm='exact'."
        )
    return (
        f"Pass a grid_size that large or a larger bandwidth, or use algorithm='exact' "
        f"(grid_size=None would not do: it caps the grid at {cap} nodes per axis)."
    )


def _n_far(z: Tensor, bulk: Tensor, axes: Tensor) -> int:
    """How many points (columns of ``z``) lie more than SCORE_MARGIN beyond the bulk on
    one of ``axes``."""
    low = torch.where(axes, bulk[0] - SCORE_MARGIN, -math.inf)
    high = torch.where(axes, bulk[1] + SCORE_MARGIN, math.inf)
    inside = ((z >= low[:, None]) & (z <= high[:, None])).all(0)
    return int(z.shape[1] - inside.sum())


def _spans_text(spans: Tensor) -> str:
    values = [f"{float(span):.3g}" for span in spans]
    return values[0] if len(values) == 1 else "[" + ", ".join(values) + "]"


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
def density_on_grid(
    X: Tensor, weights: Tensor | None, H: Tensor, grid: Any
) -> tuple[Tensor, Tensor]:
    """Density of the weighted Gaussian KDE at every node of a regular grid.

    Parameters
    ----------
    X : Tensor of shape (N, D), D <= 3
    weights : Tensor of shape (N,), summing to 1, or None for 1 / N each
    H : Tensor of shape (D, D)
        Kernel covariance.
    grid : int, sequence of D ints, or array-like of shape (M, D)
        Nodes per axis of an automatic grid (the data's range plus :data:`GRID_MARGIN`
        kernel standard deviations), or the nodes of an equidistant grid listed with the
        last axis varying fastest (as ``itertools.product`` / KDEpy list them); for 1-D
        data also a flat floating-point array of the M nodes.

    Returns
    -------
    points : Tensor of shape (M, D), float64
    density : Tensor of shape (M,), float64, non-negative
    """
    H64 = H.to(torch.float64)
    if int(torch.linalg.cholesky_ex(H64).info) != 0:
        raise ValueError(
            "algorithm='fft' needs a positive definite bandwidth matrix (are the data "
            "collinear?); pass a bandwidth matrix or use algorithm='exact'."
        )
    columns = X.T.to(torch.float64).contiguous()
    # Per-axis reductions over contiguous rows (aminmax over dim=1 runs 10x slower).
    bounds = torch.stack([columns.amin(1), columns.amax(1)])  # (2, D)
    std = torch.sqrt(torch.diagonal(H64))
    if isinstance(grid, (list, tuple)) and np.ndim(grid) == 2:
        grid = np.asarray(grid, dtype=np.float64)  # nodes as nested lists
    if _is_point_array(grid, X.shape[1]):
        lattice = _grid_from_points(grid, X.shape[1], X.device)
    else:
        sizes = check_grid_size(grid, X.shape[1], "grid")
        assert sizes is not None
        lattice = _automatic_grid(columns, bounds, std, sizes)
    reach = KERNEL_RADIUS * std
    low = torch.maximum(bounds[0], lattice.origin - reach)
    high = torch.minimum(bounds[1], lattice.upper + reach)
    pad_low = torch.ceil((lattice.origin - low) / lattice.spacing).clamp(min=0).long().tolist()
    # One node more than needed above: every binned point is then a cell below the top.
    above = torch.ceil((high - lattice.upper) / lattice.spacing).clamp(min=0) + 1
    pad_high = above.long().tolist()
    sizes = [n + lo + hi for n, lo, hi in zip(lattice.sizes, pad_low, pad_high, strict=True)]
    _check_memory(_fft_bytes(sizes), "grid", _describe(grid))
    offset = torch.tensor(pad_low, dtype=torch.float64, device=X.device) * lattice.spacing
    extended = RegularGrid(lattice.origin - offset, lattice.spacing, tuple(sizes))
    inside_columns, inside_weights = _select(columns, bounds, weights, low, high)
    counts = linear_binning(inside_columns, inside_weights, extended, clamp=False)
    kernel = binning_corrected_variance(H64, lattice.spacing)
    density = fft_gaussian_convolution(counts, lattice.spacing, kernel, KERNEL_RADIUS)
    crop = tuple(slice(lo, lo + size) for lo, size in zip(pad_low, lattice.sizes, strict=True))
    return lattice.points(), density[crop].clamp(min=0.0).reshape(-1)


def _select(
    columns: Tensor, bounds: Tensor, weights: Tensor | None, low: Tensor, high: Tensor
) -> tuple[Tensor, Tensor | None]:
    """Columns of the points inside [low, high] and their weights (None when uniform:
    ``weights`` None or all equal); no copy when every point is inside."""
    if weights is not None:
        weights = None if bool(weights.amin() == weights.amax()) else weights
    if bool((bounds[0] >= low).all() and (bounds[1] <= high).all()):
        return columns, weights
    keep = ((columns >= low[:, None]) & (columns <= high[:, None])).all(0)
    if weights is None:
        # Uniform weights of the points kept: 1 / N each of the N points in the data,
        # so the mass outside the grid's reach is still counted as lost.
        weights = torch.full_like(columns[0], 1.0 / columns.shape[1])
    return columns[:, keep], weights[keep]


def _is_point_array(grid: Any, n_features: int) -> bool:
    """An (M, D) array of nodes, or for 1-D data a flat array of floating-point nodes
    (as KDEpy takes them); a flat integer array is one size per axis."""
    if not isinstance(grid, (Tensor, np.ndarray)):
        return False
    if grid.ndim == 2:
        return True
    floating = grid.dtype.is_floating_point if isinstance(grid, Tensor) else grid.dtype.kind == "f"
    return grid.ndim == 1 and n_features == 1 and floating


def _describe(grid: Any) -> Any:
    return f"array of shape {tuple(grid.shape)}" if isinstance(grid, (Tensor, np.ndarray)) else grid


def _automatic_grid(columns: Tensor, bounds: Tensor, std: Tensor, sizes: list[int]):
    """The data's range plus GRID_MARGIN kernel standard deviations; on axes where
    outliers would stretch it more than OUTLIER_STRETCH times, the bulk's range."""
    size_tensor = torch.tensor(sizes, dtype=torch.float64, device=columns.device)
    bulk = bulk_quantiles(columns)
    bulk_span = bulk[1] - bulk[0] + 2 * GRID_MARGIN * std
    wide = (bounds[1] - bounds[0]) > OUTLIER_STRETCH * bulk_span
    low = torch.where(wide, bulk[0], bounds[0]) - GRID_MARGIN * std
    high = torch.where(wide, bulk[1], bounds[1]) + GRID_MARGIN * std
    return RegularGrid(low, (high - low) / (size_tensor - 1), tuple(sizes))


def _grid_from_points(grid: Any, n_features: int, device: Any) -> RegularGrid:
    points = torch.as_tensor(np.asarray(grid) if not isinstance(grid, Tensor) else grid)
    points = points.to(dtype=torch.float64, device=device)
    if points.ndim == 1:  # 1-D data: a flat array of nodes
        points = points[:, None]
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
    _check_memory(_fft_bytes(list(sizes)), "grid", _describe(grid))
    return lattice


def bulk_quantiles(columns: Tensor) -> Tensor:
    """The BULK_QUANTILE and 1 - BULK_QUANTILE quantiles of each row, shape (2, D)."""
    n_samples = columns.shape[1]
    low_rank = 1 + round(BULK_QUANTILE * (n_samples - 1))
    high_rank = n_samples - low_rank + 1
    low = torch.kthvalue(columns, low_rank, dim=1).values
    high = torch.kthvalue(columns, high_rank, dim=1).values
    return torch.stack([low, high])

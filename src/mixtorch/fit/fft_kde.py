"""Binned kernel density evaluation on a grid by FFT convolution (1-D and 2-D).

The data are linearly binned onto a regular grid (each point splits its weight between
the 2 or 4 surrounding nodes), the binned weights are convolved with the kernel sampled
on the grid offsets (zero-padded, so the convolution is linear, not circular), and
queries are linearly interpolated from the grid. This is the approach of KDEpy's
``FFTKDE`` and of Wand (1994), "Fast computation of multivariate kernel estimators".

Approximation error. Binning and interpolation both make errors of order
``(spacing / bandwidth)**2`` relative to the density. The default grid puts
:data:`CELLS_PER_BANDWIDTH` nodes per kernel standard deviation (along the narrowest
axis), capped at :data:`MAX_GRID_1D` nodes in 1-D and :data:`MAX_GRID_2D` per axis in
2-D. Relative errors in the tails grow with the distance from the data, so queries outside
the grid, or where the interpolated density is below :data:`EXACT_BELOW` times the grid
maximum, are evaluated exactly instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = ["DensityGrid", "binned_density_grid", "default_grid_size"]

CELLS_PER_BANDWIDTH = 16
MAX_GRID_1D = 2**16
MAX_GRID_2D = 1024
#: Interpolated densities below this fraction of the peak are recomputed exactly.
EXACT_BELOW = 1e-6
#: The grid extends this many kernel standard deviations beyond the data.
_MARGIN = 6.0


@dataclass(frozen=True)
class DensityGrid:
    """Density values on a regular grid.

    Attributes
    ----------
    origin, spacing : Tensor of shape (D,)
    values : Tensor of shape (M,) or (M1, M2)
        Density (not log-density) at the nodes, float64.
    """

    origin: Tensor
    spacing: Tensor
    values: Tensor

    def interpolate(self, queries: Tensor) -> tuple[Tensor, Tensor]:
        """Linearly interpolated density at ``queries`` (m, D), and a mask of queries that
        need exact evaluation (outside the grid or in the far tail)."""
        sizes = torch.tensor(self.values.shape, device=queries.device)
        position = (queries.to(torch.float64) - self.origin) / self.spacing
        inside = ((position >= 0) & (position <= sizes - 1)).all(1)
        base = position.floor().clamp(min=0).minimum(sizes - 2).long()
        fraction = (position - base).clamp(0.0, 1.0)
        density = torch.zeros(queries.shape[0], dtype=torch.float64, device=queries.device)
        for corner, corner_weight in _corners(base, fraction):
            index = tuple(corner[:, d] for d in range(corner.shape[1]))
            density += corner_weight * self.values[index]
        tail = density < EXACT_BELOW * float(self.values.max())
        return density, ~inside | tail


def default_grid_size(extent: Tensor, kernel_std: float) -> list[int]:
    """Nodes per axis: :data:`CELLS_PER_BANDWIDTH` per kernel standard deviation, capped."""
    cap = MAX_GRID_1D if extent.shape[0] == 1 else MAX_GRID_2D
    sizes = []
    for length in extent.tolist():
        wanted = CELLS_PER_BANDWIDTH * length / kernel_std + 1
        sizes.append(int(min(cap, max(64, 2 ** math.ceil(math.log2(wanted))))))
    return sizes


def binned_density_grid(
    X: Tensor, weights: Tensor, bandwidth: Tensor, grid_size: int | None = None
) -> DensityGrid:
    """Density of the weighted Gaussian KDE on a grid covering the data.

    Parameters
    ----------
    X : Tensor of shape (N, D), D in {1, 2}
    weights : Tensor of shape (N,)
        Normalised weights.
    bandwidth : Tensor of shape (D, D)
        Kernel covariance.
    grid_size : int, optional
        Nodes per axis; by default :func:`default_grid_size`.
    """
    n_features = X.shape[1]
    if n_features not in (1, 2):
        raise ValueError(f"The FFT algorithm handles 1-D and 2-D data, got {n_features}-D.")
    X64, H = X.to(torch.float64), bandwidth.to(torch.float64)
    axis_std = torch.sqrt(torch.diagonal(H))
    low = X64.min(0).values - _MARGIN * axis_std
    high = X64.max(0).values + _MARGIN * axis_std
    narrowest = float(torch.linalg.eigvalsh(H).min().sqrt())
    if grid_size is None:
        sizes = default_grid_size(high - low, narrowest)
    else:
        if int(grid_size) < 2:
            raise ValueError(f"grid_size must be at least 2, got {grid_size!r}.")
        sizes = [int(grid_size)] * n_features
    shape = torch.tensor(sizes, dtype=torch.float64, device=X.device)
    spacing = (high - low) / (shape - 1)
    counts = _linear_binning(X64, weights.to(torch.float64), low, spacing, sizes)
    values = _convolve(counts, _kernel_on_offsets(H, spacing, sizes))
    return DensityGrid(low, spacing, values.clamp(min=0.0))


def _corners(base: Tensor, fraction: Tensor) -> list[tuple[Tensor, Tensor]]:
    """The 2**D neighbouring nodes of each point and their linear-interpolation weights."""
    n_features = base.shape[1]
    result = []
    for code in range(2**n_features):
        offset = torch.tensor([(code >> d) & 1 for d in range(n_features)], device=base.device)
        weight = torch.where(offset.bool(), fraction, 1.0 - fraction).prod(1)
        result.append((base + offset, weight))
    return result


def _linear_binning(
    X: Tensor, weights: Tensor, origin: Tensor, spacing: Tensor, sizes: list[int]
) -> Tensor:
    position = (X - origin) / spacing
    limits = torch.tensor(sizes, device=X.device) - 2
    base = position.floor().clamp(min=0).minimum(limits).long()
    fraction = (position - base).clamp(0.0, 1.0)
    flat = torch.zeros(math.prod(sizes), dtype=torch.float64, device=X.device)
    strides = [math.prod(sizes[d + 1 :]) for d in range(len(sizes))]
    for corner, corner_weight in _corners(base, fraction):
        flat_index = corner[:, 0] * strides[0]
        for d in range(1, len(sizes)):
            flat_index = flat_index + corner[:, d] * strides[d]
        flat.index_add_(0, flat_index, weights * corner_weight)
    return flat.reshape(sizes)


def _kernel_on_offsets(H: Tensor, spacing: Tensor, sizes: list[int]) -> Tensor:
    """N(offset | 0, H) on the padded (2 M per axis) grid of offsets, in FFT (wrapped) order."""
    axes = []
    for d, size in enumerate(sizes):
        steps = torch.fft.fftfreq(2 * size, d=1.0 / (2 * size), device=H.device)
        axes.append(steps.to(torch.float64) * spacing[d])
    offsets = torch.stack(torch.meshgrid(*axes, indexing="ij"), dim=-1).reshape(-1, len(sizes))
    cholesky = torch.linalg.cholesky(H)
    whitened = torch.linalg.solve_triangular(cholesky, offsets.T, upper=False)
    log_norm = 0.5 * len(sizes) * math.log(2 * math.pi) + torch.log(torch.diagonal(cholesky)).sum()
    kernel = torch.exp(-0.5 * whitened.square().sum(0) - log_norm)
    return kernel.reshape([2 * s for s in sizes])


def _convolve(counts: Tensor, kernel: Tensor) -> Tensor:
    dims = tuple(range(counts.ndim))
    padded = [2 * s for s in counts.shape]
    spectrum = torch.fft.rfftn(counts, s=padded, dim=dims) * torch.fft.rfftn(kernel, dim=dims)
    full = torch.fft.irfftn(spectrum, s=padded, dim=dims)
    return full[tuple(slice(0, s) for s in counts.shape)]

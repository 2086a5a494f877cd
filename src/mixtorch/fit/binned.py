"""Building blocks of the binned Gaussian KDE: regular grids, linear binning, Gaussian
convolution of binned weights (by FFT, or by dense positive sums), multilinear
interpolation.

Linear binning gives each point's weight to the ``2**D`` nodes of its grid cell, in
proportions that keep its position as the weighted mean of the nodes. It therefore moves
no mass and no first moment; it adds, per axis, a variance ``t (1 - t) spacing**2``
(``t`` the point's fractional position in its cell), ``spacing**2 / 6`` on average over
``t``. :func:`binning_corrected_variance` removes that average from the kernel, so the
leading error term, ``spacing**2 / 12`` times the second derivative of the density per
axis, cancels for data spread smoothly over cells (Wand and Jones, Kernel Smoothing,
1995, section D.2, derive the uncorrected term).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
from torch import Tensor

__all__ = [
    "RegularGrid",
    "binning_corrected_variance",
    "dense_gaussian_convolution",
    "fast_fft_size",
    "fft_gaussian_convolution",
    "linear_binning",
    "multilinear_interpolation",
]

#: Points binned per block (bounds the temporaries of :func:`linear_binning`).
_BINNING_BLOCK = 2**17


@dataclass(frozen=True)
class RegularGrid:
    """An axis-aligned regular grid: node ``k`` (a multi-index) sits at
    ``origin + k * spacing``.

    Attributes
    ----------
    origin, spacing : Tensor of shape (D,), float64
    sizes : tuple of D ints, each at least 2
    """

    origin: Tensor
    spacing: Tensor
    sizes: tuple[int, ...]

    @property
    def upper(self) -> Tensor:
        """The last node, shape (D,)."""
        counts = torch.tensor(self.sizes, dtype=torch.float64, device=self.origin.device)
        return self.origin + (counts - 1) * self.spacing

    def axes(self) -> list[Tensor]:
        """Node coordinates along each axis, D tensors of shape (sizes[d],)."""
        return [
            self.origin[d]
            + self.spacing[d] * torch.arange(size, dtype=torch.float64, device=self.origin.device)
            for d, size in enumerate(self.sizes)
        ]

    def points(self) -> Tensor:
        """All nodes, shape (prod(sizes), D), the last axis varying fastest."""
        mesh = torch.meshgrid(*self.axes(), indexing="ij")
        return torch.stack([axis.reshape(-1) for axis in mesh], dim=1)

    def padded(self, pad: list[int]) -> RegularGrid:
        """The same lattice extended by ``pad[d]`` nodes on both sides of axis d."""
        extra = torch.tensor(pad, dtype=torch.float64, device=self.origin.device)
        sizes = tuple(size + 2 * p for size, p in zip(self.sizes, pad, strict=True))
        return RegularGrid(self.origin - extra * self.spacing, self.spacing, sizes)


@functools.lru_cache(maxsize=256)
def fast_fft_size(n: int) -> int:
    """Smallest ``2**a 3**b 5**c`` that is at least ``n`` (sizes pocketfft handles fast)."""
    size = max(1, n)
    while True:
        rest = size
        for prime in (2, 3, 5):
            while rest % prime == 0:
                rest //= prime
        if rest == 1:
            return size
        size += 1


def linear_binning(
    columns: Tensor, weights: Tensor | None, grid: RegularGrid, clamp: bool = True
) -> Tensor:
    """Weights of points spread linearly onto the nodes of ``grid``.

    Parameters
    ----------
    columns : Tensor of shape (D, N)
        The points' coordinates, one row per axis (this layout keeps every pass over
        the data contiguous). Points outside the grid's box are clamped onto its faces.
    weights : Tensor of shape (N,), or None for weight 1 / N each
    grid : RegularGrid
    clamp : bool, default=True
        False skips the clamping passes: the caller guarantees every point lies in the
        box and at least a cell below its upper faces.

    Returns
    -------
    Tensor of shape ``grid.sizes``, float64, summing to the total weight.
    """
    n_samples = columns.shape[1]
    if weights is None and len(grid.sizes) == 1:
        return (
            _bin_unit_weights_1d(columns[0], grid.origin[0], grid.spacing[0], grid.sizes[0], clamp)
            / n_samples
        )
    flat = torch.zeros(math.prod(grid.sizes), dtype=torch.float64, device=columns.device)
    for start in range(0, n_samples, _BINNING_BLOCK):
        block = slice(start, start + _BINNING_BLOCK)
        block_weights = None if weights is None else weights[block]
        _bin_block(columns[:, block], block_weights, grid, flat, clamp)
    if weights is None:
        flat /= n_samples
    return flat.reshape(grid.sizes)


def _bin_block(
    columns: Tensor, weights: Tensor | None, grid: RegularGrid, flat: Tensor, clamp: bool
) -> None:
    strides = [math.prod(grid.sizes[d + 1 :]) for d in range(len(grid.sizes))]
    flat_base: Tensor | None = None
    fractions = []
    for d, size in enumerate(grid.sizes):
        scale = 1.0 / float(grid.spacing[d])
        position = torch.mul(columns[d].to(torch.float64), scale)
        position.sub_(float(grid.origin[d]) * scale)
        if clamp:
            position.clamp_(0.0, size - 1.0)
        index = position.long()  # truncation is the floor: positions are >= 0
        if clamp:
            index.clamp_(max=size - 2)
            fractions.append(position.sub_(index))
        else:  # no int-to-float conversion: the fractional part in place
            fractions.append(position.frac_())
        axis_index = index if strides[d] == 1 else index * strides[d]
        flat_base = axis_index if flat_base is None else flat_base.add_(axis_index)
    assert flat_base is not None
    # Corner weights and indices, doubling the list one axis at a time.
    upper = fractions[0] if weights is None else fractions[0] * weights
    lower = (1.0 - fractions[0]) if weights is None else weights - upper
    corners = [(lower, flat_base), (upper, flat_base + strides[0])]
    for d in range(1, len(strides)):
        doubled = []
        for corner_weight, corner_index in corners:
            high = corner_weight * fractions[d]
            doubled.append((corner_weight.sub_(high), corner_index))
            doubled.append((high, corner_index + strides[d]))
        corners = doubled
    for corner_weight, corner_index in corners:
        flat.scatter_add_(0, corner_index, corner_weight)


def _bin_unit_weights_1d(
    values: Tensor, origin: Tensor, spacing: Tensor, size: int, clamp: bool
) -> Tensor:
    """Linear binning of unit weights in 1-D: the count per cell, each point's fraction
    then moved up one node. Work buffers are reused across blocks (fresh large
    allocations cost page faults on every block)."""
    device = values.device
    block = min(_BINNING_BLOCK, values.shape[0])
    position = torch.empty(block, dtype=torch.float64, device=device)
    index = torch.empty(block, dtype=torch.int64, device=device)
    ones = torch.ones(block, dtype=torch.float64, device=device)
    counts = torch.zeros(size, dtype=torch.float64, device=device)
    upper = torch.zeros(size, dtype=torch.float64, device=device)
    scale = 1.0 / float(spacing)
    shift = float(origin) * scale
    for start in range(0, values.shape[0], block):
        chunk = values[start : start + block].to(torch.float64)
        n = chunk.shape[0]
        here, cell = position[:n], index[:n]
        torch.mul(chunk, scale, out=here).sub_(shift)
        if clamp:
            here.clamp_(0.0, size - 1.0)
        cell.copy_(here)  # truncation is the floor: positions are >= 0
        if clamp:
            cell.clamp_(max=size - 2)
            here.sub_(cell)
        else:
            here.frac_()
        upper.scatter_add_(0, cell, here)
        counts.scatter_add_(0, cell, ones[:n])
    counts -= upper
    counts[1:] += upper[:-1]
    return counts


def binning_corrected_variance(covariance: Tensor, spacing: Tensor) -> Tensor:
    """Kernel covariance minus the average variance linear binning adds (spacing**2 / 6
    per axis), or ``covariance`` unchanged when that would leave it less than half
    positive definite (grids too coarse for the correction to be a small one)."""
    corrected = covariance - torch.diag(spacing.square() / 6.0)
    if covariance.shape[0] == 1:
        keeps_half = bool(corrected[0, 0] > 0.5 * covariance[0, 0])
    else:
        smallest = torch.linalg.eigvalsh(corrected).min()
        keeps_half = bool(smallest > 0.5 * torch.linalg.eigvalsh(covariance).min())
    return corrected if keeps_half else covariance


def fft_gaussian_convolution(counts: Tensor, spacing: Tensor, covariance: Tensor, radius: float):
    """``sum_b counts[b] N(node - node_b | 0, covariance)`` at every node, by FFT.

    The kernel is truncated outside the ellipsoid of Mahalanobis radius ``radius``, and
    the arrays are zero-padded to at least ``size + half kernel width`` per axis, so the
    circular convolution of the FFT equals the linear one on every node.

    Parameters
    ----------
    counts : Tensor of shape (M_1, ..., M_D), float64
    spacing : Tensor of shape (D,)
    covariance : Tensor of shape (D, D)
    radius : float

    Returns
    -------
    Tensor of shape (M_1, ..., M_D): values of order 1e-16 of the largest may be
    round-off, and may be slightly negative.
    """
    sizes = list(counts.shape)
    std = torch.sqrt(torch.diagonal(covariance))
    half = [
        min(size - 1, math.ceil(radius * float(s / h)))
        for size, s, h in zip(sizes, std, spacing, strict=True)
    ]
    kernel = _truncated_kernel(covariance, spacing, half, radius)
    padded = [fast_fft_size(size + h + 1) for size, h in zip(sizes, half, strict=True)]
    wrapped = torch.zeros(padded, dtype=torch.float64, device=counts.device)
    wrapped[tuple(slice(0, 2 * h + 1) for h in half)] = kernel
    wrapped = torch.roll(wrapped, shifts=[-h for h in half], dims=list(range(len(sizes))))
    dims = tuple(range(len(sizes)))
    spectrum = torch.fft.rfftn(counts, s=padded, dim=dims) * torch.fft.rfftn(wrapped, dim=dims)
    full = torch.fft.irfftn(spectrum, s=padded, dim=dims)
    return full[tuple(slice(0, size) for size in sizes)]


def _truncated_kernel(covariance: Tensor, spacing: Tensor, half: list[int], radius: float):
    """N(k * spacing | 0, covariance) for |k_d| <= half[d], zero beyond ``radius``."""
    n_features = len(half)
    precision = torch.linalg.inv(covariance)
    offsets = []
    for d, h in enumerate(half):
        steps = torch.arange(-h, h + 1, dtype=torch.float64, device=covariance.device)
        shape = [1] * n_features
        shape[d] = 2 * h + 1
        offsets.append((steps * spacing[d]).reshape(shape))
    quadratic = sum(
        precision[d, e] * offsets[d] * offsets[e]
        for d in range(n_features)
        for e in range(n_features)
    )
    assert isinstance(quadratic, Tensor)
    log_norm = 0.5 * (n_features * math.log(2 * math.pi) + float(torch.logdet(covariance)))
    kernel = torch.exp(-0.5 * quadratic - log_norm)
    return torch.where(quadratic <= radius**2, kernel, 0.0)


def dense_gaussian_convolution(counts: Tensor, spacing: Tensor, variances: Tensor) -> Tensor:
    """``sum_b counts[b] prod_d N(node_d - node_b,d | 0, variances[d])``, axis by axis as
    dense (Toeplitz) matrix products.

    Every term is non-negative, so each node is accurate to a few units of float64
    round-off *relative to its own value*, however small (no FFT noise floor); only
    values below about 1e-308 underflow to zero. Cost: ``prod(M) * sum(M)`` multiply-adds.

    Parameters
    ----------
    counts : Tensor of shape (M_1, ..., M_D), float64
    spacing, variances : Tensor of shape (D,)

    Returns
    -------
    Tensor of shape (M_1, ..., M_D)
    """
    values = counts
    for d, size in enumerate(counts.shape):
        # The kernel at lags -(M-1)..(M-1); its length-M windows form the Hankel matrix
        # S[i, j] = k(i + j - (M-1)), and the (symmetric Toeplitz) convolution matrix is
        # S with its columns reversed: only 2M - 1 exponentials.
        lags = torch.arange(1 - size, size, dtype=torch.float64, device=counts.device)
        variance = float(variances[d])
        kernel = torch.exp(-0.5 * (lags * float(spacing[d])) ** 2 / variance)
        kernel /= math.sqrt(2 * math.pi * variance)
        hankel = kernel.unfold(0, size, 1)
        values = torch.tensordot(values, hankel, dims=([d], [0])).flip(-1).movedim(-1, d)
    return values


def multilinear_interpolation(values: Tensor, grid: RegularGrid, columns: Tensor) -> Tensor:
    """Multilinear interpolation of node ``values`` at query points given as ``columns``
    (D, m), clamped onto the grid's box. Returns shape (m,), float64.

    Node values must be finite (a corner of zero weight contributes 0 times its value).
    """
    flat_values = values.reshape(-1)
    strides = [math.prod(grid.sizes[d + 1 :]) for d in range(len(grid.sizes))]
    flat_base: Tensor | None = None
    fractions = []
    for d, size in enumerate(grid.sizes):
        scale = 1.0 / float(grid.spacing[d])
        position = torch.mul(columns[d].to(torch.float64), scale)
        position.sub_(float(grid.origin[d]) * scale).clamp_(0.0, size - 1.0)
        index = position.long().clamp_(max=size - 2)
        fractions.append(position.sub_(index))
        axis_index = index if strides[d] == 1 else index * strides[d]
        flat_base = axis_index if flat_base is None else flat_base.add_(axis_index)
    assert flat_base is not None
    # value(x) = sum over corners of prod_d (1 - f_d or f_d) * value(corner), one axis at
    # a time: interpolate along the last axis first, pairing corners that differ in it.
    corners = [flat_base]
    for stride in strides:
        corners = [index + offset for index in corners for offset in (0, stride)]
    result = [flat_values[index] for index in corners]
    for d in reversed(range(len(strides))):
        fraction = fractions[d]
        result = [
            torch.lerp(low, high, fraction)
            for low, high in zip(result[::2], result[1::2], strict=True)
        ]
    return result[0]

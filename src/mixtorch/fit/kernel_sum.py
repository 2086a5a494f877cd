"""Exact Gaussian kernel sums with a shared bandwidth, accurate however wide the data are.

With one bandwidth matrix ``H = L L^T`` shared by every kernel, whitening queries and data
by ``L^{-1}`` turns every kernel into ``exp(-||b - a||^2 / 2)``. Expanding
``||b - a||^2 = |b|^2 + |a|^2 - 2 a.b`` makes a block of exponents one matrix product of
augmented rows (``[a, 1, log w - |a|^2/2] . [b, -|b|^2/2, 1]``): one GEMM plus one ``exp``
per pair, with memory bounded by the block size.

**Accuracy guard.** The expansion rounds with the size of the terms it subtracts: the
exponent of a pair is off by about ``u (|a|^2 + |b|^2)`` (``u`` the unit roundoff), which
destroys the result when the data are wide relative to the bandwidth (1-D clusters 1e4
apart with ``h = 0.1`` gave ``+inf`` in float32). So the data are split into *groups* of
whitened radius at most :data:`MAX_GROUP_RADIUS` (recursive median splits along the
widest axis), and each group is expanded about its own centre ``c``, both sides shifted
in the original coordinates before whitening. A pair's exponent is then off by about
``u (|a - c|^2 + |b - c|^2)``; since ``|b - c| <= d + r`` for a pair at whitened distance
``d`` in a group of radius ``r``, and only pairs with small ``d`` carry weight in the sum,
the log-density error is about ``C u (r + d_min)^2`` with ``d_min`` the whitened distance
of the query to its nearest data. Measured in float32 against float64 brute force
(uniform data, D = 1 to 8, radii 9 to 31, queries within about 3 whitened units of the
data): ``C`` between 0.2 and 1.3 with ``d_min`` taken as 4, so near the data float32 is
within about ``1.3 * 6e-8 * 36^2 = 1e-4`` nats and float64 within about ``2e-13``
nats, whatever the spread of the data; far from every point the error is a few ``u``
relative to the log-density. A group that cannot be
made that tight with :data:`MIN_GROUP_ROWS` points is summed by explicit differences
instead: ``(q - x) L^{-T}`` formed from the original coordinates, so the squared
distance is exact to a few ``u`` relative.

Data in one group (the common case: Scott's bandwidth puts Gaussian data within a
whitened radius of about 25 in 2-D) cost nothing extra.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterator
from typing import NamedTuple

import torch
from torch import Tensor

from .._parallel import chunk_workers, map_in_threads
from ..estep._kernel import exp_

__all__ = [
    "MAX_GROUP_RADIUS",
    "MIN_GROUP_ROWS",
    "KernelGroup",
    "build_groups",
    "log_kernel_sum",
]

#: Largest whitened radius of a group expanded by one matrix product (see the module
#: docstring for the error this gives).
MAX_GROUP_RADIUS = 32.0

#: Groups are not split below this many rows; a smaller group still wider than
#: :data:`MAX_GROUP_RADIUS` is summed by explicit differences.
MIN_GROUP_ROWS = 64

#: Elements in one (data rows x queries) block of exponents: 2**18 float64 values are
#: 2 MiB, which stays in the CPU caches across the GEMM, clamp, exp and sum passes.
_BLOCK_ELEMENTS = 2**18

#: Data rows per block; the queries of a block are ``_BLOCK_ELEMENTS`` divided by this.
_DATA_BLOCK = 4096

#: Exponentials below ~-87 (float32) or ~-708 (float64) are subnormal, and subnormal
#: arithmetic is many times slower on CPUs; raising exponents to this floor keeps every
#: term normal. Sums small enough for the raised terms to matter are recomputed exactly
#: (``_underflow_floor``).
_EXPONENT_FLOOR = {torch.float32: -80.0, torch.float64: -700.0}


class KernelGroup(NamedTuple):
    """Data points expanded about one centre.

    Attributes
    ----------
    center : Tensor of shape (D,)
        In the original (unwhitened) coordinates.
    rows : Tensor of shape (n_g, D + 2)
        ``[a, 1, log w - |a|^2 / 2]`` with ``a = (x - center) L^{-T}``; for a difference
        group ``[x, 0, log w]`` (the points themselves).
    by_differences : bool
        Sum this group by explicit differences (it is wider than the guard allows).
    """

    center: Tensor
    rows: Tensor
    by_differences: bool


def build_groups(
    X: Tensor,
    log_weights: Tensor,
    precision_factor: Tensor,
    max_radius: float = MAX_GROUP_RADIUS,
    min_rows: int = MIN_GROUP_ROWS,
) -> list[KernelGroup]:
    """Split the data into groups of whitened radius at most ``max_radius``.

    Parameters
    ----------
    X : Tensor of shape (n, D)
        Data in the original coordinates.
    log_weights : Tensor of shape (n,)
    precision_factor : Tensor of shape (D, D)
        ``L^{-T}`` (upper triangular), so ``(x - c) @ precision_factor`` whitens.
    max_radius : float
    min_rows : int

    Returns
    -------
    list of KernelGroup
    """
    groups: list[KernelGroup] = []
    pending = [torch.arange(X.shape[0], device=X.device)]
    while pending:
        index = pending.pop()
        points = X[index]
        center = _center(points)
        whitened = (points - center) @ precision_factor
        radius = float(whitened.square().sum(1).max().sqrt())
        if radius <= max_radius:
            groups.append(KernelGroup(center, _augment(whitened, log_weights[index]), False))
        elif index.shape[0] < 2 * min_rows:
            zeros = torch.zeros_like(whitened[:, :1])
            rows = torch.cat([points, zeros, log_weights[index, None]], 1)
            groups.append(KernelGroup(center, rows, True))
        else:
            axis = int((whitened.amax(0) - whitened.amin(0)).argmax())
            order = torch.argsort(whitened[:, axis], stable=True)
            half = index.shape[0] // 2
            pending += [index[order[half:]], index[order[:half]]]
    return groups


def _center(points: Tensor) -> Tensor:
    """Mean of the rows, summed about the first row so float32 offsets stay exact."""
    shift = points[0]
    return shift + (points - shift).mean(0)


def _augment(whitened: Tensor, log_weights: Tensor) -> Tensor:
    ones = torch.ones_like(log_weights)
    bias = log_weights - 0.5 * whitened.square().sum(1)
    return torch.cat([whitened, ones[:, None], bias[:, None]], dim=1).contiguous()


class _Scratch(threading.local):
    """One exponent buffer per thread, reused across blocks (fresh buffers of a few MiB
    cost page faults on every block)."""

    def __init__(self) -> None:
        self.buffer: Tensor | None = None

    def take(self, rows: int, cols: int, like: Tensor) -> Tensor:
        buffer = self.buffer
        if buffer is None or buffer.numel() < rows * cols or buffer.dtype != like.dtype:
            buffer = self.buffer = like.new_empty(max(rows * cols, _BLOCK_ELEMENTS))
        return buffer[: rows * cols].view(rows, cols)


_SCRATCH = _Scratch()


def log_kernel_sum(
    queries: Tensor,
    groups: list[KernelGroup],
    precision_factor: Tensor,
    query_rows: int | None = None,
) -> Tensor:
    """``log sum_j w_j exp(-||b_i - a_j||^2 / 2)`` for every query ``q_i``.

    Parameters
    ----------
    queries : Tensor of shape (m, D)
        In the original coordinates.
    groups : list of KernelGroup
        From :func:`build_groups`.
    precision_factor : Tensor of shape (D, D)
        The whitening factor the groups were built with.
    query_rows : int, optional
        Queries per block (memory is about ``query_rows x 4096`` values per thread);
        by default ``2**18 / min(n, 4096)``.

    Returns
    -------
    Tensor of shape (m,)
        ``-inf`` only where every kernel underflows even in log space (never in practice).
    """
    n = sum(group[1].shape[0] for group in groups)
    widest = max(min(group[1].shape[0], _DATA_BLOCK) for group in groups)
    rows = int(query_rows) if query_rows else max(16, _BLOCK_ELEMENTS // widest)
    blocks = [queries[start : start + rows] for start in range(0, queries.shape[0], rows)]
    workers = chunk_workers(queries.device, len(blocks))
    bounds = [_group_bounds(group) for group in groups]

    def one_block(block: Tensor) -> Tensor:
        return _block_log_sum(block, groups, bounds, precision_factor, n)

    results = map_in_threads(one_block, blocks, workers)
    if not results:
        return queries.new_empty(0)
    return torch.cat(results)


def _group_bounds(group: KernelGroup) -> tuple[float, float]:
    """(smallest ``log w - |a|^2 / 2``, largest ``|a|``) of a group: with the queries'
    radius ``r`` they bound every exponent below by ``bias - radius r - r^2 / 2``."""
    _, rows, by_differences = group
    if by_differences:
        return -math.inf, math.inf
    D = rows.shape[1] - 2
    return float(rows[:, D + 1].min()), float(rows[:, :D].square().sum(1).max().sqrt())


def _exponent_blocks(
    queries: Tensor,
    group: KernelGroup,
    precision_factor: Tensor,
    out: bool,
    bounds: tuple[float, float] = (-math.inf, math.inf),
) -> Iterator[tuple[Tensor, float]]:
    """Yield (data rows x queries) blocks of exponents ``log w - ||b - a||^2 / 2``, each
    with a lower bound on its entries (from ``bounds``, see :func:`_group_bounds`)."""
    center, rows, by_differences = group  # a plain tuple after a model file is loaded
    D = queries.shape[1]
    if by_differences:
        # Differences in the original coordinates first: exact for nearby points.
        whitened = (rows[:, None, :D] - queries[None, :, :]) @ precision_factor
        yield whitened.square_().sum(2).mul_(-0.5).add_(rows[:, D + 1 :]), -math.inf
        return
    whitened = (queries - center) @ precision_factor
    norms = whitened.square().sum(1, keepdim=True)
    ones = torch.ones_like(whitened[:, :1])
    augmented = torch.cat([whitened, -0.5 * norms, ones], 1)
    radius = math.sqrt(float(norms.max())) if norms.numel() else 0.0
    lowest = bounds[0] - bounds[1] * radius - 0.5 * radius**2 - 1.0  # 1.0: rounding slack
    for start in range(0, rows.shape[0], _DATA_BLOCK):
        data = rows[start : start + _DATA_BLOCK]
        if out:
            buffer = _SCRATCH.take(data.shape[0], queries.shape[0], queries)
            yield torch.mm(data, augmented.T, out=buffer), lowest
        else:
            yield data @ augmented.T, lowest


def _block_log_sum(
    queries: Tensor,
    groups: list[KernelGroup],
    bounds: list[tuple[float, float]],
    precision_factor: Tensor,
    n: int,
) -> Tensor:
    # The exponents are -d^2/2 + log w <= log w, so the plain sum of exponentials cannot
    # overflow and needs no max-shift; a max pass would cost as much as the exp itself.
    floor = _EXPONENT_FLOOR.get(queries.dtype)
    total = torch.zeros(queries.shape[0], dtype=queries.dtype, device=queries.device)
    for group, bound in zip(groups, bounds, strict=True):
        blocks = _exponent_blocks(queries, group, precision_factor, True, bound)
        for exponents, lowest in blocks:
            if floor is not None and lowest < floor:  # skipped when no entry can be lower
                exponents.clamp_(min=floor)
            # exp2(log2(e) x) on CPU (mixtorch.estep._kernel.exp_): a third of exp's time
            # on the AMD benchmark machine. It rounds relative to the exponent (a few nats
            # where terms matter), not to the expansion's large terms: folding log2(e)
            # into the query rows instead raised the float32 error constant 1.3 -> 1.6.
            total += exp_(exponents).sum(0)
    log_total = total.log()
    # Queries far from every data point underflow; only those pay for a shifted logsumexp.
    far = total < _underflow_floor(queries.dtype, n)
    if bool(far.any()):
        log_total[far] = _shifted_log_sum(queries[far], groups, precision_factor)
    return log_total


def _shifted_log_sum(
    queries: Tensor, groups: list[KernelGroup], precision_factor: Tensor
) -> Tensor:
    result = torch.full((queries.shape[0],), -math.inf, dtype=queries.dtype, device=queries.device)
    for group in groups:
        for exponents, _ in _exponent_blocks(queries, group, precision_factor, out=False):
            result = torch.logaddexp(result, torch.logsumexp(exponents, dim=0))
    return result


def _underflow_floor(dtype: torch.dtype, n_data: int) -> float:
    """A sum below this may be wrong by more than rounding (terms lost to underflow, or
    raised to the exponent floor), so it is recomputed with a shifted logsumexp."""
    floor = _EXPONENT_FLOOR.get(dtype)
    smallest_term = math.exp(floor) if floor is not None else torch.finfo(dtype).tiny
    # Lost or raised terms change the sum by at most n * smallest_term: keep that < eps.
    return n_data * smallest_term / torch.finfo(dtype).eps

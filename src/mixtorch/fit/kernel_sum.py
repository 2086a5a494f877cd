"""Exact Gaussian kernel sums with a shared bandwidth, in blocks of queries x data.

With one bandwidth matrix ``H = L L^T`` shared by every kernel, whitening queries and data
by ``L^{-1}`` once turns every kernel into ``exp(-0.5 ||a - b||^2)``. The squared distance
of a block of queries to a block of data points is then a single matrix product of
augmented rows (``[b, -|b|^2/2, 1] . [a, 1, log w - |a|^2/2]``), so the whole cost is one
GEMM plus one ``exp`` per pair, and memory stays bounded by the block size.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["augment_data", "augment_queries", "log_kernel_sum", "whiten"]

#: Elements in one (queries x data) block: 2**20 float64 values are 8 MiB. Smaller blocks
#: fit the cache better but pay one thread synchronisation per operation per block, which
#: costs far more on a busy machine; 2**18 to 2**20 measured the same on one thread.
DEFAULT_BLOCK_ELEMENTS = 2**20

#: Exponentials below ~-87 (float32) or ~-708 (float64) are subnormal, and subnormal
#: arithmetic is many times slower on CPUs; raising exponents to this floor keeps every
#: term normal. Sums small enough for the raised terms to matter are recomputed exactly
#: (``_underflow_floor``).
_EXPONENT_FLOOR = {torch.float32: -80.0, torch.float64: -700.0}

#: Data points per block; larger data sets are summed block by block.
_DATA_BLOCK = 8192


def whiten(X: Tensor, center: Tensor, precision_factor: Tensor) -> Tensor:
    """Rows ``L^{-1} (x - center)``, where ``precision_factor`` is ``L^{-T}`` (upper).

    Shifting by ``center`` first keeps float32 accurate on data with a large offset.
    """
    return (X - center) @ precision_factor


def augment_data(whitened: Tensor, log_weights: Tensor) -> Tensor:
    """``[a, 1, log w - |a|^2 / 2]``, shape (n, D + 2)."""
    ones = torch.ones_like(log_weights)
    bias = log_weights - 0.5 * whitened.square().sum(1)
    return torch.cat([whitened, ones[:, None], bias[:, None]], dim=1)


def augment_queries(whitened: Tensor) -> Tensor:
    """``[b, -|b|^2 / 2, 1]``, shape (m, D + 2)."""
    ones = torch.ones(whitened.shape[0], 1, dtype=whitened.dtype, device=whitened.device)
    return torch.cat([whitened, -0.5 * whitened.square().sum(1, keepdim=True), ones], dim=1)


def log_kernel_sum(queries: Tensor, data: Tensor, block_elements: int | None = None) -> Tensor:
    """``log sum_j w_j exp(-||b_i - a_j||^2 / 2)`` for every query row ``b_i``.

    Parameters
    ----------
    queries : Tensor of shape (m, D + 2)
        Whitened queries from :func:`augment_queries`.
    data : Tensor of shape (n, D + 2)
        Whitened data with log weights from :func:`augment_data`.
    block_elements : int, optional
        Size of the largest intermediate block; bounds memory.

    Returns
    -------
    Tensor of shape (m,)
        ``-inf`` only where every kernel underflows even in log space (never in practice).
    """
    budget = int(block_elements or DEFAULT_BLOCK_ELEMENTS)
    data_rows = min(data.shape[0], _DATA_BLOCK, budget)
    query_rows = max(1, budget // data_rows)
    out = torch.empty(queries.shape[0], dtype=queries.dtype, device=queries.device)
    for start in range(0, queries.shape[0], query_rows):
        block = queries[start : start + query_rows]
        out[start : start + block.shape[0]] = _block_log_sum(block, data, data_rows)
    return out


def _block_log_sum(queries: Tensor, data: Tensor, data_rows: int) -> Tensor:
    # The exponents are -d^2/2 + log w <= log w, so the plain sum of exponentials cannot
    # overflow and needs no max-shift; a max pass would cost as much as the exp itself.
    floor = _EXPONENT_FLOOR.get(queries.dtype)
    total = torch.zeros(queries.shape[0], dtype=queries.dtype, device=queries.device)
    for start in range(0, data.shape[0], data_rows):
        exponents = queries @ data[start : start + data_rows].T
        if floor is not None:
            exponents.clamp_(min=floor)
        total += exponents.exp_().sum(1)
    log_total = total.log()
    # Queries far from every data point underflow; only those pay for a shifted logsumexp.
    far = total < _underflow_floor(queries.dtype, data.shape[0])
    if bool(far.any()):
        log_total[far] = _shifted_log_sum(queries[far], data, data_rows)
    return log_total


def _shifted_log_sum(queries: Tensor, data: Tensor, data_rows: int) -> Tensor:
    result = torch.full((queries.shape[0],), -math.inf, dtype=queries.dtype, device=queries.device)
    for start in range(0, data.shape[0], data_rows):
        exponents = queries @ data[start : start + data_rows].T
        result = torch.logaddexp(result, torch.logsumexp(exponents, dim=1))
    return result


def _underflow_floor(dtype: torch.dtype, n_data: int) -> float:
    """A sum below this may be wrong by more than rounding (terms lost to underflow, or
    raised to the exponent floor), so it is recomputed with a shifted logsumexp."""
    floor = _EXPONENT_FLOOR.get(dtype)
    smallest_term = math.exp(floor) if floor is not None else torch.finfo(dtype).tiny
    # Lost or raised terms change the sum by at most n * smallest_term: keep that < eps.
    return n_data * smallest_term / torch.finfo(dtype).eps

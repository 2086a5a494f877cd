"""Row chunking: every pass over the data goes through here so memory stays bounded."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

__all__ = ["DEFAULT_ELEMENT_BUDGET", "chunk_rows", "iter_chunks"]

#: Elements allowed in the largest per-chunk intermediate (K * rows * D for full
#: covariances): 2**23 float32 values are 32 MiB, large enough for efficient matrix
#: products and small enough for any machine.
DEFAULT_ELEMENT_BUDGET = 2**23


def chunk_rows(n_components: int, n_features: int, chunk_size: int | None = None) -> int:
    """Rows per chunk: ``chunk_size`` if given, else what fits the element budget."""
    if chunk_size is not None:
        if int(chunk_size) < 1:
            raise ValueError(f"chunk_size must be a positive integer, got {chunk_size!r}.")
        return int(chunk_size)
    per_row = max(1, n_components * max(n_features, 1))
    return max(256, DEFAULT_ELEMENT_BUDGET // per_row)


def iter_chunks(X: Tensor, rows: int) -> Iterator[Tensor]:
    """Consecutive row blocks of ``X`` (views, no copies)."""
    for start in range(0, X.shape[0], rows):
        yield X[start : start + rows]


def map_chunks(fn: Callable[[Tensor], Tensor], X: Tensor, rows: int) -> Tensor:
    """Apply ``fn`` to each row block and concatenate the results along rows."""
    if X.shape[0] <= rows:
        return fn(X)
    return torch.cat([fn(chunk) for chunk in iter_chunks(X, rows)])

"""Row chunks for k-means: chunk sizes, the optional shift by the data mean, row norms.

Distances to the centres come from one matrix product per chunk: ``||c||^2 - 2 y.c`` is
``||y - c||^2 - ||y||^2``, which ranks the centres, and the row norms ``||y||^2`` are
computed once (:func:`prepare`). Data that sit far from the origin compared with their
spread are shifted by their column mean chunk by chunk first, so that float32 does not
cancel. Chunk sums are taken in the data's dtype and added up in float64.

Frequency weights (``sample_weight``) travel with the chunks (:class:`Prepared`): scaled so
the largest is 1, they multiply the rows wherever rows are summed, so weighted and
unweighted k-means share every product.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET
from .._validation import check_sample_weight

__all__ = [
    "SAMPLING_BLOCK",
    "Prepared",
    "RowChunks",
    "checked_weights",
    "kmeans_chunk_rows",
    "nearest_centers",
    "prepare",
]

#: Rows per block when a k-means++ candidate is drawn: a block is picked from the block
#: totals, then a row from that block's cumulative sum, so no (N,) cumulative sum is built.
SAMPLING_BLOCK = 1024


def kmeans_chunk_rows(
    n_clusters: int, n_features: int, budget: int = DEFAULT_ELEMENT_BUDGET // 2
) -> int:
    """Rows per k-means chunk: a (rows, K) score block and a shifted (rows, D) chunk within
    ``budget`` elements (1 MiB of float32 by default).

    Measured on 2 CPU cores (N=200k, K=D=16), the row-wise minimum over the score block
    costs half as much per row at 8192 rows as at 16384 or more, where the blocks leave
    the L2 cache, while fewer rows add per-operation overhead.

    Parameters
    ----------
    n_clusters : int
        Number of centres K.
    n_features : int
        Number of features D.
    budget : int, default=2**18
        Elements allowed for one (rows, K) score block plus one (rows, D) chunk.

    Returns
    -------
    int
        ``budget // (K + D)``, at least 256.

    See Also
    --------
    mixtorch.fit.kmeans.kmeans, nearest_centers

    Examples
    --------
    >>> from mixtorch.fit.kmeans import kmeans_chunk_rows
    >>> kmeans_chunk_rows(16, 16)  # 2**18 elements over K + D = 32 columns
    8192
    >>> kmeans_chunk_rows(1000, 1000)  # never fewer than 256 rows
    256
    """
    return max(256, budget // (max(n_clusters, 1) + max(n_features, 1)))


class RowChunks:
    """Row chunks of ``X``, minus ``shift`` (into a reused buffer) when one is given."""

    def __init__(self, X: Tensor, rows: int, shift: Tensor | None) -> None:
        self.X, self.rows, self.shift = X, max(1, min(int(rows), X.shape[0])), shift
        self._buffer = None if shift is None else torch.empty_like(X[: self.rows])

    def __iter__(self) -> Iterator[tuple[int, Tensor]]:
        """Yield ``(start, y)``; a shifted ``y`` is overwritten by the next chunk."""
        for start in range(0, self.X.shape[0], self.rows):
            chunk = self.X[start : start + self.rows]
            if self.shift is None or self._buffer is None:
                yield start, chunk
            else:
                yield start, torch.sub(chunk, self.shift, out=self._buffer[: chunk.shape[0]])

    def scores_matrix(self, centers: Tensor) -> tuple[Tensor, Tensor]:
        """``-2 c^T`` (D, m) and ``||c||^2`` (m,) of the centres in chunk coordinates."""
        shifted = centers.to(self.X.dtype)
        if self.shift is not None:
            shifted = shifted - self.shift
        return -2.0 * shifted.T, (shifted * shifted).sum(1)

    def original(self, Y: Tensor) -> Tensor:
        return Y if self.shift is None else Y + self.shift


@dataclass
class Prepared:
    chunks: RowChunks
    norms: Tensor  #: ||y_i||^2, padded with zeros to whole sampling blocks
    scatter: float  #: sum_i w_i ||x_i - mean||^2, in float64
    #: row weights (largest 1) in the data's dtype, padded with zeros like ``norms``;
    #: None weighs every row 1
    weights: Tensor | None = None

    @property
    def mass(self) -> float:
        """The summed weight (the number of rows without weights)."""
        if self.weights is None:
            return self.chunks.X.shape[0]
        return float(self.weights.sum(dtype=torch.float64))

    def weighted_sum(self, values: Tensor) -> Tensor:
        """``sum_i w_i values_i`` in float64 (``values`` padded like ``norms``)."""
        if self.weights is None:
            return values.sum(dtype=torch.float64)
        return (values * self.weights).sum(dtype=torch.float64)


def checked_weights(
    sample_weight: Tensor | None, X: Tensor, n_clusters: int
) -> tuple[Tensor | None, float]:
    """``sample_weight`` checked by the shared check (scaled so the largest is 1, in
    ``X``'s dtype) with that scale; at least ``n_clusters`` entries must be positive.
    ``(None, 1.0)`` for None."""
    if sample_weight is None:
        return None, 1.0
    weights = check_sample_weight(sample_weight, X)
    positive = int((weights > 0).sum())
    if positive < n_clusters:
        raise ValueError(
            f"k-means with {n_clusters} clusters needs at least {n_clusters} rows of "
            f"positive sample_weight, got {positive}."
        )
    return weights, float(torch.as_tensor(sample_weight).detach().to(torch.float64).max())


def prepare(X: Tensor, rows: int, weights: Tensor | None = None) -> Prepared:
    """Row norms and total scatter. The data are shifted by their (weighted) mean when it
    lies farther from the origin than their root-mean-square spread about it: then
    ``||c||^2 - 2 y.c`` would lose float32 digits to the offset. ``weights`` (n_samples,)
    are checked ones (:func:`checked_weights`)."""
    n_samples = X.shape[0]
    chunks = RowChunks(X, rows, None)
    norms = X.new_zeros(n_samples + (-n_samples % SAMPLING_BLOCK))
    padded = None if weights is None else torch.zeros_like(norms)
    if padded is not None and weights is not None:
        padded[:n_samples] = weights
    prepared = Prepared(chunks, norms, 0.0, padded)
    total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
    for start, Y in chunks:
        if weights is None:
            total += Y.sum(0, dtype=torch.float64)
        else:
            total += torch.mv(Y.T, weights[start : start + Y.shape[0]]).double()
        torch.linalg.vecdot(Y, Y, out=norms[start : start + Y.shape[0]])
    mass = prepared.mass
    mean = total / (max(n_samples, 1) if weights is None else mass)
    offset = float(mean @ mean) * mass
    squares = float(prepared.weighted_sum(norms))
    if offset <= squares - offset:
        prepared.scatter = max(squares - offset, 0.0)
        return prepared
    shift = mean.to(X.dtype)
    prepared.chunks = chunks = RowChunks(X, rows, shift)
    for start, Y in chunks:
        torch.linalg.vecdot(Y, Y, out=norms[start : start + Y.shape[0]])
    residual = mean - shift.to(torch.float64)
    squares = float(prepared.weighted_sum(norms))
    prepared.scatter = max(squares - float(residual @ residual) * mass, 0.0)
    return prepared


def nearest_centers(X: Tensor, centers: Tensor, rows: int | None = None) -> Tensor:
    """Index of the nearest centre (squared Euclidean distance) for every row of ``X``.

    The rows are shifted by the mean of the centres first, so that float32 data far from
    the origin do not lose the distances to rounding.

    Parameters
    ----------
    X : Tensor of shape (N, D)
        The rows to assign.
    centers : Tensor of shape (K, D)
        The centres.
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.

    Returns
    -------
    Tensor of shape (N,)
        The centre index of each row (int64).

    See Also
    --------
    mixtorch.fit.kmeans.lloyd : Alternates this with updates of the centres.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.kmeans import nearest_centers
    >>> centers = torch.tensor([[10.0, 10.0], [0.0, 0.0]])
    >>> nearest_centers(torch.tensor([[0.2, 0.1], [9.0, 11.0], [6.0, 6.0]]), centers)
    tensor([1, 0, 0])
    """
    shift = centers.to(X.dtype).mean(0)
    chunks = RowChunks(X, rows or kmeans_chunk_rows(*centers.shape), shift)
    weights, squared = chunks.scores_matrix(centers)
    labels = torch.empty(X.shape[0], dtype=torch.long, device=X.device)
    for start, Y in chunks:
        scores = torch.addmm(squared, Y, weights)
        torch.argmin(scores, 1, out=labels[start : start + Y.shape[0]])
    return labels

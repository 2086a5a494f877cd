"""k-means++ seeding (greedy, with local trials) over prepared row chunks, of weighted
rows too: draws in proportion to ``w_i D(x_i)^2``, potentials ``sum_i w_i D(x_i)^2``."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET
from ._kmeans_chunks import (
    SAMPLING_BLOCK,
    Prepared,
    RowChunks,
    checked_weights,
    kmeans_chunk_rows,
    prepare,
)

__all__ = ["kmeans_plusplus", "seed"]


def kmeans_plusplus(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator,
    rows: int | None = None,
    n_local_trials: int | None = None,
    sample_weight: Tensor | None = None,
) -> tuple[Tensor, Tensor]:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, with local trials).

    Each new centre is the best, by resulting potential, of ``n_local_trials`` (default
    ``2 + int(log K)``, as scikit-learn) rows drawn with probability proportional to their
    squared distance to the closest centre so far. With ``sample_weight`` (as
    scikit-learn's ``kmeans_plusplus`` takes it) the first centre is drawn in proportion
    to ``w_i``, the candidates in proportion to ``w_i D(x_i)^2``, and the potential is
    ``sum_i w_i D(x_i)^2``; rows of weight 0 are never drawn. Equal weights draw exactly
    the rows that no weights draw (the same calls on ``generator``).

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data.
    n_clusters : int
        Number of centres K (at most ``n_samples``).
    generator : torch.Generator
        Draws the first centre and the candidates (on ``X``'s device).
    rows : int, optional
        Rows per chunk; :func:`kmeans_chunk_rows` by default.
    n_local_trials : int, optional
        Candidates tried per centre; ``2 + int(log K)`` by default.
    sample_weight : Tensor of shape (n_samples,), optional
        Non-negative frequency weights, at least ``n_clusters`` of them positive; None
        weighs every row 1.

    Returns
    -------
    centers : Tensor of shape (n_clusters, n_features)
        Rows of ``X``.
    indices : Tensor of shape (n_clusters,)
        The rows the centres were taken from.

    Raises
    ------
    ValueError
        If ``sample_weight`` is invalid or has fewer than ``n_clusters`` positive entries.

    See Also
    --------
    mixtorch.fit.kmeans.kmeans : Lloyd's iterations from these seeds.
    sklearn.cluster.kmeans_plusplus : scikit-learn's counterpart.

    References
    ----------
    .. [1] D. Arthur and S. Vassilvitskii (2007), "k-means++: the advantages of careful
       seeding", *SODA*.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.kmeans import kmeans_plusplus
    >>> X = torch.tensor([[0.0, 0.0], [0.1, 0.0], [9.0, 9.0], [9.0, 9.1]])
    >>> centers, indices = kmeans_plusplus(X, 2, torch.Generator().manual_seed(0))
    >>> torch.equal(centers, X[indices])
    True
    >>> sorted(int(i) // 2 for i in indices)  # one seed in each far-apart pair
    [0, 1]

    Rows of weight 0 are never seeds:

    >>> weights = torch.tensor([1.0, 0.0, 0.0, 2.0])
    >>> _, indices = kmeans_plusplus(X, 2, torch.Generator().manual_seed(0), sample_weight=weights)
    >>> sorted(indices.tolist())
    [0, 3]
    """
    weights = checked_weights(sample_weight, X, n_clusters)[0]
    prepared = prepare(X, rows or kmeans_chunk_rows(n_clusters, X.shape[1]), weights)
    return seed(prepared, n_clusters, generator, n_local_trials)


def seed(
    prepared: Prepared, n_clusters: int, generator: torch.Generator, n_local_trials: int | None
) -> tuple[Tensor, Tensor]:
    """k-means++ on prepared chunks.

    ``gap`` holds ``closest - ||y||^2`` (closest: squared distance to the nearest chosen
    centre), so a candidate only needs one product and one minimum per chunk.
    """
    X, norms, weights = prepared.chunks.X, prepared.norms, prepared.weights
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    # (trials, rows) scores: longer chunks than Lloyd's (rows, K) ones fit the same budget
    rows = max(prepared.chunks.rows, DEFAULT_ELEMENT_BUDGET // (trials + X.shape[1]))
    chunks = RowChunks(X, rows, prepared.chunks.shift)
    # with weights the masses are w (gap + norms): the weights go with gap and norms
    masses = norms if weights is None else norms * weights
    mass_blocks = masses.view(-1, SAMPLING_BLOCK).sum(1, dtype=torch.float64)
    by_weight = None
    if weights is not None:
        by_weight = (weights, weights.view(-1, SAMPLING_BLOCK).sum(1, dtype=torch.float64))
    if by_weight is None or bool((by_weight[0][: X.shape[0]] == 1).all()):
        first = torch.randint(X.shape[0], (1,), generator=generator, device=generator.device)
    else:
        first = _draw_rows(torch.zeros_like(norms[: X.shape[0]]), *by_weight, 1, generator)
    indices = [first.to(X.device)]
    gap = norms.new_full((1, X.shape[0]), math.inf)
    gap = _candidate_gaps(chunks, X[indices[0]], gap)
    for _ in range(1, n_clusters):
        candidates = _draw_rows(gap[0], masses, mass_blocks, trials, generator, by_weight)
        gaps = _candidate_gaps(chunks, X[candidates], gap)
        # float32 sums (cascaded, accurate to ~1e-7): a float64 one would copy all gaps
        potentials = gaps if weights is None else gaps * weights[: X.shape[0]]
        best = torch.argmin(potentials.sum(1))
        indices.append(candidates[best, None])
        gap = gaps[best, None]
    index_tensor = torch.cat(indices)
    return X[index_tensor].clone(), index_tensor


def _candidate_gaps(chunks: RowChunks, candidates: Tensor, gap: Tensor) -> Tensor:
    """min(``gap``, ||c||^2 - 2 y.c) for each candidate, shape (m, N)."""
    weights, squared = chunks.scores_matrix(candidates)
    weights, squared = weights.T.contiguous(), squared[:, None]
    result = gap.new_empty(candidates.shape[0], chunks.X.shape[0])
    for start, Y in chunks:
        stop = start + Y.shape[0]
        scores = torch.addmm(squared, weights, Y.T)
        torch.minimum(scores, gap[:, start:stop], out=result[:, start:stop])
    return result


def _draw_rows(
    gap: Tensor,
    masses: Tensor,
    mass_blocks: Tensor,
    count: int,
    generator: torch.Generator,
    by_weight: tuple[Tensor, Tensor] | None = None,
) -> Tensor:
    """``count`` rows drawn with probability proportional to ``w (gap + norms)`` (clamped
    at 0; ``w`` = 1 when ``by_weight`` is None).

    ``masses`` holds ``w norms``, padded with zeros to whole blocks; ``mass_blocks`` are
    its block sums. ``by_weight`` holds the padded weights and their block sums: then
    rows of weight 0 are never drawn (a target that rounding puts past the mass of its
    block or of all blocks lands on the last row with mass), and when no row has mass
    left (all duplicates of the centres) the draw is in proportion to ``w`` alone.
    """
    n, block = gap.shape[0], SAMPLING_BLOCK
    padded = torch.nn.functional.pad(gap, (0, masses.shape[0] - n))
    padded = (padded if by_weight is None else padded * by_weight[0]).view(-1, block)
    block_totals = (padded.sum(1, dtype=torch.float64) + mass_blocks).clamp_min_(0.0)
    cumulative = block_totals.cumsum_(0)
    if by_weight is not None and not float(cumulative[-1]) > 0:
        return _draw_rows(torch.zeros_like(gap), *by_weight, count, generator)
    draws = torch.rand(count, dtype=torch.float64, generator=generator, device=generator.device)
    targets = draws.to(gap.device) * cumulative[-1]
    blocks = torch.searchsorted(cumulative, targets, right=True).clamp_(max=padded.shape[0] - 1)
    if by_weight is not None:
        blocks = torch.minimum(blocks, _last_with_mass(cumulative[None])[0])
    weights = (padded[blocks] + masses.view(-1, block)[blocks]).clamp_min_(0.0)
    inner = weights.cumsum(1, dtype=torch.float64)
    inner_targets = targets - (cumulative[blocks] - inner[:, -1])
    if by_weight is not None:
        inner_targets.clamp_min_(0.0)
    offsets = torch.searchsorted(inner, inner_targets[:, None], right=True)[:, 0]
    if by_weight is not None:
        offsets = torch.minimum(offsets, _last_with_mass(inner))
    return (blocks * block + offsets.clamp_(max=block - 1)).clamp_(max=n - 1)


def _last_with_mass(cumulative: Tensor) -> Tensor:
    """Per row of cumulative sums (m, L), the index of the last entry that adds mass."""
    return torch.searchsorted(cumulative, cumulative[:, -1:].contiguous(), right=False)[:, 0]

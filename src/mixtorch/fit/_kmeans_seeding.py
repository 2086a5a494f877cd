"""k-means++ seeding (greedy, with local trials) over prepared row chunks."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET
from ._kmeans_chunks import SAMPLING_BLOCK, Prepared, RowChunks, kmeans_chunk_rows, prepare

__all__ = ["kmeans_plusplus", "seed"]


def kmeans_plusplus(
    X: Tensor,
    n_clusters: int,
    generator: torch.Generator,
    rows: int | None = None,
    n_local_trials: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Greedy k-means++ seeding (Arthur & Vassilvitskii, with local trials).

    Each new centre is the best, by resulting potential, of ``n_local_trials`` (default
    ``2 + int(log K)``, as scikit-learn) rows drawn with probability proportional to their
    squared distance to the closest centre so far.

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

    Returns
    -------
    centers : Tensor of shape (n_clusters, n_features)
        Rows of ``X``.
    indices : Tensor of shape (n_clusters,)
        The rows the centres were taken from.

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
    """
    prepared = prepare(X, rows or kmeans_chunk_rows(n_clusters, X.shape[1]))
    return seed(prepared, n_clusters, generator, n_local_trials)


def seed(
    prepared: Prepared, n_clusters: int, generator: torch.Generator, n_local_trials: int | None
) -> tuple[Tensor, Tensor]:
    """k-means++ on prepared chunks.

    ``gap`` holds ``closest - ||y||^2`` (closest: squared distance to the nearest chosen
    centre), so a candidate only needs one product and one minimum per chunk.
    """
    X, norms = prepared.chunks.X, prepared.norms
    trials = n_local_trials or 2 + int(math.log(n_clusters))
    # (trials, rows) scores: longer chunks than Lloyd's (rows, K) ones fit the same budget
    rows = max(prepared.chunks.rows, DEFAULT_ELEMENT_BUDGET // (trials + X.shape[1]))
    chunks = RowChunks(X, rows, prepared.chunks.shift)
    first = torch.randint(X.shape[0], (1,), generator=generator, device=generator.device)
    indices = [first.to(X.device)]
    gap = norms.new_full((1, X.shape[0]), math.inf)
    gap = _candidate_gaps(chunks, X[indices[0]], gap)
    norm_blocks = norms.view(-1, SAMPLING_BLOCK).sum(1, dtype=torch.float64)
    for _ in range(1, n_clusters):
        candidates = _draw_rows(gap[0], norms, norm_blocks, trials, generator)
        gaps = _candidate_gaps(chunks, X[candidates], gap)
        # float32 sums (cascaded, accurate to ~1e-7): a float64 one would copy all gaps
        best = torch.argmin(gaps.sum(1))
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
    gap: Tensor, norms: Tensor, norm_blocks: Tensor, count: int, generator: torch.Generator
) -> Tensor:
    """``count`` rows drawn with probability proportional to ``gap + norms`` (clamped at 0).

    ``norms`` is padded with zeros to whole blocks; ``norm_blocks`` are its block sums.
    """
    n, block = gap.shape[0], SAMPLING_BLOCK
    padded = torch.nn.functional.pad(gap, (0, norms.shape[0] - n)).view(-1, block)
    block_totals = (padded.sum(1, dtype=torch.float64) + norm_blocks).clamp_min_(0.0)
    cumulative = block_totals.cumsum_(0)
    draws = torch.rand(count, dtype=torch.float64, generator=generator, device=generator.device)
    targets = draws.to(gap.device) * cumulative[-1]
    blocks = torch.searchsorted(cumulative, targets, right=True).clamp_(max=padded.shape[0] - 1)
    weights = (padded[blocks] + norms.view(-1, block)[blocks]).clamp_min_(0.0)
    inner = weights.cumsum(1, dtype=torch.float64)
    inner_targets = targets - (cumulative[blocks] - inner[:, -1])
    offsets = torch.searchsorted(inner, inner_targets[:, None], right=True)[:, 0]
    return (blocks * block + offsets.clamp_(max=block - 1)).clamp_(max=n - 1)

"""A uniform reservoir sample of a chunk stream, merged across ``torch.distributed``
ranks (the first pass of :mod:`mixtorch.fit.streaming`'s initialisation)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from torch import Tensor

from ..distributed import all_reduce_sum, gather_rows, rank

__all__ = ["reservoir_sample"]


def reservoir_sample(
    chunks: Callable[[], Iterator[Tensor]],
    size: int,
    generator: torch.Generator,
    n_features: int | None = None,
) -> tuple[Tensor, int]:
    """A uniform sample without replacement of at most ``size`` rows, in one pass.

    Every row gets a uniform random key and the ``size`` largest keys are kept, chunk by
    chunk (memory ~ ``size + chunk``). Across ranks the kept rows are gathered and the
    largest keys overall win, so the sample is uniform over the union of the shards and
    identical on every rank. Also returns the total number of rows (all ranks).
    A rank whose chunks hold no rows contributes none (``n_features`` sizes its empty
    sample when it yields no chunk at all).

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (n_i, D); called once.
    size : int
        Most rows in the sample (``init_sample_size``).
    generator : torch.Generator
        Seeds the keys (the same seed on every rank; each rank offsets it by its rank).
    n_features : int, optional
        Width of an empty sample, for a rank whose source yields no chunk.

    Returns
    -------
    sample : Tensor of shape (min(size, n_total), D)
        The kept rows, the same on every rank, in decreasing key order.
    n_total : int
        Rows seen over all ranks.

    Raises
    ------
    ValueError
        If ``size`` is below 1, or the source yields no chunk and ``n_features`` is None.

    See Also
    --------
    stream_start_mixture : Runs k-means on the sample.

    References
    ----------
    .. [1] J. S. Vitter (1985), "Random sampling with a reservoir", *ACM Transactions on
       Mathematical Software* 11(1).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.streaming import reservoir_sample
    >>> X = torch.arange(20.0).reshape(10, 2)
    >>> generator = torch.Generator().manual_seed(0)
    >>> sample, n_total = reservoir_sample(lambda: [X[:6], X[6:]], 4, generator)
    >>> sample.shape, n_total
    (torch.Size([4, 2]), 10)
    >>> sample[:, 0].unique().numel(), bool(torch.isin(sample, X).all())  # distinct rows of X
    (4, True)
    """
    if size < 1:
        raise ValueError(f"init_sample_size must be a positive integer, got {size!r}.")
    key_generator = torch.Generator(device=generator.device)
    base = int(torch.randint(2**62, (1,), generator=generator, device=generator.device))
    key_generator.manual_seed(base + rank())  # ranks draw different keys
    kept_rows: Tensor | None = None
    kept_keys = torch.empty(0, dtype=torch.float64, device=generator.device)
    n_seen = 0
    stream = iter(chunks())
    while (chunk := next(stream, None)) is not None:  # each chunk dropped before the next
        n_seen += chunk.shape[0]
        keys = torch.rand(
            chunk.shape[0], generator=key_generator, device=generator.device, dtype=torch.float64
        )
        rows = chunk if kept_rows is None else torch.cat([kept_rows, chunk])
        kept_keys = torch.cat([kept_keys, keys])
        if kept_keys.shape[0] > size:
            top = torch.topk(kept_keys, size).indices
            rows, kept_keys = rows[top.to(rows.device)], kept_keys[top]
        kept_rows = rows.clone() if rows is chunk else rows
        del chunk, rows, keys
    if kept_rows is None:
        if n_features is None:
            raise ValueError("The data source yielded no chunks.")
        kept_rows = torch.empty(0, n_features, device=generator.device)
    all_keys = torch.cat(gather_rows(kept_keys))
    all_rows = torch.cat(gather_rows(kept_rows))
    order = torch.argsort(all_keys, descending=True)[:size]
    total = all_reduce_sum(torch.tensor(float(n_seen), dtype=torch.float64))
    return all_rows[order.to(all_rows.device)], int(total)

"""Every collective of mixtorch: small helpers over ``torch.distributed`` (gloo on CPU,
NCCL on GPU).

No other module calls ``torch.distributed``; fitting code calls these helpers
unconditionally, and each is a no-op (or the single-process answer) when no process
group is initialised. Launch with ``torchrun`` (see ``docs/distributed.md``): each rank
passes its own shard to ``fit`` and every rank ends with the same model, fitted to the
union of the shards.

Sums are only meaningful when every rank contributes the same quantity: moments must be
taken about the same point on every rank (see :mod:`mixtorch.stats`), and every rank must
call the same collectives in the same order, so every decision that leads to a collective
is taken from values that are already identical on every rank.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "all_reduce_sum",
    "all_reduce_tensors",
    "check_same_on_every_rank",
    "check_same_configuration",
    "gather_rows",
    "is_distributed",
    "raise_on_every_rank",
    "rank",
    "synchronised_generator",
    "world_size",
]


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised.

    Returns
    -------
    bool
        Whether the collectives below communicate (else they are no-ops).

    See Also
    --------
    rank, world_size
    torch.distributed.is_initialized : What it asks torch.

    Examples
    --------
    >>> from mixtorch.distributed import is_distributed, rank, world_size
    >>> is_distributed(), rank(), world_size()  # a single process
    (False, 0, 1)
    """
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed).

    Returns
    -------
    int
        ``torch.distributed.get_rank()``, or 0.

    See Also
    --------
    world_size, is_distributed

    Examples
    --------
    >>> from mixtorch.distributed import rank
    >>> rank()  # a single process
    0
    """
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed).

    Returns
    -------
    int
        ``torch.distributed.get_world_size()``, or 1.

    See Also
    --------
    rank, is_distributed

    Examples
    --------
    >>> from mixtorch.distributed import world_size
    >>> world_size()  # a single process
    1
    """
    return dist.get_world_size() if is_distributed() else 1


def _collective_device(tensor: Tensor) -> torch.device:
    """NCCL needs CUDA tensors; gloo takes CPU ones."""
    return (
        torch.device("cuda", torch.cuda.current_device())
        if (dist.get_backend() == "nccl")
        else torch.device("cpu")
    )


def all_reduce_sum(tensor: Tensor, group: Any = None) -> Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a new tensor, same device).

    Parameters
    ----------
    tensor : Tensor
        This rank's contribution; every rank passes the same shape and dtype.
    group : torch.distributed.ProcessGroup, default=None
        The group to sum over; None is the default group.

    Returns
    -------
    Tensor
        The sum, on ``tensor``'s device; ``tensor`` itself when not distributed.

    See Also
    --------
    all_reduce_tensors : Several tensors in one collective.
    torch.distributed.all_reduce : The collective it calls (through gloo or NCCL).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.distributed import all_reduce_sum
    >>> all_reduce_sum(torch.tensor([1.0, 2.0]))  # one process: unchanged
    tensor([1., 2.])
    """
    if not is_distributed():
        return tensor
    buffer = tensor.detach().to(_collective_device(tensor)).clone()
    dist.all_reduce(buffer, group=group)
    return buffer.to(tensor.device)


def all_reduce_tensors(tensors: Sequence[Tensor], group: Any = None) -> list[Tensor]:
    """Element-wise sums over all ranks of several tensors, in one collective.

    The tensors are flattened into one float64 buffer (so every rank must pass the same
    shapes), summed, and returned with their own shapes, dtypes and devices.

    Parameters
    ----------
    tensors : sequence of Tensor
        This rank's contributions.
    group : torch.distributed.ProcessGroup, default=None
        The group to sum over; None is the default group.

    Returns
    -------
    list of Tensor
        The sums, one per input, with its shape, dtype and device.

    See Also
    --------
    all_reduce_sum, mixtorch.stats.SufficientStatistics.all_reduce

    Examples
    --------
    >>> import torch
    >>> from mixtorch.distributed import all_reduce_tensors
    >>> [tuple(t.shape) for t in all_reduce_tensors([torch.zeros(2, 3), torch.ones(4)])]
    [(2, 3), (4,)]
    """
    if not is_distributed():
        return list(tensors)
    flat = torch.cat([tensor.detach().reshape(-1).to(torch.float64) for tensor in tensors])
    pieces = all_reduce_sum(flat, group).split([tensor.numel() for tensor in tensors])
    return [
        piece.reshape(tensor.shape).to(tensor.dtype)
        for piece, tensor in zip(pieces, tensors, strict=True)
    ]


def check_same_on_every_rank(value: float, message: str) -> None:
    """Raise ``ValueError(message)`` on every rank unless ``value`` agrees across ranks.

    One collective (the sum of ``value``, ``value**2`` and 1), so every rank reaches the
    same decision before any later collective.

    Parameters
    ----------
    value : float
        The quantity that must be identical on every rank: an integer such as a feature
        count, whose sums are exact (equal non-integers can round apart in the sums on
        three ranks or more; compare those with :func:`check_same_configuration`).
    message : str
        The error message, raised on every rank.

    Raises
    ------
    ValueError
        With ``message``, on every rank, when the values differ.

    See Also
    --------
    check_same_configuration : Several named settings at once.

    Examples
    --------
    >>> from mixtorch.distributed import check_same_on_every_rank
    >>> check_same_on_every_rank(3.0, "ranks disagree")  # one process: nothing to compare
    """
    if not is_distributed():
        return
    totals = all_reduce_sum(torch.tensor([value, value * value, 1.0], dtype=torch.float64))
    total, squares, count = (float(x) for x in totals)
    if squares * count != total * total:  # zero variance across ranks
        raise ValueError(message)


def raise_on_every_rank(error: Exception | None) -> None:
    """Raise on every rank if any rank met an error (one collective); else return.

    A rank that cannot use its shard (bad values, too few rows) must not leave the others
    waiting in the next collective: after this call the failing ranks raise their own
    ``error`` and the others a ValueError naming how many ranks failed.

    Parameters
    ----------
    error : Exception or None
        This rank's error, or None when its part succeeded.

    Raises
    ------
    Exception
        ``error`` on the ranks that met one; ValueError on the others.

    See Also
    --------
    check_same_on_every_rank

    Examples
    --------
    >>> from mixtorch.distributed import raise_on_every_rank
    >>> raise_on_every_rank(None)  # no rank failed
    >>> try:
    ...     raise_on_every_rank(ValueError("shard 0 has NaN"))
    ... except ValueError as error:
    ...     print(error)
    ...
    shard 0 has NaN
    """
    if not is_distributed():
        if error is not None:
            raise error
        return
    failed = all_reduce_sum(torch.tensor(0.0 if error is None else 1.0, dtype=torch.float64))
    if error is not None:
        raise error
    if float(failed) > 0:
        raise ValueError(
            f"{int(failed)} other rank(s) could not use their data (see the error raised "
            "there); no rank fits."
        )


def synchronised_generator(generator: torch.Generator, device: Any) -> torch.Generator:
    """A generator on ``device`` seeded identically on every rank (rank 0's draw).

    Collective random choices (k-means++ seeds, random restarts) must agree across ranks
    even when ``random_state`` is None, so the seed is drawn on rank 0 and broadcast.
    Without a process group the draw comes from ``generator`` all the same, so a fixed
    ``random_state`` gives the same stream in both settings.

    Parameters
    ----------
    generator : torch.Generator
        This rank's generator; one draw is taken from it (on every rank).
    device : str or torch.device
        Device of the returned generator.

    Returns
    -------
    torch.Generator
        Seeded with rank 0's draw.

    See Also
    --------
    torch.distributed.broadcast : The collective it calls.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.distributed import synchronised_generator
    >>> a = synchronised_generator(torch.Generator().manual_seed(0), "cpu")
    >>> b = synchronised_generator(torch.Generator().manual_seed(0), "cpu")
    >>> torch.equal(torch.rand(3, generator=a), torch.rand(3, generator=b))
    True
    """
    seed = torch.randint(
        2**62, (1,), generator=generator, device=generator.device, dtype=torch.int64
    )
    if is_distributed():
        buffer = seed.to(_collective_device(seed))
        dist.broadcast(buffer, src=0)
        seed = buffer.cpu()
    synced = torch.Generator(device=torch.device(device))
    synced.manual_seed(int(seed))
    return synced


def gather_rows(rows: Tensor) -> list[Tensor]:
    """Every rank's ``rows``, in rank order.

    Parameters
    ----------
    rows : Tensor of shape (n_r, ...)
        This rank's rows; ``n_r`` may differ between ranks, the other axes may not.

    Returns
    -------
    list of Tensor
        One tensor per rank (world_size of them), on ``rows``' device.

    See Also
    --------
    torch.distributed.all_gather : The collective it calls (twice: sizes, then rows).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.distributed import gather_rows
    >>> [tuple(block.shape) for block in gather_rows(torch.zeros(5, 2))]
    [(5, 2)]
    """
    if not is_distributed():
        return [rows]
    device = _collective_device(rows)
    local = rows.detach().to(device)
    sizes = [torch.zeros(1, dtype=torch.int64, device=device) for _ in range(world_size())]
    dist.all_gather(sizes, torch.tensor([local.shape[0]], dtype=torch.int64, device=device))
    largest = max(int(size) for size in sizes)
    padded = torch.zeros((largest, *local.shape[1:]), dtype=local.dtype, device=device)
    padded[: local.shape[0]] = local
    gathered = [torch.empty_like(padded) for _ in sizes]
    dist.all_gather(gathered, padded)
    return [block[: int(size)].to(rows.device) for block, size in zip(gathered, sizes, strict=True)]


# -- configuration agreement (before any collective that depends on it) -----------------
def check_same_configuration(configuration: dict[str, Any]) -> None:
    """Raise the same ValueError on every rank unless all ranks pass equal settings.

    Collectives whose payload depends on the settings (dtype, number of components,
    covariance type, number of features) abort or hang when ranks disagree, so fitters
    compare them first, in one small exchange of each rank's settings as JSON.
    Single-process: nothing to compare.

    Parameters
    ----------
    configuration : dict
        JSON-able settings, e.g. ``{"n_features": 3, "dtype": "torch.float32"}``.

    Raises
    ------
    ValueError
        Naming every differing setting and its value on each rank.

    See Also
    --------
    check_same_on_every_rank

    Examples
    --------
    >>> from mixtorch.distributed import check_same_configuration
    >>> check_same_configuration({"n_components": 3, "covariance_type": "full"})
    """
    if not is_distributed():
        return
    text = json.dumps(configuration, sort_keys=True, default=str)
    codes = torch.tensor(list(text.encode("utf-8")), dtype=torch.int64)
    settings = [json.loads(bytes(block.tolist()).decode("utf-8")) for block in gather_rows(codes)]
    differing = sorted(
        {key for setting in settings for key in setting if setting.get(key) != settings[0].get(key)}
    )
    if differing:
        per_rank = "; ".join(
            f"rank {index}: " + ", ".join(f"{key}={setting.get(key)!r}" for key in differing)
            for index, setting in enumerate(settings)
        )
        raise ValueError(
            f"Every rank must fit with the same {', '.join(differing)}, but they differ "
            f"({per_rank}). Pass the same parameters and data layout on every rank."
        )

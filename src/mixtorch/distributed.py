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

from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor

__all__ = [
    "all_reduce_sum",
    "all_reduce_tensors",
    "check_same_on_every_rank",
    "gather_rows",
    "is_distributed",
    "raise_on_every_rank",
    "rank",
    "synchronised_generator",
    "world_size",
]


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised."""
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    return dist.get_world_size() if is_distributed() else 1


def _collective_device(tensor: Tensor) -> torch.device:
    """NCCL needs CUDA tensors; gloo takes CPU ones."""
    return (
        torch.device("cuda", torch.cuda.current_device())
        if (dist.get_backend() == "nccl")
        else torch.device("cpu")
    )


def all_reduce_sum(tensor: Tensor, group: Any = None) -> Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a new tensor, same device)."""
    if not is_distributed():
        return tensor
    buffer = tensor.detach().to(_collective_device(tensor)).clone()
    dist.all_reduce(buffer, group=group)
    return buffer.to(tensor.device)


def all_reduce_tensors(tensors: Sequence[Tensor], group: Any = None) -> list[Tensor]:
    """Element-wise sums over all ranks of several tensors, in one collective.

    The tensors are flattened into one float64 buffer (so every rank must pass the same
    shapes), summed, and returned with their own shapes, dtypes and devices.
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
    """Every rank's ``rows`` (shape (n_r, ...), n_r may differ), in rank order."""
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

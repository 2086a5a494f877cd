"""Small helpers over ``torch.distributed`` (gloo on CPU, NCCL on GPU).

Every helper is a no-op (or the single-process answer) when no process group is
initialised, so the fitting code calls them unconditionally. Launch with ``torchrun``
(see ``docs/distributed.md``): each rank passes its own shard to ``fit`` and every rank
ends with the same model, fitted to the union of the shards.
"""

from __future__ import annotations

import json
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "all_reduce_sum",
    "check_same_configuration",
    "gather_rows",
    "is_distributed",
    "rank",
    "synchronised_generator",
    "world_size",
]


def is_distributed() -> bool:
    """True when ``torch.distributed`` is available and a process group is initialised."""
    import torch.distributed as dist

    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    """This process's rank (0 when not distributed)."""
    import torch.distributed as dist

    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Number of processes in the default group (1 when not distributed)."""
    import torch.distributed as dist

    return dist.get_world_size() if is_distributed() else 1


def _collective_device(tensor: Tensor) -> torch.device:
    """NCCL needs CUDA tensors; gloo takes CPU ones."""
    import torch.distributed as dist

    return (
        torch.device("cuda", torch.cuda.current_device())
        if (dist.get_backend() == "nccl")
        else torch.device("cpu")
    )


def all_reduce_sum(tensor: Tensor, group: Any = None) -> Tensor:
    """The element-wise sum of ``tensor`` over all ranks (a new tensor, same device)."""
    if not is_distributed():
        return tensor
    import torch.distributed as dist

    buffer = tensor.detach().to(_collective_device(tensor)).clone()
    dist.all_reduce(buffer, group=group)
    return buffer.to(tensor.device)


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
        import torch.distributed as dist

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
    import torch.distributed as dist

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

"""``device`` checked: a ``torch.device`` that exists on this machine, or a ``ValueError``
naming the devices that do. Re-exported by :mod:`mixtorch._validation`."""

from __future__ import annotations

from typing import Any

import torch


def check_device(device: Any) -> torch.device | None:
    """``device`` as a ``torch.device`` that exists on this machine (None stays None).

    Raises a ``ValueError`` naming ``device`` and the devices available for unknown
    names, CUDA without CUDA, device indices out of range and the data-less ``meta``
    device; a ``TypeError`` for values that are not a string, int or ``torch.device``.
    """
    if device is None:
        return None
    if isinstance(device, bool) or not isinstance(device, (str, int, torch.device)):
        raise TypeError(
            f"device must be a string such as 'cpu' or 'cuda:0', or a torch.device, "
            f"got {type(device).__name__}."
        )
    available = _available_devices()
    try:
        resolved = torch.device(device)
    except (RuntimeError, ValueError):
        resolved = None
    if resolved is None or not _device_exists(resolved):
        raise ValueError(
            f"device={device!r} is not available on this machine; available: "
            f"{', '.join(available)} (or None for the input's device)."
        )
    return resolved


def _available_devices() -> list[str]:
    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        names.append("mps")
    return names


def _device_exists(device: torch.device) -> bool:
    if device.type == "cpu":
        return True
    if device.type == "cuda":
        if not torch.cuda.is_available():
            return False
        return device.index is None or device.index < torch.cuda.device_count()
    if device.type == "meta":
        return False
    try:
        torch.empty(0, device=device)
    except (RuntimeError, AssertionError):
        return False
    return True

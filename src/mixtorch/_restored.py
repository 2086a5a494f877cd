"""Comparisons of a loaded model's fitted values with the values they must equal
(:func:`mixtorch.load` refuses files edited so that they contradict themselves)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch

from .mixture import Mixture

__all__ = ["agree", "close_to"]


def agree(stored: Any, derived: Any, tolerance: float) -> bool:
    """Whether a stored fitted value agrees with the one derived again from the rest of
    the fitted state (numbers, tensors and arrays to ``tolerance``, relative)."""
    if isinstance(derived, Mixture):
        return isinstance(stored, Mixture) and all(
            close_to(first, second, tolerance)
            for first, second in (
                (stored.weights, derived.weights),
                (stored.means, derived.means),
                (stored.covariance.covariances, derived.covariance.covariances),
            )
        )
    if isinstance(derived, np.ndarray) and derived.dtype.kind not in "fiub":
        return isinstance(stored, np.ndarray) and np.array_equal(stored, derived)
    if isinstance(derived, (torch.Tensor, np.ndarray)):
        return close_to(stored, torch.as_tensor(derived), tolerance)
    if isinstance(derived, dict):
        return (
            isinstance(stored, dict)
            and stored.keys() == derived.keys()
            and all(agree(stored[key], derived[key], tolerance) for key in derived)
        )
    if isinstance(derived, (list, tuple)):
        return (
            type(stored) is type(derived)
            and len(stored) == len(derived)
            and all(agree(a, b, tolerance) for a, b in zip(stored, derived, strict=True))
        )
    if isinstance(derived, float) and isinstance(stored, (int, float)):
        both_nan = math.isnan(stored) and math.isnan(derived)
        return both_nan or stored == derived or math.isclose(stored, derived, rel_tol=tolerance)
    return bool(type(stored) is type(derived) and stored == derived)


def close_to(value: Any, reference: torch.Tensor, tolerance: float = 1e-5) -> bool:
    """Whether ``value`` (array or tensor) has ``reference``'s shape and values."""
    if not isinstance(value, (np.ndarray, torch.Tensor)):
        return False
    try:
        tensor = torch.as_tensor(value).to(device=reference.device, dtype=reference.dtype)
    except (TypeError, ValueError, RuntimeError):
        return False
    if tensor.shape != reference.shape:
        return False
    if not reference.is_floating_point():
        return bool(torch.equal(tensor, reference))
    scale = tolerance * (1.0 + float(reference.abs().max())) if reference.numel() else 0.0
    return bool(torch.allclose(tensor, reference, rtol=tolerance, atol=scale))

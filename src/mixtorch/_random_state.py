"""Random streams: ``random_state`` (None, an int, NumPy's RandomState or Generator, a
torch.Generator) as a ``torch.Generator``, and SciPy's ``rng`` checked. Re-exported by
:mod:`mixtorch._validation`."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np
import torch


def check_random_generator(random_state: Any, device: Any = "cpu") -> torch.Generator:
    """Map ``random_state`` (None, int, numpy RandomState/Generator, torch.Generator)
    to a ``torch.Generator`` on ``device``.

    An int always gives the same stream, so the same seed gives the same fit; ints
    outside [0, 2**32 - 1] are a ValueError, as scikit-learn's ``check_random_state``.
    """
    if isinstance(random_state, torch.Generator):
        return random_state
    device = torch.device(device)
    generator = torch.Generator(device=device)
    if random_state is None:
        generator.seed()
        return generator
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        if not 0 <= int(random_state) <= 2**32 - 1:  # the seeds scikit-learn and NumPy take
            raise ValueError(
                f"random_state must be an int in [0, 2**32 - 1], got {random_state}; pass a "
                "seed in that range, or a numpy Generator or torch.Generator."
            )
        generator.manual_seed(int(random_state))
        return generator
    if isinstance(random_state, np.random.RandomState):
        generator.manual_seed(int(random_state.randint(np.iinfo(np.int32).max)))
        return generator
    if isinstance(random_state, np.random.Generator):
        generator.manual_seed(int(random_state.integers(np.iinfo(np.int64).max)))
        return generator
    raise ValueError(
        f"random_state must be None, an int, a numpy RandomState/Generator or a "
        f"torch.Generator, got {random_state!r}."
    )


def check_scipy_rng(rng: Any) -> Any:
    """``rng`` for SciPy's quasi-Monte Carlo integration, unchanged: None, a
    non-negative int or what :func:`numpy.random.default_rng` takes (a numpy
    Generator, ...); anything else is a ``TypeError``/``ValueError`` naming ``rng``, also
    where the computation is exact and would not use it."""
    if rng is None or isinstance(rng, (np.random.Generator, np.random.RandomState)):
        return rng
    if isinstance(rng, torch.Generator):
        raise TypeError(
            "rng seeds SciPy's integration, which takes an int seed or a numpy Generator, "
            "not a torch.Generator: pass e.g. rng=0 or rng=np.random.default_rng(0)."
        )
    if isinstance(rng, (bool, np.bool_)):
        raise TypeError(f"rng must be None, an int seed or a numpy Generator, got {rng!r}.")
    try:
        np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise ValueError(
            f"rng must be None, an int seed >= 0 or a numpy Generator, got {rng!r}."
        ) from None
    return rng

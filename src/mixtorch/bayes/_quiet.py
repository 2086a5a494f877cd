"""Pyro's and the JIT's advisory warnings, silenced inside Pyro calls only."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

__all__ = ["quiet_pyro"]


@contextlib.contextmanager
def quiet_pyro() -> Iterator[None]:
    """Silence Pyro's and the JIT's advisory warnings (pytest turns warnings into errors);
    only inside Pyro calls, never globally."""
    with warnings.catch_warnings():
        for category in (UserWarning, FutureWarning, DeprecationWarning, RuntimeWarning):
            warnings.filterwarnings("ignore", category=category, module=r"pyro\..*")
            warnings.filterwarnings("ignore", category=category, module=r"torch\..*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield

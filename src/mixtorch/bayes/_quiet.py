"""The setting of Pyro calls: advisory warnings silenced, and intra-op threads for small
problems."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator

import torch

__all__ = ["SMALL_PROBLEM", "quiet_pyro", "threads_for"]


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


#: below this many elements (n_samples * n_components * n_features**2) per model
#: evaluation, Pyro's inference runs on one intra-op thread
SMALL_PROBLEM = 1 << 17


@contextlib.contextmanager
def threads_for(X: torch.Tensor, n_components: int) -> Iterator[None]:
    """One intra-op thread for Pyro's inference on small data, the caller's count after.

    An SVI step or a NUTS leapfrog step on small data is a few hundred tiny tensor
    operations, and PyTorch ends each parallel one with a barrier across its threads;
    when a core is busy elsewhere every barrier waits for a preempted thread. Measured
    on 2 shared cores (full covariances, 300 points, 200 NUTS steps): 143 s with 2
    threads, 7 s with one. Larger problems keep the caller's thread count. (The count
    is a process setting; Pyro's inference, with its global parameter store and effect
    handlers, is not run from several threads at once anyway.)
    """
    work = X.shape[0] * n_components * X.shape[1] ** 2
    if X.device.type != "cpu" or work > SMALL_PROBLEM or torch.get_num_threads() == 1:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)

"""Running NUTS chains: one chain in one call, several one after another or in parallel
processes.

A chain is a plain function of its arguments (data, prior, start, seed, sampler
settings), so it gives the same draws whether it runs here or in a worker process.
Workers are started with the ``spawn`` method: forking a process that has already run
PyTorch's thread pools (or initialised CUDA) is unsafe.
"""

from __future__ import annotations

import multiprocessing
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace

import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_value
from torch import Tensor

from ._components import complete_draws, component_family
from ._quiet import quiet_pyro, threads_for
from .model import mixture_model
from .prior import MixturePrior

__all__ = ["ChainSettings", "run_chain", "run_chains", "usable_cpus"]


@dataclass(frozen=True)
class ChainSettings:
    """What every chain of one fit shares."""

    n_components: int
    num_samples: int
    warmup_steps: int
    target_accept_prob: float
    max_tree_depth: int
    jit_compile: bool
    threads: int = 0  # intra-op threads in a worker process (0: leave PyTorch's default)


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity mask where the platform has one)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def run_chain(
    X: Tensor, prior: MixturePrior, start: dict[str, Tensor], seed: int, settings: ChainSettings
) -> tuple[dict[str, Tensor], Tensor]:
    """One NUTS chain from ``start``, seeded by ``seed``.

    Returns
    -------
    draws : dict of str -> Tensor
        Every latent site, shape (num_samples, ...).
    diverging : Tensor of shape (num_samples,), bool
        Whether each kept transition diverged.
    """
    if settings.threads:
        torch.set_num_threads(settings.threads)
    kernel = NUTS(
        mixture_model,
        init_strategy=init_to_value(values=start),
        target_accept_prob=settings.target_accept_prob,
        max_tree_depth=settings.max_tree_depth,
        jit_compile=settings.jit_compile,
        ignore_jit_warnings=True,
    )
    sampler = MCMC(
        kernel,
        num_samples=settings.num_samples,
        warmup_steps=settings.warmup_steps,
        num_chains=1,
        disable_progbar=True,
    )
    # fork_rng: NUTS draws from torch's global generator; keep the caller's stream intact
    with (
        torch.random.fork_rng(devices=[]),
        quiet_pyro(),
        threads_for(X, settings.n_components),
    ):
        torch.manual_seed(seed)
        sampler.run(X, settings.n_components, prior)
    draws = complete_draws(sampler.get_samples(), component_family(prior.covariance_type))
    diverging = torch.zeros(settings.num_samples, dtype=torch.bool, device=X.device)
    steps = [int(i) for i in sampler.diagnostics()["divergences"]["chain 0"]]
    diverging[[i for i in steps if 0 <= i < settings.num_samples]] = True
    return draws, diverging


def run_chains(
    X: Tensor,
    prior: MixturePrior,
    starts: list[dict[str, Tensor]],
    seeds: list[int],
    settings: ChainSettings,
    parallel: bool,
) -> list[tuple[dict[str, Tensor], Tensor]]:
    """Every chain, in order; in ``min(chains, usable_cpus())`` spawned worker processes
    when ``parallel``."""
    jobs = list(zip(starts, seeds, strict=True))
    if not parallel:
        return [run_chain(X, prior, start, seed, settings) for start, seed in jobs]
    workers = min(len(jobs), usable_cpus())
    threads = max(1, usable_cpus() // workers)
    shared = replace(settings, threads=threads)
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
        futures = [pool.submit(run_chain, X, prior, start, seed, shared) for start, seed in jobs]
        return [future.result() for future in futures]

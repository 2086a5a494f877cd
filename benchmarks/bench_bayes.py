"""NUTS on full-covariance mixtures: chains one after another or in worker processes.

Data: ``k`` well separated clusters in ``d`` dimensions with random correlations. Reported,
same run: wall time of ``MCMCGaussianMixture(covariance_type="full").fit`` with
``chain_method="sequential"`` and ``"parallel"`` (the two give the same draws, which is
checked), the largest r-hat and the smallest effective sample size, and the largest
difference between the posterior mean covariances and the generating ones.

Run: ``.venv/bin/python benchmarks/bench_bayes.py`` (a minute or two on 2 cores; the
parallel run needs at least two CPUs to gain anything).
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mixtorch import MCMCGaussianMixture
from mixtorch.bayes._chains import usable_cpus


def correlated_clusters(n: int, d: int, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` points from ``k`` clusters in ``d`` dimensions and their covariances."""
    rng = np.random.default_rng(seed)
    covariances = []
    parts = []
    for index in range(k):
        factor = rng.normal(size=(d, d)) / np.sqrt(d)
        covariance = factor @ factor.T + 0.3 * np.eye(d)
        centre = np.full(d, 8.0 * index)
        parts.append(rng.multivariate_normal(centre, covariance, n // k))
        covariances.append(covariance)
    return np.concatenate(parts), np.stack(covariances)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--d", type=int, default=3)
    parser.add_argument("--k", type=int, default=2)
    parser.add_argument("--steps", type=int, default=300, help="warm-up and kept draws each")
    parser.add_argument("--chains", type=int, default=2)
    args = parser.parse_args()
    X, truth = correlated_clusters(args.n, args.d, args.k)
    print(f"n={args.n} d={args.d} k={args.k}, {args.chains} chains x ({args.steps} warm-up + "
          f"{args.steps} draws), {usable_cpus()} usable CPUs")  # fmt: skip
    fits = {}
    for method in ("sequential", "parallel"):
        model = MCMCGaussianMixture(
            args.k, covariance_type="full", num_samples=args.steps, warmup_steps=args.steps,
            num_chains=args.chains, chain_method=method, random_state=0,
        )  # fmt: skip
        start = time.perf_counter()
        model.fit(X)
        seconds = time.perf_counter() - start
        fits[method] = model
        r_hat = max(float(np.max(value)) for value in model.r_hat_.values())
        ess = min(float(np.min(value)) for value in model.ess_.values())
        error = float(np.abs(model.covariances_ - truth).max())
        print(f"{method:>10}: {seconds:6.1f} s   max r-hat {r_hat:.3f}   min ESS {ess:6.0f}   "
              f"max |covariance - truth| {error:.3f}")  # fmt: skip
    same = all(
        np.array_equal(fits["sequential"].posterior_samples_[name], value)
        for name, value in fits["parallel"].posterior_samples_.items()
    )
    print("same draws either way:", same)


if __name__ == "__main__":
    main()

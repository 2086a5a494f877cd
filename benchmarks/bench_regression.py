"""Gaussian mixture regression: mixtorch against gmr, same mixture, same run.

gmr (``pip install gmr``, a benchmark-only peer, not a dependency) is the reference
package for conditioning Gaussian mixtures. Both libraries here predict ``E[y | x]`` from
the *same* fitted joint mixture (mixtorch's parameters are handed to ``gmr.GMM``), so the
comparison times conditioning alone and checks that the predictions agree. A second table
times the whole fit (EM on the joint data) of each library with its own defaults.

Run: ``.venv/bin/python benchmarks/bench_regression.py`` (under a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from mixtorch import GaussianMixtureRegressor


def timed(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def data(n: int, n_inputs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A smooth non-linear target of several inputs with noise."""
    rng = np.random.default_rng(seed)
    X = rng.uniform(-2, 2, size=(n, n_inputs))
    y = np.sin(X.sum(1)) + 0.3 * X[:, 0] ** 2 + 0.05 * rng.normal(size=n)
    return X, y


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--queries", type=int, default=200_000)
    parser.add_argument("--inputs", type=int, default=4)
    parser.add_argument("--components", type=int, default=16)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    from gmr import GMM

    X, y = data(args.train, args.inputs)
    queries, truth = data(args.queries, args.inputs, seed=1)
    model = GaussianMixtureRegressor(args.components, random_state=0).fit(X, y)
    mixture = model.mixture_model_.mixture_
    peer = GMM(
        n_components=args.components,
        priors=mixture.weights.numpy(),
        means=mixture.means.numpy(),
        covariances=mixture.covariance.full_matrices(args.components).numpy(),
    )
    inputs = np.arange(args.inputs)
    t_ours, ours = timed(lambda: model.predict(queries), args.repeats)
    t_peer, theirs = timed(lambda: peer.predict(inputs, queries)[:, 0], args.repeats)
    rmse = np.sqrt(np.mean((ours - truth) ** 2))
    print(
        f"predict E[y|x], {args.queries} rows, D={args.inputs}+1, K={args.components}, "
        "float64, same mixture"
    )
    print(f"  gmr.GMM.predict                 {t_peer:8.3f} s")
    print(f"  GaussianMixtureRegressor.predict {t_ours:7.3f} s   ratio {t_peer / t_ours:6.1f}x")
    print(f"  largest difference {np.abs(ours - theirs).max():.2e}; RMSE vs truth {rmse:.3f}")

    def fit_ours() -> Any:
        return GaussianMixtureRegressor(args.components, random_state=0).fit(X, y)

    def fit_peer() -> Any:
        return GMM(n_components=args.components, random_state=0).from_samples(
            np.column_stack([X, y])
        )

    t_fit_ours, _ = timed(fit_ours, 1)
    t_fit_peer, fitted_peer = timed(fit_peer, 1)
    peer_rmse = np.sqrt(np.mean((fitted_peer.predict(inputs, queries)[:, 0] - truth) ** 2))
    print(f"fit (EM on the joint data, each library's defaults), {args.train} rows")
    print(f"  gmr.GMM.from_samples            {t_fit_peer:8.3f} s   RMSE {peer_rmse:.3f}")
    print(
        f"  GaussianMixtureRegressor.fit    {t_fit_ours:8.3f} s   RMSE {rmse:.3f}   "
        f"ratio {t_fit_peer / t_fit_ours:6.1f}x"
    )


if __name__ == "__main__":
    main()

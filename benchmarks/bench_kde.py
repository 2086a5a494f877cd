"""Exact Gaussian KDE log-densities: mixtorch against SciPy and scikit-learn, same run.

20k training x 20k query points in 2-D (defaults), the same bandwidth everywhere (SciPy's
Scott matrix for SciPy and mixtorch; a float bandwidth with ``rtol=0`` for scikit-learn's
KernelDensity, compared with mixtorch at that float). Also times the FFT path on large
1-D data and reports its error against exact evaluation.

Run: ``.venv/bin/python benchmarks/bench_kde.py`` (about a minute on 2 cores).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy import stats
from scipy.special import logsumexp
from sklearn.neighbors import KernelDensity

from mixtorch import GaussianKDE


def timed(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def brute_log_density(queries: np.ndarray, data: np.ndarray, h: float) -> np.ndarray:
    """Dense float64 NumPy reference for an isotropic kernel of standard deviation h."""
    out = np.empty(len(queries))
    for start in range(0, len(queries), 250):
        block = queries[start : start + 250]
        squared = ((block[:, None, :] - data[None, :, :]) ** 2).sum(-1)
        out[start : start + 250] = logsumexp(-0.5 * squared / h**2, axis=1)
    return out - np.log(len(data)) - 0.5 * data.shape[1] * np.log(2 * np.pi * h * h)


def exact_comparison(n_train: int, n_query: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_train, 2)) @ np.array([[1.0, 0.3], [0.0, 0.7]]) + [5.0, -2.0]
    Q = rng.normal(size=(n_query, 2)) * 1.2 + [5.0, -2.0]

    scipy_kde = stats.gaussian_kde(X.T)
    t_scipy, ref_scipy = timed(lambda: scipy_kde.logpdf(Q.T))
    print(f"SciPy gaussian_kde.logpdf            {t_scipy:8.3f} s")
    for dtype in (np.float64, np.float32):
        kde = GaussianKDE().fit(X.astype(dtype))
        queries = Q.astype(dtype)
        t, ours = timed(lambda kde=kde, queries=queries: kde.score_samples(queries), repeats)
        error = np.abs(ours.astype(np.float64) - ref_scipy).max()
        print(
            f"mixtorch exact {np.dtype(dtype).name:8s} (Scott)       {t:8.3f} s   "
            f"x{t_scipy / t:6.1f} vs SciPy   max|err| {error:.2e}"
        )

    h = float(np.sqrt(scipy_kde.covariance.diagonal().mean()))
    sk = KernelDensity(bandwidth=h, rtol=0.0, atol=0.0).fit(X)
    t_sk, ref_sk = timed(lambda: sk.score_samples(Q))
    print(f"sklearn KernelDensity (rtol=0, h={h:.3f}) {t_sk:8.3f} s")
    subset = slice(0, 1000)
    brute = brute_log_density(Q[subset], X, h)
    sk_error = np.abs(ref_sk[subset] - brute).max()
    print(f"  sklearn max|err| vs float64 brute force on 1000 queries: {sk_error:.2e}")
    for dtype in (np.float64, np.float32):
        kde = GaussianKDE(h).fit(X.astype(dtype))
        queries = Q.astype(dtype)
        t, ours = timed(lambda kde=kde, queries=queries: kde.score_samples(queries), repeats)
        error = np.abs(ours.astype(np.float64) - ref_sk).max()
        brute_error = np.abs(ours[subset].astype(np.float64) - brute).max()
        print(
            f"mixtorch exact {np.dtype(dtype).name:8s} (h)           {t:8.3f} s   "
            f"x{t_sk / t:6.1f} vs sklearn max|err| {error:.2e} (vs brute force "
            f"{brute_error:.2e})"
        )


def fft_comparison(n_points: int) -> None:
    rng = np.random.default_rng(1)
    X = np.r_[rng.normal(0, 1, n_points // 2), rng.normal(4, 0.5, n_points - n_points // 2)]
    X = X[:, None]
    Q = np.sort(rng.uniform(-3, 6, size=n_points))[:, None]
    t_fit, fast = timed(lambda: GaussianKDE(algorithm="fft").fit(X))
    t_eval, approx = timed(lambda: fast.score_samples(Q))
    subset = Q[:: max(1, n_points // 2000)]
    exact = GaussianKDE().fit(X).score_samples(subset)
    relative = np.abs(np.expm1(fast.score_samples(subset) - exact))
    print(
        f"FFT 1-D, {n_points} points: fit {t_fit:.3f} s, {len(Q)} queries {t_eval:.3f} s; "
        f"density rel. error vs exact on {len(subset)} queries: max {relative.max():.1e}, "
        f"median {np.median(relative):.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20_000)
    parser.add_argument("--query", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--fft-points", type=int, default=1_000_000)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.train} train x {args.query} query, D=2"
    )
    exact_comparison(args.train, args.query, args.repeats)
    fft_comparison(args.fft_points)


if __name__ == "__main__":
    main()

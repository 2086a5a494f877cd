"""Exact Gaussian KDE log-densities: mixtorch against SciPy and scikit-learn, same run.

20k training x 20k query points in 2-D and 8-D (defaults), the same bandwidth everywhere
(SciPy's Scott matrix for SciPy and mixtorch; a float bandwidth with ``rtol=0`` for
scikit-learn's KernelDensity, compared with mixtorch at that float). Each library's time
is its best of several calls (the machine is shared). Prints the ratio against SciPy, the
measured exp() rate per core and how far each run is from the exp floor (pairs divided
by the exp rate times the threads). The floor takes the faster of ``torch.exp`` and
``torch.exp2`` after a multiplication by log2(e), which is how mixtorch raises its
exponents (``mixtorch.fit.kernel_sum``); both rates are printed. Also times the FFT path
on large 1-D data.

Run: ``.venv/bin/python benchmarks/bench_kde.py`` (a few minutes on 2 cores).
"""

from __future__ import annotations

import argparse
import math
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
    best, _, result = timed_cpu(fn, repeats)
    return best, result


def timed_cpu(fn: Callable[[], Any], repeats: int = 1) -> tuple[float, float, Any]:
    """Best wall time and best CPU time (all threads of the process) of ``repeats`` calls.

    On a loaded machine the CPU time is the steadier figure: it does not count the time
    the threads wait for a core.
    """
    best, best_cpu, result = float("inf"), float("inf"), None
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        result = fn()
        best_cpu = min(best_cpu, time.process_time() - start_cpu)
        best = min(best, time.perf_counter() - start)
    return best, best_cpu, result


def exp_rate(dtype: torch.dtype, repeats: int = 200, base2: bool = False) -> float:
    """exp() evaluations per second on one core, on a 2**18 buffer, one thread, best of
    ``repeats`` (CPU time, so that other jobs on the machine count less): ``torch.exp``,
    or with ``base2`` a multiplication by log2(e) then ``torch.exp2``, in place."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    x = -50.0 * torch.rand(2**18, dtype=dtype)
    out = torch.empty_like(x)
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        if base2:
            torch.mul(x, 1.0 / math.log(2.0), out=out).exp2_()
        else:
            torch.exp(x, out=out)
        best = min(best, time.process_time() - start)
    torch.set_num_threads(threads)
    return x.numel() / best


def fastest_exp_rate(dtype: torch.dtype) -> float:
    """The better of the two ways :func:`exp_rate` measures."""
    return max(exp_rate(dtype), exp_rate(dtype, base2=True))


def brute_log_density(queries: np.ndarray, data: np.ndarray, h: float) -> np.ndarray:
    """Dense float64 NumPy reference for an isotropic kernel of standard deviation h."""
    out = np.empty(len(queries))
    for start in range(0, len(queries), 250):
        block = queries[start : start + 250]
        squared = ((block[:, None, :] - data[None, :, :]) ** 2).sum(-1)
        out[start : start + 250] = logsumexp(-0.5 * squared / h**2, axis=1)
    return out - np.log(len(data)) - 0.5 * data.shape[1] * np.log(2 * np.pi * h * h)


def scipy_comparison(n_train: int, n_query: int, d: int, repeats: int, peer_repeats: int) -> None:
    """Scott bandwidth, SciPy's ``logpdf`` against ``score_samples`` in both dtypes."""
    rng = np.random.default_rng(0)
    mixing = np.eye(d) + 0.3 * np.triu(rng.normal(size=(d, d)), 1)
    X = rng.normal(size=(n_train, d)) @ mixing + 5.0
    Q = rng.normal(size=(n_query, d)) @ mixing * 1.2 + 5.0
    scipy_kde = stats.gaussian_kde(X.T)
    t_scipy, cpu_scipy, reference = timed_cpu(lambda: scipy_kde.logpdf(Q.T), peer_repeats)
    pairs = n_train * n_query
    cores = torch.get_num_threads()
    print(
        f"D={d}: SciPy gaussian_kde.logpdf (best of {peer_repeats})   {t_scipy:8.3f} s wall, "
        f"{cpu_scipy:8.3f} s CPU"
    )
    for dtype, torch_dtype in ((np.float64, torch.float64), (np.float32, torch.float32)):
        kde = GaussianKDE().fit(X.astype(dtype))
        queries = Q.astype(dtype)
        t, cpu, ours = timed_cpu(
            lambda kde=kde, queries=queries: kde.score_samples(queries), repeats
        )
        error = np.abs(ours.astype(np.float64) - reference).max()
        floor = pairs / fastest_exp_rate(torch_dtype)  # CPU seconds of exp() alone
        print(
            f"D={d}: mixtorch exact {np.dtype(dtype).name:8s} (best of {repeats})  {t:8.3f} s wall "
            f"x{t_scipy / t:5.1f} vs SciPy; {cpu:7.3f} s CPU x{cpu_scipy / cpu:5.1f} per core, "
            f"x{cores * cpu_scipy / cpu:5.1f} on {cores} cores; {cpu / floor:4.2f}x the exp "
            f"floor ({floor:.3f} CPU s); max|err| {error:.1e}"
        )


def sklearn_comparison(n_train: int, n_query: int, repeats: int) -> None:
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n_train, 2)) @ np.array([[1.0, 0.3], [0.0, 0.7]]) + [5.0, -2.0]
    Q = rng.normal(size=(n_query, 2)) * 1.2 + [5.0, -2.0]
    h = 0.171
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
        brute_error = np.abs(ours[subset].astype(np.float64) - brute).max()
        print(
            f"mixtorch exact {np.dtype(dtype).name:8s} (h)           {t:8.3f} s   "
            f"x{t_sk / t:6.1f} vs sklearn  max|err| vs brute force {brute_error:.2e}"
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
    parser.add_argument("--dims", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--repeats", type=int, default=5, help="mixtorch: best of")
    parser.add_argument("--peer-repeats", type=int, default=2, help="SciPy: best of")
    parser.add_argument("--fft-points", type=int, default=1_000_000)
    parser.add_argument("--skip-sklearn", action="store_true")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads; {args.train} train x {args.query} query"
    )
    for dtype in (torch.float64, torch.float32):
        plain, base2 = exp_rate(dtype) / 1e9, exp_rate(dtype, base2=True) / 1e9
        print(
            f"exp() per core, {dtype}: torch.exp {plain:.2f} G/s, log2(e) x then exp2 {base2:.2f}"
        )
    for d in args.dims:
        scipy_comparison(args.train, args.query, d, args.repeats, args.peer_repeats)
    if not args.skip_sklearn:
        sklearn_comparison(args.train, args.query, args.repeats)
    if args.fft_points:
        fft_comparison(args.fft_points)


if __name__ == "__main__":
    main()

"""Binned (FFT) Gaussian KDE: mixtorch against KDEpy's ``FFTKDE`` on KDEpy's workload.

1,000,000 points; the density on KDEpy's own grid (1-D: 4096 nodes, Scott bandwidth;
2-D: standard normal, h = 0.1, 256 x 256 nodes; 3-D: standard normal, h = 0.2,
64 x 64 x 64 nodes). Both libraries get the same data, the same bandwidth (a float: the
kernel standard deviation) and the same grid (mixtorch evaluates on the grid points KDEpy
returns). Each time is the best of ``--repeats`` runs of the whole job (fit and grid
evaluation), the two libraries alternating in the same process. Errors are measured
against exact float64 sums over all points at a sample of grid nodes (half uniform, half
where the density exceeds 1% of its peak, plus the peak), as max |error| / peak density.

It also times ``score_samples`` of ``GaussianKDE(algorithm="fft")`` (log-density grid and
interpolation) on 1,000,000 arbitrary queries and reports its log-density error at 200
queries, from the bulk to 8 bandwidths beyond the data.

KDEpy is a peer for this benchmark only, not a dependency of mixtorch. Install it into the
environment that runs the benchmark::

    .venv/bin/pip install KDEpy

Run: ``.venv/bin/python benchmarks/bench_binned_kde.py`` (about two minutes on 2 cores;
``--points 100000`` for a quick look).
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from scipy.special import logsumexp

from mixtorch import GaussianKDE

try:
    from KDEpy import FFTKDE
except ImportError as error:  # pragma: no cover - benchmark environment only
    raise SystemExit("KDEpy is not installed: run `.venv/bin/pip install KDEpy`.") from error


def best_time(fn: Callable[[], Any], repeats: int) -> tuple[float, Any]:
    """Best wall time of ``repeats`` calls, and the last result."""
    best, result = float("inf"), None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        best = min(best, time.perf_counter() - start)
    return best, result


def exact_log_density(queries: np.ndarray, data: np.ndarray, h: float) -> np.ndarray:
    """log of (1/N) sum_i N(q | x_i, h**2 I), float64, in blocks of queries."""
    out = np.empty(len(queries))
    block = max(1, 8_000_000 // len(data))
    for start in range(0, len(queries), block):
        chunk = queries[start : start + block]
        squared = np.zeros((len(chunk), len(data)))
        for d in range(data.shape[1]):
            squared += (chunk[:, d, None] - data[None, :, d]) ** 2
        out[start : start + block] = logsumexp(-0.5 * squared / h**2, axis=1)
    dims = data.shape[1]
    return out - np.log(len(data)) - 0.5 * dims * np.log(2 * np.pi * h * h)


def sample_nodes(density: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of grid nodes: half uniform, half above 1% of the peak, and the peak."""
    high = np.flatnonzero(density > 0.01 * density.max())
    chosen = np.r_[
        rng.choice(len(density), n // 2, replace=False),
        rng.choice(high, min(n // 2, len(high)), replace=False),
        np.argmax(density),
    ]
    return np.unique(chosen)


def grid_case(name: str, X: np.ndarray, h: float, shape: Any, args: Any) -> None:
    rng = np.random.default_rng(5)
    kdepy = lambda: FFTKDE(bw=h).fit(X).evaluate(shape)  # noqa: E731
    grid, y_kdepy = kdepy()
    grid = grid.reshape(len(grid), -1)

    def ours() -> Any:
        return GaussianKDE(h, algorithm="fft").fit(X).evaluate_grid(grid)

    fitted = GaussianKDE(h, algorithm="fft").fit(X)
    t_kdepy = t_ours = t_eval = float("inf")
    for _ in range(args.repeats):  # alternate, so both see the same machine load
        t_kdepy = min(t_kdepy, best_time(kdepy, 1)[0])
        t_ours = min(t_ours, best_time(ours, 1)[0])
        t_eval = min(t_eval, best_time(lambda: fitted.evaluate_grid(grid), 1)[0])
    points, y_ours = fitted.evaluate_grid(grid)
    assert np.allclose(points, grid)
    nodes = sample_nodes(y_kdepy, args.nodes, rng)
    exact = np.exp(exact_log_density(grid[nodes], X, h))
    peak = exact.max()
    err_kdepy = np.abs(y_kdepy[nodes] - exact).max() / peak
    err_ours = np.abs(y_ours[nodes] - exact).max() / peak
    print(
        f"{name}\n  KDEpy fit+evaluate {t_kdepy * 1e3:7.1f} ms, error {err_kdepy:.1e} | "
        f"mixtorch evaluate_grid {t_eval * 1e3:7.1f} ms (x{t_kdepy / t_eval:.2f}), "
        f"fit+evaluate_grid {t_ours * 1e3:7.1f} ms (x{t_kdepy / t_ours:.2f}), error "
        f"{err_ours:.1e} ({err_ours / err_kdepy:.2g} of KDEpy's; {len(nodes)} nodes)"
    )


def score_case(name: str, X: np.ndarray, h: float, args: Any) -> None:
    rng = np.random.default_rng(6)
    dims = X.shape[1]
    queries = rng.normal(size=(args.points, dims)) * 1.5

    def ours() -> Any:
        return GaussianKDE(h, algorithm="fft").fit(X).score_samples(queries)

    t_ours, _ = best_time(ours, args.repeats)
    kde = GaussianKDE(h, algorithm="fft").fit(X)
    directions = rng.normal(size=(200, dims))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    radii = rng.uniform(0, np.abs(X).max() + 8 * h, size=(200, 1))
    checks = directions * radii
    error = np.abs(kde.score_samples(checks) - exact_log_density(checks, X, h))
    print(
        f"{name:38s} mixtorch fit + {args.points} queries {t_ours * 1e3:8.1f} ms; "
        f"|log error| at 200 queries to 8 h beyond the data: max {error.max():.1e}, "
        f"median {np.median(error):.1e}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--nodes", type=int, default=200, help="grid nodes checked exactly")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-score", action="store_true", help="skip score_samples timings")
    parser.add_argument("--no-grid", action="store_true", help="skip the KDEpy comparison")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    print(
        f"{platform.processor() or platform.machine()}, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, N = {args.points}, best of {args.repeats}"
    )
    rng = np.random.default_rng(0)
    X1 = rng.normal(size=(args.points, 1))
    scott = float(GaussianKDE("scott").fit(X1).bandwidth_[0, 0] ** 0.5)
    cases = [
        (f"1-D normal, Scott h={scott:.4f}, 4096 nodes", X1, scott, 4096),
        ("2-D normal, h=0.1, 256x256 nodes", rng.normal(size=(args.points, 2)), 0.1, (256,) * 2),
        ("3-D normal, h=0.2, 64x64x64 nodes", rng.normal(size=(args.points, 3)), 0.2, (64,) * 3),
    ]
    for name, X, h, shape in [] if args.no_grid else cases:
        grid_case(name, X, h, shape, args)
    if not args.no_score:
        for name, X, h, _ in cases:
            score_case("score_samples " + name.split(",")[0], X, h, args)


if __name__ == "__main__":
    main()

"""A single Gaussian's log-density: ``Gaussian.logpdf`` against SciPy's frozen
``multivariate_normal.logpdf``, and ``Gaussian.score_samples``, in the same run; and a
KDE's on a few points against SciPy's ``gaussian_kde``.

Usage::

    python benchmarks/bench_gaussian.py            # D = 4 and 16, 1 to 200,000 points
    python benchmarks/bench_gaussian.py --quick    # up to 10,000 points

A second table times ``GaussianKDE.logpdf`` against SciPy's ``gaussian_kde.logpdf`` on a
few query points (SciPy's (d, m) layout, 2,000 data points, Scott's bandwidth), where the
fixed cost of a call decides.

Both hold the same mean and covariance (mixtorch's maximum-likelihood fit; SciPy's
distribution frozen with it, so its factorisation is done once, outside the timing).
Calls come back to back; each figure is the median of ``--calls`` calls, best of three
alternating blocks. Small batches measure the fixed cost of a call (input checks, setting
up the computation), large ones the arithmetic.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from _machine import describe, summary
from scipy import stats

from mixtorch import Gaussian, GaussianKDE


def median_seconds(call: Callable[[Any], Any], points: np.ndarray, calls: int) -> float:
    """Median wall time of ``calls`` back-to-back ``call(points)`` (after three to warm
    up)."""
    for _ in range(3):
        call(points)
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call(points)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="up to 10,000 points")
    parser.add_argument("--calls", type=int, default=31)
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    sizes = (1, 100, 10_000) if args.quick else (1, 100, 10_000, 200_000)
    machine = describe()
    print(summary(machine))
    print(f"{'D':>3s} {'points':>7s} {'scipy logpdf':>13s} {'logpdf':>10s} {'ratio':>7s} "
          f"{'score_samples':>14s}")  # fmt: skip
    rows = []
    rng = np.random.default_rng(0)
    for d in (4, 16):
        mixing = rng.normal(size=(d, d)) / math.sqrt(d) + np.eye(d)
        X = rng.normal(size=(max(sizes), d)) @ mixing + rng.normal(size=d) * 10
        model = Gaussian().fit(X)
        frozen = stats.multivariate_normal(model.mean_, model.covariance_)
        for n in sizes:
            points = np.ascontiguousarray(X[:n])
            methods = {
                "scipy": frozen.logpdf,
                "logpdf": model.logpdf,
                "score_samples": model.score_samples,
            }
            best = dict.fromkeys(methods, math.inf)
            for _ in range(3):
                for name, method in methods.items():
                    best[name] = min(best[name], median_seconds(method, points, args.calls))
            gap = np.max(np.abs(np.atleast_1d(model.logpdf(points) - frozen.logpdf(points))))
            ratio = best["scipy"] / best["logpdf"]
            print(
                f"{d:3d} {n:7d} {best['scipy'] * 1e3:11.3f}ms {best['logpdf'] * 1e3:8.3f}ms "
                f"{ratio:6.2f}x {best['score_samples'] * 1e3:12.3f}ms   max |difference| "
                f"{gap:.1e}",
                flush=True,
            )
            figures = {f"{k}_s": v for k, v in best.items()}
            rows.append({"d": d, "n": n, **figures, "max_difference": float(gap)})
    print(f"\n{'D':>3s} {'queries':>7s} {'scipy kde':>11s} {'GaussianKDE':>12s} {'ratio':>7s}")
    kde_rows = []
    for d in (2, 4):
        data = rng.normal(size=(2000, d))
        ours, theirs = GaussianKDE().fit(data), stats.gaussian_kde(data.T)
        for m in (1, 100):
            queries = np.ascontiguousarray(data[:m].T)
            best_kde = {"scipy": math.inf, "mixtorch": math.inf}
            for _ in range(3):
                for name, method in (("scipy", theirs.logpdf), ("mixtorch", ours.logpdf)):
                    seconds = median_seconds(method, queries, args.calls)
                    best_kde[name] = min(best_kde[name], seconds)
            ratio = best_kde["scipy"] / best_kde["mixtorch"]
            print(
                f"{d:3d} {m:7d} {best_kde['scipy'] * 1e3:9.3f}ms "
                f"{best_kde['mixtorch'] * 1e3:10.3f}ms {ratio:6.2f}x",
                flush=True,
            )
            kde_rows.append({"d": d, "m": m, **{f"{k}_s": v for k, v in best_kde.items()}})
    if args.json:
        document = {"machine": machine, "rows": rows, "kde_rows": kde_rows}
        args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()

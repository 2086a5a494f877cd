"""A single Gaussian's log-density: ``Gaussian.logpdf`` against SciPy's frozen
``multivariate_normal.logpdf``, and ``Gaussian.score_samples``, in the same run.

Usage::

    python benchmarks/bench_gaussian.py            # D = 4 and 16, 1 to 200,000 points
    python benchmarks/bench_gaussian.py --quick    # up to 10,000 points

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

from mixtorch import Gaussian


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
            rows.append({"d": d, "n": n, **{f"{k}_s": v for k, v in best.items()}})
    if args.json:
        args.json.write_text(json.dumps({"machine": machine, "rows": rows}, indent=2))


if __name__ == "__main__":
    main()

"""Scoring: ``score_samples``, ``predict``, ``predict_proba``, ``score`` against scikit-learn.

Usage::

    python benchmarks/bench_scoring.py            # N=200k, D=16, K=16 (about 1.5 minutes)
    python benchmarks/bench_scoring.py --quick    # N=20k, a smoke run

Both libraries hold the same parameters: scikit-learn's ``GaussianMixture`` is fitted to a
subsample (a few EM iterations), and mixtorch's model is built from its weights, means and
covariances with ``GaussianMixture.from_parameters``. Each method is called on the same
NumPy array (the EM benchmark's blobs, float32 or float64, the models in that dtype), so
input validation and the conversion to the output array are counted on both sides.
Calls alternate between the libraries, with a pause of ``--pause`` seconds (0.25) before
each call; each figure is the best of ``--repeats`` calls, as the machine is shared. The
pause matters: NumPy's OpenBLAS threads keep spinning on the cores for about 0.1 s after a
BLAS call (its thread timeout, 2**28 cycles), so a call that follows scikit-learn's within
that time shares the cores with them. Measured: mixtorch's full float32 ``predict`` took
32 ms when it came 0.05 s after scikit-learn's call and 21-22 ms 0.15-0.3 s after it;
scikit-learn's times did not depend on the pause. Calls of one library back to back are
faster than either (the data stay in the caches: 15 against 18 ms for that ``predict``);
with the pause every call of both libraries starts cold, as a user's call usually does.
The script also prints the largest difference between the two libraries' answers
(log-densities and responsibilities; label disagreements) and the CPU time of the best
calls, which moves less than wall time on a loaded machine.

A second table times small batches (1 to 10,000 rows of the same data, as a service
scoring requests calls): there the fixed cost of a call (validation, setting up the pass,
converting the result) dominates. Calls come back to back in blocks of ``--batch-calls``
per library, the blocks alternating three times; each figure is the best block's median.
``--small-only`` runs only this table.
"""

from __future__ import annotations

import argparse
import json
import math
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from _machine import describe, summary
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from mixtorch import GaussianMixture

warnings.simplefilter("ignore", ConvergenceWarning)

METHODS = ("score_samples", "predict", "predict_proba", "score")
TARGETS = {"full": 10.0, "diag": 5.0}


def make_data(n: int, d: int, k: int, dtype: Any, seed: int = 0) -> np.ndarray:
    """Blobs as in ``bench_em.py``: centres ~ N(0, 9), per-cluster scales in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, 3.0, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, 1))
    labels = rng.integers(0, k, n)
    return (centers[labels] + scales[labels] * rng.normal(size=(n, d))).astype(dtype)


def twin_models(X: np.ndarray, k: int, kind: str) -> tuple[Any, Any]:
    """A scikit-learn model and a mixtorch model with the same parameters."""
    subset = X[:: max(1, len(X) // 20_000)]
    reference = SkGaussianMixture(k, covariance_type=kind, max_iter=5, random_state=0)
    reference.fit(subset)
    ours = GaussianMixture.from_parameters(
        reference.weights_,
        reference.means_.astype(X.dtype),
        reference.covariances_,
        covariance_type=kind,
        dtype=X.dtype.name,
    )
    return reference, ours


def timed(call: Callable[[np.ndarray], Any], X: np.ndarray) -> tuple[float, float, Any]:
    """Wall and CPU seconds of ``call(X)``, and its result."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = call(X)
    return time.perf_counter() - wall, time.process_time() - cpu, result


def compare(
    reference: Any, ours: Any, X: np.ndarray, repeats: int, pause: float
) -> dict[str, dict]:
    """Best-of-``repeats`` times per method, the libraries alternating call by call."""
    figures: dict[str, dict] = {}
    for method in METHODS:
        best = {"sklearn": (math.inf, math.inf), "mixtorch": (math.inf, math.inf)}
        answers: dict[str, Any] = {}
        for _ in range(repeats):
            for name, model in (("sklearn", reference), ("mixtorch", ours)):
                time.sleep(pause)  # let the other library's BLAS threads go idle
                wall, cpu, answers[name] = timed(getattr(model, method), X)
                if wall < best[name][0]:
                    best[name] = (wall, cpu)
        figures[method] = {
            "sklearn_s": best["sklearn"][0],
            "mixtorch_s": best["mixtorch"][0],
            "ratio": best["sklearn"][0] / best["mixtorch"][0],
            "sklearn_cpu_s": best["sklearn"][1],
            "mixtorch_cpu_s": best["mixtorch"][1],
            "difference": difference(method, answers["sklearn"], answers["mixtorch"]),
        }
    return figures


def difference(method: str, theirs: Any, ours: Any) -> float:
    """Largest absolute difference (labels: the fraction that disagree)."""
    if method == "predict":
        return float(np.mean(np.asarray(theirs) != np.asarray(ours)))
    return float(np.max(np.abs(np.asarray(theirs, dtype=np.float64) - np.asarray(ours))))


SMALL_BATCHES = (1, 100, 1_000, 10_000)
SMALL_METHODS = ("score_samples", "predict", "predict_proba")


def small_batches(reference: Any, ours: Any, X: np.ndarray, calls: int) -> list[dict]:
    """Median seconds per call on the first n rows, back to back, for each batch size."""
    rows = []
    for n in SMALL_BATCHES:
        batch = np.ascontiguousarray(X[:n])
        for method in SMALL_METHODS:
            best = {"sklearn": math.inf, "mixtorch": math.inf}
            for _ in range(3):
                for name, model in (("sklearn", reference), ("mixtorch", ours)):
                    call = getattr(model, method)
                    for _ in range(3):
                        call(batch)
                    times = [timed(call, batch)[0] for _ in range(calls)]
                    best[name] = min(best[name], float(np.median(times)))
            rows.append(
                {
                    "n": n,
                    "method": method,
                    "sklearn_s": best["sklearn"],
                    "mixtorch_s": best["mixtorch"],
                    "ratio": best["sklearn"] / best["mixtorch"],
                }
            )
    return rows


def print_small(case: str, rows: list[dict]) -> None:
    for row in rows:
        print(
            f"{case:16s} {row['n']:6d} {row['method']:14s} {row['sklearn_s'] * 1e3:8.3f}ms "
            f"{row['mixtorch_s'] * 1e3:8.3f}ms {row['ratio']:6.2f}x",
            flush=True,
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="N=20k instead of 200k")
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument(
        "--pause", type=float, default=0.25, help="seconds of rest before each call"
    )
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    parser.add_argument(
        "--no-onednn",
        action="store_true",
        help="mixtorch's float32 products through torch.mm (MKL) instead of oneDNN",
    )
    parser.add_argument("--small-only", action="store_true", help="only the small-batch table")
    parser.add_argument(
        "--batch-calls", type=int, default=31, help="calls per block in the small-batch table"
    )
    args = parser.parse_args()
    if args.no_onednn:
        torch.backends.mkldnn.enabled = False
    n = 20_000 if args.quick else 200_000
    machine = describe()
    print(f"{summary(machine)}; N={n}, D=16, K=16")
    rows: list[dict] = []
    small: list[dict] = []
    kinds = () if args.small_only else ("full", "diag")
    header = f"{'case':22s} {'method':14s} {'sklearn':>9s} {'mixtorch':>9s} {'ratio':>7s}"
    if kinds:
        print(header + f" {'target':>7s} {'cpu ratio':>9s}  max difference")
    for kind in kinds:
        for dtype in (np.float32, np.float64):
            X = make_data(n, 16, 16, dtype)
            reference, ours = twin_models(X, 16, kind)
            case = f"{kind} {np.dtype(dtype).name}"
            for method, values in compare(reference, ours, X, args.repeats, args.pause).items():
                cpu_ratio = values["sklearn_cpu_s"] / max(values["mixtorch_cpu_s"], 1e-9)
                print(
                    f"{case:22s} {method:14s} {values['sklearn_s'] * 1e3:7.1f}ms "
                    f"{values['mixtorch_s'] * 1e3:7.1f}ms {values['ratio']:6.1f}x "
                    f"{TARGETS[kind]:6.0f}x {cpu_ratio:8.1f}x  {values['difference']:.2g}",
                    flush=True,
                )
                rows.append({"case": case, "method": method, **values})
    print(f"\nsmall batches (median of {args.batch_calls} calls back to back, best of 3 blocks)")
    print(
        f"{'case':16s} {'rows':>6s} {'method':14s} {'sklearn':>10s} {'mixtorch':>10s} {'ratio':>7s}"
    )
    for kind in ("full", "diag"):
        for dtype in (np.float32, np.float64):
            X = make_data(20_000, 16, 16, dtype)
            reference, ours = twin_models(X, 16, kind)
            case = f"{kind} {np.dtype(dtype).name}"
            found = small_batches(reference, ours, X, args.batch_calls)
            print_small(case, found)
            small += [{"case": case, **row} for row in found]
    if args.json:
        document = {"machine": machine, "n": n, "rows": rows, "small_batches": small}
        args.json.write_text(json.dumps(document, indent=2))


if __name__ == "__main__":
    main()

"""EM and k-means: mixtorch against scikit-learn, measured in the same run.

Usage::

    python benchmarks/bench_em.py            # every case (a few minutes on 2 cores)
    python benchmarks/bench_em.py --quick    # smaller N, for a smoke run

For each case both libraries start from the same parameters (``weights_init``,
``means_init``, ``precisions_init``) and run a forced number of iterations (``tol=0``).
Per-iteration time is measured inside each library's EM loop (scikit-learn's own
``verbose=2`` timing; a ``fit(callback=...)`` for mixtorch): the median over the
iterations after the first, best of 2 fits, libraries alternating.
The script also measures the dense float32 matmul rate, from which the arithmetic floor
of a full-covariance iteration (4*N*K*D^2 flops) is derived, and the peak resident memory
added by mixtorch's fit (Linux VmHWM).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import math
import re
import subprocess
import sys
import time
import warnings
from dataclasses import asdict, dataclass

import numpy as np
import torch
from _machine import describe, product_gflops, summary
from sklearn.cluster import KMeans
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from mixtorch import GaussianMixture
from mixtorch.fit.kmeans import kmeans

warnings.simplefilter("ignore", ConvergenceWarning)


@dataclass
class Row:
    case: str
    sklearn_s: float
    mixtorch_s: float
    speedup: float
    sklearn_ll: float
    mixtorch_ll: float
    note: str = ""


def make_data(
    n: int, d: int, k: int, dtype: np.dtype, seed: int = 0, spread: float = 3.0
) -> np.ndarray:
    """Blobs: centres ~ N(0, spread^2), per-cluster scales in [0.5, 1.5]."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0, spread, size=(k, d))
    scales = rng.uniform(0.5, 1.5, size=(k, 1))
    labels = rng.integers(0, k, n)
    return (centers[labels] + scales[labels] * rng.normal(size=(n, d))).astype(dtype)


def shared_start(X: np.ndarray, k: int, kind: str) -> dict:
    subset = X[:: max(1, len(X) // 20_000)]
    start = SkGaussianMixture(k, covariance_type=kind, max_iter=2, random_state=0).fit(subset)
    return dict(
        weights_init=start.weights_,
        means_init=start.means_,
        precisions_init=start.precisions_,
        init_params="random_from_data",
        tol=0.0,
        random_state=0,
    )


def _sklearn_iteration_times(model, X: np.ndarray) -> list[float]:
    """Fit with scikit-learn's own per-iteration timing (``verbose=2``) and parse it."""
    model.set_params(verbose=2, verbose_interval=1)
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        model.fit(X)
    return [float(found) for found in re.findall(r"time lapse ([0-9.]+)s", printed.getvalue())]


def _mixtorch_iteration_times(model, X: np.ndarray) -> list[float]:
    """Fit with a callback that stamps the end of every EM iteration."""
    stamps: list[float] = []
    model.fit(X, callback=lambda iteration, lower_bound: stamps.append(time.perf_counter()))
    return list(np.diff(stamps))


def per_iteration(X, k, kind, iterations: int, repeats: int = 2, **params) -> dict:
    """Per-iteration time of scikit-learn and mixtorch, timed inside each EM loop.

    scikit-learn reports the time of every iteration itself (``verbose=2``); mixtorch's
    iterations are stamped by a ``fit(callback=...)``. Each library's figure is the
    median over the iterations after the first, best of ``repeats`` fits; the libraries
    alternate, so load on a shared machine hits both alike, and set-up time (input
    checks, initial parameters) is never counted.

    Returns ``{name: (seconds per iteration, last model, peak extra bytes)}``; the peak is
    measured around mixtorch's fits only.
    """
    timers = {"sklearn": _sklearn_iteration_times, "mixtorch": _mixtorch_iteration_times}
    classes = {"sklearn": SkGaussianMixture, "mixtorch": GaussianMixture}
    best = {name: math.inf for name in classes}
    models: dict = {}
    peak = 0
    for _ in range(repeats):
        for name, cls in classes.items():
            model = cls(k, covariance_type=kind, max_iter=iterations, **params)
            # BLAS/OpenMP threads of the other library's run keep spinning for a while
            # after it returns; let them go idle first.
            time.sleep(0.3)
            baseline = reset_peak_memory()
            times = timers[name](model, X)
            if name == "mixtorch":
                peak = max(peak, peak_memory() - baseline)
            best[name] = min(best[name], float(np.median(times[1:])))
            models[name] = model
    return {name: (best[name], models[name], peak) for name in classes}


def reset_peak_memory() -> int:
    """Reset VmHWM (Linux) and return the current resident set in bytes."""
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return _status_kib("VmRSS") * 1024
    except OSError:
        return 0


def peak_memory() -> int:
    try:
        return _status_kib("VmHWM") * 1024
    except OSError:
        return 0


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise OSError(field)


def em_case(
    n: int, d: int, k: int, kind: str, dtype, iterations: int = 6, spread: float = 3.0
) -> tuple[Row, dict]:
    X = make_data(n, d, k, dtype, spread=spread)
    params = shared_start(X, k, kind)
    timings = per_iteration(X, k, kind, iterations, **params)
    sk_s, sk_model, _ = timings["sklearn"]
    ours_s, ours_model, extra = timings["mixtorch"]
    name = f"EM {kind} N={n} D={d} K={k} {np.dtype(dtype).name}"
    if spread != 3.0:
        name += f" spread={spread:g}"
    row = Row(
        name,
        sk_s,
        ours_s,
        sk_s / ours_s,
        float(sk_model.lower_bound_),
        float(ours_model.lower_bound_),
        f"E-step {type(ours_model.mixture_.e_step_kernel).__name__}",
    )
    memory = {
        "case": name,
        "data_mib": X.nbytes / 2**20,
        "peak_extra_mib": extra / 2**20,
        "peak_extra_fresh_process_mib": fresh_process_peak(n, d, k, kind, dtype, spread),
    }
    return row, memory


def fresh_process_peak(n: int, d: int, k: int, kind: str, dtype, spread: float = 3.0) -> float:
    """Peak resident memory added by a mixtorch fit, in a process of its own (MiB).

    In the benchmark's own process the figure also depends on what the allocator kept
    from earlier cases and from scikit-learn; in a fresh process it is the first fit's
    whole working set (including PyTorch's one-time buffers), which must not grow with N.
    """
    spec = json.dumps([n, d, k, kind, np.dtype(dtype).name, spread])
    onednn = [] if torch.backends.mkldnn.enabled else ["--no-onednn"]
    result = subprocess.run(
        [sys.executable, __file__, "--memory-case", spec, *onednn],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(result.stdout.strip().splitlines()[-1])


def _memory_case(spec: str) -> None:
    n, d, k, kind, dtype, spread = json.loads(spec)
    X = make_data(n, d, k, np.dtype(dtype), spread=spread)
    params = shared_start(X, k, kind)
    baseline = reset_peak_memory()
    GaussianMixture(k, covariance_type=kind, max_iter=4, **params).fit(X)
    print((peak_memory() - baseline) / 2**20)


def kmeans_case(n: int, d: int, k: int, dtype: type = np.float32, weighted: bool = False) -> Row:
    """k-means (k-means++ seeds, then Lloyd) against ``KMeans(n_init=1)``, best of 3 seeds;
    ``weighted`` passes uniform(0.5, 2) ``sample_weight`` to both."""
    X = make_data(n, d, k, dtype)
    weights = np.random.default_rng(1).uniform(0.5, 2.0, n) if weighted else None
    sk_s = math.inf
    for seed in range(3):
        start = time.perf_counter()
        reference = KMeans(k, n_init=1, random_state=seed).fit(X, sample_weight=weights)
        sk_s = min(sk_s, time.perf_counter() - start)
    tensor = torch.from_numpy(X)
    sample_weight = None if weights is None else torch.from_numpy(weights)
    ours_s = math.inf
    for seed in range(3):
        generator = torch.Generator().manual_seed(seed)
        start = time.perf_counter()
        ours = kmeans(tensor, k, generator, sample_weight=sample_weight)
        ours_s = min(ours_s, time.perf_counter() - start)
    note = f"inertia sklearn {reference.inertia_:.4g}, mixtorch {ours.inertia:.4g}"
    label = f"k-means init{' weighted' if weighted else ''} N={n} D={d} K={k}"
    return Row(f"{label} {np.dtype(dtype).name}", sk_s, ours_s, sk_s / ours_s, 0, 0, note)


def end_to_end_case(n: int, d: int, k: int, kind: str, repeats: int = 2) -> Row:
    X = make_data(n, d, k, np.float32)
    sk_s = ours_s = math.inf
    for _ in range(repeats):
        start = time.perf_counter()
        reference = SkGaussianMixture(k, covariance_type=kind, random_state=0).fit(X)
        sk_s = min(sk_s, time.perf_counter() - start)
        start = time.perf_counter()
        ours = GaussianMixture(k, covariance_type=kind, random_state=0).fit(X)
        ours_s = min(ours_s, time.perf_counter() - start)
    note = f"iterations sklearn {reference.n_iter_}, mixtorch {ours.n_iter_}"
    return Row(
        f"fit (default k-means init) {kind} N={n} D={d} K={k} float32",
        sk_s,
        ours_s,
        sk_s / ours_s,
        float(reference.lower_bound_),
        float(ours.lower_bound_),
        note,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller problems")
    parser.add_argument("--json", default=None, help="write the results to this file")
    parser.add_argument("--memory-case", default=None, help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-onednn",
        action="store_true",
        help="mixtorch's float32 products through torch.mm (MKL) instead of oneDNN",
    )
    args = parser.parse_args()
    if args.no_onednn:
        torch.backends.mkldnn.enabled = False
    if args.memory_case:  # after --no-onednn took effect
        _memory_case(args.memory_case)
        return
    scale = 10 if args.quick else 1
    n = 200_000 // scale
    machine = describe()
    print(summary(machine))
    # The floor takes the faster float32 product: oneDNN's where mixtorch uses it.
    rates = {
        "float32": max(machine["gflops"].values()),
        "float64": product_gflops(torch.float64, onednn=False),
    }
    print(f"dense matmul: {rates['float32']:.1f} GFLOP/s float32, {rates['float64']:.1f} float64")
    rows, memory = [], []
    for kind in ["full", "diag"]:
        for dtype in [np.float32, np.float64]:
            row, mem = em_case(n, 16, 16, kind, dtype)
            rows.append(row)
            memory.append(mem)
            print(row)
    # Components far apart relative to their size: the E-step takes explicit differences.
    row, mem = em_case(n, 16, 16, "full", np.float32, spread=30.0)
    rows.append(row)
    memory.append(mem)
    print(row)
    row, mem = em_case(1_000_000 // scale, 32, 64, "diag", np.float32, iterations=4)
    rows.append(row)
    memory.append(mem)
    print(row)
    for dtype in [np.float32, np.float64]:
        for weighted in [False, True]:
            rows.append(kmeans_case(n, 16, 16, dtype, weighted))
            print(rows[-1])
    rows.append(end_to_end_case(n, 16, 16, "full"))
    print(rows[-1])
    floor = {}
    for row in rows:
        if row.case.startswith("EM full"):
            dtype = row.case.split()[5]
            flops = 4 * n * 16 * 16**2
            floor[row.case] = {
                "floor_s": flops / (rates[dtype] * 1e9),
                "mixtorch_over_floor": row.mixtorch_s / (flops / (rates[dtype] * 1e9)),
            }
    print()
    print(f"{'case':58s} {'sklearn':>9s} {'mixtorch':>9s} {'ratio':>7s}  log-lik (sk / mt)")
    for row in rows:
        print(
            f"{row.case:58s} {row.sklearn_s:9.4f} {row.mixtorch_s:9.4f} {row.speedup:6.1f}x"
            f"  {row.sklearn_ll:.6f} / {row.mixtorch_ll:.6f} {row.note}"
        )
    print()
    for case, values in floor.items():
        print(
            f"{case}: floor {values['floor_s'] * 1e3:.1f} ms/iter, mixtorch at "
            f"{values['mixtorch_over_floor']:.1f}x the floor"
        )
    for mem in memory:
        print(
            f"{mem['case']}: data {mem['data_mib']:.0f} MiB, peak extra during mixtorch fit "
            f"{mem['peak_extra_mib']:.0f} MiB in this process, "
            f"{mem['peak_extra_fresh_process_mib']:.0f} MiB in a fresh one"
        )
    # Peak memory must follow the chunk, not N: the same model on 5x the rows.
    scaling = []
    for rows_n in (n, 5 * n):
        peak = fresh_process_peak(rows_n, 16, 16, "full", np.float32)
        data_mib = rows_n * 16 * 4 / 2**20
        scaling.append({"n": rows_n, "data_mib": data_mib, "peak_extra_mib": peak})
        print(f"full float32 N={rows_n}: data {data_mib:.0f} MiB, fit adds {peak:.0f} MiB")
    if args.json:
        with open(args.json, "w") as handle:
            payload = {"machine": machine, "matmul_gflops": rates}
            payload.update(rows=[asdict(r) for r in rows], floor=floor, memory=memory)
            payload.update(memory_scaling=scaling)
            json.dump(payload, handle, indent=2)


if __name__ == "__main__":
    main()

"""GPU: EM, exact KDE and k-means on one CUDA device, checked to stay on the device.

Usage::

    python benchmarks/bench_gpu.py                  # about 2-4 minutes on one device
    python benchmarks/bench_gpu.py --json gpu.json  # also write the figures
    python benchmarks/bench_gpu.py --quick          # 10x fewer rows, a smoke run

Without a CUDA device it prints a message and exits with status 0.

What it measures, all on ``cuda:0``:

* The device's dense matmul rate (float32 with TF32 off, as mixtorch leaves it; float64).
* EM per iteration (N=1M, D=16, K=16; full and diag; float32 and float64): median over
  the iterations after the first, best of 2 fits, against the arithmetic floor
  (4·N·K·D² flops for full, 4·N·K·D for diag, at the measured matmul rate) and against
  torchgmm on the same device when it is importable (the column says "skipped" otherwise).
* Exact KDE (100k x 100k, D=2 and D=8), k-means (k-means++ and Lloyd, N=1M, K=16), each
  with its peak device memory (``torch.cuda.max_memory_allocated``).

What it checks on the way (the script stops with an error if a check fails):

* **Nothing silently runs on the CPU.** Inputs are CUDA tensors; after every fit the
  fitted parameters (``weights_``, ``means_``, ``covariances_``) and every result
  (``score_samples``, ``predict``, ``predict_proba``, ``sample``, KDE densities, k-means
  centres) must be CUDA tensors.
* **No per-chunk host syncs.** Each EM fit runs under
  ``torch.cuda.set_sync_debug_mode("warn")``, which warns at every operation that makes
  the host wait for the device. The warnings are counted per iteration and the fit is
  repeated with 8x more chunks (a smaller ``chunk_size``): the count must not grow.
  Syncs an EM iteration makes by design, a fixed number whatever N: the log-likelihood
  read back for the convergence test, the Cholesky check of every M-step (a
  ``CovarianceError`` must name the component), the empty-component test, and the
  E-step's choice of formulation from the means' spread. A scoring pass syncs once, to
  look for overflowing rows.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from mixtorch import GaussianKDE, GaussianMixture
from mixtorch.fit.kmeans import kmeans

D, K = 16, 16


def make_data(n: int, d: int, k: int, dtype: torch.dtype, seed: int = 0) -> torch.Tensor:
    """Blobs on the device, as in ``bench_em.py`` (centres ~ N(0, 9), scales 0.5-1.5)."""
    generator = torch.Generator(device="cuda").manual_seed(seed)
    centers = 3.0 * torch.randn(k, d, generator=generator, device="cuda", dtype=dtype)
    scales = 0.5 + torch.rand(k, 1, generator=generator, device="cuda", dtype=dtype)
    labels = torch.randint(k, (n,), generator=generator, device="cuda")
    noise = torch.randn(n, d, generator=generator, device="cuda", dtype=dtype)
    return centers[labels] + scales[labels] * noise


def device_seconds(call: Callable[[], Any], repeats: int = 3) -> float:
    """Best wall time of ``call`` with the device synchronised around it."""
    best = float("inf")
    for _ in range(repeats):
        torch.cuda.synchronize()
        start = time.perf_counter()
        call()
        torch.cuda.synchronize()
        best = min(best, time.perf_counter() - start)
    return best


def matmul_flops(dtype: torch.dtype, size: int = 8192) -> float:
    a = torch.randn(size, size, device="cuda", dtype=dtype)
    b = torch.randn(size, size, device="cuda", dtype=dtype)
    a @ b
    return 2 * size**3 / device_seconds(lambda: a @ b, repeats=5)


def require_cuda(where: str, *values: Any) -> None:
    """Stop if any tensor in ``values`` is not on a CUDA device."""
    for value in values:
        if not (isinstance(value, torch.Tensor) and value.is_cuda):
            raise SystemExit(f"CHECK FAILED: {where} returned {type(value).__name__} off the GPU")


def check_fitted(model: GaussianMixture, X: torch.Tensor) -> None:
    require_cuda("fit", model.weights_, model.means_, model.covariances_)
    require_cuda("score_samples", model.score_samples(X[:1000]))
    require_cuda("predict / predict_proba", model.predict(X[:1000]), model.predict_proba(X[:1000]))
    require_cuda("sample", *model.sample(100))


def em_fit(X: torch.Tensor, kind: str, iterations: int, chunk_size: int | None) -> dict:
    """One timed fit under sync-debug mode: per-iteration seconds and syncs, peak memory."""
    model = GaussianMixture(
        K,
        covariance_type=kind,
        init_params="random_from_data",
        max_iter=iterations,
        tol=0.0,
        random_state=0,
        chunk_size=chunk_size,
    )
    stamps: list[float] = []
    syncs: list[int] = []
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        torch.cuda.set_sync_debug_mode("warn")
        try:

            def stamp(iteration: int, lower_bound: float) -> None:
                syncs.append(len(caught))
                torch.cuda.synchronize()
                stamps.append(time.perf_counter())

            model.fit(X, callback=stamp)
        finally:
            torch.cuda.set_sync_debug_mode("default")
    check_fitted(model, X)
    seconds = [b - a for a, b in zip(stamps, stamps[1:], strict=False)]
    per_iteration_syncs = [b - a for a, b in zip(syncs, syncs[1:], strict=False)]
    return {
        "seconds": statistics.median(seconds),
        "syncs": max(per_iteration_syncs),
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
        "lower_bound": float(model.lower_bound_),
    }


def torchgmm_seconds(X: torch.Tensor, kind: str, iterations: int) -> float | str:
    """torchgmm's time per EM epoch on the same device, or why it was skipped."""
    try:
        from torchgmm.bayes import GaussianMixture as TorchGMM
    except Exception as error:  # not installed, or an incompatible Lightning
        return f"skipped ({type(error).__name__})"
    times = {}
    for epochs in (2, 2 + iterations):
        model = TorchGMM(
            num_components=K,
            covariance_type=kind,
            init_strategy="random",
            convergence_tolerance=0.0,
            batch_size=X.shape[0],
            trainer_params={
                "max_epochs": epochs,
                "accelerator": "gpu",
                "devices": 1,
                "enable_progress_bar": False,
                "enable_model_summary": False,
                "logger": False,
            },
        )
        times[epochs] = device_seconds(lambda model=model: model.fit(X), repeats=1)
    return (times[2 + iterations] - times[2]) / iterations


def em_cases(n: int, rates: dict[str, float], iterations: int = 6) -> list[dict]:
    rows = []
    for kind in ("full", "diag"):
        for dtype in (torch.float32, torch.float64):
            X = make_data(n, D, K, dtype)
            require_cuda("make_data", X)
            runs = [em_fit(X, kind, iterations, None) for _ in range(2)]
            best = min(runs, key=lambda run: run["seconds"])
            many = em_fit(X, kind, 3, max(256, n // 512))  # ~8x more chunks
            if many["syncs"] > best["syncs"]:
                raise SystemExit(
                    f"CHECK FAILED: EM {kind} syncs grew with the chunk count "
                    f"({best['syncs']} -> {many['syncs']} per iteration)"
                )
            flops = 4 * n * K * (D * D if kind == "full" else D)
            name = str(dtype).removeprefix("torch.")
            peer = torchgmm_seconds(X, kind, iterations) if dtype == torch.float32 else "n/a"
            rows.append(
                {
                    "case": f"EM {kind} N={n} D={D} K={K} {name}",
                    "mixtorch_s": best["seconds"],
                    "floor_s": flops / rates[name],
                    "torchgmm_s": peer,
                    "syncs_per_iteration": best["syncs"],
                    "syncs_with_8x_chunks": many["syncs"],
                    "peak_mib": best["peak_mib"],
                }
            )
            print(rows[-1], flush=True)
            del X
    return rows


def kde_case(n: int, d: int, dtype: torch.dtype) -> dict:
    X = make_data(n, d, 8, dtype, seed=1)
    queries = make_data(n, d, 8, dtype, seed=2)
    torch.cuda.reset_peak_memory_stats()
    model = GaussianKDE(bandwidth="scott").fit(X)
    densities = model.score_samples(queries)
    require_cuda("GaussianKDE.score_samples", densities)
    seconds = device_seconds(lambda: model.score_samples(queries), repeats=2)
    return {
        "case": f"exact KDE {n} x {n} D={d} {str(dtype).removeprefix('torch.')}",
        "mixtorch_s": seconds,
        "kernel_evaluations_per_s": n * n / seconds,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
    }


def kmeans_case(n: int) -> dict:
    X = make_data(n, D, K, torch.float32)
    generator = torch.Generator(device="cuda").manual_seed(0)
    torch.cuda.reset_peak_memory_stats()
    result = kmeans(X, K, generator)
    require_cuda("kmeans", result.centers)
    seconds = device_seconds(lambda: kmeans(X, K, torch.Generator(device="cuda").manual_seed(0)))
    return {
        "case": f"k-means (k-means++ and Lloyd) N={n} D={D} K={K} float32",
        "mixtorch_s": seconds,
        "peak_mib": torch.cuda.max_memory_allocated() / 2**20,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="10x fewer rows")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("No CUDA device is available (torch.cuda.is_available() is False): nothing to do.")
        return 0
    torch.backends.cuda.matmul.allow_tf32 = False  # mixtorch's default; TF32 would flatter
    scale = 10 if args.quick else 1
    print(f"torch {torch.__version__} on {torch.cuda.get_device_name(0)}")
    rates = {"float32": matmul_flops(torch.float32), "float64": matmul_flops(torch.float64)}
    print(
        f"matmul: {rates['float32'] / 1e12:.1f} TFLOP/s float32, "
        f"{rates['float64'] / 1e12:.1f} float64"
    )
    rows = em_cases(1_000_000 // scale, rates)
    for d in (2, 8):
        for dtype in (torch.float32, torch.float64):
            rows.append(kde_case(100_000 // scale, d, dtype))
            print(rows[-1], flush=True)
    rows.append(kmeans_case(1_000_000 // scale))
    print(rows[-1], flush=True)
    print()
    for row in rows:
        extra = ""
        if "floor_s" in row:
            peer = row["torchgmm_s"]
            peer_text = f"{peer * 1e3:.2f} ms" if isinstance(peer, float) else peer
            extra = (
                f" ({row['mixtorch_s'] / row['floor_s']:.1f}x the floor; torchgmm {peer_text};"
                f" {row['syncs_per_iteration']} host syncs per iteration)"
            )
        print(
            f"{row['case']:52s} {row['mixtorch_s'] * 1e3:9.2f} ms, "
            f"peak {row['peak_mib']:.0f} MiB{extra}"
        )
    if args.json:
        args.json.write_text(json.dumps({"matmul_flops": rates, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Out-of-core EM: peak memory against file size, and time per pass.

Writes a float32 ``.npy`` file of ``--rows`` x ``--features`` (a mixture of Gaussians) to
a temporary directory with plain file writes, fits ``GaussianMixture`` from it through
:func:`mixtorch.sources.from_npy` with a small chunk budget, and reports how much the
process's peak resident memory (``VmHWM`` in ``/proc/self/status``) grew during the fit.
The file is deleted afterwards. Linux only (``/proc``).

    .venv/bin/python benchmarks/bench_streaming.py --rows 3000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import torch

from mixtorch import GaussianMixture
from mixtorch.sources import from_npy

MIB = 2**20


def memory_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def reset_peak() -> bool:
    """Reset VmHWM to the current RSS (Linux >= 4.0); False where not permitted."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def write_npy(path: Path, rows: int, features: int, components: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, 5.0, size=(components, features))
    scales = rng.uniform(0.5, 2.0, size=(components, features))
    header = {"descr": "<f4", "fortran_order": False, "shape": (rows, features)}
    with open(path, "wb") as handle:
        np.lib.format.write_array_header_2_0(handle, header)
        for start in range(0, rows, 100_000):
            count = min(100_000, rows - start)
            labels = rng.integers(0, components, count)
            block = centers[labels] + scales[labels] * rng.standard_normal((count, features))
            handle.write(block.astype("<f4").tobytes())


def measure(path: Path, model: GaussianMixture, chunk_rows: int) -> dict[str, float]:
    source = from_npy(path, chunk_size=chunk_rows)
    start = time.perf_counter()
    rows = sum(chunk.shape[0] for chunk in source())  # a bare read pass, for reference
    read_seconds = time.perf_counter() - start
    assert rows == source.n_samples
    baseline = memory_kib("VmRSS")
    exact_peak = reset_peak()
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a fixed number of passes: no convergence wanted
        model.fit(source)
    seconds = time.perf_counter() - start
    return {
        "growth_mib": (memory_kib("VmHWM") - baseline) / 1024,
        "exact_peak": float(exact_peak),
        "seconds": seconds,
        "read_seconds": read_seconds,
        "passes": float(model.n_iter_),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=3_000_000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--components", type=int, default=8)
    parser.add_argument("--covariance", default="diag")
    parser.add_argument("--chunk-rows", type=int, default=32_768)
    parser.add_argument("--passes", type=int, default=3)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument(
        "--case",
        choices=["given", "default", "both"],
        default="both",
        help="run one case per process for independent peaks (the allocator keeps memory)",
    )
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "data.npy"
        write_npy(path, args.rows, args.features, args.components, seed=0)
        size_mib = path.stat().st_size / MIB
        chunk_mib = args.chunk_rows * args.features * 4 / MIB
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads")
        print(
            f"file {size_mib:.0f} MiB ({args.rows} x {args.features} float32), "
            f"chunk {args.chunk_rows} rows = {chunk_mib:.1f} MiB"
        )
        K, D = args.components, args.features
        start = {  # a fixed start, so only EM passes run
            "weights_init": np.full(K, 1.0 / K),
            "means_init": np.random.default_rng(1).normal(0.0, 5.0, size=(K, D)),
        }
        cases = {
            "given": GaussianMixture(
                K,
                covariance_type=args.covariance,
                max_iter=args.passes,
                tol=0.0,
                chunk_size=args.chunk_rows,
                **start,
            ),
            "default": GaussianMixture(
                K,
                covariance_type=args.covariance,
                max_iter=args.passes,
                tol=0.0,
                chunk_size=args.chunk_rows,
                random_state=0,
            ),
        }
        for name, model in cases.items():
            if args.case not in (name, "both"):
                continue
            result = measure(path, model, args.chunk_rows)
            per_pass = result["seconds"] / result["passes"]
            print(
                f"{name}: peak RSS growth {result['growth_mib']:.1f} MiB "
                f"({100 * result['growth_mib'] / size_mib:.1f}% of the file; "
                f"exact peak reset: {bool(result['exact_peak'])}), "
                f"{result['seconds']:.2f} s total, {per_pass:.2f} s per EM pass "
                f"(upper bound for init runs), bare read pass {result['read_seconds']:.2f} s"
            )


if __name__ == "__main__":
    main()

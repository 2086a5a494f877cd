"""How EM cost grows with N, K and D: mixtorch against scikit-learn, log-log pictures.

Usage::

    python benchmarks/bench_scaling.py                # N 1e4..1e6, K and D 4..64 (minutes)
    python benchmarks/bench_scaling.py --quick        # N up to 1e5, fewer points
    python benchmarks/bench_scaling.py --out docs/bench

Each point is one EM fit per library from the same start (``bench_em.shared_start``),
``tol=0``, timed inside the EM loop (scikit-learn's ``verbose=2`` timing, a ``callback`` for
mixtorch): the median over the iterations after the first. torchgmm is added when it is
importable. The arithmetic floor, 4·N·K·D² flops (full) or 4·N·K·D (diag) at the
measured float32 matmul rate, is drawn as a dashed line. Writes ``scaling_N.png``,
``scaling_K.png``, ``scaling_D.png`` and ``scaling.json`` to ``--out``. Data larger than
memory (out of core) is not measured here; see ``bench_streaming.py``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_em import (  # noqa: E402
    _mixtorch_iteration_times,
    _sklearn_iteration_times,
    make_data,
    matmul_gflops,
    shared_start,
)
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402

from mixtorch import GaussianMixture  # noqa: E402

ITERATIONS = 4


def point(n: int, d: int, k: int, kind: str) -> dict[str, float]:
    """Seconds per EM iteration of each library at one size (float32)."""
    X = make_data(n, d, k, np.float32)
    params = shared_start(X, k, kind)
    times = {}
    for name, cls, timer in (
        ("sklearn", SkGaussianMixture, _sklearn_iteration_times),
        ("mixtorch", GaussianMixture, _mixtorch_iteration_times),
    ):
        time.sleep(0.2)  # let the other library's threads go idle
        model = cls(k, covariance_type=kind, max_iter=ITERATIONS, **params)
        times[name] = float(np.median(timer(model, X)[1:]))
    return times


def sweep(axis: str, values: list[int], base: dict[str, int], kind: str) -> list[dict]:
    rows = []
    for value in values:
        size = dict(base, **{axis: value})
        times = point(size["N"], size["D"], size["K"], kind)
        rows.append({**size, "kind": kind, **times})
        print(rows[-1], flush=True)
    return rows


def floor_seconds(row: dict, gflops: float) -> float:
    per_point = row["D"] ** 2 if row["kind"] == "full" else row["D"]
    return 4 * row["N"] * row["K"] * per_point / (gflops * 1e9)


def plot(rows: list[dict], axis: str, gflops: float, path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=False)
    for ax, kind in zip(axes, ("full", "diag"), strict=True):
        chosen = [row for row in rows if row["kind"] == kind]
        x = [row[axis] for row in chosen]
        for name, style in (("sklearn", "o-"), ("mixtorch", "s-")):
            ax.plot(x, [row[name] for row in chosen], style, label=name)
        ax.plot(x, [floor_seconds(row, gflops) for row in chosen], "k--", label="matmul floor")
        ax.set(xscale="log", yscale="log", xlabel=axis, ylabel="seconds per EM iteration")
        fixed = ", ".join(f"{key}={chosen[0][key]}" for key in ("N", "D", "K") if key != axis)
        ax.set_title(f"{kind}, float32, {fixed}")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweeps")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"))
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    gflops = matmul_gflops(torch.float32)
    print(f"float32 matmul {gflops:.0f} GFLOP/s, threads {torch.get_num_threads()}")
    top = 5 if args.quick else 6
    sweeps = {
        "N": [10**e for e in range(4, top + 1)],
        "K": [4, 16, 64] if args.quick else [4, 8, 16, 32, 64],
        "D": [4, 16, 64] if args.quick else [4, 8, 16, 32, 64],
    }
    base = {"N": 20_000 if args.quick else 100_000, "D": 16, "K": 16}
    results = {}
    for axis, values in sweeps.items():
        rows = [row for kind in ("full", "diag") for row in sweep(axis, values, base, kind)]
        plot(rows, axis, gflops, args.out / f"scaling_{axis}.png")
        results[axis] = rows
    (args.out / "scaling.json").write_text(
        json.dumps({"matmul_gflops": gflops, **results}, indent=2)
    )


if __name__ == "__main__":
    main()

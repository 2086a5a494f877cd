"""How cost grows: EM against N, K and D; KDE against N. Log-log pictures with floors.

Usage::

    python benchmarks/bench_scaling.py                 # everything (about 20 minutes)
    python benchmarks/bench_scaling.py --quick         # smaller sweeps (a few minutes)
    python benchmarks/bench_scaling.py --part em       # or kde
    python benchmarks/bench_scaling.py --out docs/bench

**What is measured.** Every library runs on **one thread** (torch, and the BLAS/OpenMP
pools of NumPy/SciPy/scikit-learn through threadpoolctl), and every figure is **CPU
seconds** of this process. On a shared machine other jobs preempt a process, which
inflates wall time but not the CPU time the work took, so the curves show the algorithms
rather than the machine's load; multiply by the parallel speed-up for wall time on idle
cores (about 1.6-1.9x on two cores, see docs/benchmarks.md).

* **EM per iteration** (float32; mixtorch, scikit-learn, torchgmm when importable): each
  library fits from the same start (``bench_em.shared_start``) with ``tol=0`` for
  ``2 + m`` and for 2 iterations (torchgmm: epochs), and the difference divided by ``m``
  is one iteration, so input checks and set-up do not count. N runs 10^4 .. 10^7; at the
  largest N mixtorch also fits **out of core**, from a ``.npy`` file read through a memory
  map one window at a time (``mixtorch.sources.from_npy``), resident memory bounded by
  one chunk. Peers stop at ``--peer-max-n`` (default 10^6; their in-memory fits at 10^7
  take minutes per point). The floor (dashed) is the arithmetic of the two matrix products
  an iteration cannot avoid, ``4·N·K·P`` flops with ``P = D(D+1)/2 + D`` (full: pairwise
  products and the row) or ``P = 2D`` (diag), at this machine's measured one-thread
  float32 matrix-product rate.
* **Exact KDE** (D=2, float64; N training = N query points; mixtorch ``GaussianKDE``,
  SciPy ``gaussian_kde.logpdf``, scikit-learn ``KernelDensity(rtol=0, atol=0)`` at the
  same scalar bandwidth). Floor: N^2 ``exp`` evaluations at the measured one-thread
  ``torch.exp`` rate.
* **Binned KDE** (1-D, float64, N up to 10^7 points, density on KDEpy's own 4096-node
  grid, Scott bandwidth; mixtorch ``GaussianKDE(algorithm="fft")`` fit + ``evaluate_grid``,
  KDEpy ``FFTKDE`` fit + ``evaluate``). Floor: one pass over the data (``torch.sum``).

Writes ``scaling_N.png``, ``scaling_K.png``, ``scaling_D.png``, ``scaling_kde.png`` and
``scaling.json`` to ``--out``.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_em import make_data, shared_start  # noqa: E402
from scipy import stats  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SkGaussianMixture  # noqa: E402
from sklearn.neighbors import KernelDensity  # noqa: E402
from threadpoolctl import threadpool_limits  # noqa: E402

from mixtorch import GaussianKDE, GaussianMixture, sources  # noqa: E402

warnings.simplefilter("ignore", ConvergenceWarning)
warnings.simplefilter("ignore", UserWarning)  # Lightning's advice about workers
warnings.simplefilter("ignore", DeprecationWarning)
for _name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)
EXTRA_ITERATIONS = 3
STYLES = {
    "mixtorch": "s-",
    "mixtorch out of core": "D",
    "sklearn": "o-",
    "torchgmm": "^-",
    "scipy": "o-",
    "KDEpy": "^-",
}


def cpu_seconds(call: Callable[[], Any], repeats: int = 1) -> float:
    """Least CPU time of ``repeats`` calls (one thread: the work itself)."""
    best = math.inf
    for _ in range(repeats):
        start = time.process_time()
        call()
        best = min(best, time.process_time() - start)
    return best


def matmul_rate() -> float:
    """One-thread float32 matrix-product rate, flop per CPU second."""
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    a @ b
    return 2 * 1024**3 / cpu_seconds(lambda: a @ b, 5)


def exp_rate() -> float:
    """One-thread float64 ``torch.exp`` rate, evaluations per CPU second."""
    x = -torch.rand(2**18, dtype=torch.float64)
    out = torch.empty_like(x)
    return 2**18 * 20 / cpu_seconds(lambda: [torch.exp(x, out=out) for _ in range(20)], 5)


# ----------------------------------------------------------------------------- EM


def _torchgmm(k: int, kind: str, means: np.ndarray) -> Callable[[np.ndarray, int], Any] | None:
    try:
        from torchgmm.bayes import GaussianMixture as TorchGMM
    except Exception:  # not installed, or an incompatible Lightning
        return None

    def fit(X: np.ndarray, iterations: int) -> Any:
        trainer = {"max_epochs": iterations, "accelerator": "cpu", "devices": 1}
        trainer |= {"enable_progress_bar": False, "enable_model_summary": False}
        model = TorchGMM(
            num_components=k,
            covariance_type=kind,
            init_means=torch.as_tensor(means, dtype=torch.float32),
            convergence_tolerance=0.0,
            batch_size=len(X),
            trainer_params={**trainer, "logger": False, "enable_checkpointing": False},
        )
        return model.fit(torch.from_numpy(X))

    return fit


def em_point(n: int, d: int, k: int, kind: str, peer_max_n: int, folder: Path) -> dict:
    """CPU seconds per EM iteration of each library at one size."""
    X = make_data(n, d, k, np.float32)
    start = shared_start(X[: min(n, 200_000)], k, kind)
    fits: dict[str, Callable[[int], Any]] = {
        "mixtorch": lambda m: GaussianMixture(k, covariance_type=kind, max_iter=m, **start).fit(X)
    }
    if n >= 10**7:
        path = folder / "scaling.npy"
        np.save(path, X)
        source = sources.from_npy(path)
        fits["mixtorch out of core"] = lambda m: GaussianMixture(
            k, covariance_type=kind, max_iter=m, **start
        ).fit(source)
    if n <= peer_max_n:
        fits["sklearn"] = lambda m: SkGaussianMixture(
            k, covariance_type=kind, max_iter=m, **start
        ).fit(X)
        peer = _torchgmm(k, kind, start["means_init"])
        if peer is not None:
            fits["torchgmm"] = lambda m: peer(X, m)
    row: dict[str, Any] = {"N": n, "D": d, "K": k, "kind": kind}
    repeats = 3 if n * k * d <= 3 * 10**7 else 1  # small fits: a difference of noisy times
    for name, fit in fits.items():
        base = cpu_seconds(lambda fit=fit: fit(2), repeats)
        longer = cpu_seconds(lambda fit=fit: fit(2 + EXTRA_ITERATIONS), repeats)
        row[name] = max(longer - base, 0.0) / EXTRA_ITERATIONS
    print(row, flush=True)
    return row


def block_size(row: dict) -> int:
    d = row["D"]
    return d * (d + 1) // 2 + d if row["kind"] == "full" else 2 * d


def em_floor(row: dict, rate: float) -> float:
    return 4 * row["N"] * row["K"] * block_size(row) / rate


def plot_em(rows: list[dict], axis: str, rate: float, path: Path) -> None:
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, kind in zip(axes, ("full", "diag"), strict=True):
        chosen = [row for row in rows if row["kind"] == kind]
        for name in ("mixtorch", "mixtorch out of core", "sklearn", "torchgmm"):
            points = [(row[axis], row[name]) for row in chosen if name in row]
            if points:
                ax.plot(*zip(*points, strict=True), STYLES[name], label=name)
        floor = [(row[axis], em_floor(row, rate)) for row in chosen]
        ax.plot(*zip(*floor, strict=True), "k--", label="matmul floor")
        fixed = ", ".join(f"{key}={chosen[0][key]:,}" for key in ("N", "D", "K") if key != axis)
        ax.set(xscale="log", yscale="log", xlabel=axis, ylabel="CPU seconds per EM iteration")
        ax.set_title(f"{kind} covariances, float32, {fixed}, one thread")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def em_part(args: argparse.Namespace, rate: float) -> dict:
    top = 5 if args.quick else 7
    sweeps = {
        "N": [10**e for e in range(4, top + 1)],
        "K": [4, 16, 64] if args.quick else [4, 8, 16, 32, 64],
        "D": [4, 16, 64] if args.quick else [4, 8, 16, 32, 64],
    }
    base = {"N": 20_000 if args.quick else 100_000, "D": 16, "K": 16}
    results = {}
    with tempfile.TemporaryDirectory() as folder:
        for axis, values in sweeps.items():
            rows = []
            for kind in ("full", "diag"):
                for value in values:
                    size = dict(base, **{axis: value})
                    rows.append(
                        em_point(
                            size["N"], size["D"], size["K"], kind, args.peer_max_n, Path(folder)
                        )
                    )
            plot_em(rows, axis, rate, args.out / f"scaling_{axis}.png")
            results[axis] = rows
    return results


# ---------------------------------------------------------------------------- KDE


def kde_exact_point(n: int, sklearn_max_n: int) -> dict:
    rng = np.random.default_rng(n)
    X, queries = rng.normal(size=(n, 2)), rng.normal(size=(n, 2))
    h = float(n ** (-1 / 6))  # Scott's factor for D=2, unit variances
    row: dict[str, Any] = {"N": n}
    row["mixtorch"] = cpu_seconds(lambda: GaussianKDE(h).fit(X).score_samples(queries), 2)
    row["scipy"] = cpu_seconds(lambda: stats.gaussian_kde(X.T, h).logpdf(queries.T))
    if n <= sklearn_max_n:
        sk = KernelDensity(bandwidth=h, rtol=0.0, atol=0.0)
        row["sklearn"] = cpu_seconds(lambda: sk.fit(X).score_samples(queries))
    print(row, flush=True)
    return row


def kde_binned_point(n: int) -> dict:
    rng = np.random.default_rng(n)
    X = rng.normal(size=(n, 1))
    h = float(1.06 * n ** (-1 / 5))  # Scott's rule, unit variance
    row: dict[str, Any] = {"N": n}
    try:
        from KDEpy import FFTKDE
    except ImportError:
        FFTKDE = None
    grid = None
    if FFTKDE is not None:
        grid, _ = FFTKDE(bw=h).fit(X[:, 0]).evaluate(4096)
        row["KDEpy"] = cpu_seconds(lambda: FFTKDE(bw=h).fit(X[:, 0]).evaluate(4096), 3)
    if grid is None:
        grid = np.linspace(X.min() - 5 * h, X.max() + 5 * h, 4096)
    nodes = grid.reshape(-1, 1)
    row["mixtorch"] = cpu_seconds(
        lambda: GaussianKDE(h, algorithm="fft").fit(X).evaluate_grid(nodes), 3
    )
    data = torch.from_numpy(X)
    row["floor"] = cpu_seconds(lambda: data.sum(), 5)
    print(row, flush=True)
    return row


def plot_kde(exact: list[dict], binned: list[dict], rate: float, path: Path) -> None:
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name in ("mixtorch", "scipy", "sklearn"):
        points = [(row["N"], row[name]) for row in exact if name in row]
        left.plot(*zip(*points, strict=True), STYLES[name], label=name)
    floor = [(row["N"], row["N"] ** 2 / rate) for row in exact]
    left.plot(*zip(*floor, strict=True), "k--", label="exp floor (N^2 exp)")
    left.set_title("exact KDE, D=2, float64, N train = N query, one thread")
    for name in ("mixtorch", "KDEpy"):
        points = [(row["N"], row[name]) for row in binned if name in row]
        if points:
            right.plot(*zip(*points, strict=True), STYLES[name], label=name)
    floor = [(row["N"], row["floor"]) for row in binned]
    right.plot(*zip(*floor, strict=True), "k--", label="one pass over the data")
    right.set_title("binned KDE, 1-D, 4096-node grid, fit + evaluate, one thread")
    for ax in (left, right):
        ax.set(xscale="log", yscale="log", xlabel="N", ylabel="CPU seconds")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def kde_part(args: argparse.Namespace, rate: float) -> dict:
    exact_sizes = [1_000, 3_000, 10_000] if args.quick else [1_000, 3_000, 10_000, 30_000]
    top = 6 if args.quick else 7
    exact = [kde_exact_point(n, sklearn_max_n=10_000) for n in exact_sizes]
    binned = [kde_binned_point(10**e) for e in range(4, top + 1)]
    plot_kde(exact, binned, rate, args.out / "scaling_kde.png")
    return {"exact": exact, "binned": binned}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller sweeps")
    parser.add_argument("--part", choices=("em", "kde", "all"), default="all")
    parser.add_argument("--peer-max-n", type=float, default=1e6, help="largest N for peers")
    parser.add_argument("--out", type=Path, default=Path("docs/bench"))
    args = parser.parse_args()
    args.peer_max_n = int(args.peer_max_n)
    args.out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)
    path = args.out / "scaling.json"
    results = json.loads(path.read_text()) if path.exists() else {}
    with threadpool_limits(1):
        rate, exps = matmul_rate(), exp_rate()
        print(f"one thread: float32 matmul {rate / 1e9:.0f} GFLOP/s, exp {exps / 1e9:.2f} G/s")
        results |= {"matmul_flops": rate, "exp_rate": exps, "torch": torch.__version__}
        if args.part in ("em", "all"):
            results["em"] = em_part(args, rate)
        if args.part in ("kde", "all"):
            results["kde"] = kde_part(args, exps)
    path.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()

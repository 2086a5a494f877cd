"""EM with missing entries: per-iteration time of the batched E-step against the
per-pattern one it replaced, and against complete-data EM on the same rows.

Usage::

    python benchmarks/bench_missing_em.py            # every case (several minutes on 2 cores)
    python benchmarks/bench_missing_em.py --quick    # the small cases only

Each case draws clustered rows, removes entries at random, and runs EM from the same
start (``tol=0``, a fixed number of iterations) four ways, alternating within each
repeat so that load on a shared machine hits all alike:

- ``before``: the per-pattern E-step (``_missing_pass(batched=False)``, the code this
  replaced: rows grouped by ``torch.unique`` in every pass, each pattern conditioned with
  its own dozens of small operations);
- ``after``: :func:`~mixtorch.fit.missing.missing_statistics`, patterns batched and their
  grouping kept across iterations (its first iteration, which groups, is left out of the
  per-iteration figure and printed on its own);
- ``complete``: mixtorch's complete-data EM on the same rows before the entries were
  removed, and ``sklearn``: scikit-learn's ``GaussianMixture`` on them (per-iteration
  times from its ``verbose=2`` output).

scikit-learn has no EM for missing entries, so the peer ratio is ``after / sklearn``:
what exact EM on incomplete rows costs against the common complete-data EM on as many
rows (which does less: no conditional means or covariances). ``after / complete`` is the
same against mixtorch's own complete-data E-step. Figures are per iteration (E-step and
M-step), in milliseconds: the best and the median over repeats of each repeat's median
iteration. The machine line says what they were measured on.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _machine import describe, summary
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from mixtorch import GaussianMixture, Mixture
from mixtorch._chunks import chunk_list, chunk_rows
from mixtorch.fit.em import fit_em
from mixtorch.fit.missing import _missing_pass, missing_statistics
from mixtorch.stats import accumulate_statistics

warnings.simplefilter("ignore", ConvergenceWarning)


@dataclass
class Case:
    n: int
    d: int
    k: int
    kind: str
    missing: float
    iterations: int
    repeats: int
    before: bool = True  # the per-pattern path takes minutes per iteration on big cases

    def __str__(self) -> str:
        return f"{self.n}x{self.d} K={self.k} {self.kind} {self.missing:.0%} missing"


QUICK = [
    Case(600, 4, 3, "full", 0.1, 12, 7),
    Case(600, 4, 3, "diag", 0.1, 12, 7),
    Case(5_000, 8, 4, "full", 0.2, 4, 3),
]
FULL = QUICK + [
    Case(10_000, 16, 8, "full", 0.1, 3, 2),
    Case(100_000, 16, 8, "full", 0.1, 4, 3, before=False),
    Case(100_000, 16, 8, "diag", 0.1, 4, 3, before=False),
]


def clustered(case: Case, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Complete rows and a copy with ``case.missing`` of the entries removed at random."""
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(case.k, case.d))
    mixing = rng.normal(size=(case.d, case.d)) / np.sqrt(case.d) + np.eye(case.d)
    X = centres[rng.integers(0, case.k, case.n)] + rng.normal(size=(case.n, case.d)) @ mixing
    holes = X.copy()
    holes[rng.random(X.shape) < case.missing] = np.nan
    return X, holes


def em_iteration_seconds(
    X: torch.Tensor, start: Mixture, iterations: int, statistics: Callable
) -> list[float]:
    """Seconds of each EM iteration from ``start`` (chunked as an in-memory fit is)."""
    rows = chunk_rows(start.n_components, start.n_features, None, type(start.covariance))
    chunks = chunk_list(X, rows)
    stamps = [time.perf_counter()]
    fit_em(
        lambda: chunks,
        start,
        tol=0.0,
        max_iter=iterations,
        statistics=statistics,
        callback=lambda *_: stamps.append(time.perf_counter()),
    )
    return list(np.diff(stamps))


def sklearn_iteration_seconds(X: np.ndarray, start: Mixture, case: Case) -> list[float]:
    """scikit-learn's own per-iteration times (``verbose=2``) from the same start."""
    precisions = start.covariance.precisions().double().numpy()
    model = SkGaussianMixture(
        case.k,
        covariance_type=case.kind,
        weights_init=start.weights.double().numpy(),
        means_init=start.means.double().numpy(),
        precisions_init=precisions,
        max_iter=case.iterations,
        tol=0.0,
        verbose=2,
        verbose_interval=1,
    )
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        model.fit(X)
    return [float(found) for found in re.findall(r"time lapse ([0-9.]+)s", printed.getvalue())]


def run(case: Case) -> dict[str, list[float]]:
    """Each repeat's median iteration (seconds) for every way, and the first iterations
    of ``after`` (grouping included)."""
    X, holes = clustered(case)
    model = GaussianMixture(case.k, covariance_type=case.kind, max_iter=1, tol=0, random_state=0)
    start = model.fit(X[: min(len(X), 2000)]).mixture_
    complete, incomplete = torch.as_tensor(X), torch.as_tensor(holes)
    ways: dict[str, Callable[[], list[float]]] = {
        "after": lambda: em_iteration_seconds(
            incomplete, start, case.iterations, missing_statistics
        ),
        "complete": lambda: em_iteration_seconds(
            complete, start, case.iterations, accumulate_statistics
        ),
        "sklearn": lambda: sklearn_iteration_seconds(X, start, case),
    }
    if case.before:
        per_pattern = functools.partial(_missing_pass, batched=False)
        ways["before"] = lambda: em_iteration_seconds(
            incomplete, start, case.iterations, per_pattern
        )
    medians: dict[str, list[float]] = {name: [] for name in [*ways, "after_first"]}
    for _ in range(case.repeats):
        for name, way in ways.items():
            time.sleep(0.2)  # let the other library's threads go idle
            seconds = way()
            if name == "after":
                medians["after_first"].append(seconds[0])
                seconds = seconds[1:]
            medians[name].append(float(np.median(seconds)))
    return medians


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small cases only")
    args = parser.parse_args()
    print(summary(describe()))
    print("ms per EM iteration, best / median of repeats")
    header = (
        f"{'case':<34} {'before':>15} {'after':>13} {'speedup':>8} {'1st after':>10} "
        f"{'complete':>13} {'sklearn':>13} {'after/compl':>11} {'after/skl':>9}"
    )
    print(header)
    for case in QUICK if args.quick else FULL:
        medians = run(case)

        def figure(name: str, medians: dict[str, list[float]] = medians) -> str:
            if not medians.get(name):
                return "skipped"
            values = np.array(medians[name]) * 1e3
            return f"{values.min():.2f}/{np.median(values):.2f}"

        after = float(np.median(medians["after"]))
        complete = float(np.median(medians["complete"]))
        sklearn = float(np.median(medians["sklearn"]))
        speedup = f"{np.median(medians['before']) / after:.1f}x" if case.before else "-"
        print(
            f"{case!s:<34} {figure('before'):>15} {figure('after'):>13} "
            f"{speedup:>8} {np.median(medians['after_first']) * 1e3:>10.2f} "
            f"{figure('complete'):>13} {figure('sklearn'):>13} "
            f"{after / complete:>10.1f}x {after / sklearn:>8.1f}x"
        )


if __name__ == "__main__":
    main()

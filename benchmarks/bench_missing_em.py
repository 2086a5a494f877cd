"""EM with missing entries: per-iteration time of the batched E-step against the
per-pattern one it replaced, and against complete-data EM on the same rows; then the
time of ``predict`` and ``score_samples`` on rows with missing entries.

Usage::

    python benchmarks/bench_missing_em.py            # every case (several minutes on 2 cores)
    python benchmarks/bench_missing_em.py --quick    # the small cases only
    python benchmarks/bench_missing_em.py --scoring  # the scoring cases only (add --quick)

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

Scoring cases fit a mixture with ``missing_values=np.nan`` on the first rows, then time
``predict`` and ``score_samples`` on all rows (NaN included), alternating within each
repeat:

- ``before``: the estimator with the per-pattern scoring it had before
  (:func:`per_pattern_log_prob`, one ``Mixture.marginal`` per pattern of missing entries);
- ``after``: the estimator as it is (patterns batched as in the E-step);
- ``complete``: the same estimator on the rows before the entries were removed;
- ``sklearn``: scikit-learn has no scoring over observed entries, so the peer is what its
  users do: ``IterativeImputer.transform`` then ``GaussianMixture.predict`` or
  ``score_samples`` (both fitted beforehand, like the mixture; a different and cheaper
  computation: one imputed point per row instead of every component's marginal).

Figures are seconds, best / median of repeats, and the largest difference between the
``before`` and ``after`` log-densities.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import io
import re
import time
import unittest.mock
import warnings
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
from _machine import describe, summary
from sklearn.exceptions import ConvergenceWarning
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import mixtorch._base
from mixtorch import GaussianMixture, Mixture
from mixtorch._chunks import chunk_list, chunk_rows
from mixtorch.fit.em import fit_em
from mixtorch.fit.missing import _missing_pass, missing_statistics, patterns
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


@dataclass
class ScoreCase:
    n: int
    d: int
    k: int
    kind: str
    missing: float
    repeats: int
    before_repeats: int  # the per-pattern path takes 5-40 s per call at 100k rows

    def __str__(self) -> str:
        return f"{self.n}x{self.d} K={self.k} {self.kind} {self.missing:.0%} missing"


SCORE_QUICK = [ScoreCase(10_000, 16, 8, "full", 0.1, 3, 2)]
SCORE_FULL = SCORE_QUICK + [
    ScoreCase(100_000, 16, 8, "full", 0.1, 5, 2),
    ScoreCase(100_000, 16, 8, "diag", 0.1, 5, 2),
]


def clustered(case: Case | ScoreCase, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
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


def per_pattern_log_prob(mixture: Mixture, X: torch.Tensor) -> torch.Tensor:
    """The scoring over observed entries before it was batched: one pattern at a time."""
    X = X.to(mixture.dtype)
    result = torch.empty(X.shape[0], mixture.n_components, dtype=X.dtype, device=X.device)
    unique, inverse = patterns(X)
    for index, pattern in enumerate(unique):
        rows = torch.nonzero(inverse == index).flatten()
        given = torch.nonzero(pattern).flatten().cpu()
        if given.numel() == mixture.n_features:
            result[rows] = mixture.weighted_log_prob(X[rows])
        elif given.numel() == 0:
            result[rows] = mixture.log_weights
        else:
            observed = X[rows][:, given.to(X.device)]
            result[rows] = mixture.marginal(given).weighted_log_prob(observed)
    return result


def score_run(case: ScoreCase) -> tuple[dict[str, list[float]], float]:
    """Seconds of each repeat for every way and operation (``after predict``, ...), and
    the largest difference of the before and after log-densities."""
    X, holes = clustered(case)
    first = holes[: min(case.n, 5000)]
    settings = {"covariance_type": case.kind, "max_iter": 5, "tol": 0, "random_state": 0}
    model = GaussianMixture(case.k, missing_values=np.nan, **settings).fit(first)
    imputer = IterativeImputer(random_state=0).fit(holes[: min(case.n, 20_000)])
    peer = SkGaussianMixture(case.k, **settings).fit(imputer.transform(first))
    old = unittest.mock.patch.object(
        mixtorch._base, "observed_weighted_log_prob", per_pattern_log_prob
    )
    ways: dict[str, Callable[[str], object]] = {
        "after": lambda op: getattr(model, op)(holes),
        "complete": lambda op: getattr(model, op)(X),
        "sklearn": lambda op: getattr(peer, op)(imputer.transform(holes)),
    }

    def before(op: str) -> object:
        with old:
            return getattr(model, op)(holes)

    ways["before"] = before
    model.predict(holes[:100])  # the first call loads kernels
    seconds: dict[str, list[float]] = {}
    for repeat in range(case.repeats):
        for name, way in ways.items():
            if name == "before" and repeat >= case.before_repeats:
                continue
            for op in ("predict", "score_samples"):
                time.sleep(0.2)
                start = time.perf_counter()
                way(op)
                seconds.setdefault(f"{name} {op}", []).append(time.perf_counter() - start)
    difference = np.abs(before("score_samples") - model.score_samples(holes)).max()
    return seconds, float(difference)


def main_scoring(cases: list[ScoreCase]) -> None:
    print("seconds per call on all rows, best / median of repeats")
    print(
        f"{'case':<34} {'call':<14} {'before':>13} {'after':>13} {'speedup':>8} "
        f"{'complete':>13} {'impute+skl':>13} {'after/skl':>9}"
    )
    for case in cases:
        seconds, difference = score_run(case)
        for op in ("predict", "score_samples"):

            def figure(name: str, op: str = op, seconds: dict = seconds) -> str:
                values = np.array(seconds[f"{name} {op}"])
                return f"{values.min():.3f}/{np.median(values):.3f}"

            after = float(np.median(seconds[f"after {op}"]))
            before = float(np.median(seconds[f"before {op}"]))
            sklearn = float(np.median(seconds[f"sklearn {op}"]))
            print(
                f"{case!s:<34} {op:<14} {figure('before'):>13} {figure('after'):>13} "
                f"{before / after:>7.0f}x {figure('complete'):>13} {figure('sklearn'):>13} "
                f"{after / sklearn:>8.1f}x"
            )
        print(f"{'':<34} largest |before - after| log-density: {difference:.1e}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small cases only")
    parser.add_argument("--scoring", action="store_true", help="the scoring cases only")
    args = parser.parse_args()
    print(summary(describe()))
    if args.scoring:
        main_scoring(SCORE_QUICK if args.quick else SCORE_FULL)
        return
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
    main_scoring(SCORE_QUICK if args.quick else SCORE_FULL)


if __name__ == "__main__":
    main()

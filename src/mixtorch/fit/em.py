"""Expectation-maximisation for Gaussian mixtures, as a pure function on tensors.

The fitter takes a re-iterable source of chunks and an initial :class:`~mixtorch.Mixture`
and returns the fitted mixture plus an :class:`EMTrace`. It never touches estimator state.
Statistics are summed across ``torch.distributed`` ranks when a process group is
initialised, so the same loop serves in-memory, chunked and distributed fits.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch

from ..covariance import Covariance
from ..mixture import Mixture
from ..stats import SufficientStatistics, accumulate_statistics

__all__ = ["FIXABLE", "EMTrace", "ChunkSource", "fit_em", "m_step", "reseed_empty_components"]

#: The parameter groups EM can hold fixed.
FIXABLE = ("weights", "means", "covariances")

#: A callable returning a fresh iterator over chunks (tensors or (tensor, weight) pairs).
ChunkSource = Callable[[], Iterable]


@dataclass
class EMTrace:
    """What happened during one EM run.

    Attributes
    ----------
    lower_bounds : list of float
        Mean log-likelihood per sample at each iteration (under the parameters the
        iteration started from), as scikit-learn's ``lower_bounds_``.
    n_iter : int
    converged : bool
    reseeded : int
        How many times an empty component was re-seeded.
    seconds : float
    """

    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    reseeded: int = 0
    seconds: float = 0.0

    @property
    def lower_bound(self) -> float:
        return self.lower_bounds[-1] if self.lower_bounds else -math.inf


def fit_em(
    chunks: ChunkSource,
    initial: Mixture,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    reg_covar: float = 1e-6,
    previous_lower_bound: float = -math.inf,
    callback: Callable[[int, float, float], None] | None = None,
    statistics: Callable[[Mixture, Iterable], SufficientStatistics] = accumulate_statistics,
    fixed: Iterable[str] = (),
) -> tuple[Mixture, EMTrace]:
    """Run EM from ``initial`` until the mean log-likelihood changes by less than ``tol``.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (each a tensor of shape (n_i, D), or a
        ``(chunk, sample_weight)`` pair) every time it is called.
    initial : Mixture
    tol : float
        Convergence threshold on the change of the mean log-likelihood per sample.
    max_iter : int
    reg_covar : float
        Added to the diagonal of every covariance.
    previous_lower_bound : float
        Starting value for the change test (the last bound, when warm-starting).
    callback : callable, optional
        Called as ``callback(iteration, lower_bound, change)`` after every iteration.
    statistics : callable, optional
        The E-step pass, ``statistics(mixture, chunks) -> SufficientStatistics``; by
        default :func:`~mixtorch.stats.accumulate_statistics` (complete data), or
        :func:`~mixtorch.fit.missing.missing_statistics` for rows with missing entries.
    fixed : iterable of {'weights', 'means', 'covariances'}
        Parameter groups kept at their values in ``initial``; the others get their
        maximum-likelihood update given the fixed ones (see :func:`m_step`). Empty
        components are not re-seeded when anything is fixed.

    Returns
    -------
    mixture : Mixture
    trace : EMTrace
    """
    start = time.perf_counter()
    covariance_type: type[Covariance] = type(initial.covariance)
    held = frozenset(fixed)
    if not held <= set(FIXABLE):
        raise ValueError(f"fixed may only name {FIXABLE}, got {sorted(held)}.")
    trace = EMTrace()
    mixture = initial
    lower_bound = previous_lower_bound
    for iteration in range(1, max_iter + 1):
        stats = statistics(mixture, chunks()).all_reduce()
        new_lower_bound = _checked_lower_bound(stats, iteration)
        if held:
            mixture, n_reseeded = m_step(stats, initial, reg_covar, held), 0
        else:
            updated = stats.m_step(covariance_type, reg_covar, mixture.dtype)
            mixture, n_reseeded = reseed_empty_components(updated, stats, covariance_type)
        trace.reseeded += n_reseeded
        change = new_lower_bound - lower_bound
        lower_bound = new_lower_bound
        trace.lower_bounds.append(lower_bound)
        trace.n_iter = iteration
        if callback is not None:
            callback(iteration, lower_bound, change)
        if abs(change) < tol and n_reseeded == 0:
            trace.converged = True
            break
    trace.seconds = time.perf_counter() - start
    return mixture, trace


def m_step(
    stats: SufficientStatistics, fixed_from: Mixture, reg_covar: float, fixed: frozenset[str]
) -> Mixture:
    """The M-step with the groups named in ``fixed`` held at their values in ``fixed_from``.

    Each free group gets its maximum-likelihood value given the fixed ones: with the means
    fixed, covariances are the weighted scatter about those means (not about the weighted
    averages); weights and means do not depend on the covariances.
    """
    dtype = fixed_from.dtype
    counts = stats.counts + 10 * torch.finfo(dtype).eps
    weights = fixed_from.weights if "weights" in fixed else (counts / counts.sum()).to(dtype)
    if "means" in fixed:
        means = fixed_from.means
        about = stats.about(means)
        scatter = about.scatter
    else:
        step = stats.sums / counts[:, None]
        means = (stats.reference.to(step.dtype) + step).to(dtype)
        scatter = stats.about(means).scatter
    if "covariances" in fixed:
        covariance = fixed_from.covariance
    else:
        kind = type(fixed_from.covariance)
        covariance = kind.from_scatter(scatter.to(dtype), counts.to(dtype), reg_covar)
    return Mixture(weights, means, covariance)


def _checked_lower_bound(stats: SufficientStatistics, iteration: int) -> float:
    value = stats.mean_log_likelihood
    if not math.isfinite(value):
        raise FloatingPointError(
            f"The log-likelihood became {value} at EM iteration {iteration}. The data may "
            "have extreme values; scale it, or increase reg_covar."
        )
    return value


def reseed_empty_components(
    mixture: Mixture, stats: SufficientStatistics, covariance_type: type[Covariance]
) -> tuple[Mixture, int]:
    """Re-seed components that received (almost) no responsibility.

    An empty component takes half of the most populated component: both get that
    component's covariance and half its weight, and their means move one standard
    deviation apart along its principal axis. The model stays valid (no NaN) and the
    re-seeded component can win points back in the next E-step. Returns the mixture and
    how many components were re-seeded.
    """
    counts = stats.counts.clone()
    threshold = 100 * torch.finfo(mixture.dtype).eps * float(stats.n_samples)
    empty = [int(k) for k in torch.nonzero(counts <= threshold).flatten()]
    if not empty or len(empty) == mixture.n_components:
        return mixture, 0
    weights, means = mixture.weights.clone(), mixture.means.clone()
    covariance = mixture.covariance
    for target in empty:
        source = int(torch.argmax(counts))
        matrix = covariance.full_matrices(mixture.n_components)[source]
        eigenvalues, eigenvectors = torch.linalg.eigh(matrix.to(torch.float64))
        offset = (eigenvectors[:, -1] * eigenvalues[-1].clamp_min(0).sqrt()).to(mixture.dtype)
        means[target] = means[source] + offset
        means[source] = means[source] - offset
        weights[source] = weights[target] = weights[source] / 2
        counts[source] = counts[target] = counts[source] / 2
        covariance = covariance.with_component_copied(source, target)
    weights = weights / weights.sum()
    return Mixture(weights, means, covariance), len(empty)

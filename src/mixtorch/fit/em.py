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

__all__ = [
    "FIXABLE",
    "EMTrace",
    "ChunkSource",
    "fit_em",
    "fixed_groups",
    "m_step",
    "reseed_empty_components",
]

#: The parameter groups EM can hold fixed.
FIXABLE = ("weights", "means", "covariances")


def fixed_groups(fixed: Iterable[str]) -> frozenset[str]:
    """``fixed`` as a set of names of :data:`FIXABLE`: a string is a ``TypeError`` (its
    letters would be read as names), an unknown name a ``ValueError``."""
    if isinstance(fixed, str):
        raise TypeError(
            f"fixed must be a collection of group names, e.g. ({fixed!r},), not the string "
            f"{fixed!r} (whose letters would be read as names)."
        )
    names = frozenset(fixed)
    unknown = sorted(str(name) for name in names - set(FIXABLE))
    if unknown:
        raise ValueError(f"fixed may only contain {FIXABLE}, got {unknown}.")
    return names


#: A callable returning a fresh iterator over chunks (tensors or (tensor, weight) pairs).
ChunkSource = Callable[[], Iterable]


@dataclass
class EMTrace:
    """What happened during one EM run (returned by :func:`fit_em`).

    Attributes
    ----------
    lower_bounds : list of float
        Mean log-likelihood per sample at each iteration (under the parameters the
        iteration started from), as scikit-learn's ``lower_bounds_``.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the change fell below ``tol`` before ``max_iter`` ran out.
    reseeded : int
        How many times an empty component was re-seeded.
    seconds : float
        Wall-clock time of the run.

    See Also
    --------
    fit_em : The loop that fills it.
    mixtorch.fit.gradient.GradientTrace : The record of a gradient fit.

    Examples
    --------
    >>> from mixtorch.fit.em import EMTrace
    >>> trace = EMTrace(lower_bounds=[-3.2, -2.9, -2.899], n_iter=3, converged=True)
    >>> trace.lower_bound
    -2.899
    >>> EMTrace().lower_bound
    -inf
    """

    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False
    reseeded: int = 0
    seconds: float = 0.0

    @property
    def lower_bound(self) -> float:
        """The last mean log-likelihood, ``-inf`` before the first iteration."""
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

    Each iteration is one E-step pass over ``chunks`` (responsibilities and their
    sufficient statistics, summed over chunks and ``torch.distributed`` ranks) and one
    M-step; an empty component is re-seeded (:func:`reseed_empty_components`).

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row chunks (each a tensor of shape (n_i, D), or a
        ``(chunk, sample_weight)`` pair) every time it is called.
    initial : Mixture
        Starting parameters; its covariance type, dtype and device are kept.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample.
    max_iter : int, default=100
        Most iterations run.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    previous_lower_bound : float, default=-inf
        Starting value for the change test (the last bound, when warm-starting).
    callback : callable, optional
        Called as ``callback(iteration, lower_bound, change)`` after every iteration.
    statistics : callable, optional
        The E-step pass, ``statistics(mixture, chunks) -> SufficientStatistics``; by
        default :func:`~mixtorch.stats.accumulate_statistics` (complete data), or
        :func:`~mixtorch.fit.missing.missing_statistics` for rows with missing entries.
    fixed : iterable of {'weights', 'means', 'covariances'}, default=()
        Parameter groups kept at their values in ``initial``; the others get their
        maximum-likelihood update given the fixed ones (see :func:`m_step`). Empty
        components are not re-seeded when anything is fixed.

    Returns
    -------
    mixture : Mixture
        The fitted mixture, after the last M-step.
    trace : EMTrace
        Mean log-likelihood per iteration, iterations run, convergence, time.

    Raises
    ------
    ValueError
        If ``fixed`` names anything but ``'weights'``, ``'means'``, ``'covariances'``.
    FloatingPointError
        If the log-likelihood becomes non-finite (extreme data; scale it or increase
        ``reg_covar``).

    See Also
    --------
    mixtorch.GaussianMixture : The estimator that runs it.
    m_step : The M-step with fixed parameter groups.
    mixtorch.stats.accumulate_statistics : The E-step pass.
    mixtorch.fit.gradient.fit_gradient : Maximum likelihood by gradient descent.

    References
    ----------
    .. [1] A. P. Dempster, N. M. Laird and D. B. Rubin (1977), "Maximum likelihood from
       incomplete data via the EM algorithm", *JRSS B* 39(1).
    .. [2] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2.

    Examples
    --------
    With one component EM reaches the sample mean and the biased sample covariance
    (plus ``reg_covar``) in one step; the next two iterations see the bound stop moving:

    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.em import fit_em
    >>> X = torch.randn(500, 2, generator=torch.Generator().manual_seed(0)).double()
    >>> start = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]],
    ...                                 dtype=torch.float64)
    >>> fitted, trace = fit_em(lambda: [X[:200], X[200:]], start, reg_covar=0.0)
    >>> trace.converged, trace.n_iter
    (True, 3)
    >>> torch.allclose(fitted.means[0], X.mean(0))
    True
    >>> torch.allclose(fitted.covariance.covariances[0], torch.cov(X.T, correction=0))
    True
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

    Parameters
    ----------
    stats : SufficientStatistics
        E-step statistics of the data (counts (K,), sums and scatter).
    fixed_from : Mixture
        Supplies the fixed groups, the covariance type and the dtype.
    reg_covar : float
        Added to the diagonal of every updated covariance.
    fixed : frozenset of {'weights', 'means', 'covariances'}
        The groups kept; an empty set is the plain M-step.

    Returns
    -------
    Mixture
        Free groups updated, fixed ones those of ``fixed_from``.

    See Also
    --------
    fit_em : Calls it when ``fixed`` is not empty.
    mixtorch.stats.SufficientStatistics.m_step : The M-step with nothing fixed.

    Examples
    --------
    With the mean fixed at the origin the variance is the mean square about it:

    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.em import m_step
    >>> from mixtorch.stats import accumulate_statistics
    >>> X = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    >>> start = Mixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.float64)
    >>> stats = accumulate_statistics(start, [X])
    >>> m_step(stats, start, 0.0, frozenset({"means"})).covariance.covariances
    tensor([[[5.]]], dtype=torch.float64)
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
    re-seeded component can win points back in the next E-step.

    Parameters
    ----------
    mixture : Mixture
        The mixture after the M-step.
    stats : SufficientStatistics
        The statistics it was computed from; ``counts`` (K,) tells which are empty
        (at most ``100 * eps * n_samples``).
    covariance_type : type of Covariance
        The covariance kind of ``mixture``.

    Returns
    -------
    mixture : Mixture
        ``mixture`` itself when no component is empty (or all are), else the re-seeded one.
    n_reseeded : int
        How many components were re-seeded.

    See Also
    --------
    fit_em : Calls it after every M-step.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance, Mixture
    >>> from mixtorch.fit.em import reseed_empty_components
    >>> from mixtorch.stats import accumulate_statistics
    >>> X = torch.tensor([[-1.0], [1.0]], dtype=torch.float64)
    >>> start = Mixture.from_parameters([0.5, 0.5], [[0.0], [100.0]], [[[1.0]], [[1.0]]],
    ...                                 dtype=torch.float64)
    >>> stats = accumulate_statistics(start, [X])  # the component at 100 gets nothing
    >>> updated = stats.m_step(FullCovariance, 0.0, torch.float64)
    >>> reseeded, count = reseed_empty_components(updated, stats, FullCovariance)
    >>> count, reseeded.weights, reseeded.means.flatten()  # +-1 standard deviation
    (1, tensor([0.5000, 0.5000], dtype=torch.float64), tensor([-1.,  1.], dtype=torch.float64))
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

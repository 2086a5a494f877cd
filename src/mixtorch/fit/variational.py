"""Closed-form variational Bayes (CAVI) for Gaussian mixtures, as pure functions on tensors.

The model is scikit-learn's ``BayesianGaussianMixture``: a Dirichlet (or stick-breaking
Dirichlet process) prior on the weights and a Normal-Wishart prior on each component's
mean and precision (Bishop, *Pattern Recognition and Machine Learning*, section 10.2).
The factorised posterior ``q(z) q(pi) q(mu, Lambda)`` is improved by coordinate ascent:
an E-step gives responsibilities from expected log-weights and log-densities, an M-step
turns their sufficient statistics into new posterior parameters.

The E-step is EM's: the expected log-density is a Gaussian log-density with covariance
``W_k^-1 / nu_k`` plus a per-component constant (:meth:`VariationalPosterior.log_offsets`),
so :func:`mixtorch.stats.accumulate_statistics` runs it through the kernels of
:mod:`mixtorch.estep` with those constants in place of the log-weights: the same chunk
threads, float32 guard and bounded memory, plus the responsibilities' entropy for the
bound. The M-step starts from :meth:`SufficientStatistics.moments` (EM's algebra); the
Wishart update is the covariance type's own
(:meth:`~mixtorch.covariance.Covariance.wishart_posterior`) and lives with the rest of
the M-step in :mod:`mixtorch.fit._variational_update`; the prior, posterior and trace
types are in :mod:`mixtorch.fit._variational_posterior`. Statistics are summed
across ``torch.distributed`` ranks about points that are the same on every rank.

The lower bound is scikit-learn's (constant terms dropped, so values are comparable
with it but are not the full ELBO).

Rows may carry frequency weights: :func:`fit_variational`'s chunks may be
``(chunk, sample_weight)`` pairs (the E-step kernels weigh responsibilities, log-likelihood
and entropy), and :func:`weighted_prior_moments` gives the default prior's weighted data
moments; a row of weight 2 is then exactly the row seen twice. Unlike maximum
likelihood, the posterior depends on the weights' scale: doubling every weight is doubling
the data against the same prior.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import Tensor

from .._chunks import iter_chunks
from ..covariance import Covariance
from ..stats import (
    ACCUMULATOR_DTYPE,
    SufficientStatistics,
    accumulate_statistics,
    statistics_from_responsibilities,
)
from ._variational_posterior import (
    VariationalPosterior,
    VariationalPrior,
    VariationalTrace,
    expected_log_prob,
)
from ._variational_update import (
    data_prior_moments,
    posterior_from_responsibilities,
    update_posterior,
)

__all__ = [
    "VariationalPosterior",
    "VariationalPrior",
    "VariationalTrace",
    "data_prior_moments",
    "expected_log_prob",
    "fit_variational",
    "lower_bound",
    "posterior_from_responsibilities",
    "update_posterior",
    "weighted_prior_moments",
]


# -- E-step ------------------------------------------------------------------------------
def _e_step(chunks: Iterable[Tensor], posterior: VariationalPosterior) -> SufficientStatistics:
    """Statistics (with the entropy) of the responsibilities under ``posterior``, summed
    over chunks and ranks, through the EM kernels (:func:`accumulate_statistics`)."""
    stats = accumulate_statistics(
        posterior.mixture(), chunks, log_weights=posterior.log_offsets(), entropy=True
    )
    return stats.all_reduce()


@contextmanager
def _one_thread() -> Iterator[None]:
    """Run small (K, D, D) algebra on this thread alone.

    Batched linear algebra on a few small matrices gains nothing from intra-op threads,
    and on a loaded machine each parallel region can wait a whole time slice for a
    preempted thread: measured on the shared 2-core machine, a (16, 16, 16) Cholesky took
    33 ms with two threads against 0.01 ms with one.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


# -- the bound and the loop --------------------------------------------------------------
def lower_bound(posterior: VariationalPosterior, entropy: Tensor) -> float:
    """scikit-learn's variational lower bound (``_compute_lower_bound``) in float64.

    Constant terms are dropped, as scikit-learn does, so values are comparable with its
    ``lower_bound_`` but are not the full ELBO.

    Parameters
    ----------
    posterior : VariationalPosterior
        The posterior after the M-step.
    entropy : Tensor of shape ()
        ``-sum_ik r_ik log r_ik`` of the responsibilities that produced ``posterior``.

    Returns
    -------
    float
        The bound, summed over the data (not per sample).

    See Also
    --------
    fit_variational : Stops when it changes by less than ``tol``.
    sklearn.mixture.BayesianGaussianMixture : The same bound as ``lower_bound_``.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 10.2.

    Examples
    --------
    The bound is the entropy plus terms of the posterior alone:

    >>> import math
    >>> import torch
    >>> from mixtorch.fit.variational import (
    ...     VariationalPrior, lower_bound, posterior_from_responsibilities)
    >>> X = torch.tensor([[0.0], [1.0], [9.0], [11.0]], dtype=torch.float64)
    >>> prior = VariationalPrior(1.0, False, 1.0, torch.tensor([5.0]), 2.0, torch.tensor([1.0]))
    >>> hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> posterior = posterior_from_responsibilities(X, hard, prior, "diag", 0.0, rows=4)
    >>> base = lower_bound(posterior, torch.tensor(0.0, dtype=torch.float64))
    >>> math.isclose(lower_bound(posterior, torch.tensor(2.5, dtype=torch.float64)), base + 2.5)
    True
    """
    nu = posterior.degrees_of_freedom.to(torch.float64)
    D = posterior.means.shape[1]
    log_det_cov = posterior.covariance.log_det().to(torch.float64)
    log_det_precision_chol = -0.5 * log_det_cov - 0.5 * D * torch.log(nu)
    half_dofs = 0.5 * (nu.unsqueeze(-1) - torch.arange(D, dtype=nu.dtype, device=nu.device))
    log_wishart_norm = -(
        nu * log_det_precision_chol + 0.5 * D * math.log(2.0) * nu + torch.lgamma(half_dofs).sum(-1)
    )
    K = posterior.means.shape[0]
    log_wishart = K * log_wishart_norm if log_wishart_norm.ndim == 0 else log_wishart_norm.sum()
    concentration = [c.to(torch.float64) for c in posterior.weight_concentration]
    if posterior.process:
        a, b = concentration
        log_norm_weight = -(torch.lgamma(a) + torch.lgamma(b) - torch.lgamma(a + b)).sum()
    else:
        alpha = concentration[0]
        log_norm_weight = torch.lgamma(alpha.sum()) - torch.lgamma(alpha).sum()
    log_mean_precision = torch.log(posterior.mean_precision.to(torch.float64)).sum()
    value = entropy - log_wishart - log_norm_weight - 0.5 * D * log_mean_precision
    return float(value)


def fit_variational(
    chunks: Callable[[], Iterable[Tensor]],
    initial: VariationalPosterior,
    prior: VariationalPrior,
    *,
    tol: float = 1e-3,
    max_iter: int = 100,
    reg_covar: float = 1e-6,
    previous_lower_bound: float = -math.inf,
    callback: Callable[[int, float, float], None] | None = None,
) -> tuple[VariationalPosterior, VariationalTrace]:
    """Coordinate-ascent variational inference from an initial posterior.

    Each iteration is one E-step (responsibilities) and one M-step (posterior update);
    the bound is evaluated as scikit-learn does and the run stops when it changes by
    less than ``tol``.

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of row blocks (Tensors of shape (n, D), or
        ``(chunk, sample_weight)`` pairs) on every call; a sequence (chunks in memory) is
        shared out to threads on CPU.
    initial : VariationalPosterior
        The starting posterior (e.g. :func:`posterior_from_responsibilities`); its
        covariance type and dtype are kept.
    prior : VariationalPrior
        The prior's hyper-parameters.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound.
    max_iter : int, default=100
        Most iterations.
    reg_covar : float, default=1e-6
        Added to the diagonal of every per-component sample covariance.
    previous_lower_bound : float, default=-inf
        Starting value for the change test (the last bound when warm-starting).
    callback : callable, optional
        ``callback(iteration, lower_bound, change)`` after every iteration.

    Returns
    -------
    posterior : VariationalPosterior
        The posterior after the last update.
    trace : VariationalTrace
        The bound per iteration, iterations run, convergence.

    Raises
    ------
    FloatingPointError
        If the bound becomes non-finite (scale the data or increase ``reg_covar``).

    See Also
    --------
    mixtorch.BayesianGaussianMixture : The estimator that runs it.
    mixtorch.fit.em.fit_em : The maximum-likelihood counterpart.
    lower_bound, update_posterior

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 10.2.
    .. [2] D. M. Blei and M. I. Jordan (2006), "Variational inference for Dirichlet
       process mixtures", *Bayesian Analysis* 1(1).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.covariance import covariance_class
    >>> from mixtorch.fit.variational import (VariationalPrior, data_prior_moments,
    ...     fit_variational, posterior_from_responsibilities)
    >>> noise = torch.Generator().manual_seed(0)
    >>> left, right = torch.randn(100, 2, generator=noise), torch.randn(100, 2, generator=noise)
    >>> X = torch.cat([left - 3, right + 3]).double()
    >>> mean, covariance, _ = data_prior_moments(lambda: [X], covariance_class("diag"))
    >>> prior = VariationalPrior(0.5, False, 1.0, mean, 2.0, covariance)
    >>> hard = torch.nn.functional.one_hot((X[:, 0] > 0).long(), 2).double()
    >>> start = posterior_from_responsibilities(X, hard, prior, "diag", 1e-6, rows=64)
    >>> posterior, trace = fit_variational(lambda: [X], start, prior)
    >>> trace.converged, trace.lower_bounds[-1] >= trace.lower_bounds[0]
    (True, True)
    >>> posterior.weights()
    tensor([0.5000, 0.5000], dtype=torch.float64)
    >>> posterior.means.round()
    tensor([[-3., -3.],
            [ 3.,  3.]], dtype=torch.float64)
    """
    kind = type(initial.covariance)
    posterior, trace = initial, VariationalTrace()
    bound = previous_lower_bound
    for iteration in range(1, max_iter + 1):
        stats = _e_step(chunks(), posterior)
        assert stats.entropy is not None
        with _one_thread():
            posterior = update_posterior(stats, prior, kind, reg_covar, initial.means.dtype)
            new_bound = lower_bound(posterior, stats.entropy)
        if not math.isfinite(new_bound):
            raise FloatingPointError(
                f"The variational lower bound became {new_bound} at iteration {iteration}. "
                "Scale the data or increase reg_covar."
            )
        change, bound = new_bound - bound, new_bound
        trace.lower_bounds.append(bound)
        trace.n_iter = iteration
        if callback is not None:
            callback(iteration, bound, change)
        if abs(change) < tol:
            trace.converged = True
            break
    return posterior, trace


def weighted_prior_moments(
    X: Tensor, sample_weight: Tensor, covariance_type: type[Covariance], rows: int
) -> tuple[Tensor, Tensor]:
    """The default prior's data moments of rows with frequency weights: the weighted
    mean (D,) and the unbiased weighted covariance ``sum_i w_i (x_i - m)(x_i - m)^T /
    (sum_i w_i - 1)`` in ``covariance_type``'s ``covariance_prior`` layout, those of
    :func:`data_prior_moments` on the rows repeated ``w_i`` times (this process's rows
    only).

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The rows.
    sample_weight : Tensor of shape (n_samples,)
        Non-negative frequency weights summing to more than 1.
    covariance_type : type of Covariance
        Decides the layout of the covariance: (D, D), (D,) or ().
    rows : int
        Rows per chunk.

    Returns
    -------
    mean : Tensor of shape (D,)
        The weighted mean of the rows, in ``X``'s dtype.
    covariance : Tensor
        The weighted unbiased covariance of the rows (divided by the weights' sum less
        one, as for repeated rows), in the layout of ``covariance_type`` and in ``X``'s
        dtype.

    Raises
    ------
    ValueError
        If the weights sum to 1 or less (no unbiased covariance).

    See Also
    --------
    data_prior_moments : The unweighted moments, across ranks.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.covariance import covariance_class
    >>> from mixtorch.fit.variational import data_prior_moments, weighted_prior_moments
    >>> X = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]], dtype=torch.float64)
    >>> w = torch.tensor([2.0, 0.0, 1.0], dtype=torch.float64)
    >>> mean, covariance = weighted_prior_moments(X, w, covariance_class("full"), rows=2)
    >>> repeated = data_prior_moments(lambda: [X[[0, 0, 2]]], covariance_class("full"))
    >>> torch.allclose(mean, repeated[0]), torch.allclose(covariance, repeated[1])
    (True, True)
    """
    weights = sample_weight.to(ACCUMULATOR_DTYPE)
    total = weights.sum()
    if not float(total) > 1.0:
        raise ValueError(
            "sample_weight must sum to more than 1 for the default covariance_prior (the "
            "unbiased weighted covariance divides by sum(sample_weight) - 1); give "
            f"larger frequency weights or a covariance_prior, got a sum of {float(total)}."
        )
    mean = torch.zeros(X.shape[1], dtype=ACCUMULATOR_DTYPE, device=X.device)
    for start, chunk in zip(range(0, X.shape[0], rows), iter_chunks(X, rows), strict=True):
        mean += weights[start : start + chunk.shape[0]] @ chunk.to(ACCUMULATOR_DTYPE)
    mean /= total

    def weight_of(chunk: Tensor, start: int) -> Tensor:
        return weights[start : start + chunk.shape[0], None].to(chunk.dtype)

    reference = mean.to(X.dtype)[None]
    stats = statistics_from_responsibilities(
        iter_chunks(X, rows), weight_of, covariance_type, reference
    )
    scatter = stats.about(mean[None]).scatter[0]
    covariance = covariance_type.prior_covariance_from(scatter / (total - 1.0))
    return mean.to(X.dtype), covariance.to(X.dtype)

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
(:meth:`~mixtorch.covariance.Covariance.wishart_posterior`). Statistics are summed
across ``torch.distributed`` ranks about points that are the same on every rank.

The lower bound is scikit-learn's (constant terms dropped, so values are comparable
with it but are not the full ELBO).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor

from .._chunks import iter_chunks
from ..covariance import Covariance, covariance_class
from ..distributed import all_reduce_sum
from ..estep import EStepKernel
from ..mixture import Mixture
from ..stats import (
    ACCUMULATOR_DTYPE,
    ResponsibilityFn,
    SufficientStatistics,
    accumulate_statistics,
    statistics_from_responsibilities,
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
]


@dataclass
class VariationalPrior:
    """Hyper-parameters of the prior (scikit-learn's ``*_prior_`` attributes).

    Attributes
    ----------
    weight_concentration : float
        Dirichlet concentration (or the Dirichlet-process concentration).
    process : bool
        True for the stick-breaking Dirichlet process, False for a finite Dirichlet.
    mean_precision : float
        Precision scale ``beta_0`` of the Normal prior on the means.
    mean : Tensor of shape (n_features,)
    degrees_of_freedom : float
        Wishart degrees of freedom ``nu_0`` (> n_features - 1).
    covariance : Tensor
        Wishart scale inverse ``Psi_0``: (D, D) for full/tied, (D,) for diag, 0-d for
        spherical.
    """

    weight_concentration: float
    process: bool
    mean_precision: float
    mean: Tensor
    degrees_of_freedom: float
    covariance: Tensor


@dataclass
class VariationalPosterior:
    """Parameters of the factorised posterior.

    Attributes
    ----------
    weight_concentration : tuple of Tensors
        ``(alpha,)`` of shape (K,) for a Dirichlet, ``(a, b)`` (K,) each for the
        stick-breaking Beta factors of a Dirichlet process.
    mean_precision : Tensor of shape (K,)
    means : Tensor of shape (K, D)
    degrees_of_freedom : Tensor of shape (K,), or 0-d for a tied covariance
    covariance : Covariance
        ``W_k^{-1} / nu_k``, the posterior-mean covariance in scikit-learn's layout.
    """

    weight_concentration: tuple[Tensor, ...]
    mean_precision: Tensor
    means: Tensor
    degrees_of_freedom: Tensor
    covariance: Covariance

    @property
    def process(self) -> bool:
        return len(self.weight_concentration) == 2

    def weights(self) -> Tensor:
        """Posterior-mean weights (what scikit-learn reports as ``weights_``), (K,)."""
        if self.process:
            a, b = self.weight_concentration
            stick = b / (a + b)
            remaining = torch.cat([stick.new_ones(1), torch.cumprod(stick[:-1], 0)])
            weights = a / (a + b) * remaining
        else:
            weights = self.weight_concentration[0]
        return weights / weights.sum()

    def expected_log_weights(self) -> Tensor:
        """E[log pi_k] under q, (K,)."""
        if self.process:
            a, b = self.weight_concentration
            digamma_sum = torch.digamma(a + b)
            log_remaining = torch.cumsum(torch.digamma(b) - digamma_sum, 0)
            shifted = torch.cat([log_remaining.new_zeros(1), log_remaining[:-1]])
            return torch.digamma(a) - digamma_sum + shifted
        alpha = self.weight_concentration[0]
        return torch.digamma(alpha) - torch.digamma(alpha.sum())

    def mixture(self) -> Mixture:
        """The point-estimate mixture: posterior-mean weights, means and covariances."""
        return Mixture(self.weights(), self.means, self.covariance)

    @cached_property
    def e_step_kernel(self) -> EStepKernel:
        """The EM kernel with :meth:`log_offsets` as its per-component constants: its
        log-probabilities are the expected ones of the variational E-step."""
        mixture = self.mixture()
        center, means = mixture.center, mixture.centred_means
        return self.covariance.e_step_kernel(center, means, self.log_offsets())

    def log_offsets(self) -> Tensor:
        """What E[log pi_k N(x | mu_k, Lambda_k^{-1})] adds to ``log N(x | m_k, Sigma_k)``.

        With ``Sigma_k = W_k^{-1} / nu_k``, the expectation under the Normal-Wishart
        posterior is the plug-in log-density plus the per-component constant returned here
        (expected log-weight, expected log-determinant correction and ``-D / (2 beta_k)``):
        ``E[(x - mu)^T Lambda (x - mu)] = (x - m)^T Sigma^-1 (x - m) + D / beta``, so the
        precision needs no scaling beyond ``Sigma``'s own and the EM kernels apply as
        they are, with these constants in place of ``log w_k``.
        """
        D = self.means.shape[1]
        nu = self.degrees_of_freedom
        half_dofs = 0.5 * (nu.unsqueeze(-1) - torch.arange(D, dtype=nu.dtype, device=nu.device))
        expected_log_det = D * math.log(2.0) + torch.digamma(half_dofs).sum(-1)
        wishart = 0.5 * (expected_log_det - D * torch.log(nu))
        return self.expected_log_weights() + wishart - 0.5 * D / self.mean_precision


@dataclass
class VariationalTrace:
    """What happened during one CAVI run."""

    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False

    @property
    def lower_bound(self) -> float:
        return self.lower_bounds[-1] if self.lower_bounds else -math.inf


def expected_log_prob(X: Tensor, posterior: VariationalPosterior) -> Tensor:
    """E_q[log pi_k + log N(x_i | mu_k, Lambda_k^{-1})] for one chunk, shape (n, K).

    scikit-learn's ``_estimate_weighted_log_prob``: its log-sum-exp is what
    ``score_samples`` reports and its softmax the responsibilities. Computed by the
    E-step kernel of :meth:`VariationalPosterior.e_step_kernel`.
    """
    return posterior.e_step_kernel.weighted_log_prob(X.to(posterior.means.dtype))


# -- E-step ------------------------------------------------------------------------------
def _e_step(chunks: Iterable[Tensor], posterior: VariationalPosterior) -> SufficientStatistics:
    """Statistics (with the entropy) of the responsibilities under ``posterior``, summed
    over chunks and ranks, through the EM kernels (:func:`accumulate_statistics`)."""
    stats = accumulate_statistics(
        posterior.mixture(), chunks, log_weights=posterior.log_offsets(), entropy=True
    )
    return stats.all_reduce()


# -- M-step ------------------------------------------------------------------------------
def _weight_posterior(counts: Tensor, prior: VariationalPrior) -> tuple[Tensor, ...]:
    if prior.process:
        # b_k = gamma + sum_{j > k} N_j: the mass left for the sticks after k
        later = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0]) - counts
        return 1.0 + counts, prior.weight_concentration + later
    return (prior.weight_concentration + counts,)


def update_posterior(
    stats: SufficientStatistics,
    prior: VariationalPrior,
    kind: type[Covariance],
    reg_covar: float,
    dtype: torch.dtype,
) -> VariationalPosterior:
    """The CAVI update of q(pi) q(mu, Lambda) from the responsibilities' statistics.

    Computed in float64 from :meth:`SufficientStatistics.moments` (the same algebra as
    the EM M-step) and the covariance type's
    :meth:`~mixtorch.covariance.Covariance.wishart_posterior`, then cast to ``dtype``.
    """
    counts, means, centred = stats.moments(dtype)
    mean_precision = prior.mean_precision + counts
    prior_mean = prior.mean.to(counts.dtype)
    posterior_means = (prior.mean_precision * prior_mean + counts[:, None] * means) / (
        mean_precision[:, None]
    )
    wide = _Float64Prior(prior)
    dof, covariances = kind.wishart_posterior(
        counts, means, centred, wide, mean_precision, reg_covar
    )
    return VariationalPosterior(
        weight_concentration=tuple(c.to(dtype) for c in _weight_posterior(counts, prior)),
        mean_precision=mean_precision.to(dtype),
        means=posterior_means.to(dtype),
        degrees_of_freedom=torch.as_tensor(dof, dtype=dtype, device=means.device),
        covariance=kind(covariances.to(dtype), n_features=means.shape[1], reg_covar=reg_covar),
    )


class _Float64Prior:
    """The Normal-Wishart part of a prior with float64 tensors (for the update)."""

    def __init__(self, prior: VariationalPrior) -> None:
        self.mean = prior.mean.to(ACCUMULATOR_DTYPE)
        self.mean_precision = prior.mean_precision
        self.degrees_of_freedom = prior.degrees_of_freedom
        self.covariance = prior.covariance.to(ACCUMULATOR_DTYPE)


def posterior_from_responsibilities(
    X: Tensor,
    responsibility_fn: ResponsibilityFn | Tensor,
    prior: VariationalPrior,
    covariance_type: str | type[Covariance],
    reg_covar: float,
    rows: int,
    mean_guess: Tensor | None = None,
) -> VariationalPosterior:
    """The initial posterior from given responsibilities (one M-step).

    Statistics are summed over this rank's rows and then across ranks, so under a
    process group ``mean_guess`` must be the same on every rank.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    responsibility_fn : Tensor of shape (n_samples, K), or callable
        Responsibilities, or ``fn(chunk, start)`` giving those of rows ``start:start+n``.
    prior : VariationalPrior
    covariance_type : str or Covariance subclass
    reg_covar : float
    rows : int
        Rows per chunk.
    mean_guess : Tensor of shape (K, D), optional
        Where to take moments about (for float32 accuracy); the data mean by default.
    """
    kind = (
        covariance_class(covariance_type) if isinstance(covariance_type, str) else covariance_type
    )
    if isinstance(responsibility_fn, Tensor):
        given = responsibility_fn
        responsibility_fn = lambda chunk, start: given[start : start + chunk.shape[0]]  # noqa: E731
    K = int(responsibility_fn(X[:1], 0).shape[1])
    if mean_guess is None:
        mean_guess = X.mean(0).expand(K, -1)
    reference = mean_guess.to(X.dtype)
    stats = statistics_from_responsibilities(
        iter_chunks(X, rows), responsibility_fn, kind, reference
    )
    return update_posterior(stats.all_reduce(), prior, kind, reg_covar, X.dtype)


def data_prior_moments(
    chunks: Callable[[], Iterable[Tensor]], covariance_type: type[Covariance]
) -> tuple[Tensor, Tensor, int]:
    """The default prior's data moments over the union of the shards: the mean (D,),
    the unbiased covariance in ``covariance_type``'s ``covariance_prior`` layout, and
    the number of rows (all ranks).

    Two passes: float64 column sums (one collective), then the scatter about that global
    mean (one collective), so every rank gets the same numbers and float32 data with a
    large offset does not cancel.
    """
    totals: Tensor | None = None
    dtype = torch.get_default_dtype()
    for chunk in chunks():
        dtype = chunk.dtype
        ones = chunk.new_ones(chunk.shape[0], 1).to(ACCUMULATOR_DTYPE)
        piece = torch.cat([chunk.to(ACCUMULATOR_DTYPE), ones], 1).sum(0)
        totals = piece if totals is None else totals + piece
    if totals is None:
        raise ValueError("The data source yielded no chunks.")
    totals = all_reduce_sum(totals)
    n_samples = int(totals[-1])
    mean = totals[:-1] / totals[-1]
    ones_fn: ResponsibilityFn = lambda chunk, start: chunk.new_ones(chunk.shape[0], 1)  # noqa: E731
    reference = mean.to(dtype)[None]
    stats = statistics_from_responsibilities(chunks(), ones_fn, covariance_type, reference)
    scatter = stats.all_reduce().about(mean[None]).scatter[0]
    covariance = covariance_type.prior_covariance_from(scatter / max(n_samples - 1, 1))
    return mean.to(dtype), covariance.to(dtype), n_samples


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

    ``entropy`` is ``-sum_ik r_ik log r_ik`` of the responsibilities that produced
    ``posterior``.
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
        Returns a fresh iterable of row blocks (Tensors of shape (n, D)) on every call;
        a sequence (chunks in memory) is shared out to threads on CPU.
    initial : VariationalPosterior
    prior : VariationalPrior
    tol, max_iter, reg_covar : as in scikit-learn
    previous_lower_bound : float
        Starting value for the change test (the last bound when warm-starting).
    callback : callable, optional
        ``callback(iteration, lower_bound, change)`` after every iteration.

    Returns
    -------
    posterior : VariationalPosterior
    trace : VariationalTrace
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

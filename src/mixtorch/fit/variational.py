"""Closed-form variational Bayes (CAVI) for Gaussian mixtures, as pure functions on tensors.

The model is scikit-learn's ``BayesianGaussianMixture``: a Dirichlet (or stick-breaking
Dirichlet process) prior on the weights and a Normal-Wishart prior on each component's
mean and precision (Bishop, *Pattern Recognition and Machine Learning*, section 10.2).
The factorised posterior ``q(z) q(pi) q(mu, Lambda)`` is improved by coordinate ascent:
an E-step gives responsibilities from expected log-weights and log-densities, an M-step
turns their sufficient statistics into new posterior parameters. Statistics are summed
over row chunks (and across ``torch.distributed`` ranks), so memory is bounded by the
chunk size as in EM.

The lower bound is scikit-learn's (constant terms dropped, so values are comparable
with it but are not the full ELBO).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import torch
from torch import Tensor

from ..covariance import Covariance, covariance_class
from ..mixture import Mixture
from ..stats import SufficientStatistics, chunk_statistics

__all__ = [
    "VariationalPosterior",
    "VariationalPrior",
    "VariationalTrace",
    "expected_log_prob",
    "fit_variational",
    "lower_bound",
    "posterior_from_responsibilities",
    "update_posterior",
]

#: responsibilities for the rows ``start:start + len(chunk)``
ResponsibilityFn = Callable[[Tensor, int], Tensor]


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

    def log_offsets(self) -> Tensor:
        """What E[log pi_k N(x | mu_k, Lambda_k^{-1})] adds to ``log N(x | m_k, Sigma_k)``.

        With ``Sigma_k = W_k^{-1} / nu_k``, the expectation under the Normal-Wishart
        posterior is the plug-in log-density plus the per-component constant returned here
        (expected log-weight, expected log-determinant correction and ``-D / (2 beta_k)``).
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
    ``score_samples`` reports and its softmax the responsibilities.
    """
    return posterior.mixture().component_log_prob(X) + posterior.log_offsets()


# -- E-step ------------------------------------------------------------------------------
def _moment_reference(kind: type[Covariance], guess: Tensor) -> tuple[Tensor, Tensor]:
    """(reference (K, D), shift (D,)) for :func:`chunk_statistics`.

    Full and tied moments are taken about each component's mean guess; diag and
    spherical ones about one shift point (their ``moments`` require it).
    """
    shift = guess.mean(0)
    reference = guess if kind.centred_per_component else shift.expand_as(guess)
    return reference, shift


def _e_step(
    chunks: Iterable[Tensor], posterior: VariationalPosterior
) -> tuple[SufficientStatistics, Tensor]:
    """Statistics of the responsibilities under ``posterior`` and their summed entropy."""
    kind = type(posterior.covariance)
    reference, shift = _moment_reference(kind, posterior.means)
    mixture, offsets = posterior.mixture(), posterior.log_offsets()
    total: SufficientStatistics | None = None
    entropy = torch.zeros((), dtype=torch.float64, device=posterior.means.device)
    for chunk in chunks:
        chunk = chunk.to(posterior.means.dtype)
        log_weighted = mixture.component_log_prob(chunk) + offsets
        log_norm = torch.logsumexp(log_weighted, dim=1)
        log_resp = log_weighted - log_norm[:, None]
        responsibilities = torch.exp(log_resp)
        entropy = entropy - (responsibilities * log_resp).sum().to(torch.float64)
        stats = chunk_statistics(
            kind, chunk - shift, responsibilities, reference, shift, log_norm.sum()
        )
        total = stats if total is None else total + stats
    if total is None:
        raise ValueError("The data source yielded no chunks.")
    return total.all_reduce(), _all_reduce_scalar(entropy)


def _all_reduce_scalar(value: Tensor) -> Tensor:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        value = value.clone()
        dist.all_reduce(value)
    return value


# -- M-step ------------------------------------------------------------------------------
def _gaussian_moments(
    stats: SufficientStatistics, kind: type[Covariance], reg_covar: float, dtype: torch.dtype
) -> tuple[Tensor, Tensor, Tensor]:
    """scikit-learn's ``_estimate_gaussian_parameters``: counts ``nk`` (K,), means ``xk``
    (K, D) and covariances ``sk`` (in ``kind``'s layout, ``reg_covar`` added)."""
    counts = stats.counts + 10 * torch.finfo(dtype).eps
    step = stats.sums / counts[:, None]
    if stats.scatter.ndim == 3:
        centred = stats.scatter - counts[:, None, None] * step[:, :, None] * step[:, None, :]
    else:
        centred = (stats.scatter - counts[:, None] * step * step).clamp_min(0.0)
    means = stats.reference.to(counts.dtype) + step
    eye = torch.eye(means.shape[1], dtype=counts.dtype, device=counts.device)
    if kind.kind == "full":
        scatter = centred / counts[:, None, None] + reg_covar * eye
    elif kind.kind == "tied":
        scatter = centred.sum(0) / counts.sum() + reg_covar * eye
    else:
        scatter = centred / counts[:, None] + reg_covar
        scatter = scatter.mean(1) if kind.kind == "spherical" else scatter
    return counts.to(dtype), means.to(dtype), scatter.to(dtype)


def _weight_posterior(counts: Tensor, prior: VariationalPrior) -> tuple[Tensor, ...]:
    if prior.process:
        # b_k = gamma + sum_{j > k} N_j: the mass left for the sticks after k
        later = torch.flip(torch.cumsum(torch.flip(counts, [0]), 0), [0]) - counts
        return 1.0 + counts, prior.weight_concentration + later
    return (prior.weight_concentration + counts,)


def _wishart_full(
    counts: Tensor, means: Tensor, scatter: Tensor, prior: VariationalPrior, mean_precision: Tensor
) -> tuple[Tensor, Tensor]:
    diff = means - prior.mean
    shrink = (counts * prior.mean_precision / mean_precision)[:, None, None]
    scale = (
        prior.covariance
        + counts[:, None, None] * scatter
        + shrink * diff[:, :, None] * diff[:, None, :]
    )
    dof = prior.degrees_of_freedom + counts
    return dof, scale / dof[:, None, None]


def _wishart_tied(
    counts: Tensor, means: Tensor, scatter: Tensor, prior: VariationalPrior, mean_precision: Tensor
) -> tuple[Tensor, Tensor]:
    K = counts.shape[0]
    diff = means - prior.mean
    dof = prior.degrees_of_freedom + counts.sum() / K
    between = ((counts / mean_precision)[:, None] * diff).T @ diff
    scale = prior.covariance + scatter * counts.sum() / K + prior.mean_precision / K * between
    return dof, scale / dof


def _wishart_diag(
    counts: Tensor, means: Tensor, scatter: Tensor, prior: VariationalPrior, mean_precision: Tensor
) -> tuple[Tensor, Tensor]:
    diff_sq = (means - prior.mean).square()
    shrink = (prior.mean_precision / mean_precision)[:, None]
    dof = prior.degrees_of_freedom + counts
    return dof, (prior.covariance + counts[:, None] * (scatter + shrink * diff_sq)) / dof[:, None]


def _wishart_spherical(
    counts: Tensor, means: Tensor, scatter: Tensor, prior: VariationalPrior, mean_precision: Tensor
) -> tuple[Tensor, Tensor]:
    diff_sq = (means - prior.mean).square().mean(1)
    shrink = prior.mean_precision / mean_precision
    dof = prior.degrees_of_freedom + counts
    return dof, (prior.covariance + counts * (scatter + shrink * diff_sq)) / dof


_WISHART_UPDATES = {
    "full": _wishart_full,
    "tied": _wishart_tied,
    "diag": _wishart_diag,
    "spherical": _wishart_spherical,
}


def update_posterior(
    stats: SufficientStatistics,
    prior: VariationalPrior,
    kind: type[Covariance],
    reg_covar: float,
    dtype: torch.dtype,
) -> VariationalPosterior:
    """The CAVI update of q(pi) q(mu, Lambda) from the responsibilities' statistics."""
    counts, means, scatter = _gaussian_moments(stats, kind, reg_covar, dtype)
    mean_precision = prior.mean_precision + counts
    posterior_means = (prior.mean_precision * prior.mean + counts[:, None] * means) / (
        mean_precision[:, None]
    )
    dof, covariances = _WISHART_UPDATES[kind.kind](counts, means, scatter, prior, mean_precision)
    return VariationalPosterior(
        weight_concentration=_weight_posterior(counts, prior),
        mean_precision=mean_precision,
        means=posterior_means,
        degrees_of_freedom=torch.as_tensor(dof, dtype=dtype, device=means.device),
        covariance=kind(covariances, n_features=means.shape[1], reg_covar=reg_covar),
    )


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
    K = _n_components(responsibility_fn, X)
    if mean_guess is None:
        mean_guess = X.mean(0).expand(K, -1)
    reference, shift = _moment_reference(kind, mean_guess.to(X.dtype))
    total: SufficientStatistics | None = None
    for start in range(0, X.shape[0], rows):
        chunk = X[start : start + rows]
        responsibilities = responsibility_fn(chunk, start).to(X.dtype)
        stats = chunk_statistics(kind, chunk - shift, responsibilities, reference, shift)
        total = stats if total is None else total + stats
    assert total is not None
    return update_posterior(total.all_reduce(), prior, kind, reg_covar, X.dtype)


def _n_components(responsibility_fn: ResponsibilityFn, X: Tensor) -> int:
    return int(responsibility_fn(X[:1], 0).shape[1])


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
        Returns a fresh iterable of row blocks (Tensors of shape (n, D)) on every call.
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
        stats, entropy = _e_step(chunks(), posterior)
        posterior = update_posterior(stats, prior, kind, reg_covar, initial.means.dtype)
        new_bound = lower_bound(posterior, entropy)
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

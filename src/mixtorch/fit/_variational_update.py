"""The CAVI M-step: the posterior of the weights, means and precisions from the
responsibilities' sufficient statistics, the first posterior from given
responsibilities, and the default prior's data moments (over every rank's rows)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

import torch
from torch import Tensor

from .._chunks import iter_chunks
from ..covariance import Covariance, covariance_class
from ..distributed import all_reduce_sum
from ..stats import (
    ACCUMULATOR_DTYPE,
    ResponsibilityFn,
    SufficientStatistics,
    statistics_from_responsibilities,
)
from ._variational_posterior import VariationalPosterior, VariationalPrior

__all__ = ["data_prior_moments", "posterior_from_responsibilities", "update_posterior"]


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

    Parameters
    ----------
    stats : SufficientStatistics
        Statistics of the responsibilities (summed over chunks and ranks).
    prior : VariationalPrior
        The prior's hyper-parameters.
    kind : type of Covariance
        The covariance kind of the posterior.
    reg_covar : float
        Added to the diagonal of every per-component sample covariance.
    dtype : torch.dtype
        dtype of the returned tensors.

    Returns
    -------
    VariationalPosterior
        ``alpha_0 + N_k`` (or the stick-breaking factors), ``beta_0 + N_k``, the
        posterior means, degrees of freedom and ``W_k^{-1} / nu_k``.

    See Also
    --------
    posterior_from_responsibilities : The same update from given responsibilities.
    mixtorch.fit.variational.fit_variational : Alternates it with the E-step.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       equations 10.58-10.63.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import DiagCovariance
    >>> from mixtorch.fit.variational import VariationalPrior, update_posterior
    >>> from mixtorch.stats import statistics_from_responsibilities
    >>> X = torch.tensor([[1.0], [3.0]], dtype=torch.float64)
    >>> ones = lambda chunk, start: torch.ones(len(chunk), 1, dtype=chunk.dtype)
    >>> stats = statistics_from_responsibilities([X], ones, DiagCovariance, X.new_zeros(1, 1))
    >>> prior = VariationalPrior(1.0, False, 2.0, torch.tensor([0.0]), 1.0, torch.tensor([1.0]))
    >>> posterior = update_posterior(stats, prior, DiagCovariance, 0.0, torch.float64)
    >>> posterior.mean_precision, posterior.means  # beta = 2 + 2, m = (2*0 + 2*2) / 4
    (tensor([4.], dtype=torch.float64), tensor([[1.]], dtype=torch.float64))
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
        This rank's rows.
    responsibility_fn : Tensor of shape (n_samples, K), or callable
        Responsibilities, or ``fn(chunk, start)`` giving those of rows ``start:start+n``.
    prior : VariationalPrior
        The prior's hyper-parameters.
    covariance_type : str or Covariance subclass
        ``'full'``, ``'tied'``, ``'diag'``, ``'spherical'`` or the class itself.
    reg_covar : float
        Added to the diagonal of every per-component sample covariance.
    rows : int
        Rows per chunk.
    mean_guess : Tensor of shape (K, D), optional
        Where to take moments about (for float32 accuracy); the data mean by default.

    Returns
    -------
    VariationalPosterior
        In ``X``'s dtype.

    See Also
    --------
    update_posterior : The update it applies.
    mixtorch.fit.variational.fit_variational : Starts from it.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.variational import VariationalPrior, posterior_from_responsibilities
    >>> X = torch.tensor([[0.0], [1.0], [9.0], [11.0]], dtype=torch.float64)
    >>> prior = VariationalPrior(0.5, False, 1.0, torch.tensor([5.0]), 2.0, torch.tensor([1.0]))
    >>> hard = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    >>> posterior = posterior_from_responsibilities(X, hard, prior, "diag", 0.0, rows=2)
    >>> posterior.weight_concentration  # alpha_0 + N_k
    (tensor([2.5000, 2.5000], dtype=torch.float64),)
    >>> posterior.means  # (beta_0 m_0 + N_k xbar_k) / (beta_0 + N_k)
    tensor([[2.0000],
            [8.3333]], dtype=torch.float64)
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

    Parameters
    ----------
    chunks : callable
        Returns a fresh iterable of this rank's row blocks (n_i, D) on each call.
    covariance_type : type of Covariance
        Decides the layout of the covariance: (D, D), (D,) or ().

    Returns
    -------
    mean : Tensor of shape (D,)
        Column means, in the chunks' dtype.
    covariance : Tensor
        The unbiased covariance in ``covariance_prior``'s layout.
    n_samples : int
        Rows over all ranks.

    Raises
    ------
    ValueError
        If ``chunks`` yields no chunk.

    See Also
    --------
    VariationalPrior : Takes these as ``mean`` and ``covariance``.
    mixtorch.BayesianGaussianMixture : Whose ``mean_prior`` and ``covariance_prior``
        default to them.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.covariance import covariance_class
    >>> from mixtorch.fit.variational import data_prior_moments
    >>> X = torch.tensor([[0.0, 1.0], [2.0, 1.0], [4.0, 4.0]], dtype=torch.float64)
    >>> mean, covariance, n_samples = data_prior_moments(
    ...     lambda: [X[:2], X[2:]], covariance_class("full")
    ... )
    >>> mean, n_samples
    (tensor([2., 2.], dtype=torch.float64), 3)
    >>> torch.allclose(covariance, torch.cov(X.T))
    True
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

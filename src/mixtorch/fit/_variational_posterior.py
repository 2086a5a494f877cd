"""The variational prior, posterior and trace of closed-form VB, as value objects.

:class:`VariationalPosterior` knows the expected log-weights and the per-component
constants that turn EM's E-step kernel into the variational E-step
(:meth:`VariationalPosterior.log_offsets`); :func:`expected_log_prob` applies it to a
chunk. The fitting loop is in :mod:`mixtorch.fit.variational`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import cached_property

import torch
from torch import Tensor

from ..covariance import Covariance
from ..estep import EStepKernel
from ..mixture import Mixture

__all__ = ["VariationalPosterior", "VariationalPrior", "VariationalTrace", "expected_log_prob"]


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
        Mean ``m_0`` of the Normal prior on the means.
    degrees_of_freedom : float
        Wishart degrees of freedom ``nu_0`` (> n_features - 1).
    covariance : Tensor
        Wishart scale inverse ``Psi_0``: (D, D) for full/tied, (D,) for diag, 0-d for
        spherical.

    See Also
    --------
    VariationalPosterior : What the data turn it into.
    mixtorch.fit.variational.data_prior_moments : scikit-learn's default ``mean`` and
        ``covariance``.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 10.2.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.variational import VariationalPrior
    >>> prior = VariationalPrior(weight_concentration=0.5, process=False, mean_precision=1.0,
    ...                          mean=torch.zeros(2), degrees_of_freedom=2.0,
    ...                          covariance=torch.eye(2))
    >>> prior.degrees_of_freedom > prior.mean.shape[0] - 1
    True
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
        Posterior precision scales ``beta_k`` of the means.
    means : Tensor of shape (K, D)
        Posterior means ``m_k``.
    degrees_of_freedom : Tensor of shape (K,), or 0-d for a tied covariance
        Posterior Wishart degrees of freedom ``nu_k``.
    covariance : Covariance
        ``W_k^{-1} / nu_k``, the posterior-mean covariance in scikit-learn's layout.

    See Also
    --------
    VariationalPrior : The prior it is updated from.
    mixtorch.fit.variational.update_posterior : The update.
    expected_log_prob : Its expected log-densities of data.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 10.2.
    .. [2] D. M. Blei and M. I. Jordan (2006), "Variational inference for Dirichlet
       process mixtures", *Bayesian Analysis* 1(1) (the stick-breaking factors).

    Examples
    --------
    Posterior-mean weights of stick-breaking factors ``(a, b)``: ``a_1 / (a_1 + b_1)``,
    then the rest of the stick:

    >>> import torch
    >>> from mixtorch import DiagCovariance
    >>> from mixtorch.fit.variational import VariationalPosterior
    >>> posterior = VariationalPosterior(
    ...     weight_concentration=(torch.tensor([3.0, 1.0]), torch.tensor([1.0, 1.0])),
    ...     mean_precision=torch.tensor([4.0, 2.0]), means=torch.tensor([[0.0], [5.0]]),
    ...     degrees_of_freedom=torch.tensor([4.0, 2.0]),
    ...     covariance=DiagCovariance(torch.ones(2, 1)),
    ... )
    >>> posterior.process, posterior.weights()  # 3/4, then 1/4 * 1/2, renormalised
    (True, tensor([0.8571, 0.1429]))
    """

    weight_concentration: tuple[Tensor, ...]
    mean_precision: Tensor
    means: Tensor
    degrees_of_freedom: Tensor
    covariance: Covariance

    @property
    def process(self) -> bool:
        """True for stick-breaking (Dirichlet-process) weight factors."""
        return len(self.weight_concentration) == 2

    def weights(self) -> Tensor:
        """Posterior-mean weights (what scikit-learn reports as ``weights_``).

        Returns
        -------
        Tensor of shape (K,)
            Non-negative, summing to one.

        See Also
        --------
        VariationalPosterior.expected_log_weights : E[log pi_k], which the E-step uses.
        """
        if self.process:
            a, b = self.weight_concentration
            stick = b / (a + b)
            remaining = torch.cat([stick.new_ones(1), torch.cumprod(stick[:-1], 0)])
            weights = a / (a + b) * remaining
        else:
            weights = self.weight_concentration[0]
        return weights / weights.sum()

    def expected_log_weights(self) -> Tensor:
        """E[log pi_k] under q.

        Returns
        -------
        Tensor of shape (K,)
            Digamma differences of the Dirichlet (or stick-breaking Beta) factors.

        See Also
        --------
        VariationalPosterior.weights : The posterior-mean weights.
        """
        if self.process:
            a, b = self.weight_concentration
            digamma_sum = torch.digamma(a + b)
            log_remaining = torch.cumsum(torch.digamma(b) - digamma_sum, 0)
            shifted = torch.cat([log_remaining.new_zeros(1), log_remaining[:-1]])
            return torch.digamma(a) - digamma_sum + shifted
        alpha = self.weight_concentration[0]
        return torch.digamma(alpha) - torch.digamma(alpha.sum())

    def mixture(self) -> Mixture:
        """The point-estimate mixture: posterior-mean weights, means and covariances.

        Returns
        -------
        Mixture
            ``Mixture(weights(), means, covariance)``.

        See Also
        --------
        mixtorch.BayesianGaussianMixture : Whose ``mixture_`` this is.
        """
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

        Returns
        -------
        Tensor of shape (K,)
            The per-component constants.

        See Also
        --------
        VariationalPosterior.expected_log_weights : The first of the constants' terms.
        """
        D = self.means.shape[1]
        nu = self.degrees_of_freedom
        half_dofs = 0.5 * (nu.unsqueeze(-1) - torch.arange(D, dtype=nu.dtype, device=nu.device))
        expected_log_det = D * math.log(2.0) + torch.digamma(half_dofs).sum(-1)
        wishart = 0.5 * (expected_log_det - D * torch.log(nu))
        return self.expected_log_weights() + wishart - 0.5 * D / self.mean_precision


@dataclass
class VariationalTrace:
    """What happened during one CAVI run (returned by
    :func:`~mixtorch.fit.variational.fit_variational`).

    Attributes
    ----------
    lower_bounds : list of float
        The variational lower bound after each iteration.
    n_iter : int
        Iterations run.
    converged : bool
        Whether the bound changed by less than ``tol`` before ``max_iter`` ran out.

    See Also
    --------
    mixtorch.fit.em.EMTrace : The record of an EM run.

    Examples
    --------
    >>> from mixtorch.fit.variational import VariationalTrace
    >>> VariationalTrace([-10.0, -9.5], n_iter=2).lower_bound
    -9.5
    """

    lower_bounds: list[float] = field(default_factory=list)
    n_iter: int = 0
    converged: bool = False

    @property
    def lower_bound(self) -> float:
        """The last bound, ``-inf`` before the first iteration."""
        return self.lower_bounds[-1] if self.lower_bounds else -math.inf


def expected_log_prob(X: Tensor, posterior: VariationalPosterior) -> Tensor:
    """E_q[log pi_k + log N(x_i | mu_k, Lambda_k^{-1})] for one chunk, shape (n, K).

    scikit-learn's ``_estimate_weighted_log_prob``: its log-sum-exp is what
    ``score_samples`` reports and its softmax the responsibilities. Computed by the
    E-step kernel of :meth:`VariationalPosterior.e_step_kernel`.

    Parameters
    ----------
    X : Tensor of shape (n, D)
        A chunk of rows (cast to the posterior's dtype).
    posterior : VariationalPosterior
        The current posterior.

    Returns
    -------
    Tensor of shape (n, K)
        Expected weighted log-densities: the plug-in ``log N(x | m_k, Sigma_k)`` plus
        :meth:`VariationalPosterior.log_offsets`.

    See Also
    --------
    mixtorch.BayesianGaussianMixture.score_samples : The log-sum-exp of this.
    VariationalPosterior.log_offsets : The per-component constants.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       equations 10.64-10.66.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.covariance import DiagCovariance
    >>> from mixtorch.fit.variational import VariationalPosterior, expected_log_prob
    >>> posterior = VariationalPosterior(
    ...     weight_concentration=(torch.tensor([3.0, 1.0], dtype=torch.float64),),
    ...     mean_precision=torch.tensor([10.0, 10.0], dtype=torch.float64),
    ...     means=torch.tensor([[0.0], [5.0]], dtype=torch.float64),
    ...     degrees_of_freedom=torch.tensor([10.0, 10.0], dtype=torch.float64),
    ...     covariance=DiagCovariance(torch.ones(2, 1, dtype=torch.float64)),
    ... )
    >>> posterior.weights()
    tensor([0.7500, 0.2500], dtype=torch.float64)
    >>> expected_log_prob(torch.tensor([[0.5], [4.0]]), posterior).argmax(1)
    tensor([0, 1])
    """
    return posterior.e_step_kernel.weighted_log_prob(X.to(posterior.means.dtype))

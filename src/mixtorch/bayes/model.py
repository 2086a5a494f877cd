"""The fully Bayesian Gaussian mixture as a Pyro model, with assignments summed out.

weights ~ Dirichlet(alpha 1_K); for each component k and feature d,
mean_kd ~ Normal(m_d, s_d) and scale_kd ~ HalfCauchy(c_d) (or LogNormal(log c_d, 1)).
With ``covariance_type='diag'`` each observation ~ sum_k weights_k Normal(mean_k,
diag(scale_k^2)); with ``'full'`` each component also has a correlation matrix
``C_k = L_k L_k^T``, ``L_k ~ LKJCholesky(D, eta)``, and covariance
``diag(scale_k) C_k diag(scale_k)``. Summing the categorical assignment out of the
likelihood (log-sum-exp) leaves a smooth, continuous posterior that both SVI and NUTS
can work with.
"""

from __future__ import annotations

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from ._components import component_family, diag_weighted_log_prob, full_weighted_log_prob
from .prior import SCALE_FAMILIES, MixturePrior, make_prior
from .relabel import relabel

__all__ = [
    "SCALE_FAMILIES",
    "MixturePrior",
    "full_log_likelihood",
    "log_likelihood",
    "make_prior",
    "mixture_model",
    "relabel",
]


def log_likelihood(X: Tensor, weights: Tensor, locs: Tensor, scales: Tensor) -> Tensor:
    """log p(x_i | theta) of a diagonal mixture with assignments summed out, batched
    over draws.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data.
    weights : Tensor of shape (..., K)
        Mixture weights of each draw.
    locs : Tensor of shape (..., K, n_features)
        Component means of each draw.
    scales : Tensor of shape (..., K, n_features)
        Component standard deviations of each draw.

    Returns
    -------
    Tensor of shape (..., n_samples)
        ``log sum_k w_k prod_d Normal(x_id | loc_kd, scale_kd)`` per draw and row.

    See Also
    --------
    full_log_likelihood : Full covariances.
    mixture_model : The model whose likelihood this is.

    Examples
    --------
    >>> import torch
    >>> from scipy.stats import norm
    >>> from mixtorch.bayes import log_likelihood
    >>> X = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> weights = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> locs = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    >>> scales = torch.ones(2, 1, dtype=torch.float64)
    >>> values = log_likelihood(X, weights, locs, scales)
    >>> expected = np.log(0.5 * norm.pdf([0.0, 1.0], 0, 1) + 0.5 * norm.pdf([0.0, 1.0], 2, 1))
    >>> np.allclose(values.numpy(), expected)
    True
    """
    return torch.logsumexp(diag_weighted_log_prob(X, weights, locs, scales), dim=-1)


def full_log_likelihood(X: Tensor, weights: Tensor, locs: Tensor, scale_tril: Tensor) -> Tensor:
    """log p(x_i | theta) of a full-covariance mixture with assignments summed out,
    batched over draws.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data.
    weights : Tensor of shape (..., K)
        Mixture weights of each draw.
    locs : Tensor of shape (..., K, n_features)
        Component means of each draw.
    scale_tril : Tensor of shape (..., K, n_features, n_features)
        Lower Cholesky factors of the component covariances.

    Returns
    -------
    Tensor of shape (..., n_samples)
        ``log sum_k w_k N(x_i | loc_k, L_k L_k^T)`` per draw and row.

    See Also
    --------
    log_likelihood : Diagonal covariances.
    mixture_model : The model whose likelihood this is.

    Examples
    --------
    >>> import torch
    >>> from scipy.stats import multivariate_normal
    >>> from mixtorch.bayes import full_log_likelihood
    >>> X = torch.tensor([[0.0, 0.5], [1.0, -1.0]], dtype=torch.float64)
    >>> cov = torch.tensor([[[1.0, 0.8], [0.8, 1.0]]], dtype=torch.float64)
    >>> values = full_log_likelihood(X, torch.ones(1, dtype=torch.float64),
    ...                              torch.zeros(1, 2, dtype=torch.float64),
    ...                              torch.linalg.cholesky(cov))
    >>> np.allclose(values.numpy(), multivariate_normal([0, 0], cov[0].numpy()).logpdf(X))
    True
    """
    return torch.logsumexp(full_weighted_log_prob(X, weights, locs, scale_tril), dim=-1)


def mixture_model(X: Tensor, n_components: int, prior: MixturePrior) -> None:
    """The Pyro model; observations enter through one ``pyro.factor`` site.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The observations.
    n_components : int
        Number of components K.
    prior : MixturePrior
        Its ``covariance_type`` chooses the sites: ``weights``, ``locs``, ``scales``
        and, for ``'full'`` with two or more features, ``corr_cholesky``.

    See Also
    --------
    make_prior : Prior settings with data-scaled defaults.
    mixtorch.bayes.SVIGaussianMixture : Fits it by SVI.
    mixtorch.bayes.MCMCGaussianMixture : Samples it with NUTS.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2 (the mixture with its assignments summed out).
    .. [2] D. Lewandowski, D. Kurowicka and H. Joe (2009), "Generating random
       correlation matrices based on vines and extended onion method", *Journal of
       Multivariate Analysis* 100(9).

    Examples
    --------
    >>> import pyro
    >>> import torch
    >>> from mixtorch.bayes import make_prior, mixture_model
    >>> X = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> trace = pyro.poutine.trace(mixture_model).get_trace(X, 3, make_prior(X))
    >>> [name for name in trace.nodes if not name.startswith("_")]
    ['weights', 'components', 'locs', 'scales', 'observations']
    >>> full = make_prior(X, covariance_type="full")
    >>> trace = pyro.poutine.trace(mixture_model).get_trace(X, 3, full)
    >>> trace.nodes["corr_cholesky"]["value"].shape
    torch.Size([3, 2, 2])
    """
    family = component_family(prior.covariance_type)
    concentration = X.new_full((n_components,), prior.weight_concentration)
    weights = pyro.sample("weights", dist.Dirichlet(concentration))
    with pyro.plate("components", n_components):
        components = family.sample_components(prior, X.shape[1])
    log_density = torch.logsumexp(
        family.weighted_log_prob(X, {"weights": weights, **components}), -1
    )
    pyro.factor("observations", log_density.sum(-1))

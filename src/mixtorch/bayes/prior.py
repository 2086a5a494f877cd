"""Prior settings of the Pyro mixture model, with data-scaled defaults."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import pyro.distributions as dist
import torch
from torch import Tensor

__all__ = ["SCALE_FAMILIES", "MixturePrior", "make_prior"]

SCALE_FAMILIES = ("halfcauchy", "lognormal")


@dataclass(frozen=True)
class MixturePrior:
    """Prior settings of :func:`mixtorch.bayes.mixture_model`.

    Attributes
    ----------
    weight_concentration : float
        Symmetric Dirichlet concentration ``alpha`` of the weights.
    mean_loc, mean_scale : Tensor of shape (n_features,)
        Normal prior of every component mean.
    scale_scale : Tensor of shape (n_features,)
        Scale of the HalfCauchy prior (or median of the LogNormal prior) of the
        per-feature standard deviations.
    scale_family : {'halfcauchy', 'lognormal'}
        Family of the prior of the standard deviations.
    covariance_type : {'diag', 'full'}
        ``'full'`` adds an LKJ prior on each component's correlation matrix (through its
        Cholesky factor); the covariance is ``diag(scales) C diag(scales)``.
    lkj_concentration : float
        Concentration ``eta`` of the LKJ prior: 1 is uniform over correlation matrices,
        larger values favour weaker correlations.

    See Also
    --------
    make_prior : Builds one with data-scaled defaults.
    mixture_model : The model it parametrises.

    References
    ----------
    .. [1] D. Lewandowski, D. Kurowicka and H. Joe (2009), "Generating random
       correlation matrices based on vines and extended onion method", *Journal of
       Multivariate Analysis* 100(9) (the LKJ prior).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.bayes import make_prior
    >>> prior = make_prior(torch.tensor([[0.0], [2.0], [4.0]], dtype=torch.float64))
    >>> prior.weight_concentration, prior.scale_family, prior.covariance_type
    (1.0, 'halfcauchy', 'diag')
    >>> prior.mean_loc
    tensor([2.], dtype=torch.float64)
    """

    weight_concentration: float
    mean_loc: Tensor
    mean_scale: Tensor
    scale_scale: Tensor
    scale_family: str = "halfcauchy"
    covariance_type: str = "diag"
    lkj_concentration: float = 1.0

    def scale_distribution(self) -> Any:
        """The prior of one component's standard deviations, a batch of shape (n_features,).

        Returns
        -------
        pyro.distributions.Distribution
            ``HalfCauchy(scale_scale)`` or ``LogNormal(log(scale_scale), 1)``.

        See Also
        --------
        mixture_model : Samples the ``scales`` site from it.
        """
        if self.scale_family == "lognormal":
            return dist.LogNormal(torch.log(self.scale_scale), 1.0)
        return dist.HalfCauchy(self.scale_scale)


def make_prior(
    X: Tensor,
    weight_concentration: float = 1.0,
    mean_prior: Any = None,
    mean_prior_scale: Any = None,
    scale_prior: Any = None,
    scale_family: str = "halfcauchy",
    *,
    covariance_type: str = "diag",
    lkj_concentration: float = 1.0,
) -> MixturePrior:
    """Prior settings with data-scaled defaults for whatever is not given.

    Means default to ``Normal(data mean, 2 * data std)`` per feature, so every component
    can sit anywhere in the data's range; scales default to ``HalfCauchy(data std)``
    (heavy-tailed, so clusters much narrower than the data remain plausible).

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data the defaults are scaled to.
    weight_concentration : float, default=1.0
        Symmetric Dirichlet concentration of the weights (positive).
    mean_prior : float or array-like of shape (n_features,), optional
        Prior mean of the component means; the data mean by default.
    mean_prior_scale : float or array-like of shape (n_features,), optional
        Prior standard deviation of the component means (positive); twice the data
        standard deviation by default.
    scale_prior : float or array-like of shape (n_features,), optional
        Scale of the prior of the standard deviations (positive); the data standard
        deviation by default.
    scale_family : {'halfcauchy', 'lognormal'}, default='halfcauchy'
        Family of the prior of the standard deviations.
    covariance_type : {'diag', 'full'}, default='diag'
        ``'full'`` adds an LKJ prior on the correlations.
    lkj_concentration : float, default=1.0
        LKJ concentration ``eta`` (positive).

    Returns
    -------
    MixturePrior
        The settings, tensors in ``X``'s dtype and device.

    Raises
    ------
    ValueError
        If ``scale_family`` is unknown, a concentration is not a positive number, or a
        given prior value is not finite (or not positive, for the scales).

    See Also
    --------
    MixturePrior : The settings returned.
    mixtorch.bayes.SVIGaussianMixture : Builds its prior with it.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.bayes import make_prior
    >>> X = torch.tensor([[0.0, 10.0], [2.0, 10.0], [4.0, 16.0]], dtype=torch.float64)
    >>> prior = make_prior(X, weight_concentration=0.5)
    >>> prior.mean_loc, prior.weight_concentration
    (tensor([ 2., 12.], dtype=torch.float64), 0.5)
    """
    if scale_family not in SCALE_FAMILIES:
        raise ValueError(f"scale_family must be one of {SCALE_FAMILIES}, got {scale_family!r}.")
    for name, value in (
        ("weight_concentration_prior", weight_concentration),
        ("lkj_concentration", lkj_concentration),
    ):
        valid = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (valid and math.isfinite(value) and value > 0):
            raise ValueError(f"{name} must be a positive number, got {value!r}.")
    spread = X.std(0).clamp_min(torch.finfo(X.dtype).tiny) if X.shape[0] > 1 else X.new_ones(1)
    spread = spread.expand(X.shape[1])
    return MixturePrior(
        weight_concentration=float(weight_concentration),
        mean_loc=_given(X, mean_prior, X.mean(0), "mean_prior", False),
        mean_scale=_given(X, mean_prior_scale, 2.0 * spread, "mean_prior_scale", True),
        scale_scale=_given(X, scale_prior, spread.clone(), "scale_prior", True),
        scale_family=scale_family,
        covariance_type=covariance_type,
        lkj_concentration=float(lkj_concentration),
    )


def _given(X: Tensor, value: Any, default: Tensor, name: str, positive: bool) -> Tensor:
    if value is None:
        return default
    tensor = torch.as_tensor(value, dtype=X.dtype, device=X.device).expand(X.shape[1])
    if not bool(torch.isfinite(tensor).all()) or (positive and bool((tensor <= 0).any())):
        adjective = "positive and finite" if positive else "finite"
        raise ValueError(f"{name} must be {adjective}, got {value!r}.")
    return tensor.clone()

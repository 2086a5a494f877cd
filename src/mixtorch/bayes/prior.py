"""Prior settings of the Pyro mixture model, with data-scaled defaults."""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro.distributions as dist
import torch
from torch import Tensor

from ..covariance import DiagCovariance, FullCovariance

__all__ = ["COVARIANCE_TYPES", "SCALE_FAMILIES", "MixturePrior", "make_prior"]

SCALE_FAMILIES = ("halfcauchy", "lognormal")

#: The covariance kinds of the Pyro models, named by their covariance classes (the
#: families of :mod:`mixtorch.bayes._components` import this module, so it cannot ask them).
COVARIANCE_TYPES = (DiagCovariance.kind, FullCovariance.kind)


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
    TypeError
        If ``X`` is not a 2-D floating-point tensor.
    ValueError
        If ``X`` has no rows or holds NaN or infinity; ``scale_family`` or
        ``covariance_type`` is unknown; a concentration is not a positive number; a given
        prior value is not finite (or not positive, for the scales) or has neither one
        value nor one per feature; or a default would be degenerate: a feature of ``X``
        is constant (the defaults scaled to its standard deviation would be zero; the
        message says to drop or jitter it, as explicit priors would leave the posterior
        of its scale piled up at zero) or so large that its standard deviation overflows.

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
    _check_data(X)
    if scale_family not in SCALE_FAMILIES:
        raise ValueError(f"scale_family must be one of {SCALE_FAMILIES}, got {scale_family!r}.")
    if not isinstance(covariance_type, str) or covariance_type not in COVARIANCE_TYPES:
        raise ValueError(
            f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {covariance_type!r}."
        )
    check_positive_real(weight_concentration, "weight_concentration_prior")
    check_positive_real(lkj_concentration, "lkj_concentration")
    spread = X.std(0) if X.shape[0] > 1 else X.new_ones(X.shape[1])
    center = X.mean(0)
    if mean_prior_scale is None or scale_prior is None:
        _refuse_features(spread == 0, _CONSTANT)
        _refuse_features(~torch.isfinite(spread), _OVERFLOW)
    if mean_prior is None:
        _refuse_features(~torch.isfinite(center), _OVERFLOW)
    return MixturePrior(
        weight_concentration=float(weight_concentration),
        mean_loc=_given(X, mean_prior, center, "mean_prior", False),
        mean_scale=_given(X, mean_prior_scale, 2.0 * spread, "mean_prior_scale", True),
        scale_scale=_given(X, scale_prior, spread.clone(), "scale_prior", True),
        scale_family=scale_family,
        covariance_type=covariance_type,
        lkj_concentration=float(lkj_concentration),
    )


def _check_data(X: Any) -> None:
    """TypeError unless ``X`` is a 2-D floating tensor; ValueError for no rows, NaN or
    infinity (the defaults and the likelihood would be NaN)."""
    if not (isinstance(X, Tensor) and X.ndim == 2 and X.is_floating_point()):
        what = f"a {X.ndim}-D {X.dtype} tensor" if isinstance(X, Tensor) else type(X).__name__
        raise TypeError(
            "X must be a 2-D floating-point torch.Tensor of shape (n_samples, n_features), "
            f"got {what}; convert it with torch.as_tensor(X, dtype=torch.float64)."
        )
    if X.shape[0] < 1 or not bool(torch.isfinite(X).all()):
        raise ValueError(
            "X must have at least one row and hold only finite values (no NaN or infinity); "
            "fill in or drop the rows with missing entries first."
        )


_CONSTANT = (
    "are constant (one value in every row): the default priors, scaled to the data's "
    "standard deviation, would be zero, and no prior helps, since the posterior of their "
    "standard deviation piles up at zero with no reg_covar to hold it (SVIGaussianMixture "
    "and MCMCGaussianMixture refuse such data for that reason). Drop those features, or "
    "jitter them (add noise small next to the other features' spread) if they must stay"
)
_OVERFLOW = (
    "are so large that their mean or standard deviation overflows; rescale X (e.g. with "
    "sklearn.preprocessing.StandardScaler)"
)


def _refuse_features(bad: Tensor, problem: str) -> None:
    """ValueError naming the features where ``bad`` holds (a default prior would be
    degenerate there)."""
    if bool(bad.any()):
        features = bad.nonzero().flatten().tolist()
        raise ValueError(f"Feature(s) {features} of X {problem}.")


def _given(X: Tensor, value: Any, default: Tensor, name: str, positive: bool) -> Tensor:
    if value is None:
        return default
    check_per_feature(value, name, X.shape[1], positive=positive)
    tensor = torch.as_tensor(value, dtype=X.dtype, device=X.device)
    return tensor.expand(X.shape[1]).clone()


def check_positive_real(value: Any, name: str) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a finite real number > 0
    (booleans are refused)."""
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (valid and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


def check_per_feature(value: Any, name: str, n_features: int, *, positive: bool) -> None:
    """A prior setting given per feature: None, a number, or an array of shape
    ``(n_features,)``; finite, and positive when ``positive``.

    Raises a ``TypeError`` for non-numeric values and a ``ValueError`` naming ``name``
    and the expected shape otherwise.
    """
    if value is None:
        return
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a number or an array of {n_features} numbers, got {value!r}."
        ) from error
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, n_features)):
        raise ValueError(
            f"{name} must be a number or an array of shape ({n_features},) (one value per "
            f"feature of X), got shape {array.shape}."
        )
    if not np.isfinite(array).all() or (positive and not (array > 0).all()):
        adjective = "positive and finite" if positive else "finite"
        raise ValueError(f"{name} must be {adjective}, got {value!r}.")

"""The data side of KDE bandwidth selection: effective sample size, weighted mean and
covariance, the rules of thumb, and repeated points (see :mod:`mixtorch.fit.bandwidth`)."""

from __future__ import annotations

import warnings

import torch
from torch import Tensor

from .._warnings import user_stacklevel

__all__ = [
    "DuplicatePointsWarning",
    "copy_weight",
    "data_covariance",
    "duplicate_labels",
    "effective_n",
    "rule_of_thumb_factor",
    "weighted_mean",
]


class DuplicatePointsWarning(UserWarning):
    """The data hold repeated points; leave-one-out leaves out every copy.

    Without that, a held-out point keeps its copies and the leave-one-out likelihood
    grows without bound as the bandwidth goes to zero (see :mod:`mixtorch.fit.bandwidth`).

    See Also
    --------
    duplicate_labels : Issues it.
    mixtorch.GaussianKDE : Whose ``bandwidth='loo'`` may issue it.

    Examples
    --------
    >>> import warnings
    >>> import torch
    >>> from mixtorch.fit.bandwidth import DuplicatePointsWarning, duplicate_labels
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     _ = duplicate_labels(torch.tensor([[1.0], [1.0], [2.0]]))
    >>> [issubclass(w.category, DuplicatePointsWarning) for w in caught]
    [True]
    """


def duplicate_labels(X: Tensor) -> Tensor | None:
    """Label of each row's distinct value, shape (N,), or None when all rows differ.

    Warns with :class:`DuplicatePointsWarning` when there are repeated rows.

    Parameters
    ----------
    X : Tensor of shape (N, D)
        The data.

    Returns
    -------
    Tensor of shape (N,) or None
        Equal rows share a label (the index of their value among the sorted distinct
        rows); None when no row repeats.

    Warns
    -----
    DuplicatePointsWarning
        When some row repeats.

    See Also
    --------
    mixtorch.fit.bandwidth.loo_log_likelihood : Its ``copies`` argument.

    Examples
    --------
    >>> import warnings
    >>> import torch
    >>> from mixtorch.fit.bandwidth import duplicate_labels
    >>> duplicate_labels(torch.tensor([[0.0], [1.0]])) is None
    True
    >>> with warnings.catch_warnings():
    ...     warnings.simplefilter("ignore")
    ...     duplicate_labels(torch.tensor([[2.0], [1.0], [2.0]]))
    tensor([1, 0, 1])
    """
    _, labels, counts = torch.unique(X, dim=0, return_inverse=True, return_counts=True)
    if int(counts.max()) <= 1:
        return None
    repeated = int((counts > 1).sum())
    warnings.warn(
        f"The data hold {X.shape[0] - counts.shape[0]} repeated rows ({repeated} distinct "
        "values occur more than once). The leave-one-out likelihood leaves out every copy "
        "of the held-out point; without that it would choose a bandwidth near zero.",
        DuplicatePointsWarning,
        stacklevel=user_stacklevel(),
    )
    return labels


def copy_weight(weights: Tensor, copies: Tensor | None) -> Tensor:
    """Total weight of each point's copies (itself included), shape (N,)."""
    if copies is None:
        return weights
    totals = torch.zeros_like(weights).index_add_(0, copies, weights)
    return totals[copies]


def effective_n(weights: Tensor) -> float:
    """Kish's effective sample size ``1 / sum(w**2)`` of normalised weights.

    Parameters
    ----------
    weights : Tensor of shape (N,)
        Non-negative weights summing to one.

    Returns
    -------
    float
        N for equal weights, fewer the more uneven they are; SciPy's
        ``gaussian_kde.neff``.

    See Also
    --------
    rule_of_thumb_factor : Takes it as ``n_effective``.

    References
    ----------
    .. [1] L. Kish (1965), *Survey Sampling*, Wiley.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.bandwidth import effective_n
    >>> effective_n(torch.full((4,), 0.25)), effective_n(torch.tensor([0.5, 0.25, 0.25]))
    (4.0, 2.6666666666666665)
    """
    return float(1.0 / weights.to(torch.float64).square().sum())


def weighted_mean(X: Tensor, weights: Tensor) -> Tensor:
    """``sum_i w_i x_i`` (normalised weights), shape (D,).

    Summed about the first row: a float32 dot product of large offset values loses the
    spread (a 1e-6 relative error on 1000 is 1e-3), the shifted one does not.

    Parameters
    ----------
    X : Tensor of shape (N, D)
        The data.
    weights : Tensor of shape (N,)
        Normalised weights, in ``X``'s dtype.

    Returns
    -------
    Tensor of shape (D,)
        The weighted mean.

    See Also
    --------
    data_covariance : The weighted covariance about it.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.bandwidth import weighted_mean
    >>> weighted_mean(torch.tensor([[1000.0], [1001.0]]), torch.tensor([0.75, 0.25]))
    tensor([1000.2500])
    """
    shift = X[0]
    return shift + weights @ (X - shift)


def data_covariance(X: Tensor, weights: Tensor) -> Tensor:
    """Weighted unbiased covariance (``numpy.cov(X.T, aweights=weights)``), shape (D, D).

    ``weights`` must be normalised. Computed about the weighted mean, so float32 data with
    a large offset stays accurate.

    Parameters
    ----------
    X : Tensor of shape (N, D)
        The data.
    weights : Tensor of shape (N,)
        Normalised weights, in ``X``'s dtype.

    Returns
    -------
    Tensor of shape (D, D)
        ``sum_i w_i (x_i - m)(x_i - m)^T / (1 - sum_i w_i^2)``.

    Raises
    ------
    ValueError
        If fewer than two points have positive weight.

    See Also
    --------
    weighted_mean, effective_n

    Examples
    --------
    >>> import numpy as np
    >>> import torch
    >>> from mixtorch.fit.bandwidth import data_covariance
    >>> X = torch.tensor([[0.0, 1.0], [2.0, 0.0], [5.0, 4.0]], dtype=torch.float64)
    >>> weights = torch.tensor([0.5, 0.3, 0.2], dtype=torch.float64)
    >>> expected = np.cov(X.numpy().T, aweights=weights.numpy())
    >>> np.allclose(data_covariance(X, weights).numpy(), expected)
    True
    """
    centred = X - weighted_mean(X, weights)
    scatter = (centred * weights[:, None]).T @ centred
    denominator = 1.0 - float(weights.to(torch.float64).square().sum())
    if not denominator > 0:
        raise ValueError("The data covariance needs at least two points with positive weight.")
    return scatter / denominator


def rule_of_thumb_factor(rule: str, n_effective: float, n_features: int) -> float:
    """Scott's ``n**(-1/(D+4))`` or Silverman's ``(n (D+2)/4)**(-1/(D+4))``.

    The kernel covariance is ``factor**2`` times the data covariance, as in SciPy's
    ``gaussian_kde``.

    Parameters
    ----------
    rule : {'scott', 'silverman'}
        The rule of thumb.
    n_effective : float
        The (effective) sample size (:func:`effective_n`).
    n_features : int
        D.

    Returns
    -------
    float
        The bandwidth factor.

    Raises
    ------
    ValueError
        If ``rule`` is not one of the two names.

    See Also
    --------
    effective_n : ``n_effective`` of weighted data.
    scipy.stats.gaussian_kde : Same factors (``scotts_factor``, ``silverman_factor``).

    References
    ----------
    .. [1] D. W. Scott (1992), *Multivariate Density Estimation*, Wiley.
    .. [2] B. W. Silverman (1986), *Density Estimation for Statistics and Data Analysis*,
       Chapman & Hall.

    Examples
    --------
    >>> import math
    >>> import numpy as np
    >>> from scipy.stats import gaussian_kde
    >>> from mixtorch.fit.bandwidth import rule_of_thumb_factor
    >>> kde = gaussian_kde(np.random.default_rng(0).normal(size=(2, 50)))
    >>> math.isclose(rule_of_thumb_factor("scott", 50, 2), kde.scotts_factor())
    True
    >>> math.isclose(rule_of_thumb_factor("silverman", 50, 2), kde.silverman_factor())
    True
    """
    exponent = -1.0 / (n_features + 4)
    if rule == "scott":
        return float(n_effective**exponent)
    if rule == "silverman":
        return float((n_effective * (n_features + 2) / 4.0) ** exponent)
    raise ValueError(f"Unknown bandwidth rule {rule!r}; expected 'scott' or 'silverman'.")

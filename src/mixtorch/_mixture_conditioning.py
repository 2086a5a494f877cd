"""Marginals and conditionals of a mixture: that part of :class:`~mixtorch.Mixture`.

The block algebra lives in :mod:`mixtorch.conditioning`; these methods check the
feature indices and values and build the resulting mixtures.
"""

from __future__ import annotations

from typing import Any, TypeVar

from ._features import as_rows, check_features
from ._mixture_parameters import MixtureParameters
from ._validation import refuse_meta
from .conditioning import Conditionals, condition_unchecked, marginal

__all__ = ["MixtureConditioning"]

#: The caller's mixture class, which the marginal and conditional mixtures keep.
MixtureT = TypeVar("MixtureT", bound="MixtureConditioning")


class MixtureConditioning(MixtureParameters):
    """:meth:`marginal`, :meth:`conditionals` and :meth:`condition` for
    :class:`~mixtorch.Mixture`."""

    def marginal(self: MixtureT, features: Any) -> MixtureT:
        """The mixture of the features ``features`` (indices, in that order) alone.

        Weights are kept; means and covariances are the blocks of those features, of the
        same covariance kind.

        Parameters
        ----------
        features : sequence of int
            Indices of the features to keep, no repeats (ValueError otherwise).

        Returns
        -------
        Mixture
            K components in ``len(features)`` dimensions.

        See Also
        --------
        Mixture.condition, mixtorch.conditioning.marginal

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 1.0, 2.0]], [[1.0, 2.0, 3.0]],
        ...                                   covariance_type="diag", dtype=torch.float64)
        >>> mixture.marginal([2, 0]).means
        tensor([[2., 0.]], dtype=torch.float64)
        """
        index = check_features(features, self.n_features)
        means, covariance = marginal(self.means, self.covariance, index)
        return type(self)(self.weights, means, covariance)

    def conditionals(self, features: Any, values: Any) -> Conditionals:
        """``p(x_rest | x[features] = v)`` for every row ``v`` of ``values``, batched.

        Parameters
        ----------
        features : sequence of int
            Indices of the observed features; the others (in increasing order) are free.
        values : array-like of shape (n_rows, len(features)) or (len(features),)
            Observed values, one row per conditional.

        Returns
        -------
        Conditionals
            Per-row log-weights (n_rows, K), per-row component means (n_rows, K, F) and the
            conditional covariance (the same for every row), with ``mean()``,
            ``variance()`` and ``sample()``.

        See Also
        --------
        Mixture.condition, mixtorch.GaussianMixtureRegressor

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.5, 1.0]]],
        ...                                   dtype=torch.float64)
        >>> mixture.conditionals([0], [[2.0], [-2.0]]).mean()
        tensor([[ 1.],
                [-1.]], dtype=torch.float64)
        """
        index = check_features(features, self.n_features, leave_one=True)
        rows = as_rows(_values_with_data(values), index.numel(), self.dtype, self.device)
        return condition_unchecked(self.log_weights, self.means, self.covariance, index, rows)

    def condition(self: MixtureT, features: Any, values: Any) -> MixtureT:
        """The mixture of the other features given ``x[features] = values`` (one row).

        Component weights become ``w_k N(values | mu_k, S_k)`` (the marginal likelihood
        of ``values`` under component ``k``) renormalised; means and covariances are the
        Gaussian conditionals, of the same covariance kind.

        Parameters
        ----------
        features : sequence of int
            Indices of the observed features.
        values : array-like of shape (len(features),)
            Their values; more than one row raises ValueError (use :meth:`conditionals`).

        Returns
        -------
        Mixture
            K components over the remaining features, in increasing index order.

        See Also
        --------
        Mixture.conditionals, Mixture.marginal

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.5, 1.0]]],
        ...                                   dtype=torch.float64)
        >>> given = mixture.condition([0], [2.0])
        >>> given.means, given.covariance.covariances
        (tensor([[1.]], dtype=torch.float64), tensor([[[0.7500]]], dtype=torch.float64))
        """
        conditionals = self.conditionals(features, values)
        if conditionals.means.shape[0] != 1:
            raise ValueError("condition takes one row of values; use conditionals() for many rows.")
        weights = conditionals.log_weights[0].exp()
        return type(self)(weights / weights.sum(), conditionals.means[0], conditionals.covariance)


def _values_with_data(values: Any) -> Any:
    """``values`` unchanged, unless it holds no numbers at all: None is a TypeError (it
    would otherwise read as NaN), a tensor on the 'meta' device a ValueError."""
    if values is None:
        raise TypeError(
            "values must be the observed values of the features (a number, a sequence or an "
            "array), got None."
        )
    refuse_meta(values, "values")
    return values

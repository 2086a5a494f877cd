"""``BayesianGaussianMixture``'s prior: the hyper-parameters a user gave, checked, and
the missing ones from the data of every rank."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ._validation import real_values
from .covariance import Covariance
from .fit.variational import VariationalPrior, data_prior_moments

__all__ = ["PRIOR_TYPES", "build_prior"]

#: ``weight_concentration_prior_type``'s values, as scikit-learn names them.
PRIOR_TYPES = ("dirichlet_process", "dirichlet_distribution")


def build_prior(
    chunks: Sequence[torch.Tensor],
    kind: type[Covariance],
    *,
    n_components: int,
    weight_concentration_prior_type: str,
    weight_concentration_prior: float | None,
    mean_precision_prior: float | None,
    mean_prior: Any,
    degrees_of_freedom_prior: float | None,
    covariance_prior: Any,
) -> VariationalPrior:
    """The prior hyper-parameters with scikit-learn's defaults for the missing ones.

    Defaults: weight concentration ``1 / n_components``, mean precision 1, the data mean
    and (unbiased) data covariance of every rank's rows
    (:func:`~mixtorch.fit.variational.data_prior_moments`), ``n_features`` degrees of
    freedom.

    Parameters
    ----------
    chunks : sequence of Tensors of shape (n, n_features)
        This rank's rows.
    kind : Covariance subclass
        The covariance type, which gives ``covariance_prior``'s layout.
    n_components, weight_concentration_prior_type, weight_concentration_prior, \
mean_precision_prior, mean_prior, degrees_of_freedom_prior, covariance_prior
        As ``BayesianGaussianMixture``'s parameters.

    Returns
    -------
    VariationalPrior

    Raises
    ------
    ValueError
        If ``mean_prior`` or ``covariance_prior`` has the wrong shape, or
        ``degrees_of_freedom_prior`` is not above ``n_features - 1``.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.covariance import covariance_class
    >>> X = torch.tensor([[0.0, 0.0], [2.0, 0.0], [0.0, 2.0], [2.0, 2.0]], dtype=torch.float64)
    >>> prior = build_prior(
    ...     [X], covariance_class("diag"), n_components=4,
    ...     weight_concentration_prior_type="dirichlet_process",
    ...     weight_concentration_prior=None, mean_precision_prior=None, mean_prior=None,
    ...     degrees_of_freedom_prior=None, covariance_prior=None,
    ... )
    >>> prior.weight_concentration, prior.degrees_of_freedom, prior.mean.tolist()
    (0.25, 2.0, [1.0, 1.0])
    >>> prior.covariance.tolist()  # the unbiased variances
    [1.3333333333333333, 1.3333333333333333]
    """
    like = chunks[0]
    D = like.shape[1]
    mean, covariance, _ = data_prior_moments(lambda: chunks, kind)
    if mean_prior is not None:
        mean = torch.as_tensor(real_values(mean_prior, "mean_prior")).to(like)
        if mean.shape != (D,):
            raise ValueError(
                f"The parameter 'mean_prior' should have the shape of ({D},) (the prior "
                f"means of X's {D} features), but got {tuple(mean.shape)}."
            )
        if not bool(torch.isfinite(mean).all()):
            raise ValueError(f"mean_prior must be finite, got {mean.tolist()} (NaN or inf).")
    dof = float(D if degrees_of_freedom_prior is None else degrees_of_freedom_prior)
    if not dof > D - 1.0:
        raise ValueError(
            f"The parameter 'degrees_of_freedom_prior' should be greater than {D - 1}, "
            f"but got {dof:.3f}. Give a value above n_features - 1 = {D - 1}, or None "
            f"for n_features = {D}."
        )
    if covariance_prior is not None:
        covariance = _given_covariance_prior(covariance_prior, kind, like)
    concentration = weight_concentration_prior
    return VariationalPrior(
        weight_concentration=float(1.0 / n_components if concentration is None else concentration),
        process=weight_concentration_prior_type == "dirichlet_process",
        mean_precision=float(1.0 if mean_precision_prior is None else mean_precision_prior),
        mean=mean,
        degrees_of_freedom=dof,
        covariance=covariance,
    )


def _given_covariance_prior(
    value: Any, covariance: type[Covariance], X: torch.Tensor
) -> torch.Tensor:
    """``covariance_prior`` as a tensor, checked for shape and positive definiteness."""
    kind = covariance.kind
    expected = covariance.prior_covariance_shape(X.shape[1])
    prior = torch.as_tensor(real_values(value, "covariance_prior")).to(X)
    if tuple(prior.shape) != expected:
        raise ValueError(
            f"The parameter '{kind} covariance_prior' should have the shape of "
            f"{expected}, but got {tuple(prior.shape)}."
        )
    if not bool(torch.isfinite(prior).all()):
        raise ValueError("covariance_prior must be finite (it holds NaN or inf).")
    covariance.check_prior_covariance(prior)
    return prior

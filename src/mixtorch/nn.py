"""Differentiable Gaussian and Gaussian-mixture densities as ``torch.nn.Module`` objects.

Every parameter is unconstrained, so any optimiser can move it anywhere and the model
stays valid:

- weights are ``softmax(logits)``;
- ``diag`` and ``spherical`` scales are ``exp(log_scale)`` (standard deviations);
- ``full`` and ``tied`` keep an unconstrained (D, D) matrix per factor, of which only the
  lower triangle is used, with ``exp`` applied to its diagonal; ``Sigma = L L^T`` is then
  always symmetric positive definite.

``reg_covar`` (a fixed number, not a parameter) is added to every covariance diagonal,
``Sigma = L L^T + reg_covar I``; it keeps the likelihood bounded when a component
collapses onto a single point. With ``reg_covar = 0`` the factor ``L`` is used directly.

The modules are meant to be used inside larger models (for instance a learned prior over
latent codes); :func:`mixtorch.fit.gradient.fit_gradient` fits one to data by minimising
the negative log-likelihood, and :meth:`GaussianMixtureModule.to_mixture` /
:meth:`GaussianMixtureModule.from_mixture` convert to and from the :class:`~mixtorch.Mixture`
value object shared by the estimators. This module adds the conversions to and from
fitted estimators (through the estimators' public ``mixture_`` and
:meth:`~mixtorch.GaussianMixture.from_mixture`); the parametrisation itself lives in
``mixtorch._module``, below the estimators, where the gradient fitter uses it.
"""

from __future__ import annotations

from typing import Any

from sklearn.utils.validation import check_is_fitted

from . import _module
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixtureModule", "GaussianModule"]


class GaussianMixtureModule(_module.GaussianMixtureModule):
    __doc__ = _module.GaussianMixtureModule.__doc__

    @classmethod
    def from_estimator(cls, estimator: Any) -> Any:
        """A module with the parameters of a fitted mixtorch estimator (its ``mixture_``)."""
        check_is_fitted(estimator, "mixture_")
        return cls.from_mixture(estimator.mixture_)

    def to_estimator(self, **params: Any) -> Any:
        """A fitted :class:`~mixtorch.GaussianMixture` with these parameters.

        ``params`` are further constructor parameters (``random_state``, ...). Fitted
        attributes are NumPy arrays; computation stays on the module's device and dtype.
        """
        mixture = self.to_mixture()
        options = {"dtype": mixture.dtype, "device": mixture.device, **params}
        return GaussianMixture.from_mixture(mixture, **options)


class GaussianModule(_module.GaussianModule, GaussianMixtureModule):
    __doc__ = _module.GaussianModule.__doc__

    def to_estimator(self, **params: Any) -> Any:
        """A fitted :class:`~mixtorch.Gaussian` with these parameters."""
        mixture = self.to_mixture()
        options = {"dtype": mixture.dtype, "device": mixture.device, **params}
        return Gaussian.from_mixture(mixture, **options)

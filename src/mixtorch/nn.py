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

import torch
from sklearn.utils.validation import check_is_fitted
from torch.distributions import Categorical, Distribution, MixtureSameFamily

from . import _module
from ._torch_interop import gaussian_components
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

    def to_torch(self) -> Any:
        """The module's current density as a ``torch.distributions.MixtureSameFamily``.

        Unlike :meth:`to_mixture` nothing is detached: the distribution's parameters are
        differentiable functions of the module's (``reg_covar`` included), so a loss on
        its ``log_prob`` or ``rsample`` backpropagates into ``logits``, ``means`` and
        the scales. Build it again after each optimiser step.

        Returns
        -------
        torch.distributions.MixtureSameFamily
            ``MultivariateNormal`` components for 'full' and 'tied' covariances,
            ``Independent(Normal, 1)`` ones for 'diag' and 'spherical'.

        Examples
        --------
        >>> import torch
        >>> from mixtorch.nn import GaussianMixtureModule
        >>> module = GaussianMixtureModule(2, 3, "diag", dtype=torch.float64)
        >>> x = torch.randn(5, 3, dtype=torch.float64)
        >>> distribution = module.to_torch()
        >>> torch.allclose(distribution.log_prob(x), module.log_prob(x))
        True
        >>> loss = -distribution.log_prob(x).mean()
        >>> loss.backward()
        >>> module.means.grad.shape
        torch.Size([2, 3])
        """
        mixing = Categorical(logits=self.log_weights())
        return MixtureSameFamily(mixing, self._components())

    def _components(self, index: int | None = None) -> Distribution:
        """The components (or the one at ``index``) as a differentiable distribution."""
        means = self.means if index is None else self.means[index]
        if self._structure.is_triangular():
            factor, _ = self._scale_tril()
            if index is not None and factor.ndim == 3:  # 'full'; a 'tied' factor is shared
                factor = factor[index]
            return gaussian_components(means, scale_tril=factor)
        scale = torch.exp(0.5 * self._log_variances())
        scale = scale[:, None] if scale.ndim == 1 else scale  # 'spherical': one per component
        return gaussian_components(means, scale=scale if index is None else scale[index])


class GaussianModule(_module.GaussianModule, GaussianMixtureModule):
    __doc__ = _module.GaussianModule.__doc__

    def to_estimator(self, **params: Any) -> Any:
        """A fitted :class:`~mixtorch.Gaussian` with these parameters."""
        mixture = self.to_mixture()
        options = {"dtype": mixture.dtype, "device": mixture.device, **params}
        return Gaussian.from_mixture(mixture, **options)

    def to_torch(self) -> Any:
        """The module's current density as a differentiable ``MultivariateNormal`` ('full',
        'tied') or ``Independent(Normal, 1)`` ('diag', 'spherical').

        Examples
        --------
        >>> import torch
        >>> from mixtorch.nn import GaussianModule
        >>> module = GaussianModule(2, dtype=torch.float64)
        >>> distribution = module.to_torch()
        >>> type(distribution).__name__
        'MultivariateNormal'
        >>> x = torch.ones(4, 2, dtype=torch.float64)
        >>> torch.allclose(distribution.log_prob(x), module.log_prob(x))
        True
        """
        return self._components(0)

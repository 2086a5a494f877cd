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

from . import _gaussian_module, _module
from ._torch_interop import gaussian_components
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture

__all__ = ["GaussianMixtureModule", "GaussianModule"]


class GaussianMixtureModule(_module.GaussianMixtureModule):
    """A mixture of K Gaussians in D dimensions with unconstrained parameters.

    Weights are ``softmax(logits)``; 'full'/'tied' covariances are ``L L^T`` with ``L`` the
    lower triangle of ``raw_cholesky`` with ``exp`` on its diagonal; 'diag'/'spherical'
    standard deviations are ``exp(log_scale)``. Any optimiser can move any parameter anywhere
    and the density stays valid. Fit one by minimising ``-module.log_prob(X).mean()`` [1]_.

    Parameters
    ----------
    n_components : int
        Number of components K (positive).
    n_features : int
        Dimension D of the points (positive).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Structure of the covariances, as in :class:`~mixtorch.GaussianMixture`.
    reg_covar : float, default=0.0
        Non-negative constant (not a parameter) added to every covariance diagonal; it
        keeps the likelihood bounded when a component collapses onto one point. It may be
        assigned later (``module.reg_covar = 1e-3``); the value is checked then too.
    dtype : torch.dtype, default=None
        The dtype of the parameters; None uses torch's default dtype. A float16 or
        bfloat16 module (also after ``module.half()``) does its triangular solves in
        float32 and returns densities in its own dtype.
    device : str or torch.device, default=None
        Device of the parameters; None uses the CPU.
    generator : torch.Generator, default=None
        Draws the initial means from a standard normal so that components differ; the
        initial weights are equal and every covariance is the identity.
    validate_args : bool, default=None
        Whether :meth:`log_prob` and the other methods taking ``x`` refuse NaN and
        infinity in it with a ``ValueError`` (a NaN point would make the whole batch's
        loss NaN). None follows :meth:`set_default_validate_args`, True unless Python
        runs with ``-O``, as for ``torch.distributions``. The check reads one boolean back
        from the device, so on a GPU it costs a host synchronisation per call (and a graph
        break under ``torch.compile``); switch it off in a training loop whose data are
        known to be finite, here or later with ``module.validate_args = False``. The type,
        shape and device of ``x`` are always checked (that costs nothing).

    Attributes
    ----------
    logits : Parameter of shape (K,)
        Unnormalised log-weights.
    means : Parameter of shape (K, D)
        Component means.
    raw_cholesky : Parameter of shape (K, D, D) ('full') or (D, D) ('tied')
        Unconstrained; the Cholesky factor is its lower triangle with ``exp`` of its diagonal.
    log_scale : Parameter of shape (K, D) ('diag') or (K,) ('spherical')
        Log standard deviations.

    Raises
    ------
    ValueError
        For non-positive sizes, an unknown ``covariance_type`` or a negative ``reg_covar``;
        ``load_state_dict`` raises it for a state dict holding NaN or infinity, and
        :meth:`log_prob` (with the other methods taking ``x``) for ``x`` holding NaN or
        infinity while ``validate_args`` is on.
    TypeError
        For a ``validate_args`` other than True, False or None.

    See Also
    --------
    mixtorch.GaussianMixture : Fits the same model by EM (``algorithm='gradient'`` uses
        this module).
    GaussianMixtureModule.from_estimator : Start from a fitted estimator.
    torch.distributions.MixtureSameFamily : What :meth:`to_torch` returns.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2 (mixture likelihood) and 5.2.4 (gradient descent).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.nn import GaussianMixtureModule
    >>> module = GaussianMixtureModule(3, 2, covariance_type="diag", dtype=torch.float64,
    ...                                generator=torch.Generator().manual_seed(0))
    >>> X = torch.randn(100, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    >>> optimizer = torch.optim.Adam(module.parameters(), lr=0.05)
    >>> before = -module.log_prob(X).mean().item()
    >>> for _ in range(100):
    ...     optimizer.zero_grad()
    ...     loss = -module.log_prob(X).mean()
    ...     loss.backward()
    ...     optimizer.step()
    ...
    >>> loss.item() < before
    True
    >>> round(module.log_weights().exp().sum().item(), 6)
    1.0

    A point with NaN is refused rather than scored NaN; a training loop on data known to
    be finite can skip the check (and its host sync on a GPU):

    >>> module.log_prob(torch.tensor([[0.0, float("nan")]], dtype=torch.float64))
    Traceback (most recent call last):
    ...
    ValueError: x holds NaN or infinity in 1 of its 1 points ...
    >>> module.validate_args = False
    >>> module.log_prob(torch.tensor([[0.0, float("nan")]], dtype=torch.float64)).isnan().item()
    True
    """

    @classmethod
    def from_estimator(cls, estimator: Any) -> Any:
        """A module with the parameters of a fitted mixtorch estimator (its ``mixture_``).

        Parameters
        ----------
        estimator : fitted estimator
            A fitted :class:`~mixtorch.GaussianMixture`, :class:`~mixtorch.Gaussian`,
            :class:`~mixtorch.BayesianGaussianMixture` or any estimator with a ``mixture_``.

        Returns
        -------
        GaussianMixtureModule
            Parameters equal to the estimator's, on its device and dtype, ``reg_covar=0``.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If ``estimator`` is not fitted.
        TypeError
            For a scikit-learn mixture (convert it with ``GaussianMixture.from_parameters``),
            or a fitted estimator without a ``mixture_`` (a regressor's or imputer's joint
            mixture is its ``mixture_model_``).

        See Also
        --------
        GaussianMixtureModule.to_estimator : The way back.
        GaussianMixtureModule.from_mixture : From a :class:`~mixtorch.Mixture`.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> from mixtorch.nn import GaussianMixtureModule
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> gm = GaussianMixture(2, random_state=0).fit(X)
        >>> module = GaussianMixtureModule.from_estimator(gm)
        >>> np.allclose(module.log_prob(torch.as_tensor(X)).detach().numpy(), gm.score_samples(X))
        True
        """
        if not hasattr(estimator, "mixture_") and hasattr(estimator, "means_"):
            raise TypeError(
                f"from_estimator takes a mixtorch estimator, got {type(estimator).__module__}."
                f"{type(estimator).__name__}; convert a scikit-learn mixture first with "
                "mixtorch.GaussianMixture.from_parameters(est.weights_, est.means_, "
                "est.covariances_, covariance_type=est.covariance_type)."
            )
        if not hasattr(estimator, "mixture_"):
            check_is_fitted(estimator)  # an unfitted estimator is a NotFittedError
            inner = hasattr(estimator, "mixture_model_")
            raise TypeError(
                "from_estimator takes a fitted density estimator with a mixture_ "
                "(GaussianMixture, Gaussian, BayesianGaussianMixture, GaussianKDE), got a "
                f"fitted {type(estimator).__name__}"
                + (
                    "; pass its joint mixture, estimator.mixture_model_."
                    if inner
                    else ", which has no mixture."
                )
            )
        return cls.from_mixture(estimator.mixture_)

    def to_estimator(self, **params: Any) -> Any:
        """A fitted :class:`~mixtorch.GaussianMixture` with these parameters.

        Parameters
        ----------
        **params
            Further constructor parameters (``random_state``, ...). Fitted attributes are
            NumPy arrays; computation stays on the module's device and dtype.

        Returns
        -------
        GaussianMixture
            A fitted estimator (``predict``, ``score_samples``, ``sample``, ...)
            holding the module's current (detached) parameters.

        Raises
        ------
        ValueError
            If the parameters hold NaN or infinity (a diverged training), the module is
            on the 'meta' device, or ``params`` gives an ``n_components`` or
            ``covariance_type`` other than the module's.

        See Also
        --------
        GaussianMixtureModule.from_estimator : The way back.

        Examples
        --------
        >>> import torch
        >>> from mixtorch.nn import GaussianMixtureModule
        >>> module = GaussianMixtureModule(2, 3, dtype=torch.float64)
        >>> module.to_estimator().means_.shape
        (2, 3)
        """
        self._check_materialised("to_estimator")
        mixture = self.to_mixture()  # from_mixture refuses another n_components/covariance_type
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
            ``Independent(Normal, 1)`` ones for 'diag' and 'spherical'. In the module's
            dtype, except that 'full' and 'tied' modules of float16 or bfloat16 give a
            float32 distribution (torch has no triangular solves in half precision).

        See Also
        --------
        GaussianMixtureModule.to_mixture : A detached :class:`~mixtorch.Mixture`.
        mixtorch.Mixture.to_torch : The same from a fitted estimator's ``mixture_``.

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
        self._check_materialised("to_torch")  # torch validates the values it is given
        components = self._components()
        mixing = Categorical(logits=self.log_weights().to(components.mean.dtype))
        return MixtureSameFamily(mixing, components)

    def _components(self, index: int | None = None) -> Distribution:
        """The components (or the one at ``index``) as a differentiable distribution."""
        self._check_materialised("to_torch")  # torch validates the values it is given
        means = self.means if index is None else self.means[index]
        if self._structure.is_triangular():
            factor = self._scale_tril()[0]  # float32 for a half module (_linalg_dtype)
            if index is not None and factor.ndim == 3:  # 'full'; a 'tied' factor is shared
                factor = factor[index]
            return gaussian_components(means.to(factor.dtype), scale_tril=factor)
        scale = torch.exp(0.5 * self._log_variances())
        scale = scale[:, None] if scale.ndim == 1 else scale  # 'spherical': one per component
        return gaussian_components(means, scale=scale if index is None else scale[index])


class GaussianModule(_gaussian_module.GaussianModule, GaussianMixtureModule):
    """A single Gaussian with unconstrained parameters (a one-component mixture).

    Starts at mean 0 and identity covariance; the weight is a fixed buffer, so only the
    mean and the covariance factor are parameters.

    Parameters
    ----------
    n_features : int
        Dimension D of the points (positive).
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Structure of the covariance; 'tied' is the same as 'full' for one component.
    reg_covar : float, default=0.0
        Non-negative constant added to the covariance diagonal.
    dtype : torch.dtype, default=None
        The dtype of the parameters; None uses torch's default dtype.
    device : str or torch.device, default=None
        Device of the parameters; None uses the CPU.
    validate_args : bool, default=None
        Whether the methods taking ``x`` refuse NaN and infinity in it, as for
        :class:`GaussianMixtureModule` (where the cost is described).

    See Also
    --------
    mixtorch.Gaussian : The closed-form estimator (``algorithm='gradient'`` uses this).
    GaussianMixtureModule : K components.
    torch.distributions.MultivariateNormal : What :meth:`to_torch` returns ('full').

    Examples
    --------
    >>> import torch
    >>> from mixtorch.nn import GaussianModule
    >>> module = GaussianModule(2, dtype=torch.float64)
    >>> module.mean.tolist(), module.covariances()[0].tolist()
    ([0.0, 0.0], [[1.0, 0.0], [0.0, 1.0]])
    >>> round(module.log_prob(torch.zeros(1, 2, dtype=torch.float64)).item(), 4)
    -1.8379
    """

    def to_estimator(self, **params: Any) -> Any:
        """A fitted :class:`~mixtorch.Gaussian` with these parameters.

        Parameters
        ----------
        **params
            Further constructor parameters of :class:`~mixtorch.Gaussian`.

        Returns
        -------
        Gaussian
            A fitted estimator holding the module's current (detached) parameters.

        See Also
        --------
        GaussianModule.from_estimator : The way back.

        Examples
        --------
        >>> import torch
        >>> from mixtorch.nn import GaussianModule
        >>> GaussianModule(2, dtype=torch.float64).to_estimator().mean_.tolist()
        [0.0, 0.0]
        """
        self._check_materialised("to_estimator")
        mixture = self.to_mixture()
        options = {"dtype": mixture.dtype, "device": mixture.device, **params}
        return Gaussian.from_mixture(mixture, **options)

    def to_torch(self) -> Any:
        """The module's current density as a differentiable distribution.

        Returns
        -------
        torch.distributions.Distribution
            ``MultivariateNormal`` ('full', 'tied') or ``Independent(Normal, 1)`` ('diag',
            'spherical'), differentiable in the module's parameters.

        See Also
        --------
        GaussianMixtureModule.to_torch : The mixture version.

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

"""Mixture estimators built from known parameters (arrays, or a ``torch.distributions``
mixture) instead of a fit: a mixin of :class:`~mixtorch.GaussianMixture`."""

from __future__ import annotations

from typing import Any

from ._torch_interop import estimator_options
from ._validation import OutputKind, resolve_dtype
from .mixture import Mixture

__all__ = ["KnownParametersMixin"]


class KnownParametersMixin:
    """``from_parameters`` and ``from_torch`` on top of the fitted-state protocol
    (:meth:`~mixtorch._estimator.MixtureEstimator.from_mixture`)."""

    @classmethod
    def from_parameters(
        cls,
        weights: Any,
        means: Any,
        covariances: Any,
        covariance_type: str = "full",
        **params: Any,
    ) -> Any:
        """A ready-to-use model with the given parameters (scikit-learn layouts).

        Parameters
        ----------
        weights : array-like of shape (n_components,)
        means : array-like of shape (n_components, n_features)
        covariances : array-like
            (K, D, D) for 'full', (D, D) for 'tied', (K, D) for 'diag', (K,) for 'spherical'.
        covariance_type : str, default='full'
        **params
            Other constructor parameters (``random_state``, ``device``, ``dtype``, ...).

        Examples
        --------
        >>> from mixtorch import GaussianMixture
        >>> model = GaussianMixture.from_parameters(
        ...     [0.5, 0.5], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]],
        ...     covariance_type="diag", random_state=0,
        ... )
        >>> model.predict([[0.1, -0.2], [2.9, 3.3]])
        array([0, 1])
        >>> X, labels = model.sample(4)
        >>> X.shape, labels.shape
        ((4, 2), (4,))
        """
        dtype = resolve_dtype(params.get("dtype"), means)
        mixture = Mixture.from_parameters(
            weights, means, covariances, covariance_type, dtype=dtype, device=params.get("device")
        )
        output = OutputKind.of(means)
        return cls.from_mixture(mixture, output=output, **params)  # type: ignore[attr-defined]

    @classmethod
    def from_torch(cls, distribution: Any, **params: Any) -> Any:
        """A fitted model with the parameters of a ``torch.distributions`` mixture.

        ``distribution`` is a ``MixtureSameFamily`` of a ``Categorical`` and
        ``MultivariateNormal`` (-> ``'full'``) or ``Independent(Normal, 1)`` (-> ``'diag'``)
        components, or one such Gaussian; ``params`` are further constructor parameters.
        The model computes on the distribution's device and in its dtype, unless
        ``device`` or ``dtype`` is given (the parameters are then converted there, as
        :meth:`from_parameters` converts them), and hands tensors back (see
        :func:`mixtorch._torch_interop.estimator_options`).

        Examples
        --------
        >>> import torch
        >>> from mixtorch import GaussianMixture
        >>> from torch.distributions import Categorical, Independent, MixtureSameFamily, Normal
        >>> distribution = MixtureSameFamily(
        ...     Categorical(probs=torch.tensor([0.5, 0.5])),
        ...     Independent(Normal(torch.tensor([[0.0], [3.0]]), torch.ones(2, 1)), 1))
        >>> model = GaussianMixture.from_torch(distribution)
        >>> model.covariance_type, model.means_.flatten().tolist()
        ('diag', [0.0, 3.0])
        """
        mixture, output, options = estimator_options(distribution, params)
        return cls.from_mixture(mixture, output=output, **options)  # type: ignore[attr-defined]

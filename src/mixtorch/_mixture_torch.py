"""A mixture to and from ``torch.distributions``: that part of :class:`~mixtorch.Mixture`.

The distributions are built and read in :mod:`mixtorch._torch_gaussians`, below the
mixture layer, so the value object and the estimators share one conversion.
"""

from __future__ import annotations

from typing import Any

from torch import Tensor
from torch.distributions import Categorical, MixtureSameFamily

from ._mixture_checks import checked_parameters
from ._mixture_parameters import MixtureParameters, MixtureT
from ._torch_gaussians import gaussian_components, torch_mixture_parameters

__all__ = ["MixtureTorch"]


class MixtureTorch(MixtureParameters):
    """:meth:`to_torch` and :meth:`from_torch` for :class:`~mixtorch.Mixture`."""

    def to_torch(self) -> MixtureSameFamily:
        """The same mixture as a ``torch.distributions.MixtureSameFamily``.

        Returns
        -------
        torch.distributions.MixtureSameFamily
            ``MultivariateNormal`` components for 'full'/'tied', ``Independent(Normal, 1)``
            for 'diag'/'spherical'.

        See Also
        --------
        Mixture.from_torch : The way back.
        mixtorch.GaussianMixture.from_torch : The way back to a fitted estimator.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([0.5, 0.5], [[0.0], [2.0]], [[[1.0]], [[0.5]]],
        ...                                   dtype=torch.float64)
        >>> distribution = mixture.to_torch()
        >>> type(distribution).__name__
        'MixtureSameFamily'
        >>> x = torch.tensor([[0.5]], dtype=torch.float64)
        >>> torch.allclose(distribution.log_prob(x), mixture.log_prob(x))
        True
        """
        components = (
            gaussian_components(self.means, scale_tril=self.covariance.cholesky)
            if self.covariance.is_triangular()
            else gaussian_components(self.means, scale=_per_component(self.covariance.cholesky))
        )
        return MixtureSameFamily(Categorical(probs=self.weights), components)

    @classmethod
    def from_torch(cls: type[MixtureT], distribution: Any) -> MixtureT:
        """A mixture with the parameters of a ``torch.distributions`` Gaussian or mixture.

        The parameters are copied and detached, then validated as
        :meth:`from_parameters` validates given values.

        Parameters
        ----------
        distribution : torch.distributions.Distribution
            A ``MixtureSameFamily`` whose mixing distribution is a ``Categorical`` with
            an empty batch shape and whose components are a ``MultivariateNormal`` or an
            ``Independent(Normal, 1)`` of batch shape (n_components,); or a single
            ``MultivariateNormal`` / ``Independent(Normal, 1)`` with an empty batch
            shape, read as a one-component mixture.

        Returns
        -------
        Mixture
            On the distribution's device and in its dtype (float32 or float64), with
            ``'full'`` covariances for ``MultivariateNormal`` components and ``'diag'``
            for ``Normal`` ones; its :meth:`log_prob` equals the distribution's.

        Raises
        ------
        TypeError
            For any other distribution or mixing distribution (naming the supported
            ones), or parameters that are not float32/float64.
        ValueError
            For batch or event shapes other than the above, or parameters that are not
            valid (NaN, covariances not positive definite, ...).

        See Also
        --------
        Mixture.to_torch : The way back.
        mixtorch.GaussianMixture.from_torch : A fitted estimator from the same input.

        Examples
        --------
        >>> import torch
        >>> from torch.distributions import (Categorical, Independent, MixtureSameFamily,
        ...                                  Normal)
        >>> from mixtorch import Mixture
        >>> distribution = MixtureSameFamily(
        ...     Categorical(probs=torch.tensor([0.25, 0.75], dtype=torch.float64)),
        ...     Independent(Normal(torch.tensor([[0.0, 0.0], [3.0, 1.0]], dtype=torch.float64),
        ...                        torch.tensor([[1.0, 2.0], [0.5, 0.5]], dtype=torch.float64)),
        ...                 1))
        >>> mixture = Mixture.from_torch(distribution)
        >>> mixture.n_components, mixture.n_features, mixture.covariance_type
        (2, 2, 'diag')
        >>> x = torch.tensor([[1.0, 1.0], [3.0, 0.0]], dtype=torch.float64)
        >>> torch.allclose(mixture.log_prob(x), distribution.log_prob(x))
        True
        """
        weights, means, covariances, kind = torch_mixture_parameters(distribution)
        return cls(
            *checked_parameters(weights, means, covariances, kind, means.dtype, means.device)
        )


def _per_component(scale: Tensor) -> Tensor:
    """Standard deviations broadcasting to the means (K, D): spherical (K,) becomes (K, 1)."""
    return scale[:, None] if scale.ndim == 1 else scale

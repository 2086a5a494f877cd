"""Conversions from ``torch.distributions`` Gaussians to a :class:`~mixtorch.Mixture`.

:func:`mixture_from_torch` is the value level under ``GaussianMixture.from_torch`` and
``Gaussian.from_torch``: the parameters are read by
:func:`~mixtorch._torch_gaussians.torch_mixture_parameters` (copied and detached), then
validated as :meth:`~mixtorch.Mixture.from_parameters` validates given values.
:func:`gaussian_components` (differentiable component distributions from tensors) is
re-exported from :mod:`mixtorch._torch_gaussians`, below the mixture layer.

``MultivariateNormal`` components become ``'full'`` covariances, ``Independent(Normal)``
ones ``'diag'``; :meth:`Mixture.to_torch` writes tied covariances as full and spherical
ones as diagonal, so a round trip reproduces the densities though not always the
covariance type.
"""

from __future__ import annotations

from typing import Any

from ._torch_gaussians import gaussian_components, torch_mixture_parameters
from .mixture import Mixture

__all__ = ["gaussian_components", "mixture_from_torch"]


def mixture_from_torch(distribution: Any, *, allow_mixture: bool = True) -> Mixture:
    """A :class:`~mixtorch.Mixture` with the parameters of a ``torch.distributions`` Gaussian.

    Parameters
    ----------
    distribution : torch.distributions.Distribution
        ``MixtureSameFamily`` whose mixing distribution is a ``Categorical`` with an
        empty batch shape and whose components are a ``MultivariateNormal`` or an
        ``Independent(Normal, 1)`` of batch shape (n_components,); or a single
        ``MultivariateNormal`` / ``Independent(Normal, 1)`` with an empty batch shape
        (a one-component mixture).
    allow_mixture : bool
        False accepts single Gaussians only (what ``Gaussian.from_torch`` takes).

    Returns
    -------
    Mixture
        Detached copies on the distribution's device and in its dtype; ``'full'``
        covariances for ``MultivariateNormal`` components, ``'diag'`` for ``Normal`` ones.

    Raises
    ------
    TypeError
        For any other distribution, naming the supported ones.
    ValueError
        For batch shapes other than the above, or parameters that are not valid (NaN,
        covariances not positive definite, ...).

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import Categorical, MixtureSameFamily, MultivariateNormal
    >>> from mixtorch._torch_interop import mixture_from_torch
    >>> distribution = MixtureSameFamily(
    ...     Categorical(probs=torch.tensor([0.3, 0.7], dtype=torch.float64)),
    ...     MultivariateNormal(torch.zeros(2, 2, dtype=torch.float64),
    ...                        torch.eye(2, dtype=torch.float64).expand(2, 2, 2)))
    >>> mixture = mixture_from_torch(distribution)
    >>> mixture.n_components, mixture.covariance_type
    (2, 'full')
    >>> x = torch.ones(3, 2, dtype=torch.float64)
    >>> torch.allclose(mixture.log_prob(x), distribution.log_prob(x))
    True
    """
    weights, means, covariances, kind = torch_mixture_parameters(
        distribution, allow_mixture=allow_mixture
    )
    return Mixture.from_parameters(
        weights, means, covariances, kind, dtype=means.dtype, device=means.device
    )

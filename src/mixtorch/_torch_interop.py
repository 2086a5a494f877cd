"""Conversions between mixtorch's Gaussians and ``torch.distributions``.

- :func:`mixture_from_torch` reads a ``MixtureSameFamily`` of Gaussians, a
  ``MultivariateNormal`` or an ``Independent(Normal, 1)`` into a
  :class:`~mixtorch.Mixture` (the value level under ``GaussianMixture.from_torch`` and
  ``Gaussian.from_torch``); the parameters are copied and detached, then validated as
  :meth:`~mixtorch.Mixture.from_parameters` validates given values.
- :func:`gaussian_components` builds the component distribution from tensors without
  detaching them, so ``mixtorch.nn`` modules hand out distributions that stay
  differentiable functions of their parameters.

``MultivariateNormal`` components become ``'full'`` covariances, ``Independent(Normal)``
ones ``'diag'``; :meth:`Mixture.to_torch` writes tied covariances as full and spherical
ones as diagonal, so a round trip reproduces the densities though not always the
covariance type.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor
from torch.distributions import (
    Categorical,
    Distribution,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
)

from .mixture import Mixture

__all__ = ["gaussian_components", "mixture_from_torch"]

_SUPPORTED = (
    "MixtureSameFamily(Categorical, MultivariateNormal or Independent(Normal, 1)), "
    "MultivariateNormal or Independent(Normal, 1)"
)


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
    if isinstance(distribution, MixtureSameFamily):
        if not allow_mixture:
            raise TypeError(
                "Expected a single Gaussian (MultivariateNormal or Independent(Normal, 1)), "
                "got a MixtureSameFamily; use GaussianMixture.from_torch for mixtures."
            )
        mixing = distribution.mixture_distribution
        if not isinstance(mixing, Categorical) or mixing.batch_shape != torch.Size():
            raise TypeError(
                "The mixing distribution must be a Categorical with an empty batch shape, "
                f"got {type(mixing).__name__} of batch shape {tuple(mixing.batch_shape)}."
            )
        weights = mixing.probs
        means, covariances, kind = _gaussian_parameters(distribution.component_distribution, 1)
    else:
        means, covariances, kind = _gaussian_parameters(distribution, 0)
        means, covariances = means[None], covariances[None]
        weights = torch.ones(1, dtype=means.dtype, device=means.device)
    # Categorical normalises in the distribution's dtype; renormalise before validation.
    weights = weights.detach() / weights.detach().sum()
    return Mixture.from_parameters(
        weights, means.detach(), covariances.detach(), kind, dtype=means.dtype,
        device=means.device,
    )  # fmt: skip


def _gaussian_parameters(component: Any, batch_dims: int) -> tuple[Tensor, Tensor, str]:
    """(means, covariances, covariance_type) of a Gaussian with ``batch_dims`` batch axes."""
    if isinstance(component, MultivariateNormal):
        means, covariances, kind = component.loc, component.covariance_matrix, "full"
    elif (
        isinstance(component, Independent)
        and isinstance(component.base_dist, Normal)
        and component.reinterpreted_batch_ndims == 1
    ):
        means, covariances, kind = component.mean, component.variance, "diag"
    else:
        raise TypeError(f"Unsupported distribution {type(component).__name__}; supported: "
                        f"{_SUPPORTED}.")  # fmt: skip
    if len(component.batch_shape) != batch_dims or len(component.event_shape) != 1:
        what = "(n_components,)" if batch_dims else "()"
        raise ValueError(
            f"The Gaussian must have batch shape {what} and one event dimension, got batch "
            f"shape {tuple(component.batch_shape)} and event shape "
            f"{tuple(component.event_shape)}."
        )
    if not (means.is_floating_point() and means.dtype in (torch.float32, torch.float64)):
        raise TypeError(f"The distribution's parameters must be float32 or float64, got "
                        f"{means.dtype}.")  # fmt: skip
    shape = component.batch_shape + component.event_shape
    matrix_axis = shape[-1:] if kind == "full" else torch.Size()
    return means.expand(shape), covariances.expand(shape + matrix_axis), kind


def gaussian_components(
    means: Tensor, *, scale_tril: Tensor | None = None, scale: Tensor | None = None
) -> Distribution:
    """Gaussians with ``means`` (..., D) as a ``torch.distributions`` object, not detached.

    Parameters
    ----------
    means : Tensor of shape (..., n_features)
    scale_tril : Tensor of shape (..., n_features, n_features), optional
        Lower Cholesky factors of the covariances: a ``MultivariateNormal``.
    scale : Tensor broadcasting to ``means``, optional
        Standard deviations: an ``Independent(Normal, 1)``. Exactly one of the two.

    Returns
    -------
    torch.distributions.Distribution
        Event shape (n_features,), batch shape ``means.shape[:-1]``.

    Examples
    --------
    >>> import torch
    >>> from mixtorch._torch_interop import gaussian_components
    >>> means = torch.zeros(3, 2, requires_grad=True)
    >>> components = gaussian_components(means, scale=torch.ones(3, 1))
    >>> components.batch_shape, components.event_shape
    (torch.Size([3]), torch.Size([2]))
    >>> components.log_prob(torch.zeros(3, 2)).sum().backward()
    >>> means.grad.shape
    torch.Size([3, 2])
    """
    if (scale_tril is None) == (scale is None):
        raise ValueError("Give exactly one of scale_tril and scale.")
    if scale_tril is not None:
        factors = scale_tril.expand(*means.shape, means.shape[-1])
        return MultivariateNormal(means, scale_tril=factors)
    assert scale is not None
    return Independent(Normal(means, scale.expand_as(means)), 1)

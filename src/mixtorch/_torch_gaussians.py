"""``torch.distributions`` Gaussians to and from plain tensors, below the mixture layer.

- :func:`torch_mixture_parameters` reads the weights, means, covariances and covariance
  type of a ``MixtureSameFamily`` of Gaussians, a ``MultivariateNormal`` or an
  ``Independent(Normal, 1)`` (what :meth:`mixtorch.Mixture.from_torch` validates and
  builds a mixture from).
- :func:`gaussian_components` builds the component distribution from tensors without
  detaching them, so :meth:`mixtorch.Mixture.to_torch` and the ``mixtorch.nn`` modules
  share one construction, and the latter's distributions stay differentiable.

``MultivariateNormal`` components become ``'full'`` covariances, ``Independent(Normal)``
ones ``'diag'``.
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

__all__ = ["gaussian_components", "torch_mixture_parameters"]

_SUPPORTED = (
    "MixtureSameFamily(Categorical, MultivariateNormal or Independent(Normal, 1)), "
    "MultivariateNormal or Independent(Normal, 1)"
)


def torch_mixture_parameters(
    distribution: Any, *, allow_mixture: bool = True
) -> tuple[Tensor, Tensor, Tensor, str]:
    """Detached (weights, means, covariances, covariance_type) of a torch Gaussian.

    Parameters
    ----------
    distribution : torch.distributions.Distribution
        ``MixtureSameFamily`` whose mixing distribution is a ``Categorical`` with an
        empty batch shape and whose components are a ``MultivariateNormal`` or an
        ``Independent(Normal, 1)`` of batch shape (n_components,); or a single
        ``MultivariateNormal`` / ``Independent(Normal, 1)`` with an empty batch shape
        (one component of weight one).
    allow_mixture : bool, default=True
        False accepts single Gaussians only.

    Returns
    -------
    weights : Tensor of shape (n_components,)
        Renormalised to sum to one in the distribution's dtype.
    means : Tensor of shape (n_components, n_features)
    covariances : Tensor
        (n_components, n_features, n_features) for 'full', (n_components, n_features)
        for 'diag'.
    covariance_type : {'full', 'diag'}

    Raises
    ------
    TypeError
        For any other distribution, naming the supported ones, or parameters that are
        not float32/float64.
    ValueError
        For batch or event shapes other than the above.

    Examples
    --------
    >>> import torch
    >>> from torch.distributions import MultivariateNormal
    >>> from mixtorch._torch_gaussians import torch_mixture_parameters
    >>> weights, means, covariances, kind = torch_mixture_parameters(
    ...     MultivariateNormal(torch.zeros(2), torch.eye(2)))
    >>> weights, means.shape, covariances.shape, kind
    (tensor([1.]), torch.Size([1, 2]), torch.Size([1, 2, 2]), 'full')
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
    return weights, means.detach(), covariances.detach(), kind


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
    # A MultivariateNormal holds (..., D, D) matrices, a Normal (..., D) variances.
    matrix_axis = shape[-1:] if isinstance(component, MultivariateNormal) else torch.Size()
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
    >>> from mixtorch._torch_gaussians import gaussian_components
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

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
from ._validation import OutputKind
from .mixture import Mixture

__all__ = ["estimator_options", "gaussian_components", "mixture_from_torch"]


def mixture_from_torch(
    distribution: Any, *, allow_mixture: bool = True, dtype: Any = None, device: Any = None
) -> Mixture:
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
    dtype : torch.dtype or str, optional
        float32 or float64 (the spellings the estimators' ``dtype`` takes); None keeps
        the distribution's dtype.
    device : str or torch.device, optional
        Where the parameters go; None keeps the distribution's device.

    Returns
    -------
    Mixture
        Detached copies on ``device`` in ``dtype`` (by default the distribution's);
        ``'full'`` covariances for ``MultivariateNormal`` components, ``'diag'`` for
        ``Normal`` ones.

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
    # Converted before validation, so the covariances are factored in the dtype the
    # model computes in (a float64 matrix may be positive definite only in float64).
    return Mixture.from_parameters(
        weights,
        means,
        covariances,
        kind,
        dtype=means.dtype if dtype is None else dtype,
        device=means.device if device is None else device,
    )


def estimator_options(
    distribution: Any, params: dict[str, Any], *, allow_mixture: bool = True
) -> tuple[Mixture, OutputKind, dict[str, Any]]:
    """What an estimator's ``from_torch(distribution, **params)`` is built from: the
    mixture, how results are handed back (tensors on the model's device) and the
    constructor parameters.

    A ``dtype`` or ``device`` in ``params`` converts the parameters, as ``dtype`` and
    ``device`` in ``from_parameters`` and in ``fit`` make the model compute there: the
    constructor parameter then says what the model computes in. Refusing a ``dtype``
    other than the distribution's would make users convert the distribution themselves
    for what ``to(dtype=...)`` does anyway. Without them the model keeps the
    distribution's dtype and device, and records them.
    """
    mixture = mixture_from_torch(
        distribution,
        allow_mixture=allow_mixture,
        dtype=params.get("dtype"),
        device=params.get("device"),
    )
    options = {"dtype": mixture.dtype, "device": mixture.device, **params}
    return mixture, OutputKind(True, mixture.device), options

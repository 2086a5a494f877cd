"""Where a mixture fit starts: scikit-learn's ``init_params`` with the user's
``weights_init``, ``means_init`` and ``precisions_init`` taking precedence.

:class:`StartSpec` is the configuration value (number of components, covariance type,
method, ``reg_covar`` and the given parameters, already checked by
:func:`check_given_start`); :func:`start_mixture` draws one start from in-memory data.
The streaming counterpart is :func:`mixtorch.fit.streaming.stream_start_mixture`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .._mixture_checks import check_weights
from .._validation import check_finite
from ..covariance import Covariance
from ..mixture import Mixture
from .init import initial_mixture

__all__ = ["StartSpec", "check_continues", "check_given_start", "start_mixture"]


@dataclass(frozen=True)
class StartSpec:
    """How to draw a starting mixture.

    Attributes
    ----------
    n_components : int
    covariance : type of Covariance
    method : str
        One of :data:`~mixtorch.fit.init.INIT_METHODS`.
    reg_covar : float
    weights, means : Tensor, optional
        Given weights (K,) and means (K, D).
    given_covariance : Covariance, optional
        From ``precisions_init``.
    """

    n_components: int
    covariance: type[Covariance]
    method: str
    reg_covar: float
    weights: Tensor | None = None
    means: Tensor | None = None
    given_covariance: Covariance | None = None

    def given_names(self) -> list[str]:
        """The names of the given parameters (``weights_init``, ``means_init``,
        ``precisions_init``), in that order: the start needs no data when all three are."""
        given = (
            ("weights_init", self.weights),
            ("means_init", self.means),
            ("precisions_init", self.given_covariance),
        )
        return [name for name, value in given if value is not None]

    def complete(self) -> Mixture | None:
        """The start when every parameter is given (no data needed), else None."""
        if self.weights is None or self.means is None or self.given_covariance is None:
            return None
        return Mixture(self.weights, self.means, self.given_covariance)

    def override(self, start: Mixture) -> Mixture:
        """``start`` with the given parameters put in."""
        return Mixture(
            start.weights if self.weights is None else self.weights,
            start.means if self.means is None else self.means,
            start.covariance if self.given_covariance is None else self.given_covariance,
        )


def start_mixture(
    X: Tensor,
    spec: StartSpec,
    generator: torch.Generator,
    rows: int,
    sample_weight: Tensor | None = None,
) -> Mixture:
    """One starting mixture from in-memory data ``X`` (n_samples, n_features), its rows
    weighted by ``sample_weight`` (n_samples,) when given (see :mod:`mixtorch.fit.init`)."""
    complete = spec.complete()
    if complete is not None:
        return complete
    start = initial_mixture(
        X, spec.n_components, spec.covariance, spec.method, spec.reg_covar, generator, rows,
        sample_weight,
    )  # fmt: skip
    return spec.override(start)


def check_continues(
    owner: str,
    fitted: Mixture,
    n_components: int,
    covariance_type: str,
    how: str = "warm_start=True",
    fresh: str = "Set warm_start=False to fit afresh",
) -> None:
    """Refuse to continue the fitted mixture ``fitted`` when ``n_components`` or
    ``covariance_type`` were changed since (``set_params``): the previous fit would
    otherwise be continued silently with its own shape. ``how`` names what continues
    (``"warm_start=True"``, ``"partial_fit"``), ``fresh`` how to start afresh."""
    for name, was, now in (
        ("n_components", fitted.n_components, n_components),
        ("covariance_type", fitted.covariance_type, covariance_type),
    ):
        if was != now:
            raise ValueError(
                f"{owner} was fitted with {name}={was!r}, but {name} is now {now!r}: "
                f"{how} continues the previous fit, whose {name} cannot change. "
                f"{fresh}, or set {name} back to {was!r}."
            )


def check_given_start(
    weights_init: Any,
    means_init: Any,
    precisions_init: Any,
    covariance: type[Covariance],
    n_components: int,
    n_features: int,
    dtype: torch.dtype,
    device: Any,
) -> dict[str, Any]:
    """``weights_init``, ``means_init`` and ``precisions_init`` checked as scikit-learn
    checks them, as keyword arguments of :class:`StartSpec`.

    Raises a ValueError naming the parameter for a wrong shape, NaN or infinity, weights
    that are negative or do not sum to one, and precisions that are not symmetric positive
    definite (or not positive); a TypeError naming it for values that are not numbers.
    """
    K, D = n_components, n_features
    given: dict[str, Any] = {}
    if weights_init is not None:
        weights = _as_tensor(weights_init, "weights_init", dtype, device)
        if tuple(weights.shape) != (K,):
            raise ValueError(f"weights_init must have shape ({K},), got {tuple(weights.shape)}.")
        try:
            check_weights(weights)
        except ValueError as error:
            raise ValueError(f"weights_init: {error}") from None
        given["weights"] = weights
    if means_init is not None:
        means = _as_tensor(means_init, "means_init", dtype, device)
        if tuple(means.shape) != (K, D):
            raise ValueError(f"means_init must have shape ({K}, {D}), got {tuple(means.shape)}.")
        given["means"] = means
    if precisions_init is not None:
        precisions = _as_tensor(precisions_init, "precisions_init", dtype, device)
        covariance.check_layout(precisions, K, D, "precisions_init")
        _check_precisions(precisions, covariance)
        given["given_covariance"] = covariance.from_precisions(precisions, D)
    return given


def _as_tensor(value: Any, name: str, dtype: torch.dtype, device: Any) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value.detach()
        if tensor.is_complex() or tensor.dtype == torch.bool:
            raise TypeError(f"{name} must hold real numbers, got a tensor of {tensor.dtype}.")
    else:
        try:
            tensor = torch.from_numpy(np.asarray(value, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be an array of real numbers: {error}") from None
    tensor = tensor.to(dtype=dtype, device=device)
    check_finite(tensor, name)
    return tensor


def _check_precisions(precisions: Tensor, covariance: type[Covariance]) -> None:
    """scikit-learn's rule: full matrices symmetric positive definite, else positive."""
    values = precisions.to(torch.float64)
    if covariance.is_triangular():
        matrices = values if values.ndim == 3 else values[None]
        symmetric = torch.allclose(matrices, matrices.mT, rtol=1e-5, atol=1e-8)
        if not symmetric or not bool((torch.linalg.eigvalsh(matrices) > 0).all()):
            raise ValueError(
                f"precisions_init must be symmetric positive definite ('{covariance.kind}' "
                "precision matrices), as scikit-learn requires."
            )
    elif not bool((values > 0).all()):
        raise ValueError(
            f"precisions_init must be positive ('{covariance.kind}' precisions), "
            "so that they are positive definite."
        )

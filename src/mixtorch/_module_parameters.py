"""The unconstrained parametrisation of :mod:`mixtorch._module`: checks of the module's
sizes and ``reg_covar``, and the conversions between covariances and the stored
parameters (``raw_cholesky``: a lower factor with a log diagonal; ``log_scale``: log
standard deviations), ``reg_covar`` taken off before storing."""

from __future__ import annotations

import math
import numbers
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "check_options",
    "check_reg_covar",
    "check_sizes",
    "log_scale",
    "lower_from_raw",
    "raw_cholesky",
]


def check_sizes(n_components: Any, n_features: Any) -> tuple[int, int]:
    """``(n_components, n_features)`` as ints; ValueError unless both are positive integers."""
    for name, value in (("n_components", n_components), ("n_features", n_features)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(n_components), int(n_features)


def check_options(dtype: Any, device: Any, generator: Any) -> None:
    """The module's ``dtype``, ``device`` and ``generator`` checked before any allocation:
    TypeError for a ``dtype`` that is not a floating torch dtype or a ``generator`` that
    is not a ``torch.Generator``, ValueError for a device string torch does not know."""
    if dtype is not None and not (isinstance(dtype, torch.dtype) and dtype.is_floating_point):
        raise TypeError(
            "dtype must be a floating-point torch.dtype (e.g. torch.float32 or torch.float64) "
            f"or None, got {dtype!r}."
        )
    if device is not None and not isinstance(device, torch.device):
        try:
            torch.device(device)
        except (RuntimeError, TypeError) as error:
            raise ValueError(
                f"device must be a torch.device, a device string such as 'cpu' or 'cuda', or "
                f"None; got {device!r} ({error})."
            ) from None
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(
            f"generator must be a torch.Generator or None, got {type(generator).__name__}."
        )


def _factor_without_ridge(covariances: Tensor, reg_covar: float) -> Tensor:
    """Cholesky factor of ``covariances - reg_covar I``, or of ``covariances`` where the
    difference is not positive definite."""
    factor = torch.linalg.cholesky(covariances)
    if reg_covar == 0.0:
        return factor
    eye = torch.eye(covariances.shape[-1], dtype=covariances.dtype, device=covariances.device)
    reduced, info = torch.linalg.cholesky_ex(covariances - reg_covar * eye)
    usable = (info == 0) & torch.isfinite(reduced).flatten(-2).all(-1)
    usable = usable & (torch.diagonal(reduced, dim1=-2, dim2=-1) > 0).all(-1)
    return torch.where(usable[..., None, None], reduced, factor)


def check_reg_covar(reg_covar: Any) -> float:
    """``reg_covar`` as a float; ValueError unless it is a non-negative finite number."""
    valid = isinstance(reg_covar, numbers.Real) and not isinstance(reg_covar, bool)
    if not (valid and math.isfinite(reg_covar) and reg_covar >= 0):
        raise ValueError(f"reg_covar must be a non-negative finite number, got {reg_covar!r}.")
    return float(reg_covar)


def lower_from_raw(raw: Tensor) -> Tensor:
    """The lower Cholesky factor stored as ``raw``: strict lower part kept, diagonal exp'd."""
    strict = torch.tril(raw, diagonal=-1)
    return strict + torch.diag_embed(torch.exp(torch.diagonal(raw, dim1=-2, dim2=-1)))


def raw_cholesky(covariances: Tensor, reg_covar: float) -> Tensor:
    """The stored form (see :func:`lower_from_raw`) of (..., D, D) covariances less
    ``reg_covar`` (or of the covariances, where the difference is not positive definite)."""
    factor = _factor_without_ridge(covariances, reg_covar)
    log_diagonal = torch.log(torch.diagonal(factor, dim1=-2, dim2=-1))
    return torch.tril(factor, -1) + torch.diag_embed(log_diagonal)


def log_scale(variances: Tensor, reg_covar: float) -> Tensor:
    """Log standard deviations of ``variances - reg_covar`` (of ``variances`` where the
    difference is not clearly positive)."""
    reduced = variances - reg_covar
    keep = reduced > torch.finfo(variances.dtype).eps * variances
    return 0.5 * torch.log(torch.where(keep, reduced, variances))

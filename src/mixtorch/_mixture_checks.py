"""Validation of the parameters given to :meth:`mixtorch.mixture.Mixture.from_parameters`
and of ``n_samples``: conversion to tensors and the checks on weights and covariances,
each error naming the parameter."""

from __future__ import annotations

import numbers
import os
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._validation import check_device, integer, real_values, refuse_meta, resolve_dtype
from .covariance import Covariance, CovarianceError, covariance_class


def checked_parameters(
    weights: Any,
    means: Any,
    covariances: Any,
    covariance_type: str,
    dtype: Any,
    device: Any,
) -> tuple[Tensor, Tensor, Covariance]:
    """``(weights, means, covariance)`` validated and converted, as
    :meth:`~mixtorch.mixture.Mixture.from_parameters` documents; ``weights`` and
    ``covariances`` take the dtype and device of ``means``. ``dtype`` is checked first,
    with the spellings the estimators' ``dtype=`` takes (:func:`resolve_dtype`)."""
    target_dtype = None if dtype is None else resolve_dtype(dtype, None)
    means_t = as_parameter(means, "means", target_dtype, check_device(device))
    means_t = means_t.reshape(means_t.shape[0], -1) if means_t.ndim == 1 else means_t
    if means_t.ndim != 2 or means_t.shape[0] < 1 or means_t.shape[1] < 1:
        raise ValueError(
            "means must have shape (n_components, n_features) with at least one of each, "
            f"got {tuple(means_t.shape)}."
        )
    weights_t = as_parameter(weights, "weights", means_t.dtype, means_t.device).reshape(-1)
    covariances_t = as_parameter(covariances, "covariances", means_t.dtype, means_t.device)
    check_weights(weights_t)
    kind = covariance_class(covariance_type)
    kind.check_layout(covariances_t, means_t.shape[0], means_t.shape[1], "covariances")
    try:
        covariance = kind(covariances_t, n_features=means_t.shape[1])
    except CovarianceError as error:
        # The fitting advice (reg_covar, fewer components) does not apply to given values.
        raise CovarianceError(
            f"covariances must be positive definite: {str(error).split('. ')[0]}."
        ) from error
    matrices = covariance.full_matrices(means_t.shape[0])
    check_symmetric(matrices)
    smallest = float(matrices.diagonal(dim1=-2, dim2=-1).amin())
    tiny = torch.finfo(means_t.dtype).tiny
    if smallest < tiny:  # subnormal: the precisions overflow and densities come out -inf
        raise ValueError(
            f"covariances must have variances of at least {tiny:.3g} (the smallest normal "
            f"{str(means_t.dtype).removeprefix('torch.')}), got {smallest:.3g}; rescale the "
            "data (e.g. other units)"
            + (" or use float64." if means_t.dtype != torch.float64 else ".")
        )
    return weights_t, means_t, covariance


def check_n_samples(
    n_samples: Any, row_bytes: int = 0, device: torch.device | str | None = None
) -> int:
    """``n_samples`` as an int >= 1 (Python and NumPy integers, 0-d integer arrays and
    tensors, as :func:`mixtorch._validation.integer` takes them; bools, floats refused).

    With ``row_bytes`` (the memory one draw takes), a draw larger than the memory free on
    ``device`` is a ``MemoryError`` saying how much it needs, before any allocation.
    """
    count = integer(n_samples, "n_samples")
    if count < 1:
        raise ValueError(f"n_samples must be an integer >= 1, got {count}.")
    if count > 2**62:
        raise ValueError(
            f"n_samples must be an integer <= 2**62, got {count} (too large); draw in batches."
        )
    available = free_memory(torch.device(device or "cpu")) if row_bytes else None
    if available is not None and count * row_bytes > available:
        raise MemoryError(
            f"n_samples={count} would need about {count * row_bytes / 2**30:.3g} GiB, more "
            f"than the {available / 2**30:.3g} GiB free on {device or 'cpu'}: draw in "
            "smaller batches (several calls with fewer samples)."
        )
    return count


def free_memory(device: torch.device) -> int | None:
    """Bytes free on ``device`` (CPU: available physical memory), None if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
        if device.type == "cpu" and hasattr(os, "sysconf"):
            return int(os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, RuntimeError):
        pass
    return None


def as_parameter(
    value: Any, name: str, dtype: torch.dtype | None, device: Any, *, numbers_only: bool = True
) -> Tensor:
    """``value`` as a finite real floating tensor, with errors naming ``name``.

    Lists and NumPy arrays keep their precision (float32 arrays stay float32, everything
    else becomes float64) unless ``dtype`` is given; tensors on the 'meta' device (shapes
    without values) are refused, and NaN or infinity is a ``ValueError`` saying which.

    ``numbers_only`` chooses how values that are not plain numbers are read. True (the
    parameters of :meth:`~mixtorch.mixture.Mixture.from_parameters`): only real numbers,
    object arrays of numbers read as float64 as scikit-learn's ``check_array`` reads them;
    bools, None, strings and complex numbers are a ``TypeError``. False (a
    ``Gaussian``'s held ``fixed_mean`` and ``fixed_covariance``): as
    :func:`mixtorch._validation.real_values` reads them, NumPy's float conversion, so
    bools are 0 and 1, None is NaN (refused as such), numeric strings are numbers, other
    strings and complex numbers are a ``ValueError`` and other objects a ``TypeError``.
    """
    refuse_meta(value, name)
    if numbers_only:
        tensor = _real_numbers(value, name, device)
    else:
        tensor = torch.as_tensor(real_values(value, name)).detach().to(device)
        if isinstance(value, np.ndarray) and value.dtype == np.float32:
            tensor = tensor.to(torch.float32)  # exact: real_values made it float64
    if dtype is not None:
        tensor = tensor.to(dtype)
    elif tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.to(torch.float64)
    if not bool(torch.isfinite(tensor).all()):
        nan = "NaN" if numbers_only else "NaN (or None)"
        kind = nan if bool(torch.isnan(tensor).any()) else "infinity"
        raise ValueError(f"{name} must be finite, it contains {kind}.")
    return tensor


def _real_numbers(value: Any, name: str, device: Any) -> Tensor:
    """``value`` as a tensor of real numbers on ``device`` (any integer or floating dtype);
    anything else is a ``TypeError`` naming ``name`` (see :func:`as_parameter`)."""
    if isinstance(value, torch.Tensor):
        tensor = value.detach().to(device=device)
        kind = "f" if tensor.is_floating_point() else "c" if tensor.is_complex() else "i"
        kind = "b" if tensor.dtype == torch.bool else kind
    else:
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{name} must be a numeric array: {error}") from error
        if array.dtype.kind == "O":
            others = [item for item in array.flat if not _is_real_number(item)]
            if others:
                raise TypeError(
                    f"{name} must be an array of real numbers, got an object array holding "
                    f"{type(others[0]).__name__} values; pass numbers only."
                )
            array = array.astype(np.float64)
        kind = array.dtype.kind
        if kind in "iuf":
            array = array if array.dtype in (np.float32, np.float64) else array.astype(np.float64)
            tensor = torch.as_tensor(array, device=device)
    if kind not in "iuf":
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}.")
    return tensor


def _is_real_number(item: Any) -> bool:
    """A real number of any Python or NumPy type (Decimal too); not a bool (refused as a
    boolean array is), a string or a complex number."""
    if not isinstance(item, numbers.Number) or isinstance(item, bool | np.bool_):
        return False
    return isinstance(item, numbers.Real) or not isinstance(item, numbers.Complex)


def check_symmetric(matrices: Tensor, name: str = "covariances") -> None:
    """Covariance matrices must equal their transposes to the rounding of their dtype:
    ``|C - C^T|`` at most 1000 eps times the largest ``|C_ij|``, each matrix on its own
    (about 1.2e-4 relative in float32, 2.2e-13 in float64). The error names ``name``."""
    scale = matrices.abs().amax(dim=(-2, -1), keepdim=True)
    tolerance = 1000 * torch.finfo(matrices.dtype).eps * scale
    asymmetry = (matrices - matrices.mT).abs()
    if bool((asymmetry > tolerance).any()):
        precision = str(matrices.dtype).removeprefix("torch.")
        raise ValueError(
            f"{name} must be symmetric matrices; |C - C^T| reaches {float(asymmetry.max()):.3g}"
            f", more than {precision} rounding explains. Pass (C + C.T) / 2 if the asymmetry "
            "is rounding."
        )


def check_weights(weights: Tensor, name: str = "weights") -> None:
    """Finite, non-negative, summing to one; errors name ``name`` (e.g. 'weights_init')."""
    if not bool(torch.isfinite(weights).all()) or bool((weights < 0).any()):
        raise ValueError(f"{name} must be finite and non-negative.")
    total = float(weights.sum())
    if abs(total - 1.0) > 1e-6 * max(1, weights.numel()) ** 0.5 + 1e-6:
        raise ValueError(f"{name} must sum to 1, they sum to {total:.8g}.")

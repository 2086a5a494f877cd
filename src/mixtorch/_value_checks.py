"""Checks of single arguments shared by the estimators and the value objects: integers
(bools, floats and strings refused), arrays of real numbers, finiteness, tensors on the
data-less 'meta' device, and ``sample_weight``. Each error names the parameter.
Re-exported by :mod:`mixtorch._validation`."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np
import torch


def check_finite(X: torch.Tensor, what: str) -> None:
    """Raise a ValueError naming ``what`` if it holds NaN or infinity."""
    if not bool(torch.isfinite(X).all()):
        kind = "NaN" if bool(torch.isnan(X).any()) else "infinity"
        raise ValueError(f"Input {what} contains {kind}.")


def refuse_meta(value: Any, name: str) -> None:
    """A ``ValueError`` naming ``name`` for a tensor on the 'meta' device (shapes, no
    values); anything else passes."""
    if isinstance(value, torch.Tensor) and value.device.type == "meta":
        raise ValueError(
            f"{name} is a tensor on the 'meta' device, which holds shapes but no values; "
            "create it on a real device (e.g. 'cpu') first."
        )


def integer(value: Any, name: str) -> int:
    """``value`` as an int: Python and NumPy integers, 0-d integer arrays and tensors;
    bools, floats and strings are a ``TypeError`` naming ``name``."""
    if isinstance(value, (bool, np.bool_)) or (
        isinstance(value, (np.ndarray, torch.Tensor)) and value.dtype in (np.bool_, torch.bool)
    ):
        raise TypeError(f"{name} must be an integer, got {value!r}.")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(
            f"{name} must be an integer, got {value!r} ({type(value).__name__})."
        ) from None


def real_values(values: Any, name: str) -> Any:
    """``values`` as a float64 NumPy array, or the tensor itself.

    Complex values are a ``ValueError`` (NumPy would drop their imaginary parts, with
    only a warning); anything that is not numbers raises what NumPy's conversion raised,
    as scikit-learn's validation does (a ``ValueError`` for strings, a ``TypeError`` for
    other objects), both naming ``name``. ``None`` is a ``TypeError`` (NumPy would read
    it as one NaN).
    """
    if values is None:
        raise TypeError(f"{name} must be an array of numbers, got None.")
    if isinstance(values, torch.Tensor):
        if values.is_complex():
            raise ValueError(f"{name} must be real numbers, got a complex tensor.")
        return values
    try:
        array = np.asarray(values)
        complex_values = array.dtype.kind == "c"
        array = array.real.astype(np.float64)
    except (TypeError, ValueError) as error:
        kind = ValueError if isinstance(error, ValueError) else TypeError
        raise kind(f"{name} must be an array of numbers: {error}") from None
    if complex_values:
        raise ValueError(f"{name} must be real numbers, got complex values.")
    return array


def check_sample_weight(sample_weight: Any, X: torch.Tensor) -> torch.Tensor:
    """``sample_weight`` as a (n_samples,) tensor like ``X``: finite, non-negative, positive
    sum, scaled so that the largest weight is 1.

    Only relative weights matter to every estimator that takes them, and the scaling
    (done in float64) keeps weights of any magnitude usable: 1e-20 each would otherwise
    be swamped by the small constants that guard divisions, 1e308 each would overflow
    their sum, and 1e-300 would round to zero in float32.
    """
    weights = torch.as_tensor(real_values(sample_weight, "sample_weight"))
    weights = weights.detach().to(device=X.device, dtype=torch.float64)
    if weights.ndim != 1:
        raise ValueError(
            f"sample_weight must be a 1-D array of n_samples entries, got shape "
            f"{tuple(weights.shape)}."
        )
    if weights.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight has {weights.shape[0]} entries but X has {X.shape[0]} samples."
        )
    if not bool(torch.isfinite(weights).all()):
        row = int(torch.nonzero(~torch.isfinite(weights))[0])
        kind = "NaN" if bool(torch.isnan(weights[row])) else "infinity"
        raise ValueError(
            f"Input sample_weight contains {kind} (row {row}); give every row a finite, "
            "non-negative weight (0 leaves a row out)."
        )
    if bool((weights < 0).any()):
        row = int(torch.nonzero(weights < 0)[0])
        raise ValueError(
            f"sample_weight must be non-negative, got {float(weights[row])!r} for row {row}; "
            "0 leaves a row out."
        )
    largest = weights.max()
    if not float(largest) > 0:
        raise ValueError("sample_weight sums to zero: it needs a positive sum.")
    return (weights / largest).to(X.dtype)


def normalised_sample_weight(sample_weight: Any, X: torch.Tensor) -> torch.Tensor:
    """Checked weights scaled to sum to one (uniform when ``sample_weight`` is None)."""
    if sample_weight is None:
        return torch.full((X.shape[0],), 1.0 / X.shape[0], dtype=X.dtype, device=X.device)
    weights = check_sample_weight(sample_weight, X)
    return weights / weights.sum()

"""Input conversion shared by every estimator.

Estimators accept NumPy arrays (and anything ``numpy.asarray`` understands) or torch
tensors. NumPy-like input goes through scikit-learn's own validation so error messages
and ``n_features_in_`` / ``feature_names_in_`` bookkeeping match scikit-learn exactly
(except that 1-D input gets a one-line message instead of one that prints the whole
array, and DataFrame columns that are not numbers are named); tensors are validated here
with the same wording and stay on their device.

Estimators work on detached values: a tensor that requires grad is accepted and
``detach()``-ed, so no gradient flows through ``fit``, ``score_samples`` or ``predict``.
The differentiable path is :mod:`mixtorch.nn`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import validate_data

from ._devices import check_device
from ._random_state import check_random_generator, check_scipy_rng
from ._value_checks import check_finite, check_sample_weight, normalised_sample_weight, refuse_meta
from ._value_checks import integer as integer  # re-exported: imported from here
from ._value_checks import real_values as real_values  # re-exported: imported from here

__all__ = [
    "OutputKind",
    "as_output",
    "check_device",
    "check_finite",
    "check_random_generator",
    "check_sample_weight",
    "check_scipy_rng",
    "nan_message",
    "normalised_sample_weight",
    "refuse_meta",
    "resolve_dtype",
    "to_tensor",
    "validate_with_advice",
]


@dataclass(frozen=True)
class OutputKind:
    """How to hand a result back: as NumPy, or as a tensor on ``device``."""

    is_tensor: bool
    device: torch.device | None = None

    @classmethod
    def of(cls, X: Any) -> OutputKind:
        if isinstance(X, torch.Tensor):
            return cls(True, X.device)
        return cls(False)


def as_output(value: torch.Tensor, kind: OutputKind) -> Any:
    """Return ``value`` as a NumPy array or as a tensor on the caller's device."""
    broadcast = value.numel() > 1 and 0 in value.stride()  # one value in many places
    if kind.is_tensor:  # a tensor a caller could write into one element of
        value = value.detach().to(kind.device)
        return value.contiguous() if broadcast else value
    array = value.detach().cpu().numpy()
    if broadcast:
        array.flags.writeable = False
    return array


def resolve_dtype(requested: Any, X: Any) -> torch.dtype:
    """Computation dtype: the requested one, else float32/float64 as the input has it."""
    if requested is not None:
        dtype = _as_torch_dtype(requested)
        if dtype not in (torch.float32, torch.float64):
            raise ValueError(f"dtype must be float32 or float64, got {requested!r}.")
        return dtype
    if isinstance(X, torch.Tensor):
        return X.dtype if X.dtype in (torch.float32, torch.float64) else torch.float32
    if isinstance(X, np.ndarray) and X.dtype == np.float32:
        return torch.float32
    return torch.float64


class DtypeKindError(TypeError, ValueError):
    """A ``dtype`` that is no dtype at all (e.g. ``3``): a ``TypeError``, and a
    ``ValueError`` as every unusable ``dtype`` was before (scikit-learn's
    ``InvalidParameterError`` is both, too)."""


class IntegerKindError(TypeError, ValueError):
    """A count (e.g. ``chunk_size``) given as something that is not an integer (``"8"``,
    ``2.5``, ``True``): a ``TypeError``, as the project's integer checks raise, and a
    ``ValueError``, as such counts were refused before (scikit-learn's
    ``InvalidParameterError`` is both, too)."""


def _as_torch_dtype(value: Any) -> torch.dtype:
    """``value`` (a torch dtype, 'float32'/'float64'/'double', or a NumPy dtype or type)
    as a torch dtype; anything but float32 or float64 is refused."""
    if isinstance(value, torch.dtype):
        return value
    table = {"float32": torch.float32, "float64": torch.float64, "double": torch.float64}
    if isinstance(value, str):
        name = value
    else:
        try:
            name = np.dtype(value).name
        except TypeError:
            raise DtypeKindError(
                "dtype must be float32 or float64 (a torch.dtype, a NumPy dtype or the name "
                f"'float32' or 'float64'), got {value!r} of type {type(value).__name__}."
            ) from None
    if name not in table:
        raise ValueError(f"dtype must be float32 or float64, got {value!r}.")
    return table[name]


def to_tensor(
    estimator: Any,
    X: Any,
    *,
    reset: bool,
    dtype: torch.dtype | None = None,
    device: Any = None,
    ensure_min_samples: int = 1,
    allow_nan: bool = False,
    defer_finite: bool = False,
) -> tuple[torch.Tensor, OutputKind]:
    """Validate ``X`` and return it as a 2-D floating tensor plus its output kind.

    Parameters
    ----------
    estimator : estimator instance
        Receives ``n_features_in_`` when ``reset`` is true and is checked against it otherwise.
    X : array-like or torch.Tensor of shape (n_samples, n_features)
    reset : bool
        True in ``fit``; False when scoring or predicting.
    dtype : torch.dtype, optional
        Computation dtype; by default float32 stays float32 and everything else is float64.
    device : str or torch.device, optional
        Where to compute; by default the tensor's device (CPU for NumPy input).
    ensure_min_samples : int
        Minimum number of rows.
    allow_nan : bool
        Accept NaN (missing entries); infinity is still an error.
    defer_finite : bool
        Leave out the check for NaN and infinity (one read of all of ``X``): the caller
        makes it later, by calling this again without the flag, when its pass over the
        data meets a non-finite value (scoring: NaN or infinite input always gives one).
        Ignored with ``allow_nan``.
    """
    kind = OutputKind.of(X)
    check_finite_now = allow_nan or not defer_finite
    target_device = check_device(device)
    refuse_meta(X, "X")
    if isinstance(X, torch.Tensor):
        tensor = _validate_tensor(
            estimator,
            X.detach(),
            reset=reset,
            ensure_min_samples=ensure_min_samples,
            allow_nan=allow_nan,
            check=check_finite_now,
        )
    else:
        array = _validate_array(
            estimator,
            X,
            reset=reset,
            ensure_min_samples=ensure_min_samples,
            allow_nan=allow_nan,
            check=check_finite_now,
        )
        if not array.flags.writeable or not array.flags.c_contiguous:
            array = np.ascontiguousarray(array).copy()
        tensor = torch.from_numpy(array)
    target_dtype = dtype if dtype is not None else resolve_dtype(None, tensor)
    target_device = target_device if target_device is not None else tensor.device
    return tensor.to(device=target_device, dtype=target_dtype), kind


#: scikit-learn's message for 1-D or scalar input, which goes on to print the whole array
_NOT_2D = re.compile(r"Expected 2D array, got (1D|scalar) array instead")


def _validate_array(
    estimator: Any,
    X: Any,
    *,
    reset: bool,
    ensure_min_samples: int,
    allow_nan: bool = False,
    check: bool = True,
) -> Any:
    """scikit-learn's ``validate_data`` through :func:`validate_with_advice`; ``check``
    false leaves out the check for non-finite values."""
    if not reset and not check and _passes_as_is(estimator, X, ensure_min_samples):
        return X
    finite: bool | str = ("allow-nan" if allow_nan else True) if check else False
    return validate_with_advice(
        estimator,
        X,
        reset=reset,
        dtype=[np.float64, np.float32],
        ensure_min_samples=ensure_min_samples,
        ensure_all_finite=finite,
    )


def _passes_as_is(estimator: Any, X: Any, ensure_min_samples: int) -> bool:
    """Whether ``validate_data`` would hand scoring input ``X`` back unchanged, without a
    warning: a plain 2-D NumPy array of native float32 or float64 with the fitted number of
    features and enough rows, for an estimator fitted without feature names (the check for
    non-finite values is left to the pass, see :func:`to_tensor`). Its checks cost about
    0.13 ms per call, a third of a one-row ``predict``; any other input goes through them.
    """
    return (
        type(X) is np.ndarray
        and X.ndim == 2
        and (X.dtype == np.float32 or X.dtype == np.float64)  # not byte-swapped
        and X.shape[0] >= ensure_min_samples
        and X.shape[1] == getattr(estimator, "n_features_in_", None)
        and not hasattr(estimator, "feature_names_in_")
    )


def _validate_tensor(
    estimator: Any,
    X: torch.Tensor,
    *,
    reset: bool,
    ensure_min_samples: int,
    allow_nan: bool,
    check: bool = True,
) -> torch.Tensor:
    name = type(estimator).__name__
    if X.is_complex():
        raise ValueError("Complex data not supported.")
    if X.dtype == torch.bool or not (X.is_floating_point() or _is_integer(X)):
        raise ValueError(f"{name} needs numeric input, got a tensor of dtype {X.dtype}.")
    if X.ndim != 2:
        raise ValueError(
            f"Expected a 2D tensor of shape (n_samples, n_features), got {X.ndim}D with shape "
            f"{tuple(X.shape)}. Reshape 1-D data with X.reshape(-1, 1) for a single feature."
        )
    n_samples, n_features = X.shape
    if n_samples < ensure_min_samples:
        raise ValueError(
            f"Found array with {n_samples} sample(s) (shape={tuple(X.shape)}) while a minimum "
            f"of {ensure_min_samples} is required by {name}."
        )
    if n_features < 1:
        raise ValueError(
            f"Found array with 0 feature(s) (shape={tuple(X.shape)}) while a minimum of 1 "
            f"is required by {name}."
        )
    if not X.is_floating_point():
        X = X.to(torch.get_default_dtype())
    elif X.dtype not in (torch.float32, torch.float64):
        X = X.float()
    if allow_nan:
        if bool(torch.isinf(X).any()):
            raise ValueError("Input X contains infinity.")
    elif check:
        if bool(torch.isnan(X).any()):
            raise ValueError(nan_message(estimator))
        check_finite(X, "X")
    if reset:
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
    elif n_features != estimator.n_features_in_:
        raise ValueError(
            f"X has {n_features} features, but {name} is expecting "
            f"{estimator.n_features_in_} features as input."
        )
    return X


def validate_with_advice(estimator: Any, *args: Any, **kwargs: Any) -> Any:
    """scikit-learn's ``validate_data``, with :func:`nan_message` for NaN in ``X``, advice
    for NaN in ``y``, a one-line message for 1-D or complex ``X`` (scikit-learn's prints
    the whole array) and the names of the columns that are not numbers."""
    try:
        return validate_data(estimator, *args, **kwargs)
    except ValueError as error:
        message = str(error)
        if message.startswith("Input X contains NaN"):  # then advises supervised models
            raise ValueError(nan_message(estimator)) from None
        if message.startswith("Input y contains NaN"):
            raise ValueError(
                f"Input y contains NaN. {type(estimator).__name__} learns from rows with "
                "known targets: drop the rows whose targets are missing."
            ) from None
        if message.startswith("Complex data not supported"):
            raise ValueError("Complex data not supported: X must hold real numbers.") from None
        match = _NOT_2D.match(message)
        if match is not None:
            raise ValueError(
                f"Expected 2D array of shape (n_samples, n_features), got {match.group(1)} "
                f"array of shape {np.shape(args[0])}. Reshape your data with X.reshape(-1, 1) "
                "if it has one feature, or X.reshape(1, -1) if it is one sample."
            ) from None
        if message.startswith("could not convert"):
            _raise_not_numbers(estimator, args, error)
        raise


def _raise_not_numbers(estimator: Any, args: tuple[Any, ...], error: ValueError) -> None:
    """A ValueError naming the columns of a DataFrame ``X`` that are not numbers, and
    what to do; nothing for other input."""
    dtypes = getattr(args[0], "dtypes", None) if args else None
    if dtypes is None or not hasattr(dtypes, "items"):
        return
    text = [
        f"{column!r} ({dtype})"
        for column, dtype in dtypes.items()
        if getattr(dtype, "kind", "O") not in "biuf"
    ]
    if text:
        raise ValueError(
            f"X has columns that are not numbers: {', '.join(text)}. "
            f"{type(estimator).__name__} models real numbers: encode those columns (e.g. "
            "sklearn.preprocessing.OneHotEncoder in a sklearn.compose.ColumnTransformer) or "
            "drop them."
        ) from error


def nan_message(estimator: Any) -> str:
    """ "Input X contains NaN." and what to do about it with ``estimator``: build it with
    ``missing_values=np.nan`` where it has that parameter, else fill in or drop the rows.
    (scikit-learn's own advice points to supervised estimators and to imputers.)"""
    name = type(estimator).__name__
    if "missing_values" in getattr(estimator, "get_params", dict)(deep=False):
        advice = (
            f"{name} takes rows with missing entries when built with missing_values=np.nan; "
            "otherwise fill them in (e.g. sklearn.impute.SimpleImputer) or drop those rows."
        )
    else:
        advice = (
            f"{name} needs complete rows: fill in the missing entries (e.g. with "
            "mixtorch.GaussianMixtureImputer or sklearn.impute.SimpleImputer) or drop those "
            "rows; mixtorch.GaussianMixture(missing_values=np.nan) fits a mixture to rows "
            "with missing entries."
        )
    return f"Input X contains NaN. {advice}"


def _is_integer(X: torch.Tensor) -> bool:
    return X.dtype in (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)

"""Feature indices and observed values for marginals and conditionals: checked
indices (:func:`check_features`, re-exported by :mod:`mixtorch.conditioning`), the
complementary free indices, and observed values as rows."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from collections.abc import Set as AbstractSet
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._validation import real_values

__all__ = ["as_rows", "check_features", "feature_list", "free_features"]


def check_features(features: Any, n_features: int, *, leave_one: bool = False) -> Tensor:
    """Feature indices as a 1-D int64 tensor: integers in [0, n_features), no repeats.

    Parameters
    ----------
    features : int, sequence of int, or boolean mask of n_features entries
        Feature indices; negative ones count from the end, as in NumPy. A boolean mask
        (as NumPy indexing takes one) selects the features where it is True.
    n_features : int
        Number of features of the model the indices refer to.
    leave_one : bool, default=False
        If True, at least one feature must remain outside ``features`` (conditioning
        needs a free feature).

    Returns
    -------
    Tensor of shape (len(features),)
        The indices, made non-negative, in the order given.

    Raises
    ------
    TypeError
        If ``features`` are not integers (floats are refused even when whole, as NumPy
        indexing refuses them), or are a set (pass a list: a set's order is arbitrary).
    ValueError
        For an empty sequence, out-of-range or repeated indices, or (``leave_one``) all
        features named.

    See Also
    --------
    mixtorch.Mixture.marginal, mixtorch.Mixture.conditionals

    Examples
    --------
    >>> from mixtorch.conditioning import check_features
    >>> check_features([0, -1], n_features=4)
    tensor([0, 3])
    >>> try:
    ...     check_features([0, 0], n_features=4)
    ... except ValueError as error:
    ...     print("ValueError")
    ...
    ValueError
    """
    if isinstance(features, AbstractSet):
        raise TypeError(
            f"features must be an ordered sequence of feature indices, got a "
            f"{type(features).__name__}, whose order is arbitrary; pass a list of the "
            "indices in the order you want."
        )
    given = features
    mask = _boolean_mask(features)
    if mask is not None:  # indexing as NumPy does: the True positions
        if mask.ndim == 0:
            raise TypeError(
                f"features must be integer indices or a boolean mask, got {features!r}."
            )
        if mask.shape != (n_features,):
            raise ValueError(
                f"a boolean mask of features needs {n_features} entries (shape "
                f"({n_features},), one per feature), got shape {mask.shape}."
            )
        features = np.flatnonzero(mask).tolist()
    elif isinstance(features, (int, torch.SymInt)) or (
        hasattr(features, "ndim") and getattr(features, "ndim", 1) == 0
    ):
        features = [features]  # one index; a float one is refused below
    values = _integer_indices(features, given)
    if not values:
        raise ValueError("features must name at least one feature, got an empty sequence.")
    bad = [index for index in values if not -n_features <= index < n_features]
    if bad:
        raise ValueError(
            f"features must be indices in [0, {n_features}) for a model of {n_features} "
            f"features (or negative, down to -{n_features}, counting from the end), got {bad}."
        )
    normalised = [index % n_features for index in values]
    if len(set(normalised)) != len(normalised):
        raise ValueError(f"features must not repeat an index, got {values}.")
    if leave_one and len(normalised) == n_features:
        raise ValueError(
            "features must leave at least one feature free to condition on the others; "
            f"got all {n_features} features."
        )
    return torch.tensor(normalised, dtype=torch.int64)


def _integer_indices(features: Any, shown: Any) -> list[int]:
    """``features`` as Python ints; like NumPy indexing, floats are refused even when
    whole (``[1.0]``, ``torch.tensor([1.0])``), as are strings and other non-integers.
    ``shown`` is what the caller passed, for the message."""
    if isinstance(features, (Tensor, np.ndarray)):
        integral = (
            not (features.is_floating_point() or features.is_complex())
            if isinstance(features, Tensor)
            else features.dtype.kind in "iub"
        )
        items: list[Any] = features.tolist() if integral else [features]
    else:
        try:
            items = list(features)
        except TypeError:
            items = [features]
    if all(_is_integer(item) for item in items):
        return [int(item) for item in items]
    floats = any(_is_float(item) for item in items)
    advice = " (floats are refused even when whole, as NumPy indexing refuses them)"
    raise TypeError(
        f"features must be a sequence of integer feature indices{advice if floats else ''}, "
        f"got {shown!r}."
    )


def _is_float(item: Any) -> bool:
    """A float scalar or a floating array or tensor (for the message)."""
    if isinstance(item, Tensor):
        return item.is_floating_point()
    if isinstance(item, np.ndarray):
        return item.dtype.kind == "f"
    return isinstance(item, numbers.Real) and not isinstance(item, numbers.Integral)


def _is_integer(item: Any) -> bool:
    """A Python, NumPy or 0-d tensor integer."""
    if isinstance(item, Tensor):
        return item.ndim == 0 and not (item.is_floating_point() or item.is_complex())
    if isinstance(item, np.ndarray):
        return item.ndim == 0 and item.dtype.kind in "iu"
    return isinstance(item, (numbers.Integral, torch.SymInt))


def _boolean_mask(features: Any) -> np.ndarray | None:
    """``features`` as a NumPy bool array when it is a boolean mask (a list, array,
    tensor, pandas Series or Index of bools), else None."""
    if isinstance(features, Tensor):
        return features.cpu().numpy() if features.dtype == torch.bool else None
    try:
        array = np.asarray(features)
    except (TypeError, ValueError):
        return None
    return array if array.dtype == np.bool_ and array.size > 0 else None


def free_features(given: Tensor, n_features: int) -> Tensor:
    """The indices not in ``given``, in increasing order."""
    keep = torch.ones(n_features, dtype=torch.bool)
    keep[given] = False
    return torch.nonzero(keep).flatten()


def as_rows(values: Any, n_given: int, dtype: torch.dtype, device: torch.device) -> Tensor:
    """Observed values as a finite (B, n_given) tensor; one row may be given 1-D."""
    # One conversion for lists of arrays; strings, objects and complex values refused here.
    tensor = torch.as_tensor(real_values(values, "values"), dtype=dtype, device=device)
    if tensor.ndim <= 1:
        tensor = tensor.reshape(1, -1)
    if tensor.ndim != 2 or tensor.shape[1] != n_given:
        raise ValueError(
            f"values must have {n_given} entr{'y' if n_given == 1 else 'ies'} per row, one per "
            f"index in features, got shape {tuple(tensor.shape)}."
        )
    if not bool(torch.isfinite(tensor).all()):
        raise ValueError("values contain NaN or infinity; condition on finite values only.")
    return tensor


def feature_list(features: Sequence[int] | Tensor) -> list[int]:
    """Plain Python indices, for messages and metadata."""
    return [int(index) for index in features]

"""What :func:`mixtorch.selection.select` checks before any fit: the grid of candidates
(``n_components``, ``covariance_types``), the parameters passed to every
:class:`~mixtorch.GaussianMixture` and the data, so that a mistake is reported once, as
such, and not as every candidate's failure."""

from __future__ import annotations

import numbers
from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import torch
from sklearn.utils._param_validation import validate_parameter_constraints

from ._chunk_source import check_missing_values
from ._validation import to_tensor
from .covariance import covariance_class
from .gaussian_mixture import GaussianMixture


def _check_grid(
    n_components: Iterable[int], covariance_types: Sequence[str]
) -> tuple[list[int], list[str]]:
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    ks: list[Any]
    if isinstance(n_components, numbers.Integral):
        ks = [n_components]
    elif isinstance(n_components, Iterable) and not isinstance(n_components, (str, bytes)):
        ks = list(n_components)
    else:
        raise ValueError(
            "n_components must be an integer or a non-empty list of integers (e.g. "
            f"range(1, 7)), got {n_components!r}."
        )
    if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in ks):
        raise ValueError(f"n_components must be a non-empty list of integers, got {ks!r}.")
    if min(ks) < 1:
        raise ValueError(f"n_components must all be >= 1, got {ks!r}.")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components must not repeat a value, got {ks!r}.")
    if not isinstance(covariance_types, Iterable) or isinstance(covariance_types, bytes):
        raise ValueError(
            "covariance_types must be a covariance type or a sequence of them, e.g. "
            f"('full', 'diag'), got {covariance_types!r}."
        )
    kinds = list(covariance_types)
    if not kinds:
        raise ValueError("covariance_types must name at least one covariance type.")
    for kind in kinds:
        covariance_class(kind)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"covariance_types must not repeat a type, got {kinds!r}.")
    return [int(k) for k in ks], kinds


def _check_gmm_params(random_state: Any, gmm_params: dict[str, Any]) -> None:
    """``random_state`` and ``gmm_params`` checked as :meth:`GaussianMixture.fit` checks
    them, before any fit: an unknown name is a TypeError, an invalid value an
    ``InvalidParameterError`` (a ValueError and a TypeError) naming the parameter."""
    constraints = GaussianMixture._parameter_constraints
    unknown = sorted(set(gmm_params) - set(constraints))
    if unknown:
        raise TypeError(
            f"select got {unknown} in gmm_params, which GaussianMixture does not take; its "
            f"parameters are {sorted(set(constraints) - {'n_components', 'covariance_type'})}."
        )
    params = {"random_state": random_state, **gmm_params}
    validate_parameter_constraints(
        {name: constraints[name] for name in params}, params, caller_name="select"
    )
    check_missing_values(gmm_params.get("missing_values"))


def _checked_data(X: Any, gmm_params: dict[str, Any]) -> Any:
    """``X`` checked once as every candidate's fit would check it (NaN, infinity, shape,
    rows, text), so an error of the data is raised as such, not as every candidate's
    failure; returned as NumPy unless it is a tensor or a DataFrame (whose column names
    the fits record)."""
    if not isinstance(X, torch.Tensor) and not _is_dataframe(X):
        X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D of shape (n_samples, n_features), got shape {tuple(X.shape)}."
        )
    allow_nan = check_missing_values(gmm_params.get("missing_values")) is not None
    to_tensor(
        GaussianMixture(**gmm_params), X, reset=True, ensure_min_samples=2, allow_nan=allow_nan
    )
    return X


def _is_dataframe(X: Any) -> bool:
    """A pandas (or pandas-like) DataFrame: 2-D, positional ``iloc`` and ``columns``."""
    return hasattr(X, "iloc") and hasattr(X, "columns") and getattr(X, "ndim", None) == 2

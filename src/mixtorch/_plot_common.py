"""Helpers shared by the plotting functions (matplotlib is imported lazily): the Axes,
the fitted mixture, and the checks of the data and sizes the functions are given."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from ._validation import integer, real_values, refuse_meta
from .mixture import Mixture

__all__ = [
    "axes",
    "check_axes",
    "count",
    "fitted_mixture",
    "is_fitted",
    "numpy",
    "plot_data",
    "positive_number",
    "pyplot",
]


def pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("Plotting needs matplotlib: pip install 'mixtorch[plot]'.") from error
    return plt


def axes(ax: Any, figsize: tuple[float, float] = (6.0, 4.0)) -> Any:
    """``ax`` checked to be an Axes, or a new figure's Axes for None. Call it after every
    other check, so that an error leaves no figure open."""
    if ax is not None:
        check_axes(ax)
        return ax
    return pyplot().subplots(figsize=figsize)[1]


def check_axes(ax: Any) -> None:
    """TypeError unless ``ax`` is None or a matplotlib Axes (the pyplot module, which has
    ``plot`` too, and a Figure are refused with a pointer to ``plt.gca()``)."""
    if ax is None:
        return
    from matplotlib.axes import Axes  # an Axes given: matplotlib is installed

    if not isinstance(ax, Axes):
        hint = " (pass plt.gca() or fig.gca() for the current Axes)"
        raise TypeError(
            f"ax must be a matplotlib Axes or None (a new figure), got "
            f"{getattr(ax, '__name__', None) or type(ax).__name__}{hint}."
        )


def numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def is_fitted(estimator: Any) -> bool:
    """Whether scikit-learn's ``check_is_fitted`` passes on ``estimator``."""
    try:
        check_is_fitted(estimator)
    except NotFittedError:
        return False
    return True


def fitted_mixture(model: Any, n_features: int | None) -> Any:
    """The mixture of a fitted estimator (or a :class:`~mixtorch.Mixture` itself)."""
    mixture: Any = model if isinstance(model, Mixture) else getattr(model, "mixture_", None)
    inner = getattr(model, "mixture_model_", None)  # an imputer's or regressor's joint model
    if mixture is None and inner is not None:
        mixture = getattr(inner, "mixture_", None)
    if mixture is None:
        if hasattr(model, "fit") and is_fitted(model):
            raise TypeError(
                f"{type(model).__name__} is fitted but holds no mixture to plot; pass a "
                "mixtorch density model or a mixtorch.Mixture."
            )
        if hasattr(model, "fit"):
            raise NotFittedError(
                f"{type(model).__name__} has no fitted mixture_; fit it before plotting."
            )
        raise TypeError(
            "model must be a fitted mixtorch estimator or a mixtorch.Mixture, got "
            f"{type(model).__name__}."
        )
    if n_features is not None and mixture.n_features != n_features:
        raise ValueError(
            f"This plot needs a {n_features}-D model, got one with {mixture.n_features} features."
        )
    return mixture


def plot_data(values: Any, n_features: int, name: str = "X") -> np.ndarray:
    """``values`` as a finite float64 array of shape (n_samples, n_features), at least one
    row; for one feature a 1-D array is taken as a column. ValueError naming ``name``
    (a TypeError for objects that are no numbers, as :func:`~mixtorch._validation.real_values`)."""
    refuse_meta(values, name)
    array = real_values(numpy(values), name)  # complex refused; non-numbers as NumPy does
    if n_features == 1 and array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[1] != n_features:
        raise ValueError(
            f"{name} must have shape (n_samples, {n_features}) for a {n_features}-feature "
            f"model, got shape {array.shape}."
        )
    if array.shape[0] == 0:
        raise ValueError(f"{name} has no rows; pass at least one, or None to draw the model only.")
    if not np.isfinite(array).all():
        raise ValueError(
            f"{name} contains NaN or infinity; remove or impute those rows before plotting."
        )
    return array


def count(value: Any, name: str, minimum: int, maximum: int | None = None) -> int:
    """An integer in [minimum, maximum]: a TypeError for what is no integer (bools and
    floats included, as :func:`mixtorch._validation.integer`), a ValueError out of range."""
    number = integer(value, name)
    if number < minimum or (maximum is not None and number > maximum):
        bound = f">= {minimum}" if maximum is None else f"in [{minimum}, {maximum}]"
        raise ValueError(f"{name} must be an integer {bound}, got {value!r}.")
    return number


def positive_number(value: Any, name: str) -> float:
    """A finite number > 0 (ValueError otherwise)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise ValueError(f"{name} must be a positive number, got {value!r}.")
    if not math.isfinite(float(value)) or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}.")
    return float(value)

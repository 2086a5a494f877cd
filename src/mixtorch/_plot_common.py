"""Helpers shared by the plotting functions (matplotlib is imported lazily)."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

__all__ = ["axes", "fitted_mixture", "numpy", "pyplot"]


def pyplot() -> Any:
    try:
        import matplotlib.pyplot as plt
    except ImportError as error:
        raise ImportError("Plotting needs matplotlib: pip install 'mixtorch[plot]'.") from error
    return plt


def axes(ax: Any, figsize: tuple[float, float] = (6.0, 4.0)) -> Any:
    if ax is not None:
        return ax
    return pyplot().subplots(figsize=figsize)[1]


def numpy(values: Any) -> np.ndarray:
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().numpy()
    return np.asarray(values)


def fitted_mixture(model: Any, n_features: int | None) -> Any:
    mixture = getattr(model, "mixture_", None)
    if mixture is None:
        raise ValueError(f"{type(model).__name__} has no fitted mixture_; fit it before plotting.")
    if n_features is not None and mixture.n_features != n_features:
        raise ValueError(
            f"This plot needs a {n_features}-D model, got one with {mixture.n_features} features."
        )
    return mixture

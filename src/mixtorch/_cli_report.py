"""What the command line prints and draws about models and selections (see
:mod:`mixtorch.cli`)."""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from ._cli_checks import PLOT_BINS
from ._tables import require_extra

__all__ = ["draw", "feature_names", "headless_pyplot", "print_model", "print_selection"]


def feature_names(model: Any) -> list[str] | None:
    """The model's column names (``feature_names_in_``) as strings, if it has them."""
    names = getattr(model, "feature_names_in_", None)
    return None if names is None else [str(name) for name in names]


def print_model(model: Any, form: str) -> None:
    """``mixtorch info``: class, parameters, features and fit record, as text or JSON."""
    record: dict[str, Any] = {
        "class": type(model).__name__,
        "parameters": {key: _plain(value) for key, value in model.get_params(deep=False).items()},
        "n_features_in": _plain(getattr(model, "n_features_in_", None)),
        "feature_names_in": feature_names(model),
    }
    if hasattr(model, "n_targets_"):  # a regressor: the targets follow the features
        record["n_targets"] = _plain(model.n_targets_)
    # a regressor or imputer keeps its joint mixture in mixture_model_
    inner = getattr(model, "mixture_model_", None)
    mixture = getattr(model if inner is None else inner, "mixture_", None)
    for name in ("n_components", "covariance_type"):
        if mixture is not None:
            record[f"fitted_{name}"] = _plain(getattr(mixture, name))
    fit: dict[str, Any] = {}
    for name in ("converged_", "n_iter_", "lower_bound_", "bandwidth_", "factor_"):
        holder = model if hasattr(model, name) else inner  # lower_bound_: the joint fit's
        if holder is not None and hasattr(holder, name):
            fit[name.rstrip("_")] = _plain(getattr(holder, name))
    record["fit"] = fit
    if form == "json":
        print(json.dumps(record, indent=2))
        return
    for key, value in record.items():
        if isinstance(value, dict):
            print(f"{key}:")
            for inner, item in value.items():
                print(f"  {inner}: {item}")
        else:
            print(f"{key}: {value}")


def _plain(value: Any) -> Any:
    """A JSON-friendly rendering of a parameter or fitted value."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value if not isinstance(value, float) or np.isfinite(value) else str(value)
    array = np.asarray(value.detach().cpu() if hasattr(value, "detach") else value)
    if array.dtype.kind in "fiub" and array.size <= 64:
        return _plain(array.item()) if array.ndim == 0 else array.tolist()
    return str(value) if array.size <= 64 else f"<array of shape {array.shape}>"


def print_selection(result: Any, form: str) -> None:
    """The table of a model selection as text, CSV or JSON."""
    rows = [{key: _plain(value) for key, value in row.items()} for row in result.table]
    if form == "text":
        print(result)
    elif form == "json":
        best = {key: _plain(value) for key, value in result.best_params_.items()}
        print(json.dumps({"best_params": best, "table": rows}, indent=2))
    else:
        keys = list(rows[0]) if rows else []
        print(",".join(keys))
        for row in rows:
            print(",".join(str(row[key]) for key in keys))


def draw(model: Any, kind: str, X: np.ndarray | None, n_features: int) -> Any:
    """The picture ``mixtorch plot`` draws: MCMC traces, the training curve, or the
    density (a histogram in 1-D, a scatter with ellipses in 2-D) labelled by column."""
    from . import plotting

    if kind == "traces":
        return plotting.plot_mcmc_traces(model).axes[0]
    if kind == "curve":
        return plotting.plot_training_curve(model)
    if n_features == 1:
        ax = plotting.plot_density_1d(model, X, bins=PLOT_BINS)
    else:
        ax = plotting.plot_mixture_2d(model, X)
    names = feature_names(model)
    if names:
        ax.set_xlabel(names[0])
        if n_features == 2:
            ax.set_ylabel(names[1])
    return ax


def headless_pyplot() -> Any:
    """pyplot drawing to files only (no window, works without a display)."""
    require_extra("matplotlib", "plotting")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt

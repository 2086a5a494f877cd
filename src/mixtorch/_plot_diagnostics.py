"""Diagnostic plots of a fit: training curves, model-selection criteria and KDE
bandwidth curves. Re-exported by :mod:`mixtorch.plotting`; plots of samples (image
grids, MCMC traces) are in :mod:`mixtorch._plot_samples`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from ._plot_common import axes as _axes
from ._plot_common import is_fitted
from ._plot_common import numpy as _numpy
from ._validation import real_values
from .fit.gradient_trace import GradientTrace
from .selection import CRITERIA, SelectionResult, SelectionTable

__all__ = [
    "TRAINING_CURVES",
    "plot_criterion",
    "plot_loo_curve",
    "plot_training_curve",
]

#: Attributes holding a per-iteration training curve, most specific first.
TRAINING_CURVES: tuple[tuple[str, str], ...] = (
    ("lower_bounds_", "mean log-likelihood per sample"),
    ("elbo_history_", "ELBO (total over samples)"),
    ("loss_history_", "negative log-likelihood"),
    ("losses_", "negative log-likelihood"),
    ("history_", "negative log-likelihood per sample"),
)
#: variational Bayes keeps scikit-learn's lower bound in ``lower_bounds_``: a total over
#: the samples (it grows with n_samples), not a mean
_VB_BOUND = "ELBO (total over samples, scikit-learn's lower bound)"


# -- curves --------------------------------------------------------------------------
def plot_training_curve(source: Any, *, ax: Any = None, label: str | None = None) -> Any:
    """The objective per iteration: log-likelihood (EM), ELBO (VB) or loss (gradient).

    Parameters
    ----------
    source : estimator or sequence of float
        An estimator with one of the attributes in :data:`TRAINING_CURVES`
        (``lower_bounds_``, ``elbo_history_``, ``loss_history_``, ...), or the values.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a new figure.
    label : str, default=None
        The y-axis label; None takes it from the attribute.

    Returns
    -------
    matplotlib.axes.Axes
        One line, the objective against the iteration.

    Raises
    ------
    ValueError
        If ``source`` has no training curve, or an empty one (``NotFittedError``, also a
        ValueError, for an estimator not fitted yet).
    TypeError
        For None or a string (values that are no numbers raise as NumPy's conversion).

    See Also
    --------
    plot_criterion : Compare fitted models instead of iterations.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixture
    >>> from mixtorch.plotting import plot_training_curve
    >>> X = np.random.default_rng(0).normal(size=(300, 2))
    >>> ax = plot_training_curve(GaussianMixture(3, random_state=0).fit(X))
    >>> len(ax.lines[0].get_xdata()) >= 2
    True
    """
    values, ylabel = _curve(source)
    if values.size == 0:
        raise ValueError("The training curve is empty (the model ran no iterations).")
    ax = _axes(ax)
    ax.plot(np.arange(1, values.size + 1), values, "o-", ms=3)
    ax.set_xlabel("iteration")
    ax.set_ylabel(label or ylabel)
    return ax


def _curve(source: Any) -> tuple[np.ndarray, str]:
    if source is None:
        raise TypeError(
            "plot_training_curve needs a fitted estimator or a sequence of objective values, "
            "got None."
        )
    if getattr(source, "mixture_model_", None) is not None:  # an imputer's or regressor's fit
        source = source.mixture_model_
    if hasattr(source, "get_params"):
        for name, meaning in TRAINING_CURVES:
            if getattr(source, name, None) is not None:
                if name == "lower_bounds_" and hasattr(source, "weight_concentration_prior_"):
                    meaning = _VB_BOUND
                value = getattr(source, name)
                if isinstance(value, GradientTrace):  # a gradient fit's history_ (epochs)
                    value = value.nll
                return _numpy(value).astype(float).reshape(-1), meaning
        names = ", ".join(name for name, _ in TRAINING_CURVES)
        if not is_fitted(source):
            raise NotFittedError(
                f"{type(source).__name__} is not fitted, so it has no training curve; fit it "
                "before plotting."
            )
        raise ValueError(f"{type(source).__name__} has no training curve (looked for {names}).")
    if isinstance(source, (str, bytes)):
        raise TypeError(
            "plot_training_curve needs a fitted estimator or a sequence of objective values, "
            f"got the string {source!r}."
        )
    return real_values(_numpy(source), "source").reshape(-1), "objective"


def plot_criterion(
    result: SelectionResult | SelectionTable | Sequence[Mapping[str, Any]],
    criterion: str | None = None,
    *,
    ax: Any = None,
) -> Any:
    """BIC, AIC or held-out log-likelihood against the number of components, one line per
    covariance type, with the best candidate marked.

    Parameters
    ----------
    result : SelectionResult or SelectionTable
        A :func:`~mixtorch.select` result, or its table (rows with n_components,
        covariance_type and the criterion column).
    criterion : {'bic', 'aic', 'cv'}, default=None
        The column to plot; None takes the result's criterion (or the first present).
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a new figure.

    Returns
    -------
    matplotlib.axes.Axes
        One line per covariance type against K, the best candidate marked.

    See Also
    --------
    mixtorch.select : The sweep that makes the table.

    Examples
    --------
    >>> import numpy as np
    >>> import mixtorch
    >>> from mixtorch.plotting import plot_criterion
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> result = mixtorch.select(X, [1, 2, 3], ["diag"], random_state=0)
    >>> ax = plot_criterion(result)
    >>> ax.get_ylabel()
    'bic (lower is better)'
    """
    rows = SelectionTable(result.table if isinstance(result, SelectionResult) else result)
    if not rows:
        raise ValueError("The selection table is empty.")
    for row in rows:
        if not isinstance(row, Mapping) or not {"n_components", "covariance_type"} <= set(row):
            raise (ValueError if isinstance(row, Mapping) else TypeError)(
                "result must be a mixtorch.select result or its table: rows that are dicts "
                "with at least 'n_components', 'covariance_type' and the criterion's column; "
                f"got a row {row!r}."
            )
    if criterion is None and isinstance(result, SelectionResult):
        criterion = result.criterion
    elif criterion is None:
        found = [name for name, (column, _) in CRITERIA.items() if column in rows[0]]
        if not found:
            raise ValueError(
                f"The selection table has no criterion column (one of "
                f"{[column for column, _ in CRITERIA.values()]}); its columns are "
                f"{list(rows[0])}. Pass a table made by mixtorch.select."
            )
        criterion = found[0]
    if criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}.")
    column, lower_is_better = CRITERIA[criterion]
    if not all(column in row for row in rows):
        raise ValueError(
            f"The selection table has no {column!r} column for criterion={criterion!r}: "
            "select computes only the criterion it was asked for; run "
            f"mixtorch.select(..., criterion={criterion!r}) or plot its own criterion."
        )
    ax = _axes(ax)
    best: tuple[float, int] | None = None
    for kind in dict.fromkeys(row["covariance_type"] for row in rows):
        ks, values = rows.column(column, kind)
        ax.plot(ks, values, "o-", label=kind)
        for k, value in zip(ks, values, strict=True):
            key = value if lower_is_better else -value
            if not math.isnan(value) and (best is None or key < best[0]):
                best = (key, k)
    if best is not None:
        value = best[0] if lower_is_better else -best[0]
        ax.plot([best[1]], [value], "k*", ms=14, label="best")
    tried = sorted({int(row["n_components"]) for row in rows})
    if len(tried) <= 15:  # a tick at every K tried
        ax.set_xticks(tried)
    else:
        from matplotlib.ticker import MaxNLocator

        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("number of components K")
    ax.set_ylabel(f"{column} ({'lower' if lower_is_better else 'higher'} is better)")
    ax.legend(fontsize="small")
    return ax


def plot_loo_curve(source: Any, *, ax: Any = None, xlabel: str | None = None) -> Any:
    """Leave-one-out log-likelihood against the KDE bandwidth factor, best one marked.

    A :class:`~mixtorch.GaussianKDE`'s ``loo_curve_`` holds bandwidth *factors*
    (``H = factor**2 * data_covariance_``), not kernel standard deviations, and the x-axis
    says so. For a one-feature estimator the legend also gives the kernel standard
    deviation ``h = factor * sqrt(data_covariance_)`` of the best factor.

    Parameters
    ----------
    source : estimator with ``loo_curve_`` or a pair (factors, values)
        ``loo_curve_`` is a pair of equal-length sequences (bandwidth factor,
        leave-one-out log-likelihood), or a dict with those two entries.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a new figure.
    xlabel : str, default=None
        The x-axis label; None states the factor's definition.

    Returns
    -------
    matplotlib.axes.Axes
        The curve against the factor (log axis for wide ranges), the best one marked.

    Raises
    ------
    ValueError
        If ``source`` has no ``loo_curve_`` (a fixed bandwidth), or the curve is empty,
        holds no numbers, a factor that is NaN or infinite, or only NaN values.

    See Also
    --------
    mixtorch.GaussianKDE : ``bandwidth='loo'`` records ``loo_curve_``.
    plot_density_1d : The resulting density.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianKDE
    >>> from mixtorch.plotting import plot_loo_curve
    >>> X = np.random.default_rng(0).normal(size=(100, 1))
    >>> ax = plot_loo_curve(GaussianKDE(bandwidth="loo").fit(X))
    >>> len(ax.lines) >= 1
    True
    """
    curve = getattr(source, "loo_curve_", source) if hasattr(source, "get_params") else source
    if hasattr(source, "get_params") and (curve is source or curve is None):
        raise ValueError(
            f"{type(source).__name__} has no loo_curve_; fit it with a search "
            "(e.g. GaussianKDE(bandwidth='loo'))."
        )
    if curve is None:
        raise TypeError(
            "plot_loo_curve needs a KDE fitted with a bandwidth search, its loo_curve_, or "
            "a (bandwidths, values) pair; got None."
        )
    bandwidths, values = list(curve.values())[:2] if isinstance(curve, Mapping) else curve
    bandwidths = real_values(_numpy(bandwidths), "bandwidths").reshape(-1)
    values = real_values(_numpy(values), "values").reshape(-1)
    if bandwidths.size != values.size or bandwidths.size == 0:
        raise ValueError("The bandwidth curve needs equal, non-zero numbers of points.")
    if not np.isfinite(bandwidths).all() or np.isnan(values).all():
        raise ValueError(
            "The bandwidth curve needs finite bandwidth factors and at least one "
            "log-likelihood that is not NaN; drop the failed points before plotting."
        )
    ax = _axes(ax)
    ax.plot(bandwidths, values, "o-", ms=3)
    best = int(np.nanargmax(values))
    label = f"best factor {bandwidths[best]:.3g}{_kernel_sd(source, bandwidths[best])}"
    ax.axvline(bandwidths[best], color="k", ls=":", label=label)
    if bandwidths.min() > 0 and bandwidths.max() / bandwidths.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(xlabel or "bandwidth factor (H = factor² × data covariance)")
    ax.set_ylabel("leave-one-out log-likelihood")
    ax.legend(fontsize="small")
    return ax


def _kernel_sd(source: Any, factor: float) -> str:
    """`` (h = ...)`` for a one-feature estimator with a data covariance, else ''."""
    covariance = getattr(source, "data_covariance_", None)
    if covariance is None or _numpy(covariance).size != 1:
        return ""
    return f" (h = {factor * math.sqrt(float(_numpy(covariance).reshape(-1)[0])):.3g})"

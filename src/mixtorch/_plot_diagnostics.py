"""Diagnostic plots: training curves, model-selection criteria, KDE bandwidth curves,
image grids and MCMC traces. Re-exported by :mod:`mixtorch.plotting`."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ._plot_common import axes as _axes
from ._plot_common import numpy as _numpy
from ._plot_common import pyplot as _pyplot
from .fit.gradient_trace import GradientTrace
from .selection import CRITERIA, SelectionResult, SelectionTable

__all__ = [
    "TRAINING_CURVES",
    "plot_criterion",
    "plot_loo_curve",
    "plot_mcmc_traces",
    "plot_samples_grid",
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
        If ``source`` has no training curve, or an empty one.

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
        raise ValueError(f"{type(source).__name__} has no training curve (looked for {names}).")
    return _numpy(source).astype(float).reshape(-1), "objective"


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
    if criterion is None:
        criterion = (
            result.criterion
            if isinstance(result, SelectionResult)
            else next(name for name, (column, _) in CRITERIA.items() if column in rows[0])
        )
    column, lower_is_better = CRITERIA[criterion]
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
        If ``source`` has no ``loo_curve_`` (a fixed bandwidth) or the curve is empty.

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
    if curve is source and hasattr(source, "get_params"):
        raise ValueError(f"{type(source).__name__} has no loo_curve_; fit it with a search.")
    bandwidths, values = list(curve.values())[:2] if isinstance(curve, Mapping) else curve
    bandwidths, values = _numpy(bandwidths).reshape(-1), _numpy(values).reshape(-1)
    if bandwidths.size != values.size or bandwidths.size == 0:
        raise ValueError("The bandwidth curve needs equal, non-zero numbers of points.")
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


def _chains_of(model: Any) -> tuple[dict[str, np.ndarray], bool]:
    draws = {name: _numpy(value) for name, value in model.posterior_samples_.items()}
    chains = int(model.get_params(deep=False).get("num_chains", 1) or 1)
    if chains <= 1:
        return draws, False
    return {
        name: value.reshape(chains, -1, *value.shape[1:]) for name, value in draws.items()
    }, True


# -- samples -------------------------------------------------------------------------
def plot_samples_grid(
    images: Any,
    shape: tuple[int, int] = (8, 8),
    *,
    n_cols: int | None = None,
    ax: Any = None,
    title: str | None = None,
    cmap: str = "gray_r",
    value_range: tuple[float, float] | None = None,
    labels: Any = None,
) -> Any:
    """Images (one per row of ``images``) tiled into one picture.

    Parameters
    ----------
    images : array-like or Tensor of shape (n_images, height * width)
        Flattened images, one per row (e.g. ``GaussianMixture.sample`` on digits).
    shape : tuple of (int, int), default=(8, 8)
        Height and width of each image in pixels.
    n_cols : int, optional
        Images per row; by default about the square root of ``n_images``.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a new figure.
    title : str, default=None
        Title above the grid; None draws none.
    cmap : str, default='gray_r'
        A matplotlib colour map name.
    value_range : (low, high), optional
        Pixel range of the colour map; by default the range of ``images``.
    labels : array-like of shape (n_images,), optional
        A label written in the corner of each tile (e.g. the mixture component that
        generated it).

    Returns
    -------
    matplotlib.axes.Axes
        Holding a single image artist, the tiled grid.

    Raises
    ------
    ValueError
        If ``images`` does not have ``height * width`` columns, or ``labels`` has not
        one entry per image.

    See Also
    --------
    plot_mixture_2d : Models of two features.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.plotting import plot_samples_grid
    >>> images = np.random.default_rng(0).uniform(0, 16, size=(6, 64))
    >>> ax = plot_samples_grid(images, (8, 8), n_cols=3)
    >>> ax.images[0].get_array().shape
    (19, 28)
    """
    height, width = shape
    pixels = _numpy(images).astype(float)
    if pixels.ndim != 2 or pixels.shape[1] != height * width:
        raise ValueError(
            f"images must have shape (n_images, {height * width}) for {shape} pictures, "
            f"got {pixels.shape}."
        )
    n_images = pixels.shape[0]
    n_cols = n_cols or max(1, math.ceil(math.sqrt(n_images)))
    n_rows = math.ceil(n_images / n_cols)
    low, high = value_range or (float(pixels.min()), float(pixels.max()))
    # One-pixel gutters in the background value separate the tiles.
    canvas = np.full((n_rows * (height + 1) + 1, n_cols * (width + 1) + 1), low)
    for index, image in enumerate(pixels.reshape(n_images, height, width)):
        row, col = divmod(index, n_cols)
        top, left = 1 + row * (height + 1), 1 + col * (width + 1)
        canvas[top : top + height, left : left + width] = image
    ax = _axes(ax, (0.5 * n_cols + 1, 0.5 * n_rows + 1))
    ax.imshow(canvas, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    if labels is not None:
        names = [str(label) for label in _numpy(labels).reshape(-1)]
        if len(names) != n_images:
            raise ValueError(f"labels must have {n_images} entries, one per image.")
        for index, name in enumerate(names):
            row, col = divmod(index, n_cols)
            top, left = 1 + row * (height + 1), 1 + col * (width + 1)
            ax.text(left - 0.3, top - 0.2, name, color="tab:red", fontsize=6, va="top")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def plot_mcmc_traces(
    samples: Any,
    *,
    group_by_chain: bool = False,
    max_series: int = 6,
    bins: int = 40,
) -> Any:
    """Trace (value per draw) and posterior density of each sampled parameter.

    Parameters
    ----------
    samples : dict of str -> array-like or Tensor, or a fitted MCMC estimator
        Each of shape (n_draws, ...), as Pyro's ``MCMC.get_samples()`` returns them. An
        estimator's ``posterior_samples_`` (chains one after another) are split into its
        ``num_chains`` chains.
    group_by_chain : bool, default=False
        True when each entry is (n_chains, n_draws, ...) (``get_samples(group_by_chain=True)``);
        every chain is then drawn in its own colour (line style per component) with a
        legend, and gets its own density curve, so disagreeing chains and label
        switching show.
    max_series : int, default=6
        At most this many scalar components of each parameter are drawn.
    bins : int, default=40
        Histogram bins of each posterior density.

    Returns
    -------
    matplotlib.figure.Figure
        One row per parameter: traces on the left, densities on the right.

    See Also
    --------
    mixtorch.MCMCGaussianMixture : The sampler whose ``posterior_samples_`` it shows.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.plotting import plot_mcmc_traces
    >>> rng = np.random.default_rng(0)
    >>> draws = {"weights": rng.dirichlet([5, 5], size=200), "locs": rng.normal(size=(200, 2, 1))}
    >>> figure = plot_mcmc_traces(draws)
    >>> len(figure.axes)
    4
    """
    if hasattr(samples, "posterior_samples_"):
        samples, group_by_chain = _chains_of(samples)
    names = list(samples)
    if not names:
        raise ValueError("samples holds no parameters to plot.")
    figure, axes = _pyplot().subplots(len(names), 2, figsize=(10, 2.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        draws = _numpy(samples[name]).astype(float)
        draws = draws if group_by_chain else draws[None]
        if draws.ndim < 2 or draws.shape[1] == 0:
            raise ValueError(f"samples[{name!r}] needs a draws dimension, got shape {draws.shape}.")
        series = draws.reshape(draws.shape[0], draws.shape[1], -1)[:, :, :max_series]
        trace_ax, density_ax = axes[row]
        _draw_chains(trace_ax, density_ax, series, bins)
        trace_ax.set_ylabel(name)
        density_ax.set_ylabel("density")
    axes[-1, 0].set_xlabel("draw")
    axes[-1, 1].set_xlabel("value")
    figure.tight_layout()
    return figure


_LINE_STYLES = ("-", "--", ":", "-.")


def _draw_chains(trace_ax: Any, density_ax: Any, series: np.ndarray, bins: int) -> None:
    """Traces and densities of ``series`` (n_chains, n_draws, n_series).

    One chain: a colour per series and one density per series. Several chains: a colour
    per chain (line style per series), a density per chain and series, and a legend.
    """
    n_chains, n_draws, n_series = series.shape
    n_bins = min(bins, max(5, int(np.sqrt(n_draws))))
    for chain in range(n_chains):
        for k in range(n_series):
            if n_chains > 1:
                style = {"color": f"C{chain % 10}", "ls": _LINE_STYLES[k % len(_LINE_STYLES)]}
            else:
                style = {"color": f"C{k % 10}", "ls": "-"}
            label = f"chain {chain}" if n_chains > 1 and k == 0 else None
            trace_ax.plot(series[chain, :, k], lw=0.7, alpha=0.8, label=label, **style)
            density_ax.hist(
                series[chain, :, k], bins=n_bins, density=True, histtype="step", **style
            )
    if n_chains > 1:
        trace_ax.legend(fontsize="x-small", loc="upper right")

"""Plots of samples: image grids of generated points and MCMC traces with their
densities. Re-exported by :mod:`mixtorch.plotting`."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np
from sklearn.exceptions import NotFittedError

from ._plot_common import axes as _axes
from ._plot_common import count, is_fitted
from ._plot_common import numpy as _numpy
from ._plot_common import pyplot as _pyplot
from ._validation import real_values

__all__ = ["plot_mcmc_traces", "plot_samples_grid"]


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
        If ``images`` does not have ``height * width`` columns, holds NaN or infinity,
        ``labels`` has not one entry per image, ``value_range`` is not a finite
        ``(low, high)`` pair with ``low < high``, or ``cmap`` is no colour map name.

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
    if not isinstance(shape, (tuple, list)) or len(shape) != 2:
        raise TypeError(f"shape must be a (height, width) pair of integers, got {shape!r}.")
    height, width = count(shape[0], "shape[0] (height)", 1), count(shape[1], "shape[1] (width)", 1)
    pixels = real_values(_numpy(images), "images")  # complex refused, as everywhere
    if pixels.ndim != 2 or pixels.shape[1] != height * width:
        raise ValueError(
            f"images must have shape (n_images, {height * width}) for {shape} pictures, "
            f"got {pixels.shape}."
        )
    n_images = pixels.shape[0]
    if n_images == 0:
        raise ValueError("images has no rows; pass at least one image.")
    if not np.isfinite(pixels).all():
        raise ValueError(
            "images contains NaN or infinity; remove or fill those images before plotting."
        )
    if n_cols is not None:
        n_cols = count(n_cols, "n_cols", 1)
    n_cols = n_cols or max(1, math.ceil(math.sqrt(n_images)))
    n_rows = math.ceil(n_images / n_cols)
    low, high = _value_range(value_range, pixels)
    names = None if labels is None else [str(label) for label in _numpy(labels).reshape(-1)]
    if names is not None and len(names) != n_images:
        raise ValueError(f"labels must have {n_images} entries, one per image.")
    _check_cmap(cmap)
    # One-pixel gutters in the background value separate the tiles.
    canvas = np.full((n_rows * (height + 1) + 1, n_cols * (width + 1) + 1), low)
    for index, image in enumerate(pixels.reshape(n_images, height, width)):
        row, col = divmod(index, n_cols)
        top, left = 1 + row * (height + 1), 1 + col * (width + 1)
        canvas[top : top + height, left : left + width] = image
    ax = _axes(ax, (0.5 * n_cols + 1, 0.5 * n_rows + 1))
    ax.imshow(canvas, cmap=cmap, vmin=low, vmax=high, interpolation="nearest")
    if names is not None:
        for index, name in enumerate(names):
            row, col = divmod(index, n_cols)
            top, left = 1 + row * (height + 1), 1 + col * (width + 1)
            ax.text(left - 0.3, top - 0.2, name, color="tab:red", fontsize=6, va="top")
    ax.set_axis_off()
    if title:
        ax.set_title(title)
    return ax


def _value_range(value_range: Any, pixels: np.ndarray) -> tuple[float, float]:
    """``value_range`` as finite ``low < high``, or the range of ``pixels`` for None."""
    if value_range is None:
        return float(pixels.min()), float(pixels.max())
    bounds = real_values(_numpy(value_range), "value_range")
    if bounds.shape != (2,) or not np.isfinite(bounds).all() or not bounds[0] < bounds[1]:
        raise ValueError(
            "value_range must be a (low, high) pair of finite numbers with low < high, or "
            f"None for the range of images; got {value_range!r}."
        )
    return float(bounds[0]), float(bounds[1])


def _check_cmap(cmap: Any) -> None:
    """ValueError for a colour map matplotlib does not know (before a figure is opened)."""
    try:
        _pyplot().colormaps[cmap] if isinstance(cmap, str) else None
    except KeyError as error:
        raise ValueError(
            f"cmap must be a matplotlib colour map name (e.g. 'gray_r', 'viridis'), got {cmap!r}."
        ) from error


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

    Raises
    ------
    TypeError
        If ``samples`` is neither a dict nor an MCMC estimator.
    ValueError
        For an estimator not fitted yet (``NotFittedError``), no parameters, draws
        without a draws dimension or holding NaN or infinity.

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
    max_series, bins = count(max_series, "max_series", 1), count(bins, "bins", 1)
    if hasattr(samples, "posterior_samples_"):
        samples, group_by_chain = _chains_of(samples)
    elif hasattr(samples, "get_params"):
        if not is_fitted(samples):
            raise NotFittedError(
                f"{type(samples).__name__} is not fitted; fit it before plotting its draws."
            )
        raise TypeError(
            f"{type(samples).__name__} has no posterior_samples_: plot_mcmc_traces plots an "
            "MCMC estimator's draws (mixtorch.MCMCGaussianMixture) or a dict of them."
        )
    if not isinstance(samples, Mapping):
        raise TypeError(
            "samples must be a dict of parameter name -> draws (as Pyro's "
            f"MCMC.get_samples() returns) or a fitted MCMC estimator, got {type(samples).__name__}."
        )
    names = list(samples)
    if not names:
        raise ValueError("samples holds no parameters to plot.")
    checked = {name: _draws(samples[name], name, group_by_chain) for name in names}
    figure, axes = _pyplot().subplots(len(names), 2, figsize=(10, 2.2 * len(names)), squeeze=False)
    for row, name in enumerate(names):
        draws = checked[name]
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


def _draws(values: Any, name: str, group_by_chain: bool) -> np.ndarray:
    """One parameter's draws as a finite float array (n_chains, n_draws, ...)."""
    draws = real_values(_numpy(values), f"samples[{name!r}]")
    draws = draws if group_by_chain else draws[None]
    if draws.ndim < 2 or draws.shape[1] == 0:
        raise ValueError(f"samples[{name!r}] needs a draws dimension, got shape {draws.shape}.")
    if not np.isfinite(draws).all():
        raise ValueError(
            f"samples[{name!r}] contains NaN or infinity; a sampler that diverged needs "
            "its draws checked (or dropped) before plotting."
        )
    return draws


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


def _chains_of(model: Any) -> tuple[dict[str, np.ndarray], bool]:
    draws = {name: _numpy(value) for name, value in model.posterior_samples_.items()}
    chains = int(model.get_params(deep=False).get("num_chains", 1) or 1)
    if chains <= 1:
        return draws, False
    return {
        name: value.reshape(chains, -1, *value.shape[1:]) for name, value in draws.items()
    }, True

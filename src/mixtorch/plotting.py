"""Pictures of fitted models (matplotlib, the optional ``plot`` extra).

Every function draws on the ``ax`` it is given (or a new figure) and returns the Axes, or
the Figure when it needs several Axes, so callers can restyle or save the result.
matplotlib is imported only when a function is called.
"""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from ._plot_common import axes as _axes
from ._plot_common import count as _count
from ._plot_common import fitted_mixture as _fitted_mixture
from ._plot_common import numpy as _numpy
from ._plot_common import plot_data as _plot_data
from ._plot_common import positive_number as _positive_number
from ._plot_common import pyplot as _pyplot
from ._plot_diagnostics import (
    TRAINING_CURVES,
    plot_criterion,
    plot_loo_curve,
    plot_training_curve,
)
from ._plot_samples import plot_mcmc_traces, plot_samples_grid

__all__ = [
    "TRAINING_CURVES",
    "plot_criterion",
    "plot_density_1d",
    "plot_loo_curve",
    "plot_mcmc_traces",
    "plot_mixture_2d",
    "plot_samples_grid",
    "plot_training_curve",
]


#: Upper bounds on the sizes of the evaluation grids (a million curve points, a 2000 x
#: 2000 contour grid, a thousand contour levels): larger ones only take time and memory.
_MAX_POINTS = 1_000_000
_MAX_GRID = 2_000
_MAX_LEVELS = 1_000


# -- densities -----------------------------------------------------------------------
def plot_density_1d(
    model: Any,
    X: Any = None,
    *,
    ax: Any = None,
    bins: int = 40,
    n_points: int = 400,
    max_components: int = 20,
) -> Any:
    """Histogram of the data, the model density and each weighted component curve.

    Parameters
    ----------
    model : fitted estimator
        Any fitted mixtorch density model of one feature (``Gaussian``,
        ``GaussianMixture``, ``BayesianGaussianMixture``, ``GaussianKDE``, ...; for a
        ``GaussianMixtureImputer`` or ``GaussianMixtureRegressor``, its joint model).
    X : array-like or Tensor of shape (n_samples, 1), default=None
        Data to draw as a density histogram; None draws the curves alone.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a new figure.
    bins : int, str or sequence of float, default=40
        Number of histogram bins, a NumPy rule name (``'auto'``, ``'fd'``, ...) or
        increasing bin edges.
    n_points : int, default=400
        Grid points of the curves.
    max_components : int, default=20
        Component curves are drawn only up to this many components (a KDE has one per
        data point).

    Returns
    -------
    matplotlib.axes.Axes
        The Axes drawn on, with a legend.

    Raises
    ------
    NotFittedError
        If the model is not fitted (a ``ValueError``).
    ValueError
        If the model does not have exactly one feature; if ``X`` is not numeric, has
        the wrong shape, no rows, NaN or infinity; for ``bins`` (also an unknown rule
        name or edges that do not increase), ``n_points`` (2 to
        1,000,000) or ``max_components`` out of range.
    TypeError
        If ``model`` is neither an estimator nor a ``Mixture``, ``ax`` is not an Axes, or
        a count or size is not an integer.
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.

    See Also
    --------
    plot_mixture_2d : The two-feature picture.
    plot_loo_curve : The bandwidth choice of a KDE.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixture
    >>> from mixtorch.plotting import plot_density_1d
    >>> X = np.random.default_rng(0).normal(size=(200, 1))
    >>> ax = plot_density_1d(GaussianMixture(2, random_state=0).fit(X), X)
    >>> len(ax.lines) > 0
    True
    """
    mixture = _fitted_mixture(model, 1)
    if isinstance(bins, numbers.Number):
        bins = _count(bins, "bins", 1)
    n_points = _count(n_points, "n_points", 2, _MAX_POINTS)
    max_components = _count(max_components, "max_components", 0)
    data = None if X is None else _plot_data(X, 1).reshape(-1)
    if data is not None and not isinstance(bins, int):  # a rule name or edges: check now,
        bins = _bin_edges(data, bins)  # before a figure is opened
    ax = _axes(ax)
    grid = _grid_1d(mixture, data, n_points)
    points = torch.as_tensor(grid, dtype=mixture.dtype, device=mixture.device)[:, None]
    if data is not None:
        ax.hist(data, bins=bins, density=True, color="0.8", label="data")
    weighted = mixture.weighted_log_prob(points).exp()
    ax.plot(grid, _numpy(weighted.sum(1)), "k-", lw=1.5, label="mixture density")
    # Components go on top, dashed: where they do not overlap they coincide with the
    # mixture curve and would otherwise be hidden under it.
    if 1 < mixture.n_components <= max_components:
        for k in range(mixture.n_components):
            ax.plot(grid, _numpy(weighted[:, k]), "--", lw=2, label=f"{k}: weight x density")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return ax


def _bin_edges(data: np.ndarray, bins: Any) -> np.ndarray:
    """``bins`` (a NumPy rule name such as 'auto', or increasing edges) as edges."""
    try:
        return np.histogram_bin_edges(data, bins)
    except (ValueError, TypeError) as error:
        raise ValueError(
            "bins must be an integer, a NumPy rule name ('auto', 'fd', 'sturges', ...) or "
            f"increasing bin edges, got {bins!r} ({error})."
        ) from error


def _grid_1d(mixture: Any, data: np.ndarray | None, n_points: int) -> np.ndarray:
    means = _numpy(mixture.means).reshape(-1)
    spread = float(np.sqrt(_numpy(mixture.covariance.full_matrices(mixture.n_components)).max()))
    low, high = means.min() - 4 * spread, means.max() + 4 * spread
    if data is not None:
        low, high = min(low, float(data.min())), max(high, float(data.max()))
    return np.linspace(low, high, n_points)


def plot_mixture_2d(
    model: Any,
    X: Any = None,
    *,
    ax: Any = None,
    n_std: float = 2.0,
    contours: bool = True,
    levels: int = 12,
    grid_size: int = 150,
    max_components: int = 20,
) -> Any:
    """Scatter coloured by most probable component, covariance ellipses and log-density
    contours of a two-feature model.

    Parameters
    ----------
    model : fitted estimator
        Any fitted mixtorch density model of two features.
    X : array-like or Tensor of shape (n_samples, 2), default=None
        Data to scatter, coloured by :meth:`~mixtorch.Mixture.predict`; None draws the
        model alone.
    ax : matplotlib.axes.Axes, default=None
        Axes to draw on; None creates a new figure.
    n_std : float, default=2.0
        Ellipse radius in standard deviations.
    contours : bool, default=True
        Whether to draw log-density contours.
    levels : int, default=12
        Number of contour lines, equally spaced over the 12 nats below the peak.
    grid_size : int, default=150
        Points per axis of the grid the contours are computed on.
    max_components : int, default=20
        With more components than this (a KDE has one per data point) the points are not
        coloured by component and no ellipses are drawn, only the density contours.

    Returns
    -------
    matplotlib.axes.Axes
        One :class:`matplotlib.patches.Ellipse` per component is added to ``ax.patches``.

    Raises
    ------
    NotFittedError
        If the model is not fitted (a ``ValueError``).
    ValueError
        If the model does not have exactly two features; if ``X`` is not numeric, has
        the wrong shape, no rows, NaN or infinity; for an invalid ``n_std``, or ``levels``
        (1 to 1,000), ``grid_size`` (2 to 2,000) or ``max_components`` out of range.
    TypeError
        If ``model`` is neither an estimator nor a ``Mixture``, ``ax`` is not an Axes, or
        a count or size is not an integer.
    ImportError
        If matplotlib (the ``plot`` extra) is not installed.

    See Also
    --------
    plot_density_1d : The one-feature picture.
    plot_samples_grid : Samples of a model of images.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixture
    >>> from mixtorch.plotting import plot_mixture_2d
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> ax = plot_mixture_2d(GaussianMixture(2, random_state=0).fit(X), X)
    >>> ax.figure is not None
    True
    """
    mixture = _fitted_mixture(model, 2)
    n_std = _positive_number(n_std, "n_std")
    levels = _count(levels, "levels", 1, _MAX_LEVELS)
    grid_size = _count(grid_size, "grid_size", 2, _MAX_GRID)
    max_components = _count(max_components, "max_components", 0)
    X = None if X is None else _plot_data(X, 2)
    ax = _axes(ax, (6.0, 5.5))
    few = mixture.n_components <= max_components
    if X is not None:
        data = X
        if few:
            points = torch.as_tensor(data, dtype=mixture.dtype, device=mixture.device)
            labels = _numpy(mixture.predict(points))
            ax.scatter(data[:, 0], data[:, 1], c=labels % 10, cmap="tab10", vmin=0, vmax=9, s=8)
        else:
            ax.scatter(data[:, 0], data[:, 1], color="C0", s=6, alpha=0.6)
    if contours:
        _draw_contours(ax, mixture, None if X is None else _numpy(X), levels, grid_size)
    if few:
        _draw_ellipses(ax, mixture, n_std)
    ax.set_xlabel("x1")
    ax.set_ylabel("x2")
    ax.set_aspect("equal", adjustable="datalim")
    return ax


def _draw_ellipses(ax: Any, mixture: Any, n_std: float) -> None:
    from matplotlib.patches import Ellipse

    colours = _pyplot().get_cmap("tab10")
    matrices = _numpy(mixture.covariance.full_matrices(mixture.n_components))
    for k, (mean, matrix) in enumerate(zip(_numpy(mixture.means), matrices, strict=True)):
        eigenvalues, eigenvectors = np.linalg.eigh(matrix)
        angle = math.degrees(math.atan2(eigenvectors[1, 1], eigenvectors[0, 1]))
        width, height = 2 * n_std * np.sqrt(np.maximum(eigenvalues[::-1], 0))
        ellipse = Ellipse(
            mean, width, height, angle=angle, fill=False, lw=2.5, ec=colours(k % 10), zorder=3
        )
        ax.add_patch(ellipse)


def _draw_contours(
    ax: Any, mixture: Any, data: np.ndarray | None, levels: int, grid_size: int
) -> None:
    means = _numpy(mixture.means)
    spread = np.sqrt(_numpy(mixture.covariance.full_matrices(mixture.n_components)).max())
    low, high = means.min(0) - 3 * spread, means.max(0) + 3 * spread
    if data is not None:
        low, high = np.minimum(low, data.min(0)), np.maximum(high, data.max(0))
    xs, ys = np.linspace(low[0], high[0], grid_size), np.linspace(low[1], high[1], grid_size)
    xx, yy = np.meshgrid(xs, ys)
    grid = torch.as_tensor(np.column_stack([xx.ravel(), yy.ravel()]), dtype=mixture.dtype)
    log_density = _numpy(mixture.log_prob(grid.to(mixture.device))).reshape(xx.shape)
    # Log-density contours from the peak down: equal spacing in log shows the tails too.
    top = float(log_density.max())
    ax.contour(
        xx,
        yy,
        log_density,
        levels=np.linspace(top - 12, top, levels),
        colors="0.55",
        linestyles="solid",
        linewidths=0.7,
        alpha=0.8,
    )

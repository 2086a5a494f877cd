"""Pictures of a fitted Pyro mixture (matplotlib, the optional ``plot`` extra, imported
only when a function is called)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._plot_common import axes as _axes
from .._plot_common import fitted_mixture as _fitted_mixture
from .._plot_common import numpy as _numpy

__all__ = ["plot_posterior_predictive"]


def plot_posterior_predictive(
    model: Any,
    X: Any = None,
    *,
    ax: Any = None,
    quantiles: tuple[float, float] = (0.05, 0.95),
    bins: int = 40,
    n_points: int = 300,
) -> Any:
    """Posterior predictive density of a 1-D model with a pointwise credible band.

    Draws the histogram of the data (as a density), the posterior mean of the density
    ``mean_s p(x | theta_s)`` over the model's posterior draws, and the band between the
    requested posterior quantiles of ``p(x | theta)`` at each point.

    Parameters
    ----------
    model : SVIGaussianMixture or MCMCGaussianMixture
        Fitted, with one feature.
    X : array-like or Tensor of shape (n_samples, 1), optional
        Data to draw as a density histogram (and to set the plotted range).
    ax : matplotlib Axes, optional
        Where to draw; a new figure's axes by default.
    quantiles : (float, float), default=(0.05, 0.95)
        Lower and upper posterior quantiles of the band (a 90% band by default).
    bins : int, default=40
        Histogram bins.
    n_points : int, default=300
        Grid points of the curves.

    Returns
    -------
    matplotlib Axes
        ``ax.lines[0]`` is the posterior mean density, ``ax.collections[0]`` the band.

    See Also
    --------
    mixtorch.bayes.SVIGaussianMixture.predictive_density : The curves drawn.
    mixtorch.plotting.plot_density_1d : The density of a point-estimate model.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import SVIGaussianMixture
    >>> from mixtorch.bayes import plot_posterior_predictive
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-2, 0.5, 50), rng.normal(2, 0.5, 50)])[:, None]
    >>> model = SVIGaussianMixture(2, guide="mean_field", num_steps=100, num_restarts=1,
    ...                            num_samples=50, random_state=0).fit(X)
    >>> ax = plot_posterior_predictive(model, X)
    >>> len(ax.lines), len(ax.collections)
    (1, 1)
    """
    mixture = _fitted_mixture(model, 1)
    data = None if X is None else _numpy(X).reshape(-1)
    means = _numpy(mixture.means).reshape(-1)
    spread = float(np.sqrt(_numpy(mixture.covariance.full_matrices(mixture.n_components)).max()))
    low, high = means.min() - 4 * spread, means.max() + 4 * spread
    if data is not None:
        low, high = min(low, float(data.min())), max(high, float(data.max()))
    grid = np.linspace(low, high, n_points)
    mean, lower, upper = (
        _numpy(value).astype(float)
        for value in model.predictive_density(grid[:, None], quantiles=quantiles)
    )
    ax = _axes(ax)
    if data is not None:
        ax.hist(data, bins=bins, density=True, color="0.8", label="data")
    percent = round(100 * (quantiles[1] - quantiles[0]))
    ax.fill_between(grid, lower, upper, color="C0", alpha=0.3, lw=0, label=f"{percent}% band")
    ax.plot(grid, mean, color="C0", lw=1.5, label="posterior mean density")
    ax.set_xlabel("x")
    ax.set_ylabel("density")
    ax.legend(fontsize="small")
    return ax

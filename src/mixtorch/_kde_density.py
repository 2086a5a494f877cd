"""``GaussianKDE``'s densities: exact kernel sums, the binned (FFT) estimate, and the
density on a regular grid, as a mixin of the estimator."""

from __future__ import annotations

import math
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from ._data import refuse_sources
from ._validation import as_output, to_tensor
from .fit.binned_score import LogDensityGrid, log_density_grid
from .fit.fft_kde import density_on_grid
from .fit.kernel_sum import build_groups, log_kernel_sum
from .mixture import Mixture

__all__ = ["KDEDensityMixin"]


class KDEDensityMixin:
    """Density evaluation of a fitted :class:`~mixtorch.GaussianKDE`.

    ``fit`` sets the data, weights, kernel (``mixture_``) and the caches used here.
    """

    mixture_: Mixture
    algorithm: str
    chunk_size: int | None
    grid_size: Any
    _data: torch.Tensor
    _weights: torch.Tensor
    _uniform_weights: bool
    _groups: list[Any] | None
    _grid: LogDensityGrid | None
    _grid_sizes: Any
    _bandwidth_matrix: torch.Tensor
    _log_normaliser: float
    _fit_kind: Any

    def _prepare_exact_sums(self) -> None:
        factor = self.mixture_.covariance.precisions_cholesky()
        self._groups = build_groups(self._data, torch.log(self._weights), factor)

    # -- densities -------------------------------------------------------------------
    def _log_density(self, queries: torch.Tensor) -> torch.Tensor:
        if self._groups is None:  # algorithm='fft' builds them only when needed
            self._prepare_exact_sums()
        assert self._groups is not None
        factor = self.mixture_.covariance.precisions_cholesky()
        log_sum = log_kernel_sum(queries, self._groups, factor, self.chunk_size)
        return log_sum - self._log_normaliser

    def _evaluate(self, X: Any) -> tuple[torch.Tensor, Any]:
        check_is_fitted(self, "mixture_")
        refuse_sources(X, type(self).__name__, "evaluates")
        queries, kind = to_tensor(
            self, X, reset=False, dtype=self._data.dtype, device=self._data.device
        )
        return self._evaluate_queries(queries), kind

    def _evaluate_queries(self, queries: torch.Tensor) -> torch.Tensor:
        """Log-densities of checked queries (finite, n_features columns) in the data's
        dtype and device; rows that overflowed the cast to float32 get -inf."""
        if queries.dtype != torch.float64:  # finite input may overflow the cast
            overflowed = ~torch.isfinite(queries).all(1)
            if bool(overflowed.any()):  # density 0 there, as for any far point
                log_density = torch.full_like(queries[:, 0], -math.inf)
                kept = ~overflowed
                log_density[kept] = self._evaluate_tensor(queries[kept])
                return log_density
        return self._evaluate_tensor(queries)

    def _evaluate_tensor(self, queries: torch.Tensor) -> torch.Tensor:
        """Log-densities of validated, finite queries in the data's dtype and device."""
        if self.algorithm != "fft":
            return self._log_density(queries)
        if self._grid is None:
            self._grid = log_density_grid(
                self._data, self._weights, self._bandwidth_matrix, self._grid_sizes
            )
        log_grid, exact = self._grid.log_density(queries)
        log_density = log_grid.to(queries.dtype)
        if bool(exact.any()):  # only where the grid density underflows float64
            log_density[exact] = self._log_density(queries[exact])
        return log_density

    def evaluate_grid(self, grid: Any = None) -> tuple[Any, Any]:
        """Density on a regular grid, by linear binning and FFT convolution.

        Like KDEpy's ``FFTKDE.evaluate`` [1]_; the error bound is stated in
        :mod:`mixtorch.fit.fft_kde` (absolute, about 1e-16 of the kernel peak besides the
        binning term). Works for either ``algorithm``.

        Parameters
        ----------
        grid : int, sequence of D ints, or array-like of shape (M, D), optional
            Nodes per axis of a grid over the data's range plus 5 kernel standard
            deviations (default ``grid_size``, else 1024, 256x256 or 64**3), or the
            nodes of an equidistant grid, the last axis varying fastest (for 1-D data
            also a flat floating-point array of the nodes, as KDEpy takes them).

        Returns
        -------
        points : ndarray or Tensor of shape (M, D)
            The grid's nodes, the last axis varying fastest.
        density : ndarray or Tensor of shape (M,)
            Density (not log-density), float64.

        See Also
        --------
        score_samples : Log-densities at arbitrary points.

        References
        ----------
        .. [1] M. P. Wand, "Fast computation of multivariate kernel estimators",
           J. Comput. Graph. Stat. 3(4), 1994.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> X = np.random.default_rng(0).normal(size=(10_000, 1))
        >>> kde = GaussianKDE(0.2, algorithm="fft").fit(X)
        >>> points, density = kde.evaluate_grid(512)
        >>> points.shape, density.shape
        ((512, 1), (512,))
        >>> exact = np.exp(GaussianKDE(0.2).fit(X).score_samples(points))
        >>> bool(np.abs(density - exact).max() < 1e-3 * exact.max())
        True
        """
        check_is_fitted(self, "mixture_")
        n_features = self._data.shape[1]
        if grid is None:
            grid = self.grid_size or {1: 1024, 2: 256}.get(n_features, 64)
        weights = None if self._uniform_weights else self._weights
        points, density = density_on_grid(self._data, weights, self._bandwidth_matrix, grid)
        return as_output(points, self._fit_kind), as_output(density, self._fit_kind)

    def score_samples(self, X: Any) -> Any:
        """Log-density of each sample.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Points to evaluate (NumPy in, NumPy out; tensors stay on their device).

        Returns
        -------
        log_density : ndarray or Tensor of shape (n_samples,)
            Exact kernel sums (``algorithm='exact'``) or the interpolated binned estimate
            (``algorithm='fft'``).

        See Also
        --------
        evaluate_grid : The density on a whole regular grid at once.
        evaluate : SciPy's spelling, with points as columns.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.stats import gaussian_kde
        >>> from mixtorch import GaussianKDE
        >>> X = np.random.default_rng(0).normal(size=(200, 1))
        >>> ours = GaussianKDE().fit(X).score_samples([[0.0], [1.0]])
        >>> bool(np.allclose(ours, gaussian_kde(X.T).logpdf([[0.0, 1.0]])))
        True
        """
        log_density, kind = self._evaluate(X)
        return as_output(log_density, kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Total log-likelihood: the SUM of log-densities (scikit-learn's ``KernelDensity``
        convention, unlike the per-sample mean of the mixture estimators).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        log_density, _ = self._evaluate(X)
        return float(log_density.to(torch.float64).sum())

"""SciPy's ``gaussian_kde`` surface for :class:`~mixtorch.GaussianKDE`.

Names, argument orders and array orientations follow ``scipy.stats.gaussian_kde``:
points are columns (``(d, m)`` arrays) in :meth:`ScipyKDEMixin.evaluate`,
``__call__``, :meth:`~ScipyKDEMixin.pdf`, :meth:`~ScipyKDEMixin.logpdf`,
:meth:`~ScipyKDEMixin.resample` and :attr:`~ScipyKDEMixin.dataset`, and a
scalar given to :meth:`~ScipyKDEMixin.set_bandwidth` is SciPy's *factor* (the kernel
covariance is ``factor**2`` times the data covariance), unlike the constructor's float
``bandwidth``, which is scikit-learn's kernel standard deviation. The estimator's own
scikit-learn methods (``fit``, ``score_samples``, ``score``, ``sample``) take rows as
points.

This module holds evaluation, resampling and marginals; the attributes and bandwidth
methods are in :mod:`mixtorch._kde_scipy_attributes`, the integrals in
:mod:`mixtorch._kde_scipy_integrals`, both mixins :class:`ScipyKDEMixin` inherits.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._data import refuse_sources
from ._kde_scipy_integrals import ScipyKDEIntegrals
from ._validation import as_output, integer, real_values

__all__ = ["ScipyKDEMixin"]


class ScipyKDEMixin(ScipyKDEIntegrals):
    """``gaussian_kde``'s methods and attributes, for a fitted ``GaussianKDE``."""

    # -- evaluation ------------------------------------------------------------------
    def _columns(self, points: Any) -> np.ndarray:
        """SciPy's point layout: (d, m), or (m,) when d == 1, or (d,) for one point."""
        refuse_sources(points, type(self).__name__, "evaluates", parameter="points")
        values = real_values(points, "points")  # columns are points: no feature names
        if isinstance(values, torch.Tensor):
            values = values.detach().cpu().to(torch.float64).numpy()
        array = np.atleast_2d(values)
        d = self.d
        if array.ndim != 2:
            raise ValueError(f"points must be a (d, m) array, got {array.ndim} dimensions.")
        if array.shape[0] != d:
            if array.shape[0] == 1 and array.shape[1] == d:
                return array.reshape(d, 1)
            raise ValueError(
                f"points have dimension {array.shape[0]}, dataset has dimension {d}: pass "
                "a (d, m) array (SciPy's layout; score_samples takes rows)."
            )
        return array

    def evaluate(self, points: Any) -> np.ndarray:
        """Density at ``points``, given in SciPy's (d, m) layout: ``exp(logpdf(points))``.

        Parameters
        ----------
        points : array-like of shape (d, m)
            As for :meth:`logpdf`.

        Returns
        -------
        ndarray of shape (m,)
            The density (not its log) at each point, float64.

        Raises
        ------
        ValueError
            If the points do not have the dataset's dimension d.

        See Also
        --------
        GaussianKDE.score_samples : Log-density of (n_samples, n_features) rows.
        scipy.stats.gaussian_kde.evaluate : SciPy's, same layout and values.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE(bandwidth="scott").fit(np.random.default_rng(0).normal(size=(200, 1)))
        >>> kde.evaluate([0.0, 1.0]).round(4)
        array([0.379 , 0.2525])
        """
        return np.exp(self.logpdf(points))

    #: Same as :meth:`evaluate` (SciPy's alias): points are columns, (d, m).
    pdf = evaluate

    def logpdf(self, points: Any) -> np.ndarray:
        """Log of the density at ``points``, given in SciPy's (d, m) layout.

        Computed in log space (one log-sum-exp over the kernels), so it stays finite far
        in the tails, where :meth:`pdf` underflows to zero.

        Parameters
        ----------
        points : array-like of shape (d, m)
            Points as columns; a 1-D array is m points when d == 1, one point otherwise.

        Returns
        -------
        ndarray of shape (m,)
            The log-density at each point, float64.

        Raises
        ------
        ValueError
            If the points do not have the dataset's dimension d (rows given where SciPy's
            columns are expected, for instance).

        See Also
        --------
        GaussianKDE.score_samples : The same values for (n_samples, n_features) rows.
        scipy.stats.gaussian_kde.logpdf : SciPy's, same layout and values.

        Examples
        --------
        >>> import numpy as np
        >>> from scipy.stats import gaussian_kde
        >>> from mixtorch import GaussianKDE
        >>> X = np.random.default_rng(0).normal(size=(300, 2))
        >>> points = np.array([[0.0, 1.0, 40.0], [0.0, -1.0, 0.0]])  # three points, as columns
        >>> ours = GaussianKDE(bandwidth="scott").fit(X).logpdf(points)
        >>> bool(np.allclose(ours, gaussian_kde(X.T).logpdf(points)))
        True
        """
        check_is_fitted(self, "mixture_")
        rows = np.ascontiguousarray(self._columns(points).T)
        if rows.shape[0] == 0:  # as SciPy: no points, no densities
            return np.empty(0)
        if np.isfinite(rows).all():  # _columns checked the rest: no second validation
            data = self._data
            queries = torch.from_numpy(rows).to(dtype=data.dtype, device=data.device)
            log_density = self._evaluate_queries(queries)  # type: ignore[attr-defined]
        else:  # scikit-learn's validation raises its error for NaN and infinity
            with warnings.catch_warnings():  # SciPy's columns carry no feature names
                warnings.filterwarnings("ignore", "X does not have valid feature names")
                log_density, _ = self._evaluate(rows)  # type: ignore[attr-defined]
        return log_density.detach().cpu().to(torch.float64).numpy()

    def __call__(self, points: Any) -> np.ndarray:
        """Same as :meth:`evaluate`.

        Parameters
        ----------
        points : array-like of shape (d, m)
            Points as columns.

        Returns
        -------
        ndarray of shape (m,)
            The density at each point.

        See Also
        --------
        GaussianKDE.evaluate, GaussianKDE.score_samples
        """
        return self.evaluate(points)

    # -- sampling --------------------------------------------------------------------
    def resample(self, size: int | None = None, seed: Any = None) -> Any:
        """Draw ``size`` points from the KDE, in SciPy's (d, size) layout.

        Parameters
        ----------
        size : int, default=None
            Number of points (0 gives a (d, 0) array); None draws ``int(neff)``, as SciPy
            does.
        seed : int, numpy Generator/RandomState or torch.Generator, default=None
            Seed for these draws; None uses the estimator's ``random_state``.

        Returns
        -------
        ndarray or Tensor of shape (d, size)
            The draws, of the kind the KDE was fitted on.

        See Also
        --------
        GaussianKDE.sample : The same draws as (size, d) rows.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE().fit(np.random.default_rng(0).normal(size=(200, 1)))
        >>> kde.resample(5, seed=0).shape
        (1, 5)
        """
        check_is_fitted(self, "mixture_")
        count = int(self.neff) if size is None else integer(size, "size")
        if count < 0:
            raise ValueError(f"size must be an integer >= 0, got {count}.")
        samples = self.sample(count, random_state=seed)  # type: ignore[attr-defined]
        return samples.T

    # -- new estimators --------------------------------------------------------------
    def marginal(self, dimensions: int | Sequence[int]) -> Any:
        """The KDE of the given dimensions, as in SciPy.

        The kernel covariance is the corresponding block of this KDE's and the weights are
        kept, so the result is the exact marginal density.

        Parameters
        ----------
        dimensions : int or sequence of int
            The dimensions to keep (negative indices count from the end; no repeats).

        Returns
        -------
        GaussianKDE
            A fitted KDE of ``len(dimensions)`` dimensions.

        Raises
        ------
        ValueError
            For no dimensions, non-integer, out-of-range or repeated dimensions.

        See Also
        --------
        mixtorch.Mixture.marginal : The same for any mixture.
        scipy.stats.gaussian_kde.marginal

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE().fit(np.random.default_rng(0).normal(size=(300, 2)))
        >>> kde.marginal(0).d
        1
        """
        check_is_fitted(self, "mixture_")
        dims = np.atleast_1d(np.asarray(dimensions))
        if dims.ndim != 1 or dims.size == 0:
            raise ValueError(
                "dimensions must be an integer or a flat sequence of at least one integer, "
                f"got shape {dims.shape}."
            )
        if not np.issubdtype(dims.dtype, np.integer):
            raise ValueError("dimensions must be integers.")
        if np.any(dims >= self.d) or np.any(dims < -self.d):
            raise ValueError(f"dimensions must be in [-{self.d}, {self.d}), got {dims}.")
        dims = dims % self.d
        if len(np.unique(dims)) != len(dims):
            raise ValueError("dimensions must be unique.")
        H = self._kernel_covariance().numpy()[np.ix_(dims, dims)]
        index = torch.as_tensor(dims, device=self._data.device)
        new = clone(self).set_params(bandwidth=H)
        data = self._data.index_select(1, index)
        new.fit(as_output(data, self._fit_kind), sample_weight=self.weights)
        new.factor_ = self.factor_
        return new

"""SciPy's ``multivariate_normal`` surface for a fitted :class:`~mixtorch.Gaussian`.

Names and shapes follow ``scipy.stats.multivariate_normal``: a point is the last axis of
``x``; a 1-D ``x`` is one point (or, for one feature, that many points); a scalar is one
point of a one-feature Gaussian; results are squeezed, so one point gives a scalar.
NumPy (or lists) in gives NumPy out, a tensor in gives a tensor out on its device.
``logpdf``/``pdf``/``rvs`` run in torch; ``cdf``/``logcdf``, ``entropy`` and
``kl_divergence`` are computed in float64 with NumPy/SciPy.

This module holds the densities and sampling; ``mean``, ``cov``, ``entropy`` and
``kl_divergence`` are in :mod:`mixtorch._gaussian_scipy_information`.
"""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from scipy import special, stats
from sklearn.utils.validation import check_is_fitted, validate_data

from ._gaussian_scipy_information import ScipyGaussianInformation
from ._validation import as_output, check_random_generator, integer, real_values

__all__ = ["ScipyGaussianMixin"]


def _squeeze(values: Any) -> Any:
    """SciPy's ``_squeeze_output``: drop length-1 axes; a NumPy 0-d result is a scalar."""
    values = values.squeeze()
    if isinstance(values, np.ndarray) and values.ndim == 0:
        return values[()]
    return values


def real_points(estimator: Any, x: Any, name: str) -> Any:
    """``x`` as a float64 array (tensors kept) for the SciPy-style methods, complex values
    refused (:func:`~mixtorch._validation.real_values`); a DataFrame's column names are
    checked against the fitted ones (as ``score_samples`` does, so swapped columns are
    refused, not used)."""
    if hasattr(x, "columns") and getattr(x, "ndim", 0) == 2:
        validate_data(estimator, x, reset=False, skip_check_array=True)  # names only
    return real_values(x, name)


class ScipyGaussianMixin(ScipyGaussianInformation):
    """``multivariate_normal``'s methods and attributes, for a fitted ``Gaussian``."""

    # -- densities -------------------------------------------------------------------
    def _points(self, x: Any) -> tuple[Any, tuple[int, ...]]:
        """``x`` as (m, n_features) rows (same kind as given) and the leading shape."""
        check_is_fitted(self, "mixture_")
        D = self.mixture_.n_features
        points = real_points(self, x, "x")
        if points.ndim == 0:
            points = points.reshape(1, 1)
        elif points.ndim == 1:
            points = points.reshape(-1, 1) if D == 1 else points.reshape(1, -1)
        if points.shape[-1] != D:
            raise ValueError(
                f"x must have {D} values on its last axis (n_features), "
                f"got shape {tuple(np.shape(x))}."
            )
        lead = tuple(points.shape[:-1])
        return points.reshape(-1, D), lead

    def logpdf(self, x: Any) -> Any:
        """Log of the density at ``x``, with ``multivariate_normal.logpdf``'s shapes.

        Parameters
        ----------
        x : array-like or Tensor of shape (..., n_features)
            Points along the last axis; a 1-D ``x`` of length n_features is one point, and
            with one feature a 1-D ``x`` (or a scalar) holds that many points.

        Returns
        -------
        log_density : float, ndarray or Tensor
            Of shape ``x.shape[:-1]`` with length-1 axes dropped: a scalar for one point.
            NumPy (or lists) in gives NumPy out, a tensor gives a tensor on its device.

        Raises
        ------
        ValueError
            If the last axis of ``x`` does not have n_features values.

        See Also
        --------
        Gaussian.pdf : The density itself.
        Gaussian.score_samples : Row-wise log-density of an (n_samples, n_features) array.
        scipy.stats.multivariate_normal : The SciPy method of the same name and shapes.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> X = np.random.default_rng(0).normal([1.0, -2.0], [1.0, 0.5], size=(1000, 2))
        >>> g = Gaussian().fit(X)
        >>> round(float(g.logpdf([1.0, -2.0])), 4)
        -1.145
        >>> g.logpdf(X[:3]).shape
        (3,)
        """
        points, lead = self._points(x)
        with warnings.catch_warnings():
            if hasattr(x, "columns"):  # names checked by _points; the array has none left
                warnings.filterwarnings("ignore", "X does not have valid feature names")
            log_density = self.score_samples(points)  # type: ignore[attr-defined]
        return _squeeze(log_density.reshape(lead))

    def pdf(self, x: Any) -> Any:
        """Density at ``x``, ``exp(logpdf(x))``, with ``multivariate_normal.pdf``'s shapes.

        Parameters
        ----------
        x : array-like or Tensor of shape (..., n_features)
            Points, shaped as for :meth:`logpdf`.

        Returns
        -------
        density : float, ndarray or Tensor
            Of shape ``x.shape[:-1]`` with length-1 axes dropped.

        See Also
        --------
        Gaussian.logpdf : The log-density, accurate far in the tails where ``pdf`` underflows.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> g = Gaussian().fit(np.random.default_rng(0).normal(size=(1000, 1)))
        >>> g.pdf([0.0, 1.0]).round(3)
        array([0.408, 0.23 ])
        """
        log_density = self.logpdf(x)
        if isinstance(log_density, torch.Tensor):
            return torch.exp(log_density)
        return np.exp(log_density)

    def _cdf(self, x: Any, log: bool, lower_limit: Any, rng: Any) -> Any:
        points, lead = self._points(x)
        values = (
            points.detach().cpu().to(torch.float64).numpy()
            if isinstance(points, torch.Tensor)
            else points
        )
        mean, covariance = self._float64_parameters()
        if mean.shape[0] == 1 and lower_limit is None:
            z = (values[:, 0] - mean[0]) / math.sqrt(covariance[0, 0])
            result = special.log_ndtr(z) if log else special.ndtr(z)
        else:
            frozen = stats.multivariate_normal(mean, covariance, allow_singular=True)
            method = frozen.logcdf if log else frozen.cdf
            result = np.asarray(method(values, lower_limit=lower_limit, rng=rng)).reshape(-1)
        result = result.reshape(lead)
        if isinstance(x, torch.Tensor):
            return _squeeze(torch.as_tensor(result, dtype=self.mixture_.dtype, device=x.device))
        return _squeeze(result)

    def cdf(self, x: Any, *, lower_limit: Any = None, rng: Any = None) -> Any:
        """Cumulative distribution function, ``P(X <= x)`` element-wise.

        With one feature it is the exact normal CDF; otherwise it is
        ``scipy.stats.multivariate_normal(self.mean, self.cov).cdf(x, lower_limit=...,
        rng=...)``, SciPy's quasi-Monte Carlo integration [1]_ (absolute error about 1e-5).

        Parameters
        ----------
        x : array-like or Tensor of shape (..., n_features)
            Upper integration limits, shaped as for :meth:`logpdf`.
        lower_limit : array-like of shape (n_features,), default=None
            Lower integration limits, as in SciPy; None integrates from minus infinity.
        rng : numpy.random.Generator or int, default=None
            Seed or generator for SciPy's integration (more than one feature).

        Returns
        -------
        probability : float, ndarray or Tensor
            Of shape ``x.shape[:-1]`` with length-1 axes dropped, values in [0, 1].

        See Also
        --------
        Gaussian.logcdf : Its logarithm, accurate in the lower tail.
        scipy.stats.multivariate_normal : SciPy's ``cdf``, which this calls.

        References
        ----------
        .. [1] A. Genz (1992), "Numerical computation of multivariate normal probabilities",
           *Journal of Computational and Graphical Statistics* 1(2).

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> g = Gaussian().fit(np.random.default_rng(0).normal(size=(1000, 2)))
        >>> round(float(g.cdf([10.0, 10.0], rng=0)), 4)
        1.0
        >>> g1 = Gaussian().fit(np.random.default_rng(0).normal(size=(1000, 1)))
        >>> g1.cdf([-1.0, 0.0, 1.0]).round(3)
        array([0.165, 0.52 , 0.858])
        """
        return self._cdf(x, False, lower_limit, rng)

    def logcdf(self, x: Any, *, lower_limit: Any = None, rng: Any = None) -> Any:
        """Log of :meth:`cdf` (exact and accurate far in the lower tail for one feature).

        Parameters
        ----------
        x, lower_limit, rng
            As for :meth:`cdf`.

        Returns
        -------
        log_probability : float, ndarray or Tensor
            Of shape ``x.shape[:-1]`` with length-1 axes dropped.

        See Also
        --------
        Gaussian.cdf : The probability itself.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> g1 = Gaussian().fit(np.random.default_rng(0).normal(size=(1000, 1)))
        >>> bool(np.isfinite(g1.logcdf(-40.0)))
        True
        """
        return self._cdf(x, True, lower_limit, rng)

    # -- sampling --------------------------------------------------------------------
    def rvs(self, size: Any = 1, random_state: Any = None) -> Any:
        """Draw samples with ``multivariate_normal.rvs``'s output shape.

        Parameters
        ----------
        size : int or tuple of ints, default=1
            Number (or array shape) of points to draw; must not be negative.
        random_state : int, numpy RandomState/Generator or torch.Generator, default=None
            Seed or generator for this call; None uses the estimator's ``random_state``.

        Returns
        -------
        samples : float, ndarray or Tensor of shape ``size + (n_features,)``
            Length-1 axes dropped, of the kind the estimator was fitted on.

        Raises
        ------
        ValueError
            If ``size`` is negative.

        See Also
        --------
        Gaussian.sample : (n_samples, n_features) draws, scikit-learn style.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> g = Gaussian().fit(np.random.default_rng(0).normal(size=(100, 2)))
        >>> g.rvs(random_state=0).shape, g.rvs(5, random_state=0).shape
        ((2,), (5, 2))
        >>> g.rvs((3, 4), random_state=0).shape
        (3, 4, 2)
        """
        check_is_fitted(self, "mixture_")
        sizes = [size] if np.ndim(size) == 0 else list(size)
        shape = tuple(integer(n, "size") for n in sizes)
        if any(n < 0 for n in shape):
            raise ValueError(f"size must not be negative, got {size!r}.")
        mixture = self.mixture_
        count = math.prod(shape)
        if count == 0:
            samples = mixture.means.new_zeros(0, mixture.n_features)
        else:
            seed = self.random_state if random_state is None else random_state
            samples, _ = mixture.sample(count, check_random_generator(seed, mixture.device))
        return _squeeze(as_output(samples.reshape(*shape, mixture.n_features), self._fit_kind))

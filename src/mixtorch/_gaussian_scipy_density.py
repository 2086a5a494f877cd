"""SciPy ``multivariate_normal``'s densities (``logpdf``, ``pdf``) and sampling (``rvs``)
for a fitted :class:`~mixtorch.Gaussian`, with its shapes: the points of ``x`` along its
last axis, results squeezed. The distribution functions build on it in
:mod:`mixtorch._gaussian_scipy`."""

from __future__ import annotations

import math
import warnings
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted, validate_data

from ._data import refuse_sources
from ._gaussian_scipy_information import ScipyGaussianInformation
from ._validation import OutputKind, as_output, check_random_generator, integer, real_values


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
    refuse_sources(x, type(estimator).__name__, "evaluates", parameter=name)
    if hasattr(x, "columns") and getattr(x, "ndim", 0) == 2:
        validate_data(estimator, x, reset=False, skip_check_array=True)  # names only
    return real_values(x, name)


class ScipyGaussianDensity(ScipyGaussianInformation):
    """``multivariate_normal``'s densities and sampling, for a fitted ``Gaussian``."""

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
            If the last axis of ``x`` does not have n_features values, or ``x`` holds NaN
            or infinite values (refused as ``score_samples`` refuses them; SciPy gives
            NaN and ``-inf``).

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
        return _squeeze(self._points_log_density(points, x).reshape(lead))

    def _points_log_density(self, points: Any, x: Any) -> Any:
        """Log-densities of :meth:`_points`' rows, which are already checked (real
        numbers, n_features values, column names): floating rows skip scikit-learn's
        validation (55 of the 70 us a one-point call took through ``score_samples``) and
        go straight to the direct form; NaN and infinity are found there, and
        ``score_samples`` then raises its error. Anything else goes through it."""
        floating = (
            points.is_floating_point()
            if isinstance(points, torch.Tensor)
            else points.dtype.kind == "f"
        )
        if not floating and points.shape[0] > 0:
            return self._validated_log_density(points, x)
        mixture = self.mixture_
        if isinstance(points, torch.Tensor):
            kind, tensor = OutputKind(True, points.device), points.detach()
        else:
            kind, tensor = OutputKind(False), torch.from_numpy(np.ascontiguousarray(points))
        tensor = tensor.to(device=mixture.device, dtype=mixture.dtype)
        log_prob = self._log_prob(  # type: ignore[attr-defined]
            tensor, lambda: self._validated_log_density(points, x)
        )
        return as_output(log_prob, kind)

    def _validated_log_density(self, points: Any, x: Any) -> Any:
        """``score_samples`` of the points, with its validation and errors. SciPy's
        methods take bare arrays (a DataFrame's names were checked by :meth:`_points`),
        so scikit-learn's warning about missing feature names is not given."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "X does not have valid feature names")
            return self.score_samples(points)  # type: ignore[attr-defined]

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

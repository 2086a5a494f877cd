"""SciPy's ``multivariate_normal`` surface for a fitted :class:`~mixtorch.Gaussian`.

Names and shapes follow ``scipy.stats.multivariate_normal``: a point is the last axis of
``x``; a 1-D ``x`` is one point (or, for one feature, that many points); a scalar is one
point of a one-feature Gaussian; results are squeezed, so one point gives a scalar.
NumPy (or lists) in gives NumPy out, a tensor in gives a tensor out on its device.
``logpdf``/``pdf``/``rvs`` run in torch; ``cdf``/``logcdf``, ``entropy`` and
``kl_divergence`` are computed in float64 with NumPy/SciPy.

This module holds the distribution functions (``cdf``, ``logcdf``); the densities and
sampling are in :mod:`mixtorch._gaussian_scipy_density`, ``mean``, ``cov``, ``entropy``
and ``kl_divergence`` in :mod:`mixtorch._gaussian_scipy_information`.
"""

from __future__ import annotations

import math
from numbers import Real
from typing import Any

import numpy as np
import torch
from scipy import special, stats

from ._gaussian_scipy_density import ScipyGaussianDensity, _squeeze
from ._validation import check_scipy_rng, integer, real_values

__all__ = ["ScipyGaussianMixin"]


def _float64_numpy(values: Any, name: str) -> np.ndarray:
    """``values`` (an array or a tensor) as float64 NumPy; NaN refused, naming ``name``
    (infinite limits are meaningful for a distribution function, a NaN is not)."""
    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().to(torch.float64).numpy()
    values = np.asarray(values, dtype=np.float64)
    if np.isnan(values).any():
        raise ValueError(
            f"{name} contains NaN; the distribution function needs numbers (infinite "
            f"limits are allowed): drop or impute the missing values first."
        )
    return values


def _integration_options(maxpts: Any, abseps: Any, releps: Any, n_features: int) -> dict[str, Any]:
    """SciPy's integration settings, checked, with SciPy's default ``maxpts``; checked
    also where the result is exact and does not use them."""
    if maxpts is None:
        points = 1_000_000 * n_features
    else:
        if isinstance(maxpts, (float, np.floating)) and float(maxpts).is_integer():
            maxpts = int(maxpts)  # SciPy takes a whole float such as 1e6
        points = integer(maxpts, "maxpts")
        if points < 1:
            raise ValueError(
                f"maxpts must be a positive integer (or None for SciPy's default, "
                f"1000000 * n_features), got {maxpts!r}."
            )
    options: dict[str, Any] = {"maxpts": points}
    for name, value in (("abseps", abseps), ("releps", releps)):
        if isinstance(value, (bool, np.bool_)) or not isinstance(value, Real):
            raise TypeError(f"{name} must be a real number, got {value!r}.")
        options[name] = float(value)
        if not (math.isfinite(options[name]) and options[name] >= 0):
            raise ValueError(f"{name} must be a finite number >= 0, got {value!r}.")
    return options


def _normal_interval(lower: np.ndarray, upper: np.ndarray, log: bool) -> np.ndarray:
    """``P(lower < Z <= upper)`` for a standard normal ``Z`` (or its log), exactly and
    without cancellation in either tail; negative when ``lower > upper``, with SciPy's
    complex logarithm (imaginary part pi) for those entries."""
    sign = np.where(lower > upper, -1.0, 1.0)
    low, high = np.minimum(lower, upper), np.maximum(lower, upper)
    with np.errstate(divide="ignore", invalid="ignore"):  # infinite limits are fine
        # the mass of [a, b] equals that of [-b, -a]: work on the side of the lower tail,
        # where log_ndtr keeps its relative accuracy
        flip = low + high > 0
        low, high = np.where(flip, -high, low), np.where(flip, -low, high)
        log_high = special.log_ndtr(high)
        gap = special.log_ndtr(low) - log_high  # <= 0: log of Phi(low) / Phi(high)
        # log(1 - exp(gap)), accurate for small and large |gap| alike
        log_mass = log_high + np.where(
            gap > -math.log(2.0), np.log(-np.expm1(gap)), np.log1p(-np.exp(gap))
        )
    log_mass = np.where(low == high, -np.inf, log_mass)
    if not log:
        return sign * np.exp(log_mass)
    if (sign < 0).any():
        return log_mass + np.where(sign < 0, 1j * math.pi, 0.0)
    return log_mass


class ScipyGaussianMixin(ScipyGaussianDensity):
    """``multivariate_normal``'s methods and attributes, for a fitted ``Gaussian``."""

    def _cdf(
        self, x: Any, log: bool, lower_limit: Any, rng: Any, options: tuple[Any, Any, Any]
    ) -> Any:
        rng = check_scipy_rng(rng)
        points, lead = self._points(x)
        values = _float64_numpy(points, "x")
        mean, covariance = self._float64_parameters()
        D = mean.shape[0]
        integration = _integration_options(*options, D)
        if lower_limit is not None:  # broadcast against the points, as SciPy does
            lower = _float64_numpy(real_values(lower_limit, "lower_limit"), "lower_limit")
            try:
                upper, broadcast = np.broadcast_arrays(values.reshape(*lead, D), lower)
            except ValueError:
                upper = broadcast = np.empty((0,))
            if upper.shape[-1] != D:
                raise ValueError(
                    f"lower_limit must broadcast against the points of x, shape "
                    f"{(*lead, D)}, keeping {D} values on the last axis; got shape "
                    f"{lower.shape}."
                )
            lead = upper.shape[:-1]
            values, lower_limit = upper.reshape(-1, D), broadcast.reshape(-1, D)
        if D == 1:
            scale = math.sqrt(covariance[0, 0])
            z = (values[:, 0] - mean[0]) / scale
            if lower_limit is None:
                result = special.log_ndtr(z) if log else special.ndtr(z)
            else:
                result = _normal_interval((lower_limit[:, 0] - mean[0]) / scale, z, log)
        elif values.shape[0] == 0:  # no points (SciPy's integration fails on none)
            result = np.empty(0)
        else:
            frozen = stats.multivariate_normal(mean, covariance, allow_singular=True, **integration)
            method = frozen.logcdf if log else frozen.cdf
            result = np.asarray(method(values, lower_limit=lower_limit, rng=rng)).reshape(-1)
        result = result.reshape(lead)
        if isinstance(x, torch.Tensor):
            dtype = self.mixture_.dtype
            if np.iscomplexobj(result):  # the log of a negative mass keeps its sign as pi*i
                dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
            return _squeeze(torch.as_tensor(result, dtype=dtype, device=x.device))
        return _squeeze(result)

    def cdf(
        self,
        x: Any,
        *,
        lower_limit: Any = None,
        rng: Any = None,
        maxpts: int | None = None,
        abseps: float = 1e-5,
        releps: float = 1e-5,
    ) -> Any:
        """Cumulative distribution function, ``P(X <= x)`` element-wise.

        With one feature it is the exact normal CDF (or, given ``lower_limit``, the exact
        mass between the limits); otherwise it is ``scipy.stats.multivariate_normal(
        self.mean, self.cov, maxpts=maxpts, abseps=abseps, releps=releps).cdf(x,
        lower_limit=..., rng=...)``. For three or more features SciPy integrates by
        randomised quasi-Monte Carlo [1]_, refining the estimate until its error
        estimate (three standard errors over 10 random shifts) is below ``abseps`` or
        about ``maxpts`` points are used; for two it uses a bivariate algorithm accurate
        to about 1e-15 (SciPy 1.17), and the options do not change the result.

        Parameters
        ----------
        x : array-like or Tensor of shape (..., n_features)
            Upper integration limits, shaped as for :meth:`logpdf`.
        lower_limit : array-like or Tensor, default=None
            Lower integration limits, broadcast against the points of ``x`` (shape
            ``(..., n_features)``) as in SciPy, e.g. one limit per feature of shape
            (n_features,) or one row per point; None integrates from minus infinity. As in
            SciPy, the result is negative where an odd number of lower limits exceed ``x``.
        rng : numpy.random.Generator or int, default=None
            Seed or generator for SciPy's integration (more than one feature).
        maxpts : int, default=None
            The most integration points, a positive integer; None is SciPy's default,
            ``1000000 * n_features``.
        abseps : float, default=1e-5
            Absolute error tolerance of the integration, ``>= 0`` (0 runs to ``maxpts``).
        releps : float, default=1e-5
            Relative error tolerance, ``>= 0``: passed on to SciPy, whose integrator
            (1.17) stops on ``abseps`` and ``maxpts`` only, so it changes nothing there.
            All three are checked also where the result is exact and does not use them.

        Returns
        -------
        probability : float, ndarray or Tensor
            Of the broadcast shape of the points (``x.shape[:-1]`` without
            ``lower_limit``) with length-1 axes dropped, values in [0, 1] (in [-1, 1] with
            lower limits above ``x``).

        Raises
        ------
        ValueError
            If ``x`` or ``lower_limit`` contains NaN (infinite limits are fine), if the last
            axis of ``x`` does not have n_features values, if ``lower_limit`` does not
            broadcast against the points of ``x``, if ``maxpts`` is below 1, or if
            ``abseps`` or ``releps`` is negative or not finite.
        TypeError
            If ``maxpts`` is not an integer or ``abseps``/``releps`` not a real number.

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
        >>> g3 = Gaussian().fit(np.random.default_rng(0).normal(size=(1000, 3)))
        >>> round(float(g3.cdf([0.0, 0.0, 0.0], rng=0, maxpts=30_000, abseps=1e-3)), 2)
        0.13
        """
        return self._cdf(x, False, lower_limit, rng, (maxpts, abseps, releps))

    def logcdf(
        self,
        x: Any,
        *,
        lower_limit: Any = None,
        rng: Any = None,
        maxpts: int | None = None,
        abseps: float = 1e-5,
        releps: float = 1e-5,
    ) -> Any:
        """Log of :meth:`cdf` (exact and accurate far in the lower tail for one feature).

        Parameters
        ----------
        x, lower_limit, rng, maxpts, abseps, releps
            As for :meth:`cdf` (the tolerances apply to the probability, not its log).

        Returns
        -------
        log_probability : float, ndarray or Tensor
            Shaped as for :meth:`cdf`; complex, with imaginary part pi, where :meth:`cdf`
            is negative (lower limits above ``x``), as in SciPy.

        Raises
        ------
        ValueError, TypeError
            As for :meth:`cdf`.

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
        return self._cdf(x, True, lower_limit, rng, (maxpts, abseps, releps))

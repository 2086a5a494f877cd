"""SciPy ``gaussian_kde``'s integrals for :class:`~mixtorch.GaussianKDE`.

``integrate_gaussian``, ``integrate_box_1d``, ``integrate_box`` and ``integrate_kde``,
with SciPy's argument orders and semantics, in float64 on the CPU.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from scipy import stats
from scipy.special import logsumexp
from sklearn.utils.validation import check_is_fitted

from ._kde_scipy_attributes import ScipyKDEAttributes
from ._validation import check_scipy_rng, integer, real_values
from .fit.kernel_sum import build_groups, log_kernel_sum

__all__ = ["ScipyKDEIntegrals"]


class ScipyKDEIntegrals(ScipyKDEAttributes):
    """``gaussian_kde``'s integrals, for a fitted ``GaussianKDE``."""

    def integrate_gaussian(self, mean: Any, cov: Any) -> float:
        """``integral of kde(x) N(x | mean, cov) dx`` in closed form.

        Each term is a Gaussian density of the data point under ``N(mean, H + cov)``, with
        ``H`` the kernel covariance.

        Parameters
        ----------
        mean : array-like of shape (d,)
            Mean of the Gaussian.
        cov : array-like of shape (d, d), or a scalar when d == 1
            Its covariance.

        Returns
        -------
        float
            The integral.

        Raises
        ------
        ValueError
            If ``mean`` or ``cov`` do not have dimension d, are not finite, or ``cov`` is
            not a covariance matrix (symmetric, positive semidefinite).

        See Also
        --------
        GaussianKDE.integrate_kde, GaussianKDE.integrate_box

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE(bandwidth="scott").fit(np.random.default_rng(0).normal(size=(200, 1)))
        >>> round(kde.integrate_gaussian(0.0, 1.0), 4)
        0.2763
        """
        mean_, cov_ = _mean_and_cov(mean, cov, self.d)
        total = self._kernel_covariance().numpy() + cov_
        log_terms = stats.multivariate_normal(mean_, total, allow_singular=False).logpdf(
            self._data_numpy()
        )
        return float(np.exp(logsumexp(np.atleast_1d(log_terms), b=self.weights)))

    def integrate_box_1d(self, low: float, high: float) -> float:
        """Mass of a 1-D KDE between ``low`` and ``high`` (exact, normal CDFs).

        Parameters
        ----------
        low : float
            Lower bound.
        high : float
            Upper bound.

        Returns
        -------
        float
            The probability, in [0, 1] for ``low <= high``.

        Raises
        ------
        ValueError
            If the KDE is not one-dimensional, or a limit is NaN or not one number.

        See Also
        --------
        GaussianKDE.integrate_box : Any dimension.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE(bandwidth="scott").fit(np.random.default_rng(0).normal(size=(200, 1)))
        >>> round(kde.integrate_box_1d(-1.0, 1.0), 4)
        0.6563
        """
        if self.d != 1:
            raise ValueError("integrate_box_1d() only handles 1-D densities (d == 1).")
        low, high = _limit(low, "low"), _limit(high, "high")
        data = self._data_numpy()[:, 0]
        sigma = math.sqrt(float(self._kernel_covariance()[0, 0]))
        upper = stats.norm.cdf((high - data) / sigma)
        lower = stats.norm.cdf((low - data) / sigma)
        return float(self.weights @ (upper - lower))

    def _corner(self, bounds: Any, name: str) -> np.ndarray:
        """A box corner as (d,) float64: a scalar is broadcast; another length is refused."""
        if isinstance(bounds, torch.Tensor):
            bounds = bounds.detach().cpu().numpy()
        array = np.asarray(bounds)
        if array.dtype.kind == "c" or not np.issubdtype(array.dtype, np.number):
            raise TypeError(f"{name} must be real numbers, got {bounds!r}.")
        if array.ndim > 1 or array.size not in (1, self.d):
            raise ValueError(
                f"{name} must be a number or {self.d} numbers (one per dimension), got "
                f"shape {array.shape}."
            )
        if np.isnan(array).any():
            raise ValueError(f"{name} contains NaN; give numbers (infinite limits are allowed).")
        return np.broadcast_to(array.astype(np.float64).reshape(-1), (self.d,))

    def integrate_box(
        self, low_bounds: Any, high_bounds: Any, maxpts: int | None = None, *, rng: Any = None
    ) -> float:
        """Mass of the KDE in the box ``[low_bounds, high_bounds]``.

        Exact (normal CDFs) when the bandwidth matrix is diagonal; otherwise by SciPy's
        quasi-Monte Carlo multivariate normal CDF (absolute error about 1e-5 per kernel).

        Parameters
        ----------
        low_bounds : array-like of shape (d,)
            Lower corner of the box (a scalar is broadcast).
        high_bounds : array-like of shape (d,)
            Upper corner of the box.
        maxpts : int, default=None
            Maximum integration points of SciPy's CDF (non-diagonal bandwidths); None keeps
            SciPy's default.
        rng : numpy.random.Generator or int, default=None
            Seed or generator of SciPy's integration; None draws fresh randomness.

        Returns
        -------
        float
            The probability.

        See Also
        --------
        GaussianKDE.integrate_box_1d, scipy.stats.gaussian_kde.integrate_box

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE(bandwidth="scott").fit(np.random.default_rng(0).normal(size=(300, 2)))
        >>> round(kde.integrate_box([-1.0, -1.0], [1.0, 1.0], rng=0), 2)
        0.43
        """
        low, high = self._corner(low_bounds, "low_bounds"), self._corner(high_bounds, "high_bounds")
        rng = check_scipy_rng(rng)
        if maxpts is not None:
            maxpts = integer(maxpts, "maxpts")
            if maxpts < 1:
                raise ValueError(f"maxpts must be a positive integer (or None), got {maxpts}.")
        data, H = self._data_numpy(), self._kernel_covariance().numpy()
        if np.count_nonzero(H - np.diag(np.diagonal(H))) == 0:
            sigma = np.sqrt(np.diagonal(H))
            mass = stats.norm.cdf((high - data) / sigma) - stats.norm.cdf((low - data) / sigma)
            return float(self.weights @ np.prod(mass, axis=1))
        options: dict[str, Any] = {"rng": rng} if rng is not None else {}
        limits: dict[str, Any] = {} if maxpts is None else {"maxpts": int(maxpts)}
        kernel = stats.multivariate_normal(np.zeros(self.d), H, **limits)
        per_point = kernel.cdf(high - data, lower_limit=low - data, **options)
        return float(self.weights @ np.atleast_1d(per_point))

    def integrate_kde(self, other: Any) -> float:
        """``integral of self(x) other(x) dx`` for another fitted KDE of the same d.

        Parameters
        ----------
        other : GaussianKDE
            A fitted KDE of the same dimension.

        Returns
        -------
        float
            The integral of the product of the two densities (closed form).

        Raises
        ------
        ValueError
            If the dimensions differ.

        See Also
        --------
        GaussianKDE.integrate_gaussian

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE(bandwidth="scott").fit(np.random.default_rng(0).normal(size=(300, 2)))
        >>> round(kde.integrate_kde(kde), 4)
        0.0716
        """
        if not isinstance(other, ScipyKDEIntegrals):
            raise TypeError(
                f"other must be a fitted GaussianKDE, got {type(other).__name__}; for a "
                "mixture, integrate its components with integrate_gaussian."
            )
        check_is_fitted(other, "mixture_")
        if other.d != self.d:
            raise ValueError(f"other has dimension {other.d}, this KDE has {self.d}.")
        total = torch.as_tensor(self._kernel_covariance().numpy() + other.covariance)
        data = torch.as_tensor(self._data_numpy())
        factor = torch.linalg.cholesky(total)
        precision_factor = torch.linalg.solve_triangular(
            factor, torch.eye(self.d, dtype=torch.float64), upper=False
        ).T
        log_w = torch.log(torch.as_tensor(self.weights))
        groups = build_groups(data, log_w, precision_factor)
        queries = torch.as_tensor(other._data_numpy())
        log_sums = log_kernel_sum(queries, groups, precision_factor).numpy()
        log_norm = 0.5 * self.d * math.log(2 * math.pi) + float(
            torch.log(torch.diagonal(factor)).sum()
        )
        return float(np.exp(logsumexp(log_sums - log_norm, b=other.weights)))


def _mean_and_cov(mean: Any, cov: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    """``integrate_gaussian``'s arguments as float64: a finite mean of dimension d and a
    covariance matrix (finite, symmetric, positive semidefinite)."""
    mean_ = np.atleast_1d(np.squeeze(_real_array(mean, "mean")))
    cov_ = np.atleast_2d(_real_array(cov, "cov"))
    if mean_.shape != (d,):
        raise ValueError(f"mean does not have dimension {d}.")
    if cov_.shape != (d, d):
        raise ValueError(f"covariance does not have dimension {d}.")
    for name, values in (("mean", mean_), ("cov", cov_)):
        if not np.isfinite(values).all():
            raise ValueError(f"{name} must be finite, got {values.tolist()}.")
    scale = float(np.abs(cov_).max())
    if not np.allclose(cov_, cov_.T, rtol=1e-10, atol=1e-14 * scale):
        raise ValueError(
            "cov must be symmetric (a covariance matrix); give (C + C.T) / 2 if C is "
            "symmetric up to rounding."
        )
    if float(np.linalg.eigvalsh(cov_)[0]) < -1e-10 * scale:
        raise ValueError(
            "cov must be positive semidefinite (a covariance matrix): no negative eigenvalue."
        )
    return mean_, cov_


def _real_array(values: Any, name: str) -> np.ndarray:
    """``values`` as a float64 array; None, strings and complex values refused naming
    ``name``."""
    if values is None:
        raise TypeError(f"{name} must be numbers, got None.")
    values = real_values(values, name)
    if isinstance(values, torch.Tensor):
        return values.detach().cpu().to(torch.float64).numpy()
    return np.asarray(values)


def _limit(value: Any, name: str) -> float:
    """One integration limit as a float: a number (infinite allowed), not NaN."""
    array = _real_array(value, name)
    if array.size != 1:
        raise ValueError(
            f"{name} must be one number (integrate_box_1d integrates a 1-D KDE over one "
            f"interval), got shape {array.shape}; use integrate_box for boxes."
        )
    limit = float(array.reshape(()))
    if math.isnan(limit):
        raise ValueError(f"{name} is NaN; give a number (infinite limits are allowed).")
    return limit

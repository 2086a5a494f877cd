"""SciPy's ``gaussian_kde`` surface for :class:`~mixtorch.GaussianKDE`.

Names, argument orders and array orientations follow ``scipy.stats.gaussian_kde``:
points are columns (``(d, m)`` arrays) in :meth:`ScipyKDEMixin.evaluate`,
``__call__``, :meth:`~ScipyKDEMixin.resample` and :attr:`~ScipyKDEMixin.dataset`, and a
scalar given to :meth:`~ScipyKDEMixin.set_bandwidth` is SciPy's *factor* (the kernel
covariance is ``factor**2`` times the data covariance), unlike the constructor's float
``bandwidth``, which is scikit-learn's kernel standard deviation. The estimator's own
``score_samples``, ``logpdf`` and ``pdf`` keep rows as points.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from scipy import stats
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from ._validation import as_output
from .fit import bandwidth as bw
from .fit.kernel_sum import build_groups, log_kernel_sum

__all__ = ["ScipyKDEMixin"]


class ScipyKDEMixin:
    """``gaussian_kde``'s methods and attributes, for a fitted ``GaussianKDE``."""

    _data: torch.Tensor
    _weights: torch.Tensor
    _fit_kind: Any
    factor_: float
    mixture_: Any

    # -- attributes ------------------------------------------------------------------
    def _check_data(self) -> None:
        # The data are set before the bandwidth, so a callable bandwidth can read them.
        if not hasattr(self, "_data"):
            check_is_fitted(self, "mixture_")

    @property
    def dataset(self) -> Any:
        """The data, shape (d, n) as in SciPy."""
        self._check_data()
        return as_output(self._data.T.contiguous(), self._fit_kind)

    @property
    def d(self) -> int:
        """Number of dimensions."""
        self._check_data()
        return int(self._data.shape[1])

    @property
    def n(self) -> int:
        """Number of data points."""
        self._check_data()
        return int(self._data.shape[0])

    @property
    def neff(self) -> float:
        """Effective number of points, ``1 / sum(w**2)`` (Kish)."""
        self._check_data()
        return bw.effective_n(self._weights)

    @property
    def weights(self) -> np.ndarray:
        """Normalised weights, shape (n,)."""
        self._check_data()
        return self._weights.detach().cpu().to(torch.float64).numpy()

    @property
    def factor(self) -> float:
        """SciPy's ``factor``: the kernel covariance is ``factor**2`` times the data's."""
        check_is_fitted(self, "mixture_")
        return float(self.factor_)

    @property
    def covariance(self) -> np.ndarray:
        """The kernel covariance (bandwidth matrix), shape (d, d)."""
        check_is_fitted(self, "mixture_")
        return self._kernel_covariance().numpy()

    @property
    def inv_cov(self) -> np.ndarray:
        """Inverse of :attr:`covariance`."""
        return np.linalg.inv(self.covariance)

    def scotts_factor(self) -> float:
        """Scott's rule of thumb [1]_, ``neff**(-1/(d+4))``, as SciPy computes it.

        Returns
        -------
        float
            The bandwidth factor (kernel covariance = ``factor**2`` x data covariance).

        See Also
        --------
        GaussianKDE.silverman_factor, GaussianKDE.set_bandwidth
        scipy.stats.gaussian_kde.scotts_factor : SciPy's, the same value.

        References
        ----------
        .. [1] D. W. Scott (1992), *Multivariate Density Estimation*, Wiley.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE().fit(np.random.default_rng(0).normal(size=(200, 1)))
        >>> round(kde.scotts_factor(), 4)
        0.3466
        """
        return bw.rule_of_thumb_factor("scott", self.neff, self.d)

    def silverman_factor(self) -> float:
        """Silverman's rule of thumb [1]_, ``(neff (d+2) / 4)**(-1/(d+4))``, as SciPy computes it.

        Returns
        -------
        float
            The bandwidth factor (kernel covariance = ``factor**2`` x data covariance).

        See Also
        --------
        GaussianKDE.scotts_factor, GaussianKDE.set_bandwidth

        References
        ----------
        .. [1] B. W. Silverman (1986), *Density Estimation for Statistics and Data Analysis*,
           Chapman & Hall.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE().fit(np.random.default_rng(0).normal(size=(200, 1)))
        >>> round(kde.silverman_factor(), 4)
        0.3671
        """
        return bw.rule_of_thumb_factor("silverman", self.neff, self.d)

    def _kernel_covariance(self) -> torch.Tensor:
        return self.mixture_.covariance.covariances.detach().cpu().to(torch.float64)

    # -- evaluation ------------------------------------------------------------------
    def _columns(self, points: Any) -> np.ndarray:
        """SciPy's point layout: (d, m), or (m,) when d == 1, or (d,) for one point."""
        array = np.atleast_2d(np.asarray(points, dtype=np.float64))
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
        """Density at ``points``, given in SciPy's (d, m) layout.

        Parameters
        ----------
        points : array-like of shape (d, m)
            Points as columns; a 1-D array is m points when d == 1, one point otherwise.

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
        check_is_fitted(self, "mixture_")
        rows = np.ascontiguousarray(self._columns(points).T)
        log_density, _ = self._evaluate(rows)  # type: ignore[attr-defined]
        return torch.exp(log_density).detach().cpu().to(torch.float64).numpy()

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
            Number of points; None draws ``int(neff)``, as SciPy does.
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
        count = int(self.neff) if size is None else size
        samples = self.sample(count, random_state=seed)  # type: ignore[attr-defined]
        return samples.T

    # -- integrals -------------------------------------------------------------------
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
            If ``mean`` or ``cov`` do not have dimension d.

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
            If the KDE is not one-dimensional.

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
        data = self._data_numpy()[:, 0]
        sigma = math.sqrt(float(self._kernel_covariance()[0, 0]))
        upper = stats.norm.cdf((high - data) / sigma)
        lower = stats.norm.cdf((low - data) / sigma)
        return float(self.weights @ (upper - lower))

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
        low = np.broadcast_to(np.asarray(low_bounds, dtype=np.float64), (self.d,))
        high = np.broadcast_to(np.asarray(high_bounds, dtype=np.float64), (self.d,))
        data, H = self._data_numpy(), self._kernel_covariance().numpy()
        if np.count_nonzero(H - np.diag(np.diagonal(H))) == 0:
            sigma = np.sqrt(np.diagonal(H))
            mass = stats.norm.cdf((high - data) / sigma) - stats.norm.cdf((low - data) / sigma)
            return float(self.weights @ np.prod(mass, axis=1))
        options: dict[str, Any] = {"rng": rng} if rng is not None else {}
        if maxpts is not None:
            options["maxpts"] = maxpts
        kernel = stats.multivariate_normal(np.zeros(self.d), H)
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

    def _data_numpy(self) -> np.ndarray:
        check_is_fitted(self, "mixture_")
        return self._data.detach().cpu().to(torch.float64).numpy()

    # -- new estimators / bandwidth --------------------------------------------------
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
            For non-integer, out-of-range or repeated dimensions.

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

    def set_bandwidth(self, bw_method: Any = None) -> None:
        """Recompute the bandwidth as SciPy does.

        The fitted state changes in place; the ``bandwidth`` parameter is left as it was.

        Parameters
        ----------
        bw_method : {'scott', 'silverman'}, float or callable, default=None
            None keeps the current factor; 'scott' or 'silverman' apply the rule of thumb
            (:meth:`scotts_factor`, :meth:`silverman_factor`); a scalar is SciPy's *factor*
            (kernel covariance = ``factor**2`` x data covariance, unlike the constructor's
            float ``bandwidth``); a callable receives this estimator (with ``n``, ``d``,
            ``neff``) and returns the factor.

        Raises
        ------
        ValueError
            For another value, a factor that is not positive and finite, or fewer than two
            data points.

        See Also
        --------
        GaussianKDE.scotts_factor, GaussianKDE.silverman_factor
        scipy.stats.gaussian_kde.set_bandwidth

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianKDE
        >>> kde = GaussianKDE().fit(np.random.default_rng(0).normal(size=(300, 2)))
        >>> kde.set_bandwidth(0.5)
        >>> kde.factor
        0.5
        >>> kde.set_bandwidth(lambda k: k.neff ** (-1.0 / (k.d + 4)))
        >>> round(kde.factor, 4) == round(kde.scotts_factor(), 4)
        True
        """
        check_is_fitted(self, "mixture_")
        if self._data.shape[0] < 2:
            raise ValueError("set_bandwidth needs at least two data points.")
        if bw_method is None:
            factor = self.factor_
        elif isinstance(bw_method, str) and bw_method in ("scott", "silverman"):
            factor = bw.rule_of_thumb_factor(bw_method, self.neff, self.d)
        elif np.isscalar(bw_method) and not isinstance(bw_method, str):
            factor = float(bw_method)  # type: ignore[arg-type]
        elif callable(bw_method):
            factor = float(bw_method(self))
        else:
            raise ValueError(
                "bw_method should be 'scott', 'silverman', a scalar or a callable, got "
                f"{bw_method!r}."
            )
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"The bandwidth factor must be positive, got {factor!r}.")
        covariance = bw.data_covariance(self._data, self._weights)
        H = covariance * factor**2
        self._set_bandwidth(H, factor, self._fit_kind)  # type: ignore[attr-defined]


def _mean_and_cov(mean: Any, cov: Any, d: int) -> tuple[np.ndarray, np.ndarray]:
    mean_ = np.atleast_1d(np.squeeze(np.asarray(mean, dtype=np.float64)))
    cov_ = np.atleast_2d(np.asarray(cov, dtype=np.float64))
    if mean_.shape != (d,):
        raise ValueError(f"mean does not have dimension {d}.")
    if cov_.shape != (d, d):
        raise ValueError(f"covariance does not have dimension {d}.")
    return mean_, cov_

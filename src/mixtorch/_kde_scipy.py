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
        """``neff**(-1/(d+4))``."""
        return bw.rule_of_thumb_factor("scott", self.neff, self.d)

    def silverman_factor(self) -> float:
        """``(neff (d+2) / 4)**(-1/(d+4))``."""
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
        """Density at ``points``, shape (d, m) (SciPy's layout); returns shape (m,)."""
        check_is_fitted(self, "mixture_")
        rows = np.ascontiguousarray(self._columns(points).T)
        log_density, _ = self._evaluate(rows)  # type: ignore[attr-defined]
        return torch.exp(log_density).detach().cpu().to(torch.float64).numpy()

    def __call__(self, points: Any) -> np.ndarray:
        """Same as :meth:`evaluate`."""
        return self.evaluate(points)

    # -- sampling --------------------------------------------------------------------
    def resample(self, size: int | None = None, seed: Any = None) -> Any:
        """Draw ``size`` points (default ``int(neff)``), shape (d, size) as in SciPy."""
        check_is_fitted(self, "mixture_")
        count = int(self.neff) if size is None else size
        samples = self.sample(count, random_state=seed)  # type: ignore[attr-defined]
        return samples.T

    # -- integrals -------------------------------------------------------------------
    def integrate_gaussian(self, mean: Any, cov: Any) -> float:
        """``integral of kde(x) N(x | mean, cov) dx`` in closed form."""
        mean_, cov_ = _mean_and_cov(mean, cov, self.d)
        total = self._kernel_covariance().numpy() + cov_
        log_terms = stats.multivariate_normal(mean_, total, allow_singular=False).logpdf(
            self._data_numpy()
        )
        return float(np.exp(logsumexp(np.atleast_1d(log_terms), b=self.weights)))

    def integrate_box_1d(self, low: float, high: float) -> float:
        """Mass of a 1-D KDE between ``low`` and ``high``."""
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
        """``integral of self(x) other(x) dx`` for another fitted KDE of the same d."""
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
        """The KDE of the given dimensions (negative indices allowed), as in SciPy."""
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
        """Recompute the bandwidth as SciPy does: None (keep the factor), 'scott',
        'silverman', a scalar *factor* or a callable receiving this estimator.

        The fitted state changes in place; the ``bandwidth`` parameter is left as it was.
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

"""SciPy ``gaussian_kde``'s attributes and bandwidth methods for :class:`~mixtorch.GaussianKDE`.

``dataset``, ``d``, ``n``, ``neff``, ``weights``, ``factor``, ``covariance``,
``inv_cov``, the rules of thumb and :meth:`~ScipyKDEAttributes.set_bandwidth`, with
SciPy's names and semantics (``dataset`` is (d, n); a scalar given to ``set_bandwidth``
is SciPy's *factor*). The rest of the surface builds on these
(:mod:`mixtorch._kde_scipy_integrals`, :mod:`mixtorch._kde_scipy`).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._kde_checks import callable_factor, data_covariance_or_none, squared
from ._validation import as_output
from .fit import bandwidth as bw

__all__ = ["ScipyKDEAttributes"]


class ScipyKDEAttributes:
    """``gaussian_kde``'s attributes and bandwidth methods, for a fitted ``GaussianKDE``."""

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
        """Effective number of points, ``1 / sum(w**2)`` (Kish): ``n`` for equal weights.

        A value within rounding error of a whole number is that number, so that
        :meth:`resample` without a size draws all 300 points of 300 unweighted ones (the
        sum gives 299.99999999999994, and ``int`` of it 299).
        """
        self._check_data()
        neff = bw.effective_n(self._weights)
        nearest = round(neff)
        return float(nearest) if math.isclose(neff, nearest, rel_tol=1e-12) else neff

    @property
    def weights(self) -> np.ndarray:
        """Normalised weights, shape (n,)."""
        self._check_data()
        return np.ascontiguousarray(self._weights.detach().cpu().to(torch.float64).numpy())

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

    def _data_numpy(self) -> np.ndarray:
        check_is_fitted(self, "mixture_")
        return self._data.detach().cpu().to(torch.float64).numpy()

    def set_bandwidth(self, bw_method: Any = None) -> None:
        """Recompute the bandwidth as SciPy does.

        The fitted state changes in place; the ``bandwidth`` parameter is left as it was.

        Parameters
        ----------
        bw_method : {'scott', 'silverman'}, float or callable, default=None
            None keeps the current kernel (SciPy recomputes the same one; a float, matrix
            or 'loo' bandwidth is kept as it is); 'scott' or 'silverman' apply the rule of
            thumb (:meth:`scotts_factor`, :meth:`silverman_factor`); a scalar is SciPy's *factor*
            (kernel covariance = ``factor**2`` x data covariance, unlike the constructor's
            float ``bandwidth``); a callable receives this estimator (with ``n``, ``d``,
            ``neff``) and returns the factor.

        Raises
        ------
        ValueError
            For another value, a factor that is not positive and finite, fewer than two
            data points, or data of less than full rank (``numpy.linalg.LinAlgError``).

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
        if bw_method is None:  # SciPy recomputes the same kernel: keep it as it is
            return
        if self._data.shape[0] < 2:
            raise ValueError("set_bandwidth needs at least two data points.")
        if isinstance(bw_method, str) and bw_method in ("scott", "silverman"):
            factor = bw.rule_of_thumb_factor(bw_method, self.neff, self.d)
        elif isinstance(bw_method, (bool, np.bool_)):
            raise ValueError(
                f"bw_method must be 'scott', 'silverman', a positive factor or a callable, "
                f"got {bw_method!r} (a bool, not a factor); None keeps the current kernel."
            )
        elif np.isscalar(bw_method) and not isinstance(bw_method, str):
            factor = float(bw_method)  # type: ignore[arg-type]
        elif callable(bw_method):
            factor = callable_factor(bw_method, self)
        else:
            raise ValueError(
                "bw_method should be 'scott', 'silverman', a scalar or a callable, got "
                f"{bw_method!r}."
            )
        if not (math.isfinite(factor) and factor > 0):
            raise ValueError(f"The bandwidth factor must be a finite number > 0, got {factor!r}.")
        # the checks of a data-driven fit: data of full rank, variances in range
        covariance = data_covariance_or_none(self._data, self._weights, required=True)
        assert covariance is not None
        H = covariance * squared(factor, "bw_method", self._data.dtype)
        self._set_bandwidth(H, factor, self._fit_kind)  # type: ignore[attr-defined]

"""``GaussianKDE``: Gaussian kernel density estimation with bandwidth selection.

A Gaussian KDE is a mixture of N Gaussians centred on the data points, with the data
weights as mixing proportions and one shared kernel covariance (the bandwidth matrix).
``mixture_`` holds exactly that :class:`~mixtorch.Mixture`; evaluation uses a faster path
that exploits the shared covariance (see :mod:`mixtorch.fit.kernel_sum`).
"""

from __future__ import annotations

import math
import numbers
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted

from ._estimator import DeviceMixin, keeps_state_on_failure
from ._kde_bandwidth import choose_bandwidth
from ._kde_checks import data_covariance_or_none, shard_sample_weight, union_sample_weight
from ._kde_density import KDEDensityMixin
from ._kde_scipy import ScipyKDEMixin
from ._mixture_checks import check_n_samples
from ._validation import (
    as_output,
    check_random_generator,
    integer,
    normalised_sample_weight,
    resolve_dtype,
    to_tensor,
)
from .covariance import CovarianceError, TiedCovariance
from .distributed import (
    check_same_configuration,
    gather_rows,
    is_distributed,
    raise_on_every_rank,
)
from .fit.bandwidth import DuplicatePointsWarning
from .fit.binned_score import LogDensityGrid
from .fit.fft_kde import (
    MIN_SCORE_GRID_SIZE,
    check_binned_features,
    check_grid_size,
    check_score_grid_size,
)
from .mixture import Mixture

__all__ = ["DuplicatePointsWarning", "GaussianKDE"]

#: ``_data_covariance`` before its first use (None means "fitted on a single point"); a
#: string, so that model files can hold it.
_PENDING = "computed on first use"


class GaussianKDE(DeviceMixin, KDEDensityMixin, ScipyKDEMixin, DensityMixin, BaseEstimator):
    """Gaussian kernel density estimator with a shared bandwidth matrix.

    ``p(x) = sum_i w_i N(x | x_i, H)`` with normalised weights ``w_i``.

    Parameters
    ----------
    bandwidth : {'scott', 'silverman', 'loo'}, float, array of shape (D, D) or callable, \
default='scott'
        - float: the kernel standard deviation ``h`` in every direction, ``H = h**2 I``
          (scikit-learn's ``KernelDensity`` convention);
        - callable: SciPy's callable ``bw_method``, called with the estimator (which has
          SciPy's ``n``, ``d``, ``neff``, ``dataset`` and ``weights`` by then) and
          returning the factor, ``H = factor**2 * data_covariance``;
        - array (D, D): the kernel covariance ``H`` itself (symmetric positive definite);
        - 'scott' / 'silverman': ``H = factor**2 * data_covariance`` with SciPy's factors
          ``n**(-1/(D+4))`` and ``(n (D+2)/4)**(-1/(D+4))`` (n the effective sample size),
          so results equal ``scipy.stats.gaussian_kde``;
        - 'loo': maximise the leave-one-out log-likelihood, over a scalar factor times the
          data covariance, or over a diagonal / full matrix (see ``loo_type``). Repeated
          points (ties) are left out together with the held-out point, with a
          :class:`DuplicatePointsWarning` (see :mod:`mixtorch.fit.bandwidth`).

        Data-driven bandwidths (the rules, 'loo', a callable) need data of full rank: data
        whose correlation matrix has an eigenvalue below ``1000 eps`` of the dtype (points
        on a line or plane, a constant feature) are refused with a ``ValueError``, the same
        way for every draw.
    algorithm : {'exact', 'fft'}, default='exact'
        'exact' sums every kernel (blocked, memory-bounded). 'fft' (1-D to 3-D) bins the
        data on a grid: :meth:`evaluate_grid` convolves by FFT, ``score_samples``
        interpolates a log-density grid; both never fall back to per-query sums over the
        data, and :mod:`mixtorch.fit.fft_kde` states the error that holds where.
    loo_type : {'scalar', 'diag', 'full'}, default='scalar'
        Shape of the LOO bandwidth. 'diag' and 'full' start from the scalar optimum and
        run Adam on a log-Cholesky parametrisation; the scalar optimum itself stays a
        candidate, so the result is never worse than 'scalar' (if no diagonal / full
        matrix beats it, ``bandwidth_`` is the scalar optimum, which need not be
        diagonal). They hold an (N, N) matrix: for moderate N.
    loo_max_iter : int, default=200
        Adam steps for 'diag' / 'full'.
    grid_size : int or sequence of ints, optional
        Nodes per axis of the ``algorithm='fft'`` log-density grid (by default 16 per
        kernel width in 1-D, 8 in 2-D and 3-D) and of :meth:`evaluate_grid`'s default
        grid (1024, 256x256, 64**3). With ``algorithm='fft'`` at least 25, and enough
        for the grid to span the data plus 6 kernel widths on each side at no more than
        0.5 kernel widths per cell (``ceil(S / 0.5) + 25`` for data spanning ``S``
        kernel widths along an axis, the bulk of the data if a few outliers lie beyond);
        :meth:`fit` refuses fewer, naming the number needed.
    chunk_size : int, optional
        Query rows evaluated together by the exact evaluation (rows, as for the mixture
        estimators); memory is about ``chunk_size x min(n_samples_fit, 4096)`` values per
        thread. By default ``2**18 / min(n_samples_fit, 4096)`` (at least 16).
    device : str or torch.device, optional
        Where to compute; by default where the data are.
    dtype : {'float32', 'float64'}, optional
        Computation dtype; by default float32 input stays float32, everything else float64.

    Attributes
    ----------
    bandwidth_ : array of shape (D, D)
        The kernel covariance ``H``.
    factor_ : float
        The scale: ``H = factor_**2 * data_covariance_`` for the rules and 'loo' (as
        SciPy's ``factor``), ``factor_ = h`` for a float bandwidth, 1.0 for a matrix.
    data_covariance_ : array of shape (D, D) or None
        Weighted unbiased data covariance (None when fitted on a single point).
    loo_curve_ : tuple of two arrays of shape (n_grid,) or None
        (factors, LOO log-likelihoods) explored by the scalar search; None unless 'loo'.
    loo_log_likelihood_ : float or None
        LOO log-likelihood of the chosen bandwidth ('loo' only).
    weights_ : array of shape (n_samples_fit_,)
        Normalised sample weights.
    mixture_ : Mixture
        The KDE as an N-component mixture with a tied covariance.
    n_samples_fit_, n_features_in_ : int

    Notes
    -----
    Exact evaluation is accurate however wide the data are relative to the bandwidth:
    the data are grouped and each group's kernel sum is expanded about its own centre
    (see :mod:`mixtorch.fit.kernel_sum`). Near the data the log-density is within about
    ``3 u (32 + d)^2`` nats (``u`` the unit roundoff, ``d`` the whitened distance to the
    nearest point): about 2e-4 in float32 and 4e-13 in float64; far from every point it
    is within a few ``u`` relative.

    The SciPy ``gaussian_kde`` surface (``evaluate``, ``resample``, ``integrate_*``,
    ``marginal``, ``set_bandwidth``, ``dataset``, ``covariance``, ...) is in
    :class:`mixtorch._kde_scipy.ScipyKDEMixin`, with SciPy's (d, m) layout.

    Coming from scikit-learn's ``KernelDensity``: a float ``bandwidth`` is the same ``h``
    and ``score`` is the same summed log-likelihood, but the default bandwidth is 'scott'
    (not 1.0), 'scott' and 'silverman' are SciPy's factors times the data covariance
    (scikit-learn's are the bare factors, ``H = factor**2 I``), and ``bandwidth_`` is the
    matrix ``H`` (``h**2 I`` for a float) where scikit-learn's is the scalar ``h``, which
    is ``factor_`` here. The kernel is Gaussian and the distance Euclidean, always.

    The rules of thumb are Scott's [1]_ and Silverman's [2]_; 'loo' maximises the
    leave-one-out (pseudo-) likelihood [3]_; ``algorithm='fft'`` bins linearly and
    convolves by FFT [4]_.

    See Also
    --------
    GaussianMixture : A parametric density with a few components instead of one per point.
    scipy.stats.gaussian_kde : SciPy's estimator, whose conventions and results this one
        follows for the rules.
    sklearn.neighbors.KernelDensity : scikit-learn's estimator (a float bandwidth here
        means the same).

    References
    ----------
    .. [1] D. W. Scott, *Multivariate Density Estimation*, Wiley 1992.
    .. [2] B. W. Silverman, *Density Estimation for Statistics and Data Analysis*,
       Chapman and Hall 1986.
    .. [3] R. P. W. Duin, "On the choice of smoothing parameters for Parzen estimators of
       probability density functions", IEEE Trans. Computers C-25(11), 1976.
    .. [4] M. P. Wand, "Fast computation of multivariate kernel estimators", J. Comput.
       Graph. Stat. 3(4), 1994.

    Examples
    --------
    >>> import numpy as np
    >>> from scipy.stats import gaussian_kde
    >>> from mixtorch import GaussianKDE
    >>> X = np.random.default_rng(0).normal(size=(200, 1))
    >>> kde = GaussianKDE(bandwidth="scott").fit(X)
    >>> points = np.array([[-1.0], [0.0], [1.0]])
    >>> np.exp(kde.score_samples(points)).round(4)
    array([0.2316, 0.379 , 0.2525])
    >>> np.allclose(np.exp(kde.score_samples(points)), gaussian_kde(X.T)(points.T))
    True
    """

    _parameter_constraints: ClassVar[dict[str, list[Any]]] = {
        "bandwidth": [
            StrOptions({"scott", "silverman", "loo"}),
            Interval(numbers.Real, 0, None, closed="neither"),
            "array-like",
            callable,
        ],
        "algorithm": [StrOptions({"exact", "fft"})],
        "loo_type": [StrOptions({"scalar", "diag", "full"})],
        "loo_max_iter": [Interval(numbers.Integral, 0, None, closed="left")],
        # one int per axis is checked further by fit.fft_kde.check_grid_size (fft only)
        "grid_size": [Interval(numbers.Integral, 2, None, closed="left"), "array-like", None],
        "chunk_size": [Interval(numbers.Integral, 1, None, closed="left"), None],
        "device": [str, torch.device, None],
        "dtype": [str, torch.dtype, type, np.dtype, None],
    }

    def __init__(
        self,
        bandwidth: Any = "scott",
        *,
        algorithm: str = "exact",
        loo_type: str = "scalar",
        loo_max_iter: int = 200,
        grid_size: int | None = None,
        chunk_size: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.bandwidth = bandwidth
        self.algorithm = algorithm
        self.loo_type = loo_type
        self.loo_max_iter = loo_max_iter
        self.grid_size = grid_size
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    # -- fitting ---------------------------------------------------------------------
    @keeps_state_on_failure
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> GaussianKDE:
        """Store the data and choose the bandwidth.

        Inside a ``torch.distributed`` process group each rank passes its own shard and
        every rank fits the KDE of the union of the shards (rows and weights gathered in
        rank order), as the mixtures fit the union. A shard may have no rows, or weights
        that are all zero: only the union needs rows and a positive sum of weights.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like or Tensor of shape (n_samples,), optional
            Non-negative weights with a positive sum (across ranks, the union's);
            points of zero weight are dropped.

        Returns
        -------
        self
        """
        self._validate_params()
        needs_two = isinstance(self.bandwidth, str) or callable(self.bandwidth)
        dtype = resolve_dtype(self.dtype, X)
        try:
            # Across ranks the rows needed are the union's: a shard may even have none.
            data, kind = to_tensor(
                self, X, reset=True, dtype=dtype, device=self.device,
                ensure_min_samples=0 if is_distributed() else (2 if needs_two else 1),
            )  # fmt: skip
            weights = None
            if sample_weight is not None:
                weights = (
                    shard_sample_weight(sample_weight, data)  # may be all zero on a rank
                    if is_distributed()
                    else normalised_sample_weight(sample_weight, data)
                )
        except Exception as error:  # raised on every rank: none may wait in a collective
            raise_on_every_rank(error)
            raise
        raise_on_every_rank(None)
        if is_distributed():
            data, weights = _union_of_ranks(data, weights, self._rank_settings())
            _check_union_rows(data.shape[0], self.bandwidth if needs_two else None)
            if weights is not None:  # the union's weights, scaled together
                weights = union_sample_weight(weights, data)
        if weights is None:
            # One value seen n times (a broadcast view): writing 1/n into n fresh values
            # was most of a 1-D fit on 10^6 points (2 of 3 ms).
            weights = data.new_full((1,), 1.0 / data.shape[0]).expand(data.shape[0])
        else:
            keep = weights > 0
            if not bool(keep.all()):
                data, weights = data[keep], weights[keep] / weights[keep].sum()
        if self.algorithm == "fft":  # before a bandwidth costs anything or state changes
            check_binned_features(data.shape[1])
            check_grid_size(self.grid_size, data.shape[1], minimum=MIN_SCORE_GRID_SIZE)
        self._fit_kind = kind
        self._data, self._weights = data, weights
        self._uniform_weights = sample_weight is None
        # An explicit bandwidth does not need the data covariance: computed on first use.
        covariance = data_covariance_or_none(data, weights, required=True) if needs_two else None
        self._data_covariance = _PENDING if covariance is None else as_output(covariance, kind)
        choice = choose_bandwidth(
            self.bandwidth, data, weights, covariance,
            loo_type=self.loo_type, loo_max_iter=self.loo_max_iter, owner=self,
        )  # fmt: skip
        self.loo_curve_: tuple[Any, Any] | None = choice.loo_curve
        self.loo_log_likelihood_: float | None = choice.loo_log_likelihood
        self._set_bandwidth(choice.matrix, choice.factor, kind)
        return self

    def _rank_settings(self) -> dict[str, Any]:
        """The settings every rank of a process group must share (JSON-able)."""
        bandwidth = self.bandwidth
        if not isinstance(bandwidth, (str, numbers.Real)):
            bandwidth = type(bandwidth).__name__  # a matrix or a callable: its kind
        return {
            "algorithm": self.algorithm,
            "bandwidth": bandwidth,
            "loo_type": self.loo_type,
            "grid_size": repr(self.grid_size),
        }

    @property
    def data_covariance_(self) -> Any:
        """Weighted unbiased data covariance, shape (D, D); None when fitted on one point.

        Computed in :meth:`fit` for data-driven bandwidths, on first use otherwise.
        """
        check_is_fitted(self, "mixture_")
        if isinstance(self._data_covariance, str):  # _PENDING, also after a load
            covariance = data_covariance_or_none(self._data, self._weights, required=False)
            self._data_covariance = (
                None if covariance is None else as_output(covariance, self._fit_kind)
            )
        return self._data_covariance

    def _set_bandwidth(self, H: torch.Tensor, factor: float, kind: Any) -> None:
        grid_sizes = None
        if self.algorithm == "fft":  # before any state changes (set_bandwidth, to())
            check_binned_features(H.shape[0])
            grid_sizes = check_grid_size(self.grid_size, H.shape[0], minimum=MIN_SCORE_GRID_SIZE)
            if grid_sizes is not None:
                check_score_grid_size(self._data, self._weights, H, grid_sizes)
        try:
            kernel = TiedCovariance(H)
        except CovarianceError:
            raise CovarianceError(
                "The kernel covariance (bandwidth matrix) is not positive definite, so it "
                "cannot be factored. Give a larger or better conditioned bandwidth, or "
                "drop or combine nearly dependent features."
            ) from None
        self.mixture_ = Mixture(self._weights, self._data, kernel)
        self.bandwidth_ = as_output(H, kind)
        self.factor_ = float(factor)
        self.weights_ = as_output(self._weights, kind)
        self.n_samples_fit_ = int(self._data.shape[0])
        self._groups: list[Any] | None = None  # exact-sum operands
        if self.algorithm != "fft":
            self._prepare_exact_sums()
        self._log_normaliser = 0.5 * H.shape[0] * math.log(2 * math.pi) + 0.5 * float(
            kernel.log_det()
        )
        # -- binned (FFT) hook: validate now, build the log-density grid on first use --
        self._grid: LogDensityGrid | None = None
        self._bandwidth_matrix = H
        if self.algorithm == "fft":
            self._grid_sizes = grid_sizes

    # -- generation ------------------------------------------------------------------
    def sample(self, n_samples: int = 1, random_state: Any = None) -> Any:
        """Draw from the KDE: a data point by its weight, plus kernel noise.

        Parameters
        ----------
        n_samples : int, default=1
            Number of draws (a Python or NumPy integer, or a 0-d integer array or tensor);
            0 gives an empty array, as scikit-learn's ``KernelDensity.sample`` and SciPy's
            ``resample`` do.
        random_state : int, RandomState, Generator or torch.Generator, optional

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_features)
        """
        check_is_fitted(self, "mixture_")
        device = self._data.device
        n_samples = integer(n_samples, "n_samples")
        if n_samples < 0:
            raise ValueError(f"n_samples must be an integer >= 0, got {n_samples}.")
        if n_samples == 0:  # scikit-learn's and SciPy's KDEs give no rows, not an error
            check_random_generator(random_state, device)  # a bad seed is refused all the same
            return as_output(self._data.new_empty((0, self._data.shape[1])), self._fit_kind)
        itemsize = self._data.element_size()
        n_samples = check_n_samples(n_samples, 2 * (itemsize * self._data.shape[1] + 16), device)
        generator = check_random_generator(random_state, device)
        # torch.multinomial caps categories at 2**24, so draw by inverting the CDF instead.
        cumulative = torch.cumsum(self._weights.to(torch.float64), 0)
        uniform = torch.rand(
            int(n_samples), dtype=torch.float64, device=device, generator=generator
        )
        index = torch.searchsorted(cumulative, uniform * cumulative[-1], right=True)
        index = index.clamp(max=self._data.shape[0] - 1)
        noise = torch.randn(
            int(n_samples), self._data.shape[1], dtype=self._data.dtype, device=device,
            generator=generator,
        )  # fmt: skip
        samples = self._data[index] + noise @ self.mixture_.covariance.cholesky.T
        return as_output(samples, self._fit_kind)

    def _move(self, device: Any, dtype: Any, output: Any) -> None:
        """:meth:`to`'s hook: move the data and rebuild the kernel and its caches there."""
        self._data = self._data.to(device=device, dtype=dtype)
        self._weights = self._weights.to(device=device, dtype=dtype)
        self._fit_kind = output
        if isinstance(self._data_covariance, torch.Tensor):
            self._data_covariance = self._data_covariance.to(output.device, dtype)
        H = self._bandwidth_matrix.to(device=device, dtype=dtype)
        self._set_bandwidth(H, self.factor_, output)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mixture_")


def _check_union_rows(n_rows: int, rule: Any) -> None:
    """Refuse a union of the ranks' shards that is too small (the same on every rank, so
    every rank raises): no rows at all, or fewer than two for the data-driven bandwidth
    ``rule`` (None for an explicit one)."""
    if n_rows == 0:
        raise ValueError(
            "GaussianKDE.fit needs at least one row across the ranks, but every rank passed "
            "an empty shard."
        )
    if rule is not None and n_rows < 2:
        raise ValueError(
            f"bandwidth={rule!r} needs at least 2 rows across the ranks, got {n_rows}; "
            "give a number or a matrix as the bandwidth."
        )


def _union_of_ranks(
    data: torch.Tensor, weights: torch.Tensor | None, settings: dict[str, Any]
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Every rank's rows (and sample weights, float64 and unscaled, see
    :func:`~mixtorch._kde_checks.shard_sample_weight`), gathered in rank order: inside a
    ``torch.distributed`` process group each rank fits the KDE of the union of the ranks'
    shards, the same model on every rank, as the mixtures do."""
    check_same_configuration(
        {
            "n_features": int(data.shape[1]),
            "dtype": str(data.dtype),
            "sample_weight": weights is not None,
            **settings,
        }
    )
    union = torch.cat(gather_rows(data))
    if weights is None:
        return union, None
    return union, torch.cat(gather_rows(weights))

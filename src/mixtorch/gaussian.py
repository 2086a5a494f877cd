"""``Gaussian``: a single (multivariate) normal distribution, fitted in closed form."""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from numbers import Integral, Real
from typing import Any, ClassVar

import torch
from sklearn.base import DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import MixtureScoringMixin
from ._chunks import chunk_rows, column_mean, iter_chunks
from ._data import uses_source
from ._estimator import (
    OPTIMIZER,
    keeps_state_on_failure,
    mixture_constraints,
)
from ._gaussian_fits import GaussianFitsMixin
from ._gaussian_scipy import ScipyGaussianMixin
from ._gaussian_torch import (
    GaussianTorchMixin,
    fit_with_fixed,
)
from ._mixture_scoring import SCORING_ELEMENTS
from ._validation import (
    OutputKind,
    as_output,
    check_sample_weight,
    resolve_dtype,
    to_tensor,
)
from .covariance import covariance_class
from .fit.gradient import GradientTrace
from .fit.init import mixture_from_responsibilities
from .mixture import Mixture

__all__ = ["Gaussian"]


class Gaussian(
    ScipyGaussianMixin, MixtureScoringMixin, DensityMixin, GaussianTorchMixin, GaussianFitsMixin
):
    """Maximum-likelihood Gaussian: the sample mean and the biased sample covariance [1]_.

    For one-dimensional data pass a single column, ``X.reshape(-1, 1)``. The fitted model
    has :class:`~mixtorch.GaussianMixture`'s scoring methods (``score_samples``, ``score``,
    ``bic``, ``aic``), SciPy's ``multivariate_normal`` surface (``logpdf``, ``pdf``,
    ``cdf``, ``rvs``, ``entropy``, :meth:`marginal`, :meth:`kl_divergence`) and
    :meth:`condition`. The mean or the covariance (or both) can be held at given values
    (``fixed_mean``, ``fixed_covariance``), as SciPy's ``multivariate_normal.fit(x,
    fix_mean, fix_cov)`` holds them.

    Parameters
    ----------
    covariance_type : {'full', 'diag', 'spherical', 'tied'}, default='full'
        Structure of the covariance: a full (D, D) matrix, per-feature variances, or one
        variance for all features. 'tied' is the same as 'full' for a single Gaussian.
    reg_covar : float, default=0.0
        Non-negative value added to the covariance diagonal. The default keeps the exact
        maximum-likelihood estimate; raise it for data that is (nearly) degenerate.
    random_state : int, RandomState, Generator or torch.Generator, default=None
        Seed or generator used by :meth:`sample` and ``rvs`` (and by the mini-batch order
        when ``algorithm='gradient'``); None draws fresh randomness.
    chunk_size : int, default=None
        Rows per chunk in passes over the data, bounding memory; None picks a size from the
        number of features.
    device : str or torch.device, default=None
        Where to compute (``'cpu'``, ``'cuda'``); None uses the input tensor's device, or
        the CPU for NumPy input.
    dtype : {'float32', 'float64'} or torch.dtype, default=None
        Floating-point precision of the computation; None keeps float32 input in float32
        and computes everything else in float64.
    algorithm : {'closed_form', 'gradient'}, default='closed_form'
        'closed_form' computes the estimate in one or two passes. 'gradient' minimises the
        negative log-likelihood with a torch optimiser, starting from mean 0 and identity
        covariance (a deliberately poor guess), through the unconstrained parameters of
        :class:`mixtorch.nn.GaussianModule`.
    optimizer : str, torch.optim.Optimizer class or callable, default='adam'
        Only for ``algorithm='gradient'``: a name (``'adam'``, ``'adamw'``, ``'sgd'``,
        ``'rmsprop'``, ``'adagrad'``, ``'lbfgs'``, in any case: torch's ``'Adam'`` works
        too), a ``torch.optim.Optimizer`` subclass, or a callable
        ``(params, lr=learning_rate) -> optimizer``.
    learning_rate : float, default=0.05
        Only for ``algorithm='gradient'``: the optimiser's step size (positive).
    batch_size : int, default=None
        Only for ``algorithm='gradient'``: rows per step; None uses the full batch.
    max_iter : int, default=1000
        Only for ``algorithm='gradient'``: maximum number of epochs.
    tol : float, default=1e-8
        Only for ``algorithm='gradient'``: convergence threshold on the change of the
        epoch's mean NLL per sample (for 10 consecutive epochs). Near the optimum the
        NLL is flat, so the parameters are only about ``sqrt(tol)`` accurate.
    fixed_mean : array-like of shape (n_features,) or float, default=None
        A mean held instead of estimated. The covariance is then its maximum-likelihood
        estimate given that mean, the (weighted) mean of ``(x - fixed_mean)(x -
        fixed_mean)^T`` in the structure of ``covariance_type``, plus ``reg_covar``.
        Converted to the fit's dtype; not optimised by ``algorithm='gradient'``. A scalar
        is taken for data of one feature, as SciPy's ``multivariate_normal.fit`` takes it.
    fixed_covariance : array-like or float, default=None
        A covariance held instead of estimated, in the layout of ``covariance_``: a
        symmetric positive definite (D, D) matrix for 'full' and 'tied', (D,) positive
        variances for 'diag', one positive variance (a scalar) for 'spherical'. For data
        of one feature any single value (a scalar, (1,) or (1, 1)) is taken. The mean
        is then the (weighted) sample mean, as without it. ``reg_covar`` is not added to
        it. With both ``fixed_*`` given nothing is estimated, but ``X`` is still checked
        (finite, ``n_features`` matching) and one row is enough.

    Attributes
    ----------
    mean_ : array of shape (n_features,)
        The (weighted) sample mean, or ``fixed_mean``.
    covariance_ : array
        (D, D) for 'full' and 'tied', (D,) for 'diag', a scalar array for 'spherical'; or
        ``fixed_covariance``.
    precision_ : array
        The inverse of ``covariance_``, same layout.
    mixture_ : Mixture
        The same distribution as a one-component mixture.
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    history_ : GradientTrace
        Only for ``algorithm='gradient'``: per-epoch NLL and parameters, with ``.table()``
        and ``.plot()``; ``n_iter_`` and ``converged_`` are then set as well.

    See Also
    --------
    mixtorch.GaussianMixture : K Gaussians fitted by EM.
    mixtorch.GaussianKDE : A Gaussian centred on every training point.
    mixtorch.nn.GaussianModule : The same model as a differentiable torch module.
    scipy.stats.multivariate_normal : SciPy's frozen normal distribution (same method names).

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 2.3.4 (maximum likelihood for the Gaussian).

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import Gaussian
    >>> X = np.random.default_rng(0).normal([1.0, -2.0], [1.0, 0.5], size=(1000, 2))
    >>> g = Gaussian().fit(X)
    >>> g.mean_.round(2)
    array([ 0.97, -2.01])
    >>> np.allclose(g.covariance_, np.cov(X.T, bias=True))
    True
    >>> g.score_samples(X[:3]).round(3)
    array([-1.161, -1.371, -1.342])
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = mixture_constraints(
        "covariance_type",
        "reg_covar",
        "random_state",
        "chunk_size",
        "device",
        "dtype",
        "max_iter",
        "tol",
    ) | {
        "algorithm": [StrOptions({"closed_form", "gradient"})],
        "optimizer": OPTIMIZER,
        "learning_rate": [Interval(Real, 0.0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "fixed_mean": ["array-like", Real, None],
        "fixed_covariance": ["array-like", Real, None],
    }

    def __init__(
        self,
        *,
        covariance_type: str = "full",
        reg_covar: float = 0.0,
        random_state: Any = None,
        chunk_size: int | None = None,
        device: Any = None,
        dtype: Any = None,
        algorithm: str = "closed_form",
        optimizer: Any = "adam",
        learning_rate: float = 0.05,
        batch_size: int | None = None,
        max_iter: int = 1000,
        tol: float = 1e-8,
        fixed_mean: Any = None,
        fixed_covariance: Any = None,
    ) -> None:
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype
        self.algorithm = algorithm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.max_iter = max_iter
        self.tol = tol
        self.fixed_mean = fixed_mean
        self.fixed_covariance = fixed_covariance

    @keeps_state_on_failure
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Gaussian:
        """Fit the mean and covariance (closed form, or by gradient descent).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features), or a data source
            Training data, at least two rows (one when ``fixed_mean`` or ``fixed_covariance``
            is given); NumPy in gives NumPy fitted attributes, a tensor gives tensors on its
            device. A :mod:`mixtorch.sources` source (or shards across ``torch.distributed``
            ranks) is read in two passes (one or none with held values; closed form only).
        y : None
            Ignored; present for scikit-learn API consistency.
        sample_weight : array-like of shape (n_samples,), default=None
            Non-negative frequency weights; None weighs every row 1. Not supported for data
            sources.

        Returns
        -------
        self : Gaussian
            The fitted estimator.

        Raises
        ------
        ValueError
            If ``X`` has too few rows, non-finite values, or ``sample_weight`` is given with a
            data source; if ``fixed_mean`` or ``fixed_covariance`` has the wrong shape, is not
            finite, or the covariance is not symmetric positive definite (message naming the
            parameter); :class:`sklearn.utils._param_validation.InvalidParameterError` (a
            ValueError) for an invalid constructor parameter.

        See Also
        --------
        Gaussian.from_torch : A fitted model from a torch distribution, without data.
        mixtorch.GaussianMixture.fit : The K-component fit by EM.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> X = np.random.default_rng(0).normal(size=(200, 2))
        >>> w = np.ones(200)
        >>> np.allclose(Gaussian().fit(X, sample_weight=w).mean_, X.mean(0))
        True
        """
        self._validate_params()
        covariance_type = covariance_class(self.covariance_type)
        refusal = "Gaussian(algorithm='gradient') does not fit across ranks."
        if uses_source(X, collective=self.algorithm == "closed_form", refusal=refusal):
            self._fit_source(X, sample_weight)  # a chunk source, or shards across ranks
            return self
        dtype = resolve_dtype(self.dtype, X)
        held = self.fixed_mean is not None or self.fixed_covariance is not None
        tensor, kind = to_tensor(  # one row is enough for what a held value leaves to fit
            self,
            X,
            reset=True,
            dtype=dtype,
            device=self.device,
            ensure_min_samples=1 if held else 2,
        )
        fixed = self._fixed(tensor.shape[1], tensor.dtype, tensor.device)
        weights = None if sample_weight is None else check_sample_weight(sample_weight, tensor)
        rows = chunk_rows(1, tensor.shape[1], self.chunk_size, covariance_type)
        if self.algorithm == "gradient":
            mixture, trace = self._fit_gradient(tensor, weights, rows, fixed)
            self._set_fitted(mixture, trace, kind)
            return self

        def responsibilities(chunk: torch.Tensor, start: int) -> torch.Tensor:
            if weights is None:
                return torch.ones(chunk.shape[0], 1, dtype=chunk.dtype, device=chunk.device)
            return weights[start : start + chunk.shape[0], None]

        def sample_mean() -> torch.Tensor:
            return column_mean(tensor, rows, weights)

        if fixed.groups:
            chunks = functools.partial(iter_chunks, tensor, rows)
            mixture = fit_with_fixed(
                fixed, covariance_type, self.reg_covar, chunks, responsibilities, sample_mean
            )
        else:
            mixture = mixture_from_responsibilities(
                tensor, responsibilities, covariance_type, self.reg_covar, sample_mean()[None], rows
            )
        self._set_fitted(mixture, None, kind)
        return self

    def _held_groups(self) -> frozenset[str]:
        """The held groups, not counted by :meth:`bic` and :meth:`aic`."""
        held = {"means": self.fixed_mean, "covariances": self.fixed_covariance}
        return frozenset(group for group, value in held.items() if value is not None)

    @classmethod
    def _params_of(cls, mixture: Mixture) -> dict[str, Any]:
        if mixture.n_components != 1:
            raise ValueError(
                f"A Gaussian has one component, the mixture has {mixture.n_components}."
            )
        return {"covariance_type": mixture.covariance_type}

    def _fit_record(self) -> GradientTrace | None:
        return getattr(self, "history_", None)

    def _log_prob(self, X: torch.Tensor, on_overflow: Callable[[], None]) -> torch.Tensor:
        """Log-densities of validated rows in the direct form of one Gaussian: squared
        Mahalanobis distances to the mean (explicit differences for full covariances),
        in row chunks bounded by ``chunk_size``. A mixture's scoring pass costs more than
        this arithmetic for one component (0.2 against 0.05 ms on one row). Rows whose
        distance is not finite call ``on_overflow`` first (NaN or infinite input raises
        there) and then get -inf: points too far away for a finite density.
        """
        mixture = self.mixture_
        covariance = mixture.covariance
        X = X.detach()
        n, D = X.shape
        constant = 0.5 * (D * math.log(2 * math.pi) + covariance.log_det().reshape(-1)[0])
        rows = min(  # capped as scoring passes are (mixtorch._mixture_scoring)
            chunk_rows(1, D, self.chunk_size, covariance_class(mixture.covariance_type)),
            SCORING_ELEMENTS,
        )
        if n <= rows:
            distances = covariance.mahalanobis(X - mixture.center, mixture.centred_means)[:, 0]
        else:
            distances = X.new_empty(n)
            for start in range(0, n, rows):
                shifted = X[start : start + rows] - mixture.center
                distances[start : start + rows] = covariance.mahalanobis(
                    shifted, mixture.centred_means
                )[:, 0]
        log_prob = distances.mul_(-0.5).sub_(constant)
        if not bool(torch.isfinite(log_prob).all()):
            on_overflow()
            log_prob = log_prob.masked_fill_(torch.isnan(log_prob), -math.inf)  # far points
        return log_prob

    def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None:
        """The fitted-state protocol (see :mod:`mixtorch._estimator`); ``record`` is a
        ``GradientTrace`` after a gradient fit, else None."""
        covariance = mixture.covariance
        structure = type(covariance)
        self.mixture_ = mixture
        self._fit_kind = output
        self.mean_ = as_output(mixture.means[0], output)
        self.covariance_ = as_output(structure.component_values(covariance.covariances, 0), output)
        self.precision_ = as_output(structure.component_values(covariance.precisions(), 0), output)
        self.n_features_in_ = mixture.n_features
        for name in ("history_", "n_iter_", "converged_"):
            self.__dict__.pop(name, None)
        if isinstance(record, GradientTrace):
            self.history_: GradientTrace = record
            self.n_iter_ = record.n_iter
            self.converged_ = record.converged

    def sample(self, n_samples: int = 1) -> Any:
        """Draw samples from the fitted Gaussian.

        Parameters
        ----------
        n_samples : int, default=1
            Number of rows to draw, at least 1 (ValueError otherwise).

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_features)
            The samples, as NumPy or a tensor like the data :meth:`fit` saw. Repeated calls
            continue the stream of ``random_state``.

        See Also
        --------
        Gaussian.rvs : SciPy's shape convention (``size`` may be a tuple).
        mixtorch.GaussianMixture.sample : Samples with their component labels.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> g = Gaussian(random_state=0).fit(np.random.default_rng(0).normal(size=(100, 3)))
        >>> g.sample(4).shape
        (4, 3)
        """
        return self._draw(n_samples)[0]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mixture_")

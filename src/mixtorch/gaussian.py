"""``Gaussian``: a single (multivariate) normal distribution, fitted in closed form."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning

from ._base import MixtureScoringMixin
from ._chunks import chunk_rows, column_mean
from ._validation import (
    as_output,
    check_random_generator,
    check_sample_weight,
    resolve_dtype,
    to_tensor,
)
from .covariance import covariance_class
from .fit.gradient import GradientTrace, check_gradient_options, fit_gradient
from .fit.init import mixture_from_responsibilities
from .mixture import Mixture

__all__ = ["Gaussian"]


class Gaussian(MixtureScoringMixin, DensityMixin, BaseEstimator):
    """Maximum-likelihood Gaussian: the sample mean and the biased sample covariance.

    For one-dimensional data pass a single column, ``X.reshape(-1, 1)``.

    Parameters
    ----------
    covariance_type : {'full', 'diag', 'spherical', 'tied'}, default='full'
        'tied' is the same as 'full' for a single Gaussian.
    reg_covar : float, default=0.0
        Added to the covariance diagonal. The default keeps the exact maximum-likelihood
        estimate; raise it for data that is (nearly) degenerate.
    random_state : int, RandomState, Generator or torch.Generator, optional
        Used by :meth:`sample`.
    chunk_size : int, optional
        Rows per chunk in passes over the data.
    device, dtype : optional
        As for :class:`~mixtorch.GaussianMixture`.
    algorithm : {'closed_form', 'gradient'}, default='closed_form'
        'gradient' minimises the negative log-likelihood with a torch optimiser, starting
        from mean 0 and identity covariance (a deliberately poor guess), through the
        unconstrained parameters of :class:`mixtorch.nn.GaussianModule`.
    optimizer : str, torch.optim.Optimizer class or callable, default='adam'
        Only for ``algorithm='gradient'`` (see :class:`~mixtorch.GaussianMixture`).
    learning_rate : float, default=0.05
        Only for ``algorithm='gradient'``.
    batch_size : int, optional
        Only for ``algorithm='gradient'``: rows per step (default: full batch).
    max_iter : int, default=1000
        Only for ``algorithm='gradient'``: maximum number of epochs.
    tol : float, default=1e-8
        Only for ``algorithm='gradient'``: convergence threshold on the change of the
        epoch's mean NLL per sample (for 10 consecutive epochs). Near the optimum the
        NLL is flat, so the parameters are only about ``sqrt(tol)`` accurate.

    Attributes
    ----------
    mean_ : array of shape (n_features,)
    covariance_ : array
        (D, D) for 'full' and 'tied', (D,) for 'diag', a scalar array for 'spherical'.
    precision_ : array
        The inverse of ``covariance_``, same layout.
    mixture_ : Mixture
        The same distribution as a one-component mixture.
    n_features_in_ : int
    history_ : GradientTrace
        Only for ``algorithm='gradient'``: per-epoch NLL and parameters, with ``.table()``
        and ``.plot()``; ``n_iter_`` and ``converged_`` are then set as well.

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

    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Gaussian:
        """Closed-form maximum-likelihood fit.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional
            Non-negative weights (frequency weights).

        Returns
        -------
        self
        """
        covariance_type = covariance_class(self.covariance_type)
        if not self.reg_covar >= 0:
            raise ValueError(f"reg_covar must be non-negative, got {self.reg_covar!r}.")
        check_gradient_options(self, ("closed_form", "gradient"), iterations=True)
        from .streaming import fit_gaussian_source, uses_streaming_gaussian

        if uses_streaming_gaussian(self, X):  # a chunk source, or shards across ranks
            fit_gaussian_source(self, X, sample_weight)
            return self
        dtype = resolve_dtype(self.dtype, X)
        tensor, kind = to_tensor(
            self, X, reset=True, dtype=dtype, device=self.device, ensure_min_samples=2
        )
        weights = None if sample_weight is None else check_sample_weight(sample_weight, tensor)
        rows = chunk_rows(1, tensor.shape[1], self.chunk_size)
        if self.algorithm == "gradient":
            self._store(self._fit_gradient(tensor, weights, rows), kind)
            return self
        mean = column_mean(tensor, rows, weights)

        def responsibilities(chunk: torch.Tensor, start: int) -> torch.Tensor:
            if weights is None:
                return torch.ones(chunk.shape[0], 1, dtype=chunk.dtype, device=chunk.device)
            return weights[start : start + chunk.shape[0], None]

        mixture = mixture_from_responsibilities(
            tensor, responsibilities, covariance_type, self.reg_covar, mean[None], rows
        )
        self._store(mixture, kind)
        return self

    def _fit_gradient(self, X: torch.Tensor, weights: torch.Tensor | None, rows: int) -> Mixture:
        """Gradient descent from mean 0 and identity covariance; records ``history_``."""
        D = X.shape[1]
        covariance = {"full": torch.eye(D)[None], "tied": torch.eye(D), "diag": torch.ones(1, D)}
        start = Mixture.from_parameters(
            torch.ones(1),
            torch.zeros(1, D),
            covariance.get(self.covariance_type, torch.ones(1)),
            self.covariance_type,
            dtype=X.dtype,
            device=X.device,
        )
        mixture, trace = fit_gradient(
            X,
            start,
            optimizer=self.optimizer,
            learning_rate=self.learning_rate,
            batch_size=self.batch_size,
            max_iter=self.max_iter,
            tol=self.tol,
            generator=check_random_generator(self.random_state, X.device),
            reg_covar=self.reg_covar,
            sample_weight=weights,
            chunk_size=rows,
        )
        if not trace.converged and self.max_iter > 0:
            warnings.warn(
                "Gradient descent did not converge; increase max_iter or learning_rate.",
                ConvergenceWarning,
                stacklevel=3,
            )
        self.history_: GradientTrace = trace
        self.n_iter_ = trace.n_iter
        self.converged_ = trace.converged
        return mixture

    def _store(self, mixture: Mixture, kind: Any) -> None:
        covariance = mixture.covariance
        self.mixture_ = mixture
        self._fit_kind = kind
        self.mean_ = as_output(mixture.means[0], kind)
        single = covariance.covariances if covariance.kind == "tied" else covariance.covariances[0]
        precision = covariance.precisions()
        self.covariance_ = as_output(single, kind)
        self.precision_ = as_output(precision if covariance.kind == "tied" else precision[0], kind)
        self.n_features_in_ = mixture.n_features

    def sample(self, n_samples: int = 1) -> Any:
        """Draw samples.

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_features)
        """
        return self._draw(n_samples)[0]

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mixture_")

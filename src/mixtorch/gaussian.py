"""``Gaussian``: a single (multivariate) normal distribution, fitted in closed form."""

from __future__ import annotations

from typing import Any

import torch
from sklearn.base import BaseEstimator, DensityMixin

from ._base import MixtureScoringMixin
from ._chunks import chunk_rows, iter_chunks
from ._validation import as_output, check_finite, resolve_dtype, to_tensor
from .covariance import covariance_class
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
    ) -> None:
        self.covariance_type = covariance_type
        self.reg_covar = reg_covar
        self.random_state = random_state
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

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
        dtype = resolve_dtype(self.dtype, X)
        tensor, kind = to_tensor(
            self, X, reset=True, dtype=dtype, device=self.device, ensure_min_samples=2
        )
        weights = _check_sample_weight(sample_weight, tensor)
        rows = chunk_rows(1, tensor.shape[1], self.chunk_size)
        mean = _weighted_mean(tensor, weights, rows)

        def responsibilities(chunk: torch.Tensor, start: int) -> torch.Tensor:
            if weights is None:
                return torch.ones(chunk.shape[0], 1, dtype=chunk.dtype, device=chunk.device)
            return weights[start : start + chunk.shape[0], None]

        mixture = mixture_from_responsibilities(
            tensor, responsibilities, covariance_type, self.reg_covar, mean[None], rows
        )
        self._store(mixture, kind)
        return self

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


def _check_sample_weight(sample_weight: Any, X: torch.Tensor) -> torch.Tensor | None:
    if sample_weight is None:
        return None
    weights = torch.as_tensor(sample_weight, dtype=X.dtype, device=X.device).reshape(-1)
    if weights.shape[0] != X.shape[0]:
        raise ValueError(
            f"sample_weight has {weights.shape[0]} entries but X has {X.shape[0]} samples."
        )
    check_finite(weights, "sample_weight")
    if bool((weights < 0).any()) or not float(weights.sum()) > 0:
        raise ValueError("sample_weight must be non-negative with a positive sum.")
    return weights


def _weighted_mean(X: torch.Tensor, weights: torch.Tensor | None, rows: int) -> torch.Tensor:
    total = torch.zeros(X.shape[1], dtype=torch.float64, device=X.device)
    mass = 0.0
    for start, chunk in zip(range(0, X.shape[0], rows), iter_chunks(X, rows), strict=True):
        if weights is None:
            total += chunk.sum(0, dtype=torch.float64)
            mass += chunk.shape[0]
        else:
            w = weights[start : start + chunk.shape[0]].to(torch.float64)
            total += w @ chunk.to(torch.float64)
            mass += float(w.sum())
    return (total / mass).to(X.dtype)

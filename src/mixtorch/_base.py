"""Scoring, prediction and sampling shared by every estimator that holds a ``mixture_``."""

from __future__ import annotations

import math
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from ._chunks import chunk_rows
from ._validation import OutputKind, as_output, check_random_generator, to_tensor
from .mixture import Mixture

__all__ = ["MixtureScoringMixin"]


class MixtureScoringMixin:
    """Methods of a fitted density model whose parameters live in ``self.mixture_``.

    Subclasses set ``mixture_`` and ``_fit_kind`` in ``fit`` and define the
    ``chunk_size`` and ``random_state`` parameters.
    """

    mixture_: Mixture
    _fit_kind: OutputKind
    chunk_size: int | None
    random_state: Any

    # -- helpers ---------------------------------------------------------------------
    def _prepare(self, X: Any) -> tuple[torch.Tensor, OutputKind, int]:
        check_is_fitted(self, "mixture_")
        mixture = self.mixture_
        tensor, kind = to_tensor(self, X, reset=False, dtype=mixture.dtype, device=mixture.device)
        rows = chunk_rows(
            mixture.n_components, mixture.n_features, self.chunk_size, mixture.covariance_type
        )
        return tensor, kind, rows

    def _n_parameters(self) -> int:
        """Number of free parameters of the fitted model."""
        check_is_fitted(self, "mixture_")
        return self.mixture_.n_parameters()

    # -- densities -------------------------------------------------------------------
    def score_samples(self, X: Any) -> Any:
        """Log-density of each sample.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or Tensor of shape (n_samples,)
        """
        tensor, kind, rows = self._prepare(X)
        return as_output(self.mixture_.log_prob(tensor, rows), kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log-likelihood per sample (scikit-learn's convention for mixtures).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        tensor, _, rows = self._prepare(X)
        return float(self.mixture_.total_log_prob(tensor, rows)) / tensor.shape[0]

    def bic(self, X: Any) -> float:
        """Bayesian information criterion, ``-2 log L + p log n``; lower is better."""
        n_samples = _n_rows(X)
        log_likelihood = self.score(X) * n_samples
        return -2.0 * log_likelihood + self._n_parameters() * math.log(n_samples)

    def aic(self, X: Any) -> float:
        """Akaike information criterion, ``-2 log L + 2 p``; lower is better."""
        return -2.0 * self.score(X) * _n_rows(X) + 2.0 * self._n_parameters()

    # -- generation ------------------------------------------------------------------
    def _draw(self, n_samples: int) -> tuple[Any, Any]:
        check_is_fitted(self, "mixture_")
        if int(n_samples) < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling requires at "
                "least one sample."
            )
        generator = check_random_generator(self.random_state, self.mixture_.device)
        samples, labels = self.mixture_.sample(int(n_samples), generator)
        return as_output(samples, self._fit_kind), as_output(labels, self._fit_kind)


class ClusterScoringMixin(MixtureScoringMixin):
    """Cluster assignment methods for models with several components."""

    def predict(self, X: Any) -> Any:
        """Most probable component of each sample.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray or Tensor of shape (n_samples,)
        """
        tensor, kind, rows = self._prepare(X)
        return as_output(self.mixture_.predict(tensor, rows), kind)

    def predict_proba(self, X: Any) -> Any:
        """Posterior probability of each component given each sample (responsibilities).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        responsibilities : ndarray or Tensor of shape (n_samples, n_components)
        """
        tensor, kind, rows = self._prepare(X)
        return as_output(self.mixture_.responsibilities(tensor, rows), kind)

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Generate samples: a component by its weight, then a point from it.

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_features)
        y : ndarray or Tensor of shape (n_samples,)
            Component labels, grouped by component.
        """
        return self._draw(n_samples)


def _n_rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)

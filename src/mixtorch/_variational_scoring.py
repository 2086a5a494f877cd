"""``BayesianGaussianMixture``'s scoring: the expected log-weights and log-densities
under the variational posterior (as scikit-learn computes them), as a mixin."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ._chunks import map_chunks
from ._validation import OutputKind, as_output
from .fit.variational import VariationalPosterior, expected_log_prob

__all__ = ["VariationalScoringMixin"]


class VariationalScoringMixin:
    """``score_samples``, ``score``, ``predict`` and ``predict_proba`` from the E-step's
    quantities ``E[log w_k] + E[log N(x | m_k, S_k)]`` of the fitted posterior; they
    take precedence over the plug-in versions of :class:`~mixtorch._base.ClusterScoringMixin`.
    """

    _posterior: VariationalPosterior

    if TYPE_CHECKING:  # provided by MixtureScoringMixin

        def _prepare(
            self, X: Any, defer_finite: bool = False
        ) -> tuple[torch.Tensor, OutputKind, int]: ...

    def _weighted(self, X: torch.Tensor, rows: int) -> torch.Tensor:
        return map_chunks(lambda chunk: expected_log_prob(chunk, self._posterior), X, rows)

    def score_samples(self, X: Any) -> Any:
        """Log of the summed expected weighted densities, as scikit-learn computes it.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or Tensor of shape (n_samples,)
        """
        tensor, kind, rows = self._prepare(X)
        return as_output(torch.logsumexp(self._weighted(tensor, rows), 1), kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean of :meth:`score_samples` (scikit-learn's convention).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        float
        """
        tensor, _, rows = self._prepare(X)
        return float(torch.logsumexp(self._weighted(tensor, rows), 1).to(torch.float64).mean())

    def predict(self, X: Any) -> Any:
        """Most probable component of each sample, shape (n_samples,)."""
        tensor, kind, rows = self._prepare(X)
        return as_output(self._weighted(tensor, rows).argmax(1), kind)

    def predict_proba(self, X: Any) -> Any:
        """Variational responsibilities, shape (n_samples, n_components)."""
        tensor, kind, rows = self._prepare(X)
        return as_output(torch.softmax(self._weighted(tensor, rows), 1), kind)

"""``BayesianGaussianMixture``'s scoring: the expected log-weights and log-densities
under the variational posterior (as scikit-learn computes them), as a mixin."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import torch

from ._chunks import map_chunks
from ._scoring import far_labels
from ._validation import OutputKind, as_output
from .fit.variational import VariationalPosterior, expected_log_prob
from .mixture import Mixture

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

    def _scored(self, X: Any) -> tuple[torch.Tensor, torch.Tensor, Any, torch.Tensor]:
        """The rows as a tensor, their expected weighted log-densities (n, K), the output
        kind, and the rows too far away for those to be finite.

        Every Gaussian density is positive, so a non-finite entry (``-inf``, or NaN from
        overflowing squares) only comes from a component whose squared distance to the
        point overflows: its density there is 0. Rows where that holds for every component
        get the limits of :class:`~mixtorch.Mixture`'s scoring: log-density ``-inf`` and
        the component that wins along the ray through the point. The
        posterior-mean mixture ``mixture_`` has the precisions ``nu_k W_k`` that the
        quadratic terms of the expectation use, so its limit is theirs.
        """
        tensor, kind, rows = self._prepare(X)
        weighted = self._weighted(tensor, rows)
        # A NaN is an overflowed term (inf - inf): that component's density is 0 there.
        weighted = weighted.masked_fill_(torch.isnan(weighted), -math.inf)
        far = ~torch.isfinite(weighted.amax(1))  # every component overflowed
        return tensor, weighted, kind, far

    def _log_density(self, X: Any) -> tuple[torch.Tensor, Any]:
        _, weighted, kind, _ = self._scored(X)
        return torch.logsumexp(weighted, 1), kind  # -inf on far rows (all terms -inf)

    def _far_labels(self, X: torch.Tensor, far: torch.Tensor) -> torch.Tensor:
        mixture: Mixture = self.mixture_  # type: ignore[attr-defined]
        return far_labels(X[far], mixture.center, mixture.centred_means, mixture.covariance)

    def score_samples(self, X: Any) -> Any:
        """Log of the summed expected weighted densities, as scikit-learn computes it.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or Tensor of shape (n_samples,)
            ``-inf`` only for points too far away for a finite density.
        """
        log_density, kind = self._log_density(X)
        return as_output(log_density, kind)

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
        log_density, _ = self._log_density(X)
        return float(log_density.to(torch.float64).mean())

    def predict(self, X: Any) -> Any:
        """Most probable component of each sample, shape (n_samples,)."""
        tensor, weighted, kind, far = self._scored(X)
        labels = weighted.argmax(1)
        if bool(far.any()):
            labels[far] = self._far_labels(tensor, far)
        return as_output(labels, kind)

    def predict_proba(self, X: Any) -> Any:
        """Variational responsibilities, shape (n_samples, n_components) (one-hot for
        points too far away for finite densities)."""
        tensor, weighted, kind, far = self._scored(X)
        responsibilities = torch.softmax(weighted, 1)
        if bool(far.any()):
            labels = self._far_labels(tensor, far)
            responsibilities[far] = torch.nn.functional.one_hot(labels, weighted.shape[1]).to(
                responsibilities.dtype
            )
        return as_output(responsibilities, kind)

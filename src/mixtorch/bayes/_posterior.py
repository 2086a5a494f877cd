"""Scoring a Pyro mixture by averaging over its posterior draws."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from .._mixture_scoring import weighted_mean
from .._validation import OutputKind, as_output
from ._components import ComponentFamily

__all__ = ["PosteriorPredictiveMixin"]

#: posterior draws evaluated together
_DRAWS_PER_BLOCK = 64
#: elements (draws x rows x components x features) of one evaluation: bounds memory
_BLOCK_ELEMENTS = 1 << 24


class PosteriorPredictiveMixin:
    """Densities and assignments averaged over ``self._draws`` (relabelled draws
    ``{site: (n_draws, ...)}``), for :class:`~mixtorch.bayes._common.PyroMixtureBase`."""

    _draws: dict[str, Tensor]
    #: provided by the estimator: input checking, and the family of its covariance kind
    _prepare: Callable[..., tuple[Tensor, OutputKind, Any]]
    _family: Callable[[], type[ComponentFamily]]

    def _per_draw(
        self,
        X: Tensor,
        reduce: Any,
        draws: dict[str, Tensor] | None = None,
        row_dim: int = -1,
    ) -> Tensor:
        """``reduce(weighted log-densities (draws, rows, K))`` over blocks of the kept
        draws (or of ``draws``) and of the rows of ``X``; the blocks' results are
        concatenated along the draws (dimension 0) and along the rows (``row_dim``)."""
        family = self._family()
        draws = self._draws if draws is None else draws
        n_draws = draws["weights"].shape[0]
        K, D = draws["locs"].shape[-2:]
        per_block = min(n_draws, _DRAWS_PER_BLOCK)
        rows = max(1, _BLOCK_ELEMENTS // (per_block * K * D))
        columns = []
        for low in range(0, X.shape[0], rows):
            blocks = []
            for start in range(0, n_draws, per_block):
                part = {name: value[start : start + per_block] for name, value in draws.items()}
                blocks.append(reduce(family.weighted_log_prob(X[low : low + rows], part)))
            columns.append(torch.cat(blocks))
        return torch.cat(columns, dim=row_dim)

    def _draw_log_likelihood(self, X: Tensor, draws: dict[str, Tensor] | None = None) -> Tensor:
        """log p(x_i | theta_s) for every kept draw s (or every draw of ``draws``), shape
        (n_draws, n_samples)."""
        return self._per_draw(X, lambda weighted: torch.logsumexp(weighted, -1), draws)

    def score_samples(self, X: Any) -> Any:
        """Log posterior predictive density, ``log mean_s p(x | theta_s)`` over the draws.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or Tensor of shape (n_samples,)
        """
        tensor, kind, _ = self._prepare(X)
        per_draw = self._draw_log_likelihood(tensor)
        return as_output(torch.logsumexp(per_draw, 0) - math.log(per_draw.shape[0]), kind)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log posterior predictive density per sample.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like or Tensor of shape (n_samples,), optional
            Non-negative weights: the mean is then ``sum_i w_i l_i / sum_i w_i`` (rows of
            weight 0 take no part), with the shared check of ``sample_weight`` (a
            ValueError naming it for a wrong length, NaN, infinity, a negative entry or
            all zeros), as every mixture's ``score`` takes it.

        Returns
        -------
        float
        """
        return weighted_mean(torch.as_tensor(self.score_samples(X)), sample_weight)

    def predict_proba(self, X: Any) -> Any:
        """Posterior probability of each component, averaged over the posterior draws.

        For every kept draw ``theta_s`` the responsibilities
        ``p(z = k | x, theta_s) = w_sk N(x | theta_sk) / sum_j w_sj N(x | theta_sj)`` are
        computed, then averaged over the draws (relabelled to one labelling), so the
        uncertainty of the parameters widens the assignment probabilities.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        responsibilities : ndarray or Tensor of shape (n_samples, n_components)
        """
        tensor, kind, _ = self._prepare(X)
        return as_output(self._mean_responsibilities(tensor), kind)

    def _mean_responsibilities(self, X: Tensor) -> Tensor:
        summed = self._per_draw(
            X, lambda weighted: torch.softmax(weighted, -1).sum(0, True), row_dim=-2
        )
        return summed.sum(0) / self._draws["weights"].shape[0]

    def predict(self, X: Any) -> Any:
        """Component with the largest posterior-averaged probability (``predict_proba``).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        labels : ndarray or Tensor of shape (n_samples,)
        """
        tensor, kind, _ = self._prepare(X)
        return as_output(self._mean_responsibilities(tensor).argmax(1), kind)

    def predictive_density(
        self, X: Any, quantiles: tuple[float, float] = (0.05, 0.95)
    ) -> tuple[Any, Any, Any]:
        """Posterior predictive density with a pointwise credible band.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        quantiles : (float, float)
            Lower and upper posterior quantiles of ``p(x | theta)`` (default a 90% band).

        Returns
        -------
        mean, lower, upper : ndarray or Tensor of shape (n_samples,)
            The posterior mean of the density and the requested quantiles.
        """
        low, high = (float(q) for q in quantiles)
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"quantiles must satisfy 0 <= low <= high <= 1, got {quantiles!r}.")
        tensor, kind, _ = self._prepare(X)
        density = torch.exp(self._draw_log_likelihood(tensor))
        levels = torch.tensor([low, high], dtype=density.dtype, device=density.device)
        lower, upper = torch.quantile(density, levels, dim=0)
        return tuple(as_output(value, kind) for value in (density.mean(0), lower, upper))

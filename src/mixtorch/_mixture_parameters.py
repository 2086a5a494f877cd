"""The parameters a :class:`~mixtorch.Mixture` holds, checked for agreement, and the
quantities derived from them (centre, centred means, log-weights).

:class:`MixtureParameters` is the base the mixture's behaviour mixins
(:mod:`._mixture_sampling`, :mod:`._mixture_conditioning`, :mod:`._mixture_torch`) build
on; :class:`~mixtorch.Mixture` combines them.
"""

from __future__ import annotations

from functools import cached_property
from typing import TypeVar

import torch
from torch import Tensor

from .covariance import Covariance

__all__ = ["MixtureParameters", "MixtureT"]

#: A mixture type, so that methods building a new mixture return the caller's class.
MixtureT = TypeVar("MixtureT", bound="MixtureParameters")


class MixtureParameters:
    """Weights (K,), means (K, D) and a :class:`~mixtorch.covariance.Covariance` for D
    features, with the shapes checked (ValueError if they disagree)."""

    def __init__(self, weights: Tensor, means: Tensor, covariance: Covariance) -> None:
        if means.ndim != 2:
            raise ValueError(f"means must have shape (K, D), got {tuple(means.shape)}.")
        if weights.shape != (means.shape[0],):
            raise ValueError(
                f"weights must have shape ({means.shape[0]},) to match means, "
                f"got {tuple(weights.shape)}."
            )
        if covariance.n_features != means.shape[1]:
            raise ValueError(
                f"The covariance is {covariance.n_features}-dimensional but the means are "
                f"{means.shape[1]}-dimensional."
            )
        self.weights = weights
        self.means = means
        self.covariance = covariance

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @property
    def covariance_type(self) -> str:
        return self.covariance.kind

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    @property
    def device(self) -> torch.device:
        return self.means.device

    @cached_property
    def center(self) -> Tensor:
        """The mixture mean, used as the shift point for accurate float32 arithmetic."""
        return self.weights @ self.means

    @cached_property
    def centred_means(self) -> Tensor:
        """Means relative to :attr:`center`."""
        return self.means - self.center

    @cached_property
    def log_weights(self) -> Tensor:
        return torch.log(self.weights)

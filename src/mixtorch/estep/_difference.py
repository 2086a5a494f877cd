"""The shared E-step from explicit differences ``y - m_k`` (accurate in float32 however
far and tight the components are); full and diagonal kernels subclass it."""

from __future__ import annotations

from abc import abstractmethod

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET
from ._kernel import ChunkSums, EStepKernel

__all__ = ["DifferenceKernel"]


class DifferenceKernel(EStepKernel):
    """Shared E-step from explicit differences ``y - m_k``; moments about the means.

    Subclasses say how differences are whitened and how a second moment is formed.
    Longer chunks are worked through in pieces whose (K, rows, D) differences stay in the
    CPU caches.
    """

    def __init__(self, center: Tensor, means: Tensor, bias: Tensor) -> None:
        super().__init__(center, means)
        self.bias = bias.unsqueeze(1)  # (K, 1): log-probabilities are kept as (K, rows)
        K, D = means.shape
        # (K, rows, D) differences of a piece stay in the CPU caches (2 MiB of float32).
        self.piece_rows = max(64, DEFAULT_ELEMENT_BUDGET // (K * D))

    @abstractmethod
    def _whiten(self, differences: Tensor) -> Tensor:
        """(K, rows, D) differences with each component's covariance divided out."""

    @abstractmethod
    def _second_moment(self, weighted: Tensor, differences: Tensor) -> Tensor:
        """Second moment of the differences with responsibility-weighted ``weighted``."""

    def _differences(self, X: Tensor) -> Tensor:
        return (X - self.center).unsqueeze(0) - self.origin.unsqueeze(1)

    def _log_prob(self, differences: Tensor) -> Tensor:
        whitened = self._whiten(differences)
        return torch.linalg.vector_norm(whitened, dim=-1).square_().mul_(-0.5).add_(self.bias)

    def weighted_log_prob(self, X: Tensor) -> Tensor:
        return self._log_prob(self._differences(X)).T.contiguous()

    def column_log_prob(self, X: Tensor) -> Tensor:
        out = self._scratch.take("log_prob", (self.bias.shape[0], X.shape[0]), X)
        for start in range(0, X.shape[0], self.piece_rows):
            piece = X[start : start + self.piece_rows]
            out[:, start : start + piece.shape[0]] = self._log_prob(self._differences(piece))
        return out

    def __call__(self, X: Tensor, sample_weight: Tensor | None = None) -> ChunkSums:
        parts = []
        # A chunk of no rows (all rows of a chunk missing entries, a rank without rows)
        # is one empty piece, whose sums are zeros.
        for start in range(0, max(X.shape[0], 1), self.piece_rows):
            stop = start + self.piece_rows
            weight = None if sample_weight is None else sample_weight[start:stop]
            parts.append(self._piece(X[start:stop], weight))
        if len(parts) == 1:
            return parts[0]
        entropies = [part.entropy for part in parts if part.entropy is not None]
        return ChunkSums(
            torch.stack([part.log_likelihood for part in parts]).sum(0),
            torch.stack([part.counts for part in parts]).sum(0),
            torch.stack([part.first for part in parts]).sum(0),
            torch.stack([part.second for part in parts]).sum(0),
            torch.stack(entropies).sum(0) if entropies else None,
        )

    def _piece(self, X: Tensor, sample_weight: Tensor | None) -> ChunkSums:
        differences = self._differences(X)
        log_prob = self._log_prob(differences)
        log_likelihood, responsibilities, entropy = self._normalise(log_prob, sample_weight)
        weighted = differences * responsibilities.unsqueeze(-1)
        return ChunkSums(
            log_likelihood,
            responsibilities.sum(1),
            weighted.sum(1),
            self._second_moment(weighted, differences),
            entropy,
        )

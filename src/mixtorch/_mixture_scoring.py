"""Densities, labels and responsibilities of many rows: the scoring part of
:class:`~mixtorch.Mixture`, chunk by chunk through :mod:`mixtorch._scoring`; and the
weighted mean of log-densities that the estimators' ``score(X, sample_weight=...)`` takes."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from . import _scoring
from ._chunks import chunk_rows
from ._mixture_parameters import MixtureParameters
from ._validation import check_sample_weight

if TYPE_CHECKING:
    from .estep import EStepKernel

__all__ = ["SCORING_BLOCK_BYTES", "SCORING_ELEMENTS", "MixtureScoring", "weighted_mean"]

#: Largest (K, rows) block of log-probabilities per scoring chunk (1 MiB of float32):
#: 16384-row chunks for K=16, the fastest length for diag and full covariances measured
#: on 2 cores (N=200k, K=D=16: 8192 rows took 10-15% longer, 32768 no less). The diag
#: E-step's chunks (43690 rows for K=D=16) are too few on 200k rows to share out evenly.
SCORING_ELEMENTS = 2**18

#: Largest kernel intermediate per scoring chunk, in bytes (4 MiB), for kernels that
#: declare theirs (:attr:`~mixtorch.estep.EStepKernel.scoring_row_elements`). Scoring keeps
#: no moments, so the packed quadratic block of full covariances may use longer chunks
#: than the E-step's: each chunk costs Python dispatch under the GIL (which the other
#: worker thread waits for), while a block that leaves the caches slows the product.
#: The best length depends on the machine. On the AMD EPYC machine (N=200k, K=D=16, 2
#: cores, medians of 15 interleaved calls per method), 4 MiB beat 8 MiB by 15-20% in
#: float32 (oneDNN's products: 14.7-18.4 against 19.0-23.5 ms) and 25% in float64
#: (31.4-42.7 against 41.6-55.4 ms), and 2 MiB was no better than 4. On the Intel Xeon
#: machine of an earlier round (MKL's products, before the GIL work), 8 MiB had been
#: faster: float32 13-14 against 16-17 ms, float64 26 against 28.6 ms.
SCORING_BLOCK_BYTES = 2**22


class MixtureScoring(MixtureParameters):
    """:meth:`log_prob`, :meth:`total_log_prob`, :meth:`responsibilities` and
    :meth:`predict` for :class:`~mixtorch.Mixture`."""

    if TYPE_CHECKING:  # a cached property of Mixture

        @property
        def e_step_kernel(self) -> EStepKernel: ...

    def _scoring_rows(self, chunk_size: int | None) -> int:
        """Rows per scoring chunk: ``chunk_size`` when given, else what the kernel's
        block allows (:data:`SCORING_BLOCK_BYTES`; the E-step's chunk for kernels
        that declare no block), capped so that the (K, rows) log-probabilities hold at
        most :data:`SCORING_ELEMENTS` values.

        The rows depend only on the parameters and ``chunk_size``, never on threads.
        """
        K, D = self.n_components, self.n_features
        block = self.e_step_kernel.scoring_row_elements
        if chunk_size is None and block is not None:
            element_bytes = torch.finfo(self.dtype).bits // 8
            rows = max(256, SCORING_BLOCK_BYTES // (element_bytes * block))
        else:
            rows = chunk_rows(K, D, chunk_size, type(self.covariance))
        return min(rows, max(256, SCORING_ELEMENTS // K))

    def log_prob(
        self,
        X: Tensor,
        chunk_size: int | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> Tensor:
        """log p(x_i), computed in row chunks (see :mod:`mixtorch._scoring`).

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            The points.
        chunk_size : int, default=None
            Rows per chunk, bounding memory; None picks it from K and D.
        on_overflow : callable, default=None
            Called without arguments when some row's terms are not finite, before those
            rows get their limiting values. The estimators check their input for NaN and
            infinity here instead of before the pass (which would read the data twice):
            such input makes terms non-finite, so the check raises where it should.

        Returns
        -------
        Tensor of shape (n_samples,)
            Log-densities; ``-inf`` only for points too far away for a finite density.

        See Also
        --------
        Mixture.total_log_prob, Mixture.responsibilities, Mixture.predict

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.float64)
        >>> mixture.log_prob(torch.zeros(1, 1, dtype=torch.float64))  # -log(2 pi) / 2
        tensor([-0.9189], dtype=torch.float64)
        """
        rows = self._scoring_rows(chunk_size)
        out, overflowed = _scoring.log_prob(self.e_step_kernel, X, rows, self.dtype)
        if overflowed:  # see _far_labels
            out[self._overflowed_rows(out, on_overflow)] = -math.inf
        return out

    def total_log_prob(
        self,
        X: Tensor,
        chunk_size: int | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> Tensor:
        """sum_i log p(x_i) as a float64 scalar, without an (n,) intermediate.

        Parameters
        ----------
        X, chunk_size, on_overflow
            As for :meth:`log_prob`.

        Returns
        -------
        Tensor of shape ()
            The float64 sum of :meth:`log_prob`.

        See Also
        --------
        Mixture.log_prob, mixtorch.GaussianMixture.score
        """
        rows = self._scoring_rows(chunk_size)
        sums, overflowed = _scoring.log_likelihood_sums(self.e_step_kernel, X, rows, self.dtype)
        if overflowed:  # a row's log-density is -inf
            return self.log_prob(X, chunk_size, on_overflow).sum(dtype=torch.float64)
        return sums.sum()

    def responsibilities(
        self,
        X: Tensor,
        chunk_size: int | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> Tensor:
        """p(z_i = k | x_i), shape (n, K), computed in row chunks.

        Parameters
        ----------
        X, chunk_size, on_overflow
            As for :meth:`log_prob`.

        Returns
        -------
        Tensor of shape (n_samples, K)
            Rows sum to one (one-hot for points too far away for finite densities).

        See Also
        --------
        Mixture.predict, mixtorch.GaussianMixture.predict_proba
        """
        rows = self._scoring_rows(chunk_size)
        kernel = self.e_step_kernel
        out, peaks, overflowed = _scoring.responsibilities(
            kernel, X, rows, self.dtype, self.n_components
        )
        if overflowed:
            far = self._overflowed_rows(peaks, on_overflow)
            out[far] = torch.nn.functional.one_hot(self._far_labels(X[far]), self.n_components).to(
                out.dtype
            )
        return out

    def predict(
        self,
        X: Tensor,
        chunk_size: int | None = None,
        on_overflow: Callable[[], None] | None = None,
    ) -> Tensor:
        """argmax_k p(z_i = k | x_i), shape (n,).

        Parameters
        ----------
        X, chunk_size, on_overflow
            As for :meth:`log_prob`.

        Returns
        -------
        Tensor of shape (n_samples,)
            The most probable component (int64), the first on ties.

        See Also
        --------
        Mixture.responsibilities, mixtorch.GaussianMixture.predict
        """
        rows = self._scoring_rows(chunk_size)
        labels, peaks, overflowed = _scoring.labels(self.e_step_kernel, X, rows, self.dtype)
        if overflowed:
            far = self._overflowed_rows(peaks, on_overflow)
            labels[far] = self._far_labels(X[far])
        return labels

    @staticmethod
    def _overflowed_rows(values: Tensor, on_overflow: Callable[[], None] | None) -> Tensor:
        """The rows whose ``values`` are not finite, after calling ``on_overflow``."""
        if on_overflow is not None:
            on_overflow()
        return ~torch.isfinite(values)

    def _far_labels(self, X: Tensor) -> Tensor:
        """Most probable component of rows too far away for their terms to be finite
        (:func:`mixtorch._scoring.far_labels`)."""
        return _scoring.far_labels(X, self.center, self.centred_means, self.covariance)


def weighted_mean(log_density: Tensor, sample_weight: Any) -> float:
    """``sum_i w_i l_i / sum_i w_i`` of log-densities ``l`` (n,), in float64; their plain
    mean when ``sample_weight`` is None.

    ``sample_weight`` goes through the shared check (a ValueError naming it for a wrong
    length, NaN, infinity, a negative entry, or weights that are all zero); rows of
    weight 0 take no part, even where ``l_i`` is ``-inf``.

    Examples
    --------
    >>> import torch
    >>> from mixtorch._mixture_scoring import weighted_mean
    >>> weighted_mean(torch.tensor([-1.0, -3.0, -float("inf")]), [3.0, 1.0, 0.0])
    -1.5
    """
    values = log_density.detach().to(torch.float64)
    if sample_weight is None:
        return float(values.mean())
    weights = check_sample_weight(sample_weight, values)
    terms = torch.where(weights > 0, weights * values, 0.0)
    return float(terms.sum() / weights.sum())

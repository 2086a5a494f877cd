"""The Gaussian mixture value object shared by every model in mixtorch.

A single Gaussian is a mixture with K = 1 and a Gaussian KDE is a mixture with one
component per data point, so densities, responsibilities and samples are computed here
once. The object holds tensors and does no fitting.

This module holds construction and scoring (densities, responsibilities, labels); the
parameters and their derived quantities, sampling, marginals and conditionals, and
conversion to and from ``torch.distributions`` are mixins in their own modules
(:mod:`._mixture_parameters`, :mod:`._mixture_sampling`, :mod:`._mixture_conditioning`,
:mod:`._mixture_torch`).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from . import _scoring
from ._chunks import chunk_rows
from ._mixture_checks import checked_parameters
from ._mixture_conditioning import MixtureConditioning
from ._mixture_sampling import MixtureSampling
from ._mixture_torch import MixtureTorch
from .estep import EStepKernel

__all__ = ["SCORING_BLOCK_BYTES", "SCORING_ELEMENTS", "Mixture"]

#: Largest (K, rows) block of log-probabilities per scoring chunk (1 MiB of float32):
#: 16384-row chunks for K=16, the fastest length for diag and full covariances measured
#: on 2 cores (N=200k, K=D=16: 8192 rows took 10-15% longer, 32768 no less). The diag
#: E-step's chunks (43690 rows for K=D=16) are too few on 200k rows to share out evenly.
SCORING_ELEMENTS = 2**18

#: Largest kernel intermediate per scoring chunk, in bytes (8 MiB), for kernels that
#: declare theirs (:attr:`~mixtorch.estep.EStepKernel.scoring_row_elements`). Scoring keeps
#: no moments, so the packed quadratic block of full covariances may use longer chunks
#: than the E-step's: each chunk costs Python dispatch under the GIL (which the other
#: worker thread waits for). Measured (N=200k, K=D=16, 2 cores): float32 passes took
#: 13-14 ms with 8-10 MiB blocks against 16-17 ms with the E-step's 6241 rows (4 MiB);
#: float64 was fastest at 8 MiB too (26 ms; 28.6 at 4 MiB, 32 at 16 MiB).
SCORING_BLOCK_BYTES = 2**23


class Mixture(MixtureSampling, MixtureConditioning, MixtureTorch):
    """A mixture of K Gaussians in D dimensions, ``p(x) = sum_k w_k N(x | mu_k, S_k)`` [1]_.

    A value object holding tensors: densities, responsibilities, samples, marginals and
    conditionals [2]_ [3]_; no fitting. Every estimator's ``mixture_`` is one.

    Parameters
    ----------
    weights : Tensor of shape (K,)
        Mixing proportions, non-negative, summing to one.
    means : Tensor of shape (K, D)
        Component means, in the dtype and on the device of the computation.
    covariance : Covariance
        One of :class:`~mixtorch.covariance.FullCovariance`, ``TiedCovariance``,
        ``DiagCovariance`` or ``SphericalCovariance``, for D features.

    Raises
    ------
    ValueError
        If the shapes of ``weights``, ``means`` and ``covariance`` do not agree.

    See Also
    --------
    mixtorch.GaussianMixture : The estimator that fits one by EM.
    torch.distributions.MixtureSameFamily : torch's counterpart (:meth:`to_torch`).

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2; marginals and conditionals of a Gaussian: section 2.3.
    .. [2] Z. Ghahramani and M. I. Jordan (1994), "Supervised learning from incomplete
       data via an EM approach", *NIPS 6*.
    .. [3] H. G. Sung (2004), "Gaussian mixture regression and classification", PhD
       thesis, Rice University.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import Mixture
    >>> mixture = Mixture.from_parameters(
    ...     [0.3, 0.7], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 1.0], [0.5, 0.5]],
    ...     covariance_type="diag", dtype=torch.float64,
    ... )
    >>> mixture.n_components, mixture.n_features, mixture.covariance_type
    (2, 2, 'diag')
    >>> X = torch.tensor([[0.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
    >>> mixture.responsibilities(X).round(decimals=3)
    tensor([[1., 0.],
            [0., 1.]], dtype=torch.float64)
    >>> torch.allclose(mixture.log_prob(X), mixture.to_torch().log_prob(X))
    True
    """

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_parameters(
        cls,
        weights: Any,
        means: Any,
        covariances: Any,
        covariance_type: str = "full",
        *,
        dtype: torch.dtype | None = None,
        device: Any = None,
    ) -> Mixture:
        """Build from array-likes in scikit-learn's layouts (see :mod:`.covariance`).

        Parameters
        ----------
        weights : array-like of shape (K,)
            Mixing proportions, non-negative, summing to one.
        means : array-like of shape (K, D)
            Component means; ``weights`` and ``covariances`` take their dtype and device.
        covariances : array-like
            (K, D, D) for 'full', (D, D) for 'tied', (K, D) for 'diag', (K,) for 'spherical'.
        covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
            Layout of ``covariances``.
        dtype : torch.dtype, default=None
            The dtype, float32 or float64; None keeps the dtype of ``means``.
        device : str or torch.device, default=None
            None keeps the device of ``means`` (CPU for NumPy).

        Returns
        -------
        Mixture
            The validated mixture.

        Raises
        ------
        ValueError
            Naming the parameter: NaN or infinite values, wrong shapes, weights negative or
            not summing to one, covariances not symmetric positive definite.
        TypeError
            For values that are not numeric arrays.

        See Also
        --------
        mixtorch.GaussianMixture.from_mixture : A fitted estimator holding a mixture.
        """
        return cls(*checked_parameters(weights, means, covariances, covariance_type, dtype, device))

    # -- derived quantities -----------------------------------------------------------
    @cached_property
    def e_step_kernel(self) -> EStepKernel:
        """This mixture's E-step, applied to chunks of rows (see :mod:`mixtorch.estep`)."""
        return self.covariance.e_step_kernel(self.center, self.centred_means, self.log_weights)

    def n_parameters(self) -> int:
        """Free parameters: weights (K - 1), means (K * D) and the covariance's own.

        Returns
        -------
        int
            The count the BIC and AIC use.

        See Also
        --------
        mixtorch.GaussianMixture.bic, mixtorch.GaussianMixture.aic
        """
        K, D = self.n_components, self.n_features
        return (K - 1) + K * D + self.covariance.n_parameters(K, D)

    def to(self, device: Any = None, dtype: torch.dtype | None = None) -> Mixture:
        """A copy on another device and/or dtype (None keeps the current one).

        Parameters
        ----------
        device : str or torch.device, default=None
            Target device.
        dtype : torch.dtype, default=None
            Target dtype.

        Returns
        -------
        Mixture
            The copy.

        See Also
        --------
        mixtorch.GaussianMixture.to : The same for a fitted estimator.
        """
        return Mixture(
            self.weights.to(device=device, dtype=dtype),
            self.means.to(device=device, dtype=dtype),
            self.covariance.to(device=device, dtype=dtype),
        )

    # -- densities -------------------------------------------------------------------
    def component_log_prob(self, X: Tensor) -> Tensor:
        """log N(x_i | mu_k, Sigma_k), shape (n, K), for one chunk ``X`` of shape (n, D).

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            One chunk of rows (no chunking is done here).

        Returns
        -------
        Tensor of shape (n_samples, K)
            Per-component log-densities, without the weights.

        See Also
        --------
        Mixture.weighted_log_prob, Mixture.log_prob
        """
        zeros = torch.zeros_like(self.weights)
        return self.covariance.log_gaussian(
            X.to(self.dtype) - self.center, self.centred_means, zeros
        )

    def weighted_log_prob(self, X: Tensor) -> Tensor:
        """log pi_k + log N(x_i | mu_k, Sigma_k), shape (n, K), for one chunk ``X``.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            One chunk of rows.

        Returns
        -------
        Tensor of shape (n_samples, K)
            Its ``logsumexp`` over components is :meth:`log_prob`.

        See Also
        --------
        Mixture.component_log_prob, Mixture.responsibilities
        """
        return self.e_step_kernel.weighted_log_prob(X.to(self.dtype))

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
            if on_overflow is not None:
                on_overflow()
            out[~torch.isfinite(out)] = -math.inf
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
            if on_overflow is not None:
                on_overflow()
            far = ~torch.isfinite(peaks)
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
            if on_overflow is not None:
                on_overflow()
            far = ~torch.isfinite(peaks)
            labels[far] = self._far_labels(X[far])
        return labels

    def _far_labels(self, X: Tensor) -> Tensor:
        """Most probable component of rows too far away for their terms to be finite.

        When squared coordinates overflow, every density underflows (log-density -inf),
        but the posterior has a limit along the ray through the point: the component
        with the smallest ``u^T S_k^-1 u`` (``u`` the direction from the centre) wins,
        ties going to the largest ``u^T S_k^-1 m_k``. Computed in float64 on the
        direction, which stays finite.
        """
        Y = X.to(torch.float64) - self.center.to(torch.float64)
        infinite = torch.isinf(Y)
        direction = torch.where(
            infinite.any(1, keepdim=True),
            torch.where(infinite, Y.sign(), 0.0),
            Y / Y.abs().amax(1, keepdim=True),
        )
        covariance = self.covariance.to(dtype=torch.float64)
        means = self.centred_means.to(torch.float64)
        origin = torch.zeros_like(direction[:1])
        spread = covariance.mahalanobis(direction, torch.zeros_like(means))  # (n, K)
        reach = (
            spread
            + covariance.mahalanobis(origin, means)
            - covariance.mahalanobis(direction, means)
        )
        smallest = spread <= spread.amin(1, keepdim=True) * (1.0 + 1e-9)
        return torch.where(smallest, reach, -math.inf).argmax(1)

    def __repr__(self) -> str:
        return (
            f"Mixture(n_components={self.n_components}, n_features={self.n_features}, "
            f"covariance_type={self.covariance_type!r}, dtype={self.dtype}, device={self.device})"
        )

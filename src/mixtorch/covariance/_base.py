"""The :class:`Covariance` base type: construction, evaluation and sampling of a kind.

Its error and factoring helpers are in :mod:`._factoring`, the dense-matrix and
precision forms in :mod:`._matrix_forms`, the per-kind classmethods in :mod:`._kinds`.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from .._wishart import _Variational
from ..estep import EStepKernel
from ._factoring import gaussian_log_normaliser
from ._kinds import _KindOperations
from ._matrix_forms import _MatrixForms


class Covariance(_KindOperations, _MatrixForms, _Variational):
    """Covariance of every component of a mixture, stored in scikit-learn's layout.

    The base of :class:`FullCovariance`, :class:`TiedCovariance`, :class:`DiagCovariance`
    and :class:`SphericalCovariance`; each kind knows its log-determinant, Mahalanobis
    term, M-step estimate [1]_, parameter count and sampling transform, and is factored
    (Cholesky) once when built.

    Parameters
    ----------
    covariances : Tensor
        The covariance parameter in this kind's layout: (K, D, D) 'full', (D, D) 'tied',
        (K, D) 'diag', (K,) 'spherical'.
    n_features : int, default=None
        D; None reads it from the last axis of ``covariances`` (needed for 'spherical').
    reg_covar : float, default=None
        Only used to word the error message when the matrix cannot be factored.

    Raises
    ------
    CovarianceError
        If a covariance is not positive definite (or a variance not positive).

    See Also
    --------
    mixtorch.covariance.covariance_class : The kind for a ``covariance_type`` string.
    mixtorch.Mixture : Holds one.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2.2 (the M-step of each covariance).

    Examples
    --------
    >>> from mixtorch import DiagCovariance, FullCovariance, SphericalCovariance, TiedCovariance
    >>> [kind.n_parameters(n_components=3, n_features=4) for kind in
    ...     (FullCovariance, TiedCovariance, DiagCovariance, SphericalCovariance)]
    [30, 10, 12, 3]
    """

    kind: ClassVar[str]
    #: Whether second moments are accumulated about each component's own mean
    #: (accurate in float32) rather than about a single shift point.
    centred_per_component: ClassVar[bool]
    #: Whether the features of a component are independent (a diagonal covariance): an
    #: observed marginal is a sum over its features and a conditional of missing entries
    #: is their own marginal, with no matrix to factor.
    independent_features: ClassVar[bool]

    cholesky: Tensor

    def __init__(
        self,
        covariances: Tensor,
        *,
        n_features: int | None = None,
        reg_covar: float | None = None,
    ) -> None:
        self.covariances = covariances
        self.n_features = int(covariances.shape[-1]) if n_features is None else int(n_features)
        self._factor(reg_covar)

    # -- construction ----------------------------------------------------------------
    @abstractmethod
    def _factor(self, reg_covar: float | None) -> None:
        """Compute the Cholesky factor (raising CovarianceError if impossible)."""

    @classmethod
    @abstractmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        """M-step: the estimate from centred scatter ``sum_i r_ik (x_i - mu_k)(x_i - mu_k)^T``.

        Parameters
        ----------
        scatter : Tensor
            (K, D, D) for full/tied, (K, D) (the diagonals only) for diag/spherical.
        counts : Tensor of shape (K,)
            The summed responsibilities ``N_k``.
        reg_covar : float
            Added to every variance after dividing by the counts.

        Returns
        -------
        Covariance
            ``scatter / N_k + reg_covar`` in this kind's layout (tied: pooled over components,
            spherical: averaged over features).

        Raises
        ------
        CovarianceError
            If the estimate cannot be factored.

        See Also
        --------
        Covariance.moments, mixtorch.stats.SufficientStatistics.m_step
        """

    @classmethod
    @abstractmethod
    def from_precisions(cls, precisions: Tensor, n_features: int) -> Covariance:
        """Build from precisions in scikit-learn's layout (``precisions_init``).

        Parameters
        ----------
        precisions : Tensor
            Inverse covariances in this kind's layout.
        n_features : int
            D.

        Returns
        -------
        Covariance
            The covariances those precisions invert.

        See Also
        --------
        Covariance.precisions : The way back.
        """

    @classmethod
    @abstractmethod
    def n_parameters(cls, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters.

        Parameters
        ----------
        n_components : int
            K.
        n_features : int
            D.

        Returns
        -------
        int
            K D (D + 1) / 2 'full', D (D + 1) / 2 'tied', K D 'diag', K 'spherical'.

        See Also
        --------
        mixtorch.Mixture.n_parameters : Adds weights and means.
        """

    # -- evaluation ------------------------------------------------------------------
    @abstractmethod
    def log_det(self) -> Tensor:
        """log|Sigma_k| of every component.

        Returns
        -------
        Tensor of shape (K,)
            A 0-d tensor for 'tied'.

        See Also
        --------
        Covariance.log_gaussian
        """

    @abstractmethod
    def mahalanobis(self, Y: Tensor, means: Tensor) -> Tensor:
        """Squared Mahalanobis distances of rows of ``Y`` to ``means``.

        Parameters
        ----------
        Y : Tensor of shape (n, D)
            Rows (shifted as ``means`` are).
        means : Tensor of shape (K, D)
            Component means.

        Returns
        -------
        Tensor of shape (n, K)
            ``(y_i - m_k)^T Sigma_k^-1 (y_i - m_k)``.

        See Also
        --------
        Covariance.log_gaussian
        """

    def log_gaussian(self, Y: Tensor, means: Tensor, log_weights: Tensor) -> Tensor:
        """``log w_k + log N(y_i | m_k, Sigma_k)`` for shifted rows and means.

        Parameters
        ----------
        Y : Tensor of shape (n, D)
            Rows, shifted by the same point as ``means``.
        means : Tensor of shape (K, D)
            Component means.
        log_weights : Tensor of shape (K,)
            Log mixing proportions (zeros for unweighted densities).

        Returns
        -------
        Tensor of shape (n, K)
            Weighted log-densities.

        See Also
        --------
        mixtorch.Mixture.component_log_prob
        """
        constant = gaussian_log_normaliser(self.n_features) + self.log_det()
        return log_weights - 0.5 * (self.mahalanobis(Y, means) + constant)

    @abstractmethod
    def e_step_kernel(self, center: Tensor, means: Tensor, log_weights: Tensor) -> EStepKernel:
        """The E-step of a mixture with this covariance, for rows shifted by ``center``.

        Parameters
        ----------
        center : Tensor of shape (D,)
            The shift point subtracted from every row.
        means : Tensor of shape (K, D)
            Component means relative to ``center``.
        log_weights : Tensor of shape (K,)
            Log mixing proportions.

        Returns
        -------
        EStepKernel
            Computes weighted log-probabilities of chunks (see :mod:`mixtorch.estep`).

        See Also
        --------
        mixtorch.Mixture.weighted_log_prob
        """

    def _bias(self, log_weights: Tensor) -> Tensor:
        """``log w_k - (D log 2 pi + log|S_k|) / 2``, shape (K,)."""
        return log_weights - 0.5 * (gaussian_log_normaliser(self.n_features) + self.log_det())

    @classmethod
    @abstractmethod
    def moments(
        cls, Y: Tensor, responsibilities: Tensor, reference: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Weighted first and second moments of a chunk about ``reference``.

        Parameters
        ----------
        Y : Tensor of shape (n, D)
            A chunk of (shifted) rows.
        responsibilities : Tensor of shape (n, K)
            Weights of every row for every component.
        reference : Tensor of shape (K, D)
            Points the moments are taken about; must be zero for diag and spherical (they
            accumulate about the shift point).

        Returns
        -------
        first : Tensor of shape (K, D)
            ``sum_i r_ik (y_i - ref_k)``.
        second : Tensor
            ``sum_i r_ik (y_i - ref_k)(y_i - ref_k)^T``: (K, D, D) for full and tied, the
            diagonals (K, D) for diag and spherical.

        See Also
        --------
        Covariance.from_scatter, mixtorch.stats.accumulate_statistics
        """

    def with_component_copied(self, source: int, target: int) -> Covariance:
        """A copy in which component ``target`` has the covariance of ``source``.

        Parameters
        ----------
        source : int
            Component whose covariance is copied.
        target : int
            Component that receives it.

        Returns
        -------
        Covariance
            The copy ('tied' returns itself: the matrix is shared).

        See Also
        --------
        Covariance.from_full_matrices
        """
        covariances = self.covariances.clone()
        covariances[target] = covariances[source]
        return type(self)(covariances, n_features=self.n_features)

    @abstractmethod
    def scale_noise(self, noise: Tensor, component: int) -> Tensor:
        """Map standard-normal rows to draws of N(0, Sigma_component).

        Parameters
        ----------
        noise : Tensor of shape (n, D)
            Standard-normal draws.
        component : int
            The component whose covariance scales them.

        Returns
        -------
        Tensor of shape (n, D)
            ``noise @ L^T`` with ``L`` the component's Cholesky factor.

        See Also
        --------
        mixtorch.Mixture.sample
        """

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Covariance:
        """A copy on another device and/or dtype.

        Parameters
        ----------
        device : str or torch.device, default=None
            Target device; None keeps the current one.
        dtype : torch.dtype, default=None
            Target dtype; None keeps the current one.

        Returns
        -------
        Covariance
            The same kind, factored again.

        See Also
        --------
        mixtorch.Mixture.to
        """
        moved = self.covariances.to(device=device, dtype=dtype)
        return type(self)(moved, n_features=self.n_features)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={tuple(self.covariances.shape)})"

"""The covariance in other forms: dense (K, D, D) matrices, scatter layouts, precisions
and their Cholesky factors (:class:`_MatrixForms`, a base of
:class:`~mixtorch.covariance.Covariance`; each kind implements them)."""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING

from torch import Tensor

if TYPE_CHECKING:
    from ._base import Covariance


class _MatrixForms:
    """Conversions of a covariance to and from dense matrices and precisions; every
    method is implemented by each kind."""

    @abstractmethod
    def full_matrices(self, n_components: int) -> Tensor:
        """Every component's covariance as a (K, D, D) matrix.

        Parameters
        ----------
        n_components : int
            K (a 'tied' matrix is repeated).

        Returns
        -------
        Tensor of shape (K, D, D)
            Dense covariances.

        See Also
        --------
        Covariance.from_full_matrices : The way back.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import SphericalCovariance
        >>> SphericalCovariance(torch.tensor([2.0]), n_features=2).full_matrices(1)
        tensor([[[2., 0.],
                 [0., 2.]]])
        """

    @classmethod
    @abstractmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        """This kind's covariance from (K, D, D) matrices that have its structure.

        Exact when the matrices have this kind's structure (diagonal for ``diag``, a
        multiple of the identity for ``spherical``, one matrix for all components for
        ``tied``), as marginals and conditionals of such matrices do.

        Parameters
        ----------
        matrices : Tensor of shape (K, D, D)
            Dense symmetric positive-definite matrices.

        Returns
        -------
        Covariance
            Of this kind.

        See Also
        --------
        Covariance.full_matrices : The way back.
        mixtorch.Mixture.marginal, mixtorch.Mixture.condition
        """

    @classmethod
    @abstractmethod
    def scatter_from_dense(cls, scatter: Tensor) -> Tensor:
        """This kind's scatter layout (see :meth:`from_scatter`) from (K, D, D) matrices.

        Parameters
        ----------
        scatter : Tensor of shape (K, D, D)
            Dense scatter matrices.

        Returns
        -------
        Tensor
            (K, D, D) for full/tied, the diagonals (K, D) for diag/spherical.

        See Also
        --------
        Covariance.from_scatter
        """

    @abstractmethod
    def precisions(self) -> Tensor:
        """Inverse covariances in scikit-learn's layout.

        Returns
        -------
        Tensor
            Same layout as ``covariances`` (scikit-learn's ``precisions_``).

        See Also
        --------
        Covariance.precisions_cholesky, Covariance.from_precisions

        Examples
        --------
        >>> import torch
        >>> from mixtorch import DiagCovariance
        >>> DiagCovariance(torch.tensor([[4.0, 0.5]])).precisions()
        tensor([[0.2500, 2.0000]])
        """

    @abstractmethod
    def precisions_cholesky(self) -> Tensor:
        """scikit-learn's ``precisions_cholesky_`` (upper factors for full/tied).

        Returns
        -------
        Tensor
            Same layout as ``covariances``; for diag/spherical the inverse standard
            deviations.

        See Also
        --------
        Covariance.precisions
        """

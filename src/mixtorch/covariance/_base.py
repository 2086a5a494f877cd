"""The :class:`Covariance` base type, its error and the factoring helpers the kinds share."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from .._wishart import _Variational
from ..estep import EStepKernel
from ._kinds import _KindOperations

_ADVICE = (
    "Increase reg_covar, use fewer components or a simpler covariance_type, "
    "or scale the data (e.g. sklearn.preprocessing.StandardScaler)."
)


class CovarianceError(ValueError):
    """A covariance matrix could not be factored (not positive definite).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance, CovarianceError
    >>> singular = torch.tensor([[[1.0, 1.0], [1.0, 1.0]]], dtype=torch.float64)
    >>> try:
    ...     FullCovariance(singular)
    ... except CovarianceError as error:
    ...     print(type(error).__name__, isinstance(error, ValueError))
    ...
    CovarianceError True
    """


class Covariance(_KindOperations, _Variational):
    """Covariance of every component of a mixture, stored in scikit-learn's layout.

    Parameters
    ----------
    covariances : Tensor
        The covariance parameter in this kind's layout.
    reg_covar : float
        Only used to word the error message when the matrix cannot be factored.

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
        """M-step: the estimate from centred scatter ``sum_i r_ik (x_i - mu_k)(...)``.

        ``scatter`` is (K, D, D) for full/tied and (K, D) (diagonals only) otherwise;
        ``counts`` is (K,), the summed responsibilities.
        """

    @classmethod
    @abstractmethod
    def from_precisions(cls, precisions: Tensor, n_features: int) -> Covariance:
        """Build from precisions in scikit-learn's layout (``precisions_init``)."""

    @classmethod
    @abstractmethod
    def n_parameters(cls, n_components: int, n_features: int) -> int:
        """Number of free covariance parameters."""

    # -- evaluation ------------------------------------------------------------------
    @abstractmethod
    def log_det(self) -> Tensor:
        """log|Sigma_k|, shape (K,) (a 0-d tensor for ``tied``)."""

    @abstractmethod
    def mahalanobis(self, Y: Tensor, means: Tensor) -> Tensor:
        """Squared Mahalanobis distances, shape (n, K), of rows of ``Y`` to ``means``."""

    def log_gaussian(self, Y: Tensor, means: Tensor, log_weights: Tensor) -> Tensor:
        """``log w_k + log N(y_i | m_k, Sigma_k)``, shape (n, K), for shifted rows and means."""
        constant = gaussian_log_normaliser(self.n_features) + self.log_det()
        return log_weights - 0.5 * (self.mahalanobis(Y, means) + constant)

    @abstractmethod
    def e_step_kernel(self, center: Tensor, means: Tensor, log_weights: Tensor) -> EStepKernel:
        """The E-step of a mixture with this covariance, for rows shifted by ``center``.

        ``means`` are relative to ``center``. See :mod:`mixtorch.estep`.
        """

    def _bias(self, log_weights: Tensor) -> Tensor:
        """``log w_k - (D log 2 pi + log|S_k|) / 2``, shape (K,)."""
        return log_weights - 0.5 * (gaussian_log_normaliser(self.n_features) + self.log_det())

    @classmethod
    @abstractmethod
    def moments(
        cls, Y: Tensor, responsibilities: Tensor, reference: Tensor
    ) -> tuple[Tensor, Tensor]:
        """Weighted first and second moments of a chunk about ``reference`` (K, D).

        Returns ``sum_i r_ik (y_i - ref_k)`` (K, D) and
        ``sum_i r_ik (y_i - ref_k)(y_i - ref_k)^T``: (K, D, D) for full and tied, the
        diagonals (K, D) for diag and spherical. Diag and spherical require a zero
        ``reference`` (they accumulate about the shift point).
        """

    def with_component_copied(self, source: int, target: int) -> Covariance:
        """A copy in which component ``target`` has the covariance of ``source``."""
        covariances = self.covariances.clone()
        covariances[target] = covariances[source]
        return type(self)(covariances, n_features=self.n_features)

    @abstractmethod
    def scale_noise(self, noise: Tensor, component: int) -> Tensor:
        """Map standard-normal rows to draws of N(0, Sigma_component)."""

    @abstractmethod
    def full_matrices(self, n_components: int) -> Tensor:
        """Every component's covariance as a (K, D, D) matrix."""

    @classmethod
    @abstractmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        """This kind's covariance from (K, D, D) matrices that have its structure.

        Exact when the matrices have this kind's structure (diagonal for ``diag``, a
        multiple of the identity for ``spherical``, one matrix for all components for
        ``tied``), as marginals and conditionals of such matrices do.
        """

    @classmethod
    @abstractmethod
    def scatter_from_dense(cls, scatter: Tensor) -> Tensor:
        """This kind's scatter layout (see :meth:`from_scatter`) from (K, D, D) matrices."""

    @abstractmethod
    def precisions(self) -> Tensor:
        """Inverse covariances in scikit-learn's layout."""

    @abstractmethod
    def precisions_cholesky(self) -> Tensor:
        """scikit-learn's ``precisions_cholesky_`` (upper factors for full/tied)."""

    def to(
        self, device: torch.device | str | None = None, dtype: torch.dtype | None = None
    ) -> Covariance:
        """A copy on another device and/or dtype."""
        moved = self.covariances.to(device=device, dtype=dtype)
        return type(self)(moved, n_features=self.n_features)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(shape={tuple(self.covariances.shape)})"


def _cholesky_or_raise(matrices: Tensor, reg_covar: float | None, what: str) -> Tensor:
    factor, info = torch.linalg.cholesky_ex(matrices)
    bad = torch.nonzero(info.reshape(-1) != 0).flatten()
    if bad.numel() or not bool(torch.isfinite(factor).all()):
        which = ", ".join(str(int(i)) for i in bad[:10]) if bad.numel() else "?"
        reg = f" even with reg_covar={reg_covar:g}" if reg_covar is not None else ""
        raise CovarianceError(
            f"The covariance of {what} {which} is not positive definite{reg}, so it "
            f"cannot be factored. {_ADVICE}"
        )
    return factor


def _check_positive(variances: Tensor, reg_covar: float | None) -> None:
    bad = torch.nonzero(~(variances > 0).reshape(variances.shape[0], -1).all(dim=1)).flatten()
    if bad.numel() or not bool(torch.isfinite(variances).all()):
        which = ", ".join(str(int(i)) for i in bad[:10]) if bad.numel() else "?"
        reg = f" even with reg_covar={reg_covar:g}" if reg_covar is not None else ""
        raise CovarianceError(
            f"Component {which} has a variance that is not positive{reg}. {_ADVICE}"
        )


def _upper_inverse_factor(lower: Tensor) -> Tensor:
    """P = L^{-T}, so that Sigma^{-1} = P P^T and ||(x - mu) P||^2 is the Mahalanobis term."""
    eye = torch.eye(lower.shape[-1], dtype=lower.dtype, device=lower.device)
    eye = eye.expand_as(lower)
    return torch.linalg.solve_triangular(lower, eye, upper=False).mT


def _differences(Y: Tensor, means: Tensor) -> Tensor:
    """(K, n, D) differences y_i - mu_k."""
    return Y.unsqueeze(0) - means.unsqueeze(1)


def gaussian_log_normaliser(n_features: int) -> float:
    """D * log(2 pi), the constant of every Gaussian log-density."""
    return n_features * math.log(2.0 * math.pi)

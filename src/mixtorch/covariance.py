"""Covariance structures of a Gaussian mixture, one small type per kind.

Each type knows its own log-determinant, Mahalanobis term, M-step estimate, parameter
count, sampling transform and scikit-learn layout, so no other module dispatches on the
``covariance_type`` string except :func:`covariance_class`.

Layouts follow scikit-learn: ``full`` (K, D, D), ``tied`` (D, D), ``diag`` (K, D),
``spherical`` (K,).

The variational-Bayes (Normal-Wishart) behaviour of each kind is inherited from its
mixin in :mod:`mixtorch._wishart`.

Accuracy: :meth:`Covariance.log_gaussian` and :meth:`Covariance.moments` for ``full`` and
``tied`` work from explicit per-component differences, which stay accurate in float32
however far the components sit from each other. ``diag`` and ``spherical`` use matrix
products (the O(N*K*D) formulation); callers pass data shifted by a central point so that
float32 cancellation only depends on how far a component lies from that point in units of
its own standard deviation. The E-step used by EM lives in :mod:`mixtorch.estep`
(:meth:`Covariance.e_step_kernel`), which chooses between the two formulations for full
and tied covariances.
"""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import ClassVar

import torch
from torch import Tensor

from ._wishart import (
    NormalWishartPrior,
    _DiagVariational,
    _FullVariational,
    _SphericalVariational,
    _TiedVariational,
    _Variational,
)
from .estep import EStepKernel, diag_kernel, full_kernel

__all__ = [
    "COVARIANCE_TYPES",
    "Covariance",
    "CovarianceError",
    "DiagCovariance",
    "FullCovariance",
    "NormalWishartPrior",
    "SphericalCovariance",
    "TiedCovariance",
    "covariance_class",
]

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


class Covariance(_Variational):
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


def _with_ridge(matrices: Tensor, reg_covar: float) -> Tensor:
    eye = torch.eye(matrices.shape[-1], dtype=matrices.dtype, device=matrices.device)
    return matrices + reg_covar * eye


class FullCovariance(_FullVariational, Covariance):
    """A full covariance matrix per component, (K, D, D).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance
    >>> cov = FullCovariance(torch.tensor([[[4.0, 0.0], [0.0, 1.0]]], dtype=torch.float64))
    >>> cov.log_det().exp()
    tensor([4.], dtype=torch.float64)
    >>> cov.cholesky
    tensor([[[2., 0.],
             [0., 1.]]], dtype=torch.float64)
    """

    kind = "full"
    centred_per_component = True

    def _factor(self, reg_covar: float | None) -> None:
        self.cholesky = _cholesky_or_raise(self.covariances, reg_covar, "component")
        self._precision_factor = _upper_inverse_factor(self.cholesky)

    @classmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        covariances = _with_ridge(scatter / counts[:, None, None], reg_covar)
        return cls(covariances, reg_covar=reg_covar)

    @classmethod
    def from_precisions(cls, precisions: Tensor, n_features: int) -> Covariance:
        return cls(torch.linalg.inv(precisions))

    @classmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        return cls(matrices)

    @classmethod
    def n_parameters(cls, n_components: int, n_features: int) -> int:
        return n_components * n_features * (n_features + 1) // 2

    def log_det(self) -> Tensor:
        return 2.0 * torch.log(torch.diagonal(self.cholesky, dim1=-2, dim2=-1)).sum(-1)

    def mahalanobis(self, Y: Tensor, means: Tensor) -> Tensor:
        whitened = torch.bmm(_differences(Y, means), self._precision_factor)
        return whitened.square().sum(-1).T

    def e_step_kernel(self, center: Tensor, means: Tensor, log_weights: Tensor) -> EStepKernel:
        return full_kernel(center, means, self._precision_factor, self._bias(log_weights))

    @classmethod
    def moments(
        cls, Y: Tensor, responsibilities: Tensor, reference: Tensor
    ) -> tuple[Tensor, Tensor]:
        differences = _differences(Y, reference)
        weighted = differences * responsibilities.T.unsqueeze(-1)
        return weighted.sum(1), torch.bmm(weighted.mT, differences)

    def scale_noise(self, noise: Tensor, component: int) -> Tensor:
        return noise @ self.cholesky[component].T

    def full_matrices(self, n_components: int) -> Tensor:
        return self.covariances

    def precisions(self) -> Tensor:
        return self._precision_factor @ self._precision_factor.mT

    def precisions_cholesky(self) -> Tensor:
        return self._precision_factor


class TiedCovariance(_TiedVariational, FullCovariance):
    """One full covariance matrix shared by all components, (D, D).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import TiedCovariance
    >>> cov = TiedCovariance(torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64))
    >>> cov.full_matrices(3).shape
    torch.Size([3, 2, 2])
    """

    kind = "tied"

    def _factor(self, reg_covar: float | None) -> None:
        self.cholesky = _cholesky_or_raise(self.covariances[None], reg_covar, "the tied matrix")[0]
        self._precision_factor = _upper_inverse_factor(self.cholesky)

    @classmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        covariance = _with_ridge(scatter.sum(0) / counts.sum(), reg_covar)
        return cls(covariance, reg_covar=reg_covar)

    @classmethod
    def n_parameters(cls, n_components: int, n_features: int) -> int:
        return n_features * (n_features + 1) // 2

    @classmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        return cls(matrices[0])

    def mahalanobis(self, Y: Tensor, means: Tensor) -> Tensor:
        whitened = _differences(Y, means) @ self._precision_factor
        return whitened.square().sum(-1).T

    def with_component_copied(self, source: int, target: int) -> Covariance:
        return self

    def scale_noise(self, noise: Tensor, component: int) -> Tensor:
        return noise @ self.cholesky.T

    def full_matrices(self, n_components: int) -> Tensor:
        return self.covariances.expand(n_components, -1, -1)


class DiagCovariance(_DiagVariational, Covariance):
    """A diagonal covariance per component, stored as variances (K, D).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import DiagCovariance
    >>> cov = DiagCovariance(torch.tensor([[1.0, 4.0], [9.0, 1.0]], dtype=torch.float64))
    >>> cov.full_matrices(2)[1]
    tensor([[9., 0.],
            [0., 1.]], dtype=torch.float64)
    """

    kind = "diag"
    centred_per_component = False

    def _factor(self, reg_covar: float | None) -> None:
        _check_positive(self.covariances, reg_covar)
        self.cholesky = torch.sqrt(self.covariances)

    @classmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        return cls(scatter / counts[:, None] + reg_covar, reg_covar=reg_covar)

    @classmethod
    def from_precisions(cls, precisions: Tensor, n_features: int) -> Covariance:
        return cls(1.0 / precisions, n_features=n_features)

    @classmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        return cls(torch.diagonal(matrices, dim1=-2, dim2=-1).clone())

    @classmethod
    def n_parameters(cls, n_components: int, n_features: int) -> int:
        return n_components * n_features

    def _variances(self) -> Tensor:
        return self.covariances

    def log_det(self) -> Tensor:
        return torch.log(self.covariances).sum(-1)

    def mahalanobis(self, Y: Tensor, means: Tensor) -> Tensor:
        precisions = 1.0 / self._variances()
        squared = (Y * Y) @ precisions.T
        cross = Y @ (means * precisions).T
        offset = (means * means * precisions).sum(-1)
        return (squared - 2.0 * cross + offset).clamp_min_(0.0)

    def _log_gaussian_from_squares(
        self, Y: Tensor, squares: Tensor, means: Tensor, log_weights: Tensor
    ) -> Tensor:
        # Two matrix products and a broadcast bias: no elementwise pass over (n, K, D).
        precisions = 1.0 / self._variances()
        bias = log_weights - 0.5 * (
            (means * means * precisions).sum(-1)
            + self.log_det()
            + gaussian_log_normaliser(self.n_features)
        )
        log_prob = torch.addmm(bias, squares, (-0.5 * precisions).T)
        return log_prob.addmm_(Y, (means * precisions).T)

    def log_gaussian(self, Y: Tensor, means: Tensor, log_weights: Tensor) -> Tensor:
        return self._log_gaussian_from_squares(Y, Y * Y, means, log_weights)

    def e_step_kernel(self, center: Tensor, means: Tensor, log_weights: Tensor) -> EStepKernel:
        return diag_kernel(center, means, self._variances(), self._bias(log_weights))

    @classmethod
    def moments(
        cls, Y: Tensor, responsibilities: Tensor, reference: Tensor
    ) -> tuple[Tensor, Tensor]:
        return responsibilities.T @ Y, responsibilities.T @ (Y * Y)

    def scale_noise(self, noise: Tensor, component: int) -> Tensor:
        return noise * self.cholesky[component]

    def full_matrices(self, n_components: int) -> Tensor:
        return torch.diag_embed(self._variances().expand(n_components, -1))

    def precisions(self) -> Tensor:
        return 1.0 / self.covariances

    def precisions_cholesky(self) -> Tensor:
        return 1.0 / self.cholesky


class SphericalCovariance(_SphericalVariational, DiagCovariance):
    """One variance per component, (K,).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import SphericalCovariance
    >>> cov = SphericalCovariance(torch.tensor([1.0, 4.0], dtype=torch.float64), n_features=3)
    >>> cov.full_matrices(2)[1].diagonal()
    tensor([4., 4., 4.], dtype=torch.float64)
    """

    kind = "spherical"

    def _factor(self, reg_covar: float | None) -> None:
        _check_positive(self.covariances[:, None], reg_covar)
        self.cholesky = torch.sqrt(self.covariances)

    @classmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        variances = (scatter / counts[:, None]).mean(-1) + reg_covar
        return cls(variances, n_features=scatter.shape[-1], reg_covar=reg_covar)

    @classmethod
    def n_parameters(cls, n_components: int, n_features: int) -> int:
        return n_components

    @classmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        variances = torch.diagonal(matrices, dim1=-2, dim2=-1).mean(-1)
        return cls(variances, n_features=matrices.shape[-1])

    def log_det(self) -> Tensor:
        return self.n_features * torch.log(self.covariances)

    def _variances(self) -> Tensor:
        return self.covariances[:, None].expand(-1, self.n_features)

    def full_matrices(self, n_components: int) -> Tensor:
        eye = torch.eye(
            self.n_features, dtype=self.covariances.dtype, device=self.covariances.device
        )
        return self.covariances[:, None, None] * eye


COVARIANCE_TYPES: dict[str, type[Covariance]] = {
    cls.kind: cls for cls in (FullCovariance, TiedCovariance, DiagCovariance, SphericalCovariance)
}


def covariance_class(covariance_type: str) -> type[Covariance]:
    """The covariance type for a scikit-learn ``covariance_type`` string."""
    try:
        return COVARIANCE_TYPES[covariance_type]
    except KeyError:
        raise ValueError(
            f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {covariance_type!r}."
        ) from None


def gaussian_log_normaliser(n_features: int) -> float:
    """D * log(2 pi), the constant of every Gaussian log-density."""
    return n_features * math.log(2.0 * math.pi)

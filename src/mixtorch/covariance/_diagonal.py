"""Diagonal and spherical covariances: variances per feature (K, D) or per component (K,)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._wishart import _DiagVariational, _SphericalVariational
from ..estep import EStepKernel, diag_kernel
from ._base import Covariance
from ._factoring import _check_positive, gaussian_log_normaliser


class DiagCovariance(_DiagVariational, Covariance):
    """A diagonal covariance per component, stored as variances (K, D).

    Parameters
    ----------
    covariances : Tensor of shape (K, D)
        Positive variances.
    n_features : int, default=None
        D; None reads it from ``covariances``.
    reg_covar : float, default=None
        Only used to word the error message when ``covariances`` cannot be factored.

    Raises
    ------
    CovarianceError
        If a variance is not positive.

    See Also
    --------
    SphericalCovariance : One variance per component.
    FullCovariance : Correlated features.

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
    independent_features = True

    def _factor(self, reg_covar: float | None) -> None:
        _check_positive(self.covariances, reg_covar)
        self.cholesky = torch.sqrt(self.covariances)

    @classmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        return cls(cls.add_reg_covar(scatter / counts[:, None], reg_covar), reg_covar=reg_covar)

    @classmethod
    def from_precisions(cls, precisions: Tensor, n_features: int) -> Covariance:
        return cls(1.0 / precisions, n_features=n_features)

    @classmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        return cls(torch.diagonal(matrices, dim1=-2, dim2=-1).clone())

    @classmethod
    def scatter_from_dense(cls, scatter: Tensor) -> Tensor:
        return torch.diagonal(scatter, dim1=-2, dim2=-1).clone()

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

    Parameters
    ----------
    covariances : Tensor of shape (K,)
        Positive variances.
    n_features : int, default=None
        D; required here (None would read K from ``covariances``).
    reg_covar : float, default=None
        Only used to word the error message when ``covariances`` cannot be factored.

    Raises
    ------
    CovarianceError
        If a variance is not positive.

    See Also
    --------
    DiagCovariance : One variance per feature and component.

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
        variances = cls.add_reg_covar((scatter / counts[:, None]).mean(-1), reg_covar)
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

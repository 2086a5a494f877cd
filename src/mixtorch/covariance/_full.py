"""Full and tied covariances: Cholesky-factored matrices, (K, D, D) and (D, D)."""

from __future__ import annotations

import torch
from torch import Tensor

from .._wishart import _FullVariational, _TiedVariational
from ..estep import EStepKernel, full_kernel
from ._base import Covariance
from ._factoring import _cholesky_or_raise, _differences, _upper_inverse_factor


class FullCovariance(_FullVariational, Covariance):
    """A full covariance matrix per component, (K, D, D).

    Parameters
    ----------
    covariances : Tensor of shape (K, D, D)
        Symmetric positive-definite covariance matrices.
    n_features : int, default=None
        D; None reads it from ``covariances``.
    reg_covar : float, default=None
        Only used to word the error message when ``covariances`` cannot be factored.

    Raises
    ------
    CovarianceError
        If a covariance is not positive definite.

    See Also
    --------
    TiedCovariance : One matrix for all components.
    sklearn.mixture.GaussianMixture : ``covariance_type='full'``, same layout.

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
    independent_features = False

    def _factor(self, reg_covar: float | None) -> None:
        self.cholesky = _cholesky_or_raise(self.covariances, reg_covar, "component")
        self._precision_factor = _upper_inverse_factor(self.cholesky)

    @classmethod
    def from_scatter(cls, scatter: Tensor, counts: Tensor, reg_covar: float) -> Covariance:
        covariances = cls.add_reg_covar(scatter / counts[:, None, None], reg_covar)
        return cls(covariances, reg_covar=reg_covar)

    @classmethod
    def from_precisions(cls, precisions: Tensor, n_features: int) -> Covariance:
        return cls(torch.linalg.inv(precisions))

    @classmethod
    def from_full_matrices(cls, matrices: Tensor) -> Covariance:
        return cls(matrices)

    @classmethod
    def scatter_from_dense(cls, scatter: Tensor) -> Tensor:
        return scatter

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

    Parameters
    ----------
    covariances : Tensor of shape (D, D)
        Symmetric positive-definite covariance matrices.
    n_features : int, default=None
        D; None reads it from ``covariances``.
    reg_covar : float, default=None
        Only used to word the error message when ``covariances`` cannot be factored.

    Raises
    ------
    CovarianceError
        If a covariance is not positive definite.

    See Also
    --------
    FullCovariance : One matrix per component.

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
        covariance = cls.add_reg_covar(scatter.sum(0) / counts.sum(), reg_covar)
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

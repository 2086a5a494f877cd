"""Factoring covariances: :class:`CovarianceError` and the checks and helpers the kinds
share (Cholesky with a clear error, positive variances, inverse factors, differences,
the Gaussian normalising constant)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

__all__ = ["CovarianceError", "gaussian_log_normaliser"]


_ADVICE = (
    "Increase reg_covar, use fewer components or a simpler covariance_type, "
    "or scale the data (e.g. sklearn.preprocessing.StandardScaler)."
)


class CovarianceError(ValueError):
    """A covariance matrix could not be factored (not positive definite).

    A ``ValueError``: raised when a fitted or given covariance has a non-positive
    variance or eigenvalue even after ``reg_covar``; the message names the component and
    suggests remedies (a larger ``reg_covar``, fewer components, a simpler
    ``covariance_type``, scaled data).

    See Also
    --------
    mixtorch.exceptions.DegenerateComponentWarning : A component that collapsed but could
        still be factored.

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


def _refuse_non_finite(values: Tensor, what: str) -> None:
    """A :class:`CovarianceError` naming the components (or matrices) whose covariance
    holds infinity or NaN: their data overflowed the dtype's arithmetic (squares of values
    near 1e154 in float64, 1e19 in float32), which a larger ``reg_covar`` cannot mend."""
    lost = ~torch.isfinite(values).reshape(values.shape[0], -1).all(dim=1)
    if bool(lost.any()):
        which = ", ".join(str(int(i)) for i in torch.nonzero(lost).flatten()[:10])
        named = what if what.startswith("the ") else f"{what} {which}"
        wider = ", or fit in float64 (dtype='float64')" if values.dtype != torch.float64 else ""
        dtype = str(values.dtype).removeprefix("torch.")
        raise CovarianceError(
            f"The covariance of {named} holds infinity or NaN in {dtype}. Estimated from "
            f"data, that means the data are too large for {dtype} arithmetic (their squares "
            "overflow): rescale them (e.g. with sklearn.preprocessing.StandardScaler)"
            f"{wider}. A covariance given directly must be finite."
        )


def _cholesky_or_raise(matrices: Tensor, reg_covar: float | None, what: str) -> Tensor:
    _refuse_non_finite(matrices.reshape(-1, *matrices.shape[-2:]), what)
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
    _refuse_non_finite(variances.reshape(variances.shape[0], -1), "component")
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

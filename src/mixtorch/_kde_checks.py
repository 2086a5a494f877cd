"""Checks and conversions of ``GaussianKDE``'s bandwidth arguments and data."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from ._validation import check_finite, check_sample_weight, real_values
from .fit import bandwidth as bw

__all__ = [
    "callable_factor",
    "data_covariance_or_none",
    "explicit_bandwidth",
    "shard_sample_weight",
    "squared",
    "union_sample_weight",
]

#: Smallest eigenvalue of the data's correlation matrix, in units of the dtype's machine
#: epsilon, below which a data-driven bandwidth is refused (see ``_check_full_rank``).
_RANK_TOLERANCE_EPS = 1000.0


def shard_sample_weight(sample_weight: Any, data: torch.Tensor) -> torch.Tensor:
    """One rank's ``sample_weight`` (float64, unscaled), checked as a single-process fit
    checks it except that all of it may be zero: inside a process group only the union's
    weights need a positive sum (:func:`union_sample_weight`), and points of zero weight
    are dropped from the union as from any fit."""
    weights = torch.as_tensor(real_values(sample_weight, "sample_weight"))
    weights = weights.detach().to(device=data.device, dtype=torch.float64)
    shaped = weights.ndim == 1 and weights.shape[0] == data.shape[0]
    if shaped and bool((weights == 0).all()):  # finite and non-negative: only the sum fails
        return weights
    check_sample_weight(weights, data)
    return weights


def union_sample_weight(weights: torch.Tensor, data: torch.Tensor) -> torch.Tensor:
    """The gathered weights of every rank's points (float64, checked by
    :func:`shard_sample_weight` on each rank) scaled to sum to one in ``data``'s dtype, as
    a single-process fit scales them; a ValueError when they are all zero, which every
    rank raises (they all hold the same union)."""
    if not bool((weights > 0).any()):
        raise ValueError(
            "sample_weight sums to zero over the union of the ranks' points (every rank's "
            "weights are 0): the weights of at least one point must be positive."
        )
    checked = check_sample_weight(weights, data)
    return checked / checked.sum()


def data_covariance_or_none(
    data: torch.Tensor, weights: torch.Tensor, required: bool
) -> torch.Tensor | None:
    if data.shape[0] < 2:
        if required:
            raise ValueError("A data-driven bandwidth needs at least two points.")
        return None
    n, d = data.shape
    if required and n <= d:
        raise ValueError(
            f"A data-driven bandwidth needs more points than dimensions, got {n} points of "
            f"dimension {d} (their covariance is singular). GaussianKDE.fit takes points as "
            "the rows of an (n_samples, n_features) array, the transpose of SciPy's "
            "gaussian_kde dataset; with that many features, give an explicit bandwidth."
        )
    covariance = bw.data_covariance(data, weights)
    if required:
        _check_scale(covariance, data)
        _check_full_rank(covariance, data.dtype)
    return covariance


def _check_scale(covariance: torch.Tensor, data: torch.Tensor) -> None:
    """Refuse features that vary but whose variance leaves the float range (values of
    order 1e-200 or 1e200): the data are badly scaled, not degenerate."""
    variances = torch.diagonal(covariance).detach().to(torch.float64)
    varies = (data.amax(0) > data.amin(0)).to(variances.device)
    lost = varies & ((variances <= 0) | ~torch.isfinite(variances))
    if bool(lost.any()):
        features = torch.nonzero(lost).flatten().tolist()
        raise ValueError(
            f"Feature(s) {features} vary, but their variance is "
            f"{'0' if bool((variances[lost] <= 0).all()) else 'not finite'} in "
            f"{str(data.dtype).removeprefix('torch.')}: the values are too small or too large "
            "for a data-driven bandwidth to be computed. Rescale the data (e.g. with "
            "sklearn.preprocessing.StandardScaler), or give an explicit bandwidth."
        )


def _check_full_rank(covariance: torch.Tensor, dtype: torch.dtype) -> None:
    """Refuse data that lie (numerically) in a lower-dimensional subspace
    (:class:`numpy.linalg.LinAlgError`, a :class:`ValueError`).

    The test is on the smallest eigenvalue of the data's correlation matrix (scale-free,
    computed in float64, so the decision does not depend on the rounding of one draw):
    below ``1000 eps`` of the data dtype (2.2e-13 in float64, 1.2e-4 in float32) the data
    are called degenerate. Points placed exactly on a line are always below it (their
    rounding leaves eigenvalues near ``eps**2``).
    """
    cov64 = covariance.detach().to(torch.float64)
    scale = torch.diagonal(cov64).clamp_min(0.0).sqrt()
    tolerance = _RANK_TOLERANCE_EPS * torch.finfo(dtype).eps
    smallest = 0.0
    if bool((scale > 0).all()):
        correlation = cov64 / scale[:, None] / scale[None, :]
        smallest = float(torch.linalg.eigvalsh(correlation)[0])
    if not smallest > tolerance:  # LinAlgError is a ValueError, and SciPy's type here
        raise np.linalg.LinAlgError(
            "The data lie in a lower-dimensional subspace (a constant feature, or features "
            f"that are linear combinations of others: smallest eigenvalue of the data's "
            f"correlation matrix {smallest:.3g}, tolerance {tolerance:.3g}), so a "
            "data-driven bandwidth (a multiple of the data covariance) is singular. Drop "
            "or combine those features (e.g. with sklearn.decomposition.PCA), or give an "
            "explicit bandwidth (a float or a positive definite matrix)."
        )


def callable_factor(rule: Any, kde: Any) -> float:
    """SciPy's callable ``bw_method``: called with the estimator (``n``, ``d``, ``neff``)."""
    value = rule(kde)
    try:
        factor = float(value)
    except (TypeError, ValueError):
        raise TypeError(
            f"A callable bandwidth must return the scale factor as a number, got {value!r}."
        ) from None
    if not (math.isfinite(factor) and factor > 0):
        raise ValueError(f"A callable bandwidth returned {factor!r}; it must be positive.")
    return factor


def squared(value: float, name: str, dtype: torch.dtype = torch.float64) -> float:
    """``value**2`` for a positive scale, or a ValueError naming ``name`` when the square
    leaves the range of ``dtype``, the computation dtype (``value**2`` itself raises
    OverflowError there; a float32 kernel would round it to 0 or infinity)."""
    square = value * value
    rounded = float(torch.tensor(square, dtype=dtype)) if math.isfinite(square) else square
    if not (math.isfinite(rounded) and rounded > 0):
        single = dtype != torch.float64
        bounds = "1e-19 and 1e19" if single else "1e-150 and 1e150"
        hint = ", or compute in float64 (dtype='float64')" if single else ""
        raise ValueError(
            f"{name}={value!r} is out of range: its square ({square!r}) is not a positive "
            f"finite {str(dtype).removeprefix('torch.')}; use a scale between about {bounds} "
            f"(rescale the data if they need more{hint})."
        )
    return square


def _check_cast(given: torch.Tensor, matrix: torch.Tensor) -> None:
    """Refuse a finite bandwidth matrix whose entries overflow, or whose diagonal rounds
    to zero, in the computation dtype (float32: entries beyond about 1e-38 to 3e38)."""
    vanished = (torch.diagonal(given) != 0) & (torch.diagonal(matrix) == 0)
    if not bool(torch.isfinite(matrix).all()) or bool(vanished.any()):
        dtype = str(matrix.dtype).removeprefix("torch.")
        raise ValueError(
            f"The bandwidth matrix is out of the range of {dtype}: its entries overflow, "
            "or its diagonal rounds to zero. Compute in float64 (dtype='float64'), or "
            "rescale the data and the bandwidth."
        )


def explicit_bandwidth(value: Any, n_features: int, data: torch.Tensor) -> tuple[Any, float]:
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        h = float(value)
        if not (math.isfinite(h) and h > 0):
            raise ValueError(f"bandwidth must be positive and finite, got {value!r}.")
        eye = torch.eye(n_features, dtype=data.dtype, device=data.device)
        return eye * squared(h, "bandwidth", data.dtype), h
    try:
        given = real_values(value, "bandwidth")
    except (TypeError, ValueError) as error:
        raise type(error)(
            f"{str(error).rstrip('.')}; give a rule name ('scott', 'silverman', 'loo'), "
            f"a float or a ({n_features}, {n_features}) matrix."
        ) from None
    given = torch.as_tensor(given).detach().to(device=data.device)
    matrix = given.to(data.dtype)
    if matrix.ndim == 0:
        return explicit_bandwidth(float(given), n_features, data)
    if tuple(matrix.shape) != (n_features, n_features):
        raise ValueError(
            f"A bandwidth matrix must have shape ({n_features}, {n_features}), got "
            f"{tuple(matrix.shape)}: one row and column per feature, or give a float "
            "(a kernel width) or a rule name ('scott', 'silverman', 'loo')."
        )
    check_finite(given, "bandwidth")
    _check_cast(given, matrix)
    if not bool(torch.allclose(matrix, matrix.T)):
        raise ValueError(
            "The bandwidth matrix must be symmetric (it is the kernel's covariance); "
            "give (B + B.T) / 2 if B is symmetric up to rounding."
        )
    if int(torch.linalg.cholesky_ex(matrix).info) != 0:
        raise ValueError(
            "The bandwidth matrix must be positive definite (it is the kernel's covariance): "
            "every eigenvalue positive, e.g. a positive multiple of the data covariance."
        )
    return matrix, 1.0

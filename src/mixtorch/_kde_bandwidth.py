"""``GaussianKDE``'s bandwidth choice: an explicit value, a rule of thumb, a SciPy-style
callable or the leave-one-out search, turned into a kernel covariance ``H``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ._kde_checks import callable_factor, explicit_bandwidth, squared
from .covariance import TiedCovariance
from .fit import bandwidth as bw

__all__ = ["BandwidthChoice", "choose_bandwidth"]

_RULES = ("scott", "silverman")


@dataclass(frozen=True)
class BandwidthChoice:
    """The chosen kernel covariance and what the choice found out.

    Attributes
    ----------
    matrix : Tensor of shape (D, D)
        The kernel covariance ``H``.
    factor : float
        ``H = factor**2 * data_covariance`` for the rules, a callable and 'loo'; the
        scalar for a float bandwidth, 1.0 for a matrix.
    loo_curve : tuple of two arrays of shape (n_grid,), or None
        (factors, leave-one-out log-likelihoods) of the scalar search ('loo' only).
    loo_log_likelihood : float or None
        Leave-one-out log-likelihood of ``matrix`` ('loo' only).
    """

    matrix: torch.Tensor
    factor: float
    loo_curve: tuple[Any, Any] | None = None
    loo_log_likelihood: float | None = None


def choose_bandwidth(
    bandwidth: Any,
    data: torch.Tensor,
    weights: torch.Tensor,
    covariance: torch.Tensor | None,
    *,
    loo_type: str,
    loo_max_iter: int,
    owner: Any,
) -> BandwidthChoice:
    """The kernel covariance ``bandwidth`` asks for (see ``GaussianKDE``'s parameters).

    Parameters
    ----------
    bandwidth : str, float, array of shape (D, D) or callable
    data : Tensor of shape (n_samples, n_features)
    weights : Tensor of shape (n_samples,)
        Normalised sample weights.
    covariance : Tensor of shape (D, D) or None
        The weighted data covariance; needed (not None) for every data-driven bandwidth.
    loo_type, loo_max_iter : as ``GaussianKDE``'s
    owner : object
        What a callable bandwidth is called with (SciPy passes the ``gaussian_kde``).

    Returns
    -------
    BandwidthChoice

    Examples
    --------
    >>> import torch
    >>> data = torch.tensor([[0.0], [1.0], [3.0], [4.0]], dtype=torch.float64)
    >>> weights = torch.full((4,), 0.25, dtype=torch.float64)
    >>> covariance = torch.cov(data.T).reshape(1, 1)
    >>> choice = choose_bandwidth(
    ...     "scott", data, weights, covariance, loo_type="scalar", loo_max_iter=0, owner=None
    ... )
    >>> round(choice.factor, 6) == round(4 ** (-1 / 5), 6)
    True
    >>> bool(torch.allclose(choice.matrix, covariance * choice.factor**2))
    True
    """
    n_features = data.shape[1]
    if not (isinstance(bandwidth, str) or callable(bandwidth)):
        return BandwidthChoice(*explicit_bandwidth(bandwidth, n_features, data))
    assert covariance is not None
    n_effective = bw.effective_n(weights)
    if callable(bandwidth):
        factor = callable_factor(bandwidth, owner)
        return BandwidthChoice(covariance * squared(factor, "bandwidth factor", data.dtype), factor)
    if bandwidth in _RULES:
        factor = bw.rule_of_thumb_factor(bandwidth, n_effective, n_features)
        return BandwidthChoice(covariance * factor**2, factor)
    return _loo_bandwidth(data, weights, covariance, n_effective, loo_type, loo_max_iter)


def _loo_bandwidth(
    data: torch.Tensor,
    weights: torch.Tensor,
    covariance: torch.Tensor,
    n_effective: float,
    loo_type: str,
    loo_max_iter: int,
) -> BandwidthChoice:
    """The leave-one-out search: a scalar factor of the data covariance, then (for
    ``loo_type`` 'diag' or 'full') a matrix refined from it."""
    copies = bw.duplicate_labels(data)
    scott = bw.rule_of_thumb_factor("scott", n_effective, data.shape[1])
    base = TiedCovariance(covariance)
    Z = (data - bw.weighted_mean(data, weights)) @ base.precisions_cholesky()
    result = bw.optimise_loo_factor(Z, weights, float(base.log_det()), scott, copies)
    curve = (result.factors, result.log_likelihoods)
    H, log_likelihood = covariance * result.factor**2, result.log_likelihood
    if loo_type != "scalar":
        matrix, value = bw.optimise_loo_matrix(
            data, weights, H, loo_type, max_iter=loo_max_iter, copies=copies
        )
        # The scalar optimum is a candidate too, so the result is never worse.
        if value > log_likelihood:
            H, log_likelihood = matrix, value
    return BandwidthChoice(H, result.factor, curve, log_likelihood)

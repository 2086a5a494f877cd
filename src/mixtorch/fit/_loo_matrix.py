"""Leave-one-out likelihood of a matrix bandwidth and its gradient ascent (the ``'diag'``
and ``'full'`` shapes of :mod:`mixtorch.fit.bandwidth`)."""

from __future__ import annotations

import math

import torch
from torch import Tensor

from ._bandwidth_data import copy_weight, weighted_mean

__all__ = ["loo_log_likelihood_matrix", "optimise_loo_matrix"]


def loo_log_likelihood_matrix(
    X: Tensor, weights: Tensor, cholesky: Tensor, copies: Tensor | None = None
) -> Tensor:
    """Differentiable LOO log-likelihood for a kernel covariance ``L L^T`` (``cholesky``).

    Holds the (N, N) distance matrix, so it is meant for the moderate N where a matrix
    bandwidth is worth optimising.

    Parameters
    ----------
    X : Tensor of shape (N, D)
        The data (not whitened).
    weights : Tensor of shape (N,)
        Normalised weights.
    cholesky : Tensor of shape (D, D)
        Lower Cholesky factor ``L`` of the kernel covariance.
    copies : Tensor of shape (N,), optional
        Labels from :func:`~mixtorch.fit.bandwidth.duplicate_labels`.

    Returns
    -------
    Tensor of shape ()
        The LOO log-likelihood, differentiable with respect to ``cholesky``.

    See Also
    --------
    mixtorch.fit.bandwidth.loo_log_likelihood : The scalar-factor version, chunked.
    optimise_loo_matrix : Maximises it.

    Examples
    --------
    A scalar bandwidth gives the value of the scalar version:

    >>> import torch
    >>> from mixtorch.fit.bandwidth import loo_log_likelihood, loo_log_likelihood_matrix
    >>> X = torch.tensor([[0.0, 1.0], [1.0, 0.0], [3.0, 2.0]], dtype=torch.float64)
    >>> weights = torch.full((3,), 1 / 3, dtype=torch.float64)
    >>> matrix = loo_log_likelihood_matrix(X, weights, 0.5 * torch.eye(2, dtype=torch.float64))
    >>> scalar = loo_log_likelihood(X, weights, torch.tensor([0.5]), log_det_base=0.0)
    >>> bool(torch.isclose(matrix, scalar[0]))
    True
    """
    n, d = X.shape
    Z = torch.linalg.solve_triangular(cholesky, (X - weighted_mean(X, weights)).T, upper=False).T
    norms = Z.square().sum(1)
    distances = (norms[:, None] + norms[None, :] - 2.0 * Z @ Z.T).clamp(min=0.0)
    if copies is None:
        left_out = torch.eye(n, dtype=torch.bool, device=X.device)
    else:
        left_out = copies[:, None] == copies[None, :]
    log_kernel = torch.log(weights)[None, :] - 0.5 * distances.masked_fill(left_out, math.inf)
    log_sum = torch.logsumexp(log_kernel, dim=1) - torch.log1p(-copy_weight(weights, copies))
    log_det = torch.log(torch.diagonal(cholesky)).sum()
    return n * ((weights * log_sum).sum() - 0.5 * d * math.log(2 * math.pi) - log_det)


def optimise_loo_matrix(
    X: Tensor,
    weights: Tensor,
    start: Tensor,
    shape: str,
    max_iter: int = 200,
    learning_rate: float = 0.05,
    copies: Tensor | None = None,
) -> tuple[Tensor, float]:
    """Gradient ascent (Adam) of the LOO log-likelihood over a diagonal or full bandwidth.

    Parameters
    ----------
    X : Tensor of shape (N, D)
        The data.
    weights : Tensor of shape (N,)
        Normalised weights.
    start : Tensor of shape (D, D)
        Starting kernel covariance (the scalar LOO optimum).
    shape : {'diag', 'full'}
        Which bandwidth matrices are searched (for 'diag' only ``start``'s diagonal is
        used).
    max_iter : int, default=200
        Adam steps.
    learning_rate : float, default=0.05
        Adam's step size, on the log-diagonal and the lower triangle of ``L``.
    copies : Tensor of shape (N,), optional
        Labels from :func:`~mixtorch.fit.bandwidth.duplicate_labels` (every copy of a
        held-out point left out).

    Returns
    -------
    bandwidth : Tensor of shape (D, D)
        The best kernel covariance seen, so the result is never worse than ``start``.
    log_likelihood : float
        Its LOO log-likelihood.

    Raises
    ------
    ValueError
        If ``shape`` is not 'diag' or 'full'.

    See Also
    --------
    loo_log_likelihood_matrix : The objective.
    mixtorch.fit.bandwidth.optimise_loo_factor : The scalar search that gives ``start``.

    References
    ----------
    .. [1] D. P. Kingma and J. Ba (2015), "Adam: a method for stochastic optimization",
       *ICLR*.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.bandwidth import loo_log_likelihood_matrix, optimise_loo_matrix
    >>> noise = torch.Generator().manual_seed(0)
    >>> X = torch.randn(40, 2, generator=noise).double() * torch.tensor([1.0, 5.0]).double()
    >>> weights = torch.full((40,), 1 / 40, dtype=torch.float64)
    >>> start = torch.eye(2, dtype=torch.float64)
    >>> bandwidth, value = optimise_loo_matrix(X, weights, start, "diag", max_iter=50)
    >>> start_value = loo_log_likelihood_matrix(X, weights, torch.eye(2, dtype=torch.float64))
    >>> value > float(start_value), bool(bandwidth[1, 1] > bandwidth[0, 0])  # wider along x2
    (True, True)
    """
    if shape not in ("diag", "full"):
        raise ValueError(f"shape must be 'diag' or 'full', got {shape!r}.")
    X64, w64 = X.detach().to(torch.float64), weights.detach().to(torch.float64)
    start64 = start.detach().to(torch.float64)
    if shape == "diag":
        start64 = torch.diag(torch.diagonal(start64))
    factor = torch.linalg.cholesky(start64)
    log_diagonal = torch.log(torch.diagonal(factor)).clone().requires_grad_(True)
    lower = torch.tril(factor, -1).clone().requires_grad_(shape == "full")
    params = [log_diagonal, lower] if shape == "full" else [log_diagonal]
    optimizer = torch.optim.Adam(params, lr=learning_rate)

    def cholesky_of_params() -> Tensor:
        return torch.diag(torch.exp(log_diagonal)) + torch.tril(lower, -1)

    best_value = -math.inf
    best = cholesky_of_params().detach()
    for _ in range(int(max_iter) + 1):
        optimizer.zero_grad()
        L = cholesky_of_params()
        value = loo_log_likelihood_matrix(X64, w64, L, copies)
        current = float(value.detach())
        if current > best_value:
            best_value, best = current, L.detach().clone()
        (-value).backward()
        optimizer.step()
    return (best @ best.T).to(X.dtype), best_value

"""Marginals and conditionals of Gaussian mixtures.

For a mixture ``p(x) = sum_k w_k N(x | mu_k, S_k)`` and a split of the features into
*given* ones ``g`` and *free* ones ``f``:

- the marginal over ``f`` keeps the weights and takes the ``f`` block of every mean and
  covariance;
- the conditional ``p(x_f | x_g = v)`` is again a mixture, with weights
  ``w_k N(v | mu_kg, S_kgg)`` renormalised, means ``mu_kf + S_kfg S_kgg^{-1} (v - mu_kg)``
  and covariances ``S_kff - S_kfg S_kgg^{-1} S_kgf`` (the Schur complement), which do not
  depend on ``v``.

Marginals and conditionals of diagonal, spherical and tied covariances have the same
structure, so every result keeps its covariance kind
(:meth:`~mixtorch.covariance.Covariance.from_full_matrices`). The blocks are solved with
Cholesky factors of ``S_kgg``, never explicit inverses, and the weights are computed in log
space from explicit differences, so float32 stays accurate.

The checks of feature indices and observed values are in :mod:`mixtorch._features`
(:func:`check_features` is re-exported here).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._features import as_rows, check_features, free_features
from ._mixture_checks import check_n_samples
from ._scoring import far_labels
from .covariance import Covariance

__all__ = ["Conditionals", "check_features", "condition", "marginal"]

#: Elements of the largest (rows, K, free features) block built at once.
_ELEMENT_BUDGET = 1 << 22


def marginal(means: Tensor, covariance: Covariance, features: Any) -> tuple[Tensor, Covariance]:
    """Means (K, d) and covariance of the marginal over ``features`` (in that order).

    The marginal of a Gaussian keeps the block of the chosen features [1]_; a mixture's
    marginal keeps its weights.

    Parameters
    ----------
    means : Tensor of shape (K, D)
        Component means.
    covariance : Covariance
        The components' covariances, of any kind.
    features : Tensor or sequence of int of shape (d,)
        Indices of the kept features, checked by :func:`check_features` (ValueError for
        out-of-range or repeated indices, TypeError for non-integers).

    Returns
    -------
    means : Tensor of shape (K, d)
        The kept columns of ``means``.
    covariance : Covariance
        The (d, d) blocks, of the same covariance kind.

    Raises
    ------
    TypeError
        If ``means`` is not a floating (K, D) tensor or ``covariance`` not a Covariance.
    ValueError
        If ``covariance`` is not of K components in D dimensions, or of another dtype or
        device than ``means``.

    See Also
    --------
    mixtorch.Mixture.marginal : The same on a :class:`~mixtorch.Mixture`.
    condition : Conditioning instead of integrating out.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 2.3.2.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance
    >>> from mixtorch.conditioning import marginal
    >>> means = torch.tensor([[0.0, 1.0, 2.0]], dtype=torch.float64)
    >>> cov = FullCovariance(torch.tensor([[[2.0, 0.5, 0.0], [0.5, 1.0, 0.0], [0.0, 0.0, 3.0]]],
    ...                                   dtype=torch.float64))
    >>> sub_means, sub_cov = marginal(means, cov, torch.tensor([2, 0]))
    >>> sub_means
    tensor([[2., 0.]], dtype=torch.float64)
    >>> sub_cov.covariances
    tensor([[[3., 0.],
             [0., 2.]]], dtype=torch.float64)
    """
    _check_parameters(None, means, covariance)
    index = check_features(features, means.shape[1]).to(means.device)
    matrices = covariance.full_matrices(means.shape[0])
    block = matrices.index_select(-2, index).index_select(-1, index)
    return means.index_select(1, index), type(covariance).from_full_matrices(block)


@dataclass
class Conditionals:
    """The conditional mixtures ``p(x_f | x_g = v_b)`` for a batch of rows ``v_b``.

    Built by :func:`condition` (or :meth:`mixtorch.Mixture.conditionals`); not usually
    constructed directly. The predictive mean and variance are those of Gaussian mixture
    regression [1]_.

    Attributes
    ----------
    log_weights : Tensor of shape (B, K)
        Normalised log-weights of the components given each row.
    means : Tensor of shape (B, K, F)
        Conditional means of every component for each row.
    covariance : Covariance
        The conditional covariances (the same for every row), of the original kind.
    free : Tensor of shape (F,)
        Indices of the free features in the original model.
    log_evidence : Tensor of shape (B,)
        ``log p(x_g = v_b)``, the marginal log-density of each row of given values.

    See Also
    --------
    condition : Computes them.
    mixtorch.GaussianMixtureRegressor : Predicts with :meth:`mean` and :meth:`variance`.

    References
    ----------
    .. [1] H. G. Sung (2004), "Gaussian mixture regression and classification", PhD
       thesis, Rice University.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import Mixture
    >>> mixture = Mixture.from_parameters([0.5, 0.5], [[-2.0, -2.0], [2.0, 2.0]],
    ...                                   [[[1.0, 0.9], [0.9, 1.0]]] * 2, dtype=torch.float64)
    >>> conditionals = mixture.conditionals([0], [[-2.0], [2.0]])
    >>> conditionals.mean().round(decimals=2)
    tensor([[-2.],
            [ 2.]], dtype=torch.float64)
    >>> conditionals.sample(5, generator=torch.Generator().manual_seed(0)).shape
    torch.Size([2, 5, 1])
    """

    log_weights: Tensor
    means: Tensor
    covariance: Covariance
    free: Tensor
    log_evidence: Tensor

    def mean(self) -> Tensor:
        """E[x_f | x_g = v_b], the weighted average of the component means.

        Returns
        -------
        Tensor of shape (B, F)
            One conditional mean per row of given values.

        See Also
        --------
        Conditionals.variance
        """
        weights = self.log_weights.exp().to(self.means.dtype)
        return torch.einsum("bk,bkf->bf", weights, _weighted_only(self.means, weights))

    def variance(self) -> Tensor:
        """Var[x_f | x_g = v_b] per free feature, by the law of total variance.

        Returns
        -------
        Tensor of shape (B, F)
            Within-component variance plus the spread of the component means.

        See Also
        --------
        Conditionals.mean

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.5], [0.5, 1.0]]],
        ...                                   dtype=torch.float64)
        >>> mixture.conditionals([0], [1.0]).variance()
        tensor([[0.7500]], dtype=torch.float64)
        """
        weights = self.log_weights.exp().to(self.means.dtype)
        K = self.means.shape[1]
        within = torch.diagonal(self.covariance.full_matrices(K), dim1=-2, dim2=-1)
        mean = torch.einsum("bk,bkf->bf", weights, _weighted_only(self.means, weights))
        spread = (self.means - mean[:, None, :]).square()
        return torch.einsum("bk,bkf->bf", weights, _weighted_only(spread + within[None], weights))

    def sample(self, n_samples: int, generator: torch.Generator | None = None) -> Tensor:
        """``n_samples`` draws from each row's conditional mixture.

        Parameters
        ----------
        n_samples : int
            Draws per row, at least 1 (ValueError otherwise; TypeError if not an integer).
        generator : torch.Generator, default=None
            Source of randomness; None uses torch's global generator.

        Returns
        -------
        Tensor of shape (B, n_samples, F)
            Draws for each row of given values.

        Raises
        ------
        MemoryError
            If the draws would not fit in the memory free on the device, before any
            allocation.

        See Also
        --------
        Conditionals.mean, mixtorch.GaussianMixtureRegressor.sample_y
        """
        B, K, F = self.means.shape
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        # Per draw and row: a uniform and a label (8 bytes each), the noise, the chosen
        # mean and the scaled noise (F values each) and the gathered factor (F x F).
        itemsize = torch.finfo(self.means.dtype).bits // 8
        row_bytes = max(B, 1) * (16 + itemsize * (3 * F + F * F))
        n_samples = check_n_samples(n_samples, row_bytes, self.means.device)
        device = self.means.device if generator is None else generator.device
        uniform = torch.rand(B, n_samples, dtype=torch.float64, device=device, generator=generator)
        cumulative = self.log_weights.exp().to(torch.float64).cumsum(1).to(device)
        labels = torch.searchsorted(cumulative, uniform).clamp_max(K - 1)
        labels = labels.to(self.means.device)
        chosen = torch.gather(self.means, 1, labels[:, :, None].expand(-1, -1, F))
        noise = torch.randn(
            B, n_samples, F, dtype=self.means.dtype, device=device, generator=generator
        ).to(self.means.device)
        factors = torch.linalg.cholesky(self.covariance.full_matrices(K))  # (K, F, F)
        scaled = torch.einsum("bsf,bsgf->bsg", noise, factors[labels])
        return chosen + scaled


def _weighted_only(values: Tensor, weights: Tensor) -> Tensor:
    """``values`` (B, K, F) with zero where a row's component has weight zero, so that a
    component with no weight adds nothing even where its values overflowed (the
    conditionals of points far out: 0 * inf would be NaN)."""
    return torch.where(weights[:, :, None] > 0, values, 0.0)


def condition(
    log_weights: Tensor,
    means: Tensor,
    covariance: Covariance,
    given: Any,
    values: Any,
) -> Conditionals:
    """The conditional mixtures given ``x[given] = values`` for each row of ``values``.

    Weights become ``w_k N(v | mu_kg, S_kgg)`` renormalised, means
    ``mu_kf + S_kfg S_kgg^-1 (v - mu_kg)`` and covariances the Schur complement
    ``S_kff - S_kfg S_kgg^-1 S_kgf`` [1]_ [2]_.

    Parameters
    ----------
    log_weights : Tensor of shape (K,)
        Log mixing proportions.
    means : Tensor of shape (K, D)
        Component means.
    covariance : Covariance
        The components' covariances, of any kind.
    given : Tensor or sequence of int of shape (G,)
        Indices of the observed features, checked by :func:`check_features` (at least one
        feature must stay free).
    values : Tensor or array-like of shape (B, G) or (G,)
        Observed values, one row per conditional; finite (ValueError otherwise).

    Returns
    -------
    Conditionals
        Weights, means and covariance of the B conditional mixtures.

    Raises
    ------
    TypeError
        If ``means``, ``covariance`` or ``log_weights`` is not what it must be (a floating
        (K, D) tensor, a Covariance, a (K,) tensor).
    ValueError
        If their shapes, dtypes or devices disagree, or ``log_weights`` are not
        normalised (``logsumexp`` 0).

    See Also
    --------
    mixtorch.Mixture.conditionals : The same on a :class:`~mixtorch.Mixture`.
    mixtorch.Mixture.condition : One row, as a Mixture.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 2.3.1.
    .. [2] Z. Ghahramani and M. I. Jordan (1994), "Supervised learning from incomplete
       data via an EM approach", *NIPS 6*.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance
    >>> from mixtorch.conditioning import condition
    >>> means = torch.zeros(1, 2, dtype=torch.float64)
    >>> cov = FullCovariance(torch.tensor([[[1.0, 0.8], [0.8, 1.0]]], dtype=torch.float64))
    >>> given = condition(torch.zeros(1, dtype=torch.float64), means, cov,
    ...                   torch.tensor([0]), torch.tensor([[1.0]], dtype=torch.float64))
    >>> given.mean(), given.variance()
    (tensor([[0.8000]], dtype=torch.float64), tensor([[0.3600]], dtype=torch.float64))
    """
    _check_parameters(log_weights, means, covariance)
    index = check_features(given, means.shape[1], leave_one=True)
    rows = as_rows(values, index.numel(), means.dtype, means.device)
    return condition_unchecked(log_weights, means, covariance, index, rows)


def _check_parameters(log_weights: Any, means: Any, covariance: Any) -> None:
    """The mixture parameters given to :func:`marginal` and :func:`condition`, checked as
    a :class:`~mixtorch.Mixture` holds them: tensors of one dtype and device, ``means``
    (K, D), ``covariance`` a :class:`~mixtorch.covariance.Covariance` of K components in
    D dimensions and ``log_weights`` (K,) normalised log-probabilities. (A covariance of
    more features than the means would otherwise be cut to its first block silently.)"""
    if not isinstance(means, Tensor) or means.ndim != 2 or not means.is_floating_point():
        raise TypeError(
            "means must be a floating tensor of shape (K, D), got "
            f"{_described(means)}; for NumPy values build a mixtorch.Mixture with "
            "Mixture.from_parameters and use its marginal() and conditionals()."
        )
    if not isinstance(covariance, Covariance):
        raise TypeError(
            "covariance must be a mixtorch.covariance.Covariance (e.g. FullCovariance), "
            f"got {type(covariance).__name__}."
        )
    K, D = means.shape
    try:  # a per-component covariance of another K cannot be expanded to K
        held = covariance.full_matrices(K).shape[0]
    except RuntimeError:
        held = -1
    if covariance.n_features != D or held != K:
        raise ValueError(
            f"covariance (of shape {tuple(covariance.covariances.shape)}, "
            f"{covariance.n_features} features) does not fit means of shape "
            f"{tuple(means.shape)}: it needs {K} components in {D} dimensions."
        )
    _check_like_means(covariance.covariances, "covariance", means)
    if log_weights is not None:
        _check_log_weights(log_weights, means)


def _check_like_means(value: Tensor, name: str, means: Tensor) -> None:
    if value.dtype != means.dtype or value.device != means.device:
        raise ValueError(
            f"{name} ({value.dtype} on {value.device}) must have the dtype and device of "
            f"means ({means.dtype} on {means.device})."
        )


def _check_log_weights(log_weights: Any, means: Tensor) -> None:
    """``log_weights``: a (K,) tensor like ``means`` whose exponentials sum to one."""
    K = means.shape[0]
    if not isinstance(log_weights, Tensor):
        raise TypeError(
            f"log_weights must be a tensor of shape ({K},), got a {type(log_weights).__name__}."
        )
    if log_weights.shape != (K,):
        raise ValueError(
            f"log_weights must be a tensor of shape ({K},), one per component, got "
            f"{_described(log_weights)}."
        )
    _check_like_means(log_weights, "log_weights", means)
    total = float(torch.logsumexp(log_weights, 0))
    if bool(torch.isnan(log_weights).any()) or not abs(total) <= _NORMALISED:
        raise ValueError(
            f"log_weights must be log mixing proportions (logsumexp 0), got logsumexp "
            f"{total:.6g}; normalise them, e.g. with torch.log_softmax(logits, 0)."
        )


#: How far ``logsumexp(log_weights)`` may be from 0 (rounding of weights summed to one).
_NORMALISED = 1e-4


def _described(value: Any) -> str:
    if isinstance(value, Tensor):
        return f"a {value.dtype} tensor of shape {tuple(value.shape)}"
    return f"a {type(value).__name__}"


def condition_unchecked(
    log_weights: Tensor,
    means: Tensor,
    covariance: Covariance,
    given: Tensor,
    values: Tensor,
) -> Conditionals:
    """:func:`condition` for arguments already checked: ``given`` valid int64 indices
    leaving a feature free, ``values`` a finite (B, G) tensor of the dtype of ``means``
    (as :meth:`mixtorch.Mixture.conditionals` and the missing-data fit pass them)."""
    K, D = means.shape
    free = free_features(given, D).to(means.device)
    given = given.to(means.device)
    matrices = covariance.full_matrices(K)
    given_block = matrices.index_select(-2, given).index_select(-1, given)  # (K, G, G)
    cross = matrices.index_select(-2, given).index_select(-1, free)  # (K, G, F)
    free_block = matrices.index_select(-2, free).index_select(-1, free)  # (K, F, F)
    factor = torch.linalg.cholesky(given_block)
    gain = torch.cholesky_solve(cross, factor)  # S_gg^{-1} S_gf, (K, G, F)
    conditional = free_block - cross.mT @ gain
    conditional = 0.5 * (conditional + conditional.mT)
    given_means, free_means = means.index_select(1, given), means.index_select(1, free)
    given_covariance = type(covariance).from_full_matrices(given_block)
    # Rows are shifted by the centre of the given means before any product (float32).
    centre = log_weights.exp() @ given_means
    kernel = given_covariance.e_step_kernel(centre, given_means - centre, log_weights)
    G, F = given.numel(), free.numel()
    slopes = gain.permute(1, 0, 2).reshape(G, K * F)  # one product gives every component
    offsets = free_means - torch.einsum("kg,kgf->kf", given_means - centre, gain)
    rows = max(1, _ELEMENT_BUDGET // max(1, K * (F + G)))
    B = values.shape[0]
    log_weights_out = torch.empty(B, K, dtype=means.dtype, device=means.device)
    evidence_out = torch.empty(B, dtype=means.dtype, device=means.device)
    means_out = torch.empty(B, K, F, dtype=means.dtype, device=means.device)
    for start in range(0, B, rows):
        chunk = values[start : start + rows]
        joint = kernel.weighted_log_prob(chunk)
        evidence = torch.logsumexp(joint, dim=1, out=evidence_out[start : start + rows])
        torch.sub(joint, evidence[:, None], out=log_weights_out[start : start + rows])
        torch.mm(chunk - centre, slopes, out=means_out[start : start + rows].view(-1, K * F))
        means_out[start : start + rows] += offsets
    kernel.release()
    far = ~torch.isfinite(evidence_out)
    if bool(far.any()):  # squares overflowed: the limit along the ray (see far_labels)
        labels = far_labels(values[far], centre, given_means - centre, given_covariance)
        log_weights_out[far] = torch.nn.functional.one_hot(labels, K).to(means.dtype).log()
        evidence_out[far] = -math.inf
    return Conditionals(
        log_weights_out,
        means_out,
        type(covariance).from_full_matrices(conditional),
        free,
        evidence_out,
    )

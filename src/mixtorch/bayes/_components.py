"""The component distributions of the Pyro mixture, one small type per covariance kind.

A family knows its latent sites, how the model samples them, the per-component
log-densities of data under a batch of draws, each draw's covariance matrices, the
log prior density of draws and a start from a k-means labelling. Families are looked up
by the covariance kinds of :mod:`mixtorch.covariance`, so no string is compared here.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

from ..covariance import Covariance, DiagCovariance, FullCovariance
from .prior import MixturePrior

__all__ = [
    "COMPONENT_FAMILIES",
    "ComponentFamily",
    "complete_draws",
    "component_family",
    "diag_weighted_log_prob",
    "full_weighted_log_prob",
]

_LOG_2PI = math.log(2 * math.pi)


def diag_weighted_log_prob(X: Tensor, weights: Tensor, locs: Tensor, scales: Tensor) -> Tensor:
    """``log w_k + log N(x_i | locs_k, diag(scales_k^2))`` batched over draws.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    weights : Tensor of shape (..., K)
    locs, scales : Tensor of shape (..., K, n_features)

    Returns
    -------
    Tensor of shape (..., n_samples, K)
    """
    z = (X[:, None, :] - locs.unsqueeze(-3)) / scales.unsqueeze(-3)
    per_feature = -0.5 * z.square() - torch.log(scales.unsqueeze(-3)) - 0.5 * _LOG_2PI
    return per_feature.sum(-1) + torch.log(weights).unsqueeze(-2)


def full_weighted_log_prob(X: Tensor, weights: Tensor, locs: Tensor, scale_tril: Tensor) -> Tensor:
    """``log w_k + log N(x_i | locs_k, L_k L_k^T)`` batched over draws.

    The residuals are solved against each lower-triangular factor with the samples in
    the last dimension, so no (n_samples, K, D, D) tensor is formed.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    weights : Tensor of shape (..., K)
    locs : Tensor of shape (..., K, n_features)
    scale_tril : Tensor of shape (..., K, n_features, n_features)
        Lower Cholesky factors of the covariances.

    Returns
    -------
    Tensor of shape (..., n_samples, K)
    """
    residuals = X.T - locs.unsqueeze(-1)  # (..., K, D, N)
    solved = torch.linalg.solve_triangular(scale_tril, residuals, upper=False)
    log_det = torch.log(torch.diagonal(scale_tril, dim1=-2, dim2=-1)).sum(-1)  # (..., K)
    per_component = (
        -0.5 * solved.square().sum(-2) - (log_det + 0.5 * X.shape[1] * _LOG_2PI)[..., None]
    )
    return (per_component + torch.log(weights).unsqueeze(-1)).transpose(-1, -2)


class ComponentFamily:
    """What the Bayesian mixture needs of one covariance kind (class-level methods only)."""

    covariance: ClassVar[type[Covariance]]
    #: latent sites in the order they are reported (``weights`` first)
    sites: ClassVar[tuple[str, ...]]

    @classmethod
    def sample_components(cls, prior: MixturePrior, n_features: int) -> dict[str, Tensor]:
        """Inside the model's ``components`` plate: every site but ``weights``."""
        locs = pyro.sample("locs", dist.Normal(prior.mean_loc, prior.mean_scale).to_event(1))
        scales = pyro.sample("scales", prior.scale_distribution().to_event(1))
        return {"locs": locs, "scales": scales}

    @classmethod
    def weighted_log_prob(cls, X: Tensor, draws: dict[str, Tensor]) -> Tensor:
        """Per-component weighted log-densities, (..., n_samples, K)."""
        raise NotImplementedError

    @classmethod
    def covariances(cls, draws: dict[str, Tensor]) -> Tensor:
        """Each draw's covariances in scikit-learn's layout of this kind."""
        raise NotImplementedError

    @classmethod
    def log_prior(cls, draws: dict[str, Tensor], prior: MixturePrior) -> Tensor:
        """Log prior density of each draw (batch shape of ``draws['weights'][..., 0]``)."""
        alpha = draws["weights"].new_full(draws["weights"].shape[-1:], prior.weight_concentration)
        total = dist.Dirichlet(alpha).log_prob(draws["weights"])
        total = total + dist.Normal(prior.mean_loc, prior.mean_scale).log_prob(draws["locs"]).sum(
            (-1, -2)
        )
        scales = prior.scale_distribution().log_prob(draws["scales"])
        return total + scales.sum((-1, -2))

    @classmethod
    def initial_scales(cls, X: Tensor, labels: Tensor, K: int) -> dict[str, Tensor]:
        """Per-cluster spreads of a k-means labelling (the sites other than weights/locs)."""
        counts = torch.bincount(labels, minlength=K)
        spread = X.std(0) if X.shape[0] > 1 else X.new_ones(X.shape[1])
        scales = torch.stack([X[labels == k].std(0) if counts[k] > 1 else spread for k in range(K)])
        scales = torch.where(scales > 0, scales, spread.clamp_min(1e-3)).clamp_min(1e-3)
        return {"scales": scales}


class DiagFamily(ComponentFamily):
    """Independent features: ``scales`` (K, D) are the per-feature standard deviations."""

    covariance = DiagCovariance
    sites = ("weights", "locs", "scales")

    @classmethod
    def weighted_log_prob(cls, X: Tensor, draws: dict[str, Tensor]) -> Tensor:
        return diag_weighted_log_prob(X, draws["weights"], draws["locs"], draws["scales"])

    @classmethod
    def covariances(cls, draws: dict[str, Tensor]) -> Tensor:
        return draws["scales"].square()


class FullFamily(ComponentFamily):
    """Correlated features: ``Sigma_k = diag(scales_k) C_k diag(scales_k)`` with
    ``C_k = L_k L_k^T`` and ``L_k ~ LKJCholesky(D, eta)`` (site ``corr_cholesky``), the
    separation strategy of Stan's and Pyro's multivariate examples. With one feature
    there is no correlation and ``corr_cholesky`` is the constant 1."""

    covariance = FullCovariance
    sites = ("weights", "locs", "scales", "corr_cholesky")

    @classmethod
    def sample_components(cls, prior: MixturePrior, n_features: int) -> dict[str, Tensor]:
        components = super().sample_components(prior, n_features)
        if n_features > 1:
            concentration = components["scales"].new_tensor(prior.lkj_concentration)
            lkj = dist.LKJCholesky(n_features, concentration, validate_args=False)
            components["corr_cholesky"] = pyro.sample("corr_cholesky", lkj)
        else:
            components["corr_cholesky"] = torch.ones_like(components["scales"])[..., None]
        return components

    @classmethod
    def scale_tril(cls, draws: dict[str, Tensor]) -> Tensor:
        """Lower Cholesky factors ``diag(scales) L`` of the covariances, (..., K, D, D)."""
        return draws["scales"].unsqueeze(-1) * draws["corr_cholesky"]

    @classmethod
    def weighted_log_prob(cls, X: Tensor, draws: dict[str, Tensor]) -> Tensor:
        return full_weighted_log_prob(X, draws["weights"], draws["locs"], cls.scale_tril(draws))

    @classmethod
    def covariances(cls, draws: dict[str, Tensor]) -> Tensor:
        factor = cls.scale_tril(draws)
        return factor @ factor.transpose(-1, -2)

    @classmethod
    def log_prior(cls, draws: dict[str, Tensor], prior: MixturePrior) -> Tensor:
        total = super().log_prior(draws, prior)
        D = draws["locs"].shape[-1]
        if D == 1:
            return total
        concentration = draws["scales"].new_tensor(prior.lkj_concentration)
        lkj = dist.LKJCholesky(D, concentration, validate_args=False)
        return total + lkj.log_prob(draws["corr_cholesky"]).sum(-1)

    @classmethod
    def initial_scales(cls, X: Tensor, labels: Tensor, K: int) -> dict[str, Tensor]:
        """Spreads as for 'diag', and each cluster's correlation (shrunk a little towards
        the identity so the start lies inside the LKJ support)."""
        result = super().initial_scales(X, labels, K)
        D = X.shape[1]
        eye = torch.eye(D, dtype=X.dtype, device=X.device)
        factors = []
        for k in range(K):
            members = X[labels == k]
            if members.shape[0] <= D:
                factors.append(eye)
                continue
            correlation = torch.corrcoef(members.T).reshape(D, D)
            correlation = torch.where(torch.isfinite(correlation), correlation, eye)
            correlation = 0.95 * correlation + 0.05 * eye
            factor, info = torch.linalg.cholesky_ex(correlation)
            factors.append(factor if int(info) == 0 else eye)
        result["corr_cholesky"] = torch.stack(factors)
        return result


#: covariance kind -> family; the kinds the Pyro estimators accept
COMPONENT_FAMILIES: dict[str, type[ComponentFamily]] = {
    family.covariance.kind: family for family in (DiagFamily, FullFamily)
}


def component_family(covariance_type: str) -> type[ComponentFamily]:
    """The family of a ``covariance_type``; a ValueError naming the kinds otherwise.

    Examples
    --------
    >>> from mixtorch.bayes._components import component_family
    >>> component_family("full").sites
    ('weights', 'locs', 'scales', 'corr_cholesky')
    """
    try:
        return COMPONENT_FAMILIES[covariance_type]
    except (KeyError, TypeError):
        raise ValueError(
            f"covariance_type must be one of {sorted(COMPONENT_FAMILIES)}, got {covariance_type!r}."
        ) from None


def complete_draws(samples: dict[str, Any], family: type[ComponentFamily]) -> dict[str, Tensor]:
    """The family's sites of ``samples``, detached; a one-feature ``corr_cholesky`` (not
    sampled) is filled in as ones."""
    draws = {name: samples[name].detach() for name in family.sites if name in samples}
    if "corr_cholesky" in family.sites and "corr_cholesky" not in draws:
        draws["corr_cholesky"] = torch.ones_like(draws["scales"])[..., None]
    return draws

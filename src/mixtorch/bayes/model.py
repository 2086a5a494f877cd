"""The fully Bayesian Gaussian mixture as a Pyro model, with assignments summed out.

weights ~ Dirichlet(alpha 1_K); for each component k and feature d,
mean_kd ~ Normal(m_d, s_d) and scale_kd ~ HalfCauchy(c_d) (or LogNormal(log c_d, 1));
each observation ~ sum_k weights_k Normal(mean_k, diag(scale_k^2)). Summing the
categorical assignment out of the likelihood (log-sum-exp) leaves a smooth, continuous
posterior that both SVI and NUTS can work with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyro
import pyro.distributions as dist
import torch
from torch import Tensor

__all__ = [
    "SCALE_FAMILIES",
    "SITES",
    "MixturePrior",
    "log_likelihood",
    "make_prior",
    "mixture_model",
    "relabel",
]

SCALE_FAMILIES = ("halfcauchy", "lognormal")
#: the latent sites of :func:`mixture_model`, in the order they are reported
SITES = ("weights", "locs", "scales")


@dataclass(frozen=True)
class MixturePrior:
    """Prior settings of :func:`mixture_model`.

    Attributes
    ----------
    weight_concentration : float
        Symmetric Dirichlet concentration ``alpha`` of the weights.
    mean_loc, mean_scale : Tensor of shape (n_features,)
        Normal prior of every component mean.
    scale_scale : Tensor of shape (n_features,)
        Scale of the HalfCauchy prior (or median of the LogNormal prior) of the
        per-feature standard deviations.
    scale_family : {'halfcauchy', 'lognormal'}

    Examples
    --------
    >>> import torch
    >>> from mixtorch.bayes import make_prior
    >>> prior = make_prior(torch.tensor([[0.0], [2.0], [4.0]], dtype=torch.float64))
    >>> prior.weight_concentration, prior.scale_family
    (1.0, 'halfcauchy')
    >>> prior.mean_loc
    tensor([2.], dtype=torch.float64)
    """

    weight_concentration: float
    mean_loc: Tensor
    mean_scale: Tensor
    scale_scale: Tensor
    scale_family: str = "halfcauchy"

    def scale_distribution(self) -> Any:
        if self.scale_family == "lognormal":
            return dist.LogNormal(torch.log(self.scale_scale), 1.0)
        return dist.HalfCauchy(self.scale_scale)


def make_prior(
    X: Tensor,
    weight_concentration: float = 1.0,
    mean_prior: Any = None,
    mean_prior_scale: Any = None,
    scale_prior: Any = None,
    scale_family: str = "halfcauchy",
) -> MixturePrior:
    """Prior settings with data-scaled defaults for whatever is not given.

    Means default to ``Normal(data mean, 2 * data std)`` per feature, so every component
    can sit anywhere in the data's range; scales default to ``HalfCauchy(data std)``
    (heavy-tailed, so clusters much narrower than the data remain plausible).

    Examples
    --------
    >>> import torch
    >>> from mixtorch.bayes import make_prior
    >>> X = torch.tensor([[0.0, 10.0], [2.0, 10.0], [4.0, 16.0]], dtype=torch.float64)
    >>> prior = make_prior(X, weight_concentration=0.5)
    >>> prior.mean_loc, prior.weight_concentration
    (tensor([ 2., 12.], dtype=torch.float64), 0.5)
    """
    if scale_family not in SCALE_FAMILIES:
        raise ValueError(f"scale_family must be one of {SCALE_FAMILIES}, got {scale_family!r}.")
    if not (isinstance(weight_concentration, (int, float)) and weight_concentration > 0):
        raise ValueError(
            f"weight_concentration_prior must be a positive number, got {weight_concentration!r}."
        )
    spread = X.std(0).clamp_min(torch.finfo(X.dtype).tiny) if X.shape[0] > 1 else X.new_ones(1)
    spread = spread.expand(X.shape[1])

    def given(value: Any, default: Tensor, name: str, positive: bool) -> Tensor:
        if value is None:
            return default
        tensor = torch.as_tensor(value, dtype=X.dtype, device=X.device).expand(X.shape[1])
        if not bool(torch.isfinite(tensor).all()) or (positive and bool((tensor <= 0).any())):
            adjective = "positive and finite" if positive else "finite"
            raise ValueError(f"{name} must be {adjective}, got {value!r}.")
        return tensor.clone()

    return MixturePrior(
        weight_concentration=float(weight_concentration),
        mean_loc=given(mean_prior, X.mean(0), "mean_prior", False),
        mean_scale=given(mean_prior_scale, 2.0 * spread, "mean_prior_scale", True),
        scale_scale=given(scale_prior, spread.clone(), "scale_prior", True),
        scale_family=scale_family,
    )


def log_likelihood(X: Tensor, weights: Tensor, locs: Tensor, scales: Tensor) -> Tensor:
    """log p(x_i | theta) with assignments summed out, batched over draws.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
    weights : Tensor of shape (..., K)
    locs, scales : Tensor of shape (..., K, n_features)

    Returns
    -------
    Tensor of shape (..., n_samples)

    Examples
    --------
    >>> import torch
    >>> from scipy.stats import norm
    >>> from mixtorch.bayes import log_likelihood
    >>> X = torch.tensor([[0.0], [1.0]], dtype=torch.float64)
    >>> weights = torch.tensor([0.5, 0.5], dtype=torch.float64)
    >>> locs = torch.tensor([[0.0], [2.0]], dtype=torch.float64)
    >>> scales = torch.ones(2, 1, dtype=torch.float64)
    >>> values = log_likelihood(X, weights, locs, scales)
    >>> expected = np.log(0.5 * norm.pdf([0.0, 1.0], 0, 1) + 0.5 * norm.pdf([0.0, 1.0], 2, 1))
    >>> np.allclose(values.numpy(), expected)
    True
    """
    Y = X[:, None, :]  # (N, 1, D) broadcasts against (..., 1, K, D)
    z = (Y - locs.unsqueeze(-3)) / scales.unsqueeze(-3)
    per_feature = -0.5 * z.square() - torch.log(scales.unsqueeze(-3)) - 0.5 * math.log(2 * math.pi)
    component = per_feature.sum(-1) + torch.log(weights).unsqueeze(-2)
    return torch.logsumexp(component, dim=-1)


def mixture_model(X: Tensor, n_components: int, prior: MixturePrior) -> None:
    """The Pyro model; observations enter through one ``pyro.factor`` site.

    Examples
    --------
    >>> import pyro
    >>> import torch
    >>> from mixtorch.bayes import make_prior, mixture_model
    >>> X = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> trace = pyro.poutine.trace(mixture_model).get_trace(X, 3, make_prior(X))
    >>> [name for name in trace.nodes if not name.startswith("_")]
    ['weights', 'components', 'locs', 'scales', 'observations']
    >>> trace.nodes["locs"]["value"].shape
    torch.Size([3, 2])
    """
    concentration = X.new_full((n_components,), prior.weight_concentration)
    weights = pyro.sample("weights", dist.Dirichlet(concentration))
    with pyro.plate("components", n_components):
        locs = pyro.sample("locs", dist.Normal(prior.mean_loc, prior.mean_scale).to_event(1))
        scales = pyro.sample("scales", prior.scale_distribution().to_event(1))
    pyro.factor("observations", log_likelihood(X, weights, locs, scales).sum(-1))


def relabel(samples: dict[str, Tensor], n_iter: int = 5) -> dict[str, Tensor]:
    """Undo label switching by matching every draw's components to one reference labelling.

    Ordering draws by a single coordinate fails when two components share that
    coordinate. Instead (an iterative, Stephens-style relabelling) each draw's means are
    assigned to a reference set of means by the permutation with the smallest total
    squared distance (Hungarian algorithm, coordinates standardised), the reference is
    re-estimated as the mean of the aligned draws, and this repeats. The reference is
    finally put in lexicographic order of its means, so the result is deterministic.

    Parameters
    ----------
    samples : dict
        ``weights`` (..., K), ``locs`` and ``scales`` (..., K, D) draws (any batch
        shape, e.g. (chains, draws)); chains are aligned to the same labelling.
    n_iter : int
        Assignment/re-estimation rounds.

    Returns
    -------
    dict with the same keys and shapes, each draw permuted consistently across sites.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.bayes import relabel
    >>> locs = torch.tensor([[[0.0], [5.0]], [[5.0], [0.0]]])  # two draws, labels swapped
    >>> samples = {"weights": torch.tensor([[0.3, 0.7], [0.7, 0.3]]), "locs": locs,
    ...            "scales": torch.ones(2, 2, 1)}
    >>> aligned = relabel(samples)
    >>> aligned["locs"][..., 0]
    tensor([[0., 5.],
            [0., 5.]])
    >>> aligned["weights"]
    tensor([[0.3000, 0.7000],
            [0.3000, 0.7000]])
    """
    from scipy.optimize import linear_sum_assignment

    locs = samples["locs"]
    K, D = locs.shape[-2:]
    flat = locs.reshape(-1, K, D).detach().to("cpu", torch.float64)
    scale = flat.reshape(-1, D).std(0).clamp_min(1e-12) if flat.shape[0] * K > 1 else 1.0
    standard = (flat / scale).numpy()
    reference = standard[0]
    perms = np.tile(np.arange(K), (standard.shape[0], 1))
    for _ in range(n_iter):
        costs = ((standard[:, :, None, :] - reference[None, None, :, :]) ** 2).sum(-1)
        for draw, cost in enumerate(costs):
            rows, cols = linear_sum_assignment(cost)
            perms[draw, cols] = rows
        aligned = np.take_along_axis(standard, perms[:, :, None], axis=1)
        reference = aligned.mean(0)
    canonical = np.lexsort(reference.T[::-1])
    perms = perms[:, canonical]
    order = torch.as_tensor(perms, device=locs.device).reshape(*locs.shape[:-2], K)
    result = dict(samples)
    result["weights"] = torch.gather(samples["weights"], -1, order)
    for name in ("locs", "scales"):
        index = order.unsqueeze(-1).expand_as(samples[name])
        result[name] = torch.gather(samples[name], -2, index)
    return result

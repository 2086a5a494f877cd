"""Posterior draws as an ArviZ ``InferenceData`` (ArviZ is imported only when asked for)."""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
from torch import Tensor

__all__ = ["SITE_DIMS", "inference_data"]

#: dimension names of each latent site after (chain, draw)
SITE_DIMS = {
    "weights": ["component"],
    "locs": ["component", "feature"],
    "scales": ["component", "feature"],
    "corr_cholesky": ["component", "feature", "feature_bis"],
}


def _arviz() -> Any:
    try:
        with warnings.catch_warnings():
            # ArviZ 0.2x announces its 1.0 refactor with a FutureWarning on import
            warnings.filterwarnings("ignore", category=FutureWarning, module=r"arviz(\..*)?")
            import arviz
    except ImportError as error:
        raise ImportError("to_arviz needs ArviZ: pip install 'mixtorch[bayes]'.") from error
    return arviz


def _numpy(value: Tensor) -> np.ndarray:
    return value.detach().cpu().numpy()


def inference_data(
    chains: dict[str, Tensor],
    sample_stats: dict[str, Tensor],
    log_likelihood: Tensor | None = None,
) -> Any:
    """An ``arviz.InferenceData`` of posterior draws.

    Parameters
    ----------
    chains : dict of str -> Tensor
        Every latent site, shape (n_chains, n_draws, ...) (see :data:`SITE_DIMS`).
    sample_stats : dict of str -> Tensor
        Per-draw statistics, shape (n_chains, n_draws), in ArviZ's names (``lp``,
        ``diverging``).
    log_likelihood : Tensor of shape (n_chains, n_draws, n_samples), optional
        Pointwise log-likelihood, stored as ``obs`` with dimension ``obs_id``.

    Returns
    -------
    arviz.InferenceData

    Examples
    --------
    >>> import torch
    >>> from mixtorch.bayes._arviz import inference_data
    >>> chains = {"weights": torch.full((2, 5, 3), 1 / 3), "locs": torch.zeros(2, 5, 3, 1)}
    >>> data = inference_data(chains, {"lp": torch.zeros(2, 5)})
    >>> dict(data.posterior.sizes)
    {'chain': 2, 'draw': 5, 'component': 3, 'feature': 1}
    """
    arviz = _arviz()
    K, D = chains["locs"].shape[2:4]
    coords = {"component": np.arange(K), "feature": np.arange(D), "feature_bis": np.arange(D)}
    groups: dict[str, Any] = {
        "posterior": {name: _numpy(value) for name, value in chains.items()},
        "sample_stats": {name: _numpy(value) for name, value in sample_stats.items()},
    }
    dims = {name: SITE_DIMS[name] for name in chains}
    if log_likelihood is not None:
        groups["log_likelihood"] = {"obs": _numpy(log_likelihood)}
        coords["obs_id"] = np.arange(log_likelihood.shape[-1])
        dims["obs"] = ["obs_id"]
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=FutureWarning, module=r"arviz(\..*)?")
        return arviz.from_dict(**groups, coords=coords, dims=dims)

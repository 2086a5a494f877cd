"""``MCMCGaussianMixture``: NUTS on the Bayesian mixture, several chains, with diagnostics."""

from __future__ import annotations

from typing import Any

import torch
from pyro.infer import MCMC, NUTS
from pyro.infer.autoguide import init_to_value
from pyro.ops.stats import effective_sample_size, split_gelman_rubin
from torch import Tensor

from .._validation import as_output
from ._common import PyroMixtureBase, check_positive_int, quiet_pyro
from .model import SITES, MixturePrior, mixture_model, relabel

__all__ = ["MCMCGaussianMixture"]


class MCMCGaussianMixture(PyroMixtureBase):
    """Bayesian Gaussian mixture (diagonal covariances) sampled by NUTS.

    Same model as :class:`SVIGaussianMixture`. Chains run one after another in this
    process, each with its own seed and its own k-means start (robust everywhere, unlike
    multiprocessing). Every draw of every chain is relabelled to one common labelling
    (:func:`mixtorch.bayes.model.relabel`: components matched to reference means), so that
    ``r_hat_`` and ``ess_`` measure mixing within one labelling rather than label
    switching between chains.

    Parameters
    ----------
    n_components : int, default=1
    num_samples : int, default=500
        Kept draws per chain.
    warmup_steps : int, default=500
        Adaptation steps per chain.
    num_chains : int, default=2
    target_accept_prob : float, default=0.8
    max_tree_depth : int, default=10
    jit_compile : bool, default=True
        Trace the potential with the PyTorch JIT (about twice as fast on small data).
    weight_concentration_prior, mean_prior, mean_prior_scale, scale_prior, scale_family :
        Prior settings, as in :class:`SVIGaussianMixture`.
    random_state : int, RandomState, Generator or torch.Generator, optional
    dtype : {'float32', 'float64'}, optional

    Attributes
    ----------
    weights_, means_, covariances_ : posterior means; covariances_ is (K, D) ('diag' layout)
    posterior_samples_ : dict of arrays
        ``weights`` (S, K), ``locs`` (S, K, D), ``scales`` (S, K, D) with
        ``S = num_chains * num_samples``, chains one after another.
    r_hat_ : dict of arrays
        Split Gelman-Rubin statistic per parameter (shapes as one draw).
    ess_ : dict of arrays
        Effective sample size per parameter, over all chains.
    mixture_ : Mixture
        The posterior-mean mixture (used by ``predict_proba``, ``predict``, ``sample``).

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import MCMCGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 0.5, 60), rng.normal(3, 0.5, 40)])[:, None]
    >>> model = MCMCGaussianMixture(n_components=2, num_samples=50, warmup_steps=50,
    ...                             num_chains=1, jit_compile=False, random_state=0).fit(X)
    >>> model.posterior_samples_["locs"].shape
    (50, 2, 1)
    >>> np.sort(model.means_[:, 0]).round(0)
    array([-3.,  3.])
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        num_samples: int = 500,
        warmup_steps: int = 500,
        num_chains: int = 2,
        target_accept_prob: float = 0.8,
        max_tree_depth: int = 10,
        jit_compile: bool = True,
        weight_concentration_prior: float = 1.0,
        mean_prior: Any = None,
        mean_prior_scale: Any = None,
        scale_prior: Any = None,
        scale_family: str = "halfcauchy",
        random_state: Any = None,
        dtype: Any = None,
    ) -> None:
        self.n_components = n_components
        self.num_samples = num_samples
        self.warmup_steps = warmup_steps
        self.num_chains = num_chains
        self.target_accept_prob = target_accept_prob
        self.max_tree_depth = max_tree_depth
        self.jit_compile = jit_compile
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_prior = mean_prior
        self.mean_prior_scale = mean_prior_scale
        self.scale_prior = scale_prior
        self.scale_family = scale_family
        self.random_state = random_state
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None) -> MCMCGaussianMixture:
        """Run the chains and keep their relabelled draws and diagnostics.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        self._check_parameters()
        tensor, kind, prior = self._fit_data(X)
        chains = [
            self._run_chain(tensor, prior, seed)
            for seed in self._seeds(self.num_chains, tensor.device)
        ]
        # (chains, draws, ...) per site, relabelled draw by draw
        stacked = relabel({name: torch.stack([chain[name] for chain in chains]) for name in SITES})
        self.r_hat_ = {
            name: as_output(split_gelman_rubin(stacked[name], chain_dim=0, sample_dim=1), kind)
            for name in SITES
        }
        self.ess_ = {
            name: as_output(effective_sample_size(stacked[name], chain_dim=0, sample_dim=1), kind)
            for name in SITES
        }
        flat = {name: value.reshape(-1, *value.shape[2:]) for name, value in stacked.items()}
        self._store_draws(flat, kind)
        return self

    def _run_chain(self, X: Tensor, prior: MixturePrior, seed: int) -> dict[str, Tensor]:
        initial = self._initial_values(X, seed)
        kernel = NUTS(
            mixture_model,
            init_strategy=init_to_value(values=initial),
            target_accept_prob=float(self.target_accept_prob),
            max_tree_depth=int(self.max_tree_depth),
            jit_compile=bool(self.jit_compile),
            ignore_jit_warnings=True,
        )
        sampler = MCMC(
            kernel,
            num_samples=int(self.num_samples),
            warmup_steps=int(self.warmup_steps),
            num_chains=1,
            disable_progbar=True,
        )
        # fork_rng: NUTS draws from torch's global generator; keep the caller's stream intact
        with torch.random.fork_rng(devices=[]), quiet_pyro():
            torch.manual_seed(seed)
            sampler.run(X, self.n_components, prior)
        samples = sampler.get_samples()
        draws = {name: samples[name].detach() for name in SITES}
        if not all(bool(torch.isfinite(value).all()) for value in draws.values()):
            raise FloatingPointError("NUTS produced non-finite draws; rescale the data.")
        return draws

    def _check_parameters(self) -> None:
        check_positive_int(self.num_samples, "num_samples", 2)
        check_positive_int(self.warmup_steps, "warmup_steps", 0)
        check_positive_int(self.num_chains, "num_chains")
        check_positive_int(self.max_tree_depth, "max_tree_depth")
        if not isinstance(self.jit_compile, bool):
            raise ValueError(f"jit_compile must be True or False, got {self.jit_compile!r}.")
        accept = self.target_accept_prob
        if isinstance(accept, bool) or not isinstance(accept, (int, float)) or not 0 < accept < 1:
            raise ValueError(f"target_accept_prob must lie in (0, 1), got {accept!r}.")

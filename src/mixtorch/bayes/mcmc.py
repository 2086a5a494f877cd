"""``MCMCGaussianMixture``: NUTS on the Bayesian mixture, several chains, with diagnostics."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import torch
from pyro.ops.stats import effective_sample_size, split_gelman_rubin
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor

from .._estimator import keeps_state_on_failure
from .._validation import as_output
from ._chains import ChainSettings, run_chains, usable_cpus
from ._common import PYRO_CONSTRAINTS, PyroMixtureBase
from .relabel import relabel

__all__ = ["CHAIN_METHODS", "MCMCGaussianMixture", "convergence_diagnostics"]

CHAIN_METHODS = ("auto", "parallel", "sequential")
#: 'auto' runs chains of at least this many steps (warm-up included) in parallel; starting
#: a worker process (importing PyTorch and Pyro) takes seconds, more than short chains
_PARALLEL_STEPS = 1000


class MCMCGaussianMixture(PyroMixtureBase):
    """Bayesian Gaussian mixture (diagonal or full covariances) sampled by NUTS.

    Same model as :class:`SVIGaussianMixture` (:func:`mixtorch.bayes.mixture_model`).
    Each chain has its own seed and its own k-means start. Every draw of every chain is
    relabelled to one common labelling (:func:`mixtorch.bayes.relabel`: components
    matched to reference means), so that ``r_hat_`` and ``ess_`` measure mixing within
    one labelling rather than label switching between chains.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {'diag', 'full'}, default='diag'
        ``'full'``: each component's correlation matrix has an LKJ prior
        (``lkj_concentration``) on its Cholesky factor, with HalfCauchy (or LogNormal)
        standard deviations, as in Stan's and Pyro's multivariate models.
    num_samples : int, default=500
        Kept draws per chain (Pyro's ``MCMC(num_samples=...)``).
    warmup_steps : int, default=500
        Adaptation steps per chain.
    num_chains : int, default=2
        Independent NUTS chains (at least 2 for the split r-hat to be meaningful).
    chain_method : {'auto', 'parallel', 'sequential'}, default='auto'
        How several chains run (NumPyro's name). ``'parallel'``: in worker processes
        (``spawn`` start method, one chain per usable CPU at a time); ``'sequential'``:
        one after another in this process. ``'auto'`` runs them in parallel on CPU when
        more than one CPU is usable and the chains are long enough to repay starting
        the workers (``num_samples + warmup_steps >= 1000``, as by default), and
        sequentially otherwise (and on a GPU). A chain's draws depend only on its seed
        and start, so both give the same draws.
    target_accept_prob : float, default=0.8
        NUTS's target acceptance probability during step-size adaptation; higher values
        take smaller steps (fewer divergences, slower).
    max_tree_depth : int, default=10
        Largest depth of the NUTS trajectory tree (at most ``2**max_tree_depth`` leapfrog
        steps per draw).
    jit_compile : bool, default=True
        Trace the potential with the PyTorch JIT (about twice as fast on small data).
    weight_concentration_prior, mean_prior, mean_prior_scale, scale_prior, scale_family, \
lkj_concentration :
        Prior settings, as in :class:`SVIGaussianMixture`.
    device : str or torch.device, optional
        Where to sample ('cpu', 'cuda', 'cuda:1', ...); checked before any work, with an
        error listing the devices this machine has. By default the input's device.
    random_state : int, RandomState, Generator or torch.Generator, optional
        Seed of the chains' starts and of Pyro's sampling; an int gives reproducible
        draws.
    dtype : {'float32', 'float64'}, optional

    Attributes
    ----------
    weights_, means_, covariances_ : ndarray or Tensor
        Posterior means of the components' weights, means and covariances (shapes:
        :mod:`mixtorch.bayes`, for both estimators), as the kind of ``X`` given to fit.
    mixture_ : Mixture
        The point estimate ``weights_``, ``means_``, ``covariances_``: the mean of the
        weights, means and covariances over all kept draws (every chain, relabelled to
        one labelling), a Monte Carlo estimate of their posterior means. ``sample``,
        ``marginal`` and ``condition`` use it.
    posterior_samples_ : dict of arrays
        ``S = num_chains * num_samples`` draws, chains one after another; their sites
        and shapes are those of both estimators (:mod:`mixtorch.bayes`).
    r_hat_ : dict of arrays
        Split Gelman-Rubin statistic per parameter (shapes as one draw), across chains.
    ess_ : dict of arrays
        Effective sample size per parameter, over all chains.
    divergences_ : int
        Divergent transitions among the kept draws (all chains).

    See Also
    --------
    SVIGaussianMixture : the same model fitted by variational inference.
    mixtorch.bayes.plot_posterior_predictive : the predictive density with a credible band.

    Notes
    -----
    ``score_samples``, ``score``, ``predict_proba``, ``predict`` and
    ``predictive_density`` average over the kept draws: the posterior predictive density
    ``mean_s p(x | theta_s)``, a mixture of ``S * n_components`` Gaussians.
    ``marginal`` and ``condition`` return instead a :class:`~mixtorch.GaussianMixture`
    of the one mixture ``mixture_``, leaving out the spread of the draws that the
    predictive averages over (the predictive's own marginal at ``x`` is the mean of the
    draws' marginals).

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

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **PYRO_CONSTRAINTS,
        "num_samples": [Interval(Integral, 2, None, closed="left")],
        "warmup_steps": [Interval(Integral, 0, None, closed="left")],
        "num_chains": [Interval(Integral, 1, None, closed="left")],
        "chain_method": [StrOptions(set(CHAIN_METHODS))],
        "target_accept_prob": [Interval(Real, 0.0, 1.0, closed="neither")],
        "max_tree_depth": [Interval(Integral, 1, None, closed="left")],
        "jit_compile": ["boolean"],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "diag",
        num_samples: int = 500,
        warmup_steps: int = 500,
        num_chains: int = 2,
        chain_method: str = "auto",
        target_accept_prob: float = 0.8,
        max_tree_depth: int = 10,
        jit_compile: bool = True,
        weight_concentration_prior: float = 1.0,
        mean_prior: Any = None,
        mean_prior_scale: Any = None,
        scale_prior: Any = None,
        scale_family: str = "halfcauchy",
        lkj_concentration: float = 1.0,
        device: Any = None,
        random_state: Any = None,
        dtype: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.num_samples = num_samples
        self.warmup_steps = warmup_steps
        self.num_chains = num_chains
        self.chain_method = chain_method
        self.target_accept_prob = target_accept_prob
        self.max_tree_depth = max_tree_depth
        self.jit_compile = jit_compile
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_prior = mean_prior
        self.mean_prior_scale = mean_prior_scale
        self.scale_prior = scale_prior
        self.scale_family = scale_family
        self.lkj_concentration = lkj_concentration
        self.device = device
        self.random_state = random_state
        self.dtype = dtype

    @keeps_state_on_failure
    def fit(self, X: Any, y: Any = None) -> MCMCGaussianMixture:
        """Run the chains and keep their relabelled draws and diagnostics.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self

        Raises
        ------
        ValueError
            If a feature of ``X`` is constant (why, and what to do instead:
            :mod:`mixtorch.bayes`), and for the other invalid inputs and parameters.
        """
        tensor, kind, prior = self._fit_data(X)
        seeds = self._seeds(self.num_chains, tensor.device)
        starts = [self._initial_values(tensor, seed) for seed in seeds]
        settings = ChainSettings(
            n_components=self.n_components,
            num_samples=int(self.num_samples),
            warmup_steps=int(self.warmup_steps),
            target_accept_prob=float(self.target_accept_prob),
            max_tree_depth=int(self.max_tree_depth),
            jit_compile=bool(self.jit_compile),
        )
        parallel = self._parallel(tensor.device)
        results = run_chains(tensor, prior, starts, seeds, settings, parallel)
        names = self._family().sites
        # (chains, draws, ...) per site, relabelled draw by draw to one labelling
        chains = relabel(
            {name: torch.stack([draws[name] for draws, _ in results]) for name in names}
        )
        if not all(bool(torch.isfinite(value).all()) for value in chains.values()):
            raise FloatingPointError("NUTS produced non-finite draws; rescale the data.")
        diverging = torch.stack([flags for _, flags in results])
        diagnostics = {name: convergence_diagnostics(chains[name]) for name in names}
        self.r_hat_ = {name: as_output(value[0], kind) for name, value in diagnostics.items()}
        self.ess_ = {name: as_output(value[1], kind) for name, value in diagnostics.items()}
        self.divergences_ = int(diverging.sum())
        stats = {"lp": self._sample_statistics(tensor, chains, prior), "diverging": diverging}
        self._store_draws(chains, stats, kind)
        return self

    def _parallel(self, device: torch.device) -> bool:
        """Whether the chains run in worker processes (see ``chain_method``)."""
        if self.num_chains < 2 or self.chain_method == "sequential":
            return False
        if self.chain_method == "parallel":
            return True
        long_enough = self.num_samples + self.warmup_steps >= _PARALLEL_STEPS
        return device.type == "cpu" and usable_cpus() > 1 and long_enough


def convergence_diagnostics(draws: Tensor) -> tuple[Tensor, Tensor]:
    """Split r-hat and effective sample size of (n_chains, n_draws, ...) draws, across
    chains (Pyro's estimators).

    Entries that are the same in every draw (the zeros above the diagonal of
    ``corr_cholesky`` and its leading 1) have nothing to mix: their r-hat is 1 and their
    effective sample size the number of draws. They are left out of Pyro's estimators,
    whose 0/0 would otherwise turn every entry computed with them into NaN.

    Returns
    -------
    r_hat, ess : Tensor of the shape of one draw
    """
    chains, n_draws = draws.shape[:2]
    columns = draws.reshape(chains, n_draws, -1)
    varying = ~(columns == columns[:1, :1]).all(1).all(0)
    r_hat = torch.ones(columns.shape[2], dtype=draws.dtype, device=draws.device)
    ess = torch.full_like(r_hat, float(chains * n_draws))
    if bool(varying.any()):
        selected = columns[:, :, varying]
        r_hat[varying] = split_gelman_rubin(selected, chain_dim=0, sample_dim=1)
        ess[varying] = effective_sample_size(selected, chain_dim=0, sample_dim=1)
    return r_hat.reshape(draws.shape[2:]), ess.reshape(draws.shape[2:])

"""``SVIGaussianMixture``: stochastic variational inference for the Bayesian mixture."""

from __future__ import annotations

from typing import Any

import pyro
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, AutoNormal, init_to_value
from pyro.optim import Adam  # type: ignore[attr-defined]
from torch import Tensor

from ._common import PyroMixtureBase, check_positive_int, check_positive_real, quiet_pyro
from .model import SITES, MixturePrior, mixture_model, relabel

__all__ = ["GUIDES", "SVIGaussianMixture"]

GUIDES = ("map", "mean_field")
#: final steps whose ELBO is averaged to rank restarts (the mean-field ELBO is noisy)
_RANKING_WINDOW = 50


class SVIGaussianMixture(PyroMixtureBase):
    """Bayesian Gaussian mixture (diagonal covariances) fitted by Pyro's SVI.

    The model is :func:`mixtorch.bayes.model.mixture_model`: Dirichlet weights, Normal
    means, HalfCauchy (or LogNormal) standard deviations, assignments summed out of the
    likelihood. ``guide='map'`` (``AutoDelta``) gives the maximum a posteriori estimate;
    ``guide='mean_field'`` (``AutoNormal``) a factorised Gaussian posterior in the
    unconstrained space. Each restart starts from a different k-means solution and the
    run with the best final ELBO is kept.

    Parameters
    ----------
    n_components : int, default=1
    guide : {'map', 'mean_field'}, default='map'
    n_steps : int, default=1000
        Adam steps per restart.
    learning_rate : float, default=0.05
    n_restarts : int, default=3
    n_posterior_samples : int, default=200
        Draws from the fitted guide kept in ``posterior_samples_`` (all equal for 'map').
    weight_concentration_prior : float, default=1.0
        Symmetric Dirichlet concentration.
    mean_prior, mean_prior_scale : float or array-like of shape (n_features,), optional
        Normal prior of the means; default: data mean and twice the data std.
    scale_prior : float or array-like of shape (n_features,), optional
        Scale of the prior on standard deviations; default: the data std.
    scale_family : {'halfcauchy', 'lognormal'}, default='halfcauchy'
    random_state : int, RandomState, Generator or torch.Generator, optional
    dtype : {'float32', 'float64'}, optional

    Attributes
    ----------
    weights_, means_, covariances_ : posterior means; covariances_ is (K, D) ('diag' layout)
    posterior_samples_ : dict of arrays
        ``weights`` (S, K), ``locs`` (S, K, D), ``scales`` (S, K, D), relabelled to one
        labelling (components in lexicographic order of their means).
    elbo_history_ : list of float
        ELBO (higher is better) at every step of the kept restart.
    elbo_histories_ : list of list of float
        The same for every restart.
    elbo_ : float
        Final ELBO of the kept restart (mean of its last steps).
    mixture_ : Mixture
        The posterior-mean mixture (used by ``predict_proba``, ``predict``, ``sample``).

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import SVIGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 0.5, 60), rng.normal(3, 0.5, 40)])[:, None]
    >>> model = SVIGaussianMixture(n_components=2, n_steps=200, n_restarts=1, random_state=0).fit(X)
    >>> np.sort(model.means_[:, 0]).round(1)
    array([-3.,  3.])
    >>> np.sort(model.weights_).round(1)
    array([0.4, 0.6])
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        guide: str = "map",
        n_steps: int = 1000,
        learning_rate: float = 0.05,
        n_restarts: int = 3,
        n_posterior_samples: int = 200,
        weight_concentration_prior: float = 1.0,
        mean_prior: Any = None,
        mean_prior_scale: Any = None,
        scale_prior: Any = None,
        scale_family: str = "halfcauchy",
        random_state: Any = None,
        dtype: Any = None,
    ) -> None:
        self.n_components = n_components
        self.guide = guide
        self.n_steps = n_steps
        self.learning_rate = learning_rate
        self.n_restarts = n_restarts
        self.n_posterior_samples = n_posterior_samples
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_prior = mean_prior
        self.mean_prior_scale = mean_prior_scale
        self.scale_prior = scale_prior
        self.scale_family = scale_family
        self.random_state = random_state
        self.dtype = dtype

    def fit(self, X: Any, y: Any = None) -> SVIGaussianMixture:
        """Fit the guide by SVI (several restarts) and keep draws from the best one.

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
        best: tuple[float, list[float], dict[str, Tensor]] | None = None
        histories = []
        for seed in self._seeds(self.n_restarts, tensor.device):
            history, draws = self._one_run(tensor, prior, seed)
            histories.append(history)
            window = history[-_RANKING_WINDOW:]
            score = sum(window) / len(window)
            if best is None or score > best[0]:
                best = (score, history, draws)
        assert best is not None
        self.elbo_, self.elbo_history_, self.elbo_histories_ = best[0], best[1], histories
        self._store_draws(relabel(best[2]), kind)
        return self

    def _one_run(
        self, X: Tensor, prior: MixturePrior, seed: int
    ) -> tuple[list[float], dict[str, Tensor]]:
        initial = self._initial_values(X, seed)
        pyro.clear_param_store()
        # fork_rng: Pyro draws from torch's global generator; keep the caller's stream intact
        with torch.random.fork_rng(devices=[]), quiet_pyro():
            torch.manual_seed(seed)
            guide = self._make_guide(initial)
            svi = SVI(mixture_model, guide, Adam({"lr": self.learning_rate}), Trace_ELBO())
            history = [-float(svi.step(X, self.n_components, prior)) for _ in range(self.n_steps)]
            predictive = Predictive(guide, num_samples=self.n_posterior_samples)
            samples = predictive(X, self.n_components, prior)
        pyro.clear_param_store()
        draws = {
            name: samples[name].detach().reshape(self.n_posterior_samples, *initial[name].shape)
            for name in SITES
        }
        if not all(bool(torch.isfinite(value).all()) for value in draws.values()):
            raise FloatingPointError(
                "SVI produced non-finite parameters; lower learning_rate or rescale the data."
            )
        return history, draws

    def _make_guide(self, initial: dict[str, Tensor]) -> Any:
        init = init_to_value(values=initial)
        if self.guide == "map":
            return AutoDelta(mixture_model, init_loc_fn=init)
        return AutoNormal(mixture_model, init_loc_fn=init, init_scale=0.05)

    def _check_parameters(self) -> None:
        if not isinstance(self.guide, str) or self.guide not in GUIDES:
            raise ValueError(f"guide must be one of {GUIDES}, got {self.guide!r}.")
        check_positive_int(self.n_steps, "n_steps")
        check_positive_int(self.n_restarts, "n_restarts")
        check_positive_int(self.n_posterior_samples, "n_posterior_samples")
        check_positive_real(self.learning_rate, "learning_rate")

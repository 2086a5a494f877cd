"""``SVIGaussianMixture``: stochastic variational inference for the Bayesian mixture."""

from __future__ import annotations

import math
from numbers import Integral, Real
from typing import Any, ClassVar

import pyro
import torch
from pyro.infer import SVI, Predictive, Trace_ELBO
from pyro.infer.autoguide import AutoDelta, AutoNormal, init_to_value
from pyro.optim import Adam  # type: ignore[attr-defined]
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor

from .._estimator import keeps_state_on_failure
from ..exceptions import DivergenceError
from ._common import PYRO_CONSTRAINTS, PyroMixtureBase
from ._components import complete_draws
from ._quiet import quiet_pyro, threads_for
from .model import mixture_model
from .prior import MixturePrior
from .relabel import relabel

__all__ = ["GUIDES", "SVIGaussianMixture"]

GUIDES = ("map", "mean_field")
#: final steps whose ELBO is averaged to rank restarts (the mean-field ELBO is noisy)
_RANKING_WINDOW = 50


class SVIGaussianMixture(PyroMixtureBase):
    """Bayesian Gaussian mixture (diagonal or full covariances) fitted by Pyro's SVI.

    The model is :func:`mixtorch.bayes.mixture_model`: Dirichlet weights, Normal
    means, HalfCauchy (or LogNormal) standard deviations and, for full covariances, an
    LKJ prior on each component's correlation matrix; assignments are summed out of the
    likelihood. ``guide='map'`` (``AutoDelta``) gives the maximum a posteriori estimate;
    ``guide='mean_field'`` (``AutoNormal``) a factorised Gaussian posterior in the
    unconstrained space. Each restart starts from a different k-means solution and the
    run with the best final ELBO is kept.

    Parameters
    ----------
    n_components : int, default=1
        Number of mixture components K.
    covariance_type : {'diag', 'full'}, default='diag'
        ``'full'``: covariance ``diag(s) C diag(s)`` with an LKJ prior on the Cholesky
        factor of the correlation matrix ``C`` (Pyro's ``LKJCholesky``).
    guide : {'map', 'mean_field'}, default='map'
    num_steps : int, default=1000
        Adam steps per restart.
    learning_rate : float, default=0.05
        Step size of the Adam optimiser on the ELBO.
    num_restarts : int, default=3
        Independent SVI runs, each from a different k-means start; the run with the
        best final ELBO is kept.
    num_samples : int, default=200
        Draws from the fitted guide (Pyro's ``Predictive(num_samples=...)``), kept in
        ``posterior_samples_``; ``score_samples``, ``predict_proba`` and ``predict``
        average over them (for 'map' they are all equal).
    weight_concentration_prior : float, default=1.0
        Symmetric Dirichlet concentration.
    mean_prior, mean_prior_scale : float or array-like of shape (n_features,), optional
        Normal prior of the means; default: data mean and twice the data std.
    scale_prior : float or array-like of shape (n_features,), optional
        Scale of the prior on standard deviations; default: the data std.
    scale_family : {'halfcauchy', 'lognormal'}, default='halfcauchy'
    lkj_concentration : float, default=1.0
        LKJ concentration ``eta`` of the correlations ('full'): 1 is uniform over
        correlation matrices, larger values shrink correlations towards zero.
    device : str or torch.device, optional
        Where to fit ('cpu', 'cuda', ...); checked before any work. By default the
        input's device.
    random_state : int, RandomState, Generator or torch.Generator, optional
        Seed of the starts, of Pyro's sampling and of the posterior draws; an int gives
        reproducible fits.
    dtype : {'float32', 'float64'}, optional

    Attributes
    ----------
    weights_, means_, covariances_ : ndarray or Tensor
        Posterior means of the components' weights, means and covariances (the MAP
        estimate for ``guide='map'``; shapes: :mod:`mixtorch.bayes`, for both
        estimators), as the kind of ``X`` given to fit.
    mixture_ : Mixture
        The point estimate ``weights_``, ``means_``, ``covariances_``: the mean of the
        kept draws' weights, means and covariances. With ``guide='map'`` every draw is
        the MAP estimate, so this is the MAP mixture; with ``'mean_field'`` it is the
        guide's posterior mean, estimated from its ``num_samples`` draws. ``sample``,
        ``marginal`` and ``condition`` use it.
    posterior_samples_ : dict of arrays
        ``S = num_samples`` draws from the fitted guide, one chain; their sites and
        shapes are those of both estimators (:mod:`mixtorch.bayes`).
    elbo_history_ : list of float
        ELBO (higher is better) at every step of the kept restart.
    elbo_histories_ : list of list of float
        The same for every restart.
    elbo_ : float
        Final ELBO of the kept restart (mean of its last steps).

    See Also
    --------
    MCMCGaussianMixture : the same model sampled by NUTS.

    Notes
    -----
    ``score_samples``, ``score``, ``predict_proba``, ``predict`` and
    ``predictive_density`` average over the kept draws: the posterior predictive density
    ``mean_s p(x | theta_s)``. ``marginal`` and ``condition`` return instead a
    :class:`~mixtorch.GaussianMixture` of the one mixture ``mixture_``, leaving out the
    spread of the draws that the predictive averages over. With ``guide='map'`` the
    draws are all equal, so the two are the same mixture; with ``'mean_field'`` they
    differ (the predictive's marginal is the mean of the draws' marginals).

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import SVIGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 0.5, 60), rng.normal(3, 0.5, 40)])[:, None]
    >>> model = SVIGaussianMixture(2, num_steps=200, num_restarts=1, random_state=0).fit(X)
    >>> np.sort(model.means_[:, 0]).round(1)
    array([-3.,  3.])
    >>> np.sort(model.weights_).round(1)
    array([0.4, 0.6])
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **PYRO_CONSTRAINTS,
        "guide": [StrOptions(set(GUIDES))],
        "num_steps": [Interval(Integral, 1, None, closed="left")],
        "learning_rate": [Interval(Real, 0.0, None, closed="neither")],
        "num_restarts": [Interval(Integral, 1, None, closed="left")],
        "num_samples": [Interval(Integral, 1, None, closed="left")],
    }

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "diag",
        guide: str = "map",
        num_steps: int = 1000,
        learning_rate: float = 0.05,
        num_restarts: int = 3,
        num_samples: int = 200,
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
        self.guide = guide
        self.num_steps = num_steps
        self.learning_rate = learning_rate
        self.num_restarts = num_restarts
        self.num_samples = num_samples
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
    def fit(self, X: Any, y: Any = None) -> SVIGaussianMixture:
        """Fit the guide by SVI (several restarts) and keep draws from the best one.

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
        best: tuple[float, list[float], dict[str, Tensor]] | None = None
        histories = []
        for seed in self._seeds(self.num_restarts, tensor.device):
            history, draws = self._one_run(tensor, prior, seed)
            histories.append(history)
            window = history[-_RANKING_WINDOW:]
            score = sum(window) / len(window)
            if best is None or score > best[0]:
                best = (score, history, draws)
        assert best is not None
        self.elbo_, self.elbo_history_, self.elbo_histories_ = best[0], best[1], histories
        # the guide's draws form one chain
        chains = relabel({name: value[None] for name, value in best[2].items()})
        stats = {"lp": self._sample_statistics(tensor, chains, prior)}
        self._store_draws(chains, stats, kind)
        return self

    def _one_run(
        self, X: Tensor, prior: MixturePrior, seed: int
    ) -> tuple[list[float], dict[str, Tensor]]:
        initial = self._initial_values(X, seed)
        pyro.clear_param_store()
        # fork_rng: Pyro draws from torch's global generator; keep the caller's stream intact
        with torch.random.fork_rng(devices=[]), quiet_pyro(), threads_for(X, self.n_components):
            torch.manual_seed(seed)
            guide = self._make_guide(initial)
            svi = SVI(mixture_model, guide, Adam({"lr": self.learning_rate}), Trace_ELBO())
            history = [self._step(svi, X, prior, step) for step in range(self.num_steps)]
            predictive = Predictive(guide, num_samples=self.num_samples)
            samples = predictive(X, self.n_components, prior)
        pyro.clear_param_store()
        draws = complete_draws(samples, self._family())
        draws = {
            name: value.reshape(self.num_samples, *initial[name].shape)
            for name, value in draws.items()
        }
        if not all(bool(torch.isfinite(value).all()) for value in draws.values()):
            raise DivergenceError(
                "SVI produced non-finite parameters; lower learning_rate or rescale the data."
            )
        return history, draws

    def _step(self, svi: SVI, X: Tensor, prior: MixturePrior, step: int) -> float:
        """One SVI step; its ELBO, or a :class:`~mixtorch.exceptions.DivergenceError`
        naming ``learning_rate`` when the loss, the guide's parameters or the values drawn
        from it stop being finite (Pyro's own error then is a distribution refusing a
        NaN parameter, with a trace of the model's shapes)."""
        advice = (
            f"SVI diverged at step {step + 1} of {self.num_steps}: the ELBO or the guide's "
            f"parameters stopped being finite with learning_rate={self.learning_rate!r}. "
            "Lower learning_rate, or rescale the data (e.g. with "
            "sklearn.preprocessing.StandardScaler)."
        )
        try:
            loss = float(svi.step(X, self.n_components, prior))
        except ValueError as error:
            store = pyro.get_param_store()
            finite = all(bool(torch.isfinite(store[name]).all()) for name in store.keys())
            # torch.distributions' refusal of a NaN/infinite value drawn from the guide
            if finite and "found invalid values" not in str(error):
                raise  # not a divergence
            raise DivergenceError(advice) from error
        if not math.isfinite(loss):
            raise DivergenceError(advice)
        return -loss

    def _make_guide(self, initial: dict[str, Tensor]) -> Any:
        init = init_to_value(values=initial)
        if self.guide == "map":
            return AutoDelta(mixture_model, init_loc_fn=init)
        return AutoNormal(mixture_model, init_loc_fn=init, init_scale=0.05)

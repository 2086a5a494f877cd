"""Fully Bayesian Gaussian mixtures with Pyro (an optional dependency: ``pip install
mixtorch[bayes]``).

:class:`SVIGaussianMixture` fits the posterior by stochastic variational inference (MAP
or mean-field guides); :class:`MCMCGaussianMixture` samples it with NUTS. Both share the
model of :mod:`mixtorch.bayes.model` (diagonal covariances, or full ones with an LKJ
prior on the correlations), average ``predict_proba`` over their posterior draws and
export them with ``to_arviz()`` (ArviZ, also in the ``bayes`` extra).
:func:`plot_posterior_predictive` draws the predictive density with a credible band.

On small data (``n_samples * n_components * n_features**2`` up to 2**17) the inference
runs on one PyTorch intra-op thread, and the caller's thread count is restored
afterwards; NUTS chains can run in worker processes (``chain_method``).

The two estimators' ``fit`` refuses a feature of ``X`` that is constant (one value in
every row) with a ``ValueError``, whatever the priors: the model has no ``reg_covar``
floor, so that feature's standard deviation would collapse towards zero; drop the
feature, or fit :class:`~mixtorch.GaussianMixture` (or
:class:`~mixtorch.BayesianGaussianMixture`), whose ``reg_covar`` holds the variance at
a floor. A fitted estimator of either kind holds ``posterior_samples_``, a dict of
arrays of S draws, ``weights`` (S, K), ``locs`` (S, K, D), ``scales`` (S, K, D) and,
for 'full', ``corr_cholesky`` (S, K, D, D), all relabelled to one labelling
(:func:`relabel`: components in lexicographic order of their means), and their
posterior means ``weights_`` (K,), ``means_`` (K, D) and ``covariances_``, (K, D) for
'diag' and (K, D, D) for 'full'.
"""

from __future__ import annotations

try:
    import pyro  # noqa: F401
except ImportError as error:  # pragma: no cover - exercised in a subprocess test
    raise ImportError(
        "mixtorch.bayes needs Pyro: install it with `pip install pyro-ppl` "
        "(or `pip install mixtorch[bayes]`)."
    ) from error

from .mcmc import MCMCGaussianMixture
from .model import full_log_likelihood, log_likelihood, mixture_model
from .plotting import plot_posterior_predictive
from .prior import MixturePrior, make_prior
from .relabel import relabel
from .svi import SVIGaussianMixture

__all__ = [
    "MCMCGaussianMixture",
    "MixturePrior",
    "SVIGaussianMixture",
    "full_log_likelihood",
    "log_likelihood",
    "make_prior",
    "mixture_model",
    "plot_posterior_predictive",
    "relabel",
]

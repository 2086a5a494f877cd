"""Fully Bayesian Gaussian mixtures with Pyro (an optional dependency: ``pip install
mixtorch[bayes]``).

:class:`SVIGaussianMixture` fits the posterior by stochastic variational inference (MAP
or mean-field guides); :class:`MCMCGaussianMixture` samples it with NUTS. Both share the
model of :mod:`mixtorch.bayes.model`.
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
from .model import MixturePrior, log_likelihood, make_prior, mixture_model, relabel
from .svi import SVIGaussianMixture

__all__ = [
    "MCMCGaussianMixture",
    "MixturePrior",
    "SVIGaussianMixture",
    "log_likelihood",
    "make_prior",
    "mixture_model",
    "relabel",
]

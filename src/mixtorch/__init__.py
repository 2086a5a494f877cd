"""mixtorch: Gaussian density estimation on PyTorch, the scikit-learn way.

Everything is a Gaussian mixture: a single :class:`Gaussian` is one component, a
:class:`GaussianMixture` has K, and all of them share the :class:`Mixture` value object
for densities, responsibilities and sampling.
"""

from . import nn as nn  # the differentiable modules, as mixtorch.nn
from .bayesian_mixture import BayesianGaussianMixture
from .covariance import (
    Covariance,
    CovarianceError,
    DiagCovariance,
    FullCovariance,
    SphericalCovariance,
    TiedCovariance,
)
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .io import load, save
from .kde import GaussianKDE
from .mixture import Mixture
from .regression import GaussianMixtureRegressor
from .selection import SelectionResult, select

__version__ = "0.1.0"

__all__ = [
    "BayesianGaussianMixture",
    "Covariance",
    "CovarianceError",
    "DiagCovariance",
    "FullCovariance",
    "Gaussian",
    "GaussianKDE",
    "GaussianMixture",
    "GaussianMixtureRegressor",
    "MCMCGaussianMixture",
    "Mixture",
    "SelectionResult",
    "SVIGaussianMixture",
    "SphericalCovariance",
    "TiedCovariance",
    "__version__",
    "load",
    "save",
    "select",
]


def __getattr__(name: str) -> object:
    # The Pyro-based estimators load lazily: ``import mixtorch`` works without pyro.
    if name in ("SVIGaussianMixture", "MCMCGaussianMixture"):
        from . import bayes

        return getattr(bayes, name)
    raise AttributeError(f"module 'mixtorch' has no attribute {name!r}")

"""mixtorch: Gaussian density estimation on PyTorch, the scikit-learn way.

Everything is a Gaussian mixture: a single :class:`Gaussian` is one component, a
:class:`GaussianMixture` has K, and all of them share the :class:`Mixture` value object
for densities, responsibilities and sampling.

The public names are imported on first use (PEP 562), so ``import mixtorch`` and the
``mixtorch`` command's ``--help`` do not pay for PyTorch until something needs it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING

from ._version import __version__

#: public name -> the submodule defining it (the Pyro-based estimators need pyro).
_LAZY = {
    "BayesianGaussianMixture": ".bayesian_mixture",
    "Covariance": ".covariance",
    "CovarianceError": ".covariance",
    "DiagCovariance": ".covariance",
    "DegenerateComponentWarning": ".exceptions",
    "DivergenceError": ".exceptions",
    "FullCovariance": ".covariance",
    "SphericalCovariance": ".covariance",
    "TiedCovariance": ".covariance",
    "Gaussian": ".gaussian",
    "GaussianMixture": ".gaussian_mixture",
    "load": ".io",
    "save": ".io",
    "GaussianKDE": ".kde",
    "Mixture": ".mixture",
    "GaussianMixtureRegressor": ".regression",
    "SelectionResult": ".selection",
    "select": ".selection",
    "SVIGaussianMixture": ".bayes",
    "MCMCGaussianMixture": ".bayes",
}

if TYPE_CHECKING:
    from . import exceptions as exceptions
    from . import nn as nn
    from .bayes import MCMCGaussianMixture, SVIGaussianMixture
    from .bayesian_mixture import BayesianGaussianMixture
    from .covariance import (
        Covariance,
        CovarianceError,
        DiagCovariance,
        FullCovariance,
        SphericalCovariance,
        TiedCovariance,
    )
    from .exceptions import DegenerateComponentWarning, DivergenceError
    from .gaussian import Gaussian
    from .gaussian_mixture import GaussianMixture
    from .io import load, save
    from .kde import GaussianKDE
    from .mixture import Mixture
    from .regression import GaussianMixtureRegressor
    from .selection import SelectionResult, select

__all__ = [
    "BayesianGaussianMixture",
    "Covariance",
    "CovarianceError",
    "DegenerateComponentWarning",
    "DiagCovariance",
    "DivergenceError",
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
    if name in ("nn", "exceptions"):  # the differentiable modules; warning/error classes
        return importlib.import_module(f".{name}", __name__)
    if name not in _LAZY:
        raise AttributeError(f"module 'mixtorch' has no attribute {name!r}")
    value = getattr(importlib.import_module(_LAZY[name], __name__), name)
    if _LAZY[name] != ".bayes":  # pyro stays optional: look it up each time
        globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_LAZY, "nn", "exceptions"])

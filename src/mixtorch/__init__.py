"""mixtorch: Gaussian density estimation on PyTorch, the scikit-learn way.

Everything is a Gaussian mixture: a single :class:`Gaussian` is one component, a
:class:`GaussianMixture` has K, and all of them share the :class:`Mixture` value object
for densities, responsibilities and sampling.
"""

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
from .mixture import Mixture

__version__ = "0.1.0"

__all__ = [
    "Covariance",
    "CovarianceError",
    "DiagCovariance",
    "FullCovariance",
    "Gaussian",
    "GaussianMixture",
    "Mixture",
    "SphericalCovariance",
    "TiedCovariance",
    "__version__",
]

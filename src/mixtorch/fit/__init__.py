"""Fitting algorithms: pure functions from data (tensors or chunk sources) to mixtures.

The k-means functions live in :mod:`mixtorch.fit.kmeans` (``kmeans``, ``lloyd``,
``KMeansResult``); the function ``kmeans`` is not re-exported here, where its name would
hide that module (``import mixtorch.fit.kmeans as km`` gave the function).
"""

from .em import EMTrace, fit_em
from .gradient import GradientTrace, fit_gradient
from .init import initial_mixture, mixture_from_responsibilities
from .kmeans import kmeans_plusplus

__all__ = [
    "EMTrace",
    "GradientTrace",
    "fit_em",
    "fit_gradient",
    "initial_mixture",
    "kmeans_plusplus",
    "mixture_from_responsibilities",
]

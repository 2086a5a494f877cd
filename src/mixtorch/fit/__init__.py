"""Fitting algorithms: pure functions from data (tensors or chunk sources) to mixtures."""

from .em import EMTrace, fit_em
from .gradient import GradientTrace, fit_gradient
from .init import initial_mixture, mixture_from_responsibilities
from .kmeans import kmeans, kmeans_plusplus

__all__ = [
    "EMTrace",
    "GradientTrace",
    "fit_em",
    "fit_gradient",
    "initial_mixture",
    "kmeans",
    "kmeans_plusplus",
    "mixture_from_responsibilities",
]

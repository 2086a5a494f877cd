"""Fitting algorithms: pure functions from data (tensors or chunk sources) to mixtures."""

from .em import EMTrace, fit_em
from .init import initial_mixture, mixture_from_responsibilities
from .kmeans import kmeans, kmeans_plusplus

__all__ = [
    "EMTrace",
    "fit_em",
    "initial_mixture",
    "kmeans",
    "kmeans_plusplus",
    "mixture_from_responsibilities",
]

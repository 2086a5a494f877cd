"""Shared test data: generators that several test files draw the same kind of data from.

Every generator takes a seed (or a NumPy ``Generator``) and draws its numbers in a fixed
order, so a test that switches to one keeps exactly the data it had.

- :func:`make_blobs_mixture`: rows from a random K-component mixture of a given
  covariance kind, with the true parameters and labels.
- :func:`make_blobs`: three well separated spherical blobs (X, labels, centers).
- :func:`make_separated_blocks`: equal blocks of rows around given centres.
- :func:`make_overlapping_blobs`: unit-variance groups a few standard deviations apart.
- :func:`make_correlated_gaussian`: one correlated Gaussian (random mixing matrix).
- :func:`make_modes_1d`: a 1-D sample from given (centre, scale, count) modes, shape (n, 1).

Fixtures: ``blobs``, ``well_separated``, ``overlapping`` and ``one_dimensional``; every
test closes the matplotlib figures it left open.

Hypothesis tests draw the same examples on every run (profile ``deterministic``, loaded
here), so CI never fails on an example no earlier run saw. To search for new ones, run
``pytest --hypothesis-profile=explore`` (random examples each run); a failure found that
way becomes an ``@example`` on the test.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
import pytest
from hypothesis import settings

settings.register_profile("deterministic", derandomize=True, print_blob=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("deterministic")


class Blobs(NamedTuple):
    """Rows drawn from a known mixture: ``X`` (n, d), ``labels`` (n,), the true ``means``
    (k, d) and ``covariances`` in scikit-learn's layout for the kind."""

    X: np.ndarray
    labels: np.ndarray
    means: np.ndarray
    covariances: np.ndarray


def _rng(seed: int | np.random.Generator) -> np.random.Generator:
    return seed if isinstance(seed, np.random.Generator) else np.random.default_rng(seed)


def make_blobs_mixture(
    n: int,
    d: int,
    k: int,
    kind: str = "spherical",
    dtype: type | np.dtype = np.float64,
    seed: int | np.random.Generator = 0,
    *,
    separation: float = 4.0,
    scale_range: tuple[float, float] | None = None,
    offset: float = 0.0,
) -> Blobs:
    """``n`` rows from a k-component mixture whose covariances have ``kind``'s structure.

    Means are N(0, separation**2) per coordinate, labels uniform. Scales: for
    'spherical' one standard deviation per component drawn from ``scale_range`` (unit
    when None); for 'diag' one per component and feature; 'full' and 'tied' use random
    Cholesky factors with diagonals in ``scale_range`` (default (0.5, 1.5)). ``offset``
    is added to every coordinate (and to the means).
    """
    rng = _rng(seed)
    means = rng.normal(0.0, separation, size=(k, d))
    labels = rng.integers(0, k, n)
    if kind == "spherical":
        if scale_range is None:
            X = means[labels] + rng.normal(size=(n, d))
            covariances = np.ones(k)
        else:
            scales = rng.uniform(*scale_range, size=(k, 1))
            X = means[labels] + scales[labels] * rng.normal(size=(n, d))
            covariances = scales[:, 0] ** 2
    elif kind == "diag":
        scales = rng.uniform(*(scale_range or (0.5, 1.5)), size=(k, d))
        X = means[labels] + scales[labels] * rng.normal(size=(n, d))
        covariances = scales**2
    elif kind in ("full", "tied"):
        factors = _random_factors(rng, 1 if kind == "tied" else k, d, scale_range or (0.5, 1.5))
        noise = rng.normal(size=(n, d))
        per_row = factors[0 if kind == "tied" else labels]
        X = means[labels] + np.einsum("nde,ne->nd", np.broadcast_to(per_row, (n, d, d)), noise)
        covariances = factors @ factors.transpose(0, 2, 1)
        covariances = covariances[0] if kind == "tied" else covariances
    else:
        raise ValueError(f"unknown covariance kind {kind!r}")
    return Blobs((X + offset).astype(dtype), labels, means + offset, covariances)


def _random_factors(
    rng: np.random.Generator, count: int, d: int, scale_range: tuple[float, float]
) -> np.ndarray:
    """Lower-triangular factors with diagonals in ``scale_range`` and small off-diagonals."""
    lower = np.tril(rng.normal(0.0, 0.3, size=(count, d, d)), -1)
    diagonal = rng.uniform(*scale_range, size=(count, d))
    return lower + np.einsum("kd,de->kde", diagonal, np.eye(d))


def make_blobs(n_per=200, dim=2, seed=0, spread=1.0, separation=6.0):
    """Well-separated Gaussian blobs: (X, labels, centers)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, separation, size=(3, dim))
    X = np.concatenate([rng.normal(c, spread, size=(n_per, dim)) for c in centers])
    labels = np.repeat(np.arange(3), n_per)
    return X, labels, centers


def make_separated_blocks(
    centres: Sequence[Sequence[float]] | np.ndarray,
    n_per: int,
    seed: int | np.random.Generator = 0,
    scale: float = 1.0,
) -> np.ndarray:
    """``n_per`` rows of N(centre, scale**2 I) around each centre, block after block."""
    rng = _rng(seed)
    centres = np.asarray(centres, dtype=np.float64)
    d = centres.shape[1]
    return np.concatenate([rng.normal(size=(n_per, d)) * scale + c for c in centres])


def make_overlapping_blobs(
    n: int, d: int, n_groups: int, seed: int | np.random.Generator = 0, step: float = 3.0
) -> np.ndarray:
    """Unit-variance rows shifted by ``step`` times a random group index in every
    coordinate: groups ``step`` standard deviations apart along the diagonal, overlapping."""
    rng = _rng(seed)
    return rng.normal(size=(n, d)) + rng.integers(0, n_groups, (n, 1)) * step


def make_correlated_gaussian(
    n: int, d: int, seed: int | np.random.Generator = 0, offset: float | np.ndarray = 0.0
) -> np.ndarray:
    """One Gaussian with a random, well-conditioned mixing matrix ``A + 2 I`` (drawn
    first), rows ``z A + offset``."""
    rng = _rng(seed)
    mixing = rng.normal(size=(d, d)) + 2.0 * np.eye(d)
    return rng.normal(size=(n, d)) @ mixing + offset


def make_modes_1d(
    modes: Sequence[tuple[float, float, int]], seed: int | np.random.Generator = 0
) -> np.ndarray:
    """A 1-D sample, shape (n, 1): ``count`` draws of N(centre, scale**2) per mode, in order."""
    rng = _rng(seed)
    draws = [rng.normal(centre, scale, count) for centre, scale, count in modes]
    return np.concatenate(draws)[:, None]


@pytest.fixture
def blobs():
    return make_blobs()


@pytest.fixture
def well_separated() -> np.ndarray:
    """300 rows in 2-D, three unit-variance blocks 6 apart (easy for every estimator)."""
    return make_separated_blocks([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0]], 100, seed=0)


@pytest.fixture
def overlapping() -> np.ndarray:
    """3000 rows in 3-D from four unit-variance groups 3 apart (overlapping)."""
    return make_overlapping_blobs(3000, 3, 4, seed=0)


@pytest.fixture
def one_dimensional() -> np.ndarray:
    """500 rows, shape (500, 1): two modes, N(-2, 0.5^2) x 300 and N(3, 1) x 200."""
    return make_modes_1d([(-2.0, 0.5, 300), (3.0, 1.0, 200)], seed=0)


@pytest.fixture(autouse=True)
def _close_figures():
    """Close the figures a test left open (only where pyplot was imported at all)."""
    yield
    pyplot = sys.modules.get("matplotlib.pyplot")
    if pyplot is not None:
        pyplot.close("all")

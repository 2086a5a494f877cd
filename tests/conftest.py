from __future__ import annotations

import numpy as np
import pytest


def make_blobs(n_per=200, dim=2, seed=0, spread=1.0, separation=6.0):
    """Well-separated Gaussian blobs: (X, labels, centers)."""
    rng = np.random.default_rng(seed)
    centers = rng.normal(0.0, separation, size=(3, dim))
    X = np.concatenate([rng.normal(c, spread, size=(n_per, dim)) for c in centers])
    labels = np.repeat(np.arange(3), n_per)
    return X, labels, centers


@pytest.fixture
def blobs():
    return make_blobs()

"""Review of the Gaussian held values, FFT grid_size check and source-budget round: the
FFT error offers only remedies that work, the streamed mean is computed in one place, and
a None inside a held mean is named as such."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mixtorch import FullCovariance, Gaussian, GaussianKDE
from mixtorch.fit.fft_kde import MEMORY_LIMIT_BYTES, SCORE_MAX_SIZES, check_grid_size
from mixtorch.fit.streaming import gaussian_from_stream, stream_mean
from mixtorch.sources import from_callable


def _needed(message: str) -> list[int]:
    found = re.search(r"at least (\[[\d, ]+\]|\d+)\.", message)
    assert found is not None, message
    text = found.group(1)
    return [int(n) for n in text.strip("[]").split(",")]


def _exact_log_kde(points: np.ndarray, X: np.ndarray, bandwidth: np.ndarray) -> np.ndarray:
    """float64 brute force: log of the mean of N(points | x_i, bandwidth)."""
    terms = np.stack([multivariate_normal(x, bandwidth).logpdf(points) for x in X])
    return logsumexp(terms, axis=0) - math.log(len(X))


# -- the FFT grid_size error: None is offered only where its capped grid holds the data --------
def test_grid_size_error_offers_none_only_when_the_default_grid_would_work():
    X = np.random.default_rng(0).normal(size=(300, 2))
    with pytest.raises(ValueError, match="too small") as caught:
        GaussianKDE(algorithm="fft", grid_size=25).fit(X)
    message = str(caught.value)
    assert "None to size the grid from the data" in message
    assert max(_needed(message)) <= SCORE_MAX_SIZES[2]
    # The advice holds: the default grid scores these data, close to the exact sum.
    model = GaussianKDE(algorithm="fft").fit(X)
    reference = _exact_log_kde(X[:20], X, model.bandwidth_)
    np.testing.assert_allclose(model.score_samples(X[:20]), reference, atol=5e-3)


def test_grid_size_error_does_not_offer_none_when_its_capped_grid_is_too_small():
    X = np.random.default_rng(0).normal(size=(300, 3))
    with pytest.raises(ValueError, match="too small") as caught:
        GaussianKDE(algorithm="fft", grid_size=60, bandwidth=0.05).fit(X)
    message = str(caught.value)
    needed = _needed(message)
    assert max(needed) > SCORE_MAX_SIZES[3] == 192
    assert "None to size" not in message
    assert "grid_size=None would not do: it caps the grid at 192 nodes per axis" in message
    # ... and indeed the default grid refuses these data at the first score.
    model = GaussianKDE(algorithm="fft", bandwidth=0.05).fit(X)
    with pytest.raises(ValueError, match=r"more than a grid of \[192, 192, 192\] nodes"):
        model.score_samples(X[:2])
    # The size it names does fit in memory, and is accepted.
    assert check_grid_size(needed, 3) == needed


def test_grid_size_error_says_when_the_grid_needed_exceeds_the_memory_limit():
    X = np.random.default_rng(0).normal(size=(300, 3))
    model = GaussianKDE(algorithm="fft", grid_size=100).fit(X)
    before = model.bandwidth_.copy()
    with pytest.raises(ValueError, match="too small") as caught:
        model.set_bandwidth(0.02)
    message = str(caught.value)
    needed = _needed(message)
    assert 8 * 3 * math.prod(needed) > MEMORY_LIMIT_BYTES  # the grid's three float64 arrays
    assert "Pass a grid_size that large" not in message
    assert re.search(r"would need about [\d.]+ GiB \(limit 2 GiB\)", message)
    with pytest.raises(ValueError, match="GiB of memory"):  # the advice not given is right
        check_grid_size(needed, 3)
    np.testing.assert_array_equal(model.bandwidth_, before)  # refused, nothing changed


# -- one streamed mean for the free and the held-covariance Gaussian ---------------------
def test_stream_mean_is_the_float64_mean_of_every_chunk():
    rng = np.random.default_rng(0)
    X = (1e4 + rng.normal(size=(1000, 3))).astype(np.float32)
    chunks = [torch.from_numpy(X[:300]), torch.from_numpy(X[300:301]), torch.from_numpy(X[301:])]
    mean = stream_mean(lambda: iter(chunks), 3, torch.float32, "cpu")
    assert mean.dtype == torch.float32
    np.testing.assert_allclose(mean.numpy(), X.astype(np.float64).mean(0), rtol=1e-7)


def test_too_few_streamed_rows_are_counted_in_the_error():
    one_row = torch.ones(1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Found 1 sample\(s\) while a minimum of 2 is required"):
        gaussian_from_stream(lambda: iter([one_row]), FullCovariance, 0.0, 2, "cpu", torch.float64)
    empty = from_callable(lambda: iter([torch.zeros(0, 2, dtype=torch.float64)]))
    with pytest.raises(ValueError, match=r"Found 0 sample\(s\) while a minimum of 1 is required"):
        Gaussian(fixed_covariance=np.eye(2)).fit(empty)
    # One row is enough with the covariance held: the mean is that row.
    single = from_callable(lambda: iter([torch.tensor([[1.0, -2.0]], dtype=torch.float64)]))
    model = Gaussian(fixed_covariance=np.eye(2)).fit(single)
    np.testing.assert_array_equal(model.mean_, [1.0, -2.0])


# -- messages of the held values ---------------------------------------------------------
def test_none_inside_a_held_mean_is_named_in_the_error():
    X = np.random.default_rng(0).normal(size=(20, 3))
    with pytest.raises(ValueError, match=r"fixed_mean must be finite, it contains NaN \(or None\)"):
        Gaussian(fixed_mean=[0.0, None, 0.0]).fit(X)

"""The statistics engine (mixtorch.stats) against brute force in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from conftest import make_blobs_mixture
from mixtorch.covariance import covariance_class
from mixtorch.mixture import Mixture
from mixtorch.stats import (
    SufficientStatistics,
    accumulate_statistics,
    pass_chunks,
    statistics_from_responsibilities,
)


@pytest.fixture(autouse=True)
def _restore_thread_count():
    """Some tests set torch's intra-op thread count (chunk threads need two)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def data(n=900, d=3, seed=0, offset=0.0):
    return make_blobs_mixture(n, d, 3, "spherical", seed=seed, offset=offset).X


def a_mixture(covariance_type, d=3, seed=1, dtype=torch.float64):
    rng = np.random.default_rng(seed)
    K = 3
    means = rng.normal(0, 4, size=(K, d))
    if covariance_type == "full":
        factors = rng.normal(size=(K, d, d)) * 0.4
        covariances = factors @ factors.transpose(0, 2, 1) + np.eye(d)
    else:
        covariances = rng.uniform(0.5, 2.0, size=(K, d))
    weights = rng.dirichlet(np.ones(K))
    return Mixture.from_parameters(weights, means, covariances, covariance_type, dtype=dtype)


def dense_covariances(mixture):
    return mixture.covariance.full_matrices(mixture.n_components).double().numpy()


def brute_log_densities(X, mixture, log_weights):
    """(n, K) ``log_weights_k + log N(x | mean_k, Sigma_k)`` by SciPy, float64."""
    means = mixture.means.double().numpy()
    covariances = dense_covariances(mixture)
    columns = [multivariate_normal(means[k], covariances[k]).logpdf(X) for k in range(len(means))]
    return np.stack(columns, 1) + np.asarray(log_weights)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_statistics_from_responsibilities_equal_brute_force(covariance_type):
    X = data()
    rng = np.random.default_rng(3)
    responsibilities = rng.dirichlet(np.ones(3), size=len(X))
    reference = torch.as_tensor(rng.normal(0, 4, size=(3, 3)))
    kind = covariance_class(covariance_type)
    given = torch.as_tensor(responsibilities)
    stats = statistics_from_responsibilities(
        torch.as_tensor(X).split(128),
        lambda chunk, start: given[start : start + chunk.shape[0]],
        kind,
        reference,
    )
    counts, means, centred = stats.moments(torch.float64)
    expected_counts = responsibilities.sum(0)
    expected_means = responsibilities.T @ X / expected_counts[:, None]
    np.testing.assert_allclose(counts.numpy(), expected_counts, rtol=1e-12)
    np.testing.assert_allclose(means.numpy(), expected_means, rtol=1e-12, atol=1e-12)
    for k in range(3):
        diff = X - expected_means[k]
        scatter = (responsibilities[:, k, None] * diff).T @ diff
        expected = scatter if covariance_type == "full" else np.diag(scatter)
        np.testing.assert_allclose(centred[k].numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_accumulate_with_constants_and_entropy_equals_brute_force(covariance_type):
    X = data(seed=4)
    mixture = a_mixture(covariance_type)
    log_weights = torch.tensor([-0.3, -2.0, 0.7], dtype=torch.float64)  # not a distribution
    stats = accumulate_statistics(
        mixture, pass_chunks(torch.as_tensor(X), 100), log_weights=log_weights, entropy=True
    )
    log_prob = brute_log_densities(X, mixture, log_weights.numpy())
    log_norm = logsumexp(log_prob, axis=1)
    responsibilities = np.exp(log_prob - log_norm[:, None])
    entropy = -np.sum(responsibilities * np.log(responsibilities))
    assert float(stats.log_likelihood) == pytest.approx(log_norm.sum(), rel=1e-12)
    assert stats.entropy is not None
    assert float(stats.entropy) == pytest.approx(entropy, rel=1e-10)
    counts, means, _ = stats.moments(torch.float64)
    np.testing.assert_allclose(counts.numpy(), responsibilities.sum(0), rtol=1e-10)
    expected_means = responsibilities.T @ X / responsibilities.sum(0)[:, None]
    np.testing.assert_allclose(means.numpy(), expected_means, rtol=1e-10, atol=1e-10)


def test_entropy_is_only_tracked_on_request():
    X = torch.as_tensor(data(seed=5))
    stats = accumulate_statistics(a_mixture("full"), pass_chunks(X, 200))
    assert stats.entropy is None
    assert (stats + stats).entropy is None
    assert stats.all_reduce().entropy is None  # no process group: unchanged


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_threads_give_the_sequential_sums(covariance_type):
    X = torch.as_tensor(data(n=5000, seed=6))
    mixture = a_mixture(covariance_type)
    offsets = torch.tensor([0.1, -0.4, 0.2], dtype=torch.float64)
    chunks = [chunk for chunk in X.split(100)]  # 50 chunks: shared out to threads
    torch.set_num_threads(2)
    threaded = accumulate_statistics(mixture, chunks, log_weights=offsets, entropy=True)
    sequential = accumulate_statistics(mixture, iter(chunks), log_weights=offsets, entropy=True)
    for name in ("counts", "sums", "scatter", "log_likelihood", "entropy"):
        # the same chunk sums added in the same order: equal, not merely close
        torch.testing.assert_close(
            getattr(threaded, name), getattr(sequential, name), rtol=0, atol=0
        )


def test_pass_chunks_cover_the_rows_in_order_within_the_bound():
    X = torch.arange(100_000.0).reshape(-1, 1)
    torch.set_num_threads(2)
    chunks = pass_chunks(X, 43_690)
    assert max(len(chunk) for chunk in chunks) <= 43_690
    assert len(chunks) >= 8  # four per thread
    torch.testing.assert_close(torch.cat(chunks), X)
    small = pass_chunks(X[:3000], 43_690)
    assert min(len(chunk) for chunk in small[:-1]) >= 2048  # not cut below the minimum
    torch.testing.assert_close(torch.cat(small), X[:3000])


def test_float32_moments_on_offset_data():
    X64 = data(n=4000, seed=7, offset=1e4)
    X32 = torch.as_tensor(X64, dtype=torch.float32)
    labels = torch.as_tensor(np.argmin(((X64[:, None] - X64[:3][None]) ** 2).sum(-1), 1))
    one_hot = torch.nn.functional.one_hot(labels, 3)
    kind = covariance_class("full")
    reference = X32[:3]
    stats = statistics_from_responsibilities(
        X32.split(512),
        lambda chunk, start: one_hot[start : start + chunk.shape[0]],
        kind,
        reference,
    )
    _, _, centred = stats.moments(torch.float32)
    for k in range(3):
        rows = X64[labels.numpy() == k]
        expected = np.cov(rows.T, bias=True) * len(rows)
        np.testing.assert_allclose(centred[k].numpy(), expected, rtol=2e-4, atol=1e-3 * len(rows))


def test_about_moves_the_reference_exactly():
    rng = np.random.default_rng(8)
    X = torch.as_tensor(rng.normal(size=(50, 2)))
    ones = torch.ones(50, 1, dtype=torch.float64)
    kind = covariance_class("full")
    stats = statistics_from_responsibilities([X], lambda c, s: ones, kind, X[:1])
    moved = stats.about(torch.zeros(1, 2, dtype=torch.float64))
    np.testing.assert_allclose(moved.sums[0].numpy(), X.sum(0).numpy(), rtol=1e-12)
    np.testing.assert_allclose(moved.scatter[0].numpy(), (X.T @ X).numpy(), rtol=1e-12)
    assert isinstance(moved, SufficientStatistics)

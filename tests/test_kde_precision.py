"""Exact KDE accuracy on data wide relative to the bandwidth, against float64 brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from conftest import make_modes_1d
from mixtorch import GaussianKDE
from mixtorch.fit.kernel_sum import MAX_GROUP_RADIUS, build_groups, log_kernel_sum


def _brute(queries: np.ndarray, data: np.ndarray, h: float) -> np.ndarray:
    """log (1/n) sum_j N(q | x_j, h^2 I) by explicit float64 differences."""
    q, x = queries.astype(np.float64), data.astype(np.float64)
    squared = ((q[:, None, :] - x[None, :, :]) ** 2).sum(-1)
    d = x.shape[1]
    return (
        logsumexp(-0.5 * squared / h**2, axis=1)
        - np.log(len(x))
        - 0.5 * d * np.log(2 * np.pi * h * h)
    )


def _two_clusters(dtype):
    X = make_modes_1d([(0, 1, 400), (1e4, 1, 400)], seed=0).astype(dtype)
    Q = np.r_[X[:40] + 0.05, X[-40:] - 0.03].astype(dtype)
    return X, Q


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float32, 1e-4), (np.float64, 1e-12)])
def test_one_dimensional_clusters_far_apart(dtype, tolerance):
    # Before the guard: float32 gave +inf next to the data, float64 was off by 1e-9.
    X, Q = _two_clusters(dtype)
    result = GaussianKDE(0.1).fit(X).score_samples(Q)
    assert result.dtype == dtype
    np.testing.assert_allclose(result.astype(np.float64), _brute(Q, X, 0.1), rtol=0, atol=tolerance)


@pytest.mark.parametrize(("dtype", "tolerance"), [(np.float32, 2e-5), (np.float64, 1e-12)])
def test_wide_two_dimensional_data_with_narrow_kernels(dtype, tolerance):
    # Spread 100, h = 0.05: the expansion about one centre was off by 1.1 nats in float32.
    rng = np.random.default_rng(1)
    X = rng.uniform(-100, 100, size=(1500, 2)).astype(dtype)
    Q = (X[:200] + rng.normal(0, 0.05, size=(200, 2))).astype(dtype)
    result = GaussianKDE(0.05).fit(X).score_samples(Q).astype(np.float64)
    np.testing.assert_allclose(result, _brute(Q, X, 0.05), rtol=0, atol=tolerance)


def test_float64_matches_scipy_to_rounding_on_wide_data():
    rng = np.random.default_rng(2)
    X = np.r_[rng.normal(0, 1, (300, 2)), rng.normal(500, 1, (300, 2))]
    Q = np.r_[X[::7] + 0.3, [[250.0, 250.0]]]
    kde = GaussianKDE("scott").fit(X)
    reference = stats.gaussian_kde(X.T)
    # The data covariance is ill-conditioned (condition 1e5), which both libraries pay for:
    # relative errors up to condition x unit roundoff = 1e-11 (measured against a long
    # double sum: 1.7e-12 here, SciPy 1.3e-12; 3e-13 apart on another CPU, 2.2e-12 on this).
    np.testing.assert_allclose(kde.score_samples(Q), reference.logpdf(Q.T), rtol=1e-11)
    narrow = GaussianKDE(0.02).fit(X)
    np.testing.assert_allclose(narrow.score_samples(Q[:-1]), _brute(Q[:-1], X, 0.02), atol=1e-11)


@pytest.mark.parametrize("d", [1, 2, 3, 8])
def test_float32_error_model_inside_one_group(d):
    # The documented model: about C u (r + 4)^2 nats with C <= 1.3 near the data.
    rng = np.random.default_rng(d)
    X = (rng.uniform(-1, 1, size=(2000, d)) * 3.0 / np.sqrt(d) + 1000.0).astype(np.float32)
    Q = (X[:300] + rng.normal(0, 0.1, size=(300, d))).astype(np.float32)
    kde = GaussianKDE(0.1).fit(X)
    radius = max(float(g[1][:, :d].square().sum(1).max().sqrt()) for g in kde._groups)
    assert radius <= MAX_GROUP_RADIUS
    error = np.abs(kde.score_samples(Q).astype(np.float64) - _brute(Q, X, 0.1)).max()
    assert error <= 1.5 * 2.0**-24 * (radius + 4) ** 2


def test_groups_respect_the_radius_and_cover_every_point():
    rng = np.random.default_rng(3)
    X = torch.tensor(rng.normal(size=(5000, 2)) * [50.0, 1.0], dtype=torch.float64)
    log_w = torch.full((5000,), -np.log(5000.0), dtype=torch.float64)
    factor = torch.eye(2, dtype=torch.float64) / 0.5
    groups = build_groups(X, log_w, factor)
    assert sum(g.rows.shape[0] for g in groups) == 5000
    for group in groups:
        if not group.by_differences:
            assert float(group.rows[:, :2].norm(dim=1).max()) <= MAX_GROUP_RADIUS
    queries = X[:100] + 0.1
    ours = log_kernel_sum(queries, groups, factor).numpy()
    expected = logsumexp(
        -0.5 * (((queries[:, None] - X[None]) / 0.5) ** 2).sum(-1).numpy() - np.log(5000.0), axis=1
    )
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_far_queries_stay_finite_and_exact():
    X, _ = _two_clusters(np.float64)
    Q = np.array([[5e3], [-1e6], [2e4]])
    result = GaussianKDE(0.1).fit(X).score_samples(Q)
    np.testing.assert_allclose(result, _brute(Q, X, 0.1), rtol=1e-14)


@pytest.mark.parametrize("algorithm", ["exact", "fft"])
def test_float32_queries_beyond_float32s_range_have_density_zero(algorithm):
    X = np.random.default_rng(2).normal(size=(200, 2))
    kde = GaussianKDE(0.5, algorithm=algorithm, dtype="float32").fit(X)
    queries = np.r_[X[:3], [[1e39, 0.0], [0.0, -1e300]]]  # finite in float64, not in float32
    result = kde.score_samples(queries)
    np.testing.assert_array_equal(result[3:], -np.inf)
    np.testing.assert_allclose(result[:3], kde.score_samples(X[:3]), rtol=1e-6)
    assert np.isfinite(result[:3]).all()

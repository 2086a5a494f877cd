"""Binned (FFT) Gaussian KDE against float64 brute-force sums, in 1-D, 2-D and 3-D."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

from mixtorch import GaussianKDE
from mixtorch.fit.binned import (
    RegularGrid,
    fast_fft_size,
    fft_gaussian_convolution,
    linear_binning,
)


def _exact_log_density(queries, data, H, weights=None):
    """log sum_i w_i N(q | x_i, H), dense float64."""
    queries, data = np.atleast_2d(queries), np.atleast_2d(data)
    w = np.full(len(data), 1.0 / len(data)) if weights is None else weights / weights.sum()
    L = np.linalg.cholesky(np.atleast_2d(H))
    diffs = queries[:, None, :] - data[None, :, :]
    whitened = np.linalg.solve(L, diffs.reshape(-1, data.shape[1]).T).T
    squared = (whitened**2).sum(1).reshape(len(queries), len(data))
    log_norm = 0.5 * data.shape[1] * np.log(2 * np.pi) + np.log(np.diag(L)).sum()
    return logsumexp(-0.5 * squared + np.log(w), axis=1) - log_norm


def _normal(n, d, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d))


# -- the grid of densities (evaluate_grid) -------------------------------------------------
@pytest.mark.parametrize(("d", "h", "size"), [(1, 0.1, 1024), (2, 0.25, 128), (3, 0.4, 40)])
def test_evaluate_grid_matches_exact_sums_relative_to_peak(d, h, size):
    X = _normal(2000, d, seed=d)
    kde = GaussianKDE(h, algorithm="fft").fit(X)
    points, density = kde.evaluate_grid(size)
    assert points.shape == (size**d, d) and density.shape == (size**d,)
    rng = np.random.default_rng(0)
    nodes = np.r_[rng.choice(len(points), 300, replace=False), np.argmax(density)]
    exact = np.exp(_exact_log_density(points[nodes], X, h * h * np.eye(d)))
    error = np.abs(density[nodes] - exact).max() / exact.max()
    # Binning error after the variance correction, relative to the peak: it grows with
    # spacing / h, here 0.04, 0.2 and 0.7 (measured 4e-6, 3e-5 and 3e-3).
    assert error < [1e-4, 5e-4, 5e-3][d - 1]
    # The automatic grid reaches 5 kernel widths past the data on every axis.
    np.testing.assert_allclose(points.min(0), X.min(0) - 5 * h)
    np.testing.assert_allclose(points.max(0), X.max(0) + 5 * h)


def test_evaluate_grid_full_bandwidth_and_weights():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(1500, 2)) @ np.array([[1.0, 0.0], [0.8, 0.6]])
    weights = rng.uniform(0.1, 2.0, size=len(X))
    kde = GaussianKDE("scott", algorithm="fft").fit(X, sample_weight=weights)
    assert abs(kde.bandwidth_[0, 1]) > 0.01  # a correlated kernel
    points, density = kde.evaluate_grid(200)
    nodes = rng.choice(len(points), 300, replace=False)
    exact = np.exp(_exact_log_density(points[nodes], X, kde.bandwidth_, weights))
    assert np.abs(density[nodes] - exact).max() / density.max() < 1e-3
    # The grid carries essentially all the mass.
    cell = np.prod(points.max(0) - points.min(0)) / (199 * 199)
    assert density.sum() * cell == pytest.approx(1.0, abs=1e-3)


def test_evaluate_grid_on_a_given_grid_as_kdepy_lists_it():
    X = _normal(1000, 2, seed=4)
    axes = [np.linspace(-4, 4, 81), np.linspace(-3, 5, 81)]
    grid = np.array(list(itertools.product(*axes)))
    kde = GaussianKDE(0.3, algorithm="fft").fit(X)
    points, density = kde.evaluate_grid(grid)
    np.testing.assert_allclose(points, grid, atol=1e-12)
    exact = np.exp(_exact_log_density(grid, X, 0.09 * np.eye(2)))
    assert np.abs(density - exact).max() / exact.max() < 1e-3
    # A grid narrower than the data: points outside it still count.
    inner = np.array(list(itertools.product(np.linspace(0, 1, 11), np.linspace(0, 1, 11))))
    _, inner_density = kde.evaluate_grid(inner)
    exact_inner = np.exp(_exact_log_density(inner, X, 0.09 * np.eye(2)))
    assert np.abs(inner_density - exact_inner).max() / exact_inner.max() < 2e-3


def test_evaluate_grid_takes_kdepy_style_nodes_and_sizes_in_any_container():
    X = _normal(800, 1, seed=6)
    kde = GaussianKDE(0.25, algorithm="fft").fit(X)
    nodes = np.linspace(-4.0, 4.0, 161)
    flat_points, flat = kde.evaluate_grid(nodes)  # 1-D data: a flat array, as KDEpy's
    column_points, column = kde.evaluate_grid(nodes[:, None])
    np.testing.assert_array_equal(flat, column)
    np.testing.assert_allclose(flat_points[:, 0], nodes, atol=1e-12)
    exact = np.exp(_exact_log_density(nodes[:, None], X, np.array([[0.0625]])))
    assert np.abs(flat - exact).max() / exact.max() < 1e-3
    _, from_list = kde.evaluate_grid(nodes[:, None].tolist())  # nested lists
    np.testing.assert_array_equal(from_list, column)
    # Sizes as a NumPy integer array (one per axis) mean what the same list means.
    X2 = _normal(500, 2, seed=7)
    kde2 = GaussianKDE(0.3, algorithm="fft").fit(X2)
    np.testing.assert_array_equal(
        kde2.evaluate_grid(np.array([33, 17]))[1], kde2.evaluate_grid([33, 17])[1]
    )
    # A flat float array for 2-D data is neither nodes nor sizes: the error says what is.
    with pytest.raises(ValueError, match=r"grid needs 2 entries .*\(M, n_features\) array"):
        kde2.evaluate_grid(np.linspace(0.0, 1.0, 5))


def test_evaluate_grid_exact_algorithm_and_tensor_output():
    X = torch.randn(300, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    fast = GaussianKDE(0.2, algorithm="fft").fit(X)
    exact = GaussianKDE(0.2).fit(X)
    points, density = fast.evaluate_grid(257)
    assert isinstance(points, torch.Tensor) and isinstance(density, torch.Tensor)
    reference = torch.exp(torch.as_tensor(exact.score_samples(points)))
    assert float((density - reference).abs().max() / reference.max()) < 1e-3


@pytest.mark.parametrize(
    "grid", [np.array([[0.0], [1.0], [3.0]]), np.zeros((4, 2)), np.array([[0.0], [np.nan]])]
)
def test_evaluate_grid_rejects_irregular_grids(grid):
    kde = GaussianKDE(0.5, algorithm="fft").fit(_normal(50, 1))
    with pytest.raises(ValueError, match="grid"):
        kde.evaluate_grid(grid)


# -- log-densities anywhere (score_samples) --------------------------------------------------
@pytest.mark.parametrize(("d", "h"), [(1, 0.15), (2, 0.3), (3, 0.45)])
def test_score_samples_in_the_bulk_and_the_tails(d, h):
    X = _normal(3000, d, seed=10 + d)
    kde = GaussianKDE(h, algorithm="fft").fit(X)
    rng = np.random.default_rng(1)
    bulk = rng.normal(size=(300, d))
    error = np.abs(kde.score_samples(bulk) - _exact_log_density(bulk, X, h * h * np.eye(d)))
    assert np.median(error) < 3e-3 and error.max() < 2e-2
    # Tails inside the grid, up to 6 kernel widths past the data along each axis.
    tails = np.zeros((2 * d, d))
    for axis in range(d):
        tails[2 * axis, axis] = X[:, axis].max() + 5 * h
        tails[2 * axis + 1, axis] = X[:, axis].min() - 5 * h
    exact_tails = _exact_log_density(tails, X, h * h * np.eye(d))
    # Documented worst case at r kernel widths: (r s + s**2 / 2)**2 / 8, s = 1/8.
    np.testing.assert_allclose(kde.score_samples(tails), exact_tails, atol=0.05)


@pytest.mark.parametrize("d", [1, 2, 3])
def test_score_samples_beyond_the_grid_needs_no_exact_sum(d):
    X = _normal(2000, d, seed=20 + d)
    h = 0.3
    kde = GaussianKDE(h, algorithm="fft").fit(X)
    far = np.zeros((2 * d, d))
    for axis in range(d):
        far[2 * axis, axis], far[2 * axis + 1, axis] = 40.0, -25.0
    exact = _exact_log_density(far, X, h * h * np.eye(d))
    assert exact.max() < -1000  # far beyond the grid
    # Along an axis the extreme points dominate: the tail-point sum is nearly exact.
    np.testing.assert_allclose(kde.score_samples(far), exact, rtol=1e-6)
    diagonal = np.full((1, d), -12.0)
    estimate = kde.score_samples(diagonal)
    reference = _exact_log_density(diagonal, X, h * h * np.eye(d))
    # A lower bound, tight to well within one nat.
    assert reference[0] - 0.5 < estimate[0] < reference[0] + 1e-6


def test_score_samples_weighted_float32_and_tensors():
    rng = np.random.default_rng(5)
    X = rng.normal(size=(800, 2)).astype(np.float32)
    weights = rng.uniform(0.5, 1.5, size=800)
    kde = GaussianKDE("silverman", algorithm="fft").fit(X, sample_weight=weights)
    queries = rng.normal(size=(100, 2)).astype(np.float32)
    result = kde.score_samples(queries)
    assert result.dtype == np.float32
    exact = _exact_log_density(queries.astype(np.float64), X.astype(np.float64),
                               kde.bandwidth_.astype(np.float64), weights)  # fmt: skip
    assert np.abs(result - exact).max() < 1e-2
    tensor = kde.score_samples(torch.from_numpy(queries))
    assert isinstance(tensor, torch.Tensor)
    np.testing.assert_allclose(tensor.numpy(), result, rtol=1e-6)


# -- outliers and tiny inputs ------------------------------------------------------------------
def test_outlier_does_not_stretch_the_grid():
    """Issue 13: 1000 normal points and one at 1e5, h = 0.1: -1.03 at 0 (was 0.58)."""
    X = np.r_[_normal(1000, 1, seed=7), [[1e5]]]
    kde = GaussianKDE(0.1, algorithm="fft").fit(X)
    queries = np.array([[0.0], [1.0], [1e5], [1e5 + 0.3], [5e4]])
    exact = _exact_log_density(queries, X, np.array([[0.01]]))
    result = kde.score_samples(queries)
    np.testing.assert_allclose(result[:4], exact[:4], atol=2e-3)
    assert result[4] == pytest.approx(exact[4], rel=1e-6)  # far from both: bounds are tight
    points, density = kde.evaluate_grid(2048)
    assert points.max() < 10  # the automatic grid covers the bulk only
    nodes = np.arange(0, 2048, 16)
    reference = np.exp(_exact_log_density(points[nodes], X, np.array([[0.01]])))
    assert np.abs(density[nodes] - reference).max() / reference.max() < 1e-3


def test_too_spread_out_data_are_refused_with_advice():
    X = np.linspace(0, 1e4, 2000)[:, None]
    kde = GaussianKDE(0.1, algorithm="fft").fit(X)
    with pytest.raises(ValueError, match="algorithm='exact'"):
        kde.score_samples(X[:3])


@pytest.mark.parametrize("d", [1, 2])
def test_two_points_and_one_point(d):
    two = np.arange(2 * d, dtype=float).reshape(2, d) * [1.0, 2.0][:d]
    for X, bandwidth in [(two, 0.4), (two[:1], 0.4), (np.r_[two[:1], two[:1] + 0.5], "scott")]:
        if d == 2 and isinstance(bandwidth, str):
            continue  # two points in 2-D are collinear: no data-driven bandwidth
        kde = GaussianKDE(bandwidth, algorithm="fft").fit(X)
        H = kde.bandwidth_
        near, tail = np.r_[X, X + 0.37], X - 3.0
        np.testing.assert_allclose(
            kde.score_samples(near), _exact_log_density(near, X, H), atol=5e-3
        )
        # 5 to 10 kernel widths out: the documented tail bound, (r s + s**2/2)**2 / 8.
        np.testing.assert_allclose(
            kde.score_samples(tail), _exact_log_density(tail, X, H), atol=0.05
        )
        points, density = kde.evaluate_grid(64)
        exact = np.exp(_exact_log_density(points, X, H))
        assert np.abs(density - exact).max() / exact.max() < 5e-3


# -- parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("grid_size", "message"),
    [(10**9, r"grid_size=1000000000 would need about .* GiB"), (1e9, "'grid_size' parameter"),
     (1, "'grid_size' parameter"), (2.5, "'grid_size' parameter"),
     ("big", "'grid_size' parameter"), ((10, 10), "needs 1 entries"),
     ((1,), "at least 2")],
)  # fmt: skip
def test_bad_grid_size_is_a_clear_value_error(grid_size, message):
    with pytest.raises(ValueError, match=message):
        GaussianKDE(0.5, algorithm="fft", grid_size=grid_size).fit(_normal(20, 1))


def test_grid_size_sets_the_log_density_grid():
    X = _normal(500, 1, seed=9)
    coarse = GaussianKDE(0.5, algorithm="fft", grid_size=80).fit(X)
    fine = GaussianKDE(0.5, algorithm="fft", grid_size=4000).fit(X)
    queries = np.linspace(-3, 3, 50)[:, None]
    exact = _exact_log_density(queries, X, np.array([[0.25]]))
    coarse_error = np.abs(coarse.score_samples(queries) - exact).max()
    fine_error = np.abs(fine.score_samples(queries) - exact).max()
    assert fine_error < coarse_error and fine_error < 1e-4


def test_evaluate_grid_memory_is_checked():
    kde = GaussianKDE(0.5, algorithm="fft").fit(_normal(20, 3))
    with pytest.raises(ValueError, match="GiB"):
        kde.evaluate_grid(5000)


# -- building blocks ---------------------------------------------------------------------------
def test_linear_binning_keeps_mass_and_mean():
    rng = np.random.default_rng(11)
    points = torch.as_tensor(rng.uniform(0.0, 1.0, size=(3, 5000)))
    weights = torch.as_tensor(rng.uniform(size=5000))
    spacing = torch.tensor([0.1, 0.05, 0.25], dtype=torch.float64)
    grid = RegularGrid(torch.zeros(3, dtype=torch.float64), spacing, (11, 21, 5))
    counts = linear_binning(points, weights, grid)
    assert float(counts.sum()) == pytest.approx(float(weights.sum()), rel=1e-12)
    nodes = grid.points().reshape(11, 21, 5, 3)
    mean = (counts[..., None] * nodes).sum((0, 1, 2)) / counts.sum()
    expected = (weights[:, None] * points.T).sum(0) / weights.sum()
    np.testing.assert_allclose(mean.numpy(), expected.numpy(), rtol=1e-12)
    unit = linear_binning(points[:1], None, RegularGrid(grid.origin[:1], spacing[:1], (11,)))
    assert float(unit.sum()) == pytest.approx(1.0, rel=1e-12)
    assert float((unit.numpy() * np.arange(11) * 0.1).sum()) == pytest.approx(
        float(points[0].mean()), rel=1e-12
    )


def test_fft_convolution_equals_the_direct_sum():
    rng = np.random.default_rng(12)
    counts = torch.as_tensor(rng.uniform(size=(23, 17)))
    spacing = torch.tensor([0.2, 0.3], dtype=torch.float64)
    H = torch.tensor([[0.3, 0.1], [0.1, 0.2]], dtype=torch.float64)
    result = fft_gaussian_convolution(counts, spacing, H, radius=40.0)
    nodes = np.stack(np.meshgrid(np.arange(23) * 0.2, np.arange(17) * 0.3, indexing="ij"), -1)
    nodes = nodes.reshape(-1, 2)
    direct = np.exp(_exact_log_density(nodes, nodes, H.numpy(), counts.numpy().reshape(-1)))
    np.testing.assert_allclose(result.numpy().reshape(-1), direct * counts.sum().item(), rtol=1e-10)


def test_fast_fft_size():
    assert [fast_fft_size(n) for n in (1, 7, 17, 97, 4097)] == [1, 8, 18, 100, 4320]


def test_uniform_weights_shortcut_matches_explicit_weights():
    """Unweighted fits skip the weight scans; the grid density equals the one of a fit
    with explicit equal weights, on a grid covering only part of the data (points out of
    the grid's reach are dropped with their mass) and on the automatic grid."""
    rng = np.random.default_rng(3)
    X = rng.normal(size=(5000, 1))
    plain = GaussianKDE(0.2, algorithm="fft").fit(X)
    weighted = GaussianKDE(0.2, algorithm="fft").fit(X, sample_weight=np.full(5000, 2.0))
    partial = np.linspace(-1.0, 0.5, 301)[:, None]
    for grid in (partial, 512):
        points, density = plain.evaluate_grid(grid)
        points_w, density_w = weighted.evaluate_grid(grid)
        np.testing.assert_allclose(points, points_w)
        np.testing.assert_allclose(density, density_w, rtol=1e-12, atol=1e-15)
    # Against the exact sum (all points count, the far ones contribute ~0 on this grid).
    exact = np.exp(GaussianKDE(0.2).fit(X).score_samples(partial))
    np.testing.assert_allclose(plain.evaluate_grid(partial)[1], exact, rtol=2e-3)


def test_data_covariance_computed_on_first_use_for_explicit_bandwidths():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 2)) @ np.array([[1.0, 0.5], [0.0, 2.0]])
    w = rng.uniform(0.5, 2.0, 400)
    for sample_weight in (None, w):
        kde = GaussianKDE(0.3).fit(X, sample_weight=sample_weight)
        expected = np.cov(X.T, aweights=sample_weight)
        np.testing.assert_allclose(kde.data_covariance_, expected, rtol=1e-12)
        rule = GaussianKDE("scott").fit(X, sample_weight=sample_weight)
        np.testing.assert_allclose(rule.data_covariance_, expected, rtol=1e-12)
    assert GaussianKDE(0.3).fit(X[:1]).data_covariance_ is None
    assert not hasattr(GaussianKDE(0.3), "data_covariance_")


def test_data_covariance_on_first_use_survives_a_model_file(tmp_path):
    import mixtorch

    X = np.random.default_rng(5).normal(size=(300, 2))
    path = mixtorch.save(GaussianKDE(0.4).fit(X), tmp_path / "kde.mixtorch")
    loaded = mixtorch.load(path)
    np.testing.assert_allclose(loaded.data_covariance_, np.cov(X.T), rtol=1e-12)

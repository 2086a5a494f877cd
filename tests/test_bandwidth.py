"""KDE bandwidth selection as pure functions (mixtorch.fit.bandwidth) against SciPy,
NumPy and the leave-one-out likelihood written out in float64."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from conftest import make_correlated_gaussian, make_modes_1d
from mixtorch import GaussianKDE
from mixtorch.fit.bandwidth import (
    DuplicatePointsWarning,
    data_covariance,
    duplicate_labels,
    effective_n,
    loo_log_likelihood,
    loo_log_likelihood_matrix,
    naive_log_likelihood,
    optimise_loo_factor,
    optimise_loo_matrix,
    rule_of_thumb_factor,
    weighted_mean,
)


def weighted_data(n: int = 120, d: int = 2, seed: int = 0):
    X = make_correlated_gaussian(n, d, seed, offset=2.0)
    raw = np.random.default_rng(seed + 1).random(n) + 0.2
    return X, raw / raw.sum()


def whiten(X: np.ndarray, w: np.ndarray) -> tuple[torch.Tensor, float]:
    """Data whitened by the Cholesky factor of the weighted covariance, and log det of it."""
    covariance = np.cov(X.T, aweights=w).reshape(X.shape[1], X.shape[1])
    lower = np.linalg.cholesky(covariance)
    Z = np.linalg.solve(lower, (X - np.average(X, axis=0, weights=w)).T).T
    return torch.as_tensor(Z), float(np.linalg.slogdet(covariance)[1])


def brute_loo(X: np.ndarray, w: np.ndarray, factor: float, copies=None) -> float:
    """n sum_i w_i log(sum_{j not a copy of i} w_j N(x_i | x_j, f^2 S) / (1 - W_i)),
    with W_i the weight of i's copies (itself included), in float64."""
    n, d = X.shape
    H = np.cov(X.T, aweights=w).reshape(d, d) * factor**2
    log_kernels = np.stack([stats.multivariate_normal(x, H).logpdf(X) for x in X])  # [j, i]
    labels = np.arange(n) if copies is None else np.asarray(copies)
    same = labels[:, None] == labels[None, :]
    log_kernels[same] = -np.inf
    held_weight = np.array([w[labels == labels[i]].sum() for i in range(n)])
    per_point = logsumexp(log_kernels + np.log(w)[:, None], axis=0) - np.log1p(-held_weight)
    return float(n * (w * per_point).sum())


# -- weighted moments and the rules of thumb against SciPy -------------------------------
def test_effective_n_mean_and_covariance_match_numpy_and_scipy():
    X, w = weighted_data()
    reference = stats.gaussian_kde(X.T, weights=w)
    assert effective_n(torch.as_tensor(w)) == pytest.approx(reference.neff, rel=1e-13)
    mean = weighted_mean(torch.as_tensor(X), torch.as_tensor(w))
    np.testing.assert_allclose(mean.numpy(), np.average(X, axis=0, weights=w), rtol=1e-13)
    covariance = data_covariance(torch.as_tensor(X), torch.as_tensor(w))
    np.testing.assert_allclose(covariance.numpy(), np.cov(X.T, aweights=w), rtol=1e-12)
    np.testing.assert_allclose(covariance.numpy(), reference.covariance / reference.factor**2)


def test_float32_covariance_of_offset_data_is_accurate():
    X64 = make_correlated_gaussian(2000, 3, seed=2, offset=1e4)
    X32 = X64.astype(np.float32)
    w = np.full(len(X32), 1 / len(X32))
    got = data_covariance(torch.as_tensor(X32), torch.as_tensor(w, dtype=torch.float32))
    expected = np.cov(X32.astype(np.float64).T)  # the float32 values, exactly
    np.testing.assert_allclose(got.numpy(), expected, rtol=2e-4, atol=2e-4 * np.abs(expected).max())


@pytest.mark.parametrize("d", [1, 3])
def test_rules_of_thumb_are_scipys_factors(d):
    X, w = weighted_data(200, d, seed=3)
    reference = stats.gaussian_kde(X.T, weights=w)
    n_effective = effective_n(torch.as_tensor(w))
    scott = rule_of_thumb_factor("scott", n_effective, d)
    silverman = rule_of_thumb_factor("silverman", n_effective, d)
    assert scott == pytest.approx(reference.scotts_factor(), rel=1e-13)
    assert silverman == pytest.approx(reference.silverman_factor(), rel=1e-13)
    with pytest.raises(ValueError, match="expected 'scott' or 'silverman'"):
        rule_of_thumb_factor("normal", n_effective, d)


def test_one_point_has_no_covariance():
    X = torch.ones(1, 2, dtype=torch.float64)
    with pytest.raises(ValueError, match="at least two points"):
        data_covariance(X, torch.ones(1, dtype=torch.float64))


# -- the leave-one-out likelihood against the formula -------------------------------------
def test_loo_log_likelihood_is_the_leave_one_out_formula():
    X, w = weighted_data(90, 2, seed=4)
    Z, log_det = whiten(X, w)
    factors = [0.1, 0.35, 1.0, 3.0]
    got = loo_log_likelihood(
        Z, torch.as_tensor(w), torch.tensor(factors, dtype=torch.float64), log_det
    )
    expected = [brute_loo(X, w, f) for f in factors]
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-11)


def test_the_matrix_form_agrees_with_the_scalar_form():
    X, w = weighted_data(70, 2, seed=5)
    Z, log_det = whiten(X, w)
    lower = np.linalg.cholesky(np.cov(X.T, aweights=w))
    for factor in (0.2, 0.8):
        scalar = loo_log_likelihood(
            Z, torch.as_tensor(w), torch.tensor([factor], dtype=torch.float64), log_det
        )
        matrix = loo_log_likelihood_matrix(
            torch.as_tensor(X), torch.as_tensor(w), torch.as_tensor(factor * lower)
        )
        assert float(matrix) == pytest.approx(float(scalar[0]), rel=1e-11)


def test_repeated_rows_are_left_out_together():
    rounded = np.round(make_modes_1d([(0, 1, 80), (4, 0.5, 40)], seed=6), 1)
    w = np.full(len(rounded), 1 / len(rounded))
    with pytest.warns(DuplicatePointsWarning, match="repeated rows"):
        copies = duplicate_labels(torch.as_tensor(rounded))
    assert copies is not None
    same = copies.numpy()[:, None] == copies.numpy()[None, :]
    np.testing.assert_array_equal(same, rounded == rounded.T)
    Z, log_det = whiten(rounded, w)
    got = loo_log_likelihood(
        Z, torch.as_tensor(w), torch.tensor([0.3], dtype=torch.float64), log_det, copies=copies
    )
    assert float(got[0]) == pytest.approx(brute_loo(rounded, w, 0.3, copies.numpy()), rel=1e-11)


def test_distinct_rows_have_no_copies_and_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert duplicate_labels(torch.as_tensor(make_correlated_gaussian(50, 2))) is None


def test_naive_likelihood_prefers_zero_bandwidth_but_loo_does_not():
    """Moved from test_kde.py: the in-sample likelihood grows without bound as the
    bandwidth shrinks; the leave-one-out one has an interior maximum."""
    rng = np.random.default_rng(2)
    half = make_correlated_gaussian(75, 1, rng)
    X = torch.tensor(np.concatenate([half, rng.normal(size=(75, 1)) * 0.5 + 3.0]))
    weights = torch.full((150,), 1 / 150, dtype=torch.float64)
    Z = (X - X.mean()) / X.std()
    factors = torch.tensor([0.01, 0.03, 0.1, 0.3, 1.0], dtype=torch.float64)
    naive = naive_log_likelihood(Z, weights, factors, float(torch.log(X.var())))
    assert bool((naive[:-1] > naive[1:]).all())  # grows as the bandwidth shrinks
    kde = GaussianKDE("loo").fit(X.numpy())
    assert 0.03 < kde.factor_ < 1.0


# -- the searches -------------------------------------------------------------------------
def test_scalar_search_ends_at_a_maximum_of_the_formula():
    X, w = weighted_data(100, 2, seed=7)
    Z, log_det = whiten(X, w)
    start = rule_of_thumb_factor("scott", effective_n(torch.as_tensor(w)), 2)
    result = optimise_loo_factor(Z, torch.as_tensor(w), log_det, start)
    assert result.log_likelihood == pytest.approx(brute_loo(X, w, result.factor), rel=1e-11)
    for step in (0.99, 1.01):
        assert brute_loo(X, w, result.factor * step) < result.log_likelihood
    assert (np.diff(result.factors) > 0).all()
    assert result.log_likelihoods.max() == result.log_likelihood


def test_matrix_search_never_returns_worse_than_its_start():
    X, w = weighted_data(60, 2, seed=8)
    start = torch.as_tensor(np.cov(X.T, aweights=w) * 0.3**2)
    lower = np.linalg.cholesky(start.numpy())
    at_start = float(
        loo_log_likelihood_matrix(torch.as_tensor(X), torch.as_tensor(w), torch.as_tensor(lower))
    )
    for shape in ("diag", "full"):
        H, value = optimise_loo_matrix(torch.as_tensor(X), torch.as_tensor(w), start, shape, 30)
        if shape == "diag":
            assert float(H[0, 1]) == 0.0
        else:
            assert value >= at_start
        recomputed = loo_log_likelihood_matrix(
            torch.as_tensor(X), torch.as_tensor(w), torch.linalg.cholesky(H)
        )
        assert value == pytest.approx(float(recomputed), rel=1e-10)
        assert math.isfinite(value)
    with pytest.raises(ValueError, match="shape must be 'diag' or 'full'"):
        optimise_loo_matrix(torch.as_tensor(X), torch.as_tensor(w), start, "tied")

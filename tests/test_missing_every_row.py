"""Missing-value EM when every row misses an entry: no complete row in any chunk."""

from __future__ import annotations

import numpy as np
import pytest

from mixtorch import GaussianMixture


def _one_gaussian_em(X: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact EM for one Gaussian with entries missing at random, in float64, row by row."""
    mean = np.nanmean(X, 0)
    covariance = np.diag(np.nanvar(X, 0))
    n, d = X.shape
    for _ in range(iterations):
        filled = np.empty_like(X)
        scatter = np.zeros((d, d))
        for i, row in enumerate(X):
            m, o = np.isnan(row), ~np.isnan(row)
            gain = covariance[np.ix_(m, o)] @ np.linalg.inv(covariance[np.ix_(o, o)])
            filled[i, o] = row[o]
            filled[i, m] = mean[m] + gain @ (row[o] - mean[o])
            scatter[np.ix_(m, m)] += covariance[np.ix_(m, m)] - gain @ covariance[np.ix_(o, m)]
        mean = filled.mean(0)
        centred = filled - mean
        covariance = (centred.T @ centred + scatter) / n
    return mean, covariance


@pytest.mark.parametrize("kind", ["full", "tied"])
def test_every_row_incomplete_fits_as_exact_em(kind: str) -> None:
    rng = np.random.default_rng(0)
    # D=8: wide enough that full/tied E-steps take explicit differences, whose pass over
    # a chunk of no rows (every row here misses an entry) used to fail in torch.stack
    mixing = np.tril(rng.normal(size=(8, 8))) + 2.0 * np.eye(8)
    X = rng.normal(size=(120, 8)) @ mixing.T
    X[np.arange(120), rng.integers(0, 8, 120)] = np.nan  # one hole in every row
    model = GaussianMixture(
        1, covariance_type=kind, missing_values=np.nan, tol=0, max_iter=400, reg_covar=0.0
    )
    with pytest.warns(Warning):  # stopped by max_iter with tol=0 (both runs end at the fixed point)
        model.fit(X)
    mean, covariance = _one_gaussian_em(X, 400)
    np.testing.assert_allclose(model.means_[0], mean, rtol=1e-9, atol=1e-9)
    got = model.covariances_ if kind == "tied" else model.covariances_[0]
    np.testing.assert_allclose(got, covariance, rtol=1e-8, atol=1e-9)

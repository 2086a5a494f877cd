"""GaussianKDE hardening: parameters, ties in leave-one-out, degenerate data, LOO shapes."""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp
from sklearn.utils._param_validation import InvalidParameterError

from conftest import make_modes_1d
from mixtorch import CovarianceError, GaussianKDE
from mixtorch.kde import DuplicatePointsWarning


def _blobs(n: int, d: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)) @ (rng.normal(size=(d, d)) + 2 * np.eye(d))


# -- parameters ------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "name"),
    [
        ({"chunk_size": -1}, "chunk_size"),
        ({"chunk_size": 0}, "chunk_size"),
        ({"chunk_size": math.inf}, "chunk_size"),
        ({"chunk_size": -0.5}, "chunk_size"),
        ({"chunk_size": "10"}, "chunk_size"),
        ({"loo_max_iter": -1}, "loo_max_iter"),
        ({"loo_max_iter": 2.5}, "loo_max_iter"),
        ({"loo_type": "spherical"}, "loo_type"),
        ({"algorithm": "tree"}, "algorithm"),
        ({"grid_size": 1}, "grid_size"),
        ({"bandwidth": -0.1}, "bandwidth"),
        ({"bandwidth": "auto"}, "bandwidth"),
        ({"device": 3}, "device"),
    ],
)
def test_bad_parameters_raise_invalid_parameter_error_naming_them(params, name):
    with pytest.raises(InvalidParameterError, match=f"'{name}' parameter of GaussianKDE"):
        GaussianKDE(**params).fit(_blobs(20, 2))


def test_chunk_size_counts_query_rows():
    X, Q = _blobs(300, 2), _blobs(101, 2, seed=1)
    expected = GaussianKDE().fit(X).score_samples(Q)
    for rows in (1, 7, 100, 10_000):
        result = GaussianKDE(chunk_size=rows).fit(X).score_samples(Q)
        np.testing.assert_allclose(result, expected, rtol=1e-14)
        assert np.isfinite(result).all()


def test_non_positive_definite_kernel_error_speaks_of_the_bandwidth():
    kde = GaussianKDE(0.5).fit(_blobs(20, 2))
    bad = np.array([[1.0, 0.0], [0.0, -1.0]])
    with pytest.raises(CovarianceError) as info:
        kde._set_bandwidth(torch.tensor(bad), 1.0, kde._fit_kind)
    message = str(info.value)
    assert "bandwidth" in message
    assert "reg_covar" not in message and "components" not in message


# -- degenerate (collinear) data ----------------------------------------------------------------
def test_collinear_data_are_refused_for_every_draw():
    refused = 0
    for seed in range(40):
        t = np.random.default_rng(seed).normal(size=50)
        X = np.c_[t, 0.3 * t + 1.7]  # exactly on a line, up to rounding
        with pytest.raises(ValueError, match="lower-dimensional subspace"):
            GaussianKDE().fit(X)
        refused += 1
    assert refused == 40
    # Three features where one is a combination of the others, and a constant feature.
    t = _blobs(60, 2)
    with pytest.raises(ValueError, match="lower-dimensional"):
        GaussianKDE("silverman").fit(np.c_[t, t @ [0.5, -2.0]])
    with pytest.raises(ValueError, match="lower-dimensional"):
        GaussianKDE("loo").fit(np.c_[t, np.full(60, 3.0)])
    # LOO 'full' on two points in 2-D: no more points than dimensions, said plainly.
    with pytest.raises(ValueError, match="more points than dimensions"):
        GaussianKDE("loo", loo_type="full").fit(t[:2])


def test_nearly_collinear_but_full_rank_data_are_accepted():
    t = np.random.default_rng(4).normal(size=(200, 2))
    X = np.c_[t[:, 0], t[:, 0] + 1e-3 * t[:, 1]]  # correlation 1 - 5e-7
    kde = GaussianKDE().fit(X)
    reference = stats.gaussian_kde(X.T)
    np.testing.assert_allclose(kde.score_samples(X[:20]), reference.logpdf(X[:20].T), rtol=1e-9)
    # An explicit bandwidth never needs the data covariance: collinear data are fine.
    line = np.c_[t[:, 0], 2 * t[:, 0]]
    assert np.isfinite(GaussianKDE(0.3).fit(line).score_samples(line[:5])).all()


# -- ties in leave-one-out ------------------------------------------------------------------------
def _loo_without_copies(X: np.ndarray, H: np.ndarray) -> float:
    """Brute force: each point's density from the points that are not copies of it."""
    total = 0.0
    for x in X:
        others = X[~np.all(X == x, axis=1)]
        log_k = stats.multivariate_normal(x, H).logpdf(others)
        total += logsumexp(np.atleast_1d(log_k)) - math.log(len(others))
    return total


def test_loo_on_integer_counts_leaves_out_all_copies_and_warns():
    rng = np.random.default_rng(5)
    X = rng.poisson(4.0, size=(300, 1)).astype(float)
    with pytest.warns(DuplicatePointsWarning, match="repeated rows"):
        kde = GaussianKDE("loo").fit(X)
    # Before: a factor of 2e-13. Now a bandwidth on the scale of the integer spacing.
    h = math.sqrt(kde.bandwidth_[0, 0])
    assert 0.2 < h < 3.0
    assert kde.loo_log_likelihood_ == pytest.approx(
        _loo_without_copies(X, kde.bandwidth_), rel=1e-10
    )
    # The density between the integers is of the same order as on them.
    on, between = kde.score_samples(np.array([[4.0], [4.5]]))
    assert abs(on - between) < 2.0


def test_loo_with_duplicated_rows_in_two_dimensions():
    X = _blobs(80, 2, seed=6)
    X = np.r_[X, X[:30]]  # 30 points twice
    with pytest.warns(DuplicatePointsWarning):
        kde = GaussianKDE("loo").fit(X)
    assert kde.factor_ > 0.05
    assert kde.loo_log_likelihood_ == pytest.approx(
        _loo_without_copies(X, kde.bandwidth_), rel=1e-10
    )
    for loo_type in ("diag", "full"):
        with pytest.warns(DuplicatePointsWarning):
            matrix = GaussianKDE("loo", loo_type=loo_type, loo_max_iter=30).fit(X)
        assert matrix.loo_log_likelihood_ == pytest.approx(
            _loo_without_copies(X, matrix.bandwidth_), rel=1e-9
        )


def test_distinct_points_give_no_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianKDE("loo").fit(_blobs(50, 2))


# -- matrix LOO never worse than scalar ---------------------------------------------------------
@pytest.mark.parametrize("loo_type", ["diag", "full"])
def test_matrix_loo_keeps_the_scalar_optimum_when_it_is_better(loo_type):
    # A correlated 3-D Gaussian: the best diagonal matrix is worse than a multiple of
    # the covariance (it was -739.1 against -705.0).
    rng = np.random.default_rng(0)
    C = np.array([[1.0, 0.9, 0.8], [0.9, 1.0, 0.9], [0.8, 0.9, 1.0]])
    X = rng.multivariate_normal(np.zeros(3), C, size=200)
    scalar = GaussianKDE("loo").fit(X)
    matrix = GaussianKDE("loo", loo_type=loo_type, loo_max_iter=20).fit(X)
    assert matrix.loo_log_likelihood_ >= scalar.loo_log_likelihood_ - 1e-9
    H = matrix.bandwidth_
    log_k = np.stack([stats.multivariate_normal(x, H).logpdf(X) for x in X])
    np.fill_diagonal(log_k, -np.inf)
    brute = (logsumexp(log_k, axis=0) - np.log(len(X) - 1)).sum()
    assert matrix.loo_log_likelihood_ == pytest.approx(brute, rel=1e-10)


def test_float32_loo_on_wide_data_matches_float64():
    # Two clusters 1e3 apart: the LOO factor is about 1e-3 of the data's spread, where
    # float32 pair distances by the expansion would be rounding noise.
    X = make_modes_1d([(0, 1, 150), (1e3, 1, 150)], seed=9).astype(np.float32)
    single = GaussianKDE("loo").fit(X)
    double = GaussianKDE("loo").fit(X.astype(np.float64))
    assert single.factor_ == pytest.approx(double.factor_, rel=1e-4)
    assert single.loo_log_likelihood_ == pytest.approx(double.loo_log_likelihood_, rel=1e-6)


@pytest.mark.parametrize("scale", [1e300, 1e-200])
def test_bandwidths_whose_square_leaves_the_float_range_are_value_errors(scale):
    X = _blobs(40, 2)
    with pytest.raises(ValueError, match=r"bandwidth=.* out of range"):
        GaussianKDE(bandwidth=scale).fit(X)
    with pytest.raises(ValueError, match=r"bw_method=.* out of range"):
        GaussianKDE().fit(X).set_bandwidth(scale)
    with pytest.raises(ValueError, match=r"bandwidth factor=.* out of range"):
        GaussianKDE(bandwidth=lambda kde: scale).fit(X)


@pytest.mark.parametrize(("scale", "state"), [(1e-200, "is 0"), (1e200, "is not finite")])
def test_badly_scaled_data_are_named_as_such_not_as_degenerate(scale, state):
    X = _blobs(60, 2)
    with pytest.raises(
        ValueError, match=rf"Feature\(s\) \[0, 1\] vary, but their variance {state}"
    ):
        GaussianKDE().fit(X * scale)
    # Scaled within range, the same data fit, with the bandwidth scaled along.
    small = GaussianKDE().fit(X * 1e-150)
    np.testing.assert_allclose(
        small.bandwidth_, GaussianKDE().fit(X).bandwidth_ * 1e-300, rtol=1e-10
    )

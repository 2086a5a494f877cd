"""GaussianKDE against SciPy, scikit-learn and brute force in float64."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.optimize import minimize_scalar
from scipy.special import logsumexp
from sklearn.exceptions import NotFittedError
from sklearn.neighbors import KernelDensity
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import check_estimator, parametrize_with_checks

from conftest import make_correlated_gaussian
from mixtorch import GaussianKDE


def _blobs(n: int, d: int, seed: int = 0) -> np.ndarray:
    """A correlated group and a tight one around 3 (half the rows each)."""
    rng = np.random.default_rng(seed)
    half = n // 2
    return np.concatenate(
        [make_correlated_gaussian(half, d, rng), rng.normal(size=(n - half, d)) * 0.5 + 3.0]
    )


def _brute_log_density(queries: np.ndarray, data: np.ndarray, H: np.ndarray, w=None):
    """Dense float64 reference: log sum_j w_j N(q | x_j, H)."""
    w = np.full(len(data), 1.0 / len(data)) if w is None else w / w.sum()
    log_kernels = np.stack([stats.multivariate_normal(x, H).logpdf(queries) for x in data])
    return logsumexp(log_kernels.reshape(len(data), -1) + np.log(w)[:, None], axis=0)


# -- agreement with SciPy / scikit-learn ---------------------------------------------------
@pytest.mark.parametrize("rule", ["scott", "silverman"])
@pytest.mark.parametrize("d", [1, 2, 3])
@pytest.mark.parametrize("weighted", [False, True])
def test_rules_match_scipy_gaussian_kde(rule, d, weighted):
    X = _blobs(300, d, seed=d) + 50.0  # an offset: centring must keep it exact
    Q = _blobs(200, d, seed=10 + d) * 1.5 + 50.0
    weights = np.random.default_rng(3).random(len(X)) if weighted else None
    kde = GaussianKDE(rule).fit(X, sample_weight=weights)
    reference = stats.gaussian_kde(X.T, bw_method=rule, weights=weights)
    assert kde.factor_ == pytest.approx(reference.factor, rel=1e-14)
    np.testing.assert_allclose(kde.bandwidth_, reference.covariance, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(kde.score_samples(Q), reference.logpdf(Q.T), rtol=1e-12)
    np.testing.assert_allclose(kde.pdf(Q.T), reference.pdf(Q.T), rtol=1e-11)


def test_float_bandwidth_matches_sklearn_kernel_density():
    X, Q = _blobs(400, 2), _blobs(300, 2, seed=5)
    kde = GaussianKDE(0.37).fit(X)
    reference = KernelDensity(bandwidth=0.37, rtol=0.0, atol=0.0).fit(X)
    np.testing.assert_allclose(kde.score_samples(Q), reference.score_samples(Q), rtol=1e-12)
    np.testing.assert_allclose(kde.bandwidth_, 0.37**2 * np.eye(2), rtol=1e-15)
    assert kde.factor_ == 0.37
    # score is the SUM of log-densities, as in KernelDensity.
    assert kde.score(Q) == pytest.approx(reference.score(Q), rel=1e-12)


def test_matrix_bandwidth_and_weights_match_brute_force():
    X, Q = _blobs(60, 2), _blobs(40, 2, seed=9)
    H = np.array([[0.5, 0.2], [0.2, 0.3]])
    weights = np.arange(1, 61, dtype=float)
    kde = GaussianKDE(H).fit(X, sample_weight=weights)
    expected = _brute_log_density(Q, X, H, weights)
    np.testing.assert_allclose(kde.logpdf(Q.T), expected, rtol=1e-12)


def test_blocked_evaluation_and_far_queries_stay_exact():
    X = _blobs(500, 2)
    Q = np.concatenate([_blobs(50, 2, seed=4), [[60.0, -40.0], [1e3, 1e3]]])
    reference = stats.gaussian_kde(X.T)
    kde = GaussianKDE(chunk_size=7).fit(X)  # many small blocks of 7 query rows
    result = kde.score_samples(Q)
    assert np.isfinite(result).all()
    np.testing.assert_allclose(result, reference.logpdf(Q.T), rtol=1e-12)


def test_zero_weights_drop_points():
    X = _blobs(100, 2)
    weights = np.r_[np.ones(60), np.zeros(40)]
    kde = GaussianKDE(0.5).fit(X, sample_weight=weights)
    expected = GaussianKDE(0.5).fit(X[:60])
    Q = _blobs(30, 2, seed=2)
    np.testing.assert_allclose(kde.score_samples(Q), expected.score_samples(Q), rtol=1e-13)
    assert kde.n_samples_fit_ == 60


def test_tensor_in_tensor_out_and_float32_accuracy_on_offset_data():
    # Round the inputs to float32 first, so only the arithmetic is compared.
    X = (_blobs(400, 2) * 0.01 + 1000.0).astype(np.float32).astype(np.float64)
    Q = (_blobs(100, 2, seed=3) * 0.01 + 1000.0).astype(np.float32).astype(np.float64)
    expected = stats.gaussian_kde(X.T).logpdf(Q.T)
    kde = GaussianKDE().fit(torch.tensor(X, dtype=torch.float32))
    result = kde.score_samples(torch.tensor(Q, dtype=torch.float32))
    assert isinstance(result, torch.Tensor) and result.dtype == torch.float32
    assert isinstance(kde.bandwidth_, torch.Tensor)
    np.testing.assert_allclose(result.numpy(), expected, atol=2e-3)
    assert isinstance(kde.sample(5, random_state=0), torch.Tensor)


def test_kde_is_the_mixture_it_claims_to_be():
    X, Q = _blobs(50, 2), _blobs(20, 2, seed=8)
    kde = GaussianKDE("silverman").fit(X)
    mixture_log_prob = kde.mixture_.log_prob(torch.tensor(Q)).numpy()
    np.testing.assert_allclose(kde.score_samples(Q), mixture_log_prob, rtol=1e-12)


# -- leave-one-out bandwidth --------------------------------------------------------------
def _brute_loo(X: np.ndarray, factor: float) -> float:
    """Explicit double loop over points: sum_i log mean_{j != i} N(x_i | x_j, f^2 C)."""
    H = np.cov(X.T) * factor**2
    kernel = stats.multivariate_normal(np.zeros(X.shape[1]), H)
    total = 0.0
    for i in range(len(X)):
        others = np.delete(X, i, axis=0)
        total += math.log(kernel.pdf(others - X[i]).mean())
    return total


def test_loo_factor_is_the_brute_force_maximiser():
    X = _blobs(200, 2, seed=1)
    kde = GaussianKDE("loo").fit(X)
    grid = np.exp(np.linspace(np.log(0.05), np.log(2.0), 120))
    values = np.array([_brute_loo(X, f) for f in grid])
    best = int(np.argmax(values))
    assert 0 < best < len(grid) - 1
    refined = minimize_scalar(
        lambda t: -_brute_loo(X, math.exp(t)),
        bounds=(math.log(grid[best - 1]), math.log(grid[best + 1])),
        method="bounded",
        options={"xatol": 1e-8},
    )
    assert kde.factor_ == pytest.approx(math.exp(refined.x), rel=1e-5)
    assert kde.loo_log_likelihood_ == pytest.approx(-refined.fun, rel=1e-10)
    assert kde.loo_log_likelihood_ == pytest.approx(_brute_loo(X, kde.factor_), rel=1e-12)
    np.testing.assert_allclose(kde.bandwidth_, np.cov(X.T) * kde.factor_**2, rtol=1e-12)
    factors, curve = kde.loo_curve_
    assert factors.shape == curve.shape and len(factors) >= 25
    assert curve.max() == pytest.approx(kde.loo_log_likelihood_)
    some = [3, len(factors) // 2, len(factors) - 3]
    np.testing.assert_allclose(curve[some], [_brute_loo(X, factors[i]) for i in some], rtol=1e-11)


def test_weighted_loo_matches_its_formula():
    X = _blobs(80, 2, seed=5)
    raw = np.random.default_rng(2).random(80) + 0.1
    w = raw / raw.sum()
    kde = GaussianKDE("loo").fit(X, sample_weight=raw)

    def brute(factor):
        H = np.cov(X.T, aweights=w) * factor**2
        log_k = np.stack([stats.multivariate_normal(x, H).logpdf(X) for x in X])  # [j, i]
        np.fill_diagonal(log_k, -np.inf)
        per_point = logsumexp(log_k + np.log(w)[:, None], axis=0) - np.log1p(-w)
        return len(X) * (w * per_point).sum()

    assert kde.loo_log_likelihood_ == pytest.approx(brute(kde.factor_), rel=1e-12)
    for step in (0.98, 1.02):
        assert brute(kde.factor_ * step) < kde.loo_log_likelihood_


@pytest.mark.parametrize("loo_type", ["diag", "full"])
def test_matrix_loo_never_does_worse_than_scalar(loo_type):
    rng = np.random.default_rng(0)
    # Very different structure per axis: a bimodal axis and a smooth one.
    X = np.c_[np.r_[rng.normal(-3, 0.3, 75), rng.normal(3, 0.3, 75)], rng.normal(0, 1, 150)]
    scalar = GaussianKDE("loo").fit(X)
    matrix = GaussianKDE("loo", loo_type=loo_type, loo_max_iter=100).fit(X)
    assert matrix.loo_log_likelihood_ > scalar.loo_log_likelihood_ + 1.0
    H = matrix.bandwidth_
    if loo_type == "diag":
        assert H[0, 1] == 0.0
    # The reported value is the LOO log-likelihood of the returned matrix.
    n = len(X)
    log_kernels = np.stack([stats.multivariate_normal(x, H).logpdf(X) for x in X])
    np.fill_diagonal(log_kernels, -np.inf)
    brute = (logsumexp(log_kernels, axis=0) - np.log(n - 1)).sum()
    assert matrix.loo_log_likelihood_ == pytest.approx(brute, rel=1e-10)


# -- sampling -----------------------------------------------------------------------------
def test_samples_follow_the_kde_in_one_dimension():
    X = _blobs(300, 1, seed=4)
    weights = np.random.default_rng(1).random(300)
    kde = GaussianKDE("silverman").fit(X, sample_weight=weights)
    samples = kde.sample(4000, random_state=0)
    assert samples.shape == (4000, 1)
    w = weights / weights.sum()
    h = math.sqrt(kde.bandwidth_[0, 0])

    def cdf(t):
        return stats.norm.cdf((np.asarray(t)[:, None] - X[:, 0][None]) / h) @ w

    assert stats.kstest(samples[:, 0], cdf).pvalue > 0.01
    shifted = stats.kstest(samples[:, 0] + 0.2 * h, cdf).pvalue
    assert shifted < stats.kstest(samples[:, 0], cdf).pvalue


@pytest.mark.parametrize("count", [0, np.int64(0), np.array(0), torch.tensor(0)])
def test_zero_draws_are_an_empty_array_as_in_sklearn_and_scipy(count):
    X = _blobs(40, 3)
    ours = GaussianKDE(0.5).fit(X)
    theirs = KernelDensity(bandwidth=0.5).fit(X).sample(count, random_state=0)
    draws = ours.sample(count, random_state=0)
    assert draws.shape == theirs.shape == (0, 3)
    assert draws.dtype == theirs.dtype == np.float64
    resampled = ours.resample(count, seed=0)
    assert resampled.shape == stats.gaussian_kde(X.T).resample(0, seed=0).shape == (3, 0)
    tensor_draws = GaussianKDE(0.5).fit(torch.tensor(X, dtype=torch.float32)).sample(count)
    assert isinstance(tensor_draws, torch.Tensor)
    assert tensor_draws.shape == (0, 3) and tensor_draws.dtype == torch.float32


def test_sample_counts_as_sklearn_takes_them():
    X = _blobs(40, 2)
    ours, theirs = GaussianKDE(0.3).fit(X), KernelDensity(bandwidth=0.3).fit(X)
    for count in (np.array(3), torch.tensor(3)):  # 0-d integer arrays, as NumPy takes them
        assert ours.sample(count).shape == theirs.sample(count).shape == (3, 2)
    assert ours.resample(np.array(4)).shape == (2, 4)
    for count, error in ((-2, ValueError), (2.0, TypeError), (True, TypeError)):
        with pytest.raises(error, match="n_samples must be an integer"):
            ours.sample(count)
    with pytest.raises(ValueError, match="size must be an integer >= 0"):
        ours.resample(-1)
    with pytest.raises(ValueError, match="random_state"):
        ours.sample(0, random_state="seed")


def test_samples_have_the_kde_mean_and_covariance():
    X = _blobs(200, 2)
    kde = GaussianKDE().fit(X)
    samples = kde.sample(20000, random_state=1)
    expected_cov = np.cov(X.T, bias=True) + kde.bandwidth_
    np.testing.assert_allclose(samples.mean(0), X.mean(0), atol=0.06)
    # 20000 draws: the standard error of each entry is about 1% of it.
    np.testing.assert_allclose(np.cov(samples.T), expected_cov, rtol=0.04)
    again = kde.sample(5, random_state=7)
    np.testing.assert_array_equal(again, kde.sample(5, random_state=7))


# -- FFT approximation --------------------------------------------------------------------
@pytest.mark.parametrize("d", [1, 2])
def test_fft_matches_exact_within_documented_error(d):
    X = _blobs(3000, d, seed=6)
    Q = _blobs(500, d, seed=7)
    exact = GaussianKDE().fit(X)
    fast = GaussianKDE(algorithm="fft").fit(X)
    log_exact, log_fast = exact.score_samples(Q), fast.score_samples(Q)
    relative = np.abs(np.expm1(log_fast - log_exact))
    assert relative.max() < 5e-3
    assert np.median(relative) < 1e-3
    # Outside the grid the FFT path falls back to exact evaluation.
    far = np.full((2, d), 40.0)
    np.testing.assert_allclose(fast.score_samples(far), exact.score_samples(far), rtol=1e-12)


@pytest.mark.parametrize("bandwidth", ["scott", "loo", 0.5])
def test_fft_rejects_four_dimensions_before_fitting_anything(bandwidth):
    kde = GaussianKDE(bandwidth, algorithm="fft")
    with pytest.raises(ValueError, match="1-D to 3-D data, got 4-D; use algorithm='exact'"):
        kde.fit(_blobs(50, 4))
    assert not hasattr(kde, "mixture_")  # a failed fit leaves no fitted model behind
    with pytest.raises(NotFittedError):
        kde.score_samples(_blobs(5, 4))
    # A refit that fails leaves the earlier fit whole (data and model of the same D).
    kde.fit(_blobs(50, 2))
    with pytest.raises(ValueError, match="got 4-D"):
        kde.fit(_blobs(50, 4))
    assert kde.sample(3, random_state=0).shape == (3, 2)


def test_a_bad_fft_grid_size_leaves_no_fitted_model():
    kde = GaussianKDE(0.5, algorithm="fft", grid_size=[64, 64, 64])
    with pytest.raises(ValueError, match="grid_size"):
        kde.fit(_blobs(50, 2))
    assert not hasattr(kde, "mixture_")


# -- validation -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("bandwidth", "error", "message"),
    [
        (0.0, InvalidParameterError, "'bandwidth' parameter"),
        (-1.0, InvalidParameterError, "'bandwidth' parameter"),
        (float("nan"), InvalidParameterError, "'bandwidth' parameter"),
        (float("inf"), InvalidParameterError, "'bandwidth' parameter"),
        ("wide", InvalidParameterError, "'bandwidth' parameter"),
        (np.eye(3), ValueError, r"shape \(2, 2\)"),
        (np.array([[1.0, 2.0], [0.0, 1.0]]), ValueError, "symmetric"),
        (np.array([[1.0, 2.0], [2.0, 1.0]]), ValueError, "positive definite"),
        (np.array([[1.0, np.inf], [np.inf, 1.0]]), ValueError, "infinity"),
    ],
)
def test_bad_bandwidth(bandwidth, error, message):
    with pytest.raises(error, match=message):
        GaussianKDE(bandwidth).fit(_blobs(20, 2))


def test_bad_data_and_weights():
    X = _blobs(20, 2)
    with pytest.raises(ValueError, match="NaN"):
        GaussianKDE().fit(np.r_[X, [[np.nan, 0.0]]])
    with pytest.raises(ValueError, match="infinity"):
        GaussianKDE().fit(torch.tensor(np.r_[X, [[np.inf, 0.0]]]))
    for rule in ("scott", "loo"):
        with pytest.raises(ValueError, match="minimum of 2"):
            GaussianKDE(rule).fit(X[:1])
    GaussianKDE(0.5).fit(X[:1])  # an explicit bandwidth works with one point
    with pytest.raises(ValueError, match="non-negative"):
        GaussianKDE().fit(X, sample_weight=-np.ones(20))
    with pytest.raises(ValueError, match="positive sum"):
        GaussianKDE().fit(X, sample_weight=np.zeros(20))
    with pytest.raises(ValueError, match="entries"):
        GaussianKDE().fit(X, sample_weight=np.ones(3))
    kde = GaussianKDE().fit(X)
    with pytest.raises(ValueError, match="features"):
        kde.score_samples(np.ones((3, 3)))
    with pytest.raises(ValueError, match="n_samples must be an integer >= 0"):
        kde.sample(-1)
    with pytest.raises(InvalidParameterError, match="'algorithm' parameter"):
        GaussianKDE(algorithm="tree").fit(X)


@parametrize_with_checks([GaussianKDE(0.5)])
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_rule_of_thumb_bandwidth_passes_every_check_but_repeated_row_weights():
    # SciPy's rules treat weights as analytic weights (Kish's effective sample size), so an
    # integer weight is deliberately not the same as a repeated row; every other check of
    # scikit-learn must pass for the default bandwidth.
    results = check_estimator(GaussianKDE(), on_fail=None, on_skip=None)
    failed = {r["check_name"] for r in results if r["status"] == "failed"}
    assert failed == {"check_sample_weight_equivalence_on_dense_data"}
    assert sum(r["status"] == "passed" for r in results) > 30


def test_uniform_weights_are_one_value_shared_but_never_written_through():
    # Unweighted fits keep 1/n once (a broadcast view), not n copies of it.
    X = np.random.default_rng(11).normal(size=(500, 2))
    kde = GaussianKDE(0.4).fit(X)
    np.testing.assert_allclose(kde.weights_, np.full(500, 1 / 500), rtol=0, atol=0)
    assert not kde.weights_.flags.writeable  # writing one entry would change all
    with pytest.raises(ValueError, match="read-only"):
        kde.weights_[0] = 1.0
    scipy_weights = kde.weights  # SciPy's attribute: an array of its own
    scipy_weights[0] = 1.0
    assert kde.weights[0] == 1 / 500 and kde.neff == pytest.approx(500.0, rel=1e-12)
    tensor_kde = GaussianKDE(0.4).fit(torch.tensor(X))
    tensor_kde.weights_[0] = 1.0  # a tensor of its own: the model is unchanged
    np.testing.assert_allclose(
        tensor_kde.score_samples(torch.tensor(X[:20])).numpy(), kde.score_samples(X[:20])
    )
    weighted = GaussianKDE(0.4).fit(X, sample_weight=np.ones(500))
    np.testing.assert_allclose(weighted.score_samples(X), kde.score_samples(X), rtol=1e-13)
    np.testing.assert_allclose(
        weighted.evaluate_grid(64)[1], kde.evaluate_grid(64)[1], rtol=1e-12, atol=1e-300
    )

"""A careless SciPy/scikit-learn user's probe of GaussianKDE and Gaussian: the defects
it found stay fixed (clear errors naming the parameter, no NaN or silent wrong answer)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from mixtorch import Gaussian, GaussianKDE


def _data(n: int = 60, d: int = 2, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, d)) * np.arange(1, d + 1)


@pytest.fixture(scope="module")
def kde2():
    return GaussianKDE().fit(_data())


@pytest.fixture(scope="module")
def kde1():
    return GaussianKDE().fit(_data(d=1))


# -- GaussianKDE.set_bandwidth ---------------------------------------------------------
@pytest.mark.parametrize(
    "bandwidth", [0.3, np.array([[0.2, 0.05], [0.05, 0.4]]), "scott", "silverman"]
)
def test_set_bandwidth_none_keeps_the_kernel(bandwidth):
    # SciPy's set_bandwidth() recomputes the same kernel; a float or matrix bandwidth
    # used to be replaced by factor**2 times the data covariance.
    kde = GaussianKDE(bandwidth).fit(_data())
    before, H = kde.logpdf([[0.1], [0.2]]), kde.covariance.copy()
    kde.set_bandwidth()
    np.testing.assert_array_equal(kde.covariance, H)
    np.testing.assert_array_equal(kde.logpdf([[0.1], [0.2]]), before)


def test_set_bandwidth_none_keeps_a_loo_matrix():
    kde = GaussianKDE("loo", loo_type="diag", loo_max_iter=20).fit(_data())
    H = kde.covariance.copy()
    kde.set_bandwidth(None)
    np.testing.assert_array_equal(kde.covariance, H)


def test_set_bandwidth_callable_returning_no_number_is_a_type_error(kde2):
    kde = GaussianKDE().fit(_data())
    with pytest.raises(TypeError, match="callable bandwidth must return the scale factor"):
        kde.set_bandwidth(lambda k: "wide")
    with pytest.raises(ValueError, match="callable bandwidth returned -1.0"):
        kde.set_bandwidth(lambda k: -1)


def test_set_bandwidth_on_degenerate_data_names_the_data():
    # fitted with an explicit bandwidth on a constant feature: the rule's kernel is
    # singular because of the data, not because the bandwidth is too small
    X = np.c_[np.ones(30), _data(30, 1)]
    kde = GaussianKDE(0.5).fit(X)
    with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace"):
        kde.set_bandwidth("scott")
    np.testing.assert_allclose(kde.covariance, 0.25 * np.eye(2))  # left as it was


def test_set_bandwidth_matches_scipy_after_an_explicit_fit():
    X = _data()
    kde = GaussianKDE(0.3).fit(X)
    kde.set_bandwidth("silverman")
    theirs = stats.gaussian_kde(X.T, "silverman")
    points = np.array([[0.0, 1.0], [0.5, -2.0]])
    np.testing.assert_allclose(kde.logpdf(points), theirs.logpdf(points), rtol=1e-12)


# -- explicit bandwidths -----------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-30, 1e25])
def test_float32_bandwidth_out_of_float32_range_says_so(scale):
    # used to be "not positive definite ... give a larger bandwidth", also for 1e25
    with pytest.raises(ValueError, match=r"bandwidth=.* out of range.*float32.*float64"):
        GaussianKDE(scale, dtype="float32").fit(_data(d=1))


def test_float32_bandwidth_matrix_out_of_float32_range_says_so():
    with pytest.raises(ValueError, match=r"out of the range of float32.*dtype='float64'"):
        GaussianKDE(np.eye(2) * 1e-60, dtype="float32").fit(_data())
    with pytest.raises(ValueError, match=r"out of the range of float32"):
        GaussianKDE(torch.eye(2, dtype=torch.float64) * 1e60, dtype="float32").fit(_data())
    # the same matrix in float64 is fine
    GaussianKDE(np.eye(2) * 1e-60).fit(_data())


def test_float64_bandwidth_range_is_unchanged():
    kde = GaussianKDE(1e-150).fit(_data(d=1))
    assert np.isfinite(kde.score_samples(kde.dataset.T[:1]))[0]


@pytest.mark.parametrize("bandwidth", [np.eye(2) * (1 + 1j), torch.eye(2, dtype=torch.complex64)])
def test_complex_bandwidth_matrix_is_refused(bandwidth):
    # NumPy dropped the imaginary part with only a warning
    with pytest.raises(ValueError, match="bandwidth must be real numbers"):
        GaussianKDE(bandwidth).fit(_data())


@pytest.mark.parametrize(
    ("bandwidth", "error"),
    [
        ([[1.0, 0.0], [0.0]], ValueError),
        ([[1.0, 0.0], [0.0, "x"]], ValueError),
        ({"a": 1}, TypeError),
    ],
)
def test_bandwidth_that_is_not_numbers_names_what_to_give(bandwidth, error):
    # scikit-learn's types: a ValueError for values that are not numbers, a TypeError
    # for objects; the message says which forms a bandwidth takes
    with pytest.raises(error, match=r"bandwidth must be an array of numbers.*a \(2, 2\) matrix"):
        GaussianKDE(bandwidth).fit(_data())


# -- integrals -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("low", "error", "words"),
    [
        (np.nan, ValueError, "low is NaN"),
        ("a", ValueError, "low must be an array of numbers"),
        (None, TypeError, "low must be numbers, got None"),
        ([0.0, 1.0], ValueError, "low must be one number.*integrate_box"),
    ],
)
def test_integrate_box_1d_refuses_bad_limits(kde1, low, error, words):
    with pytest.raises(error, match=words):
        kde1.integrate_box_1d(low, 1.0)


def test_integrate_box_1d_takes_tensors_and_infinite_limits(kde1):
    theirs = stats.gaussian_kde(kde1.dataset)
    with np.errstate(all="raise"):
        ours = kde1.integrate_box_1d(torch.tensor(-0.5), torch.tensor([1.0]))
    assert ours == pytest.approx(theirs.integrate_box_1d(-0.5, 1.0), rel=1e-12)
    assert kde1.integrate_box_1d(-np.inf, np.inf) == pytest.approx(1.0)
    assert kde1.integrate_box_1d(1.0, -0.5) == pytest.approx(-ours)  # SciPy's sign


def test_integrate_box_refuses_nan_bounds(kde2):
    # used to return 0.0
    with pytest.raises(ValueError, match="low_bounds contains NaN"):
        kde2.integrate_box([np.nan, 0.0], [1.0, 1.0])
    with pytest.raises(ValueError, match="high_bounds contains NaN"):
        GaussianKDE(0.5).fit(_data()).integrate_box([0.0, 0.0], [1.0, np.nan])


@pytest.mark.parametrize(
    ("maxpts", "error"), [(0, ValueError), (-1, ValueError), (2.5, TypeError), ("a", TypeError)]
)
def test_integrate_box_checks_maxpts(kde2, maxpts, error):
    # 0, -1 and 2.5 were accepted silently
    with pytest.raises(error, match="maxpts must be"):
        kde2.integrate_box([-1.0, -1.0], [1.0, 1.0], maxpts=maxpts, rng=0)


@pytest.mark.parametrize(
    ("rng", "error", "words"),
    [
        ("a", ValueError, "rng must be None, an int seed"),
        (-1, ValueError, "rng must be None, an int seed"),
        (torch.Generator(), TypeError, "not a torch.Generator"),
        (True, TypeError, "rng must be"),
    ],
)
def test_integrate_box_and_cdf_check_rng(kde2, rng, error, words):
    with pytest.raises(error, match=words):
        kde2.integrate_box([-1.0, -1.0], [1.0, 1.0], rng=rng)
    with pytest.raises(error, match=words):  # also where the computation is exact
        GaussianKDE(0.5).fit(_data()).integrate_box([-1.0, -1.0], [1.0, 1.0], rng=rng)
    with pytest.raises(error, match=words):
        Gaussian().fit(_data()).cdf([0.0, 0.0], rng=rng)
    with pytest.raises(error, match=words):
        Gaussian().fit(_data(d=1)).cdf(0.0, rng=rng)


def test_integrate_box_keeps_scipy_values(kde2):
    theirs = stats.gaussian_kde(kde2.dataset)
    for low, high in [([-1, -1], [1, 1]), ([1, -1], [-1, 1]), ([-np.inf] * 2, [np.inf] * 2)]:
        assert kde2.integrate_box(low, high, maxpts=20_000, rng=0) == pytest.approx(
            theirs.integrate_box(low, high, maxpts=20_000, rng=0), rel=1e-12
        )


@pytest.mark.parametrize(
    ("mean", "cov", "error", "words"),
    [
        ([np.nan, 0.0], np.eye(2), ValueError, "mean must be finite"),
        ([np.inf, 0.0], np.eye(2), ValueError, "mean must be finite"),
        ([0.0, 0.0], [[1.0, np.nan], [np.nan, 1.0]], ValueError, "cov must be finite"),
        ([0.0, 0.0], [[1.0, 0.5], [0.0, 1.0]], ValueError, "cov must be symmetric"),
        ([0.0, 0.0], -np.eye(2), ValueError, "cov must be positive semidefinite"),
        ("ab", np.eye(2), ValueError, "mean must be an array of numbers"),
        ([0.0, 0.0], None, TypeError, "cov must be numbers, got None"),
    ],
)
def test_integrate_gaussian_checks_mean_and_cov(kde2, mean, cov, error, words):
    # NaN gave NaN, an asymmetric cov a silent answer from one triangle
    with pytest.raises(error, match=words):
        kde2.integrate_gaussian(mean, cov)


def test_integrate_gaussian_keeps_scipy_values(kde2):
    theirs = stats.gaussian_kde(kde2.dataset)
    for cov in (np.eye(2), np.zeros((2, 2)), [[2.0, 0.3], [0.3, 0.5]]):
        assert kde2.integrate_gaussian(torch.tensor([0.1, 0.2]), cov) == pytest.approx(
            theirs.integrate_gaussian([0.1, 0.2], cov), rel=1e-9
        )


# -- evaluation, marginals -------------------------------------------------------------------
def test_none_points_are_a_type_error(kde1):
    # NumPy read None as one NaN ("Input X contains NaN") or a 0-d shape
    with pytest.raises(TypeError, match="points must be an array of numbers, got None"):
        kde1.evaluate(None)
    gaussian = Gaussian().fit(_data())
    for method in (gaussian.logpdf, gaussian.pdf, gaussian.cdf, gaussian.logcdf):
        with pytest.raises(TypeError, match="x must be an array of numbers, got None"):
            method(None)


@pytest.mark.parametrize(("dimensions", "shape"), [([], r"\(0,\)"), ([[0]], r"\(1, 1\)")])
def test_marginal_refuses_no_dimensions_and_nested_lists(kde2, dimensions, shape):
    # [] was called "not integers", [[0]] a NumPy indexing error
    with pytest.raises(
        ValueError, match=f"flat sequence of at least one integer, got shape {shape}"
    ):
        kde2.marginal(dimensions)


def test_marginal_keeps_scipy_values(kde2):
    theirs = stats.gaussian_kde(kde2.dataset).marginal([1, 0])
    points = np.array([[0.2, 1.0], [0.1, -1.0]])
    np.testing.assert_allclose(
        kde2.marginal([1, 0]).logpdf(points), theirs.logpdf(points), rtol=1e-12
    )


# -- Gaussian.cdf ------------------------------------------------------------------------------
@pytest.mark.parametrize("d", [2, 5])
def test_cdf_of_no_points_is_empty(d):
    # SciPy's integration raised "Cannot apply_along_axis when any iteration dimensions
    # are 0"; logpdf already gave an empty array
    gaussian = Gaussian().fit(_data(200, d))
    for method in (gaussian.cdf, gaussian.logcdf):
        assert method(np.empty((0, d))).shape == (0,)
    assert gaussian.cdf(np.empty((3, 0, d)), lower_limit=np.zeros(d)).shape == (3, 0)


def test_cdf_in_five_dimensions_matches_scipy():
    gaussian = Gaussian().fit(_data(200, 5))
    frozen = stats.multivariate_normal(gaussian.mean, gaussian.cov)
    points = np.zeros((3, 5))
    np.testing.assert_allclose(
        gaussian.cdf(points, rng=np.random.default_rng(1)),
        frozen.cdf(points, rng=np.random.default_rng(1)),
        rtol=1e-12,
    )

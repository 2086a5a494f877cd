"""The single Gaussian against closed forms and SciPy."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from mixtorch import Gaussian

RNG = np.random.default_rng(0)


def correlated_data(n=2000, dim=3, offset=0.0):
    A = RNG.normal(size=(dim, dim))
    return offset + RNG.normal(size=(n, dim)) @ A.T + RNG.normal(size=dim)


def test_closed_form_is_the_sample_mean_and_biased_covariance():
    X = correlated_data()
    model = Gaussian().fit(X)
    np.testing.assert_allclose(model.mean_, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(model.covariance_, np.cov(X.T, bias=True), rtol=1e-11)
    np.testing.assert_allclose(model.precision_, np.linalg.inv(np.cov(X.T, bias=True)), rtol=1e-9)
    expected = stats.multivariate_normal(X.mean(0), np.cov(X.T, bias=True)).logpdf(X)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-11)
    assert model.score(X) == pytest.approx(expected.mean(), rel=1e-12)
    p = 3 + 6
    assert model.bic(X) == pytest.approx(-2 * expected.sum() + p * np.log(len(X)), rel=1e-12)
    assert model.aic(X) == pytest.approx(-2 * expected.sum() + 2 * p, rel=1e-12)


def test_one_dimensional():
    x = RNG.normal(5.0, 2.0, size=(500, 1))
    model = Gaussian().fit(x)
    assert model.mean_.shape == (1,) and model.covariance_.shape == (1, 1)
    assert model.covariance_[0, 0] == pytest.approx(x.var(), rel=1e-12)
    expected = stats.norm(x.mean(), x.std()).logpdf(x[:, 0])
    np.testing.assert_allclose(model.score_samples(x), expected, rtol=1e-12)


@pytest.mark.parametrize("kind", ["diag", "spherical", "tied"])
def test_other_covariance_types(kind):
    X = correlated_data()
    model = Gaussian(covariance_type=kind).fit(X)
    variances = X.var(0)
    expected = {"diag": variances, "spherical": variances.mean(), "tied": np.cov(X.T, bias=True)}[
        kind
    ]
    np.testing.assert_allclose(model.covariance_, expected, rtol=1e-11)


def test_sample_weight_is_a_frequency_weight():
    X = correlated_data(n=50)
    counts = RNG.integers(0, 4, size=50)
    weighted = Gaussian().fit(X, sample_weight=counts)
    repeated = Gaussian().fit(np.repeat(X, counts, axis=0))
    np.testing.assert_allclose(weighted.mean_, repeated.mean_, rtol=1e-12)
    np.testing.assert_allclose(weighted.covariance_, repeated.covariance_, rtol=1e-10)


def test_float32_large_offset_small_spread():
    X = (1000.0 + 0.01 * RNG.normal(size=(50_000, 2))).astype(np.float32)
    model = Gaussian().fit(X)
    assert model.covariance_.dtype == np.float32
    np.testing.assert_allclose(np.diag(model.covariance_), 1e-4, rtol=0.03)


def test_samples_have_the_fitted_moments():
    X = correlated_data()
    model = Gaussian(random_state=0).fit(torch.as_tensor(X))
    samples = model.sample(50_000)
    assert isinstance(samples, torch.Tensor) and samples.shape == (50_000, 3)
    np.testing.assert_allclose(samples.mean(0).numpy(), model.mean_.numpy(), atol=0.05)
    np.testing.assert_allclose(
        np.cov(samples.numpy().T), model.covariance_.numpy(), rtol=0.05, atol=0.02
    )


def test_degenerate_data_error_suggests_reg_covar():
    x = RNG.normal(size=(20, 1))
    with pytest.raises(ValueError, match="reg_covar"):
        Gaussian().fit(np.hstack([x, x]))
    assert np.isfinite(Gaussian(reg_covar=1e-6).fit(np.hstack([x, x])).score(np.hstack([x, x])))


@pytest.mark.parametrize(
    ("weights", "message"),
    [(-np.ones(20), "non-negative"), (np.zeros(20), "zero"), (np.ones(3), "3 entries"),
     (np.ones((20, 1)), r"1-D array .* shape \(20, 1\)"), (np.ones((1, 20)), "1-D array"),
     (np.ones(20) + 1j, "real numbers")],
)  # fmt: skip
def test_bad_sample_weight(weights, message):
    with pytest.raises(ValueError, match=message):
        Gaussian().fit(RNG.normal(size=(20, 2)), sample_weight=weights)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("scale", [1e-300, 1e-20, 1e-12, 1e300])
def test_only_relative_sample_weights_matter(covariance_type, scale):
    X = correlated_data(n=40)
    weights = RNG.uniform(0.5, 2.0, size=40)
    reference = Gaussian(covariance_type=covariance_type).fit(X, sample_weight=weights)
    scaled = Gaussian(covariance_type=covariance_type).fit(X, sample_weight=weights * scale)
    np.testing.assert_allclose(scaled.mean_, reference.mean_, rtol=1e-12)
    np.testing.assert_allclose(scaled.covariance_, reference.covariance_, rtol=1e-10)
    assert scaled.score(X) == pytest.approx(reference.score(X), rel=1e-12)
    # float32 data: weights far below float32's range still count.
    tiny = Gaussian(covariance_type=covariance_type).fit(
        X.astype(np.float32), sample_weight=weights * scale
    )
    np.testing.assert_allclose(tiny.covariance_, reference.covariance_, rtol=1e-4)


@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("chunk_size", [None, 7])  # one chunk, and many
def test_direct_log_density_matches_scipy(covariance_type, dtype, chunk_size):
    rng = np.random.default_rng(11)
    X = rng.normal(size=(300, 3)) @ np.array([[2.0, 0.3, 0.0], [0.0, 1.0, 0.5], [0, 0, 0.2]])
    X = (X + [1e3, -5.0, 0.0]).astype(dtype)  # an offset the arithmetic must survive
    model = Gaussian(covariance_type=covariance_type, dtype=dtype, chunk_size=chunk_size)
    model.fit(X)
    covariance = np.asarray(model.covariance_, dtype=np.float64)
    if covariance.ndim < 2:
        covariance = np.diag(np.broadcast_to(covariance, (3,)))
    reference = stats.multivariate_normal(np.asarray(model.mean_, np.float64), covariance)
    points = X[:40].astype(np.float64)
    tolerance = {"float32": 2e-5, "float64": 1e-12}[dtype]
    expected = reference.logpdf(points)
    np.testing.assert_allclose(model.score_samples(X[:40]), expected, rtol=tolerance)
    np.testing.assert_allclose(model.logpdf(points), expected, rtol=tolerance)
    as_tensor = model.logpdf(torch.as_tensor(points))
    assert isinstance(as_tensor, torch.Tensor)
    np.testing.assert_allclose(as_tensor.numpy(), expected, rtol=tolerance)


def test_direct_log_density_limits_and_refusals():
    model = Gaussian().fit(np.random.default_rng(12).normal(size=(100, 2)))
    far = model.score_samples([[1e200, -1e200], [1e308, 1e308], [0.0, 0.0]])
    assert far[0] == far[1] == -np.inf and np.isfinite(far[2])
    assert model.logpdf([1e200, 1e200]) == -np.inf
    for bad in ([np.nan, 0.0], [np.inf, 0.0]):
        with pytest.raises(ValueError, match="Input X contains"):
            model.logpdf(bad)
        with pytest.raises(ValueError, match="Input X contains"):
            model.score_samples([bad])
    with pytest.raises(ValueError, match="numeric input"):  # a bool tensor, as score_samples
        model.logpdf(torch.tensor([[True, False]]))


def test_logpdf_of_no_points_and_of_bare_arrays_for_a_named_model():
    # As SciPy: no points give no densities, whatever their dtype; a model fitted on a
    # DataFrame takes SciPy's bare arrays without scikit-learn's feature-name warning.
    pd = pytest.importorskip("pandas")
    rng = np.random.default_rng(13)
    model = Gaussian().fit(pd.DataFrame(rng.normal(size=(60, 2)), columns=["a", "b"]))
    reference = stats.multivariate_normal(model.mean_, model.covariance_)
    for empty in (np.empty((0, 2)), np.zeros((0, 2), dtype=int), torch.zeros(0, 2)):
        assert model.logpdf(empty).shape == reference.logpdf(np.empty((0, 2))).shape == (0,)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert model.logpdf([[0.1, 0.2]]) == pytest.approx(reference.logpdf([0.1, 0.2]))
        assert model.logpdf([[1e300, 0.0]]) == -np.inf  # the overflow path, too
        assert model.logpdf(np.array([[1, 2]])) == pytest.approx(reference.logpdf([1, 2]))

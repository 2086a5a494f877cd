"""Gaussian's multivariate_normal surface against scipy.stats and torch.distributions."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import special, stats
from scipy.stats import multivariate_normal
from sklearn.exceptions import NotFittedError

from conftest import make_correlated_gaussian
from mixtorch import Gaussian, Mixture

COVARIANCE_TYPES = ["full", "diag", "spherical", "tied"]


def _data(n_features: int = 3, seed: int = 0) -> np.ndarray:
    return make_correlated_gaussian(400, n_features, seed, offset=np.arange(n_features))


def _expected_cov(model: Gaussian, X: np.ndarray) -> np.ndarray:
    """The fitted covariance as a full matrix, from the data (independent of the model)."""
    full = np.cov(X.T, bias=True).reshape(X.shape[1], X.shape[1])
    if model.covariance_type == "diag":
        return np.diag(np.diag(full))
    if model.covariance_type == "spherical":
        return np.eye(X.shape[1]) * np.trace(full) / X.shape[1]
    return full


def _reference(model: Gaussian, X: np.ndarray):
    return stats.multivariate_normal(X.mean(0), _expected_cov(model, X))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mean_cov_logpdf_pdf_entropy_match_scipy(covariance_type):
    X = _data()
    model = Gaussian(covariance_type=covariance_type, dtype=torch.float64).fit(X)
    reference = _reference(model, X)
    np.testing.assert_allclose(model.mean, reference.mean, rtol=1e-10)
    np.testing.assert_allclose(model.cov, reference.cov, rtol=1e-10)
    points = _data(seed=1)[:7]
    np.testing.assert_allclose(model.logpdf(points), reference.logpdf(points), rtol=1e-10)
    np.testing.assert_allclose(model.pdf(points), reference.pdf(points), rtol=1e-10)
    assert model.entropy() == pytest.approx(reference.entropy(), rel=1e-12)
    assert isinstance(model.entropy(), float)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_cdf_and_logcdf_match_scipy(covariance_type):
    X = _data()
    model = Gaussian(covariance_type=covariance_type, dtype=torch.float64).fit(X)
    reference = _reference(model, X)
    points = _data(seed=2)[:4]
    np.testing.assert_allclose(model.cdf(points, rng=0), reference.cdf(points, rng=0), atol=1e-4)
    np.testing.assert_allclose(
        model.logcdf(points, rng=0), reference.logcdf(points, rng=0), atol=1e-3
    )
    lower = points.min(0) - 1.0
    np.testing.assert_allclose(
        model.cdf(points, lower_limit=lower, rng=0),
        reference.cdf(points, lower_limit=lower, rng=0),
        atol=1e-4,
    )


def test_one_feature_cdf_is_the_exact_normal_cdf():
    X = np.random.default_rng(0).normal(2.0, 3.0, size=(300, 1))
    model = Gaussian(dtype=torch.float64).fit(X)
    normal = stats.norm(X.mean(), X.std())
    x = np.array([-50.0, -1.0, 2.0, 7.0])
    np.testing.assert_allclose(model.cdf(x), normal.cdf(x), rtol=1e-12)
    np.testing.assert_allclose(model.logcdf(x), normal.logcdf(x), rtol=1e-12)
    assert model.logcdf(-50.0) < -100  # no log(0) in the far tail


def test_shapes_follow_scipy_for_one_point_and_many():
    X = _data(2)
    model = Gaussian(dtype=torch.float64).fit(X)
    reference = stats.multivariate_normal(X.mean(0), np.cov(X.T, bias=True))
    for x in ([0.5, 1.0], [[0.5, 1.0]], X[:5], X[:6].reshape(2, 3, 2)):
        for method in ("logpdf", "pdf", "cdf"):
            ours = getattr(model, method)(x)
            theirs = getattr(reference, method)(x)
            assert np.shape(ours) == np.shape(theirs), (method, np.shape(x))
    assert isinstance(model.logpdf([0.5, 1.0]), np.floating)

    X1 = X[:, :1]
    model1 = Gaussian(dtype=torch.float64).fit(X1)
    reference1 = stats.multivariate_normal(X1.mean(), X1.var())
    for x in (0.3, [0.3], [0.1, 0.2, 0.3], X1[:4]):
        for method in ("logpdf", "pdf", "cdf", "logcdf"):
            ours = getattr(model1, method)(x)
            theirs = getattr(reference1, method)(x)
            assert np.shape(ours) == np.shape(theirs), (method, x)
            np.testing.assert_allclose(ours, theirs, rtol=1e-6)


@pytest.mark.parametrize("n_features", [1, 3])
def test_rvs_shapes_follow_scipy(n_features):
    X = _data(n_features)
    model = Gaussian().fit(X)
    reference = stats.multivariate_normal(np.zeros(n_features), np.eye(n_features))
    for size in (1, 5, (2, 3), (1,), 0):
        assert np.shape(model.rvs(size, random_state=0)) == np.shape(reference.rvs(size)), size
    np.testing.assert_array_equal(model.rvs(4, random_state=3), model.rvs(4, random_state=3))
    with pytest.raises(ValueError, match="size"):
        model.rvs(-1)


def test_rvs_draws_from_the_fitted_distribution():
    X = _data(2)
    model = Gaussian(dtype=torch.float64).fit(X)
    draws = model.rvs(20000, random_state=0)
    np.testing.assert_allclose(draws.mean(0), X.mean(0), atol=0.1)
    np.testing.assert_allclose(np.cov(draws.T), np.cov(X.T, bias=True), rtol=0.05)
    # goodness of fit: the squared Mahalanobis distances are chi-squared with D dofs
    centred = draws - X.mean(0)
    distances = np.einsum("ni,ij,nj->n", centred, np.linalg.inv(np.cov(X.T, bias=True)), centred)
    assert stats.kstest(distances, stats.chi2(2).cdf).pvalue > 1e-3


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_kl_divergence_matches_torch_distributions(covariance_type):
    p = Gaussian(covariance_type=covariance_type, dtype=torch.float64).fit(_data(seed=0))
    q = Gaussian(covariance_type="full", dtype=torch.float64).fit(_data(seed=5) * 1.5 + 1.0)

    def torch_normal(model: Gaussian) -> torch.distributions.MultivariateNormal:
        return torch.distributions.MultivariateNormal(
            torch.as_tensor(model.mean), covariance_matrix=torch.as_tensor(model.cov)
        )

    expected = torch.distributions.kl_divergence(torch_normal(p), torch_normal(q)).item()
    assert p.kl_divergence(q) == pytest.approx(expected, rel=1e-10)
    assert p.kl_divergence(torch_normal(q)) == pytest.approx(expected, rel=1e-10)
    assert p.kl_divergence(p) == pytest.approx(0.0, abs=1e-12)


def test_kl_divergence_rejects_other_kinds_and_shapes():
    p = Gaussian().fit(_data(3))
    with pytest.raises(TypeError, match="other"):
        p.kl_divergence(np.zeros(3))
    with pytest.raises(ValueError, match="other"):
        p.kl_divergence(Gaussian().fit(_data(2)))
    with pytest.raises(NotFittedError):
        p.kl_divergence(Gaussian())


def test_tensors_in_give_tensors_out():
    X = torch.as_tensor(_data(2), dtype=torch.float64)
    model = Gaussian().fit(X)
    reference = stats.multivariate_normal(X.mean(0).numpy(), np.cov(X.numpy().T, bias=True))
    assert isinstance(model.mean, torch.Tensor) and isinstance(model.cov, torch.Tensor)
    points = X[:4]
    for method in ("logpdf", "pdf", "cdf"):
        ours = getattr(model, method)(points)
        assert isinstance(ours, torch.Tensor) and ours.shape == (4,)
        atol = 1e-4 if method == "cdf" else 0.0
        theirs = getattr(reference, method)(points.numpy())
        np.testing.assert_allclose(ours.numpy(), theirs, rtol=1e-8, atol=atol)
    assert model.logpdf(X[0]).shape == ()
    assert isinstance(model.rvs(3, random_state=0), torch.Tensor)


def test_errors_name_the_problem():
    model = Gaussian().fit(_data(3))
    with pytest.raises(ValueError, match="n_features"):
        model.logpdf([1.0, 2.0])
    with pytest.raises(ValueError, match="n_features"):
        model.cdf(np.zeros((2, 4)))
    with pytest.raises(NotFittedError):
        Gaussian().logpdf([0.0])
    with pytest.raises(NotFittedError):
        Gaussian().entropy()


def test_named_columns_are_checked_and_complex_values_refused():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(_data(2), columns=["a", "b"])
    model = Gaussian().fit(frame)
    reference = multivariate_normal(model.mean_, model.covariance_)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the right names give no warning either
        np.testing.assert_allclose(model.logpdf(frame), reference.logpdf(frame.values), rtol=1e-12)
    for method in (model.logpdf, model.pdf, model.cdf):
        with pytest.raises(ValueError, match="feature names"):
            method(frame[["b", "a"]])  # swapped columns were read as a, b
        with pytest.raises(ValueError, match="real numbers"):
            method(np.ones(2) + 1j)


def _known(mean, cov) -> Gaussian:
    """A float64 Gaussian with the given mean and full covariance (NumPy out)."""
    mixture = Mixture.from_parameters([1.0], [mean], [cov], dtype=torch.float64)
    return Gaussian.from_mixture(mixture)


def test_cdf_lower_limit_broadcasts_against_the_points_like_scipy():
    # independent standard normals: the mass of a box is the product of 1-D masses
    model = _known(np.zeros(2), np.eye(2))
    rng = np.random.default_rng(7)
    upper = rng.uniform(-2.0, 2.0, size=(4, 3, 2))
    lower = rng.uniform(-2.0, 2.0, size=(4, 3, 2))
    box = np.prod(stats.norm.cdf(upper) - stats.norm.cdf(lower), axis=-1)
    np.testing.assert_allclose(model.cdf(upper, lower_limit=lower, rng=0), box, atol=2e-5)
    # one row of limits per point of the last two axes, shared by the first
    rows = lower[0]
    expected = np.prod(stats.norm.cdf(upper) - stats.norm.cdf(rows), axis=-1)
    ours = model.cdf(upper, lower_limit=rows, rng=0)
    assert ours.shape == (4, 3)
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    # a single point against many limits takes the limits' shape, as in SciPy
    point = np.array([0.5, 1.0])
    ours = model.cdf(point, lower_limit=lower, rng=0)
    assert ours.shape == (4, 3)
    expected = np.prod(stats.norm.cdf(point) - stats.norm.cdf(lower), axis=-1)
    np.testing.assert_allclose(ours, expected, atol=2e-5)
    np.testing.assert_allclose(
        np.exp(model.logcdf(upper, lower_limit=lower, rng=0).real), np.abs(box), rtol=1e-3
    )


def test_cdf_lower_limit_of_the_wrong_shape_is_named():
    model = _known(np.zeros(2), np.eye(2))
    with pytest.raises(ValueError, match="lower_limit must broadcast"):
        model.cdf(np.zeros((5, 2)), lower_limit=np.zeros(3))
    with pytest.raises(ValueError, match="lower_limit must broadcast"):
        model.cdf(np.zeros((5, 2)), lower_limit=np.zeros((4, 2)))


def test_one_feature_cdf_with_lower_limit_is_exact_in_both_tails():
    mean, variance = 0.5, 4.0
    model = _known([mean], [[variance]])
    scale = np.sqrt(variance)
    upper = np.array([-1.0, 0.5, 3.0, 8.0])
    lower = np.array([-3.0, -0.5, 2.0, 7.0])
    expected = stats.norm.cdf(upper, mean, scale) - stats.norm.cdf(lower, mean, scale)
    # a scalar lower limit broadcasts over many points; one limit per point as (n, 1)
    np.testing.assert_allclose(
        model.cdf(upper, lower_limit=-3.0),
        stats.norm.cdf(upper, mean, scale) - stats.norm.cdf(-3.0, mean, scale),
        rtol=1e-13,
    )
    np.testing.assert_allclose(model.cdf(upper, lower_limit=lower[:, None]), expected, rtol=1e-12)
    np.testing.assert_allclose(
        model.logcdf(upper, lower_limit=lower[:, None]), np.log(expected), rtol=1e-12
    )
    # far in the lower tail (z = -40 and -41): the upper limit's mass dominates by 1e17
    z_upper, z_lower = -40.0, -41.0
    log_mass = model.logcdf(mean + scale * z_upper, lower_limit=mean + scale * z_lower)
    assert log_mass == pytest.approx(special.log_ndtr(z_upper), rel=1e-14)
    # and far in the upper tail (z = 40 and 41): the same mass by symmetry, not log(0)
    log_mass = model.logcdf(mean + scale * 41.0, lower_limit=mean + scale * 40.0)
    assert log_mass == pytest.approx(special.log_ndtr(z_upper), rel=1e-14)
    # limits the wrong way round give the negative mass, and its log gets pi*i, as SciPy's
    swapped = model.cdf(-1.0, lower_limit=2.0)
    width = stats.norm.cdf(2.0, mean, scale) - stats.norm.cdf(-1.0, mean, scale)
    assert swapped == pytest.approx(-width, rel=1e-13)
    log_swapped = model.logcdf(-1.0, lower_limit=2.0)
    assert log_swapped.real == pytest.approx(np.log(width), rel=1e-13)
    assert log_swapped.imag == pytest.approx(np.pi, rel=1e-15)
    reference = stats.multivariate_normal(mean, variance)
    assert swapped == pytest.approx(reference.cdf(-1.0, lower_limit=2.0), rel=1e-6)
    assert model.cdf(1.0, lower_limit=1.0) == 0.0
    assert model.logcdf(1.0, lower_limit=1.0) == -np.inf


def test_one_feature_narrow_interval_in_the_tail_matches_high_precision():
    mpmath = pytest.importorskip("mpmath")
    model = _known([0.0], [[1.0]])
    for low, high in ((-30.0, -29.99), (29.99, 30.0), (-0.01, 0.0), (5.0, 40.0)):
        with mpmath.workdps(500):  # 1 - ncdf(30) is 5e-198
            exact = mpmath.log(mpmath.ncdf(high) - mpmath.ncdf(low))
        assert model.logcdf(high, lower_limit=low) == pytest.approx(float(exact), rel=1e-9)


def test_cdf_refuses_nan_but_takes_infinite_limits():
    model1 = _known([0.0], [[1.0]])
    model2 = _known(np.zeros(2), np.eye(2))
    for model, point in ((model1, [0.0, np.nan]), (model2, [np.nan, 0.0])):
        for method in (model.cdf, model.logcdf):
            with pytest.raises(ValueError, match="x contains NaN"):
                method(point)
    with pytest.raises(ValueError, match="lower_limit contains NaN"):
        model2.cdf([0.0, 0.0], lower_limit=[np.nan, 0.0])
    np.testing.assert_allclose(model1.cdf([-np.inf, 0.0, np.inf]), [0.0, 0.5, 1.0], rtol=1e-15)
    assert model2.cdf([np.inf, 0.0], rng=0) == pytest.approx(0.5, abs=1e-5)
    assert model2.cdf([-np.inf, 0.0], rng=0) == 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "invalid value" warning from inf + -inf
        assert model1.cdf(np.inf, lower_limit=-np.inf) == 1.0
        assert model1.logcdf(np.inf, lower_limit=-np.inf) == 0.0


def test_tensor_logcdf_of_a_negative_mass_keeps_its_sign():
    mean = torch.zeros(2, dtype=torch.float64)
    model = Gaussian.from_torch(
        torch.distributions.MultivariateNormal(mean, torch.eye(2, dtype=torch.float64))
    )
    lower = torch.tensor([1.0, -1.0], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no "casting complex values to real" warning
        log_mass = model.logcdf(torch.zeros(2, dtype=torch.float64), lower_limit=lower, rng=0)
    assert log_mass.dtype == torch.complex128
    width = (stats.norm.cdf(1.0) - stats.norm.cdf(0.0)) * (stats.norm.cdf(0.0) - stats.norm.cdf(-1))
    assert log_mass.real.item() == pytest.approx(np.log(width), abs=1e-4)
    assert log_mass.imag.item() == pytest.approx(np.pi)

"""GaussianKDE's SciPy surface against scipy.stats.gaussian_kde, name by name."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats

from conftest import make_correlated_gaussian
from mixtorch import GaussianKDE, GaussianMixture


def _data(n: int = 200, d: int = 2, seed: int = 0) -> np.ndarray:
    return make_correlated_gaussian(n, d, seed, offset=3.0)


@pytest.fixture(params=[False, True], ids=["unweighted", "weighted"])
def pair(request):
    X = _data()
    weights = np.random.default_rng(1).random(len(X)) + 0.2 if request.param else None
    ours = GaussianKDE("scott").fit(X, sample_weight=weights)
    theirs = stats.gaussian_kde(X.T, weights=weights)
    return ours, theirs


def test_attributes(pair):
    ours, theirs = pair
    np.testing.assert_allclose(ours.dataset, theirs.dataset, rtol=0)
    assert ours.d == theirs.d and ours.n == theirs.n
    assert ours.neff == pytest.approx(theirs.neff, rel=1e-13)
    assert ours.factor == pytest.approx(theirs.factor, rel=1e-14)
    np.testing.assert_allclose(ours.covariance, theirs.covariance, rtol=1e-13)
    np.testing.assert_allclose(ours.inv_cov, theirs.inv_cov, rtol=1e-12)
    np.testing.assert_allclose(ours.weights, theirs.weights, rtol=1e-14)
    assert ours.scotts_factor() == pytest.approx(theirs.scotts_factor(), rel=1e-14)
    assert ours.silverman_factor() == pytest.approx(theirs.silverman_factor(), rel=1e-14)


def test_evaluate_and_call_take_columns(pair):
    ours, theirs = pair
    points = _data(50, seed=3).T  # (d, m)
    np.testing.assert_allclose(ours.evaluate(points), theirs.evaluate(points), rtol=1e-12)
    np.testing.assert_allclose(ours(points), theirs(points), rtol=1e-12)
    one = points[:, 0]  # a single point as a (d,) vector
    np.testing.assert_allclose(ours(one), theirs(one), rtol=1e-12)
    with pytest.raises(ValueError, match="dimension"):
        ours.evaluate(np.ones((3, 4)))


def test_pdf_and_logpdf_take_columns_as_scipy_does(pair):
    ours, theirs = pair
    points = _data(40, seed=4).T  # (d, m)
    np.testing.assert_allclose(ours.pdf(points), theirs.pdf(points), rtol=1e-12)
    np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-12)
    assert ours.logpdf(points).dtype == np.float64
    # A square array is (d, m) as in SciPy: two points given as columns, not rows.
    square = points[:, :2]
    np.testing.assert_allclose(ours.logpdf(square), theirs.logpdf(square), rtol=1e-12)
    np.testing.assert_allclose(ours.logpdf(square), ours.score_samples(square.T), rtol=1e-15)
    # Far in the tail the density underflows; its logarithm does not.
    far = np.array([[60.0], [-60.0]])
    assert ours.pdf(far)[0] == 0.0
    np.testing.assert_allclose(ours.logpdf(far), theirs.logpdf(far), rtol=1e-12)
    # Rows where columns belong get an error that says which layout is expected.
    with pytest.raises(ValueError, match=r"points have dimension 40, dataset has dimension 2"):
        ours.logpdf(points.T)
    with pytest.raises(ValueError, match="score_samples takes rows"):
        ours.pdf(points.T)


def test_fewer_points_than_dimensions_are_refused_with_the_layout_named():
    X = np.random.default_rng(2).normal(size=(3, 5))  # SciPy's (d, n) given as rows
    with pytest.raises(ValueError, match="3 points of dimension 5") as info:
        GaussianKDE().fit(X)
    assert "rows" in str(info.value) and "explicit bandwidth" in str(info.value)
    # An explicit bandwidth needs no data covariance: as many points as dimensions is fine.
    expected = stats.multivariate_normal(X[0], 0.25 * np.eye(5)).logpdf(X[0])
    one_point = GaussianKDE(0.5).fit(X[:1])
    np.testing.assert_allclose(one_point.score_samples(X[:1]), [expected], rtol=1e-12)


def test_data_in_a_subspace_raise_scipys_error_type():
    t = np.random.default_rng(5).normal(size=(100, 2))
    with pytest.raises(np.linalg.LinAlgError, match="lower-dimensional subspace"):
        GaussianKDE().fit(np.c_[t, t.sum(1)])
    assert issubclass(np.linalg.LinAlgError, ValueError)  # scikit-learn's type too


def test_one_dimensional_evaluate_takes_a_flat_vector():
    x = _data(100, 1)[:, 0]
    ours, theirs = GaussianKDE().fit(x[:, None]), stats.gaussian_kde(x)
    grid = np.linspace(-5, 10, 30)
    np.testing.assert_allclose(ours(grid), theirs(grid), rtol=1e-12)


def test_resample_shape_and_distribution(pair):
    ours, _ = pair
    draws = ours.resample(20000, seed=0)
    assert draws.shape == (2, 20000)
    assert ours.resample(seed=1).shape == (2, int(ours.neff))
    np.testing.assert_array_equal(ours.resample(5, seed=2), ours.resample(5, seed=2))
    # Mean and covariance of the KDE: weighted data mean, data covariance (biased) + H.
    w = ours.weights
    mean = ours.dataset @ w
    centred = ours.dataset - mean[:, None]
    expected = (centred * w) @ centred.T + ours.covariance
    # 20000 draws: standard errors about 0.02 (mean) and 0.04 (covariance entries).
    np.testing.assert_allclose(draws.mean(1), mean, atol=0.08)
    np.testing.assert_allclose(np.cov(draws), expected, atol=0.15)


def test_integrate_gaussian(pair):
    ours, theirs = pair
    mean, cov = np.array([3.5, 2.0]), np.array([[1.0, 0.3], [0.3, 2.0]])
    assert ours.integrate_gaussian(mean, cov) == pytest.approx(
        theirs.integrate_gaussian(mean, cov), rel=1e-12
    )


def test_integrate_box_1d():
    x = _data(150, 1, seed=4)[:, 0]
    ours, theirs = GaussianKDE("silverman").fit(x[:, None]), stats.gaussian_kde(x, "silverman")
    for low, high in [(-1.0, 2.0), (-np.inf, 4.0), (0.0, np.inf)]:
        assert ours.integrate_box_1d(low, high) == pytest.approx(
            theirs.integrate_box_1d(low, high), rel=1e-12
        )
    with pytest.raises(ValueError, match="1-D"):
        GaussianKDE().fit(_data()).integrate_box_1d(0, 1)


def test_integrate_box(pair):
    ours, theirs = pair
    low, high = [1.0, 0.0], [5.0, 4.0]
    expected = theirs.integrate_box(low, high, rng=np.random.default_rng(0))
    assert ours.integrate_box(low, high, rng=np.random.default_rng(0)) == pytest.approx(
        expected, abs=2e-5
    )
    # A diagonal bandwidth is integrated exactly: compare with a product of normal CDFs.
    X = _data()
    diag = GaussianKDE(np.diag([0.3, 0.5])).fit(X)
    cdf = stats.norm.cdf
    exact = np.mean(
        (cdf((5 - X[:, 0]) / np.sqrt(0.3)) - cdf((1 - X[:, 0]) / np.sqrt(0.3)))
        * (cdf((4 - X[:, 1]) / np.sqrt(0.5)) - cdf((0 - X[:, 1]) / np.sqrt(0.5)))
    )
    assert diag.integrate_box(low, high) == pytest.approx(exact, rel=1e-13)


def test_integrate_kde(pair):
    ours, theirs = pair
    Y = _data(120, seed=7) * 0.8
    other_ours, other_theirs = GaussianKDE("silverman").fit(Y), stats.gaussian_kde(Y.T, "silverman")
    assert ours.integrate_kde(other_ours) == pytest.approx(
        theirs.integrate_kde(other_theirs), rel=1e-12
    )


@pytest.mark.parametrize("dims", [0, [1], [-1, 0], [2, 0]])
def test_marginal(dims):
    X = _data(150, 3, seed=8)
    weights = np.random.default_rng(2).random(150)
    ours = GaussianKDE().fit(X, sample_weight=weights).marginal(dims)
    theirs = stats.gaussian_kde(X.T, weights=weights).marginal(dims)
    assert ours.d == theirs.d
    np.testing.assert_allclose(ours.covariance, theirs.covariance, rtol=1e-12)
    assert ours.factor == pytest.approx(theirs.factor, rel=1e-14)
    points = _data(20, ours.d, seed=9).T
    np.testing.assert_allclose(ours(points), theirs(points), rtol=1e-12)


def test_marginal_rejects_bad_dimensions():
    kde = GaussianKDE().fit(_data(50, 3))
    for bad in ([3], [-4], [0, 0], [0.5]):
        with pytest.raises(ValueError, match="dimensions"):
            kde.marginal(bad)


@pytest.mark.parametrize("method", ["scott", "silverman", 0.3, "callable", None])
def test_set_bandwidth(pair, method):
    ours, theirs = pair
    if method == "callable":
        method = lambda kde: kde.neff ** (-1.0 / (kde.d + 3))  # noqa: E731
    ours.set_bandwidth(method)
    theirs.set_bandwidth(method)
    assert ours.factor == pytest.approx(theirs.factor, rel=1e-14)
    np.testing.assert_allclose(ours.covariance, theirs.covariance, rtol=1e-13)
    points = _data(30, seed=5)
    np.testing.assert_allclose(ours.score_samples(points), theirs.logpdf(points.T), rtol=1e-12)
    with pytest.raises(ValueError, match="bw_method"):
        ours.set_bandwidth("auto")


def test_callable_bandwidth_in_the_constructor():
    X = _data()
    seen = {}

    def rule(kde):
        seen.update(n=kde.n, d=kde.d, neff=kde.neff)
        return 0.5 * kde.scotts_factor()

    ours = GaussianKDE(rule).fit(X)
    theirs = stats.gaussian_kde(X.T, bw_method=lambda k: 0.5 * k.scotts_factor())
    assert seen == {"n": 200, "d": 2, "neff": pytest.approx(200.0)}
    np.testing.assert_allclose(ours.covariance, theirs.covariance, rtol=1e-13)
    with pytest.raises(ValueError, match="positive"):
        GaussianKDE(lambda kde: -1.0).fit(X)
    with pytest.raises(TypeError, match="number"):
        GaussianKDE(lambda kde: "wide").fit(X)


def test_tensor_fit_gives_tensor_dataset():
    X = torch.tensor(_data(), dtype=torch.float32)
    kde = GaussianKDE().fit(X)
    assert isinstance(kde.dataset, torch.Tensor) and kde.dataset.shape == (2, 200)
    assert isinstance(kde.resample(3, seed=0), torch.Tensor)
    theirs = stats.gaussian_kde(X.double().numpy().T)
    points = _data(10, seed=6).T
    np.testing.assert_allclose(kde(points), theirs(points), rtol=1e-4)


def test_scipy_surface_input_checks():
    X = _data(300)
    ours, theirs = GaussianKDE("scott").fit(X), stats.gaussian_kde(X.T)
    # maxpts reaches SciPy's integration (non-diagonal bandwidth): the same value for a seed.
    assert ours.integrate_box([0, 2], [2, 4], maxpts=20_000, rng=0) == pytest.approx(
        theirs.integrate_box([0, 2], [2, 4], maxpts=20_000, rng=0), rel=1e-12
    )
    with pytest.raises(ValueError, match=r"low_bounds must be a number or 2 numbers"):
        ours.integrate_box([0, 0, 0], [1, 1, 1])
    with pytest.raises(TypeError, match="high_bounds must be real numbers"):
        ours.integrate_box([0, 0], "a")
    with pytest.raises(TypeError, match="other must be a fitted GaussianKDE"):
        ours.integrate_kde(GaussianMixture(2, random_state=0).fit(X))
    with pytest.raises(ValueError, match="real numbers"):
        ours.logpdf(np.ones((2, 3)) + 1j)
    # No points: no densities, as in SciPy.
    assert ours.pdf(np.empty((2, 0))).shape == theirs.pdf(np.empty((2, 0))).shape == (0,)


def test_logpdf_shortcut_keeps_the_checks_and_limits():
    # logpdf skips the second validation of points it has checked: the values are
    # score_samples' (and SciPy's), NaN and infinity are still refused, and a float32
    # model gives -inf for points beyond its range.
    X = _data(300)
    ours, theirs = GaussianKDE("scott").fit(X), stats.gaussian_kde(X.T)
    points = _data(20, seed=9).T
    np.testing.assert_allclose(ours.logpdf(points), ours.score_samples(points.T), rtol=1e-14)
    np.testing.assert_allclose(ours.logpdf(points), theirs.logpdf(points), rtol=1e-10)
    for bad in (np.nan, np.inf):
        with pytest.raises(ValueError, match="Input X contains"):
            ours.logpdf(np.array([[bad], [0.0]]))
    single = GaussianKDE("scott", dtype="float32").fit(X.astype(np.float32))
    far = single.logpdf(np.array([[0.0, 1e39], [0.0, 0.0]]))
    assert np.isfinite(far[0]) and far[1] == -np.inf

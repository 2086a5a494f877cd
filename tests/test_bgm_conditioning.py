"""``BayesianGaussianMixture.marginal`` and ``condition``: the point-estimate mixture's
marginals and conditionals, against a ``GaussianMixture`` holding the same parameters, the
float64 NumPy Schur complement and SciPy's densities."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import NotFittedError

import mixtorch
from mixtorch import BayesianGaussianMixture, GaussianMixture

KINDS = ["full", "tied", "diag", "spherical"]
GIVEN, VALUES = [3, 1], np.array([1.5, -0.5])


def _data() -> np.ndarray:
    rng = np.random.default_rng(1)
    centres = np.array([[0.0, 0.0, 0.0, 0.0], [4.0, -2.0, 1.0, 3.0], [-3.0, 3.0, 2.0, -1.0]])
    mixing = rng.normal(size=(4, 4)) * 0.6 + np.eye(4)
    return np.concatenate([rng.normal(size=(200, 4)) @ mixing + c for c in centres])


def _bgm(kind: str, **params) -> BayesianGaussianMixture:
    options = {"random_state": 0, "max_iter": 500, **params}
    return BayesianGaussianMixture(5, covariance_type=kind, **options).fit(_data())


@functools.cache
def _shared(kind: str) -> BayesianGaussianMixture:
    """One fit per covariance type for the tests that only read it."""
    return _bgm(kind)


@pytest.fixture(params=KINDS)
def fitted(request):
    return _shared(request.param)


def _twin(bgm: BayesianGaussianMixture) -> GaussianMixture:
    return GaussianMixture.from_parameters(
        bgm.weights_, bgm.means_, bgm.covariances_, covariance_type=bgm.covariance_type
    )


def _full(covariances: np.ndarray, kind: str, K: int, D: int) -> np.ndarray:
    """scikit-learn's covariance layout as (K, D, D) matrices."""
    if kind == "full":
        return covariances
    if kind == "tied":
        return np.broadcast_to(covariances, (K, D, D))
    if kind == "diag":
        return np.stack([np.diag(row) for row in covariances])
    return covariances[:, None, None] * np.eye(D)


def _schur(weights, means, covs, given, values):
    """Weights, means and covariances of the conditional mixture, dense float64."""
    free = [i for i in range(means.shape[1]) if i not in given]
    log_w, cond_means, cond_covs = [], [], []
    for w, mu, S in zip(weights, means, covs, strict=True):
        Sgg, Sfg, Sff = S[np.ix_(given, given)], S[np.ix_(free, given)], S[np.ix_(free, free)]
        log_w.append(np.log(w) + multivariate_normal(mu[given], Sgg).logpdf(values))
        cond_means.append(mu[free] + Sfg @ np.linalg.solve(Sgg, values - mu[given]))
        cond_covs.append(Sff - Sfg @ np.linalg.solve(Sgg, Sfg.T))
    log_w = np.array(log_w)
    return np.exp(log_w - logsumexp(log_w)), np.array(cond_means), np.array(cond_covs)


def test_the_conditioned_mixture_is_the_point_estimate_sample_draws_from(fitted):
    # weights_, means_, covariances_ are mixture_, the mixture marginal/condition use
    mixture = fitted.mixture_
    np.testing.assert_allclose(mixture.weights.numpy(), fitted.weights_, rtol=1e-12)
    np.testing.assert_allclose(mixture.means.numpy(), fitted.means_, rtol=1e-12)
    np.testing.assert_allclose(mixture.covariance.covariances.numpy(), fitted.covariances_)
    assert fitted.weights_.shape == (5,) and np.isclose(fitted.weights_.sum(), 1.0)


def test_marginal_equals_that_of_a_gaussian_mixture_with_the_same_parameters(fitted):
    twin = _twin(fitted)
    got, expected = fitted.marginal([2, 0]), twin.marginal([2, 0])
    assert type(got) is GaussianMixture and got.covariance_type == fitted.covariance_type
    assert got.n_components == 5 and got.n_features_in_ == 2
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-12)
    points = _data()[::37][:, [2, 0]]
    np.testing.assert_allclose(got.score_samples(points), expected.score_samples(points))
    # and against SciPy: the weighted sum of the (2, 0) blocks' normal densities
    K, D = 5, 4
    covs = _full(fitted.covariances_, fitted.covariance_type, K, D)[:, [2, 0]][:, :, [2, 0]]
    density = sum(
        w * multivariate_normal(mu[[2, 0]], S).pdf(points)
        for w, mu, S in zip(fitted.weights_, fitted.means_, covs, strict=True)
    )
    np.testing.assert_allclose(got.score_samples(points), np.log(density), rtol=1e-10)


def test_condition_equals_that_of_a_gaussian_mixture_with_the_same_parameters(fitted):
    got, expected = fitted.condition(GIVEN, VALUES), _twin(fitted).condition(GIVEN, VALUES)
    assert type(got) is GaussianMixture and got.covariance_type == fitted.covariance_type
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(expected, name), rtol=1e-10, atol=1e-14
        )


def test_condition_is_the_float64_schur_complement(fitted):
    kind, K, D = fitted.covariance_type, 5, 4
    covs = _full(fitted.covariances_, kind, K, D)
    weights, means, cond_covs = _schur(fitted.weights_, fitted.means_, covs, GIVEN, VALUES)
    got = fitted.condition(GIVEN, VALUES)
    np.testing.assert_allclose(got.weights_, weights, rtol=1e-9, atol=1e-15)
    np.testing.assert_allclose(got.means_, means, rtol=1e-10, atol=1e-12)
    got_covs = _full(got.covariances_, kind, K, 2)
    np.testing.assert_allclose(got_covs, cond_covs, rtol=1e-10, atol=1e-12)
    assert np.isclose(got.weights_.sum(), 1.0)


def test_condition_under_a_dirichlet_distribution_prior_in_float32():
    bgm = _bgm("full", weight_concentration_prior_type="dirichlet_distribution")
    low = _bgm("full", weight_concentration_prior_type="dirichlet_distribution", dtype="float32")
    weights, means, covs = _schur(bgm.weights_, bgm.means_, bgm.covariances_, [0], [2.0])
    got = low.condition([0], [2.0])
    assert got.means_.dtype == np.float32 and got.mixture_.dtype == torch.float32
    # float32 fit and conditioning against the float64 fit's closed form
    np.testing.assert_allclose(got.weights_, weights, atol=2e-3)
    np.testing.assert_allclose(got.means_, means, atol=2e-2)
    np.testing.assert_allclose(got.covariances_, covs, rtol=2e-2, atol=1e-3)


def test_shared_constructor_parameters_follow_and_the_prior_does_not():
    bgm = _bgm("diag", reg_covar=1e-4, tol=1e-4, chunk_size=64, covariance_prior=np.ones(4))
    given = bgm.condition([0], [0.0])
    params = given.get_params()
    assert params["random_state"] == 0 and params["reg_covar"] == 1e-4
    assert params["tol"] == 1e-4 and params["chunk_size"] == 64 and params["max_iter"] == 500
    assert params["n_components"] == 5 and params["covariance_type"] == "diag"
    # sampling the result is reproducible, as GaussianMixture's from its random_state
    np.testing.assert_array_equal(given.sample(5)[0], bgm.condition([0], [0.0]).sample(5)[0])


def test_tensors_stay_tensors_and_names_follow():
    pd = pytest.importorskip("pandas")
    X = torch.as_tensor(_data())
    tensor_model = BayesianGaussianMixture(2, covariance_type="tied", random_state=0).fit(X)
    assert isinstance(tensor_model.marginal([1]).means_, torch.Tensor)
    frame = pd.DataFrame(_data(), columns=["a", "b", "c", "d"])
    named = BayesianGaussianMixture(3, random_state=0, max_iter=500).fit(frame)
    assert list(named.marginal(["d", "b"]).feature_names_in_) == ["d", "b"]
    given = named.condition(["b"], pd.Series({"b": 0.5, "z": 9.0}))
    assert list(given.feature_names_in_) == ["a", "c", "d"]
    np.testing.assert_allclose(given.means_, named.condition([1], [0.5]).means_)


def test_an_unfitted_model_is_not_fitted_error():
    model = BayesianGaussianMixture(2)
    with pytest.raises(NotFittedError):
        model.marginal([0])
    with pytest.raises(NotFittedError):
        model.condition([0], [1.0])


@pytest.mark.parametrize(
    ("features", "values", "error"),
    [
        ([5], [1.0], ValueError),
        ([-5], [1.0], ValueError),
        ([0, 0], [1.0, 1.0], ValueError),
        ([0, 1, 2, 3], [1.0, 1.0, 1.0, 1.0], ValueError),
        ([], [], ValueError),
        (["a"], [1.0], TypeError),
        ([0, 1], [1.0], ValueError),
        ([0], [float("nan")], ValueError),
    ],
)
def test_bad_input_raises_as_gaussian_mixture_does(features, values, error):
    bgm = _shared("full")
    with pytest.raises(error) as expected:
        _twin(bgm).condition(features, values)
    with pytest.raises(error) as got:
        bgm.condition(features, values)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    ("features", "error"),
    [([4], ValueError), ([-5], ValueError), ([1, 1], ValueError), ([], ValueError),
     (["a"], TypeError), ([0.5], TypeError)],
)  # fmt: skip
def test_bad_marginal_features_raise_as_gaussian_mixture_does(features, error):
    bgm = _shared("tied")
    with pytest.raises(error) as expected:
        _twin(bgm).marginal(features)
    with pytest.raises(error) as got:
        bgm.marginal(features)
    assert str(got.value) == str(expected.value)


def test_out_of_range_and_all_given_name_the_problem():
    bgm = _shared("spherical")
    with pytest.raises(ValueError, match=r"\[0, 4\)"):
        bgm.marginal([4])
    with pytest.raises(ValueError, match="at least one feature free"):
        bgm.condition([0, 1, 2, 3], [0.0, 0.0, 0.0, 0.0])


def test_results_and_a_loaded_model_survive_save_and_load(tmp_path):
    bgm = _shared("full")
    given = bgm.condition(GIVEN, VALUES)
    loaded = mixtorch.load(mixtorch.save(given, tmp_path / "given.mixtorch"))
    assert type(loaded) is GaussianMixture
    points = _data()[:20, [0, 2]]
    np.testing.assert_array_equal(loaded.score_samples(points), given.score_samples(points))
    reloaded = mixtorch.load(mixtorch.save(bgm, tmp_path / "bgm.mixtorch"))
    again = reloaded.condition(GIVEN, VALUES)
    np.testing.assert_array_equal(again.means_, given.means_)
    np.testing.assert_array_equal(again.weights_, given.weights_)


def test_a_marginal_plots_as_a_one_feature_model():
    matplotlib = pytest.importorskip("matplotlib")
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from mixtorch.plotting import plot_density_1d

    bgm = _shared("diag")
    with pytest.raises(ValueError, match="1-D model"):
        plot_density_1d(bgm)
    ax = plot_density_1d(bgm.marginal([0]), _data()[:, [0]])
    curve = ax.get_lines()[0]
    x, y = curve.get_xdata(), curve.get_ydata()
    density = sum(
        w * multivariate_normal(mu[0], var[0]).pdf(x)
        for w, mu, var in zip(bgm.weights_, bgm.means_, bgm.covariances_, strict=True)
    )
    np.testing.assert_allclose(y, density, rtol=1e-6)
    plt.close(ax.figure)

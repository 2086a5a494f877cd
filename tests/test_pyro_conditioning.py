"""``SVIGaussianMixture`` and ``MCMCGaussianMixture``: ``marginal`` and ``condition`` of the
point-estimate mixture (the mean of the posterior draws), against a ``GaussianMixture``
holding the same parameters, the float64 NumPy Schur complement, SciPy's densities and the
posterior predictive computed from the draws."""

from __future__ import annotations

import functools

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.exceptions import NotFittedError

import mixtorch
from mixtorch import GaussianMixture

pytest.importorskip("pyro")  # an optional extra; installed by `make test`

from mixtorch.bayes import MCMCGaussianMixture, SVIGaussianMixture  # noqa: E402

FITS = ["svi_map_full", "svi_mean_field_diag", "mcmc_diag"]
GIVEN, VALUES = [2, 0], np.array([0.5, -1.0])


def _data() -> np.ndarray:
    rng = np.random.default_rng(2)
    mixing = np.array([[1.0, 0.0, 0.0], [0.6, 0.8, 0.0], [-0.3, 0.4, 0.7]])
    first = rng.normal(size=(50, 3)) @ mixing.T + [-2.0, 0.0, 1.0]
    second = rng.normal(size=(30, 3)) * 0.6 + [2.0, 1.5, -1.0]
    return np.concatenate([first, second])


@functools.cache
def _fitted(name: str):
    """One small fit per estimator and setting, shared by the tests that only read it."""
    X = _data()
    if name == "svi_map_full":
        return SVIGaussianMixture(
            2, covariance_type="full", num_steps=40, num_restarts=1, num_samples=4,
            learning_rate=0.1, random_state=0,
        ).fit(X)  # fmt: skip
    if name == "svi_mean_field_diag":
        return SVIGaussianMixture(
            2, guide="mean_field", num_steps=60, num_restarts=1, num_samples=40,
            learning_rate=0.1, random_state=0, dtype="float32",
        ).fit(X)  # fmt: skip
    return MCMCGaussianMixture(
        2, num_samples=10, warmup_steps=10, num_chains=2, chain_method="sequential",
        jit_compile=False, random_state=0,
    ).fit(X)  # fmt: skip


@pytest.fixture(params=FITS)
def fitted(request):
    return _fitted(request.param)


def _twin(model) -> GaussianMixture:
    return GaussianMixture.from_parameters(
        model.weights_, model.means_, model.covariances_, covariance_type=model.covariance_type
    )


def _dense(covariances: np.ndarray) -> np.ndarray:
    """(K, D) variances or (K, D, D) covariances as (K, D, D) matrices."""
    if covariances.ndim == 2:
        return np.stack([np.diag(row) for row in covariances])
    return covariances


def _draw_covariances(draws: dict) -> np.ndarray:
    """Each draw's (S, K, D, D) covariances, diag(s) L L^T diag(s), in float64 NumPy."""
    scales = np.asarray(draws["scales"], dtype=np.float64)
    if "corr_cholesky" not in draws:
        return scales[..., :, None] ** 2 * np.eye(scales.shape[-1])
    factor = scales[..., :, None] * np.asarray(draws["corr_cholesky"], dtype=np.float64)
    return factor @ np.swapaxes(factor, -1, -2)


def _mixture_density(weights, means, covariances, points) -> np.ndarray:
    return sum(
        w * multivariate_normal(mu, S).pdf(points)
        for w, mu, S in zip(weights, means, covariances, strict=True)
    )


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


def test_the_point_estimate_is_the_mean_of_the_posterior_draws(fitted):
    draws = fitted.posterior_samples_
    tol = 1e-6 if fitted.means_.dtype == np.float32 else 1e-12
    weights = np.asarray(draws["weights"], dtype=np.float64).mean(0)
    np.testing.assert_allclose(fitted.weights_, weights / weights.sum(), rtol=tol)
    np.testing.assert_allclose(fitted.means_, np.mean(draws["locs"], 0), rtol=tol, atol=tol)
    covariances = _draw_covariances(draws).mean(0)
    np.testing.assert_allclose(_dense(fitted.covariances_), covariances, rtol=10 * tol)
    # and that is the mixture the results come from
    np.testing.assert_array_equal(fitted.mixture_.means.numpy(), fitted.means_)


def test_marginal_equals_that_of_a_gaussian_mixture_with_the_same_parameters(fitted):
    got, expected = fitted.marginal([2, 0]), _twin(fitted).marginal([2, 0])
    assert type(got) is GaussianMixture and got.covariance_type == fitted.covariance_type
    assert got.n_components == 2 and got.n_features_in_ == 2
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(getattr(got, name), getattr(expected, name), rtol=1e-6)
    points = _data()[::7][:, [2, 0]]
    np.testing.assert_allclose(got.score_samples(points), expected.score_samples(points))
    # and against SciPy: the weighted sum of the (2, 0) blocks' normal densities
    blocks = _dense(np.asarray(fitted.covariances_, np.float64))[:, [2, 0]][:, :, [2, 0]]
    means = np.asarray(fitted.means_, np.float64)[:, [2, 0]]
    density = _mixture_density(fitted.weights_, means, blocks, points)
    np.testing.assert_allclose(got.score_samples(points), np.log(density), rtol=1e-5)


def test_condition_equals_that_of_a_gaussian_mixture_with_the_same_parameters(fitted):
    got, expected = fitted.condition(GIVEN, VALUES), _twin(fitted).condition(GIVEN, VALUES)
    assert type(got) is GaussianMixture and got.covariance_type == fitted.covariance_type
    assert got.n_features_in_ == 1
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_allclose(
            getattr(got, name), getattr(expected, name), rtol=1e-6, atol=1e-12
        )


@pytest.mark.parametrize("name", ["svi_map_full", "svi_mean_field_diag"])
def test_condition_is_the_float64_schur_complement(name):
    model = _fitted(name)
    means = np.asarray(model.means_, np.float64)
    covs = _dense(np.asarray(model.covariances_, np.float64))
    weights, cond_means, cond_covs = _schur(model.weights_, means, covs, [1], [0.8])
    got = model.condition([1], [0.8])
    # the float32 fit conditions in float32
    rtol = 1e-4 if model.means_.dtype == np.float32 else 1e-10
    assert got.means_.dtype == model.means_.dtype
    np.testing.assert_allclose(got.weights_, weights, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(got.means_, cond_means, rtol=rtol, atol=rtol)
    np.testing.assert_allclose(_dense(got.covariances_), cond_covs, rtol=rtol)
    assert np.isclose(got.weights_.sum(), 1.0)
    if model.covariance_type == "full":  # the free features' correlation is kept
        assert abs(cond_covs[0, 0, 1]) > 1e-3


def _predictive_marginal(model, features, points) -> np.ndarray:
    """The posterior predictive's marginal density: the mean over the draws of each
    draw's mixture marginalised to ``features``, in float64."""
    draws = model.posterior_samples_
    covariances = _draw_covariances(draws)[:, :, features][:, :, :, features]
    means = np.asarray(draws["locs"], np.float64)[:, :, features]
    weights = np.asarray(draws["weights"], np.float64)
    return np.mean(
        [_mixture_density(*one, points) for one in zip(weights, means, covariances, strict=True)],
        axis=0,
    )


def test_map_guide_results_are_the_posterior_predictives_marginal():
    model = _fitted("svi_map_full")
    points = _data()[::5][:, [1, 2]]
    # every draw of the MAP guide is the same point, so the two coincide
    np.testing.assert_allclose(
        model.marginal([1, 2]).score_samples(points),
        np.log(_predictive_marginal(model, [1, 2], points)),
        rtol=1e-9,
    )


def test_mean_field_results_are_not_the_posterior_predictive():
    model = _fitted("svi_mean_field_diag")
    X = _data()
    # the brute force is the predictive score_samples scores with...
    np.testing.assert_allclose(
        np.exp(model.score_samples(X)), _predictive_marginal(model, [0, 1, 2], X), rtol=1e-4
    )
    # ... and the marginal of the point estimate is another density
    points = X[:, [0]]
    point_estimate = np.exp(model.marginal([0]).score_samples(points))
    predictive = _predictive_marginal(model, [0], points)
    assert np.abs(point_estimate / predictive - 1).max() > 1e-3


def test_only_parameters_meaning_the_same_follow():
    model = _fitted("svi_map_full")
    params = model.condition([0], [0.0]).get_params()
    assert params["random_state"] == 0 and params["dtype"] is None
    # SVI's learning_rate (0.1, the ELBO's Adam step) is not GaussianMixture's
    assert params["learning_rate"] == GaussianMixture().learning_rate
    assert params["n_components"] == 2 and params["covariance_type"] == "full"
    low = _fitted("svi_mean_field_diag").marginal([1])
    assert low.get_params()["dtype"] == "float32" and low.means_.dtype == np.float32


def test_tensors_stay_tensors_and_names_follow():
    pd = pytest.importorskip("pandas")
    options = {"num_steps": 5, "num_restarts": 1, "num_samples": 2, "random_state": 0}
    tensor_model = SVIGaussianMixture(2, **options).fit(torch.as_tensor(_data()))
    assert isinstance(tensor_model.marginal([1]).means_, torch.Tensor)
    assert isinstance(tensor_model.condition([1], [0.0]).weights_, torch.Tensor)
    frame = pd.DataFrame(_data(), columns=["a", "b", "c"])
    named = SVIGaussianMixture(2, **options).fit(frame)
    assert list(named.marginal(["c", "a"]).feature_names_in_) == ["c", "a"]
    given = named.condition(["b"], pd.Series({"b": 0.5, "z": 9.0}))
    assert list(given.feature_names_in_) == ["a", "c"]
    np.testing.assert_array_equal(given.means_, named.condition([1], [0.5]).means_)


def test_a_loaded_model_conditions_alike(tmp_path):
    model = _fitted("mcmc_diag")
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "mcmc.mixtorch"))
    again, given = loaded.condition(GIVEN, VALUES), model.condition(GIVEN, VALUES)
    np.testing.assert_array_equal(again.means_, given.means_)
    np.testing.assert_array_equal(again.weights_, given.weights_)


@pytest.mark.parametrize("estimator", [SVIGaussianMixture(2), MCMCGaussianMixture(2)])
def test_an_unfitted_model_is_not_fitted_error(estimator):
    with pytest.raises(NotFittedError):
        estimator.marginal([0])
    with pytest.raises(NotFittedError):
        estimator.condition([0], [1.0])


@pytest.mark.parametrize(
    ("features", "values", "error"),
    [
        ([3], [1.0], ValueError),
        ([-4], [1.0], ValueError),
        ([0, 0], [1.0, 1.0], ValueError),
        ([0, 1, 2], [1.0, 1.0, 1.0], ValueError),
        ([], [], ValueError),
        (["a"], [1.0], TypeError),
        ([0, 1], [1.0], ValueError),
        ([0], [float("nan")], ValueError),
    ],
)
@pytest.mark.parametrize("name", ["svi_map_full", "mcmc_diag"])
def test_bad_input_raises_as_gaussian_mixture_does(name, features, values, error):
    model = _fitted(name)
    with pytest.raises(error) as expected:
        _twin(model).condition(features, values)
    with pytest.raises(error) as got:
        model.condition(features, values)
    assert str(got.value) == str(expected.value)


@pytest.mark.parametrize(
    ("features", "error"),
    [([3], ValueError), ([-4], ValueError), ([1, 1], ValueError), ([], ValueError),
     (["a"], TypeError), ([0.5], TypeError)],
)  # fmt: skip
def test_bad_marginal_features_raise_as_gaussian_mixture_does(features, error):
    model = _fitted("svi_mean_field_diag")
    with pytest.raises(error) as expected:
        _twin(model).marginal(features)
    with pytest.raises(error) as got:
        model.marginal(features)
    assert str(got.value) == str(expected.value)


def test_out_of_range_and_all_given_name_the_problem():
    model = _fitted("mcmc_diag")
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        model.marginal([3])
    with pytest.raises(ValueError, match="at least one feature free"):
        model.condition([0, 1, 2], [0.0, 0.0, 0.0])

"""BayesianGaussianMixture and the CAVI functions, checked against scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import BayesianGaussianMixture as SkBGMM
from sklearn.utils.estimator_checks import parametrize_with_checks

import mixtorch
from mixtorch import BayesianGaussianMixture
from mixtorch.fit.variational import (
    VariationalPrior,
    fit_variational,
    posterior_from_responsibilities,
)

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
PRIOR_TYPES = ["dirichlet_process", "dirichlet_distribution"]


def three_clusters(n_per=60, seed=0):
    rng = np.random.default_rng(seed)
    centers = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, 5.0]])
    scales = np.array([[0.6, 0.4], [0.5, 0.8], [0.7, 0.5]])
    return np.concatenate(
        [rng.normal(c, s, (n_per, 2)) for c, s in zip(centers, scales, strict=True)]
    )


def fit_sklearn_capturing_responsibilities(X, **params):
    """Fit scikit-learn's model and return it with the responsibilities it started from."""
    model = SkBGMM(**params)
    captured = {}
    original = model._initialize

    def initialize(data, resp):
        captured["resp"] = resp.copy()
        return original(data, resp)

    model._initialize = initialize
    model.fit(X)
    return model, captured["resp"]


def prior_like(model: SkBGMM) -> VariationalPrior:
    return VariationalPrior(
        weight_concentration=float(model.weight_concentration_prior_),
        process=model.weight_concentration_prior_type == "dirichlet_process",
        mean_precision=float(model.mean_precision_prior_),
        mean=torch.as_tensor(model.mean_prior_, dtype=torch.float64),
        degrees_of_freedom=float(model.degrees_of_freedom_prior_),
        covariance=torch.as_tensor(model.covariance_prior_, dtype=torch.float64),
    )


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_cavi_matches_sklearn_from_same_responsibilities(covariance_type, prior_type):
    X = three_clusters()
    sk, resp = fit_sklearn_capturing_responsibilities(
        X,
        n_components=5,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        random_state=1,
        max_iter=300,
        tol=1e-6,
    )
    Xt = torch.from_numpy(X)
    prior = prior_like(sk)
    start = posterior_from_responsibilities(
        Xt, torch.from_numpy(resp), prior, covariance_type, 1e-6, rows=47
    )
    posterior, trace = fit_variational(
        lambda: Xt.split(47), start, prior, tol=1e-6, max_iter=300, reg_covar=1e-6
    )
    assert trace.n_iter == sk.n_iter_
    assert trace.converged and sk.converged_
    np.testing.assert_allclose(trace.lower_bound, np.ravel(sk.lower_bound_)[0], rtol=1e-10)
    sk_bounds = np.array(sk.lower_bounds_, dtype=float).ravel()
    np.testing.assert_allclose(trace.lower_bounds, sk_bounds, rtol=1e-10)
    np.testing.assert_allclose(posterior.weights().numpy(), sk.weights_, atol=1e-10)
    np.testing.assert_allclose(posterior.means.numpy(), sk.means_, atol=1e-8)
    cov = posterior.covariance
    np.testing.assert_allclose(cov.covariances.numpy(), sk.covariances_, atol=1e-8)
    np.testing.assert_allclose(
        cov.precisions_cholesky().numpy(), sk.precisions_cholesky_, rtol=1e-7, atol=1e-8
    )
    np.testing.assert_allclose(posterior.mean_precision.numpy(), sk.mean_precision_, rtol=1e-10)
    np.testing.assert_allclose(
        posterior.degrees_of_freedom.numpy(), sk.degrees_of_freedom_, rtol=1e-10
    )
    sk_concentration = np.atleast_2d(np.asarray(sk.weight_concentration_))
    ours = np.stack([c.numpy() for c in posterior.weight_concentration])
    np.testing.assert_allclose(ours, sk_concentration, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_scoring_matches_sklearn_on_the_same_parameters(covariance_type):
    X = three_clusters(seed=2)
    ours = BayesianGaussianMixture(
        n_components=4, covariance_type=covariance_type, random_state=0, max_iter=200
    ).fit(X)
    sk = SkBGMM(n_components=4, covariance_type=covariance_type, max_iter=1, random_state=0)
    with pytest.warns(ConvergenceWarning):
        sk.fit(X)
    for name in (
        "weights_",
        "means_",
        "covariances_",
        "precisions_cholesky_",
        "precisions_",
        "weight_concentration_",
        "mean_precision_",
        "degrees_of_freedom_",
    ):
        setattr(sk, name, getattr(ours, name))
    grid = np.random.default_rng(5).normal(2.0, 3.0, size=(70, 2))
    np.testing.assert_allclose(ours.score_samples(grid), sk.score_samples(grid), rtol=1e-12)
    np.testing.assert_allclose(ours.predict_proba(grid), sk.predict_proba(grid), atol=1e-12)
    np.testing.assert_array_equal(ours.predict(grid), sk.predict(grid))
    assert ours.score(grid) == pytest.approx(sk.score(grid), rel=1e-12)


def test_default_priors_match_sklearn():
    X = three_clusters(seed=3)
    for covariance_type in COVARIANCE_TYPES:
        ours = BayesianGaussianMixture(
            n_components=3, covariance_type=covariance_type, random_state=0
        ).fit(X)
        sk = SkBGMM(n_components=3, covariance_type=covariance_type, random_state=0).fit(X)
        np.testing.assert_allclose(ours.mean_prior_, sk.mean_prior_, rtol=1e-12)
        np.testing.assert_allclose(ours.covariance_prior_, sk.covariance_prior_, rtol=1e-12)
        assert ours.degrees_of_freedom_prior_ == sk.degrees_of_freedom_prior_
        assert ours.weight_concentration_prior_ == sk.weight_concentration_prior_
        assert ours.mean_precision_prior_ == sk.mean_precision_prior_


@pytest.mark.parametrize("prior_type", PRIOR_TYPES)
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_surplus_components_get_negligible_weight(covariance_type, prior_type):
    X = three_clusters(n_per=100, seed=4)
    model = BayesianGaussianMixture(
        n_components=10,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        random_state=0,
        max_iter=500,
    ).fit(X)
    assert model.converged_
    assert int((model.weights_ > 0.05).sum()) == 3
    assert model.weights_.sum() == pytest.approx(1.0, abs=1e-12)
    big = np.sort(model.means_[model.weights_ > 0.05], axis=0)
    np.testing.assert_allclose(big, np.sort([[0, 0], [4, 4], [0, 5]], axis=0), atol=0.25)
    bounds = np.asarray(model.lower_bounds_)
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))
    assert model.lower_bound_ == bounds[-1]


@settings(max_examples=8, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    covariance_type=st.sampled_from(COVARIANCE_TYPES),
    prior_type=st.sampled_from(PRIOR_TYPES),
    n_components=st.integers(1, 6),
)
def test_lower_bound_never_decreases(seed, covariance_type, prior_type, n_components):
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(60, 3)) * rng.uniform(0.5, 3.0, size=3) + rng.normal(0, 5, size=3)
    model = BayesianGaussianMixture(
        n_components=n_components,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params="random",
        random_state=seed,
        max_iter=25,
        tol=0.0,
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    bounds = np.asarray(model.lower_bounds_)
    assert np.isfinite(bounds).all()
    assert np.all(np.diff(bounds) >= -1e-8 * np.abs(bounds[1:]).max())


def test_chunking_does_not_change_the_fit():
    X = three_clusters(seed=6)
    whole = BayesianGaussianMixture(n_components=4, random_state=0).fit(X)
    chunked = BayesianGaussianMixture(n_components=4, random_state=0, chunk_size=13).fit(X)
    assert chunked.n_iter_ == whole.n_iter_
    np.testing.assert_allclose(chunked.lower_bounds_, whole.lower_bounds_, rtol=1e-10)
    np.testing.assert_allclose(chunked.means_, whole.means_, atol=1e-10)
    np.testing.assert_allclose(chunked.score_samples(X), whole.score_samples(X), rtol=1e-10)


def test_tensor_in_tensor_out_and_float32():
    X = three_clusters(seed=7)
    reference = BayesianGaussianMixture(n_components=3, random_state=0).fit(X)
    model = BayesianGaussianMixture(n_components=3, random_state=0)
    labels = model.fit_predict(torch.from_numpy(X).float())
    assert isinstance(labels, torch.Tensor) and isinstance(model.means_, torch.Tensor)
    assert model.means_.dtype == torch.float32
    proba = model.predict_proba(torch.from_numpy(X).float())
    assert isinstance(proba, torch.Tensor) and proba.shape == (X.shape[0], 3)
    order_ref = np.argsort(reference.means_[:, 0])
    order = np.argsort(model.means_[:, 0].numpy())
    np.testing.assert_allclose(model.means_.numpy()[order], reference.means_[order_ref], atol=1e-4)
    np.testing.assert_array_equal(labels.numpy(), model.predict(torch.from_numpy(X).float()))


def test_fit_predict_agrees_with_predict_and_sample_shapes():
    X = three_clusters(seed=8)
    model = BayesianGaussianMixture(n_components=5, covariance_type="diag", random_state=3)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.predict(X))
    samples, components = model.sample(50)
    assert samples.shape == (50, 2) and components.shape == (50,)
    assert np.all(np.diff(components) >= 0)


def test_warm_start_continues_from_the_previous_posterior():
    X = three_clusters(seed=9)
    model = BayesianGaussianMixture(n_components=4, max_iter=3, warm_start=True, random_state=0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    first = model.lower_bound_
    model.set_params(max_iter=200)
    model.fit(X)
    assert model.lower_bound_ >= first
    fresh = BayesianGaussianMixture(n_components=4, max_iter=203, random_state=0).fit(X)
    assert model.lower_bound_ == pytest.approx(fresh.lower_bound_, rel=1e-4)


def test_user_priors_are_used():
    X = three_clusters(seed=10)
    params = dict(
        n_components=3,
        covariance_type="diag",
        weight_concentration_prior_type="dirichlet_distribution",
        weight_concentration_prior=0.5,
        mean_precision_prior=2.0,
        mean_prior=[1.0, 1.0],
        degrees_of_freedom_prior=3.5,
        covariance_prior=[0.5, 0.7],
        random_state=0,
    )
    ours = BayesianGaussianMixture(**params).fit(X)
    sk = SkBGMM(**params).fit(X)
    np.testing.assert_allclose(ours.covariance_prior_, [0.5, 0.7])
    assert ours.degrees_of_freedom_prior_ == 3.5
    # both converge to the same optimum on well-separated data
    order, sk_order = np.argsort(ours.means_[:, 1]), np.argsort(sk.means_[:, 1])
    np.testing.assert_allclose(ours.means_[order], sk.means_[sk_order], atol=1e-3)
    np.testing.assert_allclose(ours.weights_[order], sk.weights_[sk_order], atol=1e-3)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"degrees_of_freedom_prior": 0.5}, "degrees_of_freedom_prior"),
        ({"covariance_prior": np.eye(3)}, "covariance_prior"),
        ({"covariance_prior": [[1.0, 2.0], [2.0, 1.0]]}, "positive-definite"),
        ({"covariance_type": "diag", "covariance_prior": [1.0, -1.0]}, "positive"),
        ({"mean_prior": [0.0, 0.0, 0.0]}, "means"),
        ({"weight_concentration_prior_type": "pitman_yor"}, "weight_concentration_prior_type"),
        ({"mean_precision_prior": -1.0}, "mean_precision_prior"),
        ({"weight_concentration_prior": 0.0}, "weight_concentration_prior"),
        ({"init_params": "magic"}, "init_params"),
        ({"covariance_type": "banded"}, "covariance_type"),
        ({"n_components": 0}, "n_components"),
    ],
)
def test_bad_parameters_raise_clear_errors(params, message):
    with pytest.raises(ValueError, match=message):
        BayesianGaussianMixture(**params).fit(three_clusters(n_per=10))


def test_bad_input_raises():
    model = BayesianGaussianMixture(n_components=2)
    with pytest.raises(ValueError, match="NaN"):
        model.fit(np.array([[0.0, 1.0], [np.nan, 2.0], [1.0, 1.0]]))
    model.fit(three_clusters(n_per=10))
    with pytest.raises(ValueError, match="features"):
        model.predict(np.zeros((3, 5)))


def test_exported_from_package():
    assert mixtorch.BayesianGaussianMixture is BayesianGaussianMixture


@parametrize_with_checks(
    [
        BayesianGaussianMixture(
            n_components=2,
            covariance_type="spherical",
            weight_concentration_prior_type="dirichlet_distribution",
            random_state=0,
            max_iter=200,
        ),
    ],
    # random starts, as GaussianMixture's (see tests/test_estimator_checks.py)
    expected_failed_checks=lambda estimator: {
        "check_sample_weight_equivalence_on_dense_data": (
            "sample_weight is equivalent to repeated rows only from the same start"
        )
    },
)
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_is_accurate_on_offset_data(covariance_type):
    # large offset, small spread: E[x^2] - mu^2 would cancel in float32
    X = three_clusters(n_per=100, seed=11) + 1e4
    exact = BayesianGaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    single = BayesianGaussianMixture(
        3, covariance_type=covariance_type, random_state=0, dtype="float32"
    ).fit(X)
    order, order32 = np.argsort(exact.means_[:, 1]), np.argsort(single.means_[:, 1])
    np.testing.assert_allclose(single.means_[order32], exact.means_[order], atol=5e-3)
    covariances, covariances32 = exact.covariances_, single.covariances_
    if covariance_type != "tied":
        covariances, covariances32 = covariances[order], covariances32[order32]
    np.testing.assert_allclose(covariances32, covariances, rtol=2e-3, atol=1e-4)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_points_too_far_for_finite_densities_get_the_limits(covariance_type):
    X = three_clusters()
    model = BayesianGaussianMixture(
        n_components=3, covariance_type=covariance_type, random_state=0
    ).fit(X)
    directions = np.random.default_rng(3).normal(size=(12, X.shape[1]))
    directions /= np.linalg.norm(directions, axis=1, keepdims=True)
    center = X.mean(0)
    near = center + 1e7 * directions  # squares still finite: the ordinary computation
    far = center + 1e200 * directions  # squares overflow
    assert np.isfinite(model.score_samples(near)).all()
    np.testing.assert_array_equal(model.score_samples(far), -np.inf)
    assert model.score(far) == -np.inf
    # The label along each ray is the one the finite computation tends to.
    np.testing.assert_array_equal(model.predict(far), model.predict(near))
    np.testing.assert_array_equal(model.predict_proba(far), np.eye(3)[model.predict(near)])
    # Mixed with ordinary rows, those keep their values.
    both = np.r_[X[:5], far[:2]]
    np.testing.assert_allclose(model.predict_proba(both)[:5], model.predict_proba(X[:5]))


def test_a_row_where_only_some_components_overflow_keeps_its_finite_density():
    # float32, one component a million times narrower than the other: at 1e18 the narrow
    # one's squared distance overflows, the wide one's does not.
    rng = np.random.default_rng(0)
    X = np.r_[rng.normal(0, 1e-3, size=(200, 1)), rng.normal(50, 10, size=(200, 1))]
    model = BayesianGaussianMixture(
        n_components=2, random_state=0, dtype="float32", covariance_prior=[[1e-8]],
        degrees_of_freedom_prior=1.0, mean_precision_prior=1e-12,
    ).fit(X.astype(np.float32))  # fmt: skip
    point = np.array([[1e18]], dtype=np.float32)
    exact = model.to(dtype=torch.float64).score_samples(point.astype(np.float64))
    assert np.isfinite(model.score_samples(point)).all()
    np.testing.assert_allclose(model.score_samples(point), exact, rtol=1e-5)
    wide = int(np.argmax(model.covariances_.ravel()))
    np.testing.assert_array_equal(model.predict_proba(point), np.eye(2)[[wide]])

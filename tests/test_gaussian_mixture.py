"""GaussianMixture (EM) against scikit-learn and closed-form facts."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy import stats
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from conftest import make_blobs
from mixtorch import CovarianceError, GaussianMixture
from mixtorch.exceptions import DegenerateComponentWarning

KINDS = ["full", "tied", "diag", "spherical"]


def sklearn_start(X, kind, n_components=3, seed=0):
    """A shared starting point: a few sklearn EM steps from its own k-means init."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = SkGaussianMixture(
            n_components, covariance_type=kind, max_iter=2, random_state=seed
        ).fit(X)
    return dict(
        weights_init=start.weights_, means_init=start.means_, precisions_init=start.precisions_
    )


@pytest.mark.parametrize("kind", KINDS)
def test_em_reproduces_scikit_learn_from_the_same_start(kind):
    X, _, _ = make_blobs(n_per=150, dim=3, seed=1, separation=3.0)
    init = sklearn_start(X, kind)
    params = dict(n_components=3, covariance_type=kind, tol=1e-10, max_iter=500, **init)
    reference = SkGaussianMixture(**params).fit(X)
    ours = GaussianMixture(**params).fit(X)
    assert ours.n_iter_ == reference.n_iter_
    assert ours.converged_ and reference.converged_
    np.testing.assert_allclose(ours.lower_bound_, reference.lower_bound_, rtol=1e-12)
    np.testing.assert_allclose(ours.lower_bounds_, reference.lower_bounds_, rtol=1e-10)
    for name in ["weights_", "means_", "covariances_", "precisions_", "precisions_cholesky_"]:
        np.testing.assert_allclose(
            getattr(ours, name), getattr(reference, name), rtol=1e-8, atol=1e-10, err_msg=name
        )
    np.testing.assert_allclose(ours.score_samples(X), reference.score_samples(X), rtol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-9)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))
    assert ours.score(X) == pytest.approx(reference.score(X), rel=1e-12)
    assert ours.bic(X) == pytest.approx(reference.bic(X), rel=1e-12)
    assert ours.aic(X) == pytest.approx(reference.aic(X), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_chunk_size_does_not_change_the_fit(kind):
    X, _, _ = make_blobs(n_per=100, dim=2, seed=2)
    init = sklearn_start(X, kind)
    whole = GaussianMixture(3, covariance_type=kind, **init).fit(X)
    chunked = GaussianMixture(3, covariance_type=kind, chunk_size=17, **init).fit(X)
    np.testing.assert_allclose(chunked.means_, whole.means_, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(chunked.covariances_, whole.covariances_, rtol=1e-10, atol=1e-12)
    assert chunked.n_iter_ == whole.n_iter_


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), kind=st.sampled_from(KINDS), k=st.integers(1, 4))
def test_em_never_decreases_the_log_likelihood(seed, kind, k):
    rng = np.random.default_rng(seed)
    X = np.concatenate(
        [rng.normal(rng.normal(0, 3, 2), rng.uniform(0.3, 2), (60, 2)) for _ in range(3)]
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # random starts with k=4 on three groups may leave a component on a point (seed
        # 82, 'full'): a warned outcome, and the bounds must still never decrease
        warnings.simplefilter("ignore", DegenerateComponentWarning)
        model = GaussianMixture(
            k, covariance_type=kind, tol=0, max_iter=30, init_params="random", random_state=seed
        ).fit(X)
    bounds = np.asarray(model.lower_bounds_)
    assert np.all(np.isfinite(bounds))
    assert np.all(np.diff(bounds) >= -1e-9 * np.abs(bounds[1:]))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("init", ["kmeans", "k-means++", "random", "random_from_data"])
def test_recovers_a_known_mixture(kind, init):
    X, labels, centers = make_blobs(n_per=300, dim=2, seed=3, separation=8.0)
    # 'random' responsibilities start every mean near the data mean, where the likelihood
    # is nearly flat (as in scikit-learn), so it needs a tight tolerance to break symmetry.
    tol, n_init = (1e-9, 10) if init == "random" else (1e-3, 3)
    model = GaussianMixture(
        3,
        covariance_type=kind,
        init_params=init,
        n_init=n_init,
        tol=tol,
        max_iter=2000,
        random_state=0,
    ).fit(X)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(model.means_[order], centers[np.argsort(centers[:, 0])], atol=0.2)
    np.testing.assert_allclose(np.sort(model.weights_), [1 / 3] * 3, atol=0.02)
    assert model.converged_
    # labels agree with the truth up to permutation
    predicted = model.predict(X)
    agreement = max(
        np.mean(predicted[labels == j] == np.bincount(predicted[labels == j]).argmax())
        for j in range(3)
    )
    assert agreement > 0.99


def test_fit_predict_agrees_with_predict(blobs):
    X, _, _ = blobs
    model = GaussianMixture(3, random_state=0, n_init=2)
    labels = model.fit_predict(X)
    np.testing.assert_array_equal(labels, model.predict(X))


def test_sample_agrees_with_score_samples():
    X, _, _ = make_blobs(n_per=200, dim=2, seed=4)
    model = GaussianMixture(3, random_state=0).fit(X)
    samples, labels = model.sample(20_000)
    assert samples.shape == (20_000, 2) and labels.shape == (20_000,)
    # the model's mean log-density of its own samples estimates minus its entropy; compare
    # with a second, independent sample from torch.distributions
    reference = (
        model.mixture_.to_torch()
        .sample(
            (20_000,),
        )
        .numpy()
    )
    a, b = model.score_samples(samples), model.score_samples(reference)
    assert stats.ks_2samp(a, b).pvalue > 1e-3
    np.testing.assert_allclose(np.bincount(labels) / 20_000, model.weights_, atol=0.015)


def test_same_seed_same_fit_and_different_seed_differs():
    X, _, _ = make_blobs(n_per=100, dim=4, seed=5, separation=2.0)
    a = GaussianMixture(4, init_params="random", random_state=7).fit(X)
    b = GaussianMixture(4, init_params="random", random_state=7).fit(X)
    np.testing.assert_array_equal(a.means_, b.means_)
    np.testing.assert_array_equal(a.sample(5)[0], b.sample(5)[0])
    c = GaussianMixture(4, init_params="random", random_state=8).fit(X)
    assert not np.array_equal(a.means_, c.means_)


def test_float32_recovers_a_small_variance_on_a_large_offset():
    rng = np.random.default_rng(0)
    X = (1000.0 + 0.01 * rng.normal(size=(20_000, 2))).astype(np.float32)
    model = GaussianMixture(1, reg_covar=0.0, random_state=0).fit(X)
    assert model.covariances_.dtype == np.float32
    np.testing.assert_allclose(np.diag(model.covariances_[0]), 1e-4, rtol=0.03)
    X64 = X.astype(np.float64)
    np.testing.assert_allclose(
        model.covariances_[0], np.cov(X64.T, bias=True), rtol=0.03, atol=2e-6
    )
    for kind in ["diag", "spherical", "tied"]:
        other = GaussianMixture(1, covariance_type=kind, reg_covar=0.0).fit(X)
        variance = other.covariances_.reshape(-1)[0]
        assert variance == pytest.approx(1e-4, rel=0.03), kind


def test_float32_two_tight_far_apart_components():
    rng = np.random.default_rng(1)
    X = np.concatenate(
        [500 + 0.05 * rng.normal(size=(3000, 2)), 520 + 0.05 * rng.normal(size=(3000, 2))]
    ).astype(np.float32)
    model = GaussianMixture(2, reg_covar=0.0, random_state=0).fit(X)
    variances = np.stack([np.diag(c) for c in model.covariances_])
    np.testing.assert_allclose(variances, 0.0025, rtol=0.08)


def test_tensor_input_gives_tensor_output():
    X, _, _ = make_blobs(n_per=50)
    X_t = torch.as_tensor(X, dtype=torch.float32)
    model = GaussianMixture(3, random_state=0).fit(X_t)
    assert isinstance(model.means_, torch.Tensor) and model.means_.dtype == torch.float32
    out = model.score_samples(X_t)
    assert isinstance(out, torch.Tensor) and out.shape == (150,)
    assert isinstance(model.predict(X), np.ndarray)  # numpy in, numpy out
    samples, labels = model.sample(3)
    assert isinstance(samples, torch.Tensor)
    np.testing.assert_allclose(out.numpy(), model.score_samples(X), rtol=1e-5)


def test_from_parameters_scores_like_scipy():
    weights = [0.3, 0.7]
    means = [[0.0, 0.0], [3.0, 1.0]]
    covariances = [[1.0, 2.0], [0.5, 0.5]]
    model = GaussianMixture.from_parameters(weights, means, covariances, "diag", random_state=0)
    X = np.random.default_rng(0).normal(size=(10, 2))
    expected = np.log(
        sum(
            w * stats.multivariate_normal(m, np.diag(c)).pdf(X)
            for w, m, c in zip(weights, means, covariances, strict=False)
        )
    )
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-12)
    assert model.sample(4)[0].shape == (4, 2)
    assert model.n_features_in_ == 2


def test_warm_start_continues_from_the_previous_fit():
    X, _, _ = make_blobs(n_per=100, seed=6, separation=2.5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, max_iter=2, tol=0, warm_start=True, random_state=0)
        model.fit(X)
        first = model.lower_bound_
        model.fit(X)
    assert model.lower_bound_ >= first
    cold = GaussianMixture(3, max_iter=4, tol=0, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cold.fit(X)
    np.testing.assert_allclose(model.means_, cold.means_, rtol=1e-10)


def test_not_converged_warns():
    X, _, _ = make_blobs(n_per=50, separation=1.0)
    with pytest.warns(ConvergenceWarning):
        GaussianMixture(3, max_iter=1, tol=0, random_state=0).fit(X)


def test_empty_component_is_reseeded_not_nan():
    # Component 2 starts far from every point, so it gets no responsibility at all.
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (200, 2)), rng.normal(6, 1, (200, 2))])
    model = GaussianMixture(
        3,
        weights_init=[0.4, 0.4, 0.2],
        means_init=[[0, 0], [6, 6], [1e4, 1e4]],
        precisions_init=np.stack([np.eye(2)] * 3) * 100,
        random_state=0,
        max_iter=300,
    ).fit(X)
    assert np.all(np.isfinite(model.means_)) and np.all(np.isfinite(model.covariances_))
    assert np.all(model.means_ < 100)  # the empty one was moved back onto the data
    assert np.all(np.isfinite(model.score_samples(X)))
    assert model.weights_.min() > 0.01


def test_singular_covariance_error_says_what_to_do():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(100, 1))
    X = np.hstack([x, 2 * x])  # rank one
    with pytest.raises(CovarianceError, match="reg_covar"):
        GaussianMixture(1, reg_covar=0.0).fit(X)
    # with the default regularisation it works
    assert np.isfinite(GaussianMixture(1).fit(X).score(X))


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (np.array([[1.0, np.nan], [2.0, 3.0], [1.0, 1.0]]), "NaN"),
        (np.array([[1.0, np.inf], [2.0, 3.0], [1.0, 1.0]]), "infinity"),
        (np.arange(10.0), "Expected 2D array"),
        (np.ones((1, 3)), "1 sample"),
        (np.array([["a", "b"], ["c", "d"]]), "could not convert|numeric"),
    ],
)
def test_bad_input_is_a_clear_value_error(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X)


@pytest.mark.parametrize(
    ("X", "message"),
    [
        (torch.tensor([[1.0, float("nan")], [2.0, 3.0]]), "NaN"),
        (torch.ones(5), "Expected a 2D tensor"),
        (torch.ones(1, 2), "1 sample"),
        (torch.ones(4, 2, dtype=torch.complex64), "Complex"),
    ],
)
def test_bad_tensor_input_is_a_clear_value_error(X, message):
    with pytest.raises(ValueError, match=message):
        GaussianMixture(1).fit(X)


def test_too_few_samples_and_feature_mismatch():
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        GaussianMixture(5).fit(np.random.default_rng(0).normal(size=(3, 2)))
    model = GaussianMixture(2, random_state=0).fit(np.random.default_rng(0).normal(size=(50, 2)))
    with pytest.raises(ValueError, match="X has 3 features, but GaussianMixture is expecting 2"):
        model.predict(np.ones((4, 3)))
    with pytest.raises(ValueError, match="X has 3 features"):
        model.score_samples(torch.ones(4, 3, dtype=torch.float64))


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (dict(n_components=0), "n_components"),
        (dict(covariance_type="banana"), "covariance_type"),
        (dict(init_params="nope"), "init_params"),
        (dict(tol=-1.0), "tol"),
        (dict(weights_init=[0.5, 0.6]), "sum to 1"),
        (dict(means_init=np.zeros((3, 2))), "means_init must have shape"),
        (dict(precisions_init=-np.stack([np.eye(2)] * 2)), "positive definite"),
    ],
)
def test_bad_parameters_are_named(params, message):
    X = np.random.default_rng(0).normal(size=(40, 2))
    params = {"n_components": 2, **params}
    with pytest.raises(ValueError, match=message):
        GaussianMixture(**params).fit(X)


def test_float32_and_float64_agree():
    X, _, _ = make_blobs(n_per=200, dim=3, seed=9)
    init = sklearn_start(X, "full")
    a = GaussianMixture(3, **init).fit(X)
    b = GaussianMixture(3, dtype="float32", **init).fit(X)
    assert b.means_.dtype == np.float32
    np.testing.assert_allclose(b.means_, a.means_, atol=1e-4)
    np.testing.assert_allclose(b.covariances_, a.covariances_, atol=1e-4)


DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.mark.parametrize("device", DEVICES)
def test_device_argument_and_tensor_device(device):
    # Runs on the CPU everywhere and on CUDA where a GPU exists: the same code path.
    X, _, _ = make_blobs(n_per=200, dim=3, seed=9)
    init = sklearn_start(X, "full")
    reference = GaussianMixture(3, **init).fit(X)
    on_device = GaussianMixture(3, device=device, **init).fit(torch.as_tensor(X, device=device))
    assert on_device.means_.device.type == device
    assert on_device.mixture_.device.type == device
    np.testing.assert_allclose(on_device.means_.cpu().numpy(), reference.means_, rtol=1e-8)
    from_numpy = GaussianMixture(3, device=device, **init).fit(X)
    assert isinstance(from_numpy.means_, np.ndarray)
    assert from_numpy.mixture_.device.type == device
    np.testing.assert_allclose(from_numpy.score_samples(X), reference.score_samples(X), rtol=1e-10)


def test_fit_callback_sees_every_iteration():
    X, _, _ = make_blobs(n_per=100, seed=11)
    seen: list[tuple[int, float]] = []
    model = GaussianMixture(3, random_state=0).fit(X, callback=lambda i, lb: seen.append((i, lb)))
    assert [i for i, _ in seen] == list(range(1, model.n_iter_ + 1))
    np.testing.assert_allclose([lb for _, lb in seen], model.lower_bounds_)

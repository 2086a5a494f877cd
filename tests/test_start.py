"""Given starting parameters (weights_init, means_init, precisions_init) are checked as
scikit-learn checks them, with errors that name the parameter."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError

from mixtorch import BayesianGaussianMixture, GaussianMixture


@pytest.fixture
def X():
    rng = np.random.default_rng(1)
    return np.concatenate([rng.normal(0, 1, (60, 2)), rng.normal(6, 1, (60, 2))])


ASYMMETRIC = np.array([[2.0, 0.9], [0.1, 1.0]])  # positive eigenvalues, not symmetric


@pytest.mark.parametrize(
    ("covariance_type", "precisions"),
    [("full", np.stack([ASYMMETRIC, np.eye(2)])), ("tied", ASYMMETRIC)],
)
def test_asymmetric_precisions_init_is_refused_as_scikit_learn_does(X, covariance_type, precisions):
    with pytest.raises(ValueError, match="symmetric"):
        SkGaussianMixture(2, covariance_type=covariance_type, precisions_init=precisions).fit(X)
    model = GaussianMixture(2, covariance_type=covariance_type, precisions_init=precisions)
    with pytest.raises(ValueError, match="precisions_init must be symmetric positive definite"):
        model.fit(X)


def test_weights_init_of_shape_k_by_1_is_refused(X):
    with pytest.raises(ValueError, match=r"weights_init must have shape \(2,\), got \(2, 1\)"):
        GaussianMixture(2, weights_init=np.array([[0.5], [0.5]])).fit(X)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("means_init", lambda bad: np.array([[0.0, bad], [6.0, 6.0]])),
        ("weights_init", lambda bad: np.array([bad, 0.5])),
        ("precisions_init", lambda bad: np.stack([np.eye(2), np.diag([1.0, bad])])),
    ],
)
def test_non_finite_given_parameters_are_named(X, name, value, bad):
    kind = "NaN" if np.isnan(bad) else "infinity"
    with pytest.raises(ValueError, match=f"{name} contains {kind}"):
        GaussianMixture(2, **{name: value(bad)}).fit(X)


def test_non_numeric_given_parameters_are_type_errors_that_name_them(X):
    with pytest.raises(TypeError, match="means_init"):
        GaussianMixture(2, means_init=[["a", "b"], ["c", "d"]]).fit(X)
    with pytest.raises(TypeError, match="precisions_init"):
        GaussianMixture(2, covariance_type="spherical", precisions_init=[1.0, "x"]).fit(X)


def test_given_parameters_are_used_as_given(X):
    means = np.array([[0.0, 0.0], [6.0, 6.0]])
    model = GaussianMixture(2, means_init=means, weights_init=[0.5, 0.5], max_iter=0)
    model.fit(X)
    reference = SkGaussianMixture(2, means_init=means, weights_init=[0.5, 0.5], max_iter=0)
    reference.fit(X)
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-12)
    np.testing.assert_allclose(model.weights_, reference.weights_, rtol=1e-12)


def test_degrees_of_freedom_prior_nan_and_too_small_are_clear(X):
    with pytest.raises(InvalidParameterError, match="degrees_of_freedom_prior"):
        BayesianGaussianMixture(2, degrees_of_freedom_prior=float("nan")).fit(X)
    with pytest.raises(ValueError, match="degrees_of_freedom_prior' should be greater than 1"):
        BayesianGaussianMixture(2, degrees_of_freedom_prior=0.5).fit(X)

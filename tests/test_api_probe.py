"""A careless user's inputs to the less-probed public APIs: ``mixtorch.conditioning``'s
functions, the regressor's draws, seeds, ``select``'s criterion and folds, edited model
files of a regressor, ``mixtorch.nn.GaussianMixtureModule.from_estimator`` and
covariances too small to compute with. Each gets a clear error naming the parameter (or
the file), not an error from inside torch, a NaN or a silently wrong answer."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from scipy.stats import multivariate_normal
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LinearRegression

import mixtorch
from mixtorch import (
    Gaussian,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
    conditioning,
)
from mixtorch.nn import GaussianMixtureModule


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.normal(size=(60, 3)) @ np.array([[1.0, 0.6, 0.0], [0.0, 1.0, 0.4], [0, 0, 1]])


@pytest.fixture(scope="module")
def mixture(X):
    return GaussianMixture(2, random_state=0).fit(X).mixture_


# -- mixtorch.conditioning: the functions check what the Mixture methods check ------------
@pytest.mark.parametrize(
    ("features", "error", "fragment"),
    [
        (torch.tensor([3]), ValueError, r"indices in \[0, 3\).*negative, down to -3"),
        (torch.tensor([-4]), ValueError, r"indices in \[0, 3\)"),
        (torch.tensor([0, 0]), ValueError, "must not repeat an index"),
        (torch.tensor([1.0]), TypeError, "integer feature indices"),
        (torch.tensor([], dtype=torch.int64), ValueError, "at least one feature"),
        ([True, False], ValueError, "boolean mask of features needs 3 entries"),
    ],
)
def test_conditioning_functions_check_their_features(mixture, features, error, fragment):
    with pytest.raises(error, match=fragment):
        conditioning.marginal(mixture.means, mixture.covariance, features)
    with pytest.raises(error, match=fragment):
        values = torch.zeros(1, max(1, len(features)), dtype=mixture.dtype)
        conditioning.condition(
            mixture.log_weights, mixture.means, mixture.covariance, features, values
        )


@pytest.mark.parametrize(
    ("features", "values", "fragment"),
    [
        ([0, 1, 2], [[0.0, 0.0, 0.0]], "at least one feature free"),
        ([0], [[0.0, 0.0]], r"1 entry per row.*got shape \(1, 2\)"),
        ([0], [[float("nan")]], "NaN or infinity"),
        ([0], [[float("inf")]], "NaN or infinity"),
    ],
)
def test_condition_function_checks_its_values(mixture, features, values, fragment):
    with pytest.raises(ValueError, match=fragment):
        conditioning.condition(
            mixture.log_weights, mixture.means, mixture.covariance, features, values
        )


def test_conditioning_functions_take_lists_and_agree_with_the_mixture(mixture):
    means, covariance = conditioning.marginal(mixture.means, mixture.covariance, [2, -3])
    torch.testing.assert_close(means, mixture.marginal([2, 0]).means, rtol=0, atol=0)
    torch.testing.assert_close(
        covariance.covariances, mixture.marginal([2, 0]).covariance.covariances, rtol=0, atol=0
    )
    # float32 values, one row given 1-D: converted to the mixture's dtype and rows
    given = conditioning.condition(
        mixture.log_weights,
        mixture.means,
        mixture.covariance,
        [1],
        torch.tensor([0.5], dtype=torch.float32),
    )
    expected = mixture.conditionals([1], [[0.5]])
    torch.testing.assert_close(given.mean(), expected.mean(), rtol=0, atol=0)
    torch.testing.assert_close(given.log_weights, expected.log_weights, rtol=0, atol=0)


# -- GaussianMixtureRegressor.sample_y and seeds --------------------------------------------
@pytest.fixture(scope="module")
def regressor(X):
    return GaussianMixtureRegressor(random_state=0).fit(X[:, :2], X[:, 2])


@pytest.mark.parametrize("n_samples", [1.5, 2.0, "3", None, True])
def test_sample_y_counts_that_are_not_integers_are_type_errors(regressor, X, n_samples):
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        regressor.sample_y(X[:2, :2], n_samples=n_samples)


def test_sample_y_takes_zero_d_integer_counts_as_the_other_samplers_do(regressor, X):
    with pytest.raises(ValueError, match="n_samples must be an integer >= 1, got 0"):
        regressor.sample_y(X[:2, :2], n_samples=0)
    by_array = regressor.sample_y(X[:2, :2], n_samples=np.array(3), random_state=1)
    by_int = regressor.sample_y(X[:2, :2], n_samples=3, random_state=1)
    np.testing.assert_array_equal(by_array, by_int)


@pytest.mark.parametrize("seed", [-1, 2**32, 2**70])
def test_seeds_outside_what_scikit_learn_takes_are_named(regressor, X, seed):
    with pytest.raises(ValueError, match=r"random_state must be an int in \[0, 2\*\*32 - 1\]"):
        regressor.sample_y(X[:2, :2], 2, random_state=seed)
    with pytest.raises(ValueError, match=r"random_state must be an int in \[0, 2\*\*32 - 1\]"):
        Gaussian().fit(X).rvs(2, random_state=seed)


def test_the_largest_seed_still_draws(regressor, X):
    draws = regressor.sample_y(X[:2, :2], 2, random_state=2**32 - 1)
    assert draws.shape == (2, 2) and np.isfinite(draws).all()


# -- select --------------------------------------------------------------------------------
@pytest.mark.parametrize("criterion", [["bic"], ("aic",), None, 1])
def test_select_criterion_of_the_wrong_kind_is_named(X, criterion):
    with pytest.raises(ValueError, match=r"criterion must be one of \['aic', 'bic', 'cv'\]"):
        mixtorch.select(X, [1], ["diag"], criterion=criterion)


def test_select_more_folds_than_rows_is_refused_up_front_naming_cv(X):
    with pytest.raises(ValueError, match=r"cv=13 folds need at least 13 rows, but X has 12"):
        mixtorch.select(X[:12], [1], ["diag"], criterion="cv", cv=13)
    result = mixtorch.select(X[:12], [1], ["diag"], criterion="cv", cv=12)  # leave-one-out
    assert np.isfinite(result.best_score_)


# -- load: an edited regressor file ---------------------------------------------------------
def _rewrite(source, target, edit) -> None:
    """Copy a model file with its document edited and its digest redone."""
    from mixtorch._model_file import file_digest

    with safe_open(str(source), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        document = json.loads(handle.metadata()["mixtorch"])
    edit(document["state"]["attributes"])
    document["sha256"] = file_digest(tensors, document)
    save_file(tensors, str(target), metadata={"mixtorch": json.dumps(document)})


@pytest.mark.parametrize(
    ("targets", "edit", "fragment"),
    [
        (2, lambda a: a.update(_single_target=True), r"_single_target is True for 2 targets"),
        (1, lambda a: a.pop("_single_target"), r"_single_target is None"),
        (1, lambda a: a.update(_single_target="yes"), r"_single_target is 'yes'"),
        (1, lambda a: a.update(n_features_in_="2"), r"n_features_in_ must be a positive integer"),
        (1, lambda a: a.update(n_targets_=1.0), r"n_targets_ must be a positive integer"),
    ],
)
def test_a_regressor_file_with_inconsistent_attributes_is_refused(
    tmp_path, X, targets, edit, fragment
):
    y = X[:, 2] if targets == 1 else X[:, 1:]
    model = GaussianMixtureRegressor(random_state=0).fit(X[:, :1], y)
    saved = mixtorch.save(model, tmp_path / "reg.mixtorch")
    bad = tmp_path / "bad.mixtorch"
    _rewrite(saved, bad, edit)
    with pytest.raises(ValueError, match=rf"bad\.mixtorch: .*{fragment}"):
        mixtorch.load(bad)
    np.testing.assert_array_equal(mixtorch.load(saved).predict(X[:3, :1]), model.predict(X[:3, :1]))


def test_an_imputer_file_with_a_non_integer_width_is_refused(tmp_path, X):
    saved = mixtorch.save(GaussianMixtureImputer(random_state=0).fit(X), tmp_path / "imp.mixtorch")
    bad = tmp_path / "bad.mixtorch"
    _rewrite(saved, bad, lambda a: a.update(n_features_in_="3"))
    with pytest.raises(ValueError, match=r"bad\.mixtorch: .*n_features_in_ must be a positive"):
        mixtorch.load(bad)


# -- mixtorch.nn ----------------------------------------------------------------------------
@pytest.mark.parametrize("make", [GaussianMixtureRegressor, GaussianMixtureImputer])
def test_from_estimator_of_a_fitted_wrapper_points_to_its_joint_mixture(X, make):
    model = make(random_state=0)
    model = model.fit(X[:, :2], X[:, 2]) if make is GaussianMixtureRegressor else model.fit(X)
    with pytest.raises(TypeError, match=r"got a fitted .*estimator\.mixture_model_"):
        GaussianMixtureModule.from_estimator(model)
    module = GaussianMixtureModule.from_estimator(model.mixture_model_)  # what it says works
    rows = torch.as_tensor(X[:4])
    np.testing.assert_allclose(
        module.log_prob(rows).detach().numpy(), model.mixture_model_.score_samples(X[:4])
    )


def test_from_estimator_of_other_estimators(X):
    with pytest.raises(TypeError, match="fitted LinearRegression, which has no mixture"):
        GaussianMixtureModule.from_estimator(LinearRegression().fit(X[:, :2], X[:, 2]))
    with pytest.raises(NotFittedError):
        GaussianMixtureModule.from_estimator(GaussianMixtureRegressor())
    with pytest.raises(NotFittedError):
        GaussianMixtureModule.from_estimator(GaussianMixture(2))


# -- from_parameters: variances too small to compute with ------------------------------------
@pytest.mark.parametrize(
    ("covariances", "covariance_type"),
    [([np.eye(2) * 1e-310], "full"), ([[1.0, 1e-320]], "diag"), ([5e-324], "spherical")],
)
def test_subnormal_variances_are_refused_not_scored_minus_infinity(covariances, covariance_type):
    with pytest.raises(ValueError, match=r"covariances must have variances of at least 2.2"):
        GaussianMixture.from_parameters([1.0], [[0.0, 0.0]], covariances, covariance_type)


def test_float32_subnormal_variances_suggest_float64():
    with pytest.raises(ValueError, match=r"at least 1.18e-38 .*float32.*or use float64"):
        GaussianMixture.from_parameters(
            [1.0], [[0.0, 0.0]], [[1e-40, 1.0]], "diag", dtype="float32"
        )


def test_the_smallest_normal_variances_still_score_as_scipy():
    variance = 1e-300
    model = GaussianMixture.from_parameters([1.0], [[0.0, 0.0]], [np.eye(2) * variance])
    points = np.array([[0.0, 0.0], [1e-150, -2e-150]])
    expected = multivariate_normal(np.zeros(2), np.eye(2) * variance).logpdf(points)
    np.testing.assert_allclose(model.score_samples(points), expected, rtol=1e-12)

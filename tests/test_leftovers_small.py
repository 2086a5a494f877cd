"""Small leftovers: the imputer's empty features (``keep_empty_features``), float32
regression on exactly collinear data, one collapse warning per ``select``, make_prior's
advice for a constant feature, and the smallest FFT KDE ``grid_size``."""

from __future__ import annotations

import math
import re
import warnings

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import norm
from sklearn.datasets import make_regression
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer, SimpleImputer
from sklearn.utils.estimator_checks import check_regressor_multioutput

import mixtorch
from mixtorch import (
    CovarianceError,
    DegenerateComponentWarning,
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
)
from mixtorch.selection import _fit_quietly

FLOAT32_EPS = float(np.finfo(np.float32).eps)


# -- 1. GaussianMixtureImputer and a feature with no observed value ----------------------
def _with_empty_feature():
    """Column 1 all missing; column 0 missing in 20 rows; column 2 complete, so the
    maximum-likelihood imputation of column 0 is the complete-case regression on column 2
    (a monotone pattern: Anderson 1957)."""
    rng = np.random.default_rng(0)
    x2 = rng.normal(size=300)
    x0 = 1.5 + 0.8 * x2 + 0.3 * rng.normal(size=300)
    X = np.column_stack([x0, np.full(300, np.nan), x2])
    X[:20, 0] = np.nan
    return X


def _reference_imputation(X):
    """E[x0 | x2] from the least-squares line fitted to the complete rows."""
    complete = ~np.isnan(X[:, 0])
    slope, intercept = np.polyfit(X[complete, 2], X[complete, 0], 1)
    return intercept + slope * X[~complete, 2]


def _imputer():
    return GaussianMixtureImputer(tol=1e-12, max_iter=2000, reg_covar=0.0)


def test_an_empty_feature_is_dropped_with_a_warning_as_in_scikit_learn():
    X = _with_empty_feature()
    model = _imputer().fit(X)
    with pytest.warns(UserWarning, match=r"Feature\(s\) \[1\] had no observed value.*keep_empty"):
        filled = model.transform(X)
    with pytest.warns(UserWarning, match=r"\[1\]"):
        simple = SimpleImputer().fit(X)
        simple_out = simple.transform(X)
    with pytest.warns(UserWarning, match=r"\[1\]"):
        iterative = IterativeImputer(random_state=0).fit(X)
    with pytest.warns(UserWarning, match=r"\[1\]"):
        iterative_out = iterative.transform(X)
    assert filled.shape == simple_out.shape == iterative_out.shape == (300, 2)
    assert model.n_features_in_ == simple.n_features_in_ == iterative.n_features_in_ == 3
    assert model.get_feature_names_out().tolist() == ["x0", "x2"]
    assert simple.get_feature_names_out().tolist() == ["x0", "x2"]
    assert iterative.get_feature_names_out().tolist() == ["x0", "x2"]
    assert model.mixture_model_.n_features_in_ == 2
    np.testing.assert_array_equal(filled[20:], X[20:][:, [0, 2]])  # observed: bit for bit
    np.testing.assert_allclose(filled[:20, 0], _reference_imputation(X), rtol=1e-7)
    # A value seen at transform in the empty feature is dropped with it.
    with pytest.warns(UserWarning, match=r"\[1\]"):
        new = model.transform(np.array([[np.nan, 7.0, 1.0]]))
    assert new.shape == (1, 2)


def test_keep_empty_features_fills_them_with_zero_as_in_scikit_learn():
    X = _with_empty_feature()
    model = _imputer().set_params(keep_empty_features=True).fit(X)
    filled = model.transform(X)  # no warning (warnings are errors in the tests)
    simple = SimpleImputer(keep_empty_features=True).fit(X)
    iterative = IterativeImputer(keep_empty_features=True, random_state=0).fit(X)
    assert filled.shape == simple.transform(X).shape == iterative.transform(X).shape
    np.testing.assert_array_equal(filled[:, 1], 0.0)
    np.testing.assert_array_equal(filled[:, 1], simple.transform(X)[:, 1])
    np.testing.assert_array_equal(filled[:, 1], iterative.transform(X)[:, 1])
    np.testing.assert_allclose(filled[:20, 0], _reference_imputation(X), rtol=1e-7)
    expected = ["x0", "x1", "x2"]
    assert model.get_feature_names_out().tolist() == expected
    assert simple.get_feature_names_out().tolist() == expected
    # Values seen only at transform pass through, missing ones are 0, as SimpleImputer does;
    # the empty feature never informs the others.
    new = np.array([[np.nan, 7.0, 1.0], [np.nan, np.nan, 1.0], [2.0, 8.0, np.nan]])
    out = model.transform(new)
    np.testing.assert_array_equal(out[:, 1], simple.transform(new)[:, 1])
    np.testing.assert_array_equal(out[:, 1], [7.0, 0.0, 8.0])
    np.testing.assert_allclose(out[0], out[1] + [0.0, 7.0, 0.0], rtol=1e-12)


def test_empty_features_are_named_by_column_and_survive_pandas_output_and_save(tmp_path):
    X = _with_empty_feature()
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = _imputer().set_output(transform="pandas").fit(frame)
    with pytest.warns(UserWarning, match=r"Feature\(s\) \['b'\] had no observed value"):
        out = model.transform(frame)
    assert list(out.columns) == ["a", "c"] == model.get_feature_names_out().tolist()
    loaded = mixtorch.load(mixtorch.save(_imputer().fit(X), tmp_path / "imputer.mixtorch"))
    with pytest.warns(UserWarning, match=r"\[1\]"):
        assert loaded.transform(X).shape == (300, 2)
    tensor_out = _imputer().set_params(keep_empty_features=True).fit(X).transform(torch.tensor(X))
    assert isinstance(tensor_out, torch.Tensor) and tuple(tensor_out.shape) == (300, 3)


def test_no_observed_value_anywhere_is_refused():
    with pytest.raises(ValueError, match="Every feature of X is missing"):
        GaussianMixtureImputer().fit(np.full((5, 2), np.nan))


# -- 2. float32 regression of exactly linear targets --------------------------------------
def _multioutput_data():
    """The data of scikit-learn's check_regressor_multioutput: 5 targets exactly linear in
    10 inputs, 11 rows, so the joint covariance of [X, y] is singular."""
    return make_regression(random_state=42, n_targets=5, n_samples=11, n_features=10)


def test_float32_regression_of_collinear_data_names_the_reg_covar_to_pass():
    X, y = _multioutput_data()
    joint = np.column_stack([X, y]).astype(np.float32).astype(np.float64)
    rounding = FLOAT32_EPS * joint.var(axis=0).max()  # float32's resolution there
    suggested = 10.0 ** math.ceil(math.log10(rounding))
    model = GaussianMixtureRegressor(dtype="float32")
    with pytest.raises(CovarianceError, match=r"float32 with reg_covar=1e-06.*dtype='float64'"):
        check_regressor_multioutput("GaussianMixtureRegressor", model)
    with pytest.raises(CovarianceError) as caught:
        model.fit(X, y)
    assert isinstance(caught.value, ValueError)
    assert f"Pass reg_covar={suggested:g} or more" in str(caught.value)
    assert suggested == pytest.approx(0.01)
    check_regressor_multioutput("GaussianMixtureRegressor", GaussianMixtureRegressor())


def test_the_suggested_reg_covar_fits_and_matches_the_closed_form():
    X, y = _multioutput_data()
    reg_covar = 0.01
    model = GaussianMixtureRegressor(dtype="float32", reg_covar=reg_covar).fit(X, y)
    # One full-covariance component: E[y | x] from the regularised joint moments.
    joint = np.column_stack([X, y])
    mean = joint.mean(axis=0)
    covariance = np.cov(joint.T, bias=True) + reg_covar * np.eye(joint.shape[1])
    slopes = np.linalg.solve(covariance[:10, :10], covariance[:10, 10:])
    reference = mean[10:] + (X - mean[:10]) @ slopes
    prediction = model.predict(X)
    assert prediction.dtype == np.float32  # mixtorch returns the computation dtype
    np.testing.assert_allclose(prediction, reference, atol=1e-6 * np.abs(reference).max())


def test_float64_gets_the_same_advice_and_overflow_keeps_its_own():
    X = np.random.default_rng(0).normal(size=(40, 2))
    y = X @ np.array([1.0, -2.0])
    variance = np.column_stack([X, y]).var(axis=0).max()
    suggested = 10.0 ** math.ceil(math.log10(np.finfo(np.float64).eps * variance))
    with pytest.raises(CovarianceError, match=r"in float64 with reg_covar=0:") as caught:
        GaussianMixtureRegressor(reg_covar=0.0).fit(X, y)
    assert f"Pass reg_covar={suggested:g} or more, or scale X" in str(caught.value)
    # Data whose squares overflow float32: no reg_covar helps, the error says to rescale.
    with pytest.raises(CovarianceError, match="infinity or NaN in float32.*rescale"):
        GaussianMixtureRegressor(dtype="float32").fit(X * 1e20, y * 1e20)


# -- 3. one DegenerateComponentWarning per select ------------------------------------------
def _duplicated_points():
    rng = np.random.default_rng(0)
    return np.concatenate(
        [rng.normal(size=(200, 2)), np.tile([[8.0, 8.0]], (5, 1)), np.tile([[-8.0, 8.0]], (5, 1))]
    )


def _collapses_alone(k, kind, X):
    """Whether GaussianMixture itself warns for this candidate (the reference)."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        GaussianMixture(k, covariance_type=kind, random_state=0).fit(X)
    return any(issubclass(w.category, DegenerateComponentWarning) for w in caught)


def test_select_warns_once_naming_every_collapsed_candidate():
    X = _duplicated_points()
    ks, kinds = [1, 2, 3, 4], ["full", "diag"]
    expected = {(k, kind) for kind in kinds for k in ks if _collapses_alone(k, kind, X)}
    assert len(expected) >= 2  # the data make several candidates collapse
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mixtorch.select(X, ks, kinds, random_state=0)
    assert [w.category for w in caught] == [DegenerateComponentWarning]
    message = str(caught[0].message)
    named = set(re.findall(r"n_components=(\d+), covariance_type='(\w+)'", message))
    assert {(int(k), kind) for k, kind in named} == expected
    assert message.startswith(f"{len(expected)} of 8 candidates")
    noted = {
        (row["n_components"], row["covariance_type"])
        for row in result.table
        if row["note"].startswith("component(s) collapsed")
    }
    assert noted == expected
    assert ("the best candidate among them" in message) == (
        (result.best_params_["n_components"], result.best_params_["covariance_type"]) in expected
    )


def test_select_by_cross_validation_warns_once_and_notes_the_folds():
    X = _duplicated_points()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = mixtorch.select(X, [1, 3], ["full"], criterion="cv", cv=3, random_state=0)
    assert [w.category for w in caught] == [DegenerateComponentWarning]
    notes = [row["note"] for row in result.table]
    assert notes[0] == ""
    assert re.fullmatch(r"component\(s\) collapsed onto a point in [123] of 3 folds", notes[1])


def test_select_without_collapse_is_silent_and_other_fit_warnings_pass_through():
    X = np.random.default_rng(0).normal(size=(200, 2))
    mixtorch.select(X, [1, 2], ["full"], random_state=0)  # no warning: they are errors here

    class Noisy:
        def fit(self, X):
            warnings.warn("collapsed", DegenerateComponentWarning, stacklevel=2)
            warnings.warn("something else", RuntimeWarning, stacklevel=2)
            return self

    collapsed: list[bool] = []
    with pytest.warns(RuntimeWarning, match="something else") as caught:
        _fit_quietly(Noisy(), X, collapsed)  # type: ignore[arg-type]
    assert collapsed == [True]
    assert [w.category for w in caught] == [RuntimeWarning]


# -- 4. make_prior and a constant feature ---------------------------------------------------
def test_make_prior_tells_to_drop_or_jitter_a_constant_feature():
    bayes = pytest.importorskip("mixtorch.bayes")
    X = torch.tensor([[1.0, 0.0], [1.0, 2.0], [1.0, 5.0]], dtype=torch.float64)
    with pytest.raises(ValueError, match=r"Feature\(s\) \[0\] of X are constant") as caught:
        bayes.make_prior(X)
    message = str(caught.value)
    assert "Drop those features, or jitter them" in message
    assert "give mean_prior_scale" not in message  # explicit priors do not help
    # The estimators refuse the same data earlier, with the same instruction to drop them.
    with pytest.raises(ValueError, match=r"Feature\(s\) \[0\] of X are constant.*Drop"):
        bayes.SVIGaussianMixture(1, num_steps=2, num_restarts=1, random_state=0).fit(X.numpy())
    # Jittered, the feature is usable, and its default prior scale is its spread.
    jittered = X.clone()
    jittered[:, 0] += torch.tensor([-1e-3, 0.0, 2e-3], dtype=torch.float64)
    prior = bayes.make_prior(jittered)
    expected = np.std(jittered.numpy(), axis=0, ddof=1)
    np.testing.assert_allclose(prior.scale_scale.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose(prior.mean_scale.numpy(), 2 * expected, rtol=1e-12)


# -- 5. the smallest grid_size of GaussianKDE(algorithm="fft") -----------------------------
def _documented_bound(spacing, distance, n_features):
    """fit/fft_kde.py: |log error| <= sum_d (r s + s**2/2)**2 / 8 + s**2 / 8 inside the grid."""
    return n_features * ((distance * spacing + spacing**2 / 2) ** 2 / 8 + spacing**2 / 8)


def test_one_point_needs_25_nodes_and_matches_the_normal_density_there():
    X = np.array([[3.0]])
    model = GaussianKDE(algorithm="fft", grid_size=25, bandwidth=1.0).fit(X)
    distances = np.linspace(0.0, 6.0, 25)
    errors = np.abs(model.score_samples(3.0 + distances[:, None]) - norm.logpdf(distances))
    assert (errors <= _documented_bound(0.5, distances, 1)).all()
    assert errors.max() > 0.01  # the coarsest grid: far from exact, within the bound
    with pytest.raises(ValueError, match="grid_size must be an integer of at least 25"):
        GaussianKDE(algorithm="fft", grid_size=24, bandwidth=1.0).fit(X)
    with pytest.raises(ValueError, match="at least 25"):
        GaussianKDE(algorithm="fft", grid_size=[40, 24]).fit(
            np.random.default_rng(0).normal(size=(50, 2))
        )


def test_grid_size_boundary_follows_the_data_span_and_matches_the_exact_kde():
    X = np.random.default_rng(0).normal(size=(200, 1))
    exact = GaussianKDE().fit(X)
    width = math.sqrt(float(exact.bandwidth_[0, 0]))
    span = (X.max() - X.min()) / width  # kernel widths
    needed = math.ceil(span / 0.5) + 25  # 0.5 kernel widths per cell, 6 on each side
    with pytest.raises(
        ValueError, match=rf"grid_size={needed - 1} is too small.*at least {needed}\."
    ):
        GaussianKDE(algorithm="fft", grid_size=needed - 1).fit(X)
    model = GaussianKDE(algorithm="fft", grid_size=needed).fit(X)
    queries = np.linspace(X.min(), X.max(), 301)[:, None]
    brute = logsumexp(norm.logpdf(queries, X[:, 0], width), axis=1) - math.log(len(X))
    spacing = (span + 12.0) / (needed - 1)
    assert spacing <= 0.5
    errors = np.abs(model.score_samples(queries) - brute)
    assert errors.max() <= _documented_bound(spacing, 2.0, 1)
    assert errors.max() > 1e-4  # coarse grid: a real, bounded error


def test_grid_size_boundary_in_2d_with_outliers_is_tight_on_every_axis():
    rng = np.random.default_rng(1)
    X = rng.standard_t(df=3, size=(3000, 2))
    with pytest.raises(ValueError, match=r"at least \[(\d+), (\d+)\]") as caught:
        GaussianKDE(algorithm="fft", grid_size=25).fit(X)
    needed = [
        int(value) for value in re.search(r"at least \[(\d+), (\d+)\]", str(caught.value)).groups()
    ]
    model = GaussianKDE(algorithm="fft", grid_size=needed).fit(X)
    queries = X[:50]
    factor = np.linalg.cholesky(model.bandwidth_)
    whitened = np.linalg.solve(factor, (queries[:, None, :] - X[None]).transpose(0, 2, 1))
    log_kernel = -0.5 * (whitened**2).sum(1) - math.log(2 * math.pi) - np.log(np.diag(factor)).sum()
    brute = logsumexp(log_kernel, axis=1) - math.log(len(X))
    assert np.abs(model.score_samples(queries) - brute).max() <= _documented_bound(0.5, 2.0, 2)
    for axis in range(2):
        smaller = list(needed)
        smaller[axis] -= 1
        with pytest.raises(ValueError, match="grid_size=.* is too small"):
            GaussianKDE(algorithm="fft", grid_size=smaller).fit(X)


def test_a_refused_set_bandwidth_leaves_the_kde_as_it_was():
    X = np.random.default_rng(0).normal(size=(200, 1))
    model = GaussianKDE(algorithm="fft", grid_size=80).fit(X)
    before = model.bandwidth_.copy()
    with pytest.raises(ValueError, match="grid_size=80 is too small"):
        model.set_bandwidth(0.05)
    np.testing.assert_array_equal(model.bandwidth_, before)
    assert np.isfinite(model.score_samples(X[:3])).all()

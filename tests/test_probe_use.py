"""Probe of the *use* side: ``GaussianMixtureRegressor``, ``GaussianMixtureImputer``,
marginals and conditionals of fitted mixtures, and ``mixtorch.select``, as a careless or
a scikit-learn-habituated user drives them (DataFrames, lists, integers, float16, one
row, one feature, wrong widths, NaN, labelled values, clone, Pipeline, cross-validation,
joblib, ``check_estimator``). Numbers are compared with independent references: Gaussian
conditioning written out in float64 NumPy, SciPy's densities, complete-case least squares
(what maximum likelihood gives for one incomplete column) and scikit-learn's own
estimators and cross-validation."""

from __future__ import annotations

import io
import math

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.linear_model import LinearRegression
from sklearn.metrics import r2_score
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.model_selection import GridSearchCV, KFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils._param_validation import InvalidParameterError
from sklearn.utils.estimator_checks import parametrize_with_checks

import mixtorch
from mixtorch import (
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
    conditioning,
    select,
)
from mixtorch.conditioning import check_features

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")


def _conditional_reference(mixture, given, values):
    """Mean and variance of p(x_free | x_given = values) in float64 NumPy, written out
    from the mixture's weights, means and dense covariances (law of total variance)."""
    weights = mixture.weights.double().numpy()
    means = mixture.means.double().numpy()
    covariances = mixture.covariance.full_matrices(mixture.n_components).double().numpy()
    free = [j for j in range(means.shape[1]) if j not in given]
    log_w, component_means, component_vars = [], [], []
    for w, mu, cov in zip(weights, means, covariances, strict=True):
        s_gg, s_fg = cov[np.ix_(given, given)], cov[np.ix_(free, given)]
        gap = values - mu[given]
        solved = np.linalg.solve(s_gg, gap)
        log_w.append(
            math.log(w) - 0.5 * gap @ solved - 0.5 * np.linalg.slogdet(2 * np.pi * s_gg)[1]
        )
        component_means.append(mu[free] + s_fg @ solved)
        within = cov[np.ix_(free, free)] - s_fg @ np.linalg.solve(s_gg, s_fg.T)
        component_vars.append(np.diag(within))
    log_w = np.array(log_w)
    r = np.exp(log_w - np.logaddexp.reduce(log_w))
    component_means, component_vars = np.array(component_means), np.array(component_vars)
    mean = r @ component_means
    return mean, r @ (component_vars + component_means**2) - mean**2


@pytest.fixture(scope="module")
def two_clusters() -> np.ndarray:
    """600 rows in 4-D from two clusters with different correlations."""
    rng = np.random.default_rng(1)
    mixing = rng.normal(size=(4, 4))
    return np.concatenate(
        [rng.normal(size=(300, 4)) @ mixing, rng.normal(size=(300, 4)) @ mixing.T + 3.0]
    )


# -- GaussianMixtureRegressor ------------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_regressor_mean_and_std_are_the_closed_form_conditional(two_clusters, covariance_type):
    X, Y = two_clusters[:, :2], two_clusters[:, 2:]
    model = GaussianMixtureRegressor(3, covariance_type=covariance_type, random_state=0)
    mean, std = model.fit(X, Y).predict(X[:25], return_std=True)
    assert mean.shape == std.shape == (25, 2)
    mixture = model.mixture_model_.mixture_
    for row, (m, s) in enumerate(zip(mean, std, strict=True)):
        ref_mean, ref_var = _conditional_reference(mixture, [0, 1], X[row])
        np.testing.assert_allclose(m, ref_mean, rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(s, np.sqrt(ref_var), rtol=1e-9)


def test_regressor_one_component_is_multi_output_least_squares(two_clusters):
    X, Y = two_clusters[:300, :3], two_clusters[:300, 3:]
    noise = np.random.default_rng(6).normal(size=300)
    Y = np.c_[Y, 2 * Y[:, 0] + X[:, 0] + 0.1 * noise]  # two targets
    model = GaussianMixtureRegressor(reg_covar=0.0).fit(X, Y)
    reference = LinearRegression().fit(X, Y)
    np.testing.assert_allclose(model.predict(X[:40]), reference.predict(X[:40]), rtol=1e-8)


def test_regressor_on_a_dataframe_as_a_scikit_learn_user_would(two_clusters):
    frame = pd.DataFrame(two_clusters[:, :3], columns=["dose", "age", "weight"])
    target = pd.Series(two_clusters[:, 3], name="response")
    model = GaussianMixtureRegressor(2, random_state=0).fit(frame, target)
    np.testing.assert_array_equal(model.feature_names_in_, frame.columns)
    prediction = model.predict(frame.iloc[:5])
    assert isinstance(prediction, np.ndarray) and prediction.shape == (5,)
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        model.predict(frame[["age", "dose", "weight"]])  # never silently reordered
    # score is R^2, scikit-learn's own metric on the same predictions
    assert model.score(frame, target) == pytest.approx(
        r2_score(target, model.predict(frame)), rel=1e-12
    )


def test_regressor_in_cross_validation_pipelines_and_grid_search(two_clusters):
    X, y = two_clusters[:, :3], two_clusters[:, 3]
    folds = KFold(3, shuffle=True, random_state=0)
    scores = cross_val_score(GaussianMixtureRegressor(2, random_state=0), X, y, cv=folds)
    by_hand = [
        r2_score(y[test], GaussianMixtureRegressor(2, random_state=0).fit(X[train], y[train])
                 .predict(X[test]))
        for train, test in folds.split(X)
    ]  # fmt: skip
    np.testing.assert_allclose(scores, by_hand, rtol=1e-12)
    # One full Gaussian (no reg_covar, which is not scale-free) is affine-equivariant:
    # scaling the inputs changes no prediction.
    pipeline = make_pipeline(StandardScaler(), GaussianMixtureRegressor(reg_covar=0.0))
    unscaled = GaussianMixtureRegressor(reg_covar=0.0).fit(X, y).predict(X[:20])
    np.testing.assert_allclose(pipeline.fit(X, y).predict(X[:20]), unscaled, rtol=1e-9)
    search = GridSearchCV(GaussianMixtureRegressor(random_state=0), {"n_components": [1, 2]})
    assert search.fit(X, y).best_params_["n_components"] in (1, 2)
    assert search.best_estimator_.mixture_model_.n_components == search.best_params_["n_components"]


def test_regressor_clone_and_joblib_round_trip(two_clusters):
    X, y = two_clusters[:, :3], two_clusters[:, 3]
    model = GaussianMixtureRegressor(2, random_state=0).fit(X, y)
    fresh = clone(model)
    assert not hasattr(fresh, "mixture_model_") and fresh.get_params() == model.get_params()
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    again = joblib.load(buffer)
    np.testing.assert_array_equal(again.predict(X[:7]), model.predict(X[:7]))
    np.testing.assert_array_equal(
        again.sample_y(X[:2], 3, random_state=1), model.sample_y(X[:2], 3, random_state=1)
    )


def test_regressor_takes_lists_integers_and_float16_as_scikit_learn_does():
    rng = np.random.default_rng(2)
    X = rng.integers(-5, 5, size=(80, 2))
    y = 2 * X[:, 0] - X[:, 1] + 0.01 * rng.normal(size=80)
    model = GaussianMixtureRegressor().fit(X.tolist(), y.tolist())
    expected = LinearRegression().fit(X, y).predict([[1, 2]])
    np.testing.assert_allclose(model.predict([[1, 2]]), expected, rtol=1e-3)
    np.testing.assert_allclose(model.predict(np.array([[1, 2]], dtype=np.int8)), expected, 1e-3)
    half = model.predict(np.array([[1, 2]], dtype=np.float16))
    assert half.dtype == np.float64
    np.testing.assert_allclose(half, expected, rtol=1e-3)


@pytest.mark.parametrize(
    ("X", "y", "error", "fragment"),
    [
        (np.arange(30.0), np.arange(30.0), ValueError, r"got 1D array of shape \(30,\)\. Resh"),
        (np.ones((30, 2)) + 1j, np.arange(30.0), ValueError, "Complex data not supported: X"),
        (np.ones((1, 2)), np.ones(1), ValueError, "minimum of 2 is required"),
        (np.ones((30, 2)), np.arange(29.0), ValueError, "inconsistent numbers of samples"),
        (np.ones((30, 2)), np.array(["a", "b"] * 15), ValueError, "y must hold numbers.*classi"),
        (np.ones((30, 2)), np.r_[np.nan, np.ones(29)], ValueError, "drop the rows whose targ"),
    ],
)
def test_regressor_fit_refuses_bad_input_in_one_clear_line(X, y, error, fragment):
    with pytest.raises(error, match=fragment) as caught:
        GaussianMixtureRegressor().fit(X, y)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 300  # no array dump


def test_regressor_names_the_columns_that_are_not_numbers():
    frame = pd.DataFrame({"x": np.arange(20.0), "colour": pd.Categorical(["red", "blue"] * 10)})
    with pytest.raises(ValueError, match=r"not numbers: 'colour' \(category\).*OneHotEncoder"):
        GaussianMixtureRegressor().fit(frame, np.arange(20.0))


def test_regressor_predict_refuses_what_it_cannot_use(two_clusters):
    X, y = two_clusters[:, :3], two_clusters[:, 3]
    with pytest.raises(NotFittedError):
        GaussianMixtureRegressor().predict(X)
    with pytest.raises(NotFittedError):  # before the draw count is looked at
        GaussianMixtureRegressor().sample_y(X, n_samples=0)
    model = GaussianMixtureRegressor(random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="X has 2 features, but .* is expecting 3"):
        model.predict(X[:, :2])
    with pytest.raises(ValueError, match=r"got 1D array of shape \(3,\).*reshape\(1, -1\)"):
        model.predict(X[0])
    with pytest.raises(ValueError, match="contains NaN.*needs complete rows"):
        model.predict(np.array([[np.nan, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="infinity"):
        model.predict(np.array([[np.inf, 0.0, 0.0]]))
    with pytest.raises(ValueError, match="0 sample"):
        model.predict(X[:0])


# -- GaussianMixtureImputer -------------------------------------------------------------
@pytest.fixture(scope="module")
def holes(two_clusters) -> np.ndarray:
    """Every other row of ``two_clusters`` (300), a quarter of the entries missing."""
    rng = np.random.default_rng(3)
    X = two_clusters[::2].copy()
    X[rng.random(X.shape) < 0.25] = np.nan
    return X


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_imputed_values_are_the_closed_form_conditional_means(holes, covariance_type):
    model = GaussianMixtureImputer(3, covariance_type=covariance_type, random_state=0)
    filled = model.fit(holes).transform(holes)
    mixture = model.mixture_model_.mixture_
    checked = 0
    for row in range(80):
        missing = np.isnan(holes[row])
        given = list(np.flatnonzero(~missing))
        if missing.any() and given:
            expected, _ = _conditional_reference(mixture, given, holes[row, given])
            np.testing.assert_allclose(filled[row, missing], expected, rtol=1e-10, atol=1e-12)
            checked += 1
    assert checked > 30
    np.testing.assert_array_equal(filled[~np.isnan(holes)], holes[~np.isnan(holes)])


def test_one_incomplete_column_is_imputed_by_complete_case_least_squares():
    # Maximum likelihood for a Gaussian with one column missing at random gives that
    # column's regression on the others as least squares on the complete rows; chained
    # regression with LinearRegression computes exactly that in its first round.
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 3)) @ np.array([[1, 0.5, 0.3], [0, 1, 0.7], [0, 0, 0.5]])
    X += [1.0, 2.0, 3.0]
    X[rng.random(400) < 0.3, 2] = np.nan
    ours = GaussianMixtureImputer(reg_covar=0.0, tol=1e-12, max_iter=5000).fit_transform(X)
    chained = IterativeImputer(estimator=LinearRegression(), max_iter=1)
    with pytest.warns(Warning, match="Early stopping criterion not reached"):
        reference = chained.fit_transform(X)
    missing = np.isnan(X)
    np.testing.assert_allclose(ours[missing], reference[missing], atol=1e-5)


@pytest.mark.parametrize("as_tensor", [False, True])
def test_imputer_keeps_observed_entries_bit_for_bit_whatever_the_model_dtype(holes, as_tensor):
    model = GaussianMixtureImputer(2, dtype="float32", random_state=0).fit(holes)
    data = torch.as_tensor(holes) if as_tensor else holes
    filled = model.transform(data)
    filled = filled.numpy() if as_tensor else filled
    assert filled.dtype == np.float64  # the input's dtype, not the mixture's float32
    observed = ~np.isnan(holes)
    np.testing.assert_array_equal(filled[observed], holes[observed])
    plain = GaussianMixtureImputer(2, random_state=0).fit(holes).transform(holes)
    np.testing.assert_allclose(filled[~observed], plain[~observed], rtol=1e-3, atol=1e-3)
    single = GaussianMixtureImputer(2, random_state=0).fit(holes).transform(holes.astype("f4"))
    assert single.dtype == np.float32


def test_missing_values_marker_as_in_scikit_learns_imputers(holes):
    marked = np.where(np.isnan(holes), -1.0, holes)
    by_marker = GaussianMixtureImputer(2, missing_values=-1, random_state=0).fit(marked)
    by_nan = GaussianMixtureImputer(2, random_state=0).fit(holes)
    np.testing.assert_allclose(by_marker.transform(marked), by_nan.transform(holes), rtol=1e-12)
    assert get_tags(by_nan).input_tags.allow_nan
    assert not get_tags(by_marker).input_tags.allow_nan
    with pytest.raises(ValueError, match=r"contains NaN, but missing_values=-1 .*np\.nan"):
        by_marker.transform(holes)
    with pytest.raises(InvalidParameterError, match="'missing_values' parameter"):
        GaussianMixtureImputer(missing_values="?").fit(marked)
    # integers with a marker: what SimpleImputer(missing_values=-999) takes
    counts = np.where(np.isnan(holes), -999, np.round(holes * 100)).astype(np.int64)
    filled = GaussianMixtureImputer(missing_values=-999).fit(counts).transform(counts)
    assert filled.dtype == np.float64 and not (filled == -999).any()
    np.testing.assert_array_equal(filled[counts != -999], counts[counts != -999])


def test_pandas_na_in_nullable_columns(holes):
    frame = pd.DataFrame(np.round(holes * 10)).astype("Int64")  # NaN becomes pd.NA
    filled = GaussianMixtureImputer(missing_values=pd.NA, random_state=0).fit_transform(frame)
    reference = GaussianMixtureImputer(random_state=0).fit_transform(np.round(holes * 10))
    np.testing.assert_allclose(filled, reference, rtol=1e-12)


def test_a_saved_imputer_keeps_its_marker_and_equal_params(tmp_path, holes):
    marked = np.where(np.isnan(holes), -1.0, holes)
    model = GaussianMixtureImputer(missing_values=-1, random_state=0).fit(marked)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "marker.mixtorch"))
    assert loaded.missing_values == -1
    np.testing.assert_array_equal(loaded.transform(marked), model.transform(marked))
    default = GaussianMixtureImputer(random_state=0).fit(holes)
    loaded = mixtorch.load(mixtorch.save(default, tmp_path / "nan.mixtorch"))
    assert loaded.get_params() == default.get_params()  # NaN restored as np.nan itself


def test_imputer_edge_shapes(holes):
    model = GaussianMixtureImputer(2, random_state=0).fit(holes)
    nothing = model.transform(np.full((2, 4), np.nan))  # all-missing rows: the mixture mean
    np.testing.assert_allclose(nothing, np.tile(model.mixture_model_.mixture_.center, (2, 1)))
    one = model.transform(holes[:1])
    np.testing.assert_array_equal(one, model.transform(holes)[:1])
    with pytest.raises(ValueError, match="0 sample"):
        model.transform(holes[:0])
    with pytest.raises(ValueError, match="X has 3 features, but .* is expecting 4"):
        model.transform(holes[:, :3])
    # A feature with no observed value is left out (keep_empty_features=False), as
    # scikit-learn's imputers do: tests/test_leftovers_small.py.
    empty = GaussianMixtureImputer().fit(np.c_[holes, np.full(len(holes), np.nan)])
    assert empty.get_feature_names_out().tolist() == ["x0", "x1", "x2", "x3"]
    with pytest.raises(ValueError, match="infinity"):
        model.transform(np.array([[np.inf, 0.0, np.nan, 1.0]]))
    with pytest.raises(ValueError, match=r"got 1D array of shape \(4,\)"):
        model.transform(holes[0])
    one_feature = GaussianMixtureImputer().fit(holes[:, :1])
    observed = holes[~np.isnan(holes[:, 0]), 0]
    np.testing.assert_allclose(one_feature.transform([[np.nan]]), [[observed.mean()]])
    with pytest.raises(NotFittedError):
        GaussianMixtureImputer().transform(holes)


def test_imputer_in_pipelines_column_transformers_and_pandas_output(holes, two_clusters):
    from sklearn.compose import ColumnTransformer

    frame = pd.DataFrame(holes, columns=list("abcd"), index=np.arange(100, 400))
    frame["label"] = ["x", "y"] * 150
    columns = ColumnTransformer(
        [("impute", GaussianMixtureImputer(2, random_state=0), list("abcd"))],
        remainder="passthrough",
        verbose_feature_names_out=False,
    ).set_output(transform="pandas")
    out = columns.fit_transform(frame)
    assert list(out.columns) == [*"abcd", "label"] and list(out.index) == list(frame.index)
    alone = GaussianMixtureImputer(2, random_state=0).fit_transform(holes)
    np.testing.assert_allclose(out[list("abcd")].to_numpy(dtype=float), alone, rtol=1e-12)
    pipeline = make_pipeline(GaussianMixtureImputer(random_state=0), LinearRegression())
    scores = cross_val_score(pipeline, holes[:, :3], two_clusters[::2, 3], cv=3)
    assert np.isfinite(scores).all()
    with pytest.raises(ValueError, match=r"not numbers: 'label' \(.*\)"):
        GaussianMixtureImputer().fit(frame)


def test_imputer_clone_and_joblib(holes):
    model = GaussianMixtureImputer(2, sample_posterior=True, random_state=0).fit(holes)
    assert clone(model).get_params() == model.get_params()
    buffer = io.BytesIO()
    joblib.dump(model, buffer)
    buffer.seek(0)
    np.testing.assert_array_equal(joblib.load(buffer).transform(holes), model.transform(holes))


# scikit-learn's toy data can collapse a component onto a few points, which warns
@pytest.mark.filterwarnings("ignore::mixtorch.exceptions.DegenerateComponentWarning")
@parametrize_with_checks(
    [
        GaussianMixtureImputer(missing_values=-1),
        GaussianMixtureImputer(dtype="float32"),
        GaussianMixtureRegressor(2, covariance_type="tied", random_state=0),
    ]
)
def test_other_settings_pass_scikit_learns_checks(estimator, check):
    check(estimator)


# -- marginals and conditionals -----------------------------------------------------------
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_condition_and_marginal_match_the_closed_form(two_clusters, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(two_clusters)
    given = model.condition([2, 0], [0.3, -1.0])
    assert given.covariance_type == covariance_type and given.n_features_in_ == 2
    mean, var = _conditional_reference(model.mixture_, [2, 0], np.array([0.3, -1.0]))
    np.testing.assert_allclose(given.weights_ @ given.means_, mean, rtol=1e-10, atol=1e-12)
    spread = given.mixture_.covariance.full_matrices(3).numpy().diagonal(axis1=1, axis2=2)
    second_moment = given.weights_ @ (spread + given.means_**2)
    np.testing.assert_allclose(second_moment - mean**2, var, rtol=1e-9)
    kept = model.marginal([3, 1])
    np.testing.assert_array_equal(kept.means_, model.means_[:, [3, 1]])
    dense = model.mixture_.covariance.full_matrices(3).numpy()
    np.testing.assert_allclose(
        kept.mixture_.covariance.full_matrices(3).numpy(), dense[:, [3, 1]][:, :, [3, 1]]
    )


def test_log_evidence_is_scipys_marginal_density(two_clusters):
    model = GaussianMixture(2, random_state=0).fit(two_clusters)
    rows = two_clusters[:6, [1, 3]]
    conditionals = model.mixture_.conditionals([1, 3], rows)
    dense = model.mixture_.covariance.full_matrices(2).numpy()
    densities = sum(
        w * multivariate_normal(mu[[1, 3]], cov[np.ix_([1, 3], [1, 3])]).pdf(rows)
        for w, mu, cov in zip(model.weights_, model.means_, dense, strict=True)
    )
    np.testing.assert_allclose(conditionals.log_evidence.numpy(), np.log(densities), rtol=1e-10)


def test_conditional_draws_have_the_closed_form_moments(two_clusters):
    model = GaussianMixture(2, random_state=0).fit(two_clusters)
    values = np.array([0.5, 2.0])
    draws = (
        model.mixture_.conditionals([0, 1], values)
        .sample(40000, generator=torch.Generator().manual_seed(0))[0]
        .numpy()
    )
    mean, var = _conditional_reference(model.mixture_, [0, 1], values)
    standard_error = np.sqrt(var / len(draws))
    assert (np.abs(draws.mean(0) - mean) < 5 * standard_error).all()
    np.testing.assert_allclose(draws.var(0), var, rtol=0.05)


@pytest.fixture(scope="module")
def named(two_clusters):
    frame = pd.DataFrame(two_clusters, columns=["a", "b", "c", "d"])
    return frame, GaussianMixture(2, random_state=0).fit(frame)


def test_condition_reads_labelled_values_by_their_labels(named):
    frame, model = named
    plain = model.condition(["a", "c"], [0.0, 1.0])
    # A Series labelled in another order: read by label, not by position.
    swapped = model.condition(["a", "c"], pd.Series({"c": 1.0, "a": 0.0}))
    np.testing.assert_array_equal(swapped.means_, plain.means_)
    # A whole row of the frame: the named columns are picked out of it.
    row = frame.iloc[7]
    by_row = model.condition(["a", "c"], row)
    by_numbers = model.condition([0, 2], row[["a", "c"]].to_numpy())
    np.testing.assert_array_equal(by_row.means_, by_numbers.means_)
    np.testing.assert_array_equal(by_row.feature_names_in_, ["b", "d"])
    one_row_frame = model.condition(["c", "a"], frame.iloc[[7]])
    np.testing.assert_allclose(one_row_frame.means_, by_numbers.means_, rtol=1e-12)
    with pytest.raises(ValueError, match=r"lacks the features \['c'\]"):
        model.condition(["a", "c"], pd.Series({"a": 0.0, "b": 1.0}))
    by_dict = model.condition(["a", "c"], {"c": 1.0, "a": 0.0, "d": 5.0})
    np.testing.assert_array_equal(by_dict.means_, plain.means_)
    unnamed = GaussianMixture(2, random_state=0).fit(frame.to_numpy())
    with pytest.raises(TypeError, match="fitted without column names"):
        unnamed.condition([0], {"a": 0.0})
    # Labels that are not column names (a RangeIndex) are positions, as for a list.
    positional = model.condition(["a", "c"], pd.Series([0.0, 1.0]))
    np.testing.assert_array_equal(positional.means_, plain.means_)


def test_feature_names_and_indices_are_not_mixed(named):
    _, model = named
    with pytest.raises(TypeError, match="mixes column names and indices"):
        model.condition(["a", 2], [0.0, 1.0])
    with pytest.raises(TypeError, match="integer feature indices, got") as caught:
        check_features([0, "1"], 3)
    assert "floats" not in str(caught.value)  # no float in [0, '1']
    with pytest.raises(TypeError, match="floats are refused"):
        check_features([0, 1.0], 3)


def test_conditioning_refuses_bad_arguments(named):
    frame, model = named
    with pytest.raises(NotFittedError):
        GaussianMixture().condition([0], [1.0])
    with pytest.raises(ValueError, match="at least one feature free"):
        model.condition([0, 1, 2, 3], [0.0, 0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match="must not repeat an index"):
        model.condition(["a", "a"], [0.0, 0.0])
    with pytest.raises(ValueError, match=r"indices in \[0, 4\)"):
        model.marginal([4])
    with pytest.raises(ValueError, match="NaN or infinity"):
        model.condition(["a"], [np.nan])
    with pytest.raises(ValueError, match="one row of values"):
        model.condition(["a"], [[0.0], [1.0]])
    with pytest.raises(ValueError, match="are not columns the model was fitted on"):
        model.marginal(["z"])


def _unit_covariance(kind: str, n_components: int, n_features: int):
    from mixtorch.covariance import covariance_class

    eye = torch.eye(n_features, dtype=torch.float64)
    stored = {
        "full": eye.expand(n_components, -1, -1).clone(),
        "tied": eye,
        "diag": torch.ones(n_components, n_features, dtype=torch.float64),
        "spherical": torch.ones(n_components, dtype=torch.float64),
    }[kind]
    return covariance_class(kind)(stored, n_features=n_features)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_conditioning_functions_refuse_parameters_that_do_not_fit(covariance_type):
    means = torch.zeros(2, 3, dtype=torch.float64)
    log_weights = torch.full((2,), -math.log(2.0), dtype=torch.float64)
    wider = _unit_covariance(covariance_type, 2, 4)  # was cut to its first 3x3 block
    with pytest.raises(ValueError, match=r"does not fit means of shape \(2, 3\)"):
        conditioning.marginal(means, wider, [0])
    with pytest.raises(ValueError, match=r"needs 2 components in 3 dimensions"):
        conditioning.condition(log_weights, means, wider, [0], [[1.0]])
    if covariance_type != "tied":  # a tied covariance serves any K
        more = _unit_covariance(covariance_type, 3, 3)
        with pytest.raises(ValueError, match="needs 2 components in 3 dimensions"):
            conditioning.condition(log_weights, means, more, [0], [[1.0]])
    fitting = _unit_covariance(covariance_type, 2, 3)
    given = conditioning.condition(log_weights, means, fitting, [0], [[1.0]])
    reference = multivariate_normal(np.zeros(1), np.eye(1)).logpdf([1.0])
    assert float(given.log_evidence[0]) == pytest.approx(reference, rel=1e-12)


def test_conditioning_functions_refuse_weights_and_types_a_mixture_would_refuse():
    means = torch.zeros(2, 3, dtype=torch.float64)
    covariance = _unit_covariance("full", 2, 3)
    with pytest.raises(ValueError, match=r"logsumexp 0\), got logsumexp 0.693"):
        conditioning.condition(torch.zeros(2, dtype=torch.float64), means, covariance, [0], [1.0])
    with pytest.raises(ValueError, match=r"shape \(2,\), one per component"):
        conditioning.condition(torch.zeros(3, dtype=torch.float64), means, covariance, [0], [1.0])
    with pytest.raises(TypeError, match="log_weights must be a tensor"):
        conditioning.condition(np.log([0.5, 0.5]), means, covariance, [0], [1.0])
    with pytest.raises(TypeError, match="Mixture.from_parameters"):
        conditioning.marginal(np.zeros((2, 3)), covariance, [0])
    with pytest.raises(ValueError, match="must have the dtype and device of means"):
        conditioning.marginal(means.float(), covariance, [0])
    with pytest.raises(TypeError, match="must be a mixtorch.covariance.Covariance"):
        conditioning.marginal(means, torch.eye(3), [0])


# -- select ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def blobs() -> np.ndarray:
    rng = np.random.default_rng(5)
    return rng.permutation(
        np.concatenate([rng.normal(-4, 1, size=(150, 2)), rng.normal(4, 1, size=(150, 2))])
    )


def test_cv_with_a_splitter_equals_grid_search_cv(blobs):
    folds = KFold(3, shuffle=True, random_state=0)
    result = select(blobs, [1, 2], "full", criterion="cv", cv=folds, random_state=0)
    search = GridSearchCV(SkGaussianMixture(random_state=0), {"n_components": [1, 2]}, cv=folds)
    search.fit(blobs)
    ours = result.table.column("cv_log_likelihood")[1]
    np.testing.assert_allclose(ours, search.cv_results_["mean_test_score"], rtol=1e-6)
    assert result.best_params_["n_components"] == search.best_params_["n_components"] == 2
    splits = list(folds.split(blobs))  # an iterable of (train, test) pairs works too
    again = select(blobs, [1, 2], "full", criterion="cv", cv=splits, random_state=0)
    np.testing.assert_allclose(again.table.column("cv_log_likelihood")[1], ours, rtol=1e-12)


def test_every_candidate_is_scored_on_the_same_folds(blobs):
    # One component: 'full' and 'tied' are the same model, so equal scores mean equal
    # folds; a RandomState used to give each candidate its own shuffle.
    for seed in (np.random.RandomState(0), np.random.default_rng(0), torch.Generator()):
        result = select(blobs, [1], ["full", "tied"], criterion="cv", random_state=seed)
        full, tied = (row["cv_log_likelihood"] for row in result.table)
        assert full == pytest.approx(tied, rel=1e-9)
    first = select(blobs, [1, 2], "full", criterion="cv", random_state=np.random.default_rng(3))
    second = select(blobs, [1, 2], "full", criterion="cv", random_state=np.random.default_rng(3))
    assert first.table == second.table


def test_bic_and_aic_match_scikit_learn_for_one_component(blobs):
    # One component has one optimum, so the criteria must agree to round-off.
    for criterion in ("bic", "aic"):
        result = select(blobs, [1], COVARIANCE_TYPES, criterion=criterion, random_state=0)
        for row in result.table:
            reference = SkGaussianMixture(1, covariance_type=row["covariance_type"]).fit(blobs)
            expected = getattr(reference, criterion)(blobs)
            assert row[criterion] == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    ("X", "kwargs", "error", "fragment"),
    [
        (np.r_[[[np.nan, 0.0]], np.ones((20, 2))], {}, ValueError, "^Input X contains NaN"),
        (np.r_[[[np.inf, 0.0]], np.ones((20, 2))], {}, ValueError, "^Input X contains infin"),
        (np.ones((1, 2)), {}, ValueError, "^Found array with 1 sample"),
        (np.ones((20, 2)), {"max_iter": -1}, InvalidParameterError, "'max_iter' parameter"),
        (np.ones((20, 2)), {"random_state": "zero"}, InvalidParameterError, "'random_state'"),
        (np.ones((20, 2)), {"missing_values": 5.0}, ValueError, "missing_values must be None"),
        (np.ones((20, 2)), {"n_iter": 5}, TypeError, r"\['n_iter'\] in gmm_params"),
        (np.ones((20, 2)), {"criterion": "cv", "cv": "five"}, ValueError, "cv must be an int"),
        (np.ones((20, 2)), {"criterion": "cv", "cv": [([0], [1])]}, ValueError, "two training"),
    ],
)
def test_select_refuses_bad_input_before_fitting_anything(X, kwargs, error, fragment):
    seen = []
    with pytest.raises(error, match=fragment):
        select(X, [1, 2], "diag", progress=lambda *row: seen.append(row), **kwargs)
    assert seen == []  # raised up front, not as every candidate's failure


def test_select_on_a_dataframe_names_text_columns_and_keeps_names(blobs):
    frame = pd.DataFrame(blobs, columns=["x", "y"])
    result = select(frame, [1, 2], "full", random_state=0)
    np.testing.assert_array_equal(result.best_estimator_.feature_names_in_, ["x", "y"])
    frame["kind"] = pd.Categorical(["p", "q"] * 150)
    with pytest.raises(ValueError, match=r"not numbers: 'kind' \(category\)"):
        select(frame, [1, 2], "full")
    table = pd.DataFrame(result.table)  # as a scikit-learn user reads cv_results_
    assert list(table["n_components"]) == [1, 2]
    assert table.loc[table["bic"].idxmin(), "n_components"] == result.best_params_["n_components"]


def test_select_still_records_candidates_that_cannot_be_fitted(blobs):
    result = select(blobs[:5], [1, 6], "diag", random_state=0)
    failed = result.table[1]
    assert math.isnan(failed["bic"]) and "n_samples >= n_components" in failed["note"]

"""Messages that tell a careless user what to do: NaN in the data (scikit-learn's own
advice points to supervised estimators; mixtorch's GaussianMixture takes missing entries
itself), NaN targets, and data too large for the arithmetic (a covariance that overflows,
where a larger ``reg_covar`` cannot help)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixtorch import (
    BayesianGaussianMixture,
    CovarianceError,
    Gaussian,
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureRegressor,
)


@pytest.fixture
def with_nan():
    X = np.random.default_rng(0).normal(size=(60, 2))
    X[5, 1] = np.nan
    return X


@pytest.mark.parametrize("as_tensor", [False, True], ids=["ndarray", "tensor"])
def test_gaussian_mixture_nan_points_to_missing_values(with_nan, as_tensor):
    X = torch.from_numpy(with_nan) if as_tensor else with_nan
    with pytest.raises(
        ValueError, match=r"^Input X contains NaN\. .*missing_values=np\.nan"
    ) as info:
        GaussianMixture(2, random_state=0).fit(X)
    assert "HistGradientBoosting" not in str(info.value)  # no supervised-learning advice
    # the advice works: the same data fit and score with missing_values=np.nan
    model = GaussianMixture(2, missing_values=np.nan, random_state=0).fit(X)
    scores = np.asarray(model.score_samples(X))
    assert scores.shape == (60,) and np.isfinite(scores).all()
    # scoring a model fitted on complete rows gives the same advice
    complete = GaussianMixture(2, random_state=0).fit(np.nan_to_num(with_nan))
    with pytest.raises(ValueError, match=r"^Input X contains NaN\. .*missing_values=np\.nan"):
        complete.predict(X)


@pytest.mark.parametrize(
    "make",
    [
        lambda: BayesianGaussianMixture(n_components=2, random_state=0),
        GaussianKDE,
        Gaussian,
    ],
    ids=["BayesianGaussianMixture", "GaussianKDE", "Gaussian"],
)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["ndarray", "tensor"])
def test_estimators_without_missing_values_say_how_to_fill_or_drop(with_nan, make, as_tensor):
    X = torch.from_numpy(with_nan) if as_tensor else with_nan
    estimator = make()
    name = type(estimator).__name__
    with pytest.raises(ValueError, match=rf"^Input X contains NaN\. {name} needs complete rows"):
        estimator.fit(X)
    with pytest.raises(ValueError, match="GaussianMixtureImputer") as info:
        make().fit(X)
    assert "HistGradientBoosting" not in str(info.value)
    assert "missing_values=np.nan" in str(info.value)  # the estimator that takes them


def test_regressor_nan_inputs_and_targets(with_nan):
    y = np.arange(60.0)
    with pytest.raises(ValueError, match=r"^Input X contains NaN\. GaussianMixtureRegressor"):
        GaussianMixtureRegressor(n_components=2, random_state=0).fit(with_nan, y)
    model = GaussianMixtureRegressor(n_components=2, random_state=0).fit(np.nan_to_num(with_nan), y)
    with pytest.raises(ValueError, match="needs complete rows"):
        model.predict(with_nan)
    y[3] = np.nan
    with pytest.raises(ValueError, match=r"^Input y contains NaN\. .*drop the rows"):
        GaussianMixtureRegressor(n_components=2, random_state=0).fit(np.nan_to_num(with_nan), y)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_data_too_large_for_float64_say_so_not_reg_covar(covariance_type):
    X = np.random.default_rng(1).normal(size=(200, 3)) * 1e300  # squares overflow
    with pytest.raises(CovarianceError, match="holds infinity or NaN in float64") as info:
        GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    message = str(info.value)
    assert "too large for float64 arithmetic" in message and "StandardScaler" in message
    assert "reg_covar" not in message and "fit in float64" not in message
    # the advice works: rescaled, the same data fit
    model = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X / 1e300)
    assert np.isfinite(model.score(X / 1e300))


def test_float32_data_too_large_suggest_float64_which_then_fits():
    X = (np.random.default_rng(2).normal(size=(200, 3)) * 1e20).astype(np.float32)
    with pytest.raises(CovarianceError, match=r"float32.*fit in float64 \(dtype='float64'\)"):
        GaussianMixture(2, random_state=0).fit(X)
    model = GaussianMixture(2, dtype="float64", random_state=0).fit(X)
    assert model.means_.dtype == np.float64
    assert np.isfinite(model.covariances_).all()


@pytest.mark.parametrize(
    ("bandwidth", "fragment"),
    [
        (-np.eye(3), r"positive definite .*every eigenvalue positive"),
        ([1.0, 2.0], r"shape \(3, 3\), got \(2,\): one row and column per feature"),
        (np.array([[1.0, 0.5, 0], [0, 1, 0], [0, 0, 1]]), r"symmetric .*\(B \+ B\.T\) / 2"),
    ],
    ids=["indefinite", "wrong-shape", "asymmetric"],
)
def test_bandwidth_matrix_messages_say_what_a_valid_one_is(bandwidth, fragment):
    X = np.random.default_rng(3).normal(size=(100, 3))
    with pytest.raises(ValueError, match=fragment):
        GaussianKDE(bandwidth=bandwidth).fit(X)
    fixed = np.asarray(bandwidth)
    if fixed.shape == (3, 3):  # the advice works
        fixed = (fixed + fixed.T) / 2 if "symmetric" in fragment else -fixed
        kde = GaussianKDE(bandwidth=fixed).fit(X)
        np.testing.assert_allclose(kde.covariance, fixed)

"""Defects left open by earlier probing: ``from_torch(dtype=...)`` that recorded a dtype
the model did not compute in, a failed refit that kept the new input's
``n_features_in_`` beside the old parameters, ``predict(path)`` failing with NumPy's
"could not convert string to float", and ``set_fitted`` holding a mixture that
contradicts ``n_components``/``covariance_type``."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import multivariate_normal
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
)

from mixtorch import (
    BayesianGaussianMixture,
    Gaussian,
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
    Mixture,
)
from mixtorch.sources import as_source

# -- from_torch(dtype=...) ------------------------------------------------------------------


def _diag_mixture(dtype: torch.dtype) -> MixtureSameFamily:
    weights = torch.tensor([0.3, 0.7], dtype=dtype)
    means = torch.tensor([[0.0, 1.0], [3.0, -1.0]], dtype=dtype)
    scales = torch.tensor([[1.0, 0.5], [2.0, 1.5]], dtype=dtype)
    return MixtureSameFamily(Categorical(probs=weights), Independent(Normal(means, scales), 1))


def _reference_log_density(points: np.ndarray) -> np.ndarray:
    """The mixture of :func:`_diag_mixture` scored by SciPy in float64."""
    densities = 0.3 * multivariate_normal([0.0, 1.0], np.diag([1.0, 0.25])).pdf(points)
    densities += 0.7 * multivariate_normal([3.0, -1.0], np.diag([4.0, 2.25])).pdf(points)
    return np.log(densities)


@pytest.mark.parametrize("requested", [torch.float64, "float64", np.float64])
def test_mixture_from_torch_computes_in_the_requested_wider_dtype(requested):
    model = GaussianMixture.from_torch(_diag_mixture(torch.float32), dtype=requested)
    assert model.dtype == requested  # the constructor parameter as given
    assert model.mixture_.dtype == torch.float64
    assert model.means_.dtype == torch.float64
    points = np.array([[0.5, 0.5], [2.0, -2.0], [10.0, 4.0]])
    scores = model.score_samples(torch.tensor(points, dtype=torch.float64))
    assert scores.dtype == torch.float64
    # float32 parameters widened exactly: the values are the float32 ones
    np.testing.assert_allclose(scores.numpy(), _reference_log_density(points), rtol=1e-6)


def test_mixture_from_torch_computes_in_the_requested_narrower_dtype():
    model = GaussianMixture.from_torch(_diag_mixture(torch.float64), dtype=torch.float32)
    assert model.dtype == torch.float32
    assert model.mixture_.dtype == torch.float32
    assert model.weights_.dtype == torch.float32
    points = np.array([[0.5, 0.5], [2.0, -2.0]])
    scores = model.score_samples(torch.tensor(points, dtype=torch.float64))
    assert scores.dtype == torch.float32
    np.testing.assert_allclose(scores.numpy(), _reference_log_density(points), rtol=1e-5)


def test_gaussian_from_torch_computes_in_the_requested_dtype():
    distribution = MultivariateNormal(
        torch.tensor([1.0, -1.0]), torch.tensor([[2.0, 0.5], [0.5, 1.0]])
    )
    model = Gaussian.from_torch(distribution, dtype=torch.float64)
    assert model.dtype == torch.float64
    assert model.mixture_.dtype == torch.float64
    assert model.mean_.dtype == torch.float64
    point = torch.tensor([[0.0, 0.0]], dtype=torch.float64)
    expected = multivariate_normal([1.0, -1.0], [[2.0, 0.5], [0.5, 1.0]]).logpdf([0.0, 0.0])
    assert model.score_samples(point).dtype == torch.float64
    assert float(model.score_samples(point)[0]) == pytest.approx(expected, rel=1e-12)


def test_from_torch_without_dtype_keeps_and_records_the_distributions_dtype():
    model = GaussianMixture.from_torch(_diag_mixture(torch.float32))
    assert model.dtype == torch.float32
    assert model.mixture_.dtype == torch.float32


def test_from_torch_refuses_a_dtype_that_is_not_float32_or_float64():
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        GaussianMixture.from_torch(_diag_mixture(torch.float32), dtype=torch.float16)


# -- a failed refit keeps the fitted state ------------------------------------------------


def _fitted_on_three_named_features(estimator):
    rng = np.random.default_rng(0)
    frame = pd.DataFrame(rng.normal(size=(120, 3)), columns=["a", "b", "c"])
    return estimator.fit(frame), frame


def _with_nan(X: np.ndarray) -> np.ndarray:
    X = X.copy()
    X[3, 1] = np.nan
    return X


_FIVE_FEATURES = np.random.default_rng(1).normal(size=(40, 5))
_REFITS = {
    "too few samples": pd.DataFrame(_FIVE_FEATURES[:2], columns=list("vwxyz")),
    "NaN": _with_nan(_FIVE_FEATURES),
    "NaN tensor": torch.from_numpy(_with_nan(_FIVE_FEATURES)),
    "too few rows tensor": torch.from_numpy(_FIVE_FEATURES[:2]),
}


@pytest.mark.parametrize("bad", list(_REFITS), ids=list(_REFITS))
@pytest.mark.parametrize(
    "make",
    [
        lambda: GaussianMixture(n_components=3, random_state=0),
        lambda: BayesianGaussianMixture(n_components=3, random_state=0),
        lambda: GaussianKDE(),
        lambda: Gaussian(),
    ],
    ids=["GaussianMixture", "BayesianGaussianMixture", "GaussianKDE", "Gaussian"],
)
def test_a_failed_refit_leaves_the_previous_fit_intact(make, bad):
    model, frame = _fitted_on_three_named_features(make())
    before = model.score_samples(frame)
    attributes = dict(model.__dict__)
    with pytest.raises(ValueError):  # noqa: PT011 - several causes, each its own message
        model.fit(_REFITS[bad])
    assert model.n_features_in_ == 3
    assert list(model.feature_names_in_) == ["a", "b", "c"]
    assert set(model.__dict__) == set(attributes)
    assert all(model.__dict__[name] is value for name, value in attributes.items())
    np.testing.assert_array_equal(model.score_samples(frame), before)


def test_a_failed_refit_of_gaussian_leaves_scores_equal_to_scipys():
    model, frame = _fitted_on_three_named_features(Gaussian())
    with pytest.raises(ValueError):  # noqa: PT011 - a covariance that cannot be factored
        model.fit(_REFITS["too few samples"])
    X = frame.to_numpy()
    reference = multivariate_normal(X.mean(0), np.cov(X.T, bias=True)).logpdf(X[:5])
    np.testing.assert_allclose(model.score_samples(frame.iloc[:5]), reference, rtol=1e-10)


def test_a_failed_first_fit_leaves_the_estimator_without_n_features_in():
    model = GaussianMixture(n_components=3)
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        model.fit(_FIVE_FEATURES[:2])
    assert not hasattr(model, "n_features_in_")
    assert not hasattr(model, "feature_names_in_")


def test_a_failed_partial_fit_leaves_the_estimator_without_n_features_in():
    model = GaussianMixture(n_components=3)
    with pytest.raises(ValueError, match="at least max"):
        model.partial_fit(_FIVE_FEATURES[:2])
    assert not hasattr(model, "n_features_in_")


@pytest.mark.parametrize("wrapper", [GaussianMixtureImputer, GaussianMixtureRegressor])
def test_a_failed_refit_of_a_wrapping_estimator_keeps_its_features(wrapper):
    rng = np.random.default_rng(2)
    X, y = rng.normal(size=(80, 3)), rng.normal(size=80)
    model = wrapper(n_components=3, random_state=0)
    model.fit(X) if wrapper is GaussianMixtureImputer else model.fit(X, y)
    inner = model.mixture_model_
    with pytest.raises(ValueError, match="n_samples >= n_components"):
        if wrapper is GaussianMixtureImputer:
            model.fit(_FIVE_FEATURES[:2])
        else:
            model.fit(_FIVE_FEATURES[:2], y[:2])
    assert model.n_features_in_ == 3
    assert model.mixture_model_ is inner


# -- scoring a path -----------------------------------------------------------------------


@pytest.fixture
def npy_path(tmp_path):
    X = np.random.default_rng(3).normal(size=(60, 2))
    path = tmp_path / "points.npy"
    np.save(path, X)
    return path, X


@pytest.mark.parametrize(
    "make",
    [
        lambda: BayesianGaussianMixture(n_components=2, random_state=0),
        lambda: GaussianMixture(n_components=2, random_state=0),
    ],
    ids=["BayesianGaussianMixture", "GaussianMixture"],
)
@pytest.mark.parametrize("method", ["predict", "predict_proba", "score_samples", "score"])
@pytest.mark.parametrize("as_text", [True, False], ids=["str", "Path"])
def test_scoring_a_path_names_x_and_how_to_load_it(npy_path, make, method, as_text):
    path, X = npy_path
    model = make().fit(X)
    given = str(path) if as_text else path
    with pytest.raises(TypeError, match=r"X must be an array or a tensor.*np\.load\(path\)"):
        getattr(model, method)(given)
    with pytest.raises(ValueError, match="not data sources or paths"):  # as before: ValueError
        getattr(model, method)(given)
    # the advice works: loading gives what the array gives
    np.testing.assert_array_equal(getattr(model, method)(np.load(path)), getattr(model, method)(X))


def test_bayesian_predict_of_a_source_or_callable_is_refused_the_same_way(npy_path):
    path, X = npy_path
    model = BayesianGaussianMixture(n_components=2, random_state=0).fit(X)
    for source in (as_source(path), lambda: iter([torch.from_numpy(X)])):
        with pytest.raises(TypeError, match="not data sources or paths"):
            model.predict(source)
    loaded = torch.cat(list(as_source(path)()))  # the message's other alternative
    np.testing.assert_array_equal(model.predict(loaded).numpy(), model.predict(X))


@pytest.mark.parametrize("make", [Gaussian, GaussianKDE])
def test_density_estimators_refuse_a_path_to_score_clearly(npy_path, make):
    path, X = npy_path
    model = make().fit(X)
    with pytest.raises(TypeError, match=f"{make.__name__} .* in-memory data"):
        model.score_samples(str(path))


@pytest.mark.parametrize(
    ("make", "method", "parameter"),
    [
        (Gaussian, "logpdf", "x"),
        (Gaussian, "pdf", "x"),
        (Gaussian, "cdf", "x"),
        (Gaussian, "logcdf", "x"),
        (GaussianKDE, "evaluate", "points"),
        (GaussianKDE, "logpdf", "points"),
        (GaussianKDE, "pdf", "points"),
        (GaussianKDE, "__call__", "points"),
    ],
)
def test_scipy_named_methods_refuse_a_path_naming_their_parameter(
    npy_path, make, method, parameter
):
    path, X = npy_path
    model = make().fit(X)
    for given in (str(path), path, as_source(path)):
        with pytest.raises(
            TypeError,
            match=rf"^{parameter} must be an array or a tensor.*"
            rf"{parameter} = np\.load\(path\)",
        ):
            getattr(model, method)(given)
        with pytest.raises(ValueError, match="not data sources or paths"):
            getattr(model, method)(given)
    # the advice works (SciPy's layout: the KDE takes points as columns)
    loaded = np.load(path) if make is Gaussian else np.load(path).T
    expected = np.load(path) if make is Gaussian else X.T
    np.testing.assert_array_equal(getattr(model, method)(loaded), getattr(model, method)(expected))


# -- set_fitted and the hyper-parameters the mixture determines ---------------------------


def _two_components() -> Mixture:
    return Mixture.from_parameters(
        [0.4, 0.6], [[0.0], [4.0]], [[[1.0]], [[0.5]]], dtype=torch.float64
    )


def test_set_fitted_refuses_an_n_components_that_contradicts_the_mixture():
    model = GaussianMixture(n_components=3)
    with pytest.raises(ValueError, match="n_components=3 contradicts the mixture's n_components=2"):
        model.set_fitted(_two_components())
    assert not hasattr(model, "mixture_")  # nothing half-set
    assert model.n_components == 3
    # what from_mixture does in the same situation
    with pytest.raises(ValueError, match="n_components=3 contradicts"):
        GaussianMixture.from_mixture(_two_components(), n_components=3)


def test_set_fitted_names_every_contradiction_and_the_way_out():
    model = GaussianMixture(n_components=3, covariance_type="diag")
    with pytest.raises(ValueError, match=r"set_params\(n_components=2, covariance_type='full'\)"):
        model.set_fitted(_two_components())


def test_set_fitted_refuses_a_mixture_for_a_bayesian_mixture_of_other_size():
    model = BayesianGaussianMixture(n_components=5)
    with pytest.raises(ValueError, match="n_components=5 contradicts"):
        model.set_fitted(_two_components())


def test_gaussian_set_fitted_refuses_a_mixture_of_two_components():
    # it kept the first component and scored with it
    model = Gaussian()
    with pytest.raises(ValueError, match="one component, the mixture has 2"):
        model.set_fitted(_two_components())
    assert not hasattr(model, "mixture_")


def test_set_fitted_with_agreeing_parameters_scores_as_the_mixture():
    model = GaussianMixture(n_components=2)
    model.set_fitted(_two_components())
    points = np.array([[0.5], [3.0]])
    expected = np.log(
        0.4 * multivariate_normal(0.0, 1.0).pdf(points[:, 0])
        + 0.6 * multivariate_normal(4.0, 0.5).pdf(points[:, 0])
    )
    np.testing.assert_allclose(model.score_samples(points), expected, rtol=1e-12)
    assert model.weights_.shape == (model.n_components,)


def test_to_keeps_hyper_parameters_changed_after_the_fit():
    # set_params after a fit is scikit-learn's way to prepare the next fit: moving the
    # fitted model must not trip over it
    X = np.random.default_rng(4).normal(size=(100, 1))
    model = GaussianMixture(n_components=2, random_state=0).fit(X)
    model.set_params(n_components=4)
    model.to(dtype=torch.float32)
    assert model.mixture_.dtype == torch.float32
    assert model.n_components == 4
    assert model.weights_.shape == (2,)

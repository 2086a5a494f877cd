"""Input checks shared by every estimator: devices, 1-D input, tensors that require grad,
and the parameters of ``from_parameters`` (issue 13)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.neighbors import KernelDensity

import mixtorch
from mixtorch import (
    BayesianGaussianMixture,
    Gaussian,
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
    Mixture,
)
from mixtorch._validation import check_device

ESTIMATORS = [
    lambda: GaussianMixture(2, random_state=0),
    lambda: Gaussian(),
    lambda: GaussianKDE(),
    lambda: BayesianGaussianMixture(n_components=2, random_state=0),
]
IDS = ["GaussianMixture", "Gaussian", "GaussianKDE", "BayesianGaussianMixture"]


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    return np.random.default_rng(0).normal([0.0, 3.0], [1.0, 0.5], size=(60, 2))


# -- devices ---------------------------------------------------------------------------
@pytest.mark.parametrize("device", ["nonsense", "cuda:99", "meta"])
@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_unavailable_device_is_a_value_error_naming_what_exists(make, device, data):
    with pytest.raises(ValueError, match=r"device=.*not available.*available: cpu"):
        make().set_params(device=device).fit(data)


@pytest.mark.parametrize("device", ["nonsense", "cuda:99", "meta"])
def test_regressor_imputer_and_load_check_the_device(device, data, tmp_path):
    pattern = r"device=.*not available.*available: cpu"
    with pytest.raises(ValueError, match=pattern):
        GaussianMixtureRegressor(2, device=device).fit(data[:, :1], data[:, 1])
    holes = data.copy()
    holes[::4, 1] = np.nan
    with pytest.raises(ValueError, match=pattern):
        GaussianMixtureImputer(2, device=device).fit(holes)
    path = mixtorch.save(GaussianMixture(2, random_state=0).fit(data), tmp_path / "m.mixtorch")
    with pytest.raises(ValueError, match=pattern):
        mixtorch.load(path, device=device)
    # A saved imputer whose device is gone is refused when used, naming the device.
    imputer = GaussianMixtureImputer(2, random_state=0).fit(holes)
    imputer.device = device
    with pytest.raises(ValueError, match=pattern):
        imputer.transform(holes)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message without CUDA")
def test_cuda_without_cuda_is_a_value_error(data):
    with pytest.raises(ValueError, match="device='cuda' is not available"):
        GaussianMixture(2, device="cuda").fit(data)


def test_device_of_the_wrong_type_is_a_type_error(data):
    with pytest.raises(TypeError, match="device must be"):
        Gaussian(device=3.5).fit(data)
    assert check_device(None) is None
    assert check_device("cpu") == torch.device("cpu")


def test_from_parameters_checks_the_device():
    with pytest.raises(ValueError, match="device='nonsense'"):
        GaussianMixture.from_parameters([1.0], [[0.0]], [1.0], "spherical", device="nonsense")


# -- 1-D input -------------------------------------------------------------------------
@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_one_dimensional_input_gets_a_one_line_message(make, data):
    column = np.random.default_rng(1).normal(size=2000)
    for bad in (column, list(column)):
        with pytest.raises(ValueError, match=r"Expected 2D array.*reshape\(-1, 1\)") as caught:
            make().fit(bad)
        message = str(caught.value)
        assert len(message) < 300 and "\n" not in message and "(2000,)" in message
    model = make().fit(data)
    with pytest.raises(ValueError, match=r"reshape\(-1, 1\)") as caught:
        model.score_samples(data[:, 0])
    assert len(str(caught.value)) < 300


# -- tensors that require grad -----------------------------------------------------------
@pytest.mark.parametrize("make", ESTIMATORS, ids=IDS)
def test_tensors_that_require_grad_are_used_detached(make, data):
    X = torch.as_tensor(data).requires_grad_()
    plain = make().fit(data)
    model = make().fit(X)
    scores = model.score_samples(X)
    assert not scores.requires_grad
    np.testing.assert_allclose(scores.numpy(), plain.score_samples(data), rtol=1e-10)
    if hasattr(model, "predict_proba"):
        np.testing.assert_array_equal(model.predict(X).numpy(), plain.predict(data))
        np.testing.assert_allclose(model.predict_proba(X).numpy(), plain.predict_proba(data))


def test_weights_that_require_grad_are_used_detached(data):
    weights = torch.linspace(0.5, 1.5, data.shape[0], dtype=torch.float64).requires_grad_()
    model = Gaussian().fit(torch.as_tensor(data), sample_weight=weights)
    w = weights.detach().numpy()
    np.testing.assert_allclose(model.mean_.numpy(), w @ data / w.sum(), rtol=1e-12)


# -- from_parameters ---------------------------------------------------------------------
GOOD = dict(weights=[0.4, 0.6], means=[[0.0, 0.0], [3.0, 1.0]], covariances=[1.0, 2.0])


@pytest.mark.parametrize(
    "change, message",
    [
        ({"means": [[np.nan, 0.0], [3.0, 1.0]]}, "means must be finite"),
        ({"means": [[np.inf, 0.0], [3.0, 1.0]]}, "means must be finite"),
        ({"weights": [np.nan, 1.0]}, "weights must be finite"),
        ({"weights": [-0.5, 1.5]}, "weights must be finite and non-negative"),
        ({"weights": [0.5, 0.6]}, "weights must sum to 1"),
        ({"covariances": [1.0, np.inf]}, "covariances must be finite"),
        ({"covariances": [1.0, -2.0]}, "covariances must be positive definite"),
        ({"covariances": [1.0]}, "covariances must have shape"),
        ({"means": np.zeros((0, 2)), "weights": []}, "means must have shape"),
    ],
)
@pytest.mark.parametrize("build", [Mixture.from_parameters, GaussianMixture.from_parameters])
def test_from_parameters_refuses_invalid_values(build, change, message):
    arguments = {**GOOD, **change}
    with pytest.raises(ValueError, match=message):
        build(arguments["weights"], arguments["means"], arguments["covariances"], "spherical")


@pytest.mark.parametrize("build", [Mixture.from_parameters, GaussianMixture.from_parameters])
def test_from_parameters_refuses_asymmetric_or_indefinite_matrices(build):
    asymmetric = [[[1.0, 0.5], [0.0, 1.0]]]
    with pytest.raises(ValueError, match="covariances must be symmetric"):
        build([1.0], [[0.0, 0.0]], asymmetric, "full")
    indefinite = [[1.0, 2.0], [2.0, 1.0]]
    with pytest.raises(ValueError, match="covariances must be positive definite"):
        build([1.0], [[0.0, 0.0]], indefinite, "tied")


@pytest.mark.parametrize("bad", [None, "0.0", [[1j, 0.0]]])
def test_from_parameters_refuses_non_numeric_means(bad):
    with pytest.raises(TypeError, match="means must be"):
        Mixture.from_parameters([1.0], bad, [1.0], "spherical")


def test_valid_parameters_score_as_scipy_does():
    covariance = [[2.0, 0.3], [0.3, 0.5]]
    model = GaussianMixture.from_parameters([1.0], [[1.0, -1.0]], [covariance], "full")
    X = np.random.default_rng(3).normal(size=(10, 2))
    expected = multivariate_normal([1.0, -1.0], covariance).logpdf(X)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-12)


def test_complex_input_gets_a_one_line_message(data):
    with pytest.raises(ValueError, match="Complex data not supported") as caught:
        GaussianMixture(2).fit(data + 1j)
    assert "\n" not in str(caught.value) and len(str(caught.value)) < 100


@pytest.mark.parametrize(
    "n, error",
    [
        (0, ValueError),
        (-1, ValueError),
        (1.5, TypeError),
        ("a", TypeError),
        (None, TypeError),
        (True, TypeError),
        (10**20, ValueError),
    ],
)
def test_sample_count_is_checked(data, n, error):
    mixture = GaussianMixture(2, random_state=0).fit(data).mixture_
    with pytest.raises(error, match="n_samples must be an integer"):
        mixture.sample(n)
    assert mixture.sample(np.int64(3))[0].shape == (3, 2)


def test_non_numeric_sample_weight_names_the_parameter(data):
    # NumPy's (and so scikit-learn's) error types: ValueError for strings, TypeError for
    # objects that are no numbers at all
    with pytest.raises(ValueError, match="sample_weight must be an array of numbers"):
        Gaussian().fit(data, sample_weight="a")
    with pytest.raises(TypeError, match="sample_weight must be an array of numbers"):
        Gaussian().fit(data, sample_weight=[object()] * len(data))
    with pytest.raises(ValueError):  # as scikit-learn's
        KernelDensity().fit(data, sample_weight=["a"] * len(data))


@pytest.mark.parametrize("count", ["3", None, 2.0, True])
def test_sample_counts_must_be_integers(count, data):
    for model in (GaussianMixture(2, random_state=0).fit(data), Gaussian().fit(data)):
        with pytest.raises(TypeError, match="n_samples must be an integer"):
            model.sample(count)
    with pytest.raises(TypeError, match="size must be an integer"):
        Gaussian().fit(data).rvs(count)
    fitted = GaussianMixture(2, random_state=0).fit(data)
    for count in (np.int64(3), np.array(3), torch.tensor(3)):  # as NumPy and SciPy take them
        assert fitted.sample(count)[0].shape == (3, 2)
        assert Gaussian().fit(data).rvs(count).shape == (3, 2)


def test_callbacks_must_be_callable(data):
    with pytest.raises(TypeError, match="callback must be a callable"):
        GaussianMixture(2, random_state=0).fit(data, callback=42)
    with pytest.raises(TypeError, match="progress must be a callable"):
        mixtorch.select(data, [1, 2], ["diag"], progress=42)


@pytest.mark.parametrize(
    ("prior", "message"),
    [
        ({"mean_prior": [np.nan, 0.0]}, "mean_prior must be finite"),
        ({"covariance_prior": [[np.inf, 0.0], [0.0, 1.0]]}, "covariance_prior must be finite"),
    ],
)
def test_variational_priors_must_be_finite(prior, message, data):
    with pytest.raises(ValueError, match=message):
        BayesianGaussianMixture(n_components=2, **prior).fit(data)
    with pytest.raises(ValueError, match="mean_prior must be an array of numbers"):
        BayesianGaussianMixture(n_components=2, mean_prior=["a", "b"]).fit(data)


def test_variational_priors_may_be_tensors(data):
    given = {"mean_prior": [1.0, 2.0], "covariance_prior": [[2.0, 0.3], [0.3, 1.0]]}
    as_lists = BayesianGaussianMixture(n_components=2, random_state=0, **given).fit(data)
    as_tensors = BayesianGaussianMixture(
        n_components=2, random_state=0, **{k: torch.tensor(v) for k, v in given.items()}
    ).fit(data)
    np.testing.assert_allclose(as_tensors.means_, as_lists.means_, rtol=1e-6)


def test_meta_tensors_are_refused_with_the_reason(data):
    meta = torch.empty(60, 2, device="meta")
    with pytest.raises(ValueError, match="'meta' device, which holds shapes but no values"):
        GaussianMixture(2).fit(meta)
    fitted = Gaussian().fit(data)
    with pytest.raises(ValueError, match="'meta' device"):
        fitted.score_samples(meta)


def test_plain_float_arrays_skip_the_second_validation_with_the_same_results(monkeypatch):
    # Scoring input that validate_data would hand back unchanged goes to the pass as is;
    # everything else (names, other dtypes, byte order, layouts, bad values) is validated.
    from mixtorch import _validation

    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    model = GaussianMixture(2, random_state=0).fit(X)
    seen = []
    real = _validation.validate_data
    monkeypatch.setattr(
        _validation, "validate_data", lambda *a, **k: seen.append(1) or real(*a, **k)
    )
    parameters = zip(model.weights_, model.means_, model.covariances_, strict=True)
    points = X[:5]
    expected = np.log(sum(w * multivariate_normal(m, c).pdf(points) for w, m, c in parameters))
    np.testing.assert_allclose(model.score_samples(points), expected, rtol=1e-10)
    assert seen == []  # a plain float64 array: no validate_data
    # column-major too (validate_data hands it back as it is; the tensor is made contiguous)
    np.testing.assert_allclose(model.score_samples(np.asfortranarray(points)), expected)
    assert seen == []
    variants = [
        points.astype(">f8"),  # byte-swapped
        points.astype(np.float16),  # converted
        points.tolist(),  # a list
    ]
    for variant in variants:
        seen.clear()
        np.testing.assert_allclose(model.score_samples(variant), expected, rtol=1e-3)
        assert seen, type(variant)
    with pytest.raises(ValueError, match="X has 2 features, but GaussianMixture is expecting 3"):
        model.predict(X[:5, :2])
    bad = points.copy()
    bad[1, 2] = np.nan
    with pytest.raises(ValueError, match="Input X contains NaN"):
        model.predict(bad)
    with pytest.raises(ValueError, match="minimum of 1 is required"):
        model.score_samples(X[:0])


def test_arrays_scored_by_a_model_fitted_with_names_still_warn():
    pandas = pytest.importorskip("pandas")
    rng = np.random.default_rng(1)
    frame = pandas.DataFrame(rng.normal(size=(200, 2)), columns=["a", "b"])
    model = GaussianMixture(2, random_state=0).fit(frame)
    with pytest.warns(UserWarning, match="does not have valid feature names"):
        labels = model.predict(frame.to_numpy())
    np.testing.assert_array_equal(labels, model.predict(frame))

"""Inputs a careless user passes to the less-used public APIs: model selection,
conditioning, regression and imputation, ``mixtorch.nn``, data sources, ``save``/``load``,
``partial_fit`` and plotting. Each mistake gets scikit-learn's exception type and a message
naming the parameter."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import sklearn.mixture  # noqa: E402
import torch  # noqa: E402
from scipy.stats import norm  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402

import mixtorch  # noqa: E402
from mixtorch import (  # noqa: E402
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
    Mixture,
    plotting,
    sources,
)
from mixtorch.nn import GaussianMixtureModule  # noqa: E402

META = torch.device("meta")


@pytest.fixture(scope="module")
def X():
    return np.random.default_rng(0).normal(size=(60, 3))


@pytest.fixture(scope="module")
def mixture():
    covariance = [[1.0, 0.3, 0.0], [0.3, 1.0, 0.0], [0.0, 0.0, 1.0]]
    return Mixture.from_parameters(
        [0.3, 0.7], [[0.0, 0.0, 0.0], [3.0, 3.0, 3.0]], [covariance] * 2, dtype=torch.float64
    )


def _select(X, **params):
    options = {"n_components": [1, 2], "covariance_types": ["diag"], "random_state": 0}
    return mixtorch.select(X, **{**options, "max_iter": 20, **params})


# -- select ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_components", [2.5, 2.0, None, object()])
def test_select_n_components_not_integers(X, n_components):
    with pytest.raises(ValueError, match="n_components must be an integer or a non-empty list"):
        _select(X, n_components=n_components)


@pytest.mark.parametrize("covariance_types", [None, 5])
def test_select_covariance_types_not_a_sequence(X, covariance_types):
    with pytest.raises(ValueError, match="covariance_types must be a covariance type or"):
        _select(X, covariance_types=covariance_types)


def test_select_refuses_repeated_candidates(X):
    with pytest.raises(ValueError, match="n_components must not repeat"):
        _select(X, n_components=[1, 1])
    with pytest.raises(ValueError, match="covariance_types must not repeat"):
        _select(X, covariance_types=["diag", "diag"])


@pytest.mark.parametrize("criterion", ["bic", "cv"])
def test_select_keeps_dataframe_column_names(X, criterion):
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    result = _select(frame, criterion=criterion, cv=2)
    assert list(result.best_estimator_.feature_names_in_) == ["a", "b", "c"]
    reference = _select(X, criterion=criterion, cv=2)
    assert result.best_params_ == reference.best_params_
    assert result.best_score_ == pytest.approx(reference.best_score_, rel=1e-12)


def test_selection_table_column_checks(X):
    table = _select(X).table
    with pytest.raises(KeyError, match="no column 'aic'"):
        table.column("aic")
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        table.column("bic", "bogus")


# -- Mixture, conditioning ------------------------------------------------------------
def test_mixture_sample_generator_type(mixture):
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        mixture.sample(3, generator=5)


@pytest.mark.parametrize(
    ("n_samples", "error", "fragment"),
    [
        (0, ValueError, "n_samples must be an integer >= 1"),
        (-1, ValueError, "n_samples must be an integer >= 1"),
        (2.5, TypeError, "n_samples must be an integer"),
        ("2", TypeError, "n_samples must be an integer"),
        (None, TypeError, "n_samples must be an integer"),
        (10**15, MemoryError, "draw in smaller batches"),
    ],
)
def test_conditionals_sample_counts(mixture, n_samples, error, fragment):
    conditionals = mixture.conditionals([0], [[1.0], [2.0]])
    with pytest.raises(error, match=fragment):
        conditionals.sample(n_samples)


def test_conditionals_sample_generator_type(mixture):
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        mixture.conditionals([0], [[1.0]]).sample(2, generator=5)


def test_condition_on_none_or_meta_values(mixture):
    with pytest.raises(TypeError, match="values must be the observed values.*got None"):
        mixture.condition([0], None)
    with pytest.raises(ValueError, match="'meta' device"):
        mixture.conditionals([0], torch.zeros(2, 1, device=META))


# -- regressor and imputer ----------------------------------------------------------------
def test_regressor_meta_tensors(X):
    with pytest.raises(ValueError, match="X is a tensor on the 'meta' device"):
        GaussianMixtureRegressor(2).fit(torch.zeros(10, 2, device=META), np.zeros(10))
    with pytest.raises(ValueError, match="y is a tensor on the 'meta' device"):
        GaussianMixtureRegressor(2).fit(X[:, :2], torch.zeros(60, device=META))
    model = GaussianMixtureRegressor(2, random_state=0, max_iter=20).fit(X[:, :2], X[:, 2])
    with pytest.raises(ValueError, match="X is a tensor on the 'meta' device"):
        model.predict(torch.zeros(3, 2, device=META))


def test_regressor_sample_y_too_many(X):
    model = GaussianMixtureRegressor(2, random_state=0, max_iter=20).fit(X[:, :2], X[:, 2])
    with pytest.raises(MemoryError, match="n_samples=1000000000000"):
        model.sample_y(X[:3, :2], 10**12)


def test_imputer_meta_tensors(X):
    with pytest.raises(ValueError, match="X is a tensor on the 'meta' device"):
        GaussianMixtureImputer(2).fit(torch.zeros(10, 3, device=META))
    model = GaussianMixtureImputer(2, random_state=0, max_iter=20).fit(X)
    with pytest.raises(ValueError, match="X is a tensor on the 'meta' device"):
        model.transform(torch.zeros(3, 3, device=META))


# -- mixtorch.nn ----------------------------------------------------------------------------
@pytest.mark.parametrize("n_samples", [2.5, 2.0, "3", True, None])
def test_module_sample_refuses_non_integers(n_samples):
    module = GaussianMixtureModule(2, 3, dtype=torch.float64)
    with pytest.raises(TypeError, match="n_samples must be an integer"):
        module.sample(n_samples)


def test_module_sample_too_many_and_generator():
    module = GaussianMixtureModule(2, 3, dtype=torch.float64)
    with pytest.raises(MemoryError, match="draw in smaller batches"):
        module.sample(10**15)
    with pytest.raises(TypeError, match="generator must be a torch.Generator"):
        module.sample(3, generator=5)
    assert module.sample(np.int64(4))[0].shape == (4, 3)


@pytest.mark.parametrize(
    ("options", "error", "fragment"),
    [
        ({"dtype": torch.int64}, TypeError, "dtype must be a floating-point torch.dtype"),
        ({"dtype": "float32"}, TypeError, "dtype must be a floating-point torch.dtype"),
        ({"device": "bogus"}, ValueError, "device must be a torch.device"),
        ({"generator": 5}, TypeError, "generator must be a torch.Generator"),
    ],
)
def test_module_options_checked(options, error, fragment):
    with pytest.raises(error, match=fragment):
        GaussianMixtureModule(2, 3, **options)


def test_module_on_meta_device_still_builds():
    module = GaussianMixtureModule(2, 3, device="meta")
    assert module.means.device.type == "meta"


def test_module_rows_complex_and_device():
    module = GaussianMixtureModule(2, 3, dtype=torch.float64)
    with pytest.raises(ValueError, match="x must hold real numbers"):
        module.log_prob(torch.zeros(2, 3, dtype=torch.complex128))
    with pytest.raises(ValueError, match="x is on device meta"):
        module.log_prob(torch.zeros(2, 3, device=META))


def test_module_with_nan_parameters_is_not_a_mixture():
    module = GaussianMixtureModule(2, 3, dtype=torch.float64)
    with torch.no_grad():
        module.means[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinity"):
        module.to_mixture()
    with pytest.raises(ValueError, match="NaN or infinity"):
        module.to_estimator()


def test_module_to_estimator_structure_must_match():
    module = GaussianMixtureModule(2, 3, covariance_type="diag", dtype=torch.float64)
    with pytest.raises(ValueError, match="n_components=5 contradicts"):
        module.to_estimator(n_components=5)
    with pytest.raises(ValueError, match="covariance_type='full' contradicts"):
        module.to_estimator(covariance_type="full")
    estimator = module.to_estimator(n_components=2, covariance_type="diag", random_state=0)
    assert estimator.n_components == 2


def test_module_from_scikit_learn_mixture(X):
    fitted = sklearn.mixture.GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(TypeError, match="from_parameters"):
        GaussianMixtureModule.from_estimator(fitted)


# -- sources ---------------------------------------------------------------------------
def test_from_tensor_refuses_meta_and_strings():
    with pytest.raises(ValueError, match="'meta' device"):
        sources.from_tensor(torch.zeros(3, 2, device=META))
    with pytest.raises(ValueError, match="X must be an array of numbers"):
        sources.from_tensor(np.array([["a", "b"]]))
    with pytest.raises(TypeError, match="X must be an array of numbers"):  # as check_array
        sources.from_tensor(np.array([[object(), object()]]))
    with pytest.raises(ValueError, match="X must be real numbers"):
        sources.from_tensor(np.array([[1 + 1j, 2.0]]))


def test_from_tensor_object_array_of_numbers(X):
    chunks = list(sources.from_tensor(X.astype(object), chunk_size=25)())
    np.testing.assert_array_equal(torch.cat(chunks).numpy(), X)


def test_from_callable_returning_none():
    source = sources.from_callable(lambda: None)
    with pytest.raises(TypeError, match="must return an iterable of chunks"):
        list(source())


def test_from_callable_takes_what_iterates_by_getitem():
    class Chunks:  # a map-style container without __iter__, as a torch map Dataset
        def __init__(self, parts):
            self.parts = parts

        def __getitem__(self, index):
            return self.parts[index]  # IndexError ends the iteration

    parts = [torch.ones(3, 2), torch.zeros(2, 2)]
    chunks = list(sources.from_callable(lambda: Chunks(parts))())
    assert [tuple(chunk.shape) for chunk in chunks] == [(3, 2), (2, 2)]


def test_missing_paths_are_file_not_found(tmp_path):
    for make in (
        lambda: sources.from_npy(tmp_path / "missing.npy"),
        lambda: sources.as_source(tmp_path / "missing.csv"),
        lambda: sources.as_source(tmp_path / "missing_folder"),
        lambda: sources.from_directory(tmp_path / "missing_folder"),
    ):
        with pytest.raises(FileNotFoundError, match="missing"):
            make()
        with pytest.raises(ValueError):  # what these raised before, still caught
            make()


def test_directory_and_file_mixed_up(tmp_path):
    (tmp_path / "folder.npy").mkdir()
    np.save(tmp_path / "data.npy", np.zeros((3, 2)))
    with pytest.raises(IsADirectoryError, match="is a directory, not a .npy file"):
        sources.from_npy(tmp_path / "folder.npy")
    with pytest.raises(NotADirectoryError, match="is a file, not a directory"):
        sources.from_directory(tmp_path / "data.npy")


# -- save / load ------------------------------------------------------------------------
def test_load_directory_and_bad_path_types(tmp_path, X):
    with pytest.raises(IsADirectoryError, match="is a directory, not a model file"):
        mixtorch.load(tmp_path)
    with pytest.raises(FileNotFoundError):  # what it raised before, for old except clauses
        mixtorch.load(tmp_path)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got NoneType"):
        mixtorch.load(None)
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(TypeError, match="path must be a str or os.PathLike, got int"):
        mixtorch.save(model, 5)


def test_save_unfitted_is_not_fitted_error(tmp_path):
    with pytest.raises(NotFittedError, match="not fitted yet"):
        mixtorch.save(GaussianMixture(2), tmp_path / "a.mixtorch")
    half = GaussianMixture(2)
    half.note_ = "set by hand"  # an attribute ending in "_" but no fitted mixture
    with pytest.raises(NotFittedError, match="not fitted yet"):
        mixtorch.save(half, tmp_path / "b.mixtorch")


# -- partial_fit -------------------------------------------------------------------------
def test_partial_fit_refuses_sources_and_paths(tmp_path, X):
    np.save(tmp_path / "data.npy", X)
    for batch in (sources.as_source(X), str(tmp_path / "data.npy")):
        with pytest.raises(TypeError, match="partial_fit takes one in-memory batch"):
            GaussianMixture(2).partial_fit(batch)


# -- plotting ----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def model_1d():
    X = np.random.default_rng(1).normal(size=(80, 1))
    return GaussianMixture(2, random_state=0, max_iter=20).fit(X)


@pytest.fixture(scope="module")
def model_2d():
    X = np.random.default_rng(2).normal(size=(80, 2))
    return GaussianMixture(2, random_state=0, max_iter=20).fit(X)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (np.zeros((5, 2)), r"shape \(n_samples, 1\)"),
        (np.array([0.0, np.nan]), "NaN or infinity"),
        (np.array([0.0, np.inf]), "NaN or infinity"),
        (np.array([]), "has no rows"),
        (["a", "b"], "must be an array of numbers"),
        (np.array([1 + 1j, 2.0]), "real numbers"),
        (torch.zeros(5, device=META), "'meta' device"),
    ],
)
def test_density_1d_data_checked(model_1d, data, fragment):
    with pytest.raises(ValueError, match=fragment):
        plotting.plot_density_1d(model_1d, data)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"n_points": 0}, "n_points must be an integer in"),
        ({"n_points": 10**9}, "n_points must be an integer in"),
        ({"max_components": -1}, "max_components must be an integer >= 0"),
        ({"bins": 0}, "bins must be an integer >= 1"),
    ],
)
def test_density_1d_sizes_checked(model_1d, options, fragment):
    with pytest.raises(ValueError, match=fragment):
        plotting.plot_density_1d(model_1d, **options)


def test_plot_model_and_axes_kinds(model_1d):
    with pytest.raises(NotFittedError, match="no fitted mixture_"):
        plotting.plot_density_1d(GaussianMixture(2))
    with pytest.raises(TypeError, match="model must be a fitted mixtorch estimator"):
        plotting.plot_density_1d(None)
    with pytest.raises(TypeError, match="ax must be a matplotlib Axes"):
        plotting.plot_density_1d(model_1d, ax=5)


def test_density_1d_of_a_mixture_matches_scipy():
    mixture = Mixture.from_parameters(
        [0.25, 0.75], [[-1.0], [2.0]], [[[0.5]], [[2.0]]], dtype=torch.float64
    )
    ax = plotting.plot_density_1d(mixture, n_points=50)
    grid, curve = ax.lines[0].get_data()
    expected = 0.25 * norm.pdf(grid, -1.0, np.sqrt(0.5)) + 0.75 * norm.pdf(grid, 2.0, np.sqrt(2))
    np.testing.assert_allclose(curve, expected, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (np.zeros((5, 3)), r"shape \(n_samples, 2\)"),
        (np.zeros(5), r"shape \(n_samples, 2\)"),
        (np.array([[0.0, np.nan]]), "NaN or infinity"),
        (np.empty((0, 2)), "has no rows"),
    ],
)
def test_mixture_2d_data_checked(model_2d, data, fragment):
    with pytest.raises(ValueError, match=fragment):
        plotting.plot_mixture_2d(model_2d, data)


@pytest.mark.parametrize(
    ("options", "fragment"),
    [
        ({"n_std": -1}, "n_std must be a finite number > 0"),
        ({"n_std": float("nan")}, "n_std must be a finite number > 0"),
        ({"levels": 0}, "levels must be an integer in"),
        ({"grid_size": 1}, "grid_size must be an integer in"),
        ({"grid_size": 10**6}, "grid_size must be an integer in"),
    ],
)
def test_mixture_2d_sizes_checked(model_2d, options, fragment):
    with pytest.raises(ValueError, match=fragment):
        plotting.plot_mixture_2d(model_2d, **options)


def test_plot_criterion_missing_column(X):
    result = _select(X)
    with pytest.raises(ValueError, match="no 'aic' column for criterion='aic'"):
        plotting.plot_criterion(result, "aic")
    with pytest.raises(ValueError, match="criterion must be one of"):
        plotting.plot_criterion(result, "bogus")
    with pytest.raises(ValueError, match="no criterion column"):
        plotting.plot_criterion([{"n_components": 1, "covariance_type": "full"}])


def test_plot_curves_without_data(X):
    with pytest.raises(ValueError, match="no loo_curve_"):
        plotting.plot_loo_curve(GaussianKDE().fit(X))
    with pytest.raises(TypeError, match="got None"):
        plotting.plot_loo_curve(None)
    with pytest.raises(TypeError, match="got None"):
        plotting.plot_training_curve(None)


def test_plot_samples_grid_checks():
    images = np.random.default_rng(0).random((2, 64))
    with pytest.raises(ValueError, match="images has no rows"):
        plotting.plot_samples_grid(np.empty((0, 64)))
    with pytest.raises(ValueError, match="n_cols must be an integer >= 1"):
        plotting.plot_samples_grid(images, n_cols=0)
    with pytest.raises(ValueError, match="real numbers"):
        plotting.plot_samples_grid(images.astype(complex))


# -- Mixture.from_parameters: dtype, meta tensors, object arrays ---------------------------
_W, _M, _C = [0.25, 0.75], [[0.0, 1.0], [2.0, -1.0]], [[1.0, 2.0], [0.5, 1.5]]


@pytest.mark.parametrize(
    ("dtype", "expected"),
    [
        (torch.float64, torch.float64),
        ("float64", torch.float64),
        ("float32", torch.float32),
        (np.float64, torch.float64),
        (np.float32, torch.float32),
        (np.dtype("float32"), torch.float32),
    ],
)
def test_mixture_dtype_spellings_the_estimators_take(dtype, expected):
    mixture = Mixture.from_parameters(_W, _M, _C, "diag", dtype=dtype)
    assert mixture.dtype == expected
    assert mixture.weights.dtype == mixture.covariance.covariances.dtype == expected
    # the same spelling is accepted by an estimator's dtype=
    model = GaussianMixture.from_parameters(_W, _M, _C, "diag", dtype=dtype)
    assert model.mixture_.dtype == expected


@pytest.mark.parametrize(
    "dtype", [torch.int64, torch.float16, torch.bfloat16, "float16", np.float16, "int64", object]
)
def test_mixture_unsupported_dtypes_are_value_errors(dtype):
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        Mixture.from_parameters(_W, _M, _C, "diag", dtype=dtype)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        GaussianMixture(2, dtype=dtype).fit(np.zeros((4, 2)) + np.arange(4)[:, None])


@pytest.mark.parametrize("dtype", [3, 1.5, [torch.float64]])
def test_mixture_dtype_of_the_wrong_kind_is_a_type_error(dtype):
    # a TypeError that is also a ValueError, as every bad dtype was before
    with pytest.raises(TypeError, match=r"dtype must be float32 or float64 \(a torch.dtype"):
        Mixture.from_parameters(_W, _M, _C, "diag", dtype=dtype)
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        GaussianMixture(2, dtype=dtype).fit(np.zeros((4, 2)) + np.arange(4)[:, None])


def test_mixture_to_checks_its_dtype():
    mixture = Mixture.from_parameters(_W, _M, _C, "diag")
    assert mixture.to(dtype="float32").dtype == torch.float32
    with pytest.raises(ValueError, match="dtype must be float32 or float64, got torch.int32"):
        mixture.to(dtype=torch.int32)


@pytest.mark.parametrize("name", ["weights", "means", "covariances"])
def test_mixture_parameters_on_the_meta_device(name):
    given = {"weights": _W, "means": _M, "covariances": _C}
    given[name] = torch.empty(np.shape(given[name]), device=META)
    with pytest.raises(ValueError, match=f"{name} is a tensor on the 'meta' device, which holds"):
        Mixture.from_parameters(**given, covariance_type="diag")


def test_mixture_object_arrays_of_numbers_convert_as_check_array_does():
    means = np.array([[0, 1.0], [np.float32(2.0), -1]], dtype=object)
    mixture = Mixture.from_parameters(np.array(_W, dtype=object), means, _C, "diag")
    reference = sklearn.utils.check_array(means)  # object numbers -> float64
    np.testing.assert_array_equal(mixture.means.numpy(), reference)
    assert mixture.dtype == torch.float64


@pytest.mark.parametrize("bad", ["1.0", None, 1j, True])
def test_mixture_object_arrays_of_other_values_are_refused(bad):
    means = np.array([[0.0, 1.0], [2.0, bad]], dtype=object)
    with pytest.raises(TypeError, match="means must be an array of real numbers, got an object"):
        Mixture.from_parameters(_W, means, _C, "diag")


# -- feature indices -----------------------------------------------------------------------
@pytest.mark.parametrize(
    "features", [[0.0], [1, 2.0], torch.tensor([1.0]), np.array([0.0]), 1.0, np.float64(1)]
)
def test_float_feature_indices_are_refused(mixture, features):
    with pytest.raises(IndexError):  # NumPy refuses float indices, even whole ones
        np.zeros(3)[features if not isinstance(features, torch.Tensor) else features.numpy()]
    with pytest.raises(TypeError, match="features must be a sequence of integer.*floats"):
        mixture.marginal(features)
    with pytest.raises(TypeError, match="features must be a sequence of integer.*floats"):
        mixture.condition(features, [0.5] * np.asarray(features).size)


@pytest.mark.parametrize("features", [{2, 0}, frozenset({1})])
def test_feature_sets_are_refused(mixture, features):
    with pytest.raises(TypeError, match="features must be an ordered sequence.*pass a list"):
        mixture.marginal(features)
    model = GaussianMixture.from_mixture(mixture)
    with pytest.raises(TypeError, match="features must be an ordered sequence.*pass a list"):
        model.condition(features, [0.5] * len(features))


@pytest.mark.parametrize(
    "features",
    [[2, 0], (2, 0), np.array([2, 0]), torch.tensor([2, 0]), [np.int64(2), -3], pd.Index([2, 0])],
)
def test_integer_features_still_work_in_their_order(mixture, features):
    torch.testing.assert_close(mixture.marginal(features).means, mixture.means[:, [2, 0]])
    model = GaussianMixture.from_mixture(mixture)
    np.testing.assert_allclose(model.marginal(features).means_, mixture.means[:, [2, 0]].numpy())


@pytest.mark.parametrize("features", [1, np.int64(1), torch.tensor(1), np.array(1)])
def test_one_integer_feature_still_works(mixture, features):
    torch.testing.assert_close(mixture.marginal(features).means, mixture.means[:, [1]])


@pytest.mark.parametrize(
    "mask", [[True, False, True], np.array([True, False, True]), torch.tensor([True, False, True])]
)
def test_boolean_feature_masks_still_work(mixture, mask):
    torch.testing.assert_close(mixture.marginal(mask).means, mixture.means[:, [0, 2]])


# -- from_mixture / from_parameters / from_torch: structure parameters ---------------------
@pytest.mark.parametrize(
    ("params", "fragment"),
    [
        ({"n_components": 5}, "n_components=5 contradicts the mixture's n_components=2"),
        ({"covariance_type": "diag"}, "covariance_type='diag' contradicts the mixture's"),
    ],
)
def test_from_mixture_refuses_contradicting_structure(mixture, params, fragment):
    with pytest.raises(ValueError, match=fragment):
        GaussianMixture.from_mixture(mixture, **params)
    with pytest.raises(ValueError, match=fragment):
        GaussianMixture.from_torch(mixture.to_torch(), **params)
    model = GaussianMixture.from_mixture(mixture, n_components=2, covariance_type="full")
    assert model.n_components == 2 and model.means_.shape == (2, 3)


def test_from_parameters_refuses_another_n_components(mixture):
    arrays = (mixture.weights, mixture.means, mixture.covariance.covariances)
    with pytest.raises(ValueError, match="n_components=5 contradicts the mixture's"):
        GaussianMixture.from_parameters(*arrays, n_components=5)
    assert GaussianMixture.from_parameters(*arrays, n_components=2).means_.shape == (2, 3)


def test_gaussian_from_mixture_refuses_another_covariance_type():
    single = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[1.0, 2.0]], "diag")
    with pytest.raises(ValueError, match="covariance_type='full' contradicts"):
        mixtorch.Gaussian.from_mixture(single, covariance_type="full")
    assert mixtorch.Gaussian.from_mixture(single, covariance_type="diag").covariance_type == "diag"


# -- BayesianGaussianMixture: sources and paths ---------------------------------------------
def test_bayesian_mixture_refuses_sources_and_paths(tmp_path, X):
    path = tmp_path / "x.npy"
    np.save(path, X)
    source = sources.from_npy(path)
    for given in (str(path), path, source, lambda: iter([X])):
        with pytest.raises(TypeError, match="BayesianGaussianMixture fits in-memory arrays"):
            mixtorch.BayesianGaussianMixture(2).fit(given)
        with pytest.raises(TypeError, match=r"np.load\(path\)"):
            mixtorch.BayesianGaussianMixture(2).fit_predict(given)
    # the suggested ways to get an in-memory array fit as the array does
    options = {"n_components": 2, "random_state": 0}
    direct = mixtorch.BayesianGaussianMixture(**options).fit(X)
    loaded = mixtorch.BayesianGaussianMixture(**options).fit(np.load(path))
    gathered = mixtorch.BayesianGaussianMixture(**options).fit(torch.cat(list(source())))
    np.testing.assert_allclose(loaded.means_, direct.means_)
    np.testing.assert_allclose(gathered.means_.numpy(), direct.means_)

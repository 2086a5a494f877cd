"""Leftovers: optimiser names in any case, finite input to the ``nn`` modules,
``chunk_size=None`` for file sources, and constant features in the Pyro fits."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
import torch

import mixtorch._module
from mixtorch import Gaussian, GaussianMixture, GaussianMixtureImputer, Mixture
from mixtorch.fit.gradient import OPTIMIZERS, fit_gradient
from mixtorch.nn import GaussianMixtureModule, GaussianModule
from mixtorch.sources import (
    DEFAULT_SOURCE_CHUNK_ROWS,
    as_source,
    from_directory,
    from_npy,
    from_tensor,
)

KINDS = ["full", "tied", "diag", "spherical"]


# -- optimizer names in any case ----------------------------------------------------------
TORCH_SPELLINGS = {
    "Adam": torch.optim.Adam,
    "AdamW": torch.optim.AdamW,
    "SGD": torch.optim.SGD,
    "RMSprop": torch.optim.RMSprop,
    "Adagrad": torch.optim.Adagrad,
    "LBFGS": torch.optim.LBFGS,
}


def _gradient_fit(estimator, optimizer):
    X = np.random.default_rng(0).normal(size=(60, 2))
    model = estimator(algorithm="gradient", optimizer=optimizer, max_iter=4, learning_rate=0.01)
    if estimator is GaussianMixture:
        model.set_params(n_components=2, random_state=0)
    return model.fit(X)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("estimator", [GaussianMixture, Gaussian])
@pytest.mark.parametrize("name", sorted(TORCH_SPELLINGS))
def test_optimizer_names_in_torch_or_lower_case_fit_as_the_class_does(estimator, name):
    # the reference is the optimiser class itself, which never goes through a name
    reference = _gradient_fit(estimator, TORCH_SPELLINGS[name])
    for spelling in (name, name.lower(), name.upper()):
        model = _gradient_fit(estimator, spelling)
        torch.testing.assert_close(model.mixture_.means, reference.mixture_.means, rtol=0, atol=0)
        torch.testing.assert_close(
            model.mixture_.covariance.covariances,
            reference.mixture_.covariance.covariances,
            rtol=0,
            atol=0,
        )
        assert model.optimizer == spelling  # the parameter is kept as given


@pytest.mark.parametrize("estimator", [GaussianMixture, Gaussian])
@pytest.mark.parametrize("name", ["Adamax", "adam ", "", "Nadam"])
def test_an_unknown_optimizer_name_is_a_value_error_listing_the_names(estimator, name):
    listed = r"\{'adagrad', 'adam', 'adamw', 'lbfgs', 'rmsprop', 'sgd'\} \(in any case\)"
    with pytest.raises(ValueError, match=rf"'optimizer' parameter .*{listed}.*Got '{name}'"):
        _gradient_fit(estimator, name)
    assert sorted(OPTIMIZERS) == ["adagrad", "adam", "adamw", "lbfgs", "rmsprop", "sgd"]


# -- nn modules: finite input ------------------------------------------------------------
@pytest.fixture
def restore_validation_default():
    before = mixtorch._module.GaussianMixtureModule._default_validate_args
    yield
    mixtorch._module.GaussianMixtureModule._default_validate_args = before


def _points(bad: float) -> torch.Tensor:
    x = torch.randn(4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[2, 1] = bad
    return x


METHODS = ["log_prob", "forward", "component_log_prob", "weighted_log_prob", "responsibilities"]


@pytest.mark.parametrize("covariance_type", KINDS)
@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("bad", [float("nan"), float("inf"), -float("inf")])
def test_non_finite_points_are_a_value_error_naming_the_first(covariance_type, method, bad):
    module = GaussianMixtureModule(2, 3, covariance_type, dtype=torch.float64)
    assert module.validate_args is True
    expected = r"x holds NaN or infinity in 1 of its 4 points \(the first is row 2 of "
    with pytest.raises(ValueError, match=expected + r".*validate_args=False"):
        getattr(module, method)(_points(bad))


def test_torch_distributions_refuse_the_same_input_with_the_same_error_type():
    module = GaussianMixtureModule(2, 3, dtype=torch.float64)
    distribution = module.to_torch()
    distribution.component_distribution._validate_args = True
    with pytest.raises(ValueError):
        distribution.component_distribution.log_prob(_points(float("nan"))[:, None, :])
    with pytest.raises(ValueError):
        module.log_prob(_points(float("nan")))


def test_batch_shapes_are_counted_in_flattened_rows():
    module = GaussianModule(3, dtype=torch.float64)
    x = torch.zeros(2, 5, 3, dtype=torch.float64)
    x[1, 3, 0] = float("nan")
    x[1, 4, 2] = float("nan")
    with pytest.raises(ValueError, match=r"in 2 of its 10 points \(the first is row 8 of "):
        module.log_prob(x)


@pytest.mark.parametrize("covariance_type", KINDS)
def test_validation_off_scores_the_finite_rows_alike_and_lets_nan_through(covariance_type):
    module = GaussianMixtureModule(2, 3, covariance_type, dtype=torch.float64, validate_args=False)
    x = _points(float("nan"))
    checked = GaussianMixtureModule(2, 3, covariance_type, dtype=torch.float64)
    checked.load_state_dict(module.state_dict())
    scores = module.log_prob(x)
    assert torch.isnan(scores[2])
    finite_rows = [0, 1, 3]
    torch.testing.assert_close(scores[finite_rows], checked.log_prob(x[finite_rows]))


def test_validate_args_follows_the_default_unless_set(restore_validation_default):
    following = GaussianMixtureModule(2, 3, dtype=torch.float64)
    on = GaussianMixtureModule(2, 3, dtype=torch.float64, validate_args=True)
    single = GaussianModule(3, dtype=torch.float64)
    GaussianMixtureModule.set_default_validate_args(False)
    assert (following.validate_args, on.validate_args, single.validate_args) == (
        False,
        True,
        False,
    )
    assert torch.isnan(following.log_prob(_points(float("nan")))[2])
    with pytest.raises(ValueError, match="NaN or infinity"):
        on.log_prob(_points(float("nan")))
    GaussianModule.set_default_validate_args(True)  # one default for both modules
    assert following.validate_args and single.validate_args
    on.validate_args = False
    assert not on.validate_args
    on.validate_args = None  # back to the default
    assert on.validate_args


@pytest.mark.parametrize("value", [1, 0, "yes", np.bool_(True)])
def test_validate_args_must_be_a_bool_or_none(value, restore_validation_default):
    with pytest.raises(TypeError, match="validate_args must be True, False or None"):
        GaussianMixtureModule(2, 3, validate_args=value)
    module = GaussianMixtureModule(2, 3)
    with pytest.raises(TypeError, match="validate_args must be True, False or None"):
        module.validate_args = value
    with pytest.raises(TypeError, match="set_default_validate_args takes True or False"):
        GaussianMixtureModule.set_default_validate_args(value)


def test_a_module_pickled_before_validate_args_follows_the_default():
    module = GaussianMixtureModule(2, 3, dtype=torch.float64)
    del module.__dict__["_validate_args"]  # as pickled by an earlier version
    restored = pickle.loads(pickle.dumps(module))
    assert restored.validate_args is True
    with pytest.raises(ValueError, match="NaN or infinity"):
        restored.log_prob(_points(float("nan")))


def test_meta_modules_check_shapes_only():
    module = GaussianMixtureModule(2, 3, "diag", device="meta")
    assert module.log_prob(torch.empty(4, 3, device="meta")).shape == (4,)
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., 3\)"):
        module.log_prob(torch.empty(4, 2, device="meta"))


def test_fit_gradient_checks_x_once_not_per_chunk(monkeypatch):
    def refuse(x):
        raise AssertionError("the per-call check ran inside fit_gradient")

    monkeypatch.setattr(mixtorch._module, "_check_finite", refuse)
    X = torch.randn(50, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    start = Mixture.from_parameters([1.0], [[0.0, 0.0]], [np.eye(2)], dtype=torch.float64)
    fitted, trace = fit_gradient(X, start, max_iter=200, chunk_size=8)
    torch.testing.assert_close(fitted.means[0], X.mean(0), atol=0.02, rtol=0)
    X[3, 1] = float("nan")
    with pytest.raises(ValueError, match="only finite values"):
        fit_gradient(X, start, max_iter=2)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_a_gpu_only_the_check_synchronises():
    module = GaussianMixtureModule(2, 3, "diag", device="cuda")
    x = torch.randn(8, 3, device="cuda")
    module.validate_args = False
    torch.cuda.set_sync_debug_mode("error")
    try:
        module.log_prob(x)  # no host sync with the check off
        module.validate_args = True
        with pytest.raises(RuntimeError, match="synchroniz"):
            module.log_prob(x)
    finally:
        torch.cuda.set_sync_debug_mode("default")


# -- file sources: chunk_size=None -------------------------------------------------------
@pytest.fixture
def long_file(tmp_path):
    X = np.random.default_rng(0).normal(size=(DEFAULT_SOURCE_CHUNK_ROWS + 7, 2))
    np.save(tmp_path / "data.npy", X)
    return tmp_path, X


def _lengths(source):
    return [len(chunk) for chunk in source()]


def test_chunk_size_none_reads_the_default_rows_as_as_source_does(long_file):
    folder, X = long_file
    expected = [DEFAULT_SOURCE_CHUNK_ROWS, 7]
    sources = {
        "from_npy": from_npy(folder / "data.npy", chunk_size=None),
        "from_npy (no mmap)": from_npy(folder / "data.npy", mmap=False, chunk_size=None),
        "from_directory": from_directory(folder, chunk_size=None),
        "from_tensor": from_tensor(X, chunk_size=None),
        "as_source": as_source(folder / "data.npy", chunk_size=None),
    }
    for name, source in sources.items():
        assert _lengths(source) == expected, name
        np.testing.assert_array_equal(torch.cat(list(source())).numpy(), X, err_msg=name)
    assert _lengths(from_npy(folder / "data.npy")) == expected  # None is the default


@pytest.mark.parametrize("chunk_size", [0, 2.5, "8", True])
def test_other_chunk_sizes_are_still_refused_with_the_none_hint(long_file, chunk_size):
    folder, _ = long_file
    message = rf"chunk_size must be a positive integer, got {chunk_size!r}; None picks 65536"
    with pytest.raises(ValueError, match=message):
        from_npy(folder / "data.npy", chunk_size=chunk_size)


# -- Pyro fits: constant features --------------------------------------------------------
def _with_constant_columns(columns):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(40, 3))
    X[:, columns] = 5.0
    return X


@pytest.mark.parametrize("estimator", ["SVIGaussianMixture", "MCMCGaussianMixture"])
@pytest.mark.parametrize("covariance_type", ["diag", "full"])
@pytest.mark.parametrize("scale_family", ["halfcauchy", "lognormal"])
def test_pyro_fits_refuse_constant_features_even_with_explicit_priors(
    estimator, covariance_type, scale_family
):
    bayes = pytest.importorskip("mixtorch.bayes")
    options = {
        "covariance_type": covariance_type,
        "scale_family": scale_family,
        "mean_prior_scale": 10.0,
        "scale_prior": 1.0,
        "num_samples": 3,
        "random_state": 0,
    }
    if estimator == "SVIGaussianMixture":
        options.update(num_steps=2, num_restarts=1)
    else:
        options.update(warmup_steps=2, num_chains=1, jit_compile=False)
    model = getattr(bayes, estimator)(2, **options)
    message = r"Feature\(s\) \[0, 2\] of X are constant.*GaussianMixture"
    with pytest.raises(ValueError, match=message):
        model.fit(_with_constant_columns([0, 2]))
    assert not hasattr(model, "means_")


def test_a_feature_differing_in_one_row_is_not_constant():
    pytest.importorskip("pyro")
    from mixtorch.bayes._common import refuse_constant_features

    X = torch.full((5, 2), 3.0, dtype=torch.float64)
    X[:, 0] = torch.arange(5.0)
    X[4, 1] = np.nextafter(3.0, 4.0)
    refuse_constant_features(X)  # no error
    X[4, 1] = 3.0
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\]"):
        refuse_constant_features(X)


def test_em_floors_a_constant_feature_at_reg_covar_and_fails_without_it():
    # the EM outcome the Pyro error message points to
    X = _with_constant_columns([1])
    model = GaussianMixture(2, covariance_type="diag", reg_covar=1e-4, random_state=0).fit(X)
    np.testing.assert_allclose(model.covariances_[:, 1], 1e-4, rtol=1e-9)
    np.testing.assert_array_equal(model.means_[:, 1], 5.0)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixture(2, covariance_type="diag", reg_covar=0.0, random_state=0).fit(X)


def test_imputer_takes_an_infinite_marker_like_a_finite_one():
    # missing_values=np.inf marks entries as -1 would: the same imputation as NaN there;
    # NaN or -inf left in X is an error that names the marker.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(80, 3))
    X[:, 2] += X[:, 0]
    holes = rng.random(X.shape) < 0.1
    with_nan = np.where(holes, np.nan, X)
    with_inf = np.where(holes, np.inf, X)
    expected = GaussianMixtureImputer(2, random_state=0).fit_transform(with_nan)
    got = GaussianMixtureImputer(2, missing_values=np.inf, random_state=0).fit_transform(with_inf)
    np.testing.assert_array_equal(got, expected)
    assert np.isfinite(got).all()
    imputer = GaussianMixtureImputer(2, missing_values=np.inf, random_state=0)
    with pytest.raises(ValueError, match=r"contains NaN, but missing_values=inf"):
        imputer.fit(with_nan)
    with pytest.raises(ValueError, match=r"other sign than missing_values=inf"):
        imputer.fit(np.where(holes, -np.inf, X))


def test_condition_with_a_mapping_keyed_by_indices_on_a_named_model_says_what_keys_mean():
    pd = pytest.importorskip("pandas")
    X = pd.DataFrame(np.random.default_rng(0).normal(size=(60, 3)), columns=["a", "b", "c"])
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(TypeError, match=r"keys \[0\]; its keys must be the column names"):
        model.condition(["a"], {0: 1.0})
    by_name = model.condition(["a"], {"a": 1.0})
    by_order = model.condition(["a"], [1.0])
    np.testing.assert_array_equal(by_name.means_, by_order.means_)

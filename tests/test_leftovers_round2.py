"""Leftovers, second round: ``source_chunk_rows``'s integer check, a scalar held mean and
covariance for one feature, one finiteness check for held parameters, one symmetry rule,
the estimators' joint-mixture hook for ``io``, and the Pyro estimators' shared notes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file
from scipy import stats

import mixtorch
from mixtorch import Gaussian, GaussianMixtureImputer, GaussianMixtureRegressor, Mixture
from mixtorch._model_file import file_digest
from mixtorch.sources import from_tensor, source_chunk_rows


# -- 1. source_chunk_rows refuses a non-integer with a TypeError, as integer checks do ----
@pytest.mark.parametrize("n_features", ["3", 3.0, True, np.bool_(True), None, [3]])
def test_source_chunk_rows_refuses_a_non_integer_type(n_features):
    with pytest.raises(TypeError, match="n_features must be an integer"):
        source_chunk_rows(n_features)


@pytest.mark.parametrize("n_features", [0, -1, np.int64(-3), torch.tensor(0)])
def test_source_chunk_rows_refuses_a_non_positive_integer(n_features):
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        source_chunk_rows(n_features)


@pytest.mark.parametrize("n_features", [np.int32(1000), np.array(1000), torch.tensor(1000)])
def test_source_chunk_rows_takes_integer_scalars(n_features):
    # 2**23 // (1000 * 8) rows of float64, worked by hand
    assert source_chunk_rows(n_features, np.float64) == 1048


# -- 2. a scalar held mean (and variance) for data of one feature, as SciPy's fit --------
KINDS = ["full", "tied", "diag", "spherical"]
ONE_FEATURE = np.random.default_rng(7).normal(3.0, 2.0, size=(40, 1))


@pytest.mark.parametrize(
    "mean", [1.5, np.float32(1.5), np.array(1.5), torch.tensor(1.5, dtype=torch.float64)]
)
@pytest.mark.parametrize("kind", KINDS)
def test_scalar_fixed_mean_for_one_feature_matches_scipy_fit(mean, kind):
    ref_mean, ref_cov = stats.multivariate_normal.fit(ONE_FEATURE, fix_mean=1.5)
    model = Gaussian(covariance_type=kind, fixed_mean=mean, reg_covar=0.0).fit(ONE_FEATURE)
    np.testing.assert_array_equal(model.mean_, ref_mean)
    np.testing.assert_allclose(np.reshape(model.covariance_, -1), ref_cov.reshape(-1), rtol=1e-12)
    expected = stats.multivariate_normal(ref_mean, ref_cov).logpdf(ONE_FEATURE)
    np.testing.assert_allclose(model.score_samples(ONE_FEATURE), expected, rtol=1e-12)


@pytest.mark.parametrize("covariance", [0.7, np.array(0.7), [0.7], [[0.7]]])
@pytest.mark.parametrize("kind", KINDS)
def test_single_fixed_variance_for_one_feature_matches_scipy_fit(covariance, kind):
    ref_mean, ref_cov = stats.multivariate_normal.fit(ONE_FEATURE, fix_cov=covariance)
    model = Gaussian(covariance_type=kind, fixed_covariance=covariance).fit(ONE_FEATURE)
    np.testing.assert_allclose(model.mean_, ref_mean, rtol=1e-14)
    assert np.reshape(model.covariance_, -1).tolist() == ref_cov.reshape(-1).tolist() == [0.7]
    expected = stats.multivariate_normal(ref_mean, ref_cov).logpdf(ONE_FEATURE)
    np.testing.assert_allclose(model.score_samples(ONE_FEATURE), expected, rtol=1e-12)


def test_both_scalars_held_for_one_feature_and_from_a_source():
    ref_mean, ref_cov = stats.multivariate_normal.fit(ONE_FEATURE, fix_mean=-1.0, fix_cov=2.5)
    both = Gaussian(fixed_mean=-1.0, fixed_covariance=2.5).fit(ONE_FEATURE)
    np.testing.assert_array_equal(both.mean_, ref_mean)
    np.testing.assert_array_equal(both.covariance_, ref_cov)
    # a chunked source takes the same path through check_fixed
    ref_mean, ref_cov = stats.multivariate_normal.fit(ONE_FEATURE, fix_mean=-1.0)
    streamed = Gaussian(fixed_mean=-1.0).fit(from_tensor(ONE_FEATURE, chunk_size=7))
    np.testing.assert_array_equal(streamed.mean_, ref_mean)
    np.testing.assert_allclose(streamed.covariance_, ref_cov, rtol=1e-12)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fixed_mean": 1.0}, r"fixed_mean must have shape \(3,\), one value per feature"),
        ({"fixed_covariance": 1.0}, r"fixed_covariance must have shape \(3, 3\)"),
        ({"covariance_type": "diag", "fixed_covariance": 1.0}, r"must have shape \(3,\)"),
    ],
)
def test_a_single_value_is_still_refused_for_several_features(params, message):
    X = np.random.default_rng(8).normal(size=(20, 3))
    with pytest.raises(ValueError, match=message + ".*a single value is taken only for data "):
        Gaussian(**params).fit(X)
    with pytest.raises(ValueError):  # as SciPy refuses them
        stats.multivariate_normal.fit(
            X, fix_mean=params.get("fixed_mean"), fix_cov=params.get("fixed_covariance")
        )


# -- 3. held values and mixture parameters share one conversion and one finiteness check --
@pytest.mark.parametrize(("bad", "what"), [(np.nan, "NaN"), (np.inf, "infinity")])
def test_one_finiteness_message_for_mixture_parameters_and_held_values(bad, what):
    with pytest.raises(ValueError, match=f"^means must be finite, it contains {what}.$"):
        Mixture.from_parameters([1.0], [[0.0, bad]], [1.0], "spherical")
    X = np.random.default_rng(9).normal(size=(20, 2))
    held = "NaN \\(or None\\)" if what == "NaN" else what
    with pytest.raises(ValueError, match=f"^fixed_mean must be finite, it contains {held}.$"):
        Gaussian(fixed_mean=[0.0, bad]).fit(X)
    with pytest.raises(ValueError, match=f"^fixed_covariance must be finite, it contains {held}"):
        Gaussian(covariance_type="diag", fixed_covariance=[1.0, bad]).fit(X)


def test_held_values_keep_numpy_reading_and_mixture_parameters_numbers_only():
    X = np.random.default_rng(9).normal(size=(20, 2))
    # held values: None is NaN, bools are 0/1, numeric strings are numbers (NumPy's reading)
    with pytest.raises(ValueError, match="fixed_mean must be finite, it contains NaN"):
        Gaussian(fixed_mean=[0.0, None]).fit(X)
    assert Gaussian(fixed_mean=[True, False]).fit(X).mean_.tolist() == [1.0, 0.0]
    assert Gaussian(fixed_mean=["1", "2"]).fit(X).mean_.tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="fixed_mean must be real numbers"):
        Gaussian(fixed_mean=torch.tensor([1j, 0j])).fit(X)
    # Mixture.from_parameters: real numbers only
    for means in ([[0.0, None]], [[True, False]], [["1", "2"]], [[1j, 0.0]]):
        with pytest.raises(TypeError, match="means must be an array of real numbers"):
            Mixture.from_parameters([1.0], np.array(means, dtype=object), [1.0], "spherical")


def test_held_values_on_another_dtype_or_device_are_read_in_float64():
    X = np.random.default_rng(9).normal(size=(20, 2))
    mean = torch.tensor([0.25, -0.5], dtype=torch.float32, requires_grad=True)
    model = Gaussian(fixed_mean=mean, dtype="float64").fit(X)
    np.testing.assert_array_equal(model.mean_, [0.25, -0.5])
    assert model.mixture_.means.dtype == torch.float64
    centred = X - [0.25, -0.5]
    np.testing.assert_allclose(model.covariance_, centred.T @ centred / len(X), rtol=1e-12)


# -- 4. one symmetry rule: 1000 eps of the matrix's precision, times its largest entry ---
def _nudged(dtype, factor):
    """[[2, 0.5], [0.5, 1]] with C[0, 1] moved by ``factor`` times the tolerance."""
    matrix = np.array([[2.0, 0.5], [0.5, 1.0]], dtype=dtype)
    matrix[0, 1] += dtype(factor * 1000 * np.finfo(dtype).eps * 2.0)
    return matrix


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_just_asymmetric_covariance_is_refused_by_both_checks(dtype):
    X = np.random.default_rng(10).normal(size=(30, 2)).astype(dtype)
    matrix = _nudged(dtype, 1.5)
    with pytest.raises(ValueError, match=r"fixed_covariance must be symmetric matrices; \|C - C"):
        Gaussian(fixed_covariance=matrix).fit(X)
    with pytest.raises(ValueError, match="covariances must be symmetric matrices"):
        Mixture.from_parameters([1.0], np.zeros((1, 2), dtype), matrix[None], "full")


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_just_within_the_tolerance_is_held_symmetrised(dtype):
    X = np.random.default_rng(10).normal(size=(30, 2)).astype(dtype)
    matrix = _nudged(dtype, 0.5)
    assert matrix[0, 1] != matrix[1, 0]
    model = Gaussian(fixed_covariance=matrix, dtype="float64").fit(X)
    symmetric = (matrix.astype(np.float64) + matrix.T.astype(np.float64)) / 2
    np.testing.assert_array_equal(model.covariance_, symmetric)
    Mixture.from_parameters([1.0], np.zeros((1, 2), dtype), matrix[None], "full")  # no error


def _rounded_in_float32(dimension=6):
    """Q diag(v) Q^T computed in float32 as (Q * v) @ Q^T: C_ij and C_ji round apart."""
    rng = np.random.default_rng(11)
    basis = np.linalg.qr(rng.normal(size=(dimension, dimension)))[0].astype(np.float32)
    variances = rng.uniform(0.5, 3.0, size=dimension).astype(np.float32)
    matrix = (basis * variances) @ basis.T
    assert np.abs(matrix - matrix.T).max() > 0  # asymmetric by float32 rounding only
    return matrix


@pytest.mark.parametrize("as_tensor", [False, True])
def test_a_float32_rounded_covariance_is_held_in_a_float64_fit(as_tensor):
    matrix = _rounded_in_float32()
    X = np.random.default_rng(12).normal(size=(40, 6))
    given = torch.from_numpy(matrix) if as_tensor else matrix
    model = Gaussian(fixed_covariance=given).fit(X)
    assert model.mixture_.means.dtype == torch.float64
    symmetric = (matrix.astype(np.float64) + matrix.T.astype(np.float64)) / 2
    np.testing.assert_array_equal(model.covariance_, symmetric)
    reference = stats.multivariate_normal(X.mean(axis=0), symmetric).logpdf(X)
    np.testing.assert_allclose(model.score_samples(X), reference, rtol=1e-12)


def test_a_float32_rounded_covariance_given_as_float64_must_be_symmetrised():
    # in float64 the same asymmetry is 1e6 times float64's rounding: a different matrix,
    # as Mixture.from_parameters reads it too; the message says how to pass it
    matrix = _rounded_in_float32().astype(np.float64)
    X = np.random.default_rng(12).normal(size=(40, 6))
    with pytest.raises(ValueError, match=r"float64 rounding explains\. Pass \(C \+ C\.T\) / 2"):
        Gaussian(fixed_covariance=matrix).fit(X)
    with pytest.raises(ValueError, match="covariances must be symmetric matrices"):
        Mixture.from_parameters([1.0], np.zeros((1, 6)), matrix[None], "full")
    Gaussian(fixed_covariance=(matrix + matrix.T) / 2).fit(X)


# -- 5. the joint-mixture hook: mixtorch.load asks the estimator what its mixture covers --
def _rewrite(source, target, attributes=None, tensors=None):
    """Copy a model file with some stored attributes and tensors replaced (by name) and
    its digest redone: a file edited by hand, well formed."""
    with safe_open(str(source), framework="pt") as handle:
        stored = {key: handle.get_tensor(key) for key in handle.keys()}
        document = json.loads(handle.metadata()["mixtorch"])
    document["state"]["attributes"].update(attributes or {})
    tensors = {**stored, **(tensors or {})}
    document["sha256"] = file_digest(tensors, document)
    save_file(tensors, str(target), metadata={"mixtorch": json.dumps(document)})


def _with_an_empty_feature():
    rng = np.random.default_rng(13)
    X = rng.multivariate_normal(
        [0.0, 0.0, 1.0], [[1.0, 0.0, 0.6], [0.0, 1.0, 0.0], [0.6, 0.0, 1.0]], 200
    )
    X[:, 1] = np.nan  # no observed value: not in the joint mixture
    X[:15, 0] = np.nan
    return X


def test_each_estimator_says_how_many_columns_its_joint_mixture_covers():
    X = _with_an_empty_feature()
    imputer = GaussianMixtureImputer(random_state=0, keep_empty_features=True).fit(X)
    assert imputer.__mixtorch_joint_features__() == 2 == imputer.mixture_model_.n_features_in_
    complete = np.nan_to_num(X)
    regressor = GaussianMixtureRegressor(random_state=0).fit(complete[:, :1], complete[:, 1:])
    assert regressor.__mixtorch_joint_features__() == 3 == regressor.mixture_model_.n_features_in_


def test_a_loaded_imputer_with_an_empty_feature_still_fills_as_saved(tmp_path):
    X = _with_an_empty_feature()
    model = GaussianMixtureImputer(random_state=0, keep_empty_features=True).fit(X)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "imputer.mixtorch"))
    np.testing.assert_array_equal(loaded.transform(X), model.transform(X))


def test_a_forged_empty_feature_mask_contradicts_the_mixture(tmp_path):
    X = _with_an_empty_feature()
    saved = mixtorch.save(GaussianMixtureImputer(random_state=0).fit(X), tmp_path / "i.mixtorch")
    bad = tmp_path / "bad.mixtorch"
    # one empty feature more than the mixture leaves out: well formed, inconsistent
    _rewrite(saved, bad, tensors={"attr._is_empty_feature": torch.tensor([True, True, False])})
    with pytest.raises(ValueError, match=r"bad\.mixtorch: .*2 features but the model expects 1"):
        mixtorch.load(bad)


def test_a_forged_regressor_target_count_is_named(tmp_path):
    X = np.random.default_rng(14).normal(size=(50, 3))
    model = GaussianMixtureRegressor(random_state=0).fit(X[:, :1], X[:, 1:])
    saved = mixtorch.save(model, tmp_path / "r.mixtorch")
    bad = tmp_path / "bad.mixtorch"
    _rewrite(saved, bad, attributes={"n_targets_": 0})
    with pytest.raises(ValueError, match=r"bad\.mixtorch: .*n_targets_ must be a positive integer"):
        mixtorch.load(bad)


# -- 6. the Pyro estimators' shared notes are said once, in mixtorch.bayes ---------------
def test_the_pyro_estimators_refer_to_one_shared_passage():
    bayes = pytest.importorskip("mixtorch.bayes")
    shared = " ".join(bayes.__doc__.split())
    assert "no ``reg_covar`` floor" in shared and "``corr_cholesky`` (S, K, D, D)" in shared
    for estimator in (bayes.SVIGaussianMixture, bayes.MCMCGaussianMixture):
        for text in (estimator.__doc__, estimator.fit.__doc__):
            assert ":mod:`mixtorch.bayes`" in text
            assert "reg_covar`` floor" not in text and "corr_cholesky`` (S" not in text
    # what the passage says: a constant feature is refused by both
    X = np.column_stack([np.random.default_rng(15).normal(size=30), np.ones(30)])
    for estimator in (
        bayes.SVIGaussianMixture(num_steps=2, num_restarts=1, num_samples=2),
        bayes.MCMCGaussianMixture(num_samples=2, warmup_steps=0, num_chains=1),
    ):
        with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] of X are constant"):
            estimator.fit(X)


@pytest.mark.parametrize("chunk_size", ["8", 2.5, 4.0, True])
def test_a_source_chunk_size_that_is_no_integer_is_a_type_error_and_a_value_error(chunk_size):
    from mixtorch.sources import as_source

    for error in (TypeError, ValueError):
        with pytest.raises(
            error, match=rf"chunk_size must be a positive integer, got {chunk_size!r}"
        ):
            as_source(np.zeros((4, 2)), chunk_size=chunk_size)
    with pytest.raises(ValueError) as caught:
        as_source(np.zeros((4, 2)), chunk_size=0)
    assert not isinstance(caught.value, TypeError)  # a count below 1 is a value error only

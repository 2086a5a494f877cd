"""Probe of model files and data sources as a careless or hostile user would use them:
hand-edited documents (their digest redone, so only the checks of ``load`` can refuse
them), stored copies that contradict the mixture, odd paths and file names, big-endian
and damaged data files."""

from __future__ import annotations

import json
import math
import os
import struct
import warnings

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from safetensors import safe_open
from safetensors.torch import save_file

import mixtorch
from mixtorch import (
    BayesianGaussianMixture,
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
)
from mixtorch._model_file import file_digest
from mixtorch.sources import as_source, from_callable, from_directory, from_npy


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(60, 3))


@pytest.fixture(scope="module")
def files(tmp_path_factory, X) -> dict:
    folder = tmp_path_factory.mktemp("models")
    models = {
        "gm": GaussianMixture(2, random_state=0).fit(X),
        "kde": GaussianKDE().fit(X),
        "bgm": BayesianGaussianMixture(n_components=2, random_state=0, max_iter=20).fit(X),
        "reg": GaussianMixtureRegressor(2, random_state=0).fit(X[:, :2], X[:, 2]),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a short BGM fit may not converge
        return {
            name: mixtorch.save(model, folder / f"{name}.mixtorch")
            for name, model in models.items()
        }


def _rewrite(source, target, edit_document=None, edit_tensors=None):
    """Copy a model file with its document and/or tensors edited and the digest redone."""
    with safe_open(str(source), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
        document = json.loads(handle.metadata()["mixtorch"])
    if edit_document is not None:
        edit_document(document)
    if edit_tensors is not None:
        edit_tensors(tensors)
    tensors = {key: value.contiguous() for key, value in tensors.items()}
    document["sha256"] = file_digest(tensors, document)
    save_file(tensors, str(target), metadata={"mixtorch": json.dumps(document)})
    return target


def _state(**values):
    return lambda document: document["state"].update(values)


def _attributes(**values):
    return lambda document: document["state"]["attributes"].update(values)


def _scaled(key, factor):
    def edit(tensors):
        tensors[key] = tensors[key] * factor

    return edit


def _refused(path, *fragments):
    with pytest.raises(ValueError, match=rf"{path.name}") as caught:
        mixtorch.load(path)
    for fragment in fragments:
        assert fragment in str(caught.value)


# -- the fit record of a mixture file ------------------------------------------------------
@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (_state(converged_="no"), "converged_ must be true or false"),  # bool("no") is True
        (_state(n_iter_=-5), "n_iter_ must be a non-negative integer"),
        (_state(lower_bound_="high"), "lower_bound_ must hold real numbers"),
        (_state(lower_bound_={"__float__": "nan"}), "lower_bound_ must hold real numbers"),
        (_state(lower_bounds_="abc"), "lower_bounds_ must be a list"),  # list("abc")
    ],
    ids=["converged-str", "n_iter-negative", "bound-str", "bound-nan", "bounds-str"],
)
def test_fit_record_values_of_the_wrong_type_are_refused(tmp_path, files, edit, fragment):
    _refused(_rewrite(files["gm"], tmp_path / "record.mixtorch", edit), fragment)


def test_infinite_lower_bounds_come_back_as_floats(tmp_path, X):
    model = GaussianMixture(2, random_state=0).fit(X)
    model.lower_bounds_ = [-math.inf, -3.5]  # they came back as {'__float__': '-inf'}
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "bounds.mixtorch"))
    assert loaded.lower_bounds_ == [-math.inf, -3.5]


def test_an_unknown_device_name_is_a_value_error_naming_the_file(tmp_path, files):
    edit = lambda document: document["params"].update(device={"__device__": "bogus:7"})  # noqa: E731
    _refused(_rewrite(files["gm"], tmp_path / "device.mixtorch", edit), "unknown device")


@pytest.mark.parametrize(
    "names",
    [["a", "b", "c"], {"__ndarray__": "mixture_.means"}],
    ids=["plain-list", "numbers"],
)
def test_feature_names_must_be_an_array_of_strings(tmp_path, files, names):
    path = _rewrite(files["gm"], tmp_path / "names.mixtorch", _state(feature_names_in_=names))
    _refused(path, "feature_names_in_ must")


# -- attributes restored one by one ------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "value"),
    [("score_samples", 1), ("bandwidth", -1.0), ("__dict__", {}), ("_after_load", 0)],
    ids=["method", "hyper-parameter", "dunder", "hook"],
)
def test_a_file_sets_only_fitted_attributes(tmp_path, files, name, value):
    # A hyper-parameter set this way skipped its validation, and a file replacing
    # _after_load skipped the class's own checks.
    path = _rewrite(files["kde"], tmp_path / "attribute.mixtorch", _attributes(**{name: value}))
    _refused(path, f"{name!r} is not a fitted attribute of GaussianKDE")


def test_a_regressor_file_cannot_switch_off_its_own_checks(tmp_path, files):
    edit = _attributes(_single_target="yes", _after_load=0)
    _refused(_rewrite(files["reg"], tmp_path / "hook.mixtorch", edit), "'_after_load'")


@pytest.mark.parametrize(
    ("edit", "fragment"),
    [
        (lambda d: d["params"].update(n_components=5), "n_components=2 but the"),
        (lambda d: d["params"].update(covariance_type="diag"), "covariance_type='full' but"),
        (
            lambda d: d["state"]["mixture_model_"]["params"].update(reg_covar=-1.0),
            "'reg_covar' parameter of GaussianMixture",
        ),
        (
            lambda d: d["state"]["mixture_model_"]["params"].update(init_sample_size=0),
            "'init_sample_size' parameter",
        ),
    ],
    ids=["n_components", "covariance_type", "inner-reg_covar", "inner-only"],
)
def test_a_wrapper_and_its_joint_mixture_agree(tmp_path, files, edit, fragment):
    _refused(_rewrite(files["reg"], tmp_path / "wrapper.mixtorch", edit), fragment)


def test_wrappers_whose_settings_changed_after_the_fit_still_load(tmp_path, X):
    # set_params after fit changes settings the joint mixture was fitted with (only
    # n_components and covariance_type shape it): such files loaded before and must
    regressor = GaussianMixtureRegressor(2, random_state=0).fit(X[:, :1], X[:, 1])
    imputer = GaussianMixtureImputer(2, random_state=0, sample_posterior=True).fit(X)
    for model in (
        regressor.set_params(chunk_size=4096),
        imputer.set_params(random_state=1, max_iter=5),
    ):
        path = mixtorch.save(model, tmp_path / f"{type(model).__name__}.mixtorch")
        assert mixtorch.load(path).get_params() == model.get_params()


# -- stored copies of the parameters ---------------------------------------------------
@pytest.mark.parametrize(
    ("model", "edit_tensors", "edit_document", "fragment"),
    [
        ("bgm", _scaled("attr.weights_", 2.0), None, "stored weights_ is not what"),
        ("bgm", _scaled("attr.covariances_", -1.0), None, "stored covariances_ is not"),
        ("bgm", _scaled("attr.degrees_of_freedom_", -1.0), None, "degrees_of_freedom_ is not"),
        ("bgm", _scaled("attr._posterior.mean_precision", -1.0), None, "mean precisions must"),
        (
            "bgm",
            _scaled("attr._posterior.weight_concentration.0", -1.0),
            None,
            "weight concentrations must",
        ),
        ("kde", _scaled("attr.weights_", 2.0), None, "stored weights_ does not match"),
        ("kde", _scaled("attr._weights", -1.0), None, "stored _weights does not match"),
        ("kde", _scaled("attr._data", math.inf), None, "stored _data does not match"),
        ("kde", _scaled("attr.bandwidth_", -1.0), None, "stored bandwidth_ does not match"),
        ("kde", None, _attributes(_log_normaliser=100.0), "kernel sums do not give"),
        ("kde", None, _attributes(n_samples_fit_=-1), "n_samples_fit_ is -1"),
        ("kde", None, _attributes(factor_="x"), "factor_ must be a positive number"),
    ],
    ids=["bgm-weights", "bgm-covariances", "bgm-dof", "bgm-posterior-precision"]
    + ["bgm-posterior-concentration", "kde-weights", "kde-own-weights", "kde-data"]
    + ["kde-bandwidth", "kde-normaliser", "kde-count", "kde-factor"],
)
def test_copies_that_contradict_the_mixture_are_refused(
    tmp_path, files, model, edit_tensors, edit_document, fragment
):
    # Each loaded before: public weights_ summing to two or negative variances next to
    # a valid mixture, or (for _log_normaliser) densities off by a constant factor.
    path = _rewrite(files[model], tmp_path / "copies.mixtorch", edit_document, edit_tensors)
    _refused(path, fragment)


def test_a_safetensors_header_claiming_a_huge_tensor_is_refused_without_reading_it(tmp_path, files):
    content = files["gm"].read_bytes()
    (length,) = struct.unpack("<Q", content[:8])
    header = json.loads(content[8 : 8 + length])
    header["mixture_.means"].update(shape=[10**6, 10**6], data_offsets=[0, 8 * 10**12])
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    path = tmp_path / "huge.mixtorch"
    path.write_bytes(struct.pack("<Q", len(encoded)) + encoded + content[8 + length :])
    _refused(path, "truncated or corrupted")


# -- where a model is written -------------------------------------------------------------
def test_odd_paths_are_refused_naming_what_to_do(tmp_path, X):
    model = GaussianMixture(2, random_state=0).fit(X)
    folder = str(tmp_path / "out") + os.sep  # Path() dropped the separator: a file "out"
    with pytest.raises(IsADirectoryError, match="names a folder .* give a file name"):
        mixtorch.save(model, folder)
    with pytest.raises(FileNotFoundError, match="path is empty"):  # was the current folder
        mixtorch.save(model, "")
    with pytest.raises(FileNotFoundError, match="path is empty"):
        mixtorch.load("")
    with pytest.raises(TypeError, match=r"got bytes; decode it first, e\.g\. os\.fsdecode"):
        mixtorch.save(model, os.fsencode(tmp_path / "m.mixtorch"))
    assert list(tmp_path.iterdir()) == []


def test_a_name_promising_another_format_warns_and_is_still_safetensors(tmp_path, X):
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.warns(UserWarning, match=r"model\.pkl: mixtorch\.save writes a safetensors"):
        path = mixtorch.save(model, tmp_path / "model.pkl")
    assert path.read_bytes()[8:9] == b"{"  # a safetensors header, not a pickle
    np.testing.assert_array_equal(mixtorch.load(path).score_samples(X), model.score_samples(X))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for name in ("m.mixtorch", "m.safetensors", "m"):
            mixtorch.save(model, tmp_path / name)


# -- data sources -------------------------------------------------------------------------
def test_big_endian_data_are_read_like_native_data(tmp_path, X):
    # torch refused them ("byte order different from the native byte order"), naming
    # neither the file nor what to do; NumPy and the in-memory fit read them.
    swapped = X.astype(">f8")
    np.save(tmp_path / "big.npy", swapped)
    np.save(tmp_path / "fortran.npy", np.asfortranarray(swapped))
    sources = [
        from_npy(tmp_path / "big.npy", chunk_size=7),
        from_npy(tmp_path / "big.npy", mmap=False),
        from_npy(tmp_path / "fortran.npy"),
        as_source(swapped, chunk_size=11),
        from_callable(lambda: [swapped[:30], swapped[30:]]),
    ]
    for source in sources:
        np.testing.assert_array_equal(torch.cat(list(source())).numpy(), X)


def test_a_damaged_parquet_shard_is_a_value_error_naming_it(tmp_path, X):
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1]}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").write_bytes(b"PAR1 not really parquet")
    with pytest.raises(ValueError, match=r"b\.parquet cannot be read as a Parquet file"):
        list(from_directory(tmp_path)())


@pytest.mark.parametrize("chunk_size", [0, -3, 2.5, 4.0, True, "8"])
def test_chunk_sizes_that_are_not_positive_integers_are_refused(tmp_path, X, chunk_size):
    np.save(tmp_path / "data.npy", X)
    for make in (as_source, from_directory):
        target = X if make is as_source else tmp_path
        with pytest.raises(
            ValueError, match=rf"chunk_size must be a positive integer, got {chunk_size!r}"
        ):
            make(target, chunk_size=chunk_size)


def test_a_generator_failing_half_way_raises_its_own_error_and_keeps_the_model(X):
    model = GaussianMixture(2, random_state=0).fit(X)
    before = model.score_samples(X)

    def chunks():
        yield X[:30]
        raise RuntimeError("the database went away")

    with pytest.raises(RuntimeError, match="the database went away"):
        model.fit(from_callable(chunks))
    np.testing.assert_array_equal(model.score_samples(X), before)


def test_a_parquet_shard_that_vanished_is_the_operating_system_error(tmp_path, X):
    # not reported as a damaged file: the file is gone, as for an .npy shard
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1]}), tmp_path / "a.parquet")
    source = from_directory(tmp_path)
    assert sum(len(chunk) for chunk in source()) == len(X)
    (tmp_path / "a.parquet").unlink()
    with pytest.raises(FileNotFoundError):
        list(source())


def test_loading_a_kde_keeps_no_scoring_kernel(tmp_path, X):
    # the load check sums the kernels itself: mixture.log_prob would cache the E-step
    # kernel on the loaded model (twice the data's memory)
    model = GaussianKDE().fit(X, sample_weight=np.arange(1.0, len(X) + 1))
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "kde.mixtorch"))
    assert "e_step_kernel" not in vars(loaded.mixture_)
    np.testing.assert_allclose(loaded.score_samples(X[:5]), model.score_samples(X[:5]), rtol=1e-12)


def test_a_folder_named_like_a_parquet_file_is_a_folder_error(tmp_path, X):
    # pyarrow says only OSError ("is a directory"), which read as a damaged file
    pq.write_table(pa.table({"a": X[:, 0], "b": X[:, 1]}), tmp_path / "a.parquet")
    (tmp_path / "b.parquet").mkdir()
    with pytest.raises(IsADirectoryError, match=r"b\.parquet is a folder, not a Parquet file"):
        list(from_directory(tmp_path)())

"""Saving and loading GaussianMixtureRegressor and GaussianMixtureImputer (safetensors +
JSON, classes from the registry, never pickle), and ``mixtorch info`` on them."""

from __future__ import annotations

import json
import struct

import numpy as np
import pandas as pd
import pytest
import torch

import mixtorch
from mixtorch import GaussianMixtureImputer, GaussianMixtureRegressor
from mixtorch._model_file import file_digest
from mixtorch.cli import main


def _regression_data(targets: int = 1) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    X = rng.uniform(-3, 3, size=(400, 2))
    y = np.stack([np.sin(X[:, 0]) + 0.1 * rng.normal(size=400) for _ in range(targets)], 1)
    y[:, -1] += np.where(X[:, 1] > 0, 2.0, -2.0)  # two branches: a multi-modal target
    return X, (y[:, 0] if targets == 1 else y)


def _imputation_data() -> np.ndarray:
    rng = np.random.default_rng(1)
    X = np.concatenate([rng.normal(0, 1, (200, 3)), rng.normal(4, 0.5, (200, 3))])
    X[rng.random(X.shape) < 0.2] = np.nan
    return X


def _document(path) -> dict:
    content = path.read_bytes()
    (length,) = struct.unpack("<Q", content[:8])
    return json.loads(json.loads(content[8 : 8 + length])["__metadata__"]["mixtorch"])


def _rewrite_document(source, target, document: dict) -> None:
    """A copy of a safetensors file with its mixtorch JSON document replaced (and the
    digest redone, so that only the validation under test can catch the edit)."""
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    document = {**document, "sha256": file_digest(tensors, document)}
    content = source.read_bytes()
    (length,) = struct.unpack("<Q", content[:8])
    header = json.loads(content[8 : 8 + length])
    header["__metadata__"]["mixtorch"] = json.dumps(document)
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)
    target.write_bytes(struct.pack("<Q", len(encoded)) + encoded + content[8 + length :])


@pytest.mark.parametrize("targets", [1, 2])
@pytest.mark.parametrize("kind", ["full", "diag"])
def test_a_loaded_regressor_predicts_and_samples_exactly_as_saved(tmp_path, targets, kind):
    X, y = _regression_data(targets)
    model = GaussianMixtureRegressor(4, covariance_type=kind, random_state=0).fit(X, y)
    path = mixtorch.save(model, tmp_path / "regressor.mixtorch")
    loaded = mixtorch.load(path)
    assert type(loaded) is GaussianMixtureRegressor
    assert loaded.get_params() == model.get_params()
    assert (loaded.n_features_in_, loaded.n_targets_) == (2, targets)
    np.testing.assert_array_equal(loaded.predict(X), model.predict(X))
    assert loaded.predict(X).shape == y.shape
    if targets == 1:
        for ours, theirs in zip(loaded.predict(X, True), model.predict(X, True), strict=True):
            np.testing.assert_array_equal(ours, theirs)
    np.testing.assert_array_equal(
        loaded.sample_y(X[:5], 3, random_state=7), model.sample_y(X[:5], 3, random_state=7)
    )
    assert loaded.score(X, y) == model.score(X, y)
    document = _document(path)
    assert document["class"] == "mixtorch.regression:GaussianMixtureRegressor"


def test_a_regressor_fitted_on_tensors_hands_back_tensors_after_loading(tmp_path):
    X, y = _regression_data()
    model = GaussianMixtureRegressor(3, random_state=0, dtype="float32")
    model.fit(torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y, dtype=torch.float32))
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "t.mixtorch"))
    rows = torch.as_tensor(X[:10], dtype=torch.float32)
    prediction = loaded.predict(rows)
    assert isinstance(prediction, torch.Tensor) and prediction.dtype == torch.float32
    torch.testing.assert_close(prediction, model.predict(rows), rtol=0, atol=0)


def test_a_regressor_keeps_its_feature_names(tmp_path):
    X, y = _regression_data()
    frame = pd.DataFrame(X, columns=["dose", "age"])
    model = GaussianMixtureRegressor(3, random_state=0).fit(frame, y)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "named.mixtorch"))
    assert list(loaded.feature_names_in_) == ["dose", "age"]
    np.testing.assert_array_equal(loaded.predict(frame), model.predict(frame))


@pytest.mark.parametrize("sample_posterior", [False, True])
def test_a_loaded_imputer_fills_exactly_as_saved(tmp_path, sample_posterior):
    X = _imputation_data()
    model = GaussianMixtureImputer(
        2, sample_posterior=sample_posterior, random_state=3, max_iter=200
    ).fit(X)
    path = mixtorch.save(model, tmp_path / "imputer.mixtorch")
    loaded = mixtorch.load(path)
    assert type(loaded) is GaussianMixtureImputer
    assert loaded.get_params() == model.get_params()
    filled = loaded.transform(X)
    np.testing.assert_array_equal(filled, model.transform(X))
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~np.isnan(X)], X[~np.isnan(X)])
    assert loaded.n_iter_ == model.n_iter_
    assert _document(path)["class"] == "mixtorch.impute:GaussianMixtureImputer"


def test_an_inconsistent_regressor_file_is_refused(tmp_path):
    X, y = _regression_data()
    model = GaussianMixtureRegressor(2, random_state=0).fit(X, y)
    path = mixtorch.save(model, tmp_path / "r.mixtorch")
    document = _document(path)
    attributes = document["state"]["attributes"]
    attributes["n_targets_"] = 2  # the joint mixture has 3 columns
    attributes["_single_target"] = False  # else refused first for contradicting n_targets_
    forged = tmp_path / "forged.mixtorch"
    _rewrite_document(path, forged, document)
    with pytest.raises(ValueError, match="forged.mixtorch.*3 features but the model expects 4"):
        mixtorch.load(forged)


def test_info_describes_a_regressor_and_an_imputer(tmp_path, capsys):
    X, y = _regression_data()
    regressor = GaussianMixtureRegressor(3, covariance_type="diag", random_state=0).fit(X, y)
    imputer = GaussianMixtureImputer(2, random_state=0).fit(_imputation_data())
    for model, n_features in ((regressor, 2), (imputer, 3)):
        path = mixtorch.save(model, tmp_path / f"{type(model).__name__}.mixtorch")
        assert main(["info", str(path), "--format", "json"]) == 0
        record = json.loads(capsys.readouterr().out)
        assert record["class"] == type(model).__name__
        assert record["n_features_in"] == n_features
        inner = model.mixture_model_
        assert record["fitted_n_components"] == inner.n_components
        assert record["fitted_covariance_type"] == inner.covariance_type
        assert record["fit"]["n_iter"] == model.n_iter_
        assert record["fit"]["lower_bound"] == pytest.approx(inner.lower_bound_)
        assert main(["info", str(path)]) == 0
        text = capsys.readouterr().out
        assert f"class: {type(model).__name__}" in text
    assert record.get("n_targets") is None  # the imputer has no targets
    assert main(["info", str(tmp_path / "GaussianMixtureRegressor.mixtorch")]) == 0
    assert "n_targets: 1" in capsys.readouterr().out

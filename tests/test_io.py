"""Model files: round trips give identical results; bad files give clear errors."""

from __future__ import annotations

import json
import struct
import warnings

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from safetensors.torch import save_file
from sklearn.base import BaseEstimator
from sklearn.exceptions import ConvergenceWarning

import mixtorch
from conftest import make_separated_blocks
from mixtorch import Gaussian, GaussianKDE, GaussianMixture, Mixture
from mixtorch.io import FORMAT_VERSION, register_estimator


@pytest.fixture(scope="module")
def data() -> np.ndarray:
    centres = [[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 1.0]]
    return make_separated_blocks(centres, 80, seed=0)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_round_trip_numpy(tmp_path, data, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(data)
    path = mixtorch.save(model, tmp_path / "model.mixtorch")
    loaded = mixtorch.load(path)
    assert type(loaded) is GaussianMixture
    assert loaded.get_params() == model.get_params()
    np.testing.assert_array_equal(loaded.score_samples(data), model.score_samples(data))
    np.testing.assert_array_equal(loaded.predict_proba(data), model.predict_proba(data))
    np.testing.assert_array_equal(loaded.predict(data), model.predict(data))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
        assert isinstance(getattr(loaded, name), np.ndarray)
    assert loaded.converged_ == model.converged_
    assert loaded.n_iter_ == model.n_iter_
    assert loaded.lower_bound_ == model.lower_bound_
    assert loaded.lower_bounds_ == model.lower_bounds_
    assert loaded.n_features_in_ == 3
    # Same seed, same samples: the sampler state is rebuilt from random_state.
    np.testing.assert_array_equal(loaded.sample(5)[0], model.sample(5)[0])


def test_round_trip_torch_float32(tmp_path, data):
    X = torch.as_tensor(data, dtype=torch.float32)
    model = GaussianMixture(2, covariance_type="full", random_state=1).fit(X)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "m.safetensors"))
    assert isinstance(loaded.means_, torch.Tensor)
    assert loaded.mixture_.dtype == torch.float32
    assert torch.equal(loaded.score_samples(X), model.score_samples(X))
    assert loaded.score(X) == model.score(X)


def test_round_trip_gaussian(tmp_path, data):
    model = Gaussian(covariance_type="diag").fit(data)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "g.mixtorch"))
    assert type(loaded) is Gaussian
    np.testing.assert_array_equal(loaded.covariance_, model.covariance_)
    np.testing.assert_array_equal(loaded.score_samples(data), model.score_samples(data))
    # and against the closed form: the mean and biased variance of the data
    np.testing.assert_allclose(loaded.mean_, data.mean(0))
    np.testing.assert_allclose(loaded.covariance_, data.var(0))


def test_from_parameters_model_and_feature_names(tmp_path):
    model = GaussianMixture.from_parameters([0.3, 0.7], [[0.0], [2.0]], [1.0, 0.5], "spherical")
    assert model.lower_bound_ == -np.inf
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "p.mixtorch"))
    assert loaded.lower_bound_ == -np.inf
    grid = np.linspace(-3, 5, 7)[:, None]
    np.testing.assert_array_equal(loaded.score_samples(grid), model.score_samples(grid))


def test_feature_names_survive(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    # What scikit-learn's validation stores after fitting a data frame with named columns.
    model.feature_names_in_ = np.array(["a", "b", "c"], dtype=object)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "f.mixtorch"))
    assert list(loaded.feature_names_in_) == ["a", "b", "c"]


def test_non_json_params_are_dropped_with_a_note(tmp_path, data):
    model = GaussianMixture(2, random_state=np.random.RandomState(3)).fit(data)
    path = mixtorch.save(model, tmp_path / "r.mixtorch")
    loaded = mixtorch.load(path)
    assert loaded.random_state is None
    document = json.loads(_header(path)["__metadata__"]["mixtorch"])
    assert document["dropped_params"] == ["params.random_state"]
    assert document["format_version"] == FORMAT_VERSION
    assert document["class"] == "mixtorch.gaussian_mixture:GaussianMixture"
    np.testing.assert_array_equal(loaded.score_samples(data), model.score_samples(data))


def test_load_onto_device_argument(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(torch.as_tensor(data))
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "d.mixtorch"), device="cpu")
    assert loaded.mixture_.device.type == "cpu"
    assert loaded.means_.device.type == "cpu"


@pytest.mark.parametrize(
    "make",
    [
        lambda: mixtorch.GaussianKDE(),
        lambda: mixtorch.GaussianKDE(bandwidth="loo"),
        lambda: mixtorch.BayesianGaussianMixture(n_components=3, random_state=0),
    ],
    ids=["kde-scott", "kde-loo", "bayes"],
)
@pytest.mark.parametrize("as_tensor", [False, True], ids=["numpy", "torch"])
def test_round_trip_other_estimators(tmp_path, data, make, as_tensor):
    X = torch.as_tensor(data[::4]) if as_tensor else data[::4]  # small: the LOO search is slow
    model = make().fit(X)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "other.mixtorch"))
    assert type(loaded) is type(model)
    assert loaded.get_params() == model.get_params()
    before, after = model.score_samples(X), loaded.score_samples(X)
    assert isinstance(after, type(before))
    np.testing.assert_array_equal(np.asarray(after), np.asarray(before))


# -- the generic format for estimators that plug in -----------------------------------
class _Toy(BaseEstimator):
    """A stand-in for estimators written elsewhere (KDE, Bayesian mixtures)."""

    def __init__(self, bandwidth=1.0, dtype=torch.float64, factors=(0.5, 1.0)):
        self.bandwidth = bandwidth
        self.dtype = dtype
        self.factors = factors

    def fit(self, X):
        X = torch.as_tensor(X)
        self.points_ = X.clone()
        self.weights_ = np.full(X.shape[0], 1.0 / X.shape[0])
        self.mixture_ = Mixture.from_parameters(
            self.weights_, X, torch.full((X.shape[0],), self.bandwidth), "spherical"
        )
        self.curve_ = {"factors": [0.5, 1.0], "values": torch.tensor([-3.0, -2.5])}
        self.n_iter_ = 4
        self.best_ = float("nan")
        self.n_features_in_ = X.shape[1]
        self._hook_ran = False
        return self

    def _after_load(self):
        self._hook_ran = True


def test_generic_round_trip_for_registered_classes(tmp_path, data):
    register_estimator(_Toy)
    toy = _Toy(bandwidth=0.7, dtype=torch.float32).fit(data[:20])
    loaded = mixtorch.load(mixtorch.save(toy, tmp_path / "toy.mixtorch"))
    assert type(loaded) is _Toy
    assert loaded.dtype is torch.float32
    assert loaded.factors == (0.5, 1.0)
    assert torch.equal(loaded.points_, toy.points_)
    assert isinstance(loaded.weights_, np.ndarray)
    np.testing.assert_array_equal(loaded.weights_, toy.weights_)
    assert torch.equal(loaded.curve_["values"], toy.curve_["values"])
    assert loaded.curve_["factors"] == [0.5, 1.0]
    assert loaded.n_iter_ == 4 and np.isnan(loaded.best_)
    assert loaded._hook_ran is True
    query = torch.as_tensor(data[20:30])
    assert torch.equal(loaded.mixture_.log_prob(query), toy.mixture_.log_prob(query))


def test_unregistered_foreign_class_is_refused(tmp_path, data):
    class Stranger(_Toy):
        pass

    # save refuses what load could not read back ...
    with pytest.raises(TypeError, match=r"cannot save a .*Stranger: load\(\) reads"):
        mixtorch.save(Stranger().fit(data[:5]), tmp_path / "s.mixtorch")
    assert not (tmp_path / "s.mixtorch").exists()
    # ... and load refuses a file that names such a class (written some other way).
    path = mixtorch.save(_Toy().fit(data[:5]), tmp_path / "toy.mixtorch")
    forged = tmp_path / "s.mixtorch"
    _rewrite(path, forged, lambda document: document.update({"class": "elsewhere:Stranger"}))
    with pytest.raises(ValueError, match="not a mixtorch estimator"):
        mixtorch.load(forged)


def test_unsaveable_attribute_is_named(tmp_path, data):
    toy = _Toy().fit(data[:5])
    toy.handle_ = object()
    with pytest.raises(TypeError, match="handle_"):
        mixtorch.save(toy, tmp_path / "bad.mixtorch")


def test_unfitted_model_cannot_be_saved(tmp_path):
    with pytest.raises(ValueError, match="not fitted"):
        mixtorch.save(GaussianMixture(2), tmp_path / "u.mixtorch")


# -- bad files -----------------------------------------------------------------------
@pytest.fixture
def saved(tmp_path, data):
    return mixtorch.save(GaussianMixture(2, random_state=0).fit(data), tmp_path / "ok.mixtorch")


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="absent.mixtorch"):
        mixtorch.load(tmp_path / "absent.mixtorch")


def _header(path) -> dict:
    content = path.read_bytes()
    (length,) = struct.unpack("<Q", content[:8])
    return json.loads(content[8 : 8 + length])


def test_saved_device_is_not_required_when_loading(tmp_path, data):
    """A file from a GPU machine names cuda:0; loading puts everything on the CPU."""
    model = GaussianMixture(2, random_state=0).fit(torch.as_tensor(data))
    path = mixtorch.save(model, tmp_path / "gpu.mixtorch")
    forged = tmp_path / "from_gpu.mixtorch"
    _rewrite(path, forged, lambda document: document["state"]["kind"].update(device="cuda:0"))
    loaded = mixtorch.load(forged)
    assert loaded.means_.device.type == "cpu"
    assert loaded.sample(3)[0].device.type == "cpu"


@settings(max_examples=15, deadline=None)
@given(
    n_components=st.integers(1, 4),
    n_features=st.integers(1, 3),
    covariance_type=st.sampled_from(["full", "tied", "diag", "spherical"]),
    float32=st.booleans(),
    seed=st.integers(0, 2**16),
)
def test_round_trip_property(
    tmp_path_factory, n_components, n_features, covariance_type, float32, seed
):
    """Any valid mixture survives a round trip bit for bit."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(n_components))
    means = rng.normal(size=(n_components, n_features)) * 5
    factors = rng.normal(size=(n_components, n_features, n_features))
    full = factors @ factors.transpose(0, 2, 1) + np.eye(n_features)
    covariances = {
        "full": full,
        "tied": full[0],
        "diag": np.einsum("kii->ki", full),
        "spherical": np.einsum("kii->k", full) / n_features,
    }[covariance_type]
    dtype = torch.float32 if float32 else torch.float64
    model = GaussianMixture.from_parameters(
        torch.as_tensor(weights, dtype=dtype),
        torch.as_tensor(means, dtype=dtype),
        torch.as_tensor(covariances, dtype=dtype),
        covariance_type=covariance_type,
    )
    path = tmp_path_factory.mktemp("prop") / "m.mixtorch"
    loaded = mixtorch.load(mixtorch.save(model, path))
    X = torch.as_tensor(rng.normal(size=(20, n_features)) * 4, dtype=dtype)
    assert loaded.mixture_.dtype == dtype
    assert torch.equal(loaded.score_samples(X), model.score_samples(X))
    assert torch.equal(loaded.predict_proba(X), model.predict_proba(X))


# -- hostile and corrupt files (issue 13) ---------------------------------------------
def _document(path) -> dict:
    return json.loads(_header(path)["__metadata__"]["mixtorch"])


def _rewrite(source, target, edit_document=None, edit_tensors=None) -> None:
    """Copy a model file with its document and/or tensors edited and the digest redone,
    so that only the validation under test can catch the edit."""
    from safetensors import safe_open

    from mixtorch._model_file import file_digest

    with safe_open(str(source), framework="pt") as handle:
        tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    document = _document(source)
    if edit_document is not None:
        edit_document(document)
    if edit_tensors is not None:
        edit_tensors(tensors)
    document["sha256"] = file_digest(tensors, document)
    save_file(tensors, str(target), metadata={"mixtorch": json.dumps(document)})


@pytest.mark.parametrize(
    "tag",
    [
        "mixtorch.__main__:main",  # importing it would run the command line
        "mixtorch.cli:main",
        "mixtorch.mixture:Mixture",
        "mixtorch.io:save",
        "os:system",
    ],
)
def test_class_tags_are_looked_up_never_imported(tmp_path, saved, monkeypatch, tag):
    import sys

    monkeypatch.delitem(sys.modules, "mixtorch.__main__", raising=False)
    monkeypatch.setattr(sys, "argv", ["mixtorch", "fit", str(saved)])
    forged = tmp_path / "forged.mixtorch"
    _rewrite(saved, forged, lambda document: document.update({"class": tag}))
    with pytest.raises(ValueError, match=r"forged\.mixtorch.*(not a mixtorch|not one of)"):
        mixtorch.load(forged)
    assert "mixtorch.__main__" not in sys.modules


def test_moved_builtin_class_still_resolves_by_name(tmp_path, saved, data):
    """The registry goes by class name, so a class moved between mixtorch modules loads."""
    moved = tmp_path / "moved.mixtorch"
    tag = "mixtorch.somewhere_else:GaussianMixture"
    _rewrite(saved, moved, lambda document: document.update({"class": tag}))
    loaded = mixtorch.load(moved)
    np.testing.assert_array_equal(
        loaded.score_samples(data), mixtorch.load(saved).score_samples(data)
    )


def test_dtype_and_value_type_tags_come_from_allow_lists(tmp_path, data):
    register_estimator(_Toy)
    path = mixtorch.save(_Toy(dtype=torch.float32).fit(data[:10]), tmp_path / "toy.mixtorch")
    for bad in ("Tensor", "load", "__class__"):
        forged = tmp_path / f"dtype_{bad}.mixtorch"
        _rewrite(path, forged, lambda d, bad=bad: d["params"].update(dtype={"__dtype__": bad}))
        with pytest.raises(ValueError, match=rf"dtype_{bad}\.mixtorch.*unknown dtype"):
            mixtorch.load(forged)
    forged = tmp_path / "dataclass.mixtorch"
    payload = {"__dataclass__": ["mixtorch.demo:DemoResult", {}]}
    _rewrite(path, forged, lambda d: d["state"]["attributes"].update(curve_=payload))
    with pytest.raises(ValueError, match=r"dataclass\.mixtorch.*not one of mixtorch's value"):
        mixtorch.load(forged)


def _set(name, value):
    def edit(tensors):
        tensors[name] = torch.as_tensor(value, dtype=tensors[name].dtype)

    return edit


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (_set("mixture_.weights", [np.nan, 1.0]), "weights' holds NaN"),
        (_set("mixture_.weights", [np.inf, 1.0]), "weights must be finite"),
        (_set("mixture_.weights", [-0.5, 1.5]), "non-negative"),
        (_set("mixture_.weights", [0.5, 0.6]), "sum to 1"),
        (_set("mixture_.means", [[np.inf, 0, 0], [1, 1, 1]]), "means are not finite"),
        (_set("mixture_.covariances", -np.eye(3)[None].repeat(2, 0)), "not positive definite"),
        (_set("mixture_.covariances", np.ones((2, 3, 3))), "not positive definite"),
        (_set("mixture_.covariances", np.eye(2)[None].repeat(2, 0)), "shape"),
        (_set("mixture_.weights", [0.2, 0.3, 0.5]), "shape"),
    ],
    ids=["nan-weight", "inf-weight", "negative", "sum", "inf-mean", "negative-def", "singular"]
    + ["dims", "k"],
)
def test_invalid_parameters_are_refused(tmp_path, saved, edit, message):
    bad = tmp_path / "bad.mixtorch"
    _rewrite(saved, bad, edit_tensors=edit)
    with pytest.raises(ValueError, match=rf"bad\.mixtorch.*{message}"):
        mixtorch.load(bad)


@pytest.mark.parametrize(
    ("params", "message"),
    [({"reg_covar": -1.0}, "'reg_covar' parameter"), ({"tol": "small"}, "'tol' parameter")],
)
def test_hyper_parameters_outside_their_constraints_are_refused(tmp_path, saved, params, message):
    bad = tmp_path / "bad.mixtorch"
    _rewrite(saved, bad, lambda document: document["params"].update(params))
    with pytest.raises(ValueError, match=rf"bad\.mixtorch: cannot rebuild .*{message}"):
        mixtorch.load(bad)


def test_shapes_must_agree_with_the_hyper_parameters(tmp_path, saved):
    cases = {
        "k": lambda d: d["params"].update(n_components=3),
        "kind": lambda d: d["params"].update(covariance_type="diag"),
        "names": lambda d: d["state"].update(feature_names_in_={"__strings__": ["a", "b"]}),
    }
    for name, edit in cases.items():
        bad = tmp_path / f"{name}.mixtorch"
        _rewrite(saved, bad, edit)
        with pytest.raises(ValueError, match=rf"{name}\.mixtorch.*(components|covariance|names)"):
            mixtorch.load(bad)


@pytest.mark.parametrize(
    "edit",
    [
        lambda d: d.update(state={}),
        lambda d: d["state"].update(mixture_={"__mixture__": {"weights": "nope"}}),
        lambda d: d["state"].update(mixture_=[1, 2]),
        lambda d: d["state"].update(mixture_={"__covariance__": ["full"]}),
        lambda d: d.update(params=[1, 2]),
        lambda d: d.update(params={"n_components": {"__tuple__": 5}}),
        lambda d: d.pop("class"),
        lambda d: d.update(state=None),
        lambda d: d["state"].update(kind=3),
    ],
)
def test_corrupt_metadata_is_a_value_error_naming_the_file(tmp_path, saved, edit):
    bad = tmp_path / "meta.mixtorch"
    _rewrite(saved, bad, edit)
    with pytest.raises(ValueError, match=r"meta\.mixtorch"):
        mixtorch.load(bad)


def test_data_frame_column_names_survive_a_round_trip(tmp_path, data):
    import pandas as pd

    frame = pd.DataFrame(data, columns=["height", "width", "depth"])
    for model in (GaussianMixture(2, random_state=0), Gaussian(), mixtorch.GaussianKDE()):
        model.fit(frame)
        loaded = mixtorch.load(mixtorch.save(model, tmp_path / "frame.mixtorch"))
        assert list(loaded.feature_names_in_) == ["height", "width", "depth"]
        np.testing.assert_array_equal(loaded.score_samples(frame), model.score_samples(frame))


@pytest.mark.parametrize("key_prefix", ["attr._data", "attr._groups", "attr._weights"])
def test_corrupt_kde_state_beyond_the_mixture_is_refused(tmp_path, data, key_prefix):
    model = mixtorch.GaussianKDE().fit(data)
    path = mixtorch.save(model, tmp_path / "kde.mixtorch")

    def poison(tensors):
        hit = [key for key in tensors if key.startswith(key_prefix)]
        assert hit, sorted(tensors)
        for key in hit:
            tensors[key] = torch.full_like(tensors[key], float("nan"))

    bad = tmp_path / "bad.mixtorch"
    _rewrite(path, bad, edit_tensors=poison)
    with pytest.raises(ValueError, match=r"bad\.mixtorch"):
        mixtorch.load(bad)


def test_parameters_save_could_not_write_come_back_as_none_and_load(tmp_path, data):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        cases = [
            GaussianKDE(bandwidth=lambda kde: 0.5).fit(data),
            GaussianMixture(2, algorithm="gradient", optimizer=torch.optim.SGD, max_iter=3).fit(
                data
            ),
        ]
    for model in cases:
        path = mixtorch.save(model, tmp_path / "m.mixtorch")
        loaded = mixtorch.load(path)
        np.testing.assert_allclose(loaded.score_samples(data), model.score_samples(data))
    # A set of names is written as a list (it was dropped to None).
    fixed = GaussianMixture(
        2, fixed={"weights"}, weights_init=[0.5, 0.5], random_state=0, max_iter=5
    ).fit(data)
    loaded = mixtorch.load(mixtorch.save(fixed, tmp_path / "fixed.mixtorch"))
    assert list(loaded.fixed) == ["weights"]

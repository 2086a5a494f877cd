"""The model-file codec (mixtorch._codec): every value type through the JSON-plus-tensors
encoding and back, what is refused, and the allow-lists that decoding looks names up in.
The file around the encoding is tested in test_model_file.py."""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass

import numpy as np
import pytest
import torch

from mixtorch._codec import (
    DTYPES,
    VALUE_TYPES,
    Writer,
    decode,
    decode_kind,
    encode,
    encode_kind,
    tensor_digest,
)
from mixtorch._model_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    read_model_file,
    write_model_file,
)
from mixtorch._validation import OutputKind
from mixtorch.covariance import covariance_class
from mixtorch.fit.em import EMTrace
from mixtorch.fit.variational import VariationalPrior, VariationalTrace
from mixtorch.mixture import Mixture

KINDS = ["full", "tied", "diag", "spherical"]


def round_trip(value, strict: bool = True):
    """``value`` encoded, passed through JSON text, and decoded; plus the writer."""
    writer = Writer({}, [])
    tree = json.loads(json.dumps(encode(value, "value", writer, strict)))
    return decode(tree, writer.tensors), writer


def through_file(value, path):
    """``value`` written to a model file at ``path`` and read back."""
    writer = Writer({}, [])
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "params": {},
        "state": {"value": encode(value, "value", writer, True)},
    }
    write_model_file(writer.tensors, document, path)
    document, tensors = read_model_file(path)
    return decode(document["state"]["value"], tensors)


# -- round trips of every value type -----------------------------------------------------
@pytest.mark.parametrize(
    "value",
    [None, True, False, "text", "", 0, -7, 2**53 + 1, 1.5, -0.0, 1e-308, "ünïcödé"],
    ids=repr,
)
def test_json_values_round_trip_as_themselves(value):
    again, writer = round_trip(value)
    assert again == value and type(again) is type(value)
    assert writer.tensors == {}


@pytest.mark.parametrize("value", [math.inf, -math.inf])
def test_infinite_floats_round_trip(value):
    again, _ = round_trip(value)
    assert again == value


def test_nan_float_round_trips():
    again, _ = round_trip(math.nan)
    assert isinstance(again, float) and math.isnan(again)


def test_numpy_scalars_become_python_numbers():
    values = {"i": np.int64(5), "b": np.bool_(True), "f": np.float32(0.25), "u": np.uint8(3)}
    again, _ = round_trip(values)
    assert again == {"i": 5, "b": True, "f": 0.25, "u": 3}
    assert [type(again[k]) for k in "ibfu"] == [int, bool, float, int]


@pytest.mark.parametrize("dtype", list(DTYPES.values()), ids=str)
def test_every_allowed_dtype_round_trips_as_a_value(dtype):
    assert round_trip(dtype)[0] is dtype


# safetensors (0.8) has no complex128 type, so a complex128 tensor cannot be stored.
@pytest.mark.parametrize(
    "dtype", [dtype for dtype in DTYPES.values() if dtype != torch.complex128], ids=str
)
def test_tensors_of_every_storable_dtype_round_trip_through_a_file(dtype, tmp_path):
    tensor = torch.arange(6).reshape(2, 3).to(dtype)
    again = through_file({"t": tensor}, tmp_path / "t.mixtorch")["t"]
    assert again.dtype == dtype and again.shape == (2, 3)
    assert torch.equal(again, tensor)


def test_devices_round_trip():
    assert round_trip(torch.device("cpu"))[0] == torch.device("cpu")
    assert round_trip(torch.device("cuda", 1))[0] == torch.device("cuda:1")


def test_numeric_and_string_arrays_round_trip(tmp_path):
    numbers = np.arange(12, dtype=np.float32).reshape(3, 4)[:, ::2]  # not contiguous
    names = np.array(["a", "b c", "ü"], dtype=object)
    again = through_file({"numbers": numbers, "names": names}, tmp_path / "a.mixtorch")
    assert isinstance(again["numbers"], np.ndarray) and again["numbers"].dtype == np.float32
    np.testing.assert_array_equal(again["numbers"], numbers)
    assert again["names"].dtype == object and list(again["names"]) == ["a", "b c", "ü"]
    fixed_width = round_trip(np.array(["x", "yz"]))[0]
    assert list(fixed_width) == ["x", "yz"]


def test_containers_keep_their_types_and_nesting():
    value = {"list": [1, (2.0, "three"), [None]], "tuple": (math.inf, {"deep": (1,)})}
    again, _ = round_trip(value)
    assert again == value
    assert isinstance(again["list"][1], tuple) and isinstance(again["tuple"][1]["deep"], tuple)


def test_tensors_are_stored_by_key_detached_and_on_the_cpu():
    parameter = torch.nn.Parameter(torch.ones(2, 2))
    writer = Writer({}, [])
    tree = encode({"w": parameter, "nested": [torch.zeros(3)]}, "state", writer, True)
    assert tree == {"w": {"__tensor__": "state.w"}, "nested": [{"__tensor__": "state.nested.0"}]}
    assert not writer.tensors["state.w"].requires_grad
    assert writer.tensors["state.w"].device.type == "cpu"


@pytest.mark.parametrize("kind", KINDS)
def test_mixtures_and_covariances_round_trip(kind, tmp_path):
    rng = np.random.default_rng(0)
    covariances = covariance_class(kind).identity_values(3, 2, torch.float64, "cpu") * 1.5
    mixture = Mixture.from_parameters(
        rng.dirichlet(np.ones(3)), rng.normal(size=(3, 2)), covariances.numpy(), kind
    )
    again = through_file({"m": mixture, "c": mixture.covariance}, tmp_path / "m.mixtorch")
    assert again["m"].covariance_type == kind and type(again["c"]) is type(mixture.covariance)
    for name in ("weights", "means"):
        assert torch.equal(getattr(again["m"], name), getattr(mixture, name))
    assert torch.equal(again["m"].covariance.covariances, mixture.covariance.covariances)
    assert torch.equal(again["c"].covariances, mixture.covariance.covariances)
    assert again["c"].n_features == 2


def test_value_dataclasses_round_trip(tmp_path):
    trace = EMTrace([-3.0, -2.5, -2.25], n_iter=3, converged=True, reseeded=1, seconds=0.5)
    prior = VariationalPrior(
        weight_concentration=0.5,
        process=True,
        mean_precision=1.0,
        mean=torch.tensor([0.0, 1.0], dtype=torch.float64),
        degrees_of_freedom=2.0,
        covariance=torch.eye(2, dtype=torch.float64),
    )
    empty = VariationalTrace()
    again = through_file({"trace": trace, "prior": prior, "empty": empty}, tmp_path / "d.mixtorch")
    assert again["trace"] == trace
    assert again["empty"] == empty and again["empty"].lower_bound == -math.inf
    assert type(again["prior"]) is VariationalPrior
    assert torch.equal(again["prior"].covariance, prior.covariance)
    assert (again["prior"].process, again["prior"].degrees_of_freedom) == (True, 2.0)


def test_output_kind_comes_back_on_the_loading_device():
    assert decode_kind(round_trip(OutputKind(False))[0], None) == OutputKind(False)
    saved_on_gpu = encode_kind(OutputKind(True, torch.device("cuda:0")))
    assert saved_on_gpu == {"is_tensor": True, "device": "cuda:0"}
    assert decode_kind(saved_on_gpu, None) == OutputKind(True, torch.device("cpu"))
    assert decode_kind(saved_on_gpu, "meta").device == torch.device("meta")


# -- what cannot be encoded ---------------------------------------------------------------
@dataclass
class _NotAValueType:
    x: int = 1


@pytest.mark.parametrize("value", [object(), np.random.RandomState(0), _NotAValueType(), {1: 2}])
def test_unknown_objects_are_refused_when_strict_and_dropped_otherwise(value):
    with pytest.raises(TypeError, match=r"Cannot save 'value\.inner'"):
        encode({"inner": value}, "value", Writer({}, []), True)
    writer = Writer({}, [])
    assert encode({"inner": value}, "value", writer, False) == {"inner": None}
    assert writer.dropped == ["value.inner"]


# -- allow-lists: decoding never imports or looks up what a file names ---------------------
@pytest.mark.parametrize("name", ["Tensor", "load", "__class__", "float128", "", 5, None])
def test_unknown_dtype_names_are_refused(name):
    with pytest.raises(ValueError, match="unknown dtype"):
        decode({"__dtype__": name}, {})


def test_allowed_dtypes_are_exactly_the_numeric_ones():
    assert set(DTYPES) == {
        "float16", "bfloat16", "float32", "float64", "complex64", "complex128",
        "int8", "int16", "int32", "int64", "uint8", "bool",
    }  # fmt: skip


@pytest.mark.parametrize(
    "name",
    [
        "mixtorch.demo:DemoResult",  # a mixtorch class that is not a value type
        "os:system",
        "builtins:EMTrace",  # a value type's name under a foreign module
        "mixtorch.fit.em:EMTrace.__init__",
    ],
)
def test_dataclass_tags_come_from_the_value_type_table(name):
    with pytest.raises(ValueError, match="not one of mixtorch's value types"):
        decode({"__dataclass__": [name, {}]}, {})


def test_value_types_resolve_by_name_wherever_the_class_now_lives():
    """Files name a dataclass by module and name; only the name is looked up, so a file
    written before a module was split still loads."""
    fields = {"lower_bounds": [-1.0], "n_iter": 4, "converged": True}
    written_before_a_split = ["mixtorch.fit.variational:VariationalTrace", fields]
    again = decode({"__dataclass__": written_before_a_split}, {})
    assert again == VariationalTrace([-1.0], n_iter=4, converged=True)
    assert VALUE_TYPES["VariationalTrace"] is VariationalTrace


def test_decoded_covariances_and_mixtures_are_validated():
    tensors = {
        "bad": torch.tensor([1.0, math.inf]),
        "ints": torch.tensor([1, 2]),
        "w": torch.tensor([0.7, 0.7], dtype=torch.float64),
        "m": torch.zeros(2, 1, dtype=torch.float64),
        "c": torch.ones(2, dtype=torch.float64),
    }
    with pytest.raises(ValueError, match="not finite"):
        decode({"__covariance__": ["diag", "bad", 2]}, tensors)
    with pytest.raises(ValueError, match="not finite floating-point"):
        decode({"__covariance__": ["spherical", "ints", 1]}, tensors)
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        decode({"__covariance__": ["banana", "c", 1]}, tensors)
    mixture = {"covariance_type": "spherical", "weights": "w", "means": "m", "covariances": "c"}
    with pytest.raises(ValueError, match="sum to 1"):
        decode({"__mixture__": mixture}, tensors)


# -- the digest of the tensors ---------------------------------------------------------
def test_tensor_digest_is_sha256_over_names_dtypes_shapes_and_bytes():
    tensors = {"b": torch.arange(3, dtype=torch.int64), "a": torch.eye(2, dtype=torch.float64)}
    expected = hashlib.sha256()
    for name in ("a", "b"):
        array = tensors[name].numpy()
        expected.update(f"{name}|{tensors[name].dtype}|{tuple(array.shape)}|".encode())
        expected.update(array.tobytes())
    assert tensor_digest(tensors) == expected.hexdigest()
    assert tensor_digest(dict(reversed(list(tensors.items())))) == expected.hexdigest()
    changed = [
        {**tensors, "a": torch.eye(2, dtype=torch.float32)},
        {**tensors, "a": torch.eye(2, dtype=torch.float64).reshape(1, 4)},
        {"c": tensors["b"], "a": tensors["a"]},
        {**tensors, "b": torch.tensor([0, 1, 3])},
    ]
    assert len({tensor_digest(t) for t in changed} | {expected.hexdigest()}) == 5

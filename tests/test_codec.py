"""The model-file codec: the JSON-plus-tensors encoding (mixtorch._codec) and the
safetensors file around it (mixtorch._model_file), value by value and byte by byte."""

from __future__ import annotations

import hashlib
import json
import math
import pickle
import struct
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import mixtorch
from conftest import make_separated_blocks
from mixtorch import GaussianMixture
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
    check_writable,
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


# -- the file: digest, header, corrupt and truncated bytes --------------------------------
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


def _header(path) -> tuple[int, dict]:
    content = path.read_bytes()
    (length,) = struct.unpack("<Q", content[:8])
    return length, json.loads(content[8 : 8 + length])


def _with_document(source, target, document) -> None:
    """Copy a model file with its JSON document replaced (tensors and digest kept)."""
    content = source.read_bytes()
    length, header = _header(source)
    header["__metadata__"]["mixtorch"] = (
        document if isinstance(document, str) else json.dumps(document)
    )
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # safetensors aligns the data to 8 bytes
    target.write_bytes(struct.pack("<Q", len(encoded)) + encoded + content[8 + length :])


@pytest.fixture
def small_file(tmp_path):
    path = tmp_path / "small.mixtorch"
    through_file({"x": torch.arange(4.0)}, path)
    return path


def _document_of(path) -> dict:
    return json.loads(_header(path)[1]["__metadata__"]["mixtorch"])


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda d: d.update(format="other"), "not a mixtorch model file"),
        (lambda d: d.update(format_version=True), "no valid format version"),
        (lambda d: d.update(format_version="2"), "no valid format version"),
        (lambda d: d.update(format_version=0), "unsupported or incomplete"),
        (lambda d: d.update(format_version=FORMAT_VERSION + 1), "newer than this mixtorch"),
        (lambda d: d.pop("state"), "unsupported or incomplete"),
        (lambda d: d.update(params=[1]), "parameters are not a mapping"),
        (lambda d: d.pop("sha256"), "no SHA-256 digest"),
        (lambda d: d.update(sha256="0" * 64), "corrupted"),
    ],
)
def test_bad_documents_are_value_errors_naming_the_file(tmp_path, small_file, edit, message):
    document = _document_of(small_file)
    edit(document)
    target = tmp_path / "edited.mixtorch"
    _with_document(small_file, target, document)
    with pytest.raises(ValueError, match=rf"edited\.mixtorch.*{message}|{message}.*edited"):
        read_model_file(target)


def test_metadata_that_is_not_json_is_refused(tmp_path, small_file):
    target = tmp_path / "garbled.mixtorch"
    _with_document(small_file, target, "{not json")
    with pytest.raises(ValueError, match=r"garbled\.mixtorch.*not valid JSON"):
        read_model_file(target)


def test_version_1_files_without_a_digest_are_read(tmp_path, small_file):
    document = _document_of(small_file)
    document.pop("sha256")
    document["format_version"] = 1
    target = tmp_path / "v1.mixtorch"
    _with_document(small_file, target, document)
    _, tensors = read_model_file(target)
    assert torch.equal(tensors["value.x"], torch.arange(4.0))


def test_nan_in_a_stored_tensor_is_refused(tmp_path):
    with pytest.raises(ValueError, match=r"nan\.mixtorch.*'value\.x' holds NaN"):
        through_file({"x": torch.tensor([1.0, math.nan])}, tmp_path / "nan.mixtorch")


def test_every_truncation_of_a_file_is_a_value_error_naming_it(tmp_path, small_file):
    content = small_file.read_bytes()
    for keep in sorted({0, 1, 7, 8, 9, 40, len(content) // 2, len(content) - 1}):
        cut = tmp_path / f"cut{keep}.mixtorch"
        cut.write_bytes(content[:keep])
        with pytest.raises(ValueError, match=rf"cut{keep}\.mixtorch"):
            read_model_file(cut)


def test_writing_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "m.mixtorch"
    through_file({"x": torch.zeros(2)}, path)
    again = through_file({"x": torch.ones(3)}, path)
    assert torch.equal(again["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.mixtorch"]


def test_unwritable_places_are_os_errors_naming_the_path(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        check_writable(tmp_path)
    missing = tmp_path / "no" / "m.mixtorch"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_writable(missing)
    assert check_writable(tmp_path / "fine.mixtorch") == tmp_path / "fine.mixtorch"


# -- whole model files through mixtorch.load (moved from test_io.py) ----------------------
@pytest.fixture(scope="module")
def data() -> np.ndarray:
    centres = [[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [-3.0, 4.0, 1.0]]
    return make_separated_blocks(centres, 80, seed=0)


@pytest.fixture
def saved(tmp_path, data):
    return mixtorch.save(GaussianMixture(2, random_state=0).fit(data), tmp_path / "ok.mixtorch")


def test_truncated_file(tmp_path, saved):
    content = saved.read_bytes()
    for keep in (4, 40, len(content) // 2, len(content) - 8):
        broken = tmp_path / f"cut{keep}.mixtorch"
        broken.write_bytes(content[:keep])
        with pytest.raises(ValueError, match=str(broken.name)):
            mixtorch.load(broken)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.mixtorch"
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    with pytest.raises(ValueError, match="noise.mixtorch"):
        mixtorch.load(path)


def test_safetensors_without_our_metadata(tmp_path):
    path = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(3)}, str(path), metadata={"author": "someone"})
    with pytest.raises(ValueError, match="not a mixtorch model file"):
        mixtorch.load(path)


def test_newer_format_version(tmp_path, saved):
    document = _document_of(saved)
    document["format_version"] = FORMAT_VERSION + 1
    path = tmp_path / "future.mixtorch"
    _with_document(saved, path, document)
    with pytest.raises(ValueError, match=r"future\.mixtorch.*newer"):
        mixtorch.load(path)


def test_metadata_not_json(tmp_path, saved):
    path = tmp_path / "garbled.mixtorch"
    _with_document(saved, path, "{not json")
    with pytest.raises(ValueError, match="garbled.mixtorch.*not valid JSON"):
        mixtorch.load(path)


def test_pickle_is_refused(tmp_path):
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0]}))
    with pytest.raises(ValueError, match=r"model\.pkl.*pickle"):
        mixtorch.load(path)
    torch_path = tmp_path / "model.pt"
    torch.save({"weights": torch.ones(2)}, torch_path)
    with pytest.raises(ValueError, match="pickle"):
        mixtorch.load(torch_path)


def test_flipped_byte_in_the_tensor_data_is_detected(tmp_path, saved, data):
    content = bytearray(saved.read_bytes())
    (length,) = struct.unpack("<Q", content[:8])
    for offset in (8 + length, len(content) - 1, 8 + length + (len(content) - 8 - length) // 2):
        flipped = bytearray(content)
        flipped[offset] ^= 0x01
        path = tmp_path / f"flip{offset}.mixtorch"
        path.write_bytes(bytes(flipped))
        with pytest.raises(ValueError, match=rf"flip{offset}\.mixtorch is corrupted.*SHA-256"):
            mixtorch.load(path)
    assert "sha256" in _document_of(saved)


def test_digestless_version_1_files_still_load(tmp_path, saved, data):
    document = _document_of(saved)
    document.pop("sha256")
    document["format_version"] = 1
    old = tmp_path / "v1.mixtorch"
    _with_document(saved, old, document)
    loaded = mixtorch.load(old)
    np.testing.assert_array_equal(
        loaded.score_samples(data), mixtorch.load(saved).score_samples(data)
    )


def test_save_errors_are_os_errors_naming_the_path(tmp_path, data):
    model = GaussianMixture(2, random_state=0).fit(data)
    for target in (tmp_path / "missing" / "m.mixtorch", tmp_path, "/proc/m.mixtorch"):
        with pytest.raises(OSError, match=str(target)):
            mixtorch.save(model, target)
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_header_length_starting_with_0x80_is_not_taken_for_a_pickle(tmp_path, data):
    """The first byte of a safetensors file is the header length's low byte: 0x80 happens."""
    model = GaussianMixture(2, random_state=0).fit(data)
    for pad in range(300):
        model.feature_names_in_ = np.array(["x" * pad, "b", "c"], dtype=object)
        path = mixtorch.save(model, tmp_path / "m.mixtorch")
        if path.read_bytes()[0] == 0x80:
            break
    assert path.read_bytes()[0] == 0x80
    assert list(mixtorch.load(path).feature_names_in_) == list(model.feature_names_in_)

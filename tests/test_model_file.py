"""The model file (mixtorch._model_file): a safetensors file whose metadata holds the JSON
document, checked byte by byte (digest, document, truncation, pickles) when read, written
atomically; and whole model files through ``mixtorch.load`` (moved from test_io.py)."""

from __future__ import annotations

import json
import math
import os
import pickle
import stat
import struct

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

import mixtorch
from conftest import make_separated_blocks
from mixtorch import GaussianMixture
from mixtorch._codec import tensor_digest
from mixtorch._model_file import (
    FORMAT_NAME,
    FORMAT_VERSION,
    check_writable,
    file_digest,
    read_model_file,
    write_model_file,
)


def write(path, tensors: dict[str, torch.Tensor]) -> None:
    """A minimal model file holding ``tensors`` (an empty state)."""
    document = {"format": FORMAT_NAME, "format_version": FORMAT_VERSION, "params": {}, "state": {}}
    write_model_file(tensors, document, path)


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
    write(path, {"x": torch.arange(4.0)})
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
    assert torch.equal(tensors["x"], torch.arange(4.0))


def test_an_edited_document_is_found_by_the_digest_and_version_2_files_still_load(
    tmp_path, small_file
):
    document = _document_of(small_file)
    document["params"] = {"reg_covar": -1.0}  # edited by hand, digest left as it was
    target = tmp_path / "edited.mixtorch"
    _with_document(small_file, target, document)
    with pytest.raises(
        ValueError, match=r"edited\.mixtorch is corrupted: its tensors or parameters"
    ):
        read_model_file(target)
    # A version 2 file: its digest covers the tensors only, so its document is not checked.
    document["format_version"] = 2
    document["sha256"] = tensor_digest({"x": torch.arange(4.0)})
    older = tmp_path / "v2.mixtorch"
    _with_document(small_file, older, document)
    loaded, tensors = read_model_file(older)
    assert loaded["params"] == {"reg_covar": -1.0} and torch.equal(tensors["x"], torch.arange(4.0))
    assert FORMAT_VERSION == 3


def test_the_digest_is_that_of_the_document_as_it_reads_back(tmp_path):
    # Integer keys (a registered class's own state) become strings in JSON; sorted before
    # writing they order as numbers, after reading as strings: the digest must not care.
    tensors = {"x": torch.arange(3.0)}
    document = {
        "format": FORMAT_NAME, "format_version": FORMAT_VERSION, "params": {},
        "state": {"table": {k: k * k for k in range(12)}},
    }  # fmt: skip
    assert file_digest(tensors, document) == file_digest(tensors, json.loads(json.dumps(document)))
    path = tmp_path / "int_keys.mixtorch"
    write_model_file(tensors, document, path)
    loaded, _ = read_model_file(path)
    assert loaded["state"]["table"]["10"] == 100


def test_nan_in_a_stored_tensor_is_refused(tmp_path):
    path = tmp_path / "nan.mixtorch"
    write(path, {"x": torch.tensor([1.0, math.nan])})
    with pytest.raises(ValueError, match=r"nan\.mixtorch.*'x' holds NaN"):
        read_model_file(path)


def test_every_truncation_of_a_file_is_a_value_error_naming_it(tmp_path, small_file):
    content = small_file.read_bytes()
    for keep in sorted({0, 1, 7, 8, 9, 40, len(content) // 2, len(content) - 1}):
        cut = tmp_path / f"cut{keep}.mixtorch"
        cut.write_bytes(content[:keep])
        with pytest.raises(ValueError, match=rf"cut{keep}\.mixtorch"):
            read_model_file(cut)


def test_writing_replaces_atomically_and_leaves_no_temporary_file(tmp_path):
    path = tmp_path / "m.mixtorch"
    write(path, {"x": torch.zeros(2)})
    write(path, {"x": torch.ones(3)})
    assert torch.equal(read_model_file(path)[1]["x"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["m.mixtorch"]


@pytest.mark.parametrize("dtype", [torch.complex128, torch.uint16])
def test_a_tensor_safetensors_cannot_hold_is_a_type_error_naming_it(tmp_path, dtype):
    # It used to surface as "cannot write <path>: ..." (an OSError), as if the disk failed.
    path = tmp_path / "m.mixtorch"
    with pytest.raises(TypeError, match=rf"tensor 'z' has dtype {dtype}"):
        write(path, {"x": torch.zeros(2), "z": torch.zeros(2, dtype=dtype)})
    assert list(tmp_path.iterdir()) == []  # nothing written, no temporary file left


def test_unwritable_places_are_os_errors_naming_the_path(tmp_path):
    with pytest.raises(IsADirectoryError, match=str(tmp_path)):
        check_writable(tmp_path)
    missing = tmp_path / "no" / "m.mixtorch"
    with pytest.raises(FileNotFoundError, match="does not exist"):
        check_writable(missing)
    assert check_writable(tmp_path / "fine.mixtorch") == tmp_path / "fine.mixtorch"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="named pipes are POSIX-only")
def test_an_existing_special_file_is_never_replaced(tmp_path):
    pipe = tmp_path / "pipe"
    os.mkfifo(pipe)
    with pytest.raises(OSError, match="not a regular file"):
        mixtorch.save(mixtorch.Gaussian().fit(np.random.default_rng(0).normal(size=(20, 2))), pipe)
    assert stat.S_ISFIFO(pipe.stat().st_mode)  # still the pipe
    assert sorted(p.name for p in tmp_path.iterdir()) == ["pipe"]


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

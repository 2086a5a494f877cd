"""The bytes of a model file: a safetensors file whose metadata holds the JSON document,
written atomically, read with a SHA-256 check of the tensor bytes (see :mod:`mixtorch.io`)."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch

from ._codec import DTYPES, tensor_digest

__all__ = [
    "FORMAT_NAME",
    "FORMAT_VERSION",
    "check_writable",
    "file_digest",
    "read_model_file",
    "write_model_file",
]

#: The tensor dtypes a model file stores: those a file may name (``_codec.DTYPES``) less
#: complex128, which safetensors has no type for.
_STORABLE_DTYPES = frozenset(DTYPES.values()) - {torch.complex128}

FORMAT_NAME = "mixtorch-model"
#: 2 adds the ``sha256`` digest of the tensor bytes; 3 extends it over the JSON document
#: (parameters and state), so an edited or damaged document is found as well. Version 1
#: and 2 files still load.
FORMAT_VERSION = 3
_METADATA_KEY = "mixtorch"
_MAX_JSON_BYTES = 50_000_000


def check_writable(path: str | os.PathLike[str]) -> Path:
    """Raise OSError (naming ``path``) unless a file can be created or replaced there.

    Parameters
    ----------
    path : str or path-like
        The file to be written.

    Returns
    -------
    Path
        ``path``, once a file could be created in its folder.

    Raises
    ------
    OSError
        ``IsADirectoryError``, ``FileNotFoundError`` (no such folder),
        ``NotADirectoryError`` (the folder is a file), ``PermissionError`` or another
        ``OSError``, the message naming ``path``.

    See Also
    --------
    mixtorch.save : Calls it before writing.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> from mixtorch.io import check_writable
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     print(check_writable(Path(folder) / "model.mixtorch").name)
    ...
    model.mixtorch
    """
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    if path.is_dir():
        raise IsADirectoryError(f"cannot write {path}: it is a directory; give a file name.")
    if path.exists() and not path.is_file():  # a device, a pipe, a socket: never replaced
        raise OSError(
            f"cannot write {path}: it exists and is not a regular file (a device, pipe or "
            "socket), which the output file would replace; give a file name."
        )
    if folder.exists() and not folder.is_dir():
        raise NotADirectoryError(
            f"cannot write {path}: {folder} is a file, not a folder; give a path in a folder."
        )
    if not folder.is_dir():
        raise FileNotFoundError(
            f"cannot write {path}: the folder {folder} does not exist; create it or choose another."
        )
    if path.exists() and not os.access(path, os.W_OK):
        raise PermissionError(f"cannot write {path}: permission denied.")
    try:  # the only reliable test (permissions, read-only mounts, special file systems)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=f".{path.name}."):
            pass
    except OSError as error:  # its message would name the temporary file, not ``path``
        raise OSError(
            f"cannot write {path}: {error.strerror or error} (creating a file in {folder} "
            "failed); choose a folder you can write to."
        ) from error
    return path


def write_model_file(
    tensors: dict[str, torch.Tensor], document: dict[str, Any], path: Path
) -> None:
    """Write ``tensors`` and ``document`` (plus the digest) to ``path`` via a temporary file."""
    from safetensors.torch import save_file

    for name, tensor in tensors.items():
        if tensor.dtype not in _STORABLE_DTYPES:
            raise TypeError(
                f"cannot write {path}: tensor {name!r} has dtype {tensor.dtype}, which a "
                "model file cannot hold (it stores float16/32/64, bfloat16, complex64, int8-64, "
                "uint8 and bool); convert it first, e.g. with .to(torch.complex64)."
            )
    text = json.dumps({**document, "sha256": file_digest(tensors, document)})
    check_writable(path)
    try:
        handle, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    except OSError as error:
        raise OSError(f"cannot write {path}: {error}") from error
    os.close(handle)
    try:
        save_file(tensors, temporary, metadata={_METADATA_KEY: text})
        os.replace(temporary, path)
    except Exception as error:  # safetensors raises its own error type for I/O failures
        Path(temporary).unlink(missing_ok=True)
        raise OSError(f"cannot write {path}: {error}") from error


def _refuse_pickles(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(9)
    # A safetensors file opens with its header's length (8 bytes, little-endian, so the
    # first may well be 0x80) and then the JSON header's "{".
    if head[8:9] == b"{":
        return
    # 0x80 opens every pickle of protocol >= 2; torch.save writes a zip ("PK").
    if head[:1] == b"\x80" or head[:2] == b"PK":
        raise ValueError(
            f"{path} looks like a pickle or torch.save file; mixtorch model files are "
            "safetensors and pickles are never loaded (they can run arbitrary code)."
        )


def read_model_file(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """The JSON document and the tensors of a model file; ValueError naming ``path``."""
    _refuse_pickles(path)
    from safetensors import safe_open

    not_ours = f"{path} is not a mixtorch model file"
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            text = metadata.get(_METADATA_KEY)
            if text is None:
                raise ValueError(f"{not_ours} (a safetensors file without mixtorch metadata).")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except ValueError:
        raise
    except Exception as error:  # safetensors raises its own error types for bad bytes
        raise ValueError(f"{not_ours}, or it is truncated or corrupted: {error}") from error
    if len(text) > _MAX_JSON_BYTES:
        raise ValueError(f"{not_ours} (its metadata is implausibly large).")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the model metadata is not valid JSON ({error}).") from error
    _check_document(document, path)
    _check_digest(document, tensors, path)
    for key, tensor in tensors.items():
        # No fitted state of a mixtorch model holds NaN (infinities may be legitimate).
        if tensor.is_floating_point() and bool(torch.isnan(tensor).any()):
            raise ValueError(f"{path}: the stored tensor {key!r} holds NaN; the model is invalid.")
    return document, tensors


def _check_document(document: Any, path: Path) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a mixtorch model file (no '{FORMAT_NAME}' tag).")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: the model file has no valid format version ({version!r}).")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses model format version {version}, newer than this mixtorch reads "
            f"(version {FORMAT_VERSION}); upgrade mixtorch to load it."
        )
    if version < 1 or not isinstance(document.get("state"), dict):
        raise ValueError(f"{path}: unsupported or incomplete model file (version {version}).")
    if not isinstance(document.get("params", {}), dict):
        raise ValueError(f"{path}: the model file's parameters are not a mapping.")


def file_digest(tensors: dict[str, torch.Tensor], document: dict[str, Any]) -> str:
    """SHA-256 over the tensors (:func:`tensor_digest`) and the document without its
    digest, serialised canonically as it reads back from JSON (sorted string keys;
    floats as Python writes them, which read back exactly)."""
    body = {key: value for key, value in document.items() if key != "sha256"}
    # As it reads back (integer keys become strings), so writer and reader agree.
    canonical = json.dumps(json.loads(json.dumps(body)), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(f"{tensor_digest(tensors)}|{canonical}".encode()).hexdigest()


def _check_digest(document: dict[str, Any], tensors: dict[str, torch.Tensor], path: Path) -> None:
    version = document["format_version"]
    if version < 2:
        return  # written before digests were stored
    stored = document.get("sha256")
    if not isinstance(stored, str):
        raise ValueError(f"{path}: the model file has no SHA-256 digest of its contents.")
    expected = tensor_digest(tensors) if version == 2 else file_digest(tensors, document)
    if expected != stored:
        what = "tensor data" if version == 2 else "tensors or parameters"
        raise ValueError(
            f"{path} is corrupted: its {what} do not match the SHA-256 digest stored in "
            "the file (a damaged or edited file). Restore it from a backup or fit the "
            "model again."
        )

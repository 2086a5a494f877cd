"""The path given to :func:`mixtorch.save` or :func:`mixtorch.load`: a str or path-like
that names a file (not an empty path, not a folder), and a warning for names that end like
another format (a pickle, NumPy, JSON)."""

from __future__ import annotations

import os
import warnings
from pathlib import Path
from typing import Any

from ._warnings import user_stacklevel


class _DirectoryNotModelFile(IsADirectoryError, FileNotFoundError):
    """A directory given to :func:`load`: an ``IsADirectoryError``, and the
    ``FileNotFoundError`` that ``load`` raised for it before."""


def _as_path(path: Any) -> Path:
    """``path`` as a Path; TypeError naming the parameter for anything but str/PathLike,
    FileNotFoundError for an empty path (``Path("")`` would be the current folder) and
    IsADirectoryError for a name ending with a separator (``Path`` would drop it)."""
    if isinstance(path, bytes):
        raise TypeError(
            "path must be a str or os.PathLike, got bytes; decode it first, e.g. os.fsdecode(path)."
        )
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}.")
    text = os.fspath(path)
    if not isinstance(text, str):  # a PathLike whose __fspath__ gives bytes
        raise TypeError(
            "path must be a str or os.PathLike of str, got a path of bytes; decode it "
            "first, e.g. os.fsdecode(path)."
        )
    if not text:
        raise FileNotFoundError("path is empty; give the name of a model file.")
    separators = (os.sep, os.altsep) if os.altsep else (os.sep,)
    if text.endswith(separators) and not Path(text).is_file():
        raise _DirectoryNotModelFile(
            f"{text} names a folder (it ends with {text[-1]!r}), not a model file; give a "
            f"file name, e.g. {os.path.join(text, 'model.mixtorch')}."
        )
    return Path(text)


#: Endings that promise another format (a pickle, NumPy, JSON): whoever opens such a
#: file with that format's reader would fail or, for a pickle, be told to unpickle.
_MISLEADING_SUFFIXES = frozenset(
    {".pkl", ".pickle", ".joblib", ".dill", ".pt", ".pth", ".ckpt", ".npy", ".npz", ".json"}
)


def _warn_misleading_suffix(path: Path) -> None:
    suffix = path.suffix.lower()
    if suffix in _MISLEADING_SUFFIXES:
        warnings.warn(
            f"{path}: mixtorch.save writes a safetensors model file whatever the name, "
            f"not a {suffix} file (and never a pickle); only mixtorch.load reads it back. "
            f"Name it {path.with_suffix('.mixtorch').name} to say what it is.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )

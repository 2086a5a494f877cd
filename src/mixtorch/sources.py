"""Re-iterable sources of row chunks, for data that does not fit in memory.

A :class:`ChunkSource` is a callable: every call returns a *fresh* iterator over 2-D
tensors (row chunks) of one data set, so EM can pass over the data as often as it needs
while holding one chunk at a time. Sources are built from a callable, a
``torch.utils.data.DataLoader``, a ``.npy`` file (read through a memory map one window at
a time, so resident memory does not grow with the file), one Parquet or CSV file, or a
directory of such shards. :func:`as_source` recognises all of these.

Without a ``chunk_size``, arrays and files are read in chunks of about
:data:`SOURCE_CHUNK_BYTES` (8 MiB): :func:`source_chunk_rows` gives
``SOURCE_CHUNK_BYTES // (n_features * itemsize)`` rows, at least
:data:`MIN_SOURCE_CHUNK_ROWS` (256) and at most :data:`MAX_SOURCE_CHUNK_ROWS` (65536), so
a chunk's memory does not grow with the number of columns and narrow data (up to 16
float64 or 32 float32 columns) keeps its 65536-row chunks.

Every chunk is checked as it is read (2-D, numeric, finite, the same number of columns
as the first chunk); errors name the shard or chunk at fault. A source made with
:meth:`ChunkSource.with_missing_values` (as ``GaussianMixture(missing_values=np.nan)``
does) lets NaN through and reads empty and ``NA`` CSV cells and Parquet nulls as NaN.
Every complete pass must yield the same number of rows (and ``n_samples`` when it is
known): a factory that hands back the same one-shot iterator twice, or a loader that
drops or resamples rows between passes, is a ``ValueError`` saying so, since EM would
otherwise fit a different data set on every pass. CSV shards are read by
:mod:`mixtorch._csv` (its header rule: a header is recognised, a header-less shard keeps
its first row, an undecidable first line is an error).

The source type and the in-memory sources live in :mod:`mixtorch._chunk_source`, the file
readers in :mod:`mixtorch._file_sources`; this module re-exports them and recognises inputs.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
from torch import Tensor

from ._chunk_budget import (
    DEFAULT_SOURCE_CHUNK_ROWS,
    MAX_SOURCE_CHUNK_ROWS,
    MIN_SOURCE_CHUNK_ROWS,
    SOURCE_CHUNK_BYTES,
    source_chunk_rows,
)
from ._chunk_source import ChunkSource, from_callable, from_dataloader, from_tensor
from ._file_sources import (
    SUFFIXES,
    MissingPathError,
    check_file,
    file_suffix,
    from_directory,
    from_files,
    from_npy,
)

__all__ = [
    "DEFAULT_SOURCE_CHUNK_ROWS",
    "MAX_SOURCE_CHUNK_ROWS",
    "MIN_SOURCE_CHUNK_ROWS",
    "SOURCE_CHUNK_BYTES",
    "ChunkSource",
    "as_source",
    "from_callable",
    "from_dataloader",
    "from_directory",
    "from_npy",
    "from_tensor",
    "is_source",
    "source_chunk_rows",
]


# -- recognition -----------------------------------------------------------------------
def is_source(obj: Any) -> bool:
    """True for objects :func:`as_source` turns into a source (not arrays or tensors).

    Parameters
    ----------
    obj : object
        Anything passed as ``X`` to a ``fit``.

    Returns
    -------
    bool
        True for a :class:`ChunkSource`, a path, a callable, a ``DataLoader`` or a one-pass
        iterator (which :func:`as_source` refuses, saying what to pass instead); False for
        arrays, tensors, lists and tuples (fitted in memory).

    See Also
    --------
    as_source : The conversion.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.sources import from_tensor, is_source
    >>> is_source(np.zeros((3, 2))), is_source(from_tensor(np.zeros((3, 2))))
    (False, True)
    """
    if isinstance(obj, (np.ndarray, Tensor, list, tuple)):
        return False
    if isinstance(obj, (ChunkSource, str, os.PathLike)) or callable(obj):
        return True
    return _is_dataloader(obj) or isinstance(obj, Iterator)  # as_source refuses iterators


def _is_dataloader(obj: Any) -> bool:
    from torch.utils.data import DataLoader

    return isinstance(obj, DataLoader)


def as_source(obj: Any, chunk_size: int | None = None) -> ChunkSource:
    """Turn ``obj`` into a :class:`ChunkSource`.

    Parameters
    ----------
    obj : ChunkSource, DataLoader, str, path-like, callable, ndarray or Tensor
        A ChunkSource (returned as is), a DataLoader, a path to a directory of shards, a
        ``.npy``/``.parquet``/``.csv`` (or ``.csv.gz``) file, a callable returning an
        iterable of chunks, or (for convenience) an in-memory array or tensor.
    chunk_size : int, default=None
        Rows per chunk for arrays and files; None picks them by
        :func:`source_chunk_rows` from the data's width and dtype (65536 rows up to 128
        bytes a row, about :data:`SOURCE_CHUNK_BYTES` = 8 MiB of rows beyond). A
        DataLoader's batches and a callable's chunks keep their own sizes.

    Returns
    -------
    ChunkSource
        A re-iterable source; each call yields validated tensor chunks.

    Raises
    ------
    FileNotFoundError
        For a path that does not exist (also a ``ValueError``, as before).
    ValueError
        For a path that is not a supported file, or a directory without shards (a
        directory is always read as a directory of shards, whatever its name).
    TypeError
        For any other kind of object.

    See Also
    --------
    from_tensor, from_npy, from_directory, from_dataloader, from_callable

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.sources import as_source
    >>> source = as_source(np.zeros((10, 2)), chunk_size=4)
    >>> [len(chunk) for chunk in source()]
    [4, 4, 2]
    """
    if isinstance(obj, ChunkSource):
        return obj
    if isinstance(obj, (np.ndarray, Tensor)):
        return from_tensor(obj, chunk_size)
    if _is_dataloader(obj):
        return from_dataloader(obj)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_dir():
            return from_directory(path, chunk_size=chunk_size)
        if path.suffix.lower() == ".npy":
            return from_npy(path, chunk_size=chunk_size)
        if file_suffix(path) in SUFFIXES:
            check_file(path, f"a {file_suffix(path)} file")
            return from_files([path], chunk_size, name=str(path))
        if not path.exists():
            raise MissingPathError(
                f"No such file or directory: {path} is neither a directory nor a {SUFFIXES} "
                "file that exists; check the path."
            )
        raise ValueError(f"{path} is neither a directory nor a {SUFFIXES} file.")
    if callable(obj):
        return from_callable(obj)
    if isinstance(obj, Iterator):
        raise TypeError(
            f"Got a one-pass iterator ({type(obj).__name__}), but a fit reads its data several "
            "times and an iterator is exhausted after the first pass. Pass a callable that "
            "returns a fresh iterator of chunks on each call (e.g. the generator function "
            "itself, or lambda: iter(chunks)), or the data as an array."
        )
    raise TypeError(
        "Expected an array, a tensor, a ChunkSource, a DataLoader, a path or a callable "
        f"returning chunks; got {type(obj).__name__}."
    )

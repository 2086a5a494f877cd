"""Re-iterable sources of row chunks, for data that does not fit in memory.

A :class:`ChunkSource` is a callable: every call returns a *fresh* iterator over 2-D
tensors (row chunks) of one data set, so EM can pass over the data as often as it needs
while holding one chunk at a time. Sources are built from a callable, a
``torch.utils.data.DataLoader``, a ``.npy`` file (read through a memory map one window at
a time, so resident memory does not grow with the file), one Parquet or CSV file, or a
directory of such shards. :func:`as_source` recognises all of these.

Every chunk is checked as it is read (2-D, numeric, finite, the same number of columns
as the first chunk); errors name the shard or chunk at fault. Every complete pass must
yield the same number of rows (and ``n_samples`` when it is known): a factory that
hands back the same one-shot iterator twice, or a loader that drops or resamples rows
between passes, is a ``ValueError`` saying so, since EM would otherwise fit a different
data set on every pass. CSV shards are read by :mod:`mixtorch._csv` (its header rule:
a header is recognised, a header-less shard keeps its first row, an undecidable first
line is an error).
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from ._csv import csv_chunks

__all__ = [
    "DEFAULT_SOURCE_CHUNK_ROWS",
    "ChunkSource",
    "as_source",
    "from_callable",
    "from_dataloader",
    "from_directory",
    "from_npy",
    "from_tensor",
    "is_source",
]

#: Rows per chunk read from files when no ``chunk_size`` is given.
DEFAULT_SOURCE_CHUNK_ROWS = 65_536

SUFFIXES = (".npy", ".parquet", ".csv")


class ChunkSource:
    """A re-iterable data set read in row chunks.

    Parameters
    ----------
    factory : callable
        Returns a fresh iterable of chunks (arrays or tensors of shape (n_i, n_features))
        every time it is called.
    n_features : int, optional
        Columns per row; learnt from the first chunk when not given.
    n_samples : int, optional
        Total rows, when known without a pass over the data.
    name : str
        Used in error messages.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.sources import from_tensor
    >>> source = from_tensor(np.arange(10.0).reshape(5, 2), chunk_size=2)
    >>> [tuple(chunk.shape) for chunk in source()]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(
        self,
        factory: Callable[[], Iterable[Any]],
        *,
        n_features: int | None = None,
        n_samples: int | None = None,
        name: str = "data source",
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable, got {type(factory).__name__}.")
        self.factory = factory
        self.n_features = n_features
        self.n_samples = n_samples
        self.name = name
        self._last: Any = None  # the previous pass's iterable, to spot one-shot iterators
        self._pass_rows: int | None = None

    def __call__(self) -> Iterator[Tensor]:
        """A fresh iterator over validated chunks, each a tensor of shape (n_i, n_features)."""
        iterable = self.factory()
        if iterable is self._last and iter(iterable) is iterable:
            raise ValueError(
                f"The factory of {self.name} returned the same iterator as on the previous "
                "pass, and an iterator can be read only once: return a fresh iterable "
                "(e.g. a new generator) on every call."
            )
        self._last = iterable
        rows = 0
        for index, chunk in enumerate(iterable):
            tensor = _checked_chunk(chunk, f"chunk {index} of {self.name}")
            if self.n_features is None:
                self.n_features = int(tensor.shape[1])
            elif tensor.shape[1] != self.n_features:
                raise ValueError(
                    f"chunk {index} of {self.name} has {tensor.shape[1]} columns, "
                    f"expected {self.n_features} as in the first chunk."
                )
            rows += int(tensor.shape[0])
            yield tensor
        self._check_pass(rows)

    def _check_pass(self, rows: int) -> None:
        """Every complete pass sees the same rows (as many as ``n_samples`` if known)."""
        expected = self._pass_rows if self._pass_rows is not None else self.n_samples
        if expected is not None and rows != expected:
            raise ValueError(
                f"The {self.name} yielded {rows} rows on this pass but {expected} "
                f"{'on an earlier pass' if self._pass_rows is not None else 'were announced'}: "
                "every pass must see the same data (a DataLoader with drop_last=True, a "
                "sampler that resamples, or an exhausted iterator do not)."
            )
        self._pass_rows = rows

    def first_chunk(self) -> Tensor:
        """The first chunk (sets ``n_features``); raises ValueError on an empty source."""
        for chunk in self():
            return chunk
        raise ValueError(f"The {self.name} yielded no chunks.")

    def __repr__(self) -> str:
        return (
            f"ChunkSource({self.name!r}, n_features={self.n_features}, n_samples={self.n_samples})"
        )


def _checked_chunk(chunk: Any, where: str) -> Tensor:
    if _is_feature_batch(chunk):
        chunk = chunk[0]  # a (features, target, ...) batch from a DataLoader
    if isinstance(chunk, Tensor):
        tensor = chunk.detach()
    else:
        try:
            array = np.asarray(chunk)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{where} is not array-like: {error}") from error
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{where} must be numeric, got dtype {array.dtype}.")
        tensor = torch.from_numpy(np.ascontiguousarray(array))
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{where} must be real numeric, got dtype {tensor.dtype}.")
    if tensor.ndim != 2:
        raise ValueError(f"{where} must be 2-D (rows, features), got shape {tuple(tensor.shape)}.")
    if tensor.shape[1] < 1:
        raise ValueError(f"{where} has no columns.")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    elif tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    if not bool(torch.isfinite(tensor).all()):
        kind = "NaN" if bool(torch.isnan(tensor).any()) else "infinity"
        raise ValueError(f"{where} contains {kind}.")
    return tensor


def _is_feature_batch(chunk: Any) -> bool:
    """A tuple/list whose first item is a 2-D array (not a plain list of rows)."""
    if not isinstance(chunk, (tuple, list)) or not chunk:
        return False
    first = chunk[0]
    return isinstance(first, (Tensor, np.ndarray)) and first.ndim == 2


# -- constructors ----------------------------------------------------------------------
def from_callable(
    factory: Callable[[], Iterable[Any]],
    *,
    n_features: int | None = None,
    n_samples: int | None = None,
) -> ChunkSource:
    """A source from a callable returning a fresh iterable of chunks on every call.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixture
    >>> from mixtorch.sources import from_callable
    >>> rng = np.random.default_rng(0)
    >>> chunks = [rng.normal(size=(500, 2)) for _ in range(4)]
    >>> source = from_callable(lambda: iter(chunks))
    >>> model = GaussianMixture(2, random_state=0).fit(source)
    >>> model.means_.shape
    (2, 2)
    """
    name = getattr(factory, "__name__", type(factory).__name__)
    return ChunkSource(factory, n_features=n_features, n_samples=n_samples, name=name)


def from_tensor(X: Any, chunk_size: int = DEFAULT_SOURCE_CHUNK_ROWS) -> ChunkSource:
    """An in-memory array or tensor of shape (n_samples, n_features) as a source.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.sources import from_tensor
    >>> source = from_tensor(torch.zeros(7, 3), chunk_size=3)
    >>> [len(chunk) for chunk in source()]
    [3, 3, 1]
    """
    data = X if isinstance(X, Tensor) else torch.as_tensor(np.asarray(X))
    if data.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {tuple(data.shape)}.")
    rows = _positive(chunk_size, "chunk_size")

    def chunks() -> Iterator[Tensor]:
        for start in range(0, data.shape[0], rows):
            yield data[start : start + rows]

    return ChunkSource(chunks, n_features=data.shape[1], n_samples=data.shape[0], name="tensor")


def from_dataloader(loader: Any) -> ChunkSource:
    """A source from a ``torch.utils.data.DataLoader`` (or any re-iterable of batches).

    Batches may be tensors, arrays, or tuples whose first element holds the features.
    The loader is iterated afresh on every pass (shuffling, if any, is the loader's; it
    changes only the order). A loader that would leave rows out (``drop_last=True`` with
    a last batch that is not full) is refused: each pass would fit different rows.

    Examples
    --------
    >>> import torch
    >>> import numpy as np
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from mixtorch import Gaussian
    >>> from mixtorch.sources import from_dataloader
    >>> X = torch.randn(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> loader = DataLoader(TensorDataset(X), batch_size=256)
    >>> model = Gaussian().fit(from_dataloader(loader))
    >>> np.allclose(model.mean_, X.mean(0).numpy())
    True
    """
    try:
        n_samples: int | None = len(loader.sampler)
    except (AttributeError, TypeError):  # iterable-style datasets have no length
        n_samples = None
    batch_size = getattr(loader, "batch_size", None)
    if getattr(loader, "drop_last", False) and n_samples and batch_size:
        if n_samples % batch_size:
            raise ValueError(
                f"This DataLoader drops the last {n_samples % batch_size} of its "
                f"{n_samples} rows on every pass (drop_last=True with batch_size="
                f"{batch_size}), different ones when it shuffles; use drop_last=False."
            )
    return ChunkSource(lambda: iter(loader), n_samples=n_samples, name="DataLoader")


def from_npy(
    path: str | os.PathLike[str],
    *,
    mmap: bool = True,
    chunk_size: int = DEFAULT_SOURCE_CHUNK_ROWS,
) -> ChunkSource:
    """A source reading a 2-D ``.npy`` file ``chunk_size`` rows at a time.

    With ``mmap=True`` each chunk is read through its own short-lived memory map of just
    those rows, so the process never keeps the whole file mapped and resident memory
    stays proportional to ``chunk_size``; ``mmap=False`` reads with plain file reads.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from mixtorch import Gaussian
    >>> from mixtorch.sources import from_npy
    >>> X = np.random.default_rng(0).normal(size=(1000, 3))
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     np.save(Path(folder) / "data.npy", X)
    ...     model = Gaussian().fit(from_npy(Path(folder) / "data.npy", chunk_size=128))
    ...
    >>> np.allclose(model.mean_, X.mean(0))
    True
    """
    file = Path(path)
    rows = _positive(chunk_size, "chunk_size")
    shape, fortran, dtype, offset = _npy_header(file)
    if len(shape) != 2:
        raise ValueError(f"{file} must hold a 2-D array, got shape {shape}.")
    n_samples, n_features = shape

    def chunks() -> Iterator[np.ndarray]:
        if fortran:  # rows are not contiguous: fall back to one map of the whole file
            whole = np.load(file, mmap_mode="r")
            for start in range(0, n_samples, rows):
                yield np.array(whole[start : start + rows])
            return
        for start in range(0, n_samples, rows):
            count = min(rows, n_samples - start)
            position = offset + start * n_features * dtype.itemsize
            yield _read_rows(file, dtype, position, (count, n_features), mmap)

    return ChunkSource(chunks, n_features=n_features, n_samples=n_samples, name=str(file))


def _npy_header(file: Path) -> tuple[tuple[int, ...], bool, np.dtype, int]:
    if not file.is_file():
        raise ValueError(f"No such .npy file: {file}")
    with open(file, "rb") as handle:
        try:
            version = np.lib.format.read_magic(handle)
            if version == (1, 0):
                shape, fortran, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                shape, fortran, dtype = np.lib.format.read_array_header_2_0(handle)
        except (ValueError, EOFError) as error:
            raise ValueError(f"{file} is not a valid .npy file: {error}") from error
        offset = handle.tell()
    if dtype.hasobject or dtype.kind not in "fiu":
        raise ValueError(f"{file} must hold numbers, got dtype {dtype}.")
    needed = offset + int(np.prod(shape)) * dtype.itemsize
    if file.stat().st_size < needed:
        raise ValueError(
            f"{file} is truncated: its header announces {tuple(shape)} {dtype} "
            f"({needed} bytes) but the file has {file.stat().st_size} bytes."
        )
    return tuple(shape), bool(fortran), dtype, offset


def _read_rows(
    file: Path, dtype: np.dtype, position: int, shape: tuple[int, int], mmap: bool
) -> np.ndarray:
    if mmap:
        window = np.memmap(file, dtype=dtype, mode="r", offset=position, shape=shape)
        rows = np.array(window)  # copy, then drop the map so its pages can be released
        del window
        return rows
    with open(file, "rb") as handle:
        handle.seek(position)
        rows = np.fromfile(handle, dtype=dtype, count=shape[0] * shape[1])
    return rows.reshape(shape)


def from_directory(
    path: str | os.PathLike[str],
    pattern: str = "*",
    *,
    chunk_size: int = DEFAULT_SOURCE_CHUNK_ROWS,
    header: bool | None = None,
) -> ChunkSource:
    """A source over the ``.npy``, ``.parquet`` and ``.csv`` shards in a directory.

    Shards matching ``pattern`` are read in sorted name order. Parquet is read by row
    batches with pyarrow; CSV (also ``.csv.gz``) ``chunk_size`` lines at a time by
    mixtorch's CSV reader. ``header`` says whether CSV shards open with a line of column
    names (``None``: recognise it, and refuse a shard whose first line could be either;
    a header-less shard keeps its first row). All columns are used as features.

    Examples
    --------
    >>> import tempfile
    >>> from pathlib import Path
    >>> import numpy as np
    >>> from mixtorch.sources import from_directory
    >>> with tempfile.TemporaryDirectory() as folder:
    ...     for i in range(3):
    ...         np.save(Path(folder) / f"part-{i}.npy", np.full((4, 2), float(i)))
    ...     rows = sum(len(chunk) for chunk in from_directory(folder)())
    ...
    >>> rows
    12
    """
    directory = Path(path)
    if not directory.is_dir():
        raise ValueError(f"No such directory: {directory}")
    files = sorted(p for p in directory.glob(pattern) if _suffix(p) in SUFFIXES)
    if not files:
        raise ValueError(f"No .npy, .parquet or .csv files match {pattern!r} in {directory}.")
    return _from_files(files, chunk_size, name=str(directory), header=header)


def _from_files(
    files: list[Path], chunk_size: int, name: str, header: bool | None = None
) -> ChunkSource:
    rows = _positive(chunk_size, "chunk_size")
    readers = [_file_reader(file, rows, header) for file in files]

    def chunks() -> Iterator[Any]:
        for file, reader in zip(files, readers, strict=True):
            for index, chunk in enumerate(reader()):
                # validate here so the message names the shard, not just the chunk number
                yield _checked_chunk(chunk, f"chunk {index} of shard {file}")

    return ChunkSource(chunks, name=name)


def _file_reader(file: Path, rows: int, header: bool | None) -> Callable[[], Iterable[Any]]:
    suffix = _suffix(file)
    if suffix == ".npy":
        return from_npy(file, chunk_size=rows).factory
    if suffix == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:  # say so before any pass starts
            raise ImportError(
                f"reading the Parquet shard {file} needs pyarrow: pip install 'mixtorch[io]'"
            )
        return lambda: _parquet_chunks(file, rows)
    if suffix == ".csv":
        return lambda: csv_chunks(file, header=header, rows=rows)[1]
    raise ValueError(f"Unsupported file type {file.suffix!r} for {file}; use {SUFFIXES}.")


def _suffix(file: Path) -> str:
    name = file.name.lower()
    return ".csv" if name.endswith(".csv.gz") else file.suffix.lower()


def _parquet_chunks(file: Path, rows: int) -> Iterator[np.ndarray]:
    import pyarrow.parquet as pq

    with pq.ParquetFile(file) as handle:
        for batch in handle.iter_batches(batch_size=rows):
            yield _table_to_array(batch, file)


def _table_to_array(batch: Any, file: Path) -> np.ndarray:
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if column.null_count:
            raise ValueError(f"Column {name!r} of {file} has missing values.")
        try:
            columns.append(column.to_numpy(zero_copy_only=False).astype(np.float64))
        except (TypeError, ValueError) as error:
            raise ValueError(f"Column {name!r} of {file} is not numeric: {error}") from error
    return np.stack(columns, axis=1) if columns else np.empty((0, 0))


# -- recognition -----------------------------------------------------------------------
def is_source(obj: Any) -> bool:
    """True for objects :func:`as_source` turns into a source (not arrays or tensors).

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
    return _is_dataloader(obj)


def _is_dataloader(obj: Any) -> bool:
    from torch.utils.data import DataLoader

    return isinstance(obj, DataLoader)


def as_source(obj: Any, chunk_size: int | None = None) -> ChunkSource:
    """Turn ``obj`` into a :class:`ChunkSource`.

    Recognised: a ChunkSource (returned as is), a DataLoader, a path to a directory of
    shards, a ``.npy``/``.parquet``/``.csv`` file, a callable returning an iterable of
    chunks, and (for convenience) an in-memory array or tensor.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.sources import as_source
    >>> source = as_source(np.zeros((10, 2)), chunk_size=4)
    >>> [len(chunk) for chunk in source()]
    [4, 4, 2]
    """
    rows = DEFAULT_SOURCE_CHUNK_ROWS if chunk_size is None else chunk_size
    if isinstance(obj, ChunkSource):
        return obj
    if isinstance(obj, (np.ndarray, Tensor)):
        return from_tensor(obj, rows)
    if _is_dataloader(obj):
        return from_dataloader(obj)
    if isinstance(obj, (str, os.PathLike)):
        path = Path(obj)
        if path.is_dir():
            return from_directory(path, chunk_size=rows)
        if path.suffix.lower() == ".npy":
            return from_npy(path, chunk_size=rows)
        if _suffix(path) in SUFFIXES:
            if not path.is_file():
                raise ValueError(f"No such file: {path}")
            return _from_files([path], rows, name=str(path))
        raise ValueError(f"{path} is neither a directory nor a {SUFFIXES} file.")
    if callable(obj):
        return from_callable(obj)
    raise TypeError(
        "Expected an array, a tensor, a ChunkSource, a DataLoader, a path or a callable "
        f"returning chunks; got {type(obj).__name__}."
    )


def _positive(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}.")
    return int(value)

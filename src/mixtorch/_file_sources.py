"""Sources that read files: a ``.npy`` file through short-lived memory maps, and a
directory (or one file) of ``.npy``, Parquet and CSV shards. Public through
:mod:`mixtorch.sources`."""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from ._chunk_source import ChunkSource, check_chunk_size, checked_chunk, source_rows
from ._csv import csv_chunks

SUFFIXES = (".npy", ".parquet", ".csv")


def from_npy(
    path: str | os.PathLike[str],
    *,
    mmap: bool = True,
    chunk_size: int | None = None,
) -> ChunkSource:
    """A source reading a 2-D ``.npy`` file ``chunk_size`` rows at a time.

    Parameters
    ----------
    path : str or path-like
        A ``.npy`` file holding a 2-D numeric array (n_samples, n_features).
    mmap : bool, default=True
        True reads each chunk through its own short-lived memory map of just those rows,
        so the process never keeps the whole file mapped and resident memory stays
        proportional to ``chunk_size``; False reads with plain file reads.
    chunk_size : int, default=None
        Rows per chunk; None picks them by :func:`source_chunk_rows` from the file's
        width and dtype (65536 rows up to 128 bytes a row, about 8 MiB of rows beyond),
        so that one chunk's memory does not grow with the number of columns.

    Returns
    -------
    ChunkSource
        With ``n_samples`` and ``n_features`` read from the file's header.

    Raises
    ------
    FileNotFoundError, IsADirectoryError
        If the file does not exist or is a directory (both also ``ValueError``).
    ValueError
        If the file is not a valid ``.npy`` file or does not hold a 2-D numeric array, or
        ``chunk_size`` is neither a positive integer nor None.

    See Also
    --------
    from_directory : Many shards.
    numpy.load : With ``mmap_mode='r'``, NumPy's own memory map.

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
    chunk_size = check_chunk_size(chunk_size)
    shape, fortran, dtype, offset = _npy_header(file)
    if len(shape) != 2:
        raise ValueError(f"{file} must hold a 2-D array, got shape {shape}.")
    n_samples, n_features = shape
    rows = source_rows(chunk_size, max(n_features, 1), dtype)

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
    check_file(file, "a .npy file")
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
    chunk_size: int | None = None,
    header: bool | None = None,
) -> ChunkSource:
    """A source over the ``.npy``, ``.parquet`` and ``.csv`` shards in a directory.

    Parameters
    ----------
    path : str or path-like
        The directory.
    pattern : str, default='*'
        Glob pattern of the shards to read; they are read in sorted name order.
    chunk_size : int, default=None
        Rows per chunk (``.npy`` and CSV shards, also ``.csv.gz``, read by mixtorch's
        CSV reader, and Parquet row batches read with pyarrow); None picks them for
        each shard by :func:`source_chunk_rows` from its width and the dtype its chunks
        come in (a ``.npy`` file's own, float64 for CSV and Parquet).
    header : bool, default=None
        Whether CSV shards open with a line of column names. None recognises it, and
        refuses a shard whose first line could be either; a header-less shard keeps its
        first row. All columns are used as features.

    Returns
    -------
    ChunkSource
        One pass reads every shard in order.

    Raises
    ------
    FileNotFoundError, NotADirectoryError
        If the directory does not exist or is a file (both also ``ValueError``).
    ValueError
        If no shard matches, and (while reading) for a column with missing or
        non-numeric values, naming the file and column.
    ImportError
        If a Parquet shard is read without pyarrow (the ``io`` extra).

    See Also
    --------
    from_npy : A single ``.npy`` file.

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
    if not directory.exists():
        raise MissingPathError(f"No such directory: {directory}; check the path.")
    if not directory.is_dir():
        raise NotADirectoryValueError(
            f"{directory} is a file, not a directory of shards; pass the directory, or "
            "the file itself to as_source."
        )
    files = sorted(p for p in directory.glob(pattern) if file_suffix(p) in SUFFIXES)
    if not files:
        raise ValueError(f"No .npy, .parquet or .csv files match {pattern!r} in {directory}.")
    return from_files(files, chunk_size, name=str(directory), header=header)


class MissingPathError(FileNotFoundError, ValueError):
    """A data path that does not exist: a ``FileNotFoundError``, and a ``ValueError`` as
    the sources raised before."""


class DirectoryPathError(IsADirectoryError, ValueError):
    """A directory where a data file was expected (an ``IsADirectoryError`` and a
    ``ValueError``)."""


class NotADirectoryValueError(NotADirectoryError, ValueError):
    """A file where a directory of shards was expected (a ``NotADirectoryError`` and a
    ``ValueError``)."""


def check_file(file: Path, what: str) -> None:
    """Raise unless ``file`` is an existing file: :class:`MissingPathError` or
    :class:`DirectoryPathError`, naming ``file`` and ``what`` it should be."""
    if not file.exists():
        raise MissingPathError(f"No such file: {file} (expected {what}); check the path.")
    if file.is_dir():
        raise DirectoryPathError(
            f"{file} is a directory, not {what}; pass the file, or the directory to "
            "as_source or from_directory."
        )


def from_files(
    files: list[Path], chunk_size: int | None, name: str, header: bool | None = None
) -> ChunkSource:
    """A source reading ``files`` (``.npy``, Parquet or CSV shards) in order; a
    ``chunk_size`` of None sizes each shard's chunks by its own width."""
    rows = check_chunk_size(chunk_size)
    return ChunkSource(ShardReader(files, rows, header), name=name)


class ShardReader:
    """The factory of a file source: reads the shards in order, each chunk checked with a
    message naming its shard. With ``missing`` empty, ``NA`` and NaN cells (and Parquet
    nulls) are read as NaN; otherwise they stay an error (no row is dropped silently).
    """

    def __init__(
        self, files: list[Path], rows: int | None, header: bool | None, missing: bool = False
    ):
        self.files, self.rows, self.header, self.missing = files, rows, header, missing
        # built now, so that a missing Parquet reader is reported before any pass
        self.readers = [_file_reader(file, rows, header, missing) for file in files]

    def __call__(self) -> Iterator[Any]:
        for file, reader in zip(self.files, self.readers, strict=True):
            index = -1
            for chunk in reader():  # not enumerate(), which keeps the previous chunk alive
                index += 1
                where = f"chunk {index} of shard {file}"
                yield checked_chunk(chunk, where, allow_nan=self.missing)
                del chunk  # so that only the chunk being read is in memory

    def with_missing_values(self, missing_values: float | None) -> ShardReader:
        """The same shards, reading missing cells as NaN unless ``missing_values`` is None."""
        return ShardReader(self.files, self.rows, self.header, missing_values is not None)


def _file_reader(
    file: Path, rows: int | None, header: bool | None, missing: bool
) -> Callable[[], Iterable[Any]]:
    """Reads ``file`` in chunks of ``rows`` rows (None: sized by its width)."""
    suffix = file_suffix(file)
    if suffix == ".npy":
        return from_npy(file, chunk_size=rows).factory
    if suffix == ".parquet":
        if importlib.util.find_spec("pyarrow") is None:  # say so before any pass starts
            raise ImportError(
                f"reading the Parquet shard {file} needs pyarrow: pip install 'mixtorch[io]'"
            )
        return lambda: _parquet_chunks(file, rows, missing)
    if suffix == ".csv":
        return lambda: csv_chunks(file, header=header, rows=rows, missing=missing)[1]
    raise ValueError(f"Unsupported file type {file.suffix!r} for {file}; use {SUFFIXES}.")


def file_suffix(file: Path) -> str:
    name = file.name.lower()
    return ".csv" if name.endswith(".csv.gz") else file.suffix.lower()


#: Errors about the file rather than its contents (Arrow raises some of its own as OSError
#: subclasses): passed on as they are, not reported as a damaged file.
_UNREADABLE = (FileNotFoundError, PermissionError, IsADirectoryError)


def _parquet_chunks(file: Path, rows: int | None, missing: bool) -> Iterator[np.ndarray]:
    import pyarrow as pa
    import pyarrow.parquet as pq

    if file.is_dir():  # pyarrow reports it as a plain OSError
        raise IsADirectoryError(
            f"{file} is a folder, not a Parquet file (a dataset written in parts?); give "
            "the folder of its part files instead."
        )
    try:
        handle = pq.ParquetFile(file)
    except _UNREADABLE:  # gone, forbidden, a folder: the operating system's own error
        raise
    except (pa.ArrowException, OSError) as error:  # not Parquet, truncated
        raise ValueError(
            f"{file} cannot be read as a Parquet file ({error}); it is damaged or not "
            "Parquet: write it again, or give it the ending of its format."
        ) from error
    with handle:
        width = len(handle.schema_arrow.names)  # every column is read, as float64
        batch_size = source_rows(rows, max(width, 1), np.float64)
        batches = handle.iter_batches(batch_size=batch_size)
        while True:
            try:
                batch = next(batches, None)
            except _UNREADABLE:
                raise
            except (pa.ArrowException, OSError) as error:  # a damaged row group
                raise ValueError(
                    f"{file} cannot be read to its end as a Parquet file ({error}); it is "
                    "damaged: write it again."
                ) from error
            if batch is None:
                return
            yield _table_to_array(batch, file, missing)


def _table_to_array(batch: Any, file: Path, missing: bool) -> np.ndarray:
    columns = []
    for name, column in zip(batch.schema.names, batch.columns, strict=True):
        if column.null_count and not missing:
            raise ValueError(
                f"Column {name!r} of {file} has missing values; "
                "GaussianMixture(missing_values=np.nan) fits rows with missing entries."
            )
        try:
            values = column.to_numpy(zero_copy_only=False)
            if column.null_count:  # nulls as NaN, whatever the column's type
                values = np.where(column.is_null().to_numpy(zero_copy_only=False), np.nan, values)
            columns.append(np.asarray(values, dtype=np.float64))
        except (TypeError, ValueError) as error:
            raise ValueError(f"Column {name!r} of {file} is not numeric: {error}") from error
    return np.stack(columns, axis=1) if columns else np.empty((0, 0))

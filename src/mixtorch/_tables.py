"""Numeric tables in and out of files for the command line: CSV/TSV/TXT (also gzipped,
and ``-`` for standard input, read by :mod:`mixtorch._csv`), ``.npy`` (never pickled)
and Parquet (through pyarrow). Column names travel with the values."""

from __future__ import annotations

import importlib.util
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ._csv import read_csv, select_columns

__all__ = ["Table", "UserError", "emit", "read_data", "require_extra", "write_data"]

TEXT_SUFFIXES = (".csv", ".tsv", ".txt", ".dat")
_EXTRAS = {"pyarrow": "io", "matplotlib": "plot", "pyro": "bayes"}


class UserError(ValueError):
    """A mistake the user can fix; the command line reports it in one line, exit code 2."""


def require_extra(module: str, purpose: str) -> None:
    """Raise UserError, before any work starts, when an optional dependency is missing."""
    if importlib.util.find_spec(module) is None:
        raise UserError(
            f"{purpose} needs {module}, which is not installed: "
            f"pip install 'mixtorch[{_EXTRAS.get(module, module)}]'"
        )


@dataclass
class Table:
    """A numeric table: ``values`` of shape (n_rows, n_columns) and optional column names."""

    values: np.ndarray
    names: list[str] | None = None

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.values.shape)


def _suffix(path: Path) -> str:
    suffixes = [suffix.lower() for suffix in path.suffixes]
    if suffixes and suffixes[-1] == ".gz" and len(suffixes) > 1:
        return suffixes[-2]
    return path.suffix.lower()


def read_data(
    path: str | Path,
    *,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    missing: bool = False,
) -> Table:
    """Read a numeric table: CSV/TSV/TXT (optionally ``.gz``; ``-`` is standard input, read
    as CSV), ``.npy`` or Parquet. See :mod:`mixtorch._csv` for the header rule; ``header``
    (--header/--no-header) is for CSV files only. With ``missing``, CSV missing-value
    markers (empty, ``NA``, ``nan``, ...) and Parquet nulls are read as NaN instead of
    refused (NaN in ``.npy`` files is passed on either way, for the caller to judge).

    Returns
    -------
    Table
        float64 values of shape (n_samples, n_features) (float32 kept for .npy) and the
        column names when the file has them.
    """
    path = Path(path)
    suffix = ".csv" if str(path) == "-" else _suffix(path)
    if str(path) != "-" and not path.is_file():
        raise UserError(
            f"no data file at {path}; check the name, or give a .csv, .npy or .parquet file "
            "('-' reads CSV from standard input)."
        )
    if header is not None and suffix in (".npy", ".parquet", ".pq"):
        _refuse_header(path, suffix, header)
    names: list[str] | None = None
    if suffix == ".npy":
        data = _read_npy(path)
    elif suffix in (".parquet", ".pq"):
        data, names = _read_parquet(path, columns, drop, missing)
    elif suffix in TEXT_SUFFIXES:
        data, names = read_csv(path, header=header, columns=columns, drop=drop, missing=missing)
    else:
        ending = f"format {suffix!r}" if suffix else "format (the name has no ending)"
        raise UserError(
            f"{path}: unknown data {ending}; give a .csv/.tsv/.txt (also .gz), .npy or "
            ".parquet file, renaming it if it holds one of those."
        )
    data = _two_dimensional(np.asarray(data), path)
    if suffix == ".npy" and (columns or drop):
        kept = _kept(None, data.shape[1], columns, drop, path)
        data = data[:, kept]
    data = data if data.dtype in (np.float32, np.float64) else data.astype(np.float64)
    return Table(data, names)


def _refuse_header(path: Path, suffix: str, header: bool) -> None:
    # Ignoring the switch would let the user believe it did something.
    flag = "--header" if header else "--no-header"
    if suffix == ".npy":
        kind = ".npy file has no header line"
    else:
        kind = "Parquet file keeps its column names apart from the values"
    raise UserError(f"{flag} applies to CSV files only, and a {kind} ({path}); leave {flag} out.")


def _two_dimensional(data: np.ndarray, path: Path) -> np.ndarray:
    """``data`` as rows x columns (one column for 1-D), refused unless real numbers."""
    if data.ndim == 1:
        data = data[:, None]
    if data.dtype.kind not in "fiub":
        raise UserError(
            f"{path} holds values of type {data.dtype}, not real numbers; save a table of "
            "numbers (e.g. numpy.save(path, X.astype(float)))."
        )
    if data.ndim != 2:
        raise UserError(
            f"{path} holds an array of shape {data.shape}; save a table of rows and columns "
            "(a 2-D array, e.g. X.reshape(len(X), -1))."
        )
    if data.shape[0] == 0:
        raise UserError(f"{path} has no rows of data; give a table with at least one row.")
    return data


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise UserError(
            f"{path} is not a complete numeric .npy file ({error}); write it again with numpy.save."
        ) from error


def _kept(
    names: list[str] | None,
    width: int,
    columns: Sequence[str] | None,
    drop: Sequence[str] | None,
    path: Path,
) -> list[int]:
    """The positions --columns and --drop keep, by the CSV reader's rule (names, else
    positions counting from 0; a name two columns share is refused)."""
    try:
        return list(
            select_columns(None if names is None else tuple(names), width, columns, drop, path)
        )
    except ValueError as error:
        raise UserError(str(error)) from None


def _read_parquet(
    path: Path, columns: Sequence[str] | None, drop: Sequence[str] | None, missing: bool = False
) -> tuple[np.ndarray, list[str]]:
    require_extra("pyarrow", "reading Parquet")
    import pyarrow.parquet as pq

    try:  # ParquetFile, not read_table: it reads columns that share a name, to refuse them
        parquet = pq.ParquetFile(path)
        try:
            table = parquet.read()
        finally:
            parquet.close()
    except Exception as error:  # pyarrow raises its own error types for bad files
        raise UserError(
            f"{path} is not a readable Parquet file ({error}); write it again (e.g. with "
            "pyarrow or pandas.DataFrame.to_parquet)."
        ) from error
    names = [str(name) for name in table.column_names]
    kept = (
        _kept(names, len(names), columns, drop, path)
        if columns or drop
        else list(range(len(names)))
    )
    _check_parquet_names([names[j] for j in kept], kept, path)
    values = [_parquet_column(table.column(j), names[j], path, missing) for j in kept]
    data = np.column_stack(values) if values else np.empty((table.num_rows, 0))
    return data, [names[j] for j in kept]


def _check_parquet_names(names: list[str], positions: list[int], path: Path) -> None:
    """Column names identify columns in models and outputs: each must be given, once."""
    for name, position in zip(names, positions, strict=True):
        if not name.strip():
            raise UserError(
                f"column {position} (counting from 0) of {path} has an empty name; name it, "
                f"or leave it out with --drop {position}."
            )
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise UserError(
            f"{path} names column(s) {', '.join(map(repr, repeated))} more than once; rename "
            "them, or choose one by position with --columns (positions count from 0)."
        )


def _parquet_column(column: Any, name: str, path: Path, missing: bool = False) -> np.ndarray:
    if column.null_count and not missing:
        raise UserError(
            f"{path}: column {name!r} has {column.null_count} missing values; fill or remove "
            f"them (no row is dropped silently), leave the column out with --drop {name}, "
            "or pass --missing to read them as missing cells."
        )
    if column.null_count:
        import pyarrow as pa

        if pa.types.is_boolean(column.type):  # NumPy has no boolean NaN: read as 0/1
            column = column.cast(pa.float64())
    values = column.to_numpy()  # nulls of a numeric column become NaN
    if values.dtype.kind not in "fiub":
        raise UserError(
            f"{path}: column {name!r} is not numeric ({values.dtype}); leave it out with "
            f"--drop {name}, or choose the numeric columns with --columns."
        )
    return np.asarray(values, dtype=np.float64)


def _column_names(table: np.ndarray, names: Sequence[str] | None) -> list[str]:
    if names is not None and len(names) == table.shape[1]:
        return [str(name) for name in names]
    return [f"x{j}" for j in range(table.shape[1])]


def write_data(path: str | Path, values: Any, names: Sequence[str] | None = None) -> Path:
    """Write an array to ``.csv``, ``.npy`` or ``.parquet`` (chosen by suffix); CSV and
    Parquet get the column ``names`` (``x0, x1, ...`` without them)."""
    path = Path(path)
    array = np.asarray(values)
    table = array if array.ndim == 2 else array.reshape(-1, 1)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, array)
    elif suffix in (".parquet", ".pq"):
        require_extra("pyarrow", "writing Parquet")
        import pyarrow as pa
        import pyarrow.parquet as pq

        labels = _column_names(table, names)
        pq.write_table(pa.table({label: table[:, j] for j, label in enumerate(labels)}), path)
    elif suffix in (".csv", ".txt"):
        fmt = "%d" if table.dtype.kind in "iub" else "%.10g"
        header = ",".join(_column_names(table, names))
        np.savetxt(path, table, delimiter=",", fmt=fmt, header=header, comments="")
    else:
        raise UserError(
            f"{path}: unknown output format {suffix!r}; end the name with .csv, .npy or .parquet."
        )
    return path


def emit(
    values: Any, out: str | None, stream: TextIO | None = None, names: Sequence[str] | None = None
) -> None:
    """Write ``values`` to the file ``out`` or, without one, as CSV (with a header line of
    ``names`` when given) to ``stream``."""
    if out:
        write_data(out, values, names)
        return
    table = np.asarray(values)
    table = table if table.ndim == 2 else table.reshape(-1, 1)
    fmt = "%d" if table.dtype.kind in "iub" else "%.10g"
    header = ",".join(_column_names(table, names)) if names is not None else ""
    np.savetxt(stream or sys.stdout, table, delimiter=",", fmt=fmt, header=header, comments="")

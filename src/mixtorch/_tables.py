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

from ._csv import read_csv

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
) -> Table:
    """Read a numeric table: CSV/TSV/TXT (optionally ``.gz``; ``-`` is standard input, read
    as CSV), ``.npy`` or Parquet. See :mod:`mixtorch._csv` for the header rule.

    Returns
    -------
    Table
        float64 values of shape (n_samples, n_features) (float32 kept for .npy) and the
        column names when the file has them.
    """
    path = Path(path)
    suffix = ".csv" if str(path) == "-" else _suffix(path)
    if str(path) != "-" and not path.is_file():
        raise UserError(f"no data file at {path}")
    names: list[str] | None = None
    if suffix == ".npy":
        data = _read_npy(path)
    elif suffix in (".parquet", ".pq"):
        data, names = _read_parquet(path)
    elif suffix in TEXT_SUFFIXES:
        data, names = read_csv(path, header=header, columns=columns, drop=drop)
    else:
        raise UserError(f"{path}: unknown data format {suffix!r} (use .csv, .npy or .parquet)")
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0 or data.dtype.kind not in "fiub":
        raise UserError(
            f"{path} must hold a non-empty numeric table, got {data.shape} {data.dtype}"
        )
    if suffix not in TEXT_SUFFIXES and (columns or drop):
        data, names = _select(data, names, columns, drop, path)
    data = data if data.dtype in (np.float32, np.float64) else data.astype(np.float64)
    return Table(data, names)


def _read_npy(path: Path) -> np.ndarray:
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, EOFError, OSError) as error:
        raise UserError(f"{path} is not a complete numeric .npy file ({error})") from error


def _select(
    data: np.ndarray,
    names: list[str] | None,
    columns: Sequence[str] | None,
    drop: Sequence[str] | None,
    path: Path,
) -> tuple[np.ndarray, list[str] | None]:
    labels = names or [str(j) for j in range(data.shape[1])]

    def position(key: str) -> int:
        if key in labels:
            return labels.index(key)
        raise UserError(f"{path} has no column {key!r} (columns are {', '.join(labels)})")

    chosen = [position(key) for key in columns] if columns else list(range(data.shape[1]))
    dropped = {position(key) for key in drop or ()}
    kept = [j for j in chosen if j not in dropped]
    if not kept:
        raise UserError(f"no columns of {path} are left to read")
    return data[:, kept], None if names is None else [names[j] for j in kept]


def _read_parquet(path: Path) -> tuple[np.ndarray, list[str]]:
    require_extra("pyarrow", "reading Parquet")
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises its own error types for bad files
        raise UserError(f"{path} is not a readable Parquet file ({error})") from error
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        if column.null_count:
            raise UserError(f"{path}: column {name!r} has {column.null_count} missing values")
        values = column.to_numpy()
        if values.dtype.kind not in "fiub":
            raise UserError(f"{path}: column {name!r} is not numeric ({values.dtype})")
        columns.append(values.astype(np.float64))
    data = np.column_stack(columns) if columns else np.empty((0, 0))
    return data, list(table.column_names)


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
        raise UserError(f"{path}: unknown output format {suffix!r} (use .csv, .npy or .parquet)")
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

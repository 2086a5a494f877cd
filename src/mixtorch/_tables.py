"""Numeric tables in and out of files for the command line: CSV/TSV/TXT, ``.npy``
(never pickled) and Parquet (through pyarrow)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, TextIO

import numpy as np

__all__ = ["UserError", "emit", "read_data", "write_data"]


class UserError(Exception):
    """A mistake the user can fix; the command line reports it in one line, exit code 2."""


def read_data(path: str | Path) -> np.ndarray:
    """Read a numeric table: CSV/TSV/TXT (an optional header line), ``.npy`` or Parquet.

    Returns
    -------
    ndarray of shape (n_samples, n_features), float64 (float32 kept for .npy)
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"no data file at {path}")
    suffix = path.suffix.lower()
    if suffix == ".npy":
        try:
            data = np.load(path, allow_pickle=False)
        except ValueError as error:
            raise UserError(f"{path} is not a plain numeric .npy file ({error})") from error
    elif suffix in (".parquet", ".pq"):
        data = _read_parquet(path)
    elif suffix in (".csv", ".tsv", ".txt", ".dat"):
        data = _read_text(path)
    else:
        raise UserError(f"{path}: unknown data format {suffix!r} (use .csv, .npy or .parquet)")
    data = np.asarray(data)
    if data.ndim == 1:
        data = data[:, None]
    if data.ndim != 2 or data.shape[0] == 0 or data.dtype.kind not in "fiub":
        raise UserError(
            f"{path} must hold a non-empty numeric table, got {data.shape} {data.dtype}"
        )
    return data if data.dtype in (np.float32, np.float64) else data.astype(np.float64)


def _read_text(path: Path) -> np.ndarray:
    with path.open(encoding="utf-8") as handle:
        first = handle.readline()
    preferred = "\t" if path.suffix.lower() == ".tsv" else ","
    # A single column has no delimiter at all; numpy then splits on whitespace.
    delimiter = preferred if preferred in first else None
    try:
        [float(cell) for cell in first.split(delimiter)]
        header = 0
    except ValueError:
        header = 1
    try:
        return np.loadtxt(path, delimiter=delimiter, skiprows=header, ndmin=2)
    except ValueError as error:
        raise UserError(f"{path}: not a numeric table ({error})") from error


def _read_parquet(path: Path) -> np.ndarray:
    try:
        import pyarrow.parquet as pq
    except ImportError as error:
        raise UserError("reading Parquet needs pyarrow: pip install 'mixtorch[io]'") from error
    try:
        table = pq.read_table(path)
    except Exception as error:  # pyarrow raises its own error types for bad files
        raise UserError(f"{path} is not a readable Parquet file ({error})") from error
    columns = []
    for name, column in zip(table.column_names, table.columns, strict=True):
        values = column.to_numpy()
        if values.dtype.kind not in "fiub":
            raise UserError(f"{path}: column {name!r} is not numeric ({values.dtype})")
        columns.append(values.astype(np.float64))
    return np.column_stack(columns) if columns else np.empty((0, 0))


def write_data(path: str | Path, values: Any) -> Path:
    """Write an array to ``.csv``, ``.npy`` or ``.parquet`` (chosen by suffix)."""
    path = Path(path)
    array = np.asarray(values)
    table = array if array.ndim == 2 else array.reshape(-1, 1)
    suffix = path.suffix.lower()
    if suffix == ".npy":
        np.save(path, array)
    elif suffix in (".parquet", ".pq"):
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {f"x{j}": table[:, j] for j in range(table.shape[1])}
        pq.write_table(pa.table(columns), path)
    elif suffix in (".csv", ".txt"):
        fmt = "%d" if table.dtype.kind in "iub" else "%.10g"
        np.savetxt(path, table, delimiter=",", fmt=fmt)
    else:
        raise UserError(f"{path}: unknown output format {suffix!r} (use .csv, .npy or .parquet)")
    return path


def emit(values: Any, out: str | None, stream: TextIO | None = None) -> None:
    """Write ``values`` to the file ``out`` or, without one, as CSV to ``stream``."""
    if out:
        write_data(out, values)
        return
    table = np.asarray(values)
    table = table if table.ndim == 2 else table.reshape(-1, 1)
    fmt = "%d" if table.dtype.kind in "iub" else "%.10g"
    np.savetxt(stream or sys.stdout, table, delimiter=",", fmt=fmt)

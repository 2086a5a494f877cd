"""The one CSV reader of mixtorch: the command line and the directory sources use it.

Header rule
-----------
``header=True``: the first line holds column names. ``header=False``: the first line is
data. ``header=None`` (the default) guesses, and refuses when it cannot tell:

* every cell of the first line is a number -> data;
* every cell is a name (not a number, not empty, not a missing-value marker such as
  ``NA``) and the second line holds at least one number -> a header (a text column
  then fails by name);
* anything else (mixed cells, ``NA``, empty cells, a single line, two lines of names)
  -> ``ValueError`` asking for ``header=True/False`` (``--header/--no-header`` on the
  command line).

A UTF-8 byte-order mark is removed before the guess, so it never turns the first row
into a "header". No row is ever dropped: a cell that is not a number, a missing value
(``NA``, empty, ``nan``), an infinity or a row with the wrong number of cells is a
``ValueError`` naming the file, the line and the column. ``#`` is not a comment marker.
Files may be gzip-compressed (``.gz``) and ``-`` reads standard input.

With ``missing=True`` (a fit with ``missing_values=np.nan``; ``--missing`` and the
commands that apply a model on the command line) the missing-value markers are read as
NaN instead, and a first line of numbers and missing cells is data.
"""

from __future__ import annotations

import csv
import gzip
import io
import itertools
import math
import re
import sys
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from ._chunk_source import source_rows

__all__ = ["CsvLayout", "csv_chunks", "open_text", "read_csv", "select_columns"]

MISSING = frozenset({"", "na", "n/a", "nan", "null", "none", "?", "-", "#n/a"})
# What NumPy's reader takes as a number. Python's float() also takes "1_000" and
# non-ASCII digits, which NumPy refuses: such a cell must be reported, not called a number.
_NUMBER = re.compile(
    r"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)",
    re.IGNORECASE | re.ASCII,
)
# A damaged or truncated gzip file fails while it is read, with one of these.
_READ_ERRORS = (OSError, EOFError, zlib.error)


@dataclass(frozen=True)
class CsvLayout:
    """What the first lines of a CSV file say about it.

    Attributes
    ----------
    delimiter : str or None
        ``None`` splits on whitespace.
    names : tuple of str or None
        Column names when the file has a header.
    columns : tuple of int
        Positions of the columns read (all unless a selection was asked for).
    """

    delimiter: str | None
    names: tuple[str, ...] | None
    columns: tuple[int, ...]

    @property
    def selected_names(self) -> list[str] | None:
        return None if self.names is None else [self.names[j] for j in self.columns]


def open_text(path: str | Path) -> IO[str]:
    """A text handle on ``path`` (``-`` is standard input, ``.gz`` is decompressed), with
    any UTF-8 byte-order mark removed."""
    if str(path) == "-":
        return io.TextIOWrapper(sys.stdin.buffer, encoding="utf-8-sig", newline="")
    if str(path).lower().endswith(".gz"):
        return gzip.open(path, "rt", encoding="utf-8-sig", newline="")
    return open(path, encoding="utf-8-sig", newline="")


def read_csv(
    path: str | Path,
    *,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    missing: bool = False,
) -> tuple[np.ndarray, list[str] | None]:
    """The whole table as float64 of shape (n_rows, n_columns), and its column names
    (missing cells as NaN when ``missing``, else an error)."""
    layout, chunks = csv_chunks(path, header=header, columns=columns, drop=drop, missing=missing)
    blocks = list(chunks)
    width = len(layout.columns)
    values = np.concatenate(blocks) if blocks else np.empty((0, width))
    return values, layout.selected_names


def csv_chunks(
    path: str | Path,
    *,
    header: bool | None = None,
    columns: Sequence[str] | None = None,
    drop: Sequence[str] | None = None,
    rows: int | None = None,
    missing: bool = False,
) -> tuple[CsvLayout, Iterator[np.ndarray]]:
    """The layout and an iterator of float64 blocks of at most ``rows`` rows (missing
    cells as NaN when ``missing``, else an error). ``rows=None`` sizes the blocks as the
    sources do (:func:`mixtorch.sources.source_chunk_rows` for the columns read, in
    float64); the text of a block's lines takes a few times its float64 bytes."""
    handle = open_text(path)
    shown = _shown(path)
    try:
        first, second, blank = _peek(handle, shown)
        delimiter = _delimiter(first, path)
        cells = _split(first, delimiter)
        if header is None:
            has_header = _guess_header(cells, _split(second, delimiter), shown, missing)
        else:
            has_header = header
        names = tuple(cell.strip().strip('"') for cell in cells) if has_header else None
        layout = CsvLayout(
            delimiter, names, select_columns(names, len(cells), columns, drop, shown)
        )
        _check_names(layout, shown)
    except BaseException:
        handle.close()
        raise
    lines = itertools.chain([] if has_header else [first], [second] if second else [], handle)
    start = blank + (2 if has_header else 1)  # line numbers in messages count every line
    block_rows = source_rows(rows, len(layout.columns), np.float64)
    blocks = _blocks(handle, lines, layout, len(cells), start, block_rows, shown, missing)
    return layout, blocks


def _shown(path: str | Path) -> str:
    """How messages name the file (``-`` is standard input)."""
    return "standard input ('-')" if str(path) == "-" else str(path)


def _check_names(layout: CsvLayout, path: str) -> None:
    """Every column read has a name of its own (outputs and models match columns by name)."""
    if layout.names is None:
        return
    for j in layout.columns:
        if not layout.names[j].strip():
            raise ValueError(
                f"the header of {path} leaves column {j} (counting from 0) without a name; "
                f"name it in the header line, or leave it out with --drop {j}."
            )
    chosen = [layout.names[j] for j in layout.columns]
    repeated = sorted({name for name in chosen if chosen.count(name) > 1})
    if not repeated:
        return
    if len(set(layout.columns)) != len(layout.columns):
        raise ValueError(f"--columns names a column of {path} more than once; name each once.")
    # outputs and models match columns by name: it must be unique
    raise ValueError(
        f"the header of {path} names column(s) {', '.join(map(repr, repeated))} more "
        "than once; rename them, or leave all but one out, by position, with --drop or "
        "--columns (column names identify columns in models and outputs)."
    )


def _peek(handle: IO[str], path: str | Path) -> tuple[str, str, int]:
    """The first non-blank line, the line after it and how many blank lines came first."""
    blank = 0
    try:
        first = handle.readline()
        while first and not first.strip():
            first, blank = handle.readline(), blank + 1
        second = handle.readline()
    except UnicodeDecodeError as error:
        raise ValueError(f"{path} is not UTF-8 text ({error}); save it as UTF-8.") from None
    except _READ_ERRORS as error:  # a damaged or not really gzipped .gz file
        raise ValueError(
            f"{path} cannot be read ({error}); if it is meant to be gzip-compressed, it is "
            "damaged: compress it again, or remove the .gz ending if it is plain text."
        ) from None
    if not first:
        raise ValueError(f"{path} is empty; give a table of numbers, one row per line.")
    return first, second, blank


def _delimiter(line: str, path: str | Path) -> str | None:
    if str(path).lower().removesuffix(".gz").endswith(".tsv") or "\t" in line:
        return "\t"
    if "," in line:
        return ","
    if ";" in line:
        return ";"
    return None


def _split(line: str, delimiter: str | None) -> list[str]:
    line = line.rstrip("\r\n")
    if delimiter is None:
        return line.split()
    if '"' in line:  # a quoted cell may hold the delimiter, as NumPy's reader allows
        return next(csv.reader([line], delimiter=delimiter))
    return line.split(delimiter)


def _kind(cell: str) -> str:
    text = cell.strip().strip('"')
    if text.lower() in MISSING:
        return "missing"
    return "number" if _NUMBER.fullmatch(text) else "name"


def _guess_header(first: list[str], second: list[str], path: str | Path, missing: bool) -> bool:
    kinds = {_kind(cell) for cell in first}
    if kinds == {"number"} or (missing and kinds == {"number", "missing"}):
        return False
    if kinds == {"name"} and second and "number" in {_kind(cell) for cell in second}:
        return True
    hint = (
        " It has missing cells: --missing (missing_values=np.nan) reads them as NaN."
        if kinds == {"number", "missing"}
        else ""
    )
    raise ValueError(
        f"cannot tell whether the first line of {path} ({','.join(first)!r}) is a header or "
        "data: pass --header or --no-header (header=True/False). No row is dropped "
        f"silently.{hint}"
    )


def select_columns(
    names: tuple[str, ...] | None,
    width: int,
    columns: Sequence[str] | None,
    drop: Sequence[str] | None,
    path: str | Path,
) -> tuple[int, ...]:
    """The positions that ``columns`` (all when None) less ``drop`` keep, each key a
    column's name or its position counting from 0; ValueError naming ``path`` for a
    key that names no column, or a name that two columns share."""

    def position(key: str) -> int:
        if names is not None and key in names:
            shared = [j for j, name in enumerate(names) if name == key]
            if len(shared) > 1:
                raise ValueError(
                    f"{path} has {len(shared)} columns named {key!r} (positions "
                    f"{', '.join(map(str, shared))}, counting from 0); choose by position "
                    "instead of by that name."
                )
            return shared[0]
        if key.isdigit() and int(key) < width:
            return int(key)
        if names is None:
            raise ValueError(
                f"{path} has no column {key!r} (its {width} columns have no names); give a "
                f"column's position counting from 0 (0 to {width - 1})."
            )
        raise ValueError(
            f"{path} has no column {key!r} (its columns are {', '.join(names)}); give a "
            f"column's name or its position counting from 0 (0 to {width - 1})."
        )

    chosen = [position(key) for key in columns] if columns else list(range(width))
    dropped = {position(key) for key in drop or ()}
    kept = tuple(j for j in chosen if j not in dropped)
    if not kept:
        raise ValueError(f"--columns/--drop leave no column of {path} to read; keep at least one.")
    return kept


def _blocks(
    handle: IO[str],
    lines: Iterator[str],
    layout: CsvLayout,
    width: int,
    start: int,
    rows: int,
    path: str | Path,
    missing: bool,
) -> Iterator[np.ndarray]:
    number = start
    try:
        while True:
            try:
                raw = list(itertools.islice(lines, rows))
            except UnicodeDecodeError as error:
                raise ValueError(f"{path} is not UTF-8 text ({error}); save it as UTF-8.") from None
            except _READ_ERRORS as error:  # a truncated or damaged .gz file
                raise ValueError(
                    f"{path} cannot be read to its end ({error}): the file is truncated or "
                    "damaged; compress or copy it again."
                ) from None
            if not raw:
                return
            # blank lines are skipped, but counted so that messages name the right line
            numbers = [number + i for i, line in enumerate(raw) if line.strip()]
            if numbers:
                block = [raw[n - number] for n in numbers] if len(numbers) < len(raw) else raw
                yield _parse(block, layout, width, numbers, path, missing)
            number += len(raw)
    finally:
        handle.close()


def _parse(
    block: list[str],
    layout: CsvLayout,
    width: int,
    numbers: list[int],
    path: str | Path,
    missing: bool,
) -> np.ndarray:
    """The block's values; ``numbers`` are its lines' numbers in the file."""
    _check_widths(block, layout.delimiter, width, numbers, path)
    values = _load(block, layout, None)
    if values is None and missing:  # the slower reader that knows the missing markers
        values = _load(block, layout, _missing_as_nan)
    if values is None or values.shape[0] != len(block):
        _raise_bad_cell(block, layout, numbers, path, missing)
    assert values is not None
    # NaN is a missing entry only when missing entries are allowed; infinity never is
    if np.isinf(values).any() or (not missing and np.isnan(values).any()):
        _raise_bad_cell(block, layout, numbers, path, missing)
    return values


def _check_widths(
    block: list[str], delimiter: str | None, width: int, numbers: list[int], path: str | Path
) -> None:
    """Every line has ``width`` cells: NumPy's reader, told which columns to read,
    would otherwise drop surplus cells (or a short row's unread ones) silently."""
    if delimiter is None:
        counts = [len(line.split()) for line in block]
    else:  # fast; a line that seems off is split again, minding quoted cells
        counts = [line.count(delimiter) + 1 for line in block]
    for line, count, number in zip(block, counts, numbers, strict=True):
        cells = count if count == width else len(_split(line, delimiter))
        if cells != width:
            raise ValueError(
                f"line {number} of {path} has {cells} cells, expected {width} like the first "
                "line; fix that row (a trailing delimiter counts as an empty cell). No row "
                "or cell is dropped silently."
            )


def _load(block: list[str], layout: CsvLayout, converter: Any) -> np.ndarray | None:
    try:
        return np.loadtxt(
            block,
            delimiter=layout.delimiter,
            usecols=layout.columns,
            comments=None,
            quotechar='"',  # "1.5" is a number, as spreadsheets and pandas write it
            ndmin=2,
            dtype=np.float64,
            converters=converter,
        )
    except ValueError:
        return None


def _missing_as_nan(cell: str) -> float:
    text = cell.strip().strip('"')
    return math.nan if text.lower() in MISSING else float(text)


def _raise_bad_cell(
    block: list[str],
    layout: CsvLayout,
    numbers: list[int],
    path: str | Path,
    missing: bool,
) -> None:
    names = layout.names
    for line, number in zip(block, numbers, strict=True):
        cells = _split(line, layout.delimiter)
        where = f"line {number} of {path}"
        for j in layout.columns:
            column = repr(names[j]) if names else str(j)
            kind = _kind(cells[j])
            value = float(cells[j].strip().strip('"')) if kind == "number" else None
            if kind == "name":
                raise ValueError(
                    f"column {column} of {path} is not numeric: {cells[j].strip()!r} on "
                    f"{where}. Drop it (--drop) or choose columns (--columns)."
                )
            infinite = value is not None and np.isinf(value)
            if (kind == "missing" and not missing) or infinite:
                advice = (
                    ": infinite values are never read as missing"
                    if infinite
                    else ", or pass --missing (missing_values=np.nan) to read missing cells "
                    "as NaN for a Gaussian mixture that marginalises them"
                )
                raise ValueError(
                    f"{where} has a missing or infinite value ({cells[j].strip()!r}) in "
                    f"column {column}; fill or remove it (no row is dropped silently)"
                    f"{advice}."
                )
    raise ValueError(
        f"{path}: lines {numbers[0]}-{numbers[-1]} do not parse as numbers; look for "
        "unusual characters (non-ASCII digits, thousands separators) in them."
    )

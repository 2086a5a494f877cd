"""What the ``mixtorch`` commands check before they work (see :mod:`mixtorch.cli`): input
and output paths, the values read, the models loaded and the lists given as options.
Every refusal is a :class:`~mixtorch._tables.UserError` whose message names the option
or file and says what to do."""

from __future__ import annotations

import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._tables import Table, UserError

__all__ = [
    "COVARIANCE_TYPES",
    "check_data_path",
    "check_folder",
    "check_out",
    "check_rows",
    "check_table",
    "components_list",
    "covariance_list",
    "require_method",
]

#: In the order ``select`` tries them (``covariance.COVARIANCE_TYPES`` has another order).
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
#: ``--components 1-1000000000`` would build a list before any check could refuse it.
MAX_CANDIDATES = 10_000
#: The suffixes ``_tables.write_data`` writes; checked before the work, not after it.
DATA_SUFFIXES = (".csv", ".txt", ".npy", ".parquet", ".pq")
#: The model classes that have a density (``score_samples``) and ``sample``.
DENSITY_MODELS = "GaussianMixture, Gaussian, GaussianKDE or BayesianGaussianMixture"


def check_data_path(text: str) -> None:
    """Refuse a DATA argument that is a directory or not a regular file, saying so
    (the reader would only say that there is no data file)."""
    if text == "-":
        return
    path = Path(text)
    if path.is_dir():
        raise UserError(
            f"{text} is a directory, not a data file; give a .csv, .npy or .parquet file."
        )
    if path.exists() and not path.is_file():
        raise UserError(
            f"{text} is not a regular file (a device or pipe); to read a stream, pass '-' "
            "and send the CSV to standard input."
        )
    if path.suffix.lower() == ".npy" and path.is_file():
        _check_npy_header(path)


def _check_npy_header(path: Path) -> None:
    """Refuse a .npy file that is not one, or holds Python objects, in words that fit the
    command line (NumPy's would suggest ``allow_pickle=``)."""
    try:
        with path.open("rb") as handle:
            if np.lib.format.read_magic(handle) == (1, 0):
                _, _, dtype = np.lib.format.read_array_header_1_0(handle)
            else:
                _, _, dtype = np.lib.format.read_array_header_2_0(handle)
    except (ValueError, EOFError, SyntaxError) as error:
        raise UserError(
            f"{path} is not a valid .npy file ({error}); write it with numpy.save."
        ) from None
    if dtype.hasobject:
        raise UserError(
            f"{path} holds Python objects (a pickled array), which are never loaded; save a "
            "numeric array, e.g. numpy.save(path, X.astype(float))."
        )


def check_table(table: Table, source: str) -> None:
    """Refuse a table without columns, and NaN and infinite values (.npy and Parquet; the
    CSV reader refuses them itself), naming the first one's row and column: no row is
    dropped silently."""
    if table.values.shape[1] == 0:
        raise UserError(f"{source} has no columns; give a table with at least one.")
    finite = np.isfinite(table.values)
    if finite.all():
        return
    row, column = (int(index) for index in np.argwhere(~finite)[0])
    value = float(table.values[row, column])
    name = repr(table.names[column]) if table.names else str(column)
    what = "NaN (a missing value)" if np.isnan(value) else f"an infinite value ({value})"
    count = int((~finite).sum())
    raise UserError(
        f"{source} holds {what} in row {row + 1}, column {name} ({count} non-finite "
        "value(s) in all); fill or remove them (no row is dropped silently)."
    )


def check_rows(table: Table, source: str, least: int, reason: str) -> None:
    """Refuse data with fewer than ``least`` rows; ``reason`` says why they are needed
    and what to do (``{rows}`` in it becomes the number of rows)."""
    rows = table.values.shape[0]
    if rows < least:
        raise UserError(
            f"{source} has {rows} row(s), too few: {reason.replace('{rows}', str(rows))}."
        )


def check_out(
    out: str | Path, inputs: Sequence[str | None], flag: str = "--out", kind: str = "model"
) -> Path:
    """``out`` if a ``kind`` file ('model', 'data' or 'picture') can be written there and
    it is none of the ``inputs``; else OSError/UserError naming ``flag``."""
    from ._model_file import check_writable  # torch: loaded when an output is checked

    if str(out) == "-":
        raise UserError(
            f"{flag} -: a {kind} file cannot be written to standard output; give a file name."
        )
    path = Path(out)
    for given in inputs:
        if given and given != "-" and Path(given).exists() and path.exists():
            if path.samefile(given):  # also through links
                raise UserError(
                    f"{flag} {out} is an input file of this command; writing it would "
                    "destroy the input. Choose another name."
                )
    check_writable(path)
    suffix = path.suffix.lower()
    if kind == "data" and suffix not in DATA_SUFFIXES:
        raise UserError(
            f"{flag} {out}: unknown output format {suffix!r}; end the name with .csv, .npy "
            "or .parquet."
        )
    if kind == "picture" and suffix and suffix[1:] not in _picture_formats():
        raise UserError(
            f"{flag} {out}: matplotlib cannot write {suffix!r} files; end the name with "
            ".png, .pdf or .svg."
        )
    return path


def _picture_formats() -> set[str]:
    from matplotlib.backend_bases import FigureCanvasBase

    return set(FigureCanvasBase.get_supported_filetypes())


def check_folder(text: str, flag: str) -> None:
    """Refuse a folder that cannot be created, or written into, before the work starts."""
    folder = Path(text)
    if folder.exists() and not folder.is_dir():
        raise UserError(
            f"{flag} {text} is a file; this command writes several files into a folder: "
            "give a folder name."
        )
    existing = folder
    while not existing.exists():  # it is created with its parents; this one must take it
        existing = existing.parent
    if not existing.is_dir():
        raise UserError(f"{flag} {text}: {existing} is a file, not a folder; give a folder name.")
    try:
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as error:
        raise UserError(
            f"{flag} {text}: cannot create files in {existing} ({error.strerror or error}); "
            "choose a folder you can write to."
        ) from None


def require_method(model: Any, method: str, path: str, command: str) -> None:
    """Refuse a model that lacks ``method`` (a regressor has no density to score)."""
    if not hasattr(model, method):
        raise UserError(
            f"'mixtorch {command}' needs a model with a density, and {path} holds a "
            f"{type(model).__name__}; give a {DENSITY_MODELS} model file."
        )


def components_list(text: str, flag: str = "--components") -> list[int]:
    """``1-6`` or ``1,2,4`` as a list of distinct positive integers."""
    example = f"{flag} expects e.g. 1-6 or 1,2,4"
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            values: Sequence[int] = range(low, high + 1)
        else:
            values = [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise UserError(f"{example}, got {text!r}") from error
    if isinstance(values, range) and not values:
        raise UserError(f"{flag} {text} is an empty range; write {high}-{low}.")
    if not values:
        raise UserError(f"{example}, got {text!r}")
    if min(values) < 1:
        raise UserError(f"{flag} {text}: the number of components must be at least 1.")
    if len(values) > MAX_CANDIDATES:
        raise UserError(
            f"{flag} {text} asks for {len(values)} candidates; give at most {MAX_CANDIDATES}."
        )
    if len(set(values)) != len(values):
        repeated = sorted(value for value, count in Counter(values).items() if count > 1)
        raise UserError(f"{flag} {text} repeats {', '.join(map(str, repeated))}; give each once.")
    return list(values)


def covariance_list(text: str, flag: str = "--covariance") -> list[str]:
    """``all`` or a comma list of covariance types, each once."""
    if text.strip().lower() == "all":
        return list(COVARIANCE_TYPES)
    names = [name.strip().lower() for name in text.split(",")]
    unknown = [name for name in names if name not in COVARIANCE_TYPES]
    if unknown:
        raise UserError(
            f"{flag} {text!r}: {unknown[0]!r} is not a covariance type; give a comma list of "
            f"{', '.join(COVARIANCE_TYPES)}, or all."
        )
    if len(set(names)) != len(names):
        raise UserError(f"{flag} {text!r} names a covariance type twice; give each once.")
    return names

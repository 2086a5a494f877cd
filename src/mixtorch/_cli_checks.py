"""What the ``mixtorch`` commands check before they work (see :mod:`mixtorch.cli`): input
and output paths, the values read, the models loaded, the lists given as options and
what a plot can draw. Every refusal is a :class:`~mixtorch._tables.UserError` whose
message names the option or file and says what to do."""

from __future__ import annotations

import argparse
import math
import tempfile
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_missing import FILL_OR_MISSING, first_cell, refuse_missing
from ._tables import Table, UserError

__all__ = [
    "COVARIANCE_TYPES",
    "check_data_path",
    "check_drawable",
    "check_fit_rows",
    "check_folder",
    "check_out",
    "check_plot_kind",
    "check_rows",
    "check_select_rows",
    "check_table",
    "components_list",
    "covariance_list",
    "require_method",
    "select_folds",
]

#: In the order ``select`` tries them (``covariance.COVARIANCE_TYPES`` has another order).
COVARIANCE_TYPES = ("full", "diag", "spherical", "tied")
#: ``--components 1-1000000000`` would build a list before any check could refuse it.
MAX_CANDIDATES = 10_000
#: The suffixes ``_tables.write_data`` writes; checked before the work, not after it.
DATA_SUFFIXES = (".csv", ".txt", ".npy", ".parquet", ".pq")
#: The endings of model file names (safetensors files; see mixtorch.io.save).
MODEL_SUFFIXES = (".mixtorch", ".safetensors")
#: How far, in standard deviations, the plots draw a model's components.
PLOT_REACH = 4
#: Histogram bins of the 1-D density plot.
PLOT_BINS = 40
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
    if not path.is_file():
        return  # the reader says that there is no data file there
    try:
        with open(path, "rb"):
            pass
    except OSError as error:
        raise UserError(
            f"cannot read {text} ({error.strerror or error}); check its permissions, or copy "
            "it somewhere you may read it."
        ) from None
    if path.suffix.lower() == ".npy":
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


def check_table(table: Table, source: str, missing: bool = False) -> None:
    """Refuse a table without columns and infinite values, and NaN (a missing cell) unless
    ``missing`` (.npy and Parquet; the CSV reader refuses them itself), naming the first
    one's row and column: no row is dropped silently."""
    if table.values.shape[1] == 0:
        raise UserError(f"{source} has no columns; give a table with at least one.")
    infinite = np.isinf(table.values)
    if infinite.any():
        row, name = first_cell(infinite, table)
        value = float(table.values[infinite][0])
        raise UserError(
            f"{source} holds an infinite value ({value}) in row {row}, column {name} "
            f"({int(infinite.sum())} in all); fill or remove them (no row is dropped "
            "silently): infinite values are never read as missing."
        )
    if not missing:
        refuse_missing(table, source, FILL_OR_MISSING)


def check_rows(table: Table, source: str, least: int, reason: str) -> None:
    """Refuse data with fewer than ``least`` rows; ``reason`` says why they are needed
    and what to do (``{rows}`` in it becomes the number of rows)."""
    rows = table.values.shape[0]
    if rows < least:
        raise UserError(
            f"{source} has {rows} row(s), too few: {reason.replace('{rows}', str(rows))}."
        )


def check_fit_rows(table: Table, args: argparse.Namespace) -> None:
    check_rows(table, args.data, 2, "fitting needs at least 2")
    if args.components is not None:  # refused here, in words of the command line
        check_rows(
            table,
            args.data,
            args.components,
            f"-k {args.components} needs at least one row per component; use -k {{rows}} or "
            "less, or 'mixtorch select' to choose K",
        )


def check_select_rows(table: Table, args: argparse.Namespace, most: int, folds: int) -> None:
    check_rows(table, args.data, 2, "fitting needs at least 2")
    check_rows(
        table,
        args.data,
        most,
        f"--components {args.components} goes up to {most} and a mixture needs "
        "at least one row per component; use values up to {rows}",
    )
    if args.criterion == "cv":
        check_rows(
            table, args.data, folds, f"--cv {folds} needs a row per fold; use --cv {{rows}} or less"
        )


def select_folds(args: argparse.Namespace) -> int:
    """--cv, which only --criterion cv uses (5 by default)."""
    if args.cv is None:
        return 5
    if args.criterion != "cv":
        raise UserError(
            f"--cv {args.cv} sets the folds of --criterion cv, not of {args.criterion}; "
            "drop --cv or add --criterion cv."
        )
    if args.cv < 2:
        raise UserError(f"--cv {args.cv}: cross-validation needs at least 2 folds.")
    return int(args.cv)


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
    if kind == "model" and suffix not in MODEL_SUFFIXES:
        _refuse_model_name(out, flag)
    if kind == "data" and suffix not in DATA_SUFFIXES:
        shown = repr(suffix) if suffix else "(none)"
        raise UserError(
            f"{flag} {out}: unknown output format {shown}; end the name with .csv, .npy "
            "or .parquet."
        )
    if kind == "picture" and suffix and suffix[1:] not in _picture_formats():
        raise UserError(
            f"{flag} {out}: matplotlib cannot write {suffix!r} files; end the name with "
            ".png, .pdf or .svg."
        )
    return path


def _refuse_model_name(out: str | Path, flag: str) -> None:
    """A model file named like data (model.csv) or like nothing would mislead whoever
    opens it next: model files are safetensors, named ``*.mixtorch``."""
    path = Path(out)
    if path.name.lower() in MODEL_SUFFIXES:  # ".mixtorch": an ending and no name
        raise UserError(
            f"{flag} {out}: give the model file a name before its ending, e.g. "
            f"{flag} {path.with_name('model' + path.name)}."
        )
    ending = path.suffix
    named = path.with_suffix(".mixtorch") if ending else path.with_name(path.name + ".mixtorch")
    raise UserError(
        f"{flag} {out}: model files are safetensors and their names end with .mixtorch (or "
        f".safetensors){f', not {ending}' if ending else ''}; give e.g. {flag} {named}."
    )


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
    # counted before anything walks through them: 1-99999999999999999999 is a range
    count = values[-1] - values[0] + 1 if isinstance(values, range) else len(values)
    if count > MAX_CANDIDATES:
        raise UserError(
            f"{flag} {text} asks for {count} candidates; give at most {MAX_CANDIDATES}."
        )
    if min(values) < 1:
        raise UserError(f"{flag} {text}: the number of components must be at least 1.")
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


def check_plot_kind(model: Any, kind: str, n_features: int) -> None:
    """Refuse, before any data are read, a plot that the model cannot give."""
    from .plotting import TRAINING_CURVES

    has_curve = any(getattr(model, name, None) is not None for name, _ in TRAINING_CURVES)
    fewer = "fit the model to 1 or 2 columns (--columns) for a density plot"
    if kind == "density" and n_features not in (1, 2):
        instead = "use --kind curve (the training curve)" if has_curve else fewer
        raise UserError(
            f"density plots need 1 or 2 features, the model has {n_features}; {instead}."
        )
    if kind == "traces" and not hasattr(model, "posterior_samples_"):
        drawable = {"density": n_features in (1, 2), "curve": has_curve}
        kinds = [name for name, works in drawable.items() if works]
        instead = f"use --kind {' or '.join(kinds)}" if kinds else fewer
        raise UserError(
            f"a {type(model).__name__} has no MCMC draws to plot (the models of "
            f"mixtorch.bayes, fitted in Python, have them); {instead}."
        )
    if kind == "curve" and not has_curve:
        instead = "use --kind density" if n_features in (1, 2) else fewer
        raise UserError(
            f"a {type(model).__name__} has no training curve to plot (it is not fitted by "
            f"iterations); {instead}."
        )


def check_drawable(model: Any, X: np.ndarray | None, model_path: str, data_path: str) -> None:
    """Refuse a density plot whose arithmetic would overflow.

    The plot evaluates the model's density on a grid spanning the data and the model's
    components, which squares distances across that window in the model's float type
    (float32 or float64). Values must stay below a quarter of the square root of the
    type's largest number, so that a distance across the window (at most about four such
    values) squares to a finite number; beyond that the picture would lose the model or
    matplotlib would fail.
    """
    mixture = getattr(model, "mixture_", None)
    if mixture is None:
        return  # the plotting function refuses it, in its own words
    import torch

    dtype = np.float32 if mixture.dtype == torch.float32 else np.float64
    limit = math.sqrt(float(np.finfo(dtype).max)) / 4
    means = np.abs(mixture.means.detach().cpu().numpy().astype(np.float64))
    variances = mixture.covariance.full_matrices(mixture.n_components).diagonal(dim1=-2, dim2=-1)
    spread = math.sqrt(float(variances.detach().cpu().double().max()))
    reach = float(means.max()) + PLOT_REACH * spread
    advice = f"{np.dtype(dtype).name} arithmetic overflows beyond about {limit:.1e}"
    if not reach < limit:
        raise UserError(
            f"the model in {model_path} reaches values of {reach:.3g}, too large to draw "
            f"({advice}); fit it to rescaled data (e.g. divided by a power of ten) and plot that."
        )
    largest = float(np.abs(X).max()) if X is not None else 0.0
    if not largest < limit:
        raise UserError(
            f"{data_path} holds values up to {largest:.3g}, too large to draw ({advice}); "
            "rescale the data (e.g. divide them by a power of ten), fit the model to the "
            "rescaled data and plot those."
        )
    if X is not None and X.shape[1] == 1:
        _check_bins(X[:, 0], data_path)


def _check_bins(values: np.ndarray, data_path: str) -> None:
    """Refuse 1-D data whose histogram bins float64 cannot tell apart (values of 1e17
    that differ by less than their spacing): NumPy would only say "too many bins"."""
    try:
        np.histogram_bin_edges(values, bins=PLOT_BINS)
    except ValueError:
        low, high = float(values.min()), float(values.max())
        raise UserError(
            f"{data_path}: its values (from {low:.17g} to {high:.17g}) lie too close together "
            f"for their size to be split into {PLOT_BINS} histogram bins; subtract a constant "
            "(e.g. their mean), fit the model to the shifted data and plot those."
        ) from None

"""Missing cells on the command line (see :mod:`mixtorch.cli`): which commands and models
take them, the refusals of those that do not, and ``mixtorch impute``'s work: filling
each missing cell with its conditional mean under a mixture, and writing the filled
table so that its observed cells read back exactly as they were."""

from __future__ import annotations

import csv
import sys
from collections.abc import Sequence
from typing import Any, TextIO

import numpy as np
import torch

from ._tables import Table, UserError, write_data
from .impute import GaussianMixtureImputer
from .mixture import Mixture

__all__ = [
    "FILL_OR_MISSING",
    "accepts_missing",
    "check_missing_cells",
    "check_observed_columns",
    "first_cell",
    "fill_missing",
    "refuse_missing",
    "write_filled",
]

#: Elements of the (rows, components, features) blocks of one conditioning step: bounds
#: the memory of imputation under a model with many components (a KDE has one per point).
CONDITIONING_BLOCK = 1 << 22


#: What to do about missing cells where a command could read them (fit and select).
FILL_OR_MISSING = (
    "fill or remove them (no row is dropped silently), or pass --missing to fit a Gaussian "
    "mixture whose EM marginalises them"
)


def refuse_missing(table: Table, source: str, advice: str) -> None:
    """Refuse missing cells (NaN) in ``table``, naming the first and how many there are;
    ``advice`` says what to do."""
    holes = np.isnan(table.values)
    if not holes.any():
        return
    row, name = first_cell(holes, table)
    raise UserError(
        f"{source} holds a missing value (an empty, NA or NaN cell) in row {row}, column "
        f"{name} ({int(holes.sum())} in all); {advice}."
    )


def first_cell(mask: np.ndarray, table: Table) -> tuple[int, str]:
    """The row (counting data rows from 1) and the column (its name, else its position
    counting from 0) of the first True cell of ``mask``."""
    row, column = (int(index) for index in np.argwhere(mask)[0])
    return row + 1, repr(table.names[column]) if table.names else str(column)


def accepts_missing(model: Any) -> bool:
    """Whether ``model`` scores and predicts rows with missing cells (a GaussianMixture
    fitted with ``--missing``, i.e. ``missing_values=np.nan``)."""
    return getattr(model, "missing_values", None) is not None


def check_missing_cells(table: Table, source: str, model: Any, path: str, command: str) -> None:
    """Refuse missing cells for ``mixtorch score``/``predict`` under a model that does not
    take them, and for ``mixtorch plot``, which draws complete rows only."""
    if command == "plot":
        advice = (
            "a plot draws complete rows only: fill the cells first ('mixtorch impute "
            f"{path} {source} -o filled.csv') and plot that, or leave DATA out"
        )
    elif accepts_missing(model):
        return
    else:
        advice = (
            f"the model in {path} was fitted without --missing and cannot {command} rows "
            "with missing cells: refit it with 'mixtorch fit DATA --missing' (--model gmm), "
            f"or fill the cells first ('mixtorch impute {path} {source} -o filled.csv')"
        )
    refuse_missing(table, source, advice)


def check_observed_columns(table: Table, source: str) -> None:
    """Refuse, before a fit with missing cells, a column that has no observed value: no
    parameter of it could be estimated."""
    empty = np.flatnonzero(np.isnan(table.values).all(axis=0))
    if empty.size == 0:
        return
    labels = [table.names[j] if table.names else str(j) for j in empty]
    raise UserError(
        f"column(s) {', '.join(map(repr, labels))} of {source} have no observed value "
        "(every cell is missing), so a mixture cannot learn anything about them; leave them "
        f"out with --drop {','.join(labels)}."
    )


# -- imputation ------------------------------------------------------------------------
def fill_missing(model: Any, X: np.ndarray, path: str) -> np.ndarray:
    """``X`` (NaN at missing cells, in the model's columns) with its missing cells filled
    under the model in ``path``: a saved ``GaussianMixtureImputer`` by its own
    ``transform``, any model holding a mixture (``mixture_``) by conditional means."""
    if isinstance(model, GaussianMixtureImputer):
        filled = np.asarray(model.transform(X))
        if filled.shape != X.shape:  # it leaves out features it saw no value of in fit
            raise UserError(
                f"the GaussianMixtureImputer in {path} leaves out the column(s) that had no "
                "observed value when it was fitted; save one fitted with "
                "keep_empty_features=True, or leave MODEL out to fit one to DATA."
            )
        return filled
    mixture = getattr(model, "mixture_", None)
    if not isinstance(mixture, Mixture):
        raise UserError(
            f"'mixtorch impute' needs a mixture to fill cells from, and {path} holds a "
            f"{type(model).__name__}; give a gmm, gaussian, kde or bayes model file (or a "
            "saved GaussianMixtureImputer), or leave MODEL out to fit one to DATA."
        )
    return conditional_means(mixture, X)


def conditional_means(mixture: Any, X: np.ndarray) -> np.ndarray:
    """A copy of ``X`` (n, D) whose NaN cells hold ``E[x_missing | x_observed]`` under
    ``mixture``, computed in its dtype on its device, one pattern of missing cells at a
    time (:meth:`mixtorch.Mixture.conditionals`); a row with nothing observed gets the
    mixture's mean. Observed cells are copied unchanged, in ``X``'s dtype."""
    filled = X.copy()
    observed = ~np.isnan(X)
    patterns, inverse = np.unique(observed, axis=0, return_inverse=True)
    inverse = inverse.reshape(-1)  # NumPy 2.0 and 2.1 shape it differently
    block = max(1, CONDITIONING_BLOCK // (mixture.n_components * mixture.n_features))
    for index, pattern in enumerate(patterns):
        if pattern.all():
            continue
        rows = np.flatnonzero(inverse == index)
        given, free = np.flatnonzero(pattern), np.flatnonzero(~pattern)
        if given.size == 0:  # nothing to condition on: the mixture itself
            mean = (mixture.weights @ mixture.means).cpu().numpy()
            filled[rows] = mean.astype(X.dtype)
            continue
        for start in range(0, rows.size, block):
            chunk = rows[start : start + block]
            values = torch.as_tensor(
                X[np.ix_(chunk, given)], dtype=mixture.dtype, device=mixture.device
            )
            means = mixture.conditionals(given.tolist(), values).mean()
            filled[np.ix_(chunk, free)] = means.cpu().numpy().astype(X.dtype)
    return filled


# -- output ----------------------------------------------------------------------------
def write_filled(values: np.ndarray, out: str | None, names: Sequence[str] | None) -> None:
    """The filled table to the file ``out`` (.csv/.txt, .npy or .parquet, by its ending)
    or, without one, as CSV to standard output. A CSV gets a header line only when the
    input had one (``names``), and every value in its shortest form that reads back
    exactly (``repr``), so that observed cells are not rounded."""
    if out is None:
        _write_csv(values, names, sys.stdout)
    elif out.lower().endswith((".csv", ".txt")):
        with open(out, "w", newline="", encoding="utf-8") as handle:
            _write_csv(values, names, handle)
    else:  # .npy keeps the dtype; Parquet names columns x0, x1, ... without names
        write_data(out, values, names)


def _write_csv(values: np.ndarray, names: Sequence[str] | None, stream: TextIO) -> None:
    writer = csv.writer(stream, lineterminator="\n")
    if names is not None:
        writer.writerow(names)
    if values.dtype == np.float32:  # str of a float32 is its shortest exact form
        writer.writerows([str(value) for value in row] for row in values)
    else:
        writer.writerows([repr(value) for value in row] for row in values.tolist())

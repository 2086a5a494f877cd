"""How :func:`mixtorch.selection.select` fits its candidates: convergence warnings
silenced and collapsed components held back (one warning for the whole sweep, a note in
the table), and the cross-validation folds every candidate is scored on."""

from __future__ import annotations

import numbers
import warnings
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, check_cv

from ._selection_checks import _is_dataframe
from ._warnings import user_stacklevel
from .exceptions import DegenerateComponentWarning
from .gaussian_mixture import GaussianMixture

if TYPE_CHECKING:
    from .selection import SelectionTable


#: The start of a table row's note for a candidate whose fit collapsed a component.
_COLLAPSED = "component(s) collapsed onto a point"


def _fit_quietly(model: GaussianMixture, X: Any, collapsed: list[bool]) -> GaussianMixture:
    """``model.fit(X)`` with ConvergenceWarning silenced (the table's ``converged``
    column reports it) and DegenerateComponentWarning held back: one ``True`` appended to
    ``collapsed`` instead (once per fit), so that :func:`select` warns once for the whole sweep. Any
    other warning is passed on."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("ignore", ConvergenceWarning)
        warnings.simplefilter("always", DegenerateComponentWarning)
        fitted = model.fit(X)
    if any(issubclass(record.category, DegenerateComponentWarning) for record in caught):
        collapsed.append(True)
    for record in caught:
        if not issubclass(record.category, DegenerateComponentWarning):
            warnings.warn(record.message, record.category, stacklevel=user_stacklevel())
    return fitted


def _warn_collapsed(table: SelectionTable, best: dict[str, Any], reg_covar: float) -> None:
    """One DegenerateComponentWarning naming every candidate with a collapsed component
    (and whether the best one, ``best``'s parameters, is among them)."""
    rows = [row for row in table if row["note"].startswith(_COLLAPSED)]
    if not rows:
        return
    named = [
        f"(n_components={row['n_components']}, covariance_type={row['covariance_type']!r})"
        for row in rows
    ]
    shown = ", ".join(named[:10]) + (f" and {len(named) - 10} more" if len(named) > 10 else "")
    chosen = any(
        (row["n_components"], row["covariance_type"])
        == (best["n_components"], best["covariance_type"])
        for row in rows
    )
    warnings.warn(
        f"{len(rows)} of {len(table)} candidates had a component collapse onto a point (its "
        f"variance at the reg_covar={reg_covar:g} floor, so its density is set by reg_covar, "
        f"not by the data): {shown}"
        + (", the best candidate among them" if chosen else "")
        + ". Their table rows say so in 'note'. Pass a larger reg_covar, de-duplicate the "
        "data, or use BayesianGaussianMixture.",
        DegenerateComponentWarning,
        stacklevel=user_stacklevel(),
    )


def _splits(cv: Any, X: Any, random_state: Any) -> list[tuple[np.ndarray, np.ndarray]]:
    """The (train, test) index pairs of ``cv``, drawn once so that every candidate is
    scored on the same splits (as GridSearchCV does)."""
    n_samples = int(X.shape[0])
    if isinstance(cv, bool) or (not isinstance(cv, numbers.Integral) and not _splitter(cv)):
        raise ValueError(
            "cv must be an integer >= 2, a cross-validation splitter (e.g. "
            f"sklearn.model_selection.KFold) or an iterable of (train, test) indices, got {cv!r}."
        )
    if isinstance(cv, numbers.Integral):
        folds = int(cv)
        if folds < 2:
            raise ValueError(f"cv must be an integer >= 2, got {cv!r}.")
        if folds > n_samples:
            raise ValueError(
                f"cv={folds} folds need at least {folds} rows, but X has {n_samples}; use "
                "fewer folds or criterion='bic'."
            )
        cv = KFold(n_splits=folds, shuffle=True, random_state=_fold_seed(random_state))
    splits = [
        (np.asarray(train), np.asarray(test))
        for train, test in check_cv(cv).split(np.zeros((n_samples, 1)))
    ]
    if not splits or any(len(train) < 2 or len(test) < 1 for train, test in splits):
        raise ValueError(
            "cv must give at least one split, each with at least two training rows and one "
            f"test row; got {[(len(train), len(test)) for train, test in splits]} "
            "(train, test) sizes."
        )
    return splits


def _splitter(cv: Any) -> bool:
    """A scikit-learn splitter (``split``) or an iterable of (train, test) pairs."""
    if isinstance(cv, (str, bytes, dict)):  # str has a split method, too
        return False
    return hasattr(cv, "split") or isinstance(cv, Iterable)


def _fold_seed(random_state: Any) -> Any:
    """What KFold takes (None, an int or a RandomState) for any ``random_state`` the
    estimators take: a Generator gives one integer seed from its stream."""
    if isinstance(random_state, np.random.Generator):
        return int(random_state.integers(2**32))
    if isinstance(random_state, torch.Generator):
        draw = torch.randint(2**31 - 1, (1,), generator=random_state, device=random_state.device)
        return int(draw.item())
    return random_state


def _cross_validate(
    model: GaussianMixture,
    X: Any,
    splits: list[tuple[np.ndarray, np.ndarray]],
    collapsed: list[bool],
) -> tuple[float, bool]:
    """The held-out log-likelihood per test row over all ``splits`` (for a partition into
    folds, the mean over all rows) and whether every fold's fit converged; a fold whose
    fit collapsed a component appends to ``collapsed``."""
    total, rows, converged = 0.0, 0, True
    for train, test in splits:
        fold_model = _fit_quietly(type(model)(**model.get_params()), _rows(X, train), collapsed)
        total += fold_model.score(_rows(X, test)) * len(test)
        rows += len(test)
        converged = converged and bool(fold_model.converged_)
    return float(total / rows), converged


def _rows(X: Any, index: np.ndarray) -> Any:
    if isinstance(X, torch.Tensor):
        return X[torch.as_tensor(index, device=X.device)]
    if _is_dataframe(X):
        return X.iloc[index]
    return np.asarray(X)[index]

"""Model selection for Gaussian mixtures: sweep the number of components and the
covariance types, score each by BIC, AIC or cross-validated held-out log-likelihood, and
keep the best.
"""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import KFold, check_cv
from sklearn.utils._param_validation import validate_parameter_constraints

from ._chunk_source import check_missing_values
from ._validation import to_tensor
from ._warnings import user_stacklevel
from .covariance import covariance_class
from .exceptions import DegenerateComponentWarning
from .fit.em import fixed_groups
from .gaussian_mixture import GaussianMixture
from .mixture import parameter_count

__all__ = ["CRITERIA", "SelectionResult", "SelectionTable", "select"]

#: Criterion name -> (table column, whether lower is better).
CRITERIA: dict[str, tuple[str, bool]] = {
    "bic": ("bic", True),
    "aic": ("aic", True),
    "cv": ("cv_log_likelihood", False),
}

#: The start of a table row's note for a candidate whose fit collapsed a component.
_COLLAPSED = "component(s) collapsed onto a point"

#: Called after each candidate with (done, total, row).
ProgressFn = Callable[[int, int, dict[str, Any]], None]


class SelectionTable(list):
    """The rows of a model-selection sweep (a list of dicts) that prints as a table.

    Parameters
    ----------
    iterable : iterable of dict, default=()
        The rows, each with at least ``n_components`` and ``covariance_type``;
        :func:`select` adds ``n_parameters``, ``log_likelihood``, the criterion's column,
        ``converged`` and ``note``.

    See Also
    --------
    select : Builds one.
    mixtorch.plotting.plot_criterion : Plots a column against K.

    Examples
    --------
    >>> from mixtorch.selection import SelectionTable
    >>> table = SelectionTable([
    ...     {"n_components": 1, "covariance_type": "full", "bic": 120.5},
    ...     {"n_components": 2, "covariance_type": "full", "bic": 98.25},
    ... ])
    >>> table.column("bic")
    ([1, 2], [120.5, 98.25])
    >>> print(table)
    n_components  covariance_type       bic
               1             full  120.5000
               2             full   98.2500
    """

    def column(self, name: str, covariance_type: str | None = None) -> tuple[list[int], list]:
        """``(n_components, values)`` of column ``name``, optionally for one covariance type.

        Parameters
        ----------
        name : str
            A column of the rows, such as ``'bic'`` or ``'log_likelihood'``.
        covariance_type : str, default=None
            Keep only rows of this covariance type; None keeps every row.

        Returns
        -------
        n_components : list of int
            K of each kept row, in table order.
        values : list
            The column's value in each kept row (NaN for a candidate that failed).

        Raises
        ------
        KeyError
            If the rows have no column ``name`` (the message lists the columns).
        ValueError
            If ``covariance_type`` is not a covariance type.

        See Also
        --------
        mixtorch.plotting.plot_criterion : Plots these columns.
        """
        if covariance_type is not None:
            covariance_class(covariance_type)  # ValueError naming the valid types
        if self and not any(name in row for row in self):
            raise KeyError(
                f"the selection table has no column {name!r}; its columns are {list(self[0])}."
            )
        rows = [row for row in self if covariance_type in (None, row["covariance_type"])]
        return [row["n_components"] for row in rows], [row[name] for row in rows]

    def __str__(self) -> str:
        if not self:
            return "(empty selection table)"
        names = list(self[0])
        cells = [[_format_cell(row[name]) for name in names] for row in self]
        widths = [max(len(name), *(len(line[i]) for line in cells)) for i, name in enumerate(names)]
        lines = ["  ".join(name.rjust(width) for name, width in zip(names, widths, strict=True))]
        lines += [
            "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True)) for line in cells
        ]
        return "\n".join(lines)


def _format_cell(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


@dataclass
class SelectionResult:
    """What :func:`select` found.

    Attributes
    ----------
    best_estimator_ : GaussianMixture
        The best candidate, fitted on all the data.
    best_params_ : dict
        Its ``n_components`` and ``covariance_type``.
    best_score_ : float
        Its criterion value.
    criterion : str
        'bic', 'aic' or 'cv'.
    table : SelectionTable
        One row per candidate: n_components, covariance_type, n_parameters,
        log_likelihood (mean per sample on the data it was fitted to), the criterion
        column, converged and a note (why a candidate failed, or that a fit of it collapsed
        a component onto a point; empty otherwise).
    column : str
        The table column holding the criterion (``'cv_log_likelihood'`` for 'cv').

    See Also
    --------
    select : Returns it.
    sklearn.model_selection.GridSearchCV : scikit-learn's generic search (its
        ``best_estimator_``/``best_params_``/``best_score_`` have the same meaning).

    Examples
    --------
    >>> import numpy as np
    >>> import mixtorch
    >>> X = np.random.default_rng(0).normal(size=(200, 2))
    >>> result = mixtorch.select(X, n_components=[1, 2], covariance_types=["diag"], random_state=0)
    >>> result.criterion, result.column
    ('bic', 'bic')
    >>> result.best_estimator_.n_components
    1
    """

    best_estimator_: GaussianMixture
    best_params_: dict[str, Any]
    best_score_: float
    criterion: str
    table: SelectionTable

    @property
    def column(self) -> str:
        """The table column holding the criterion."""
        return CRITERIA[self.criterion][0]

    def __str__(self) -> str:
        best = ", ".join(f"{key}={value!r}" for key, value in self.best_params_.items())
        return f"{self.table}\n\nbest by {self.criterion}: {best} ({self.best_score_:.4f})"


def select(
    X: Any,
    n_components: Iterable[int] = range(1, 7),
    covariance_types: Sequence[str] = ("full", "diag", "spherical", "tied"),
    *,
    criterion: str = "bic",
    cv: Any = 5,
    random_state: Any = None,
    progress: ProgressFn | None = None,
    **gmm_params: Any,
) -> SelectionResult:
    """Fit a :class:`GaussianMixture` for every (K, covariance type) and keep the best.

    Parameters
    ----------
    X : array-like or Tensor of shape (n_samples, n_features)
        Training data; a tensor stays on its device.
    n_components : int or iterable of int, default=range(1, 7)
        The numbers of components K to try, each at least 1.
    covariance_types : str or sequence of str, default=('full', 'diag', 'spherical', 'tied')
        The covariance types to try with every K.
    criterion : {'bic', 'aic', 'cv'}, default='bic'
        'bic' [1]_ and 'aic' [2]_ are computed on the training data (lower is better):
        ``-2 N score + p log N`` and ``-2 N score + 2 p``, ``p`` the free parameters. 'cv'
        is the mean held-out log-likelihood per sample over ``cv`` folds (higher is
        better), after which the winner is refitted on all the data.
    cv : int, cross-validation generator or iterable, default=5
        For ``criterion='cv'`` (ignored otherwise), as scikit-learn's ``cv``: an int is
        that many shuffled folds (at least 2, at most the number of rows, seeded by
        ``random_state``); a splitter such as :class:`sklearn.model_selection.KFold` or
        an iterable of ``(train, test)`` index arrays gives the splits itself. Every
        candidate is scored on the same splits.
    random_state : int, RandomState, Generator or torch.Generator, default=None
        Seeds every fit and the fold split, so the sweep is reproducible.
    progress : callable, default=None
        Called as ``progress(done, total, row)`` after each candidate.
    **gmm_params
        Passed to every :class:`GaussianMixture` (``max_iter``, ``n_init``, ``tol``, ...).

    Returns
    -------
    SelectionResult
        ``best_estimator_``, ``best_params_``, ``best_score_`` and the full ``table``.

    Warns
    -----
    DegenerateComponentWarning
        Once per call, naming the candidates whose fits collapsed a component.

    Raises
    ------
    ValueError
        For an invalid grid (including repeated values), criterion or ``cv``, invalid
        ``gmm_params`` or ``random_state``, data a :class:`GaussianMixture` would refuse
        (NaN without ``missing_values=np.nan``, infinity, fewer than two rows, not 2-D),
        all before any fit; or when no candidate could be fitted (with every candidate's
        reason).
    TypeError
        If ``gmm_params`` contains ``n_components`` or ``covariance_type`` or a name that
        is not a :class:`GaussianMixture` parameter.

    See Also
    --------
    mixtorch.GaussianMixture.bic, mixtorch.GaussianMixture.aic
    mixtorch.plotting.plot_criterion : Plot the table.
    sklearn.model_selection.GridSearchCV : The generic scikit-learn search.

    Notes
    -----
    A candidate that cannot be fitted (e.g. a covariance that is not positive definite, or
    more components than rows) is kept in the table with a NaN score and the reason in its
    ``note``. Convergence warnings of single fits are silenced and reported in the
    ``converged`` column. A fit that collapses a component onto a point (see
    :class:`~mixtorch.exceptions.DegenerateComponentWarning`) does not warn on its own:
    its row's ``note`` says so, and ``select`` warns once at the end, naming every
    candidate concerned. Other warnings of the fits pass through.

    References
    ----------
    .. [1] G. Schwarz (1978), "Estimating the dimension of a model", *Annals of
       Statistics* 6(2).
    .. [2] H. Akaike (1974), "A new look at the statistical model identification", *IEEE
       Transactions on Automatic Control* 19(6).

    Examples
    --------
    >>> import numpy as np
    >>> import mixtorch
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-4, 1, size=(150, 2)), rng.normal(4, 1, size=(150, 2))])
    >>> result = mixtorch.select(X, [1, 2, 3], ["full"], random_state=0)
    >>> result.best_params_
    {'n_components': 2, 'covariance_type': 'full'}
    >>> [row["n_components"] for row in result.table]
    [1, 2, 3]
    """
    ks, kinds = _check_grid(n_components, covariance_types)
    if not isinstance(criterion, str) or criterion not in CRITERIA:
        raise ValueError(f"criterion must be one of {sorted(CRITERIA)}, got {criterion!r}.")
    if progress is not None and not callable(progress):
        raise TypeError(
            f"progress must be a callable taking (done, total, row), got {type(progress).__name__}."
        )
    for reserved, swept in (
        ("n_components", "n_components"),
        ("covariance_type", "covariance_types"),
    ):
        if reserved in gmm_params:
            raise TypeError(
                f"{reserved} is swept by select; pass the values to try as {swept}=[...], "
                "not in gmm_params."
            )
    _check_gmm_params(random_state, gmm_params)
    X = _checked_data(X, gmm_params)
    splits = _splits(cv, X, random_state) if criterion == "cv" else []
    column, lower_is_better = CRITERIA[criterion]
    table = SelectionTable()
    best: tuple[float, GaussianMixture | None, dict[str, Any]] | None = None
    grid = [(k, kind) for kind in kinds for k in ks]
    for done, (k, kind) in enumerate(grid, start=1):
        model = GaussianMixture(k, covariance_type=kind, random_state=random_state, **gmm_params)
        row, fitted = _evaluate(model, X, criterion, splits)
        table.append(row)
        score = row[column]
        if not math.isnan(score):
            key = score if lower_is_better else -score
            if best is None or key < best[0]:
                best = (key, fitted, {"n_components": k, "covariance_type": kind})
        if progress is not None:
            progress(done, len(grid), row)
    if best is None:
        notes = "; ".join(sorted({row["note"] for row in table}))
        raise ValueError(f"No candidate model could be fitted: {notes}")
    key, estimator, params = best
    if estimator is None:  # cross-validation: refit the winner on all the data
        estimator = GaussianMixture(random_state=random_state, **params, **gmm_params)
        refit_collapsed: list[bool] = []
        estimator = _fit_quietly(estimator, X, refit_collapsed)
        if refit_collapsed:
            winner = table[grid.index((params["n_components"], params["covariance_type"]))]
            if not winner["note"]:
                winner["note"] = f"{_COLLAPSED} in the refit on all the data"
    _warn_collapsed(table, params, float(estimator.reg_covar))
    return SelectionResult(
        best_estimator_=estimator,
        best_params_=params,
        best_score_=key if lower_is_better else -key,
        criterion=criterion,
        table=table,
    )


def _check_grid(
    n_components: Iterable[int], covariance_types: Sequence[str]
) -> tuple[list[int], list[str]]:
    if isinstance(covariance_types, str):
        covariance_types = (covariance_types,)
    ks: list[Any]
    if isinstance(n_components, numbers.Integral):
        ks = [n_components]
    elif isinstance(n_components, Iterable) and not isinstance(n_components, (str, bytes)):
        ks = list(n_components)
    else:
        raise ValueError(
            "n_components must be an integer or a non-empty list of integers (e.g. "
            f"range(1, 7)), got {n_components!r}."
        )
    if not ks or any(isinstance(k, bool) or not isinstance(k, numbers.Integral) for k in ks):
        raise ValueError(f"n_components must be a non-empty list of integers, got {ks!r}.")
    if min(ks) < 1:
        raise ValueError(f"n_components must all be >= 1, got {ks!r}.")
    if len(set(ks)) != len(ks):
        raise ValueError(f"n_components must not repeat a value, got {ks!r}.")
    if not isinstance(covariance_types, Iterable) or isinstance(covariance_types, bytes):
        raise ValueError(
            "covariance_types must be a covariance type or a sequence of them, e.g. "
            f"('full', 'diag'), got {covariance_types!r}."
        )
    kinds = list(covariance_types)
    if not kinds:
        raise ValueError("covariance_types must name at least one covariance type.")
    for kind in kinds:
        covariance_class(kind)
    if len(set(kinds)) != len(kinds):
        raise ValueError(f"covariance_types must not repeat a type, got {kinds!r}.")
    return [int(k) for k in ks], kinds


def _check_gmm_params(random_state: Any, gmm_params: dict[str, Any]) -> None:
    """``random_state`` and ``gmm_params`` checked as :meth:`GaussianMixture.fit` checks
    them, before any fit: an unknown name is a TypeError, an invalid value an
    ``InvalidParameterError`` (a ValueError and a TypeError) naming the parameter."""
    constraints = GaussianMixture._parameter_constraints
    unknown = sorted(set(gmm_params) - set(constraints))
    if unknown:
        raise TypeError(
            f"select got {unknown} in gmm_params, which GaussianMixture does not take; its "
            f"parameters are {sorted(set(constraints) - {'n_components', 'covariance_type'})}."
        )
    params = {"random_state": random_state, **gmm_params}
    validate_parameter_constraints(
        {name: constraints[name] for name in params}, params, caller_name="select"
    )
    check_missing_values(gmm_params.get("missing_values"))


def _checked_data(X: Any, gmm_params: dict[str, Any]) -> Any:
    """``X`` checked once as every candidate's fit would check it (NaN, infinity, shape,
    rows, text), so an error of the data is raised as such, not as every candidate's
    failure; returned as NumPy unless it is a tensor or a DataFrame (whose column names
    the fits record)."""
    if not isinstance(X, torch.Tensor) and not _is_dataframe(X):
        X = np.asarray(X)
    if X.ndim != 2:
        raise ValueError(
            f"X must be 2-D of shape (n_samples, n_features), got shape {tuple(X.shape)}."
        )
    allow_nan = check_missing_values(gmm_params.get("missing_values")) is not None
    to_tensor(
        GaussianMixture(**gmm_params), X, reset=True, ensure_min_samples=2, allow_nan=allow_nan
    )
    return X


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


def _evaluate(
    model: GaussianMixture, X: Any, criterion: str, splits: list[tuple[np.ndarray, np.ndarray]]
) -> tuple[dict[str, Any], GaussianMixture | None]:
    row: dict[str, Any] = {
        "n_components": model.n_components,
        "covariance_type": model.covariance_type,
        "n_parameters": _n_parameters(model, X),
        "log_likelihood": math.nan,
        CRITERIA[criterion][0]: math.nan,
        "converged": False,
        "note": "",
    }
    collapsed: list[bool] = []
    try:
        if criterion == "cv":
            held_out, converged = _cross_validate(model, X, splits, collapsed)
            row.update(cv_log_likelihood=held_out, converged=converged)
            if collapsed:
                row["note"] = f"{_COLLAPSED} in {len(collapsed)} of {len(splits)} folds"
            return row, None
        fitted = _fit_quietly(model, X, collapsed)
    except ValueError as error:  # CovarianceError, too few samples for K, ...
        row["note"] = str(error).splitlines()[0]
        return row, None
    score = fitted.score(X)
    n_samples = int(X.shape[0])
    penalty = row["n_parameters"] * (math.log(n_samples) if criterion == "bic" else 2.0)
    row.update(log_likelihood=score, converged=bool(fitted.converged_))
    row["note"] = _COLLAPSED if collapsed else ""
    row[criterion] = -2.0 * score * n_samples + penalty
    return row, fitted


def _n_parameters(model: GaussianMixture, X: Any) -> int:
    """The candidate's free parameters (groups in ``fixed`` are given, not counted)."""
    held = fixed_groups(model.fixed)
    return parameter_count(model.n_components, int(X.shape[1]), model.covariance_type, held)


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


def _is_dataframe(X: Any) -> bool:
    """A pandas (or pandas-like) DataFrame: 2-D, positional ``iloc`` and ``columns``."""
    return hasattr(X, "iloc") and hasattr(X, "columns") and getattr(X, "ndim", None) == 2

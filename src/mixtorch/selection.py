"""Model selection for Gaussian mixtures: sweep the number of components and the
covariance types, score each by BIC, AIC or cross-validated held-out log-likelihood, and
keep the best.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ._selection_checks import _check_gmm_params, _check_grid, _checked_data
from ._selection_fits import _COLLAPSED, _cross_validate, _fit_quietly, _splits, _warn_collapsed
from .covariance import covariance_class
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

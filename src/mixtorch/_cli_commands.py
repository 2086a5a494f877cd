"""The commands of the ``mixtorch`` command line (see :mod:`mixtorch.cli`).

Every command checks what it can before the work starts: the model's options, the
device, the optional packages it will need and whether its outputs can be written (and
are not its inputs).
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_checks import (
    check_data_path,
    check_drawable,
    check_fit_rows,
    check_folder,
    check_out,
    check_plot_kind,
    check_select_rows,
    check_table,
    components_list,
    covariance_list,
    require_method,
    select_folds,
)
from ._cli_missing import (
    check_missing_cells,
    check_observed_columns,
    fill_missing,
    write_filled,
)
from ._cli_models import build_imputer, build_model, refuse_fit_options
from ._cli_report import draw, feature_names, headless_pyplot, print_model, print_selection
from ._tables import Table, UserError, emit, read_data, require_extra, write_data

__all__ = ["COMMANDS", "UserError", "read_data"]


# -- inputs and outputs ----------------------------------------------------------------
def _read(args: argparse.Namespace, missing: bool = False) -> Table:
    """DATA as a table; with ``missing``, missing cells are read as NaN (for the command
    to judge), else they are refused."""
    check_data_path(args.data)
    table = read_data(
        args.data,
        header=getattr(args, "header", None),
        columns=getattr(args, "columns", None),
        drop=getattr(args, "drop", None),
        missing=missing,
    )
    check_table(table, _shown(args.data), missing)
    return table


def _shown(source: str) -> str:
    """How messages name DATA."""
    return "standard input ('-')" if source == "-" else source


def _data_out(args: argparse.Namespace) -> str | None:
    """The data output file; None (standard output) without --out or with ``--out -``."""
    return None if args.out in (None, "-") else str(args.out)


def model_input(model: Any, table: Table, source: str = "the data") -> np.ndarray:
    """The table's columns in the order the model was fitted on, matched by name when
    both the model and the file name their columns."""
    return table.values[:, model_columns(model, table, source)]


def model_columns(model: Any, table: Table, source: str = "the data") -> list[int]:
    """The positions in ``table`` of the model's columns, in the model's order (see
    :func:`model_input`)."""
    names = getattr(model, "feature_names_in_", None)
    width = table.values.shape[1]
    if names is None or table.names is None:
        expected = getattr(model, "n_features_in_", None)
        if expected is not None and width != int(expected):
            raise UserError(
                f"{source} has {width} column(s) but the model was fitted on {int(expected)}; "
                "give data with the model's columns (choose them with --columns or leave "
                "some out with --drop)."
            )
        return list(range(width))
    names = [str(name) for name in names]
    missing = [name for name in names if name not in table.names]
    if missing:
        raise UserError(
            f"the data lack the column(s) {', '.join(missing)} that the model was fitted on "
            f"(the data have {', '.join(table.names)}); give data with the model's columns, "
            "named as in its header"
        )
    extra = [name for name in table.names if name not in names]
    if extra:  # as scikit-learn refuses unseen feature names: never ignored silently
        raise UserError(
            f"the data have column(s) {', '.join(extra)} that the model was not fitted on; "
            f"remove them with --drop {','.join(extra)} or choose the model's columns with "
            f"--columns {','.join(names)}"
        )
    return [table.names.index(name) for name in names]


def _load_model(path: str, command: str = "", method: str | None = None) -> Any:
    """The model in ``path``; with ``method``, refuse a model that lacks it."""
    from .io import load

    if path == "-":
        raise UserError(
            "MODEL cannot be read from standard input ('-'); give the path of a file written "
            "by 'mixtorch fit'."
        )
    if Path(path).exists() and not Path(path).is_file() and not Path(path).is_dir():
        raise UserError(
            f"{path} is not a regular file (a device or pipe); give the path of a model file "
            "written by 'mixtorch fit'."
        )
    try:
        model = load(path)
    except FileNotFoundError as error:
        raise UserError(str(error)) from error
    if method is not None:
        require_method(model, method, path, command)
    return model


# -- commands ------------------------------------------------------------------------
def _cmd_fit(args: argparse.Namespace, console: Any) -> None:
    from .io import save

    model = build_model(args)
    if args.out is None and args.data == "-":
        raise UserError("reading standard input: give the model file with --out")
    out = Path(args.out) if args.out else Path(Path(args.data).stem + ".mixtorch")
    check_out(args.out or out, [args.data])
    table = _read(args, args.missing)
    check_fit_rows(table, args)
    if args.missing:
        check_observed_columns(table, _shown(args.data))
    X = table.values
    start = time.perf_counter()
    if "callback" in inspect.signature(model.fit).parameters:
        with console.bar("EM") as bar:
            model.fit(X, callback=bar.iteration)
    else:
        model.fit(X)
    if table.names is not None:
        model.feature_names_in_ = np.asarray(table.names, dtype=object)
    save(model, out)
    details = [f"{time.perf_counter() - start:.2f} s"]
    for name in ("n_iter_", "converged_"):
        if hasattr(model, name):
            details.append(f"{name.rstrip('_')}={getattr(model, name)}")
    print(f"mean log-likelihood {_mean_log_likelihood(model, X):.6g}")
    # Noted once done: a failed fit leaves its error as the only line on stderr.
    holes = int(np.isnan(X).sum())
    data = f"{X.shape[0]} x {X.shape[1]} data" + (f" with {holes} missing cells" if holes else "")
    console.note(f"fitted {model!r} to {data} ({', '.join(details)})")
    console.note(f"model written to {out}")


def _mean_log_likelihood(model: Any, X: Any) -> float:
    # Not model.score: a KDE's score is a sum (scikit-learn's KernelDensity convention),
    # and the command line reports the same per-sample mean for every model.
    return float(np.mean(np.asarray(model.score_samples(X), dtype=np.float64)))


def _model_data(args: argparse.Namespace, model: Any, command: str) -> np.ndarray:
    """DATA in the model's columns, missing cells (NaN) kept where the model takes them
    and refused, in words of the command line, where it does not."""
    table = _read(args, missing=True)
    X = model_input(model, table, args.data)
    check_missing_cells(table, _shown(args.data), model, args.model, command)
    return X


def _cmd_score(args: argparse.Namespace, console: Any) -> None:
    out = _data_out(args)
    if out:
        check_out(out, [args.model, args.data], kind="data")
    model = _load_model(args.model, "score", "score_samples")
    X = _model_data(args, model, "score")
    if args.per_sample:
        emit(model.score_samples(X), out, names=["log_density"])
        if out:
            console.note(f"{X.shape[0]} log-densities written to {out}")
        return
    mean = _mean_log_likelihood(model, X)
    print(f"{mean:.10g}")
    if out:
        write_data(out, np.array([[mean]]), ["mean_log_likelihood"])
        console.note(f"mean log-likelihood written to {out}")


def _cmd_predict(args: argparse.Namespace, console: Any) -> None:
    out = _data_out(args)
    if out:
        check_out(out, [args.model, args.data], kind="data")
    model = _load_model(args.model)
    method = "predict_proba" if args.proba else "predict"
    if not hasattr(model, method):
        raise UserError(
            f"a {type(model).__name__} has no components to {method.replace('_', ' ')}; "
            "fit a mixture for that (mixtorch fit DATA --model gmm -k K)."
        )
    X = _model_data(args, model, "predict")
    values = np.asarray(getattr(model, method)(X))
    names = [f"p{k}" for k in range(values.shape[1])] if args.proba else ["label"]
    emit(values, out, names=names)
    if out:
        what = "responsibilities" if args.proba else "labels"
        console.note(f"{values.shape[0]} rows of {what} written to {out}")


def _cmd_impute(args: argparse.Namespace, console: Any) -> None:
    out = _data_out(args)
    if out:
        check_out(out, [args.model, args.data], kind="data")
    if args.model is None:
        imputer = build_imputer(args)
        table = _read(args, missing=True)
        check_fit_rows(table, args)
        check_observed_columns(table, _shown(args.data))
        filled = np.asarray(imputer.fit_transform(table.values))
        source = f"{imputer!r} fitted to {_shown(args.data)}"
    else:
        refuse_fit_options(args)
        model = _load_model(args.model)
        table = _read(args, missing=True)
        columns = model_columns(model, table, args.data)
        filled = np.empty_like(table.values)  # in DATA's column order, as read
        filled[:, columns] = fill_missing(model, table.values[:, columns], args.model)
        source = f"the model in {args.model}"
    write_filled(filled, out, table.names)
    holes = np.isnan(table.values)
    empty = int(holes.all(axis=1).sum())
    console.note(
        f"filled {int(holes.sum())} missing cell(s) in {int(holes.any(axis=1).sum())} "
        f"row(s) of {_shown(args.data)} with conditional means under {source}"
        + (f" ({empty} row(s) with every cell missing: the mixture's mean)" if empty else "")
    )
    if out:
        console.note(f"{filled.shape[0]} rows written to {out}")


def _cmd_sample(args: argparse.Namespace, console: Any) -> None:
    out = _data_out(args)
    if out:
        check_out(out, [args.model], kind="data")
    model = _load_model(args.model, "sample", "sample")
    options: dict[str, Any] = {}
    if args.seed is not None:
        # Mixtures take the seed as a parameter; a KDE takes it in sample().
        if "random_state" in model.get_params(deep=False):
            model.set_params(random_state=args.seed)
        else:
            options["random_state"] = args.seed
    drawn = model.sample(args.n, **options)
    samples = drawn[0] if isinstance(drawn, tuple) else drawn
    emit(samples, out, names=feature_names(model))
    if out:
        console.note(f"{args.n} samples written to {out}")


def _cmd_info(args: argparse.Namespace, console: Any) -> None:
    print_model(_load_model(args.model), args.format)


def _cmd_plot(args: argparse.Namespace, console: Any) -> None:
    require_extra("matplotlib", "plotting")
    out = Path(args.out) if args.out else Path(Path(args.model).stem + ".png")
    check_out(args.out or out, [args.model, args.data], kind="picture")
    plt = headless_pyplot()
    model = _load_model(args.model, "plot", "score_samples")
    n_features = int(getattr(model, "n_features_in_", 0))
    kind = args.kind
    if kind == "auto":
        kind = {1: "density", 2: "density"}.get(n_features, "curve")
    if args.data and kind != "density":
        raise UserError(
            f"DATA ({args.data}) is drawn only in density plots, and this is a {kind} plot "
            f"(the model has {n_features} features); leave DATA out."
        )
    check_plot_kind(model, kind, n_features)
    X = _model_data(args, model, "plot") if args.data else None
    if kind == "density":
        check_drawable(model, X, args.model, args.data)
    ax = draw(model, kind, X, n_features)
    try:
        ax.figure.savefig(out, dpi=120, bbox_inches="tight")
    finally:
        plt.close(ax.figure)
    console.note(f"picture written to {out}")
    print(out)


def _cmd_select(args: argparse.Namespace, console: Any) -> None:
    from .selection import select

    components = components_list(args.components)
    covariances = covariance_list(args.covariance)
    folds = select_folds(args)
    if args.plot:
        require_extra("matplotlib", "--plot")
        check_out(args.plot, [args.data], "--plot", "picture")
    if args.out:
        check_out(args.out, [args.data])
    if args.plot and args.out and Path(args.plot).resolve() == Path(args.out).resolve():
        raise UserError(f"--plot and --out are both {args.out}; give two different files.")
    table = _read(args, args.missing)
    check_select_rows(table, args, max(components), folds)
    missing: dict[str, Any] = {}
    if args.missing:
        check_observed_columns(table, _shown(args.data))
        missing["missing_values"] = np.nan
    with console.bar(f"select ({args.criterion})") as bar:
        result = select(
            table.values,
            components,
            covariances,
            criterion=args.criterion,
            cv=folds,
            random_state=args.seed,
            progress=bar,
            max_iter=args.max_iter,
            **missing,
        )
    print_selection(result, args.format)
    _write_selection(args, result, table.names, console)


def _write_selection(
    args: argparse.Namespace, result: Any, names: list[str] | None, console: Any
) -> None:
    """The best model (--out) and the criterion plot (--plot), noted once both are written."""
    from .io import save

    if args.out:
        best = result.best_estimator_
        if names is not None:
            best.feature_names_in_ = np.asarray(names, dtype=object)
        save(best, args.out)
    if args.plot:
        from .plotting import plot_criterion

        plt = headless_pyplot()
        ax = plot_criterion(result)
        try:
            ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        finally:
            plt.close(ax.figure)
    if args.out:
        console.note(f"best model written to {args.out}")
    if args.plot:
        console.note(f"criterion plot written to {args.plot}")


def _cmd_demo(args: argparse.Namespace, console: Any) -> None:
    require_extra("matplotlib", "the demo")
    from .demo import run_demo

    components = components_list(args.components)
    check_folder(args.out, "--out")
    headless_pyplot()
    with console.bar("BIC sweep") as bar:
        result = run_demo(args.out, n_components=components, seed=args.seed, progress=bar)
    print(result.summary())


COMMANDS: dict[str, Callable[[argparse.Namespace, Any], None]] = {
    "fit": _cmd_fit,
    "score": _cmd_score,
    "predict": _cmd_predict,
    "sample": _cmd_sample,
    "info": _cmd_info,
    "impute": _cmd_impute,
    "plot": _cmd_plot,
    "select": _cmd_select,
    "demo": _cmd_demo,
}

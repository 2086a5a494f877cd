"""The commands of the ``mixtorch`` command line (see :mod:`mixtorch.cli`).

Every command checks what it can before the work starts: the model's options, the
device, the optional packages it will need and whether its outputs can be written (and
are not its inputs).
"""

from __future__ import annotations

import argparse
import inspect
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from ._cli_args import MODELS
from ._cli_report import feature_names, print_model, print_selection
from ._tables import Table, UserError, emit, read_data, require_extra, write_data

__all__ = ["COMMANDS", "UserError", "read_data"]


# -- inputs and outputs ----------------------------------------------------------------
def _read(args: argparse.Namespace, path: str | None = None) -> Table:
    return read_data(
        path if path is not None else args.data,
        header=getattr(args, "header", None),
        columns=getattr(args, "columns", None),
        drop=getattr(args, "drop", None),
    )


def _check_out(out: str | Path, inputs: Sequence[str | None]) -> Path:
    """``out`` if it can be written and is none of the ``inputs``; else OSError/UserError."""
    from .io import check_writable

    path = Path(out)
    for given in inputs:
        if given and given != "-" and Path(given).exists() and path.exists():
            if path.samefile(given):  # also through links
                raise UserError(
                    f"--out {out} is an input file of this command; writing it would destroy "
                    "the input. Choose another name."
                )
    return check_writable(path)


def model_input(model: Any, table: Table) -> np.ndarray:
    """The table's columns in the order the model was fitted on, matched by name when
    both the model and the file name their columns."""
    names = getattr(model, "feature_names_in_", None)
    if names is None or table.names is None:
        return table.values
    names = [str(name) for name in names]
    missing = [name for name in names if name not in table.names]
    if missing:
        raise UserError(
            f"the data lack the column(s) {', '.join(missing)} that the model was fitted on "
            f"(the data have {', '.join(table.names)})"
        )
    extra = [name for name in table.names if name not in names]
    if extra:  # as scikit-learn refuses unseen feature names: never ignored silently
        raise UserError(
            f"the data have column(s) {', '.join(extra)} that the model was not fitted on; "
            f"remove them with --drop {','.join(extra)} or choose the model's columns with "
            f"--columns {','.join(names)}"
        )
    return table.values[:, [table.names.index(name) for name in names]]


def _load_model(path: str) -> Any:
    from .io import load

    try:
        return load(path)
    except FileNotFoundError as error:
        raise UserError(str(error)) from error


# -- models --------------------------------------------------------------------------
def _model_class(name: str) -> type:
    import mixtorch

    class_name = MODELS[name]
    cls = getattr(mixtorch, class_name, None)
    if cls is None:
        raise UserError(f"--model {name} needs mixtorch.{class_name}, which this version lacks")
    return cls


def _check_device(text: str | None) -> None:
    if text is None:
        return
    import torch

    try:
        device = torch.device(text)
    except (RuntimeError, ValueError) as error:
        raise UserError(f"--device {text} is not a device ({error}); try cpu or cuda") from None
    available = {
        "cuda": torch.cuda.is_available(),
        "mps": torch.backends.mps.is_available(),
        "cpu": True,
    }
    if not available.get(device.type, False):
        have = ", ".join(name for name, there in available.items() if there)
        raise UserError(f"--device {text}: not available on this machine (available: {have})")
    if device.type == "cuda" and device.index is not None:
        if device.index >= torch.cuda.device_count():
            raise UserError(f"--device {text}: only {torch.cuda.device_count()} CUDA device(s)")


def _bandwidth(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def _build_model(args: argparse.Namespace) -> Any:
    cls = _model_class(args.model)
    model = cls()
    accepted = model.get_params(deep=False)
    if "n_components" in accepted and args.components is None:
        raise UserError(
            f"--model {args.model} needs -k/--components, the number of components "
            + (
                "(an upper bound, e.g. -k 10: components the data do not need end with "
                "weights near zero)"
                if args.model == "bayes"
                else "(or run 'mixtorch select DATA' to choose it by BIC)"
            )
        )
    _check_device(args.device)
    wanted = {
        "n_components": ("--components", args.components),
        "covariance_type": ("--covariance", args.covariance),
        "algorithm": ("--algorithm", args.algorithm),
        "device": ("--device", args.device),
        "random_state": ("--seed", args.seed),
        "max_iter": ("--max-iter", args.max_iter),
        "n_init": ("--n-init", args.n_init),
        "tol": ("--tol", args.tol),
        "reg_covar": ("--reg-covar", args.reg_covar),
        "bandwidth": ("--bandwidth", _bandwidth(args.bandwidth)),
    }
    params = {}
    for name, (flag, value) in wanted.items():
        if value is None:
            continue
        if name not in accepted:
            raise UserError(f"--model {args.model} does not take {flag}")
        params[name] = value
    return model.set_params(**params)


# -- commands ------------------------------------------------------------------------
def _cmd_fit(args: argparse.Namespace, console: Any) -> None:
    from .io import save

    model = _build_model(args)
    if args.out is None and args.data == "-":
        raise UserError("reading standard input: give the model file with --out")
    out = Path(args.out) if args.out else Path(Path(args.data).stem + ".mixtorch")
    _check_out(out, [args.data])
    table = _read(args)
    X = table.values
    console.note(f"fitting {model!r} to {X.shape[0]} x {X.shape[1]} data ...")
    start = time.perf_counter()
    if "callback" in inspect.signature(model.fit).parameters:
        bar = console.bar("EM")
        try:
            model.fit(X, callback=bar.iteration)
        finally:
            bar.close()
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
    console.note(f"model written to {out} ({', '.join(details)})")


def _mean_log_likelihood(model: Any, X: Any) -> float:
    # Not model.score: a KDE's score is a sum (scikit-learn's KernelDensity convention),
    # and the command line reports the same per-sample mean for every model.
    return float(np.mean(np.asarray(model.score_samples(X), dtype=np.float64)))


def _cmd_score(args: argparse.Namespace, console: Any) -> None:
    if args.out:
        _check_out(args.out, [args.model, args.data])
    model = _load_model(args.model)
    X = model_input(model, _read(args))
    if args.per_sample:
        emit(model.score_samples(X), args.out, names=["log_density"])
        if args.out:
            console.note(f"{X.shape[0]} log-densities written to {args.out}")
        return
    mean = _mean_log_likelihood(model, X)
    print(f"{mean:.10g}")
    if args.out:
        write_data(args.out, np.array([[mean]]), ["mean_log_likelihood"])
        console.note(f"mean log-likelihood written to {args.out}")


def _cmd_predict(args: argparse.Namespace, console: Any) -> None:
    if args.out:
        _check_out(args.out, [args.model, args.data])
    model = _load_model(args.model)
    method = "predict_proba" if args.proba else "predict"
    if not hasattr(model, method):
        raise UserError(f"a {type(model).__name__} has no components to {method.replace('_', ' ')}")
    X = model_input(model, _read(args))
    values = np.asarray(getattr(model, method)(X))
    names = [f"p{k}" for k in range(values.shape[1])] if args.proba else ["label"]
    emit(values, args.out, names=names)
    if args.out:
        what = "responsibilities" if args.proba else "labels"
        console.note(f"{values.shape[0]} rows of {what} written to {args.out}")


def _cmd_sample(args: argparse.Namespace, console: Any) -> None:
    if args.out:
        _check_out(args.out, [args.model])
    model = _load_model(args.model)
    options: dict[str, Any] = {}
    if args.seed is not None:
        # Mixtures take the seed as a parameter; a KDE takes it in sample().
        if "random_state" in model.get_params(deep=False):
            model.set_params(random_state=args.seed)
        else:
            options["random_state"] = args.seed
    drawn = model.sample(args.n, **options)
    samples = drawn[0] if isinstance(drawn, tuple) else drawn
    emit(samples, args.out, names=feature_names(model))
    if args.out:
        console.note(f"{args.n} samples written to {args.out}")


def _cmd_info(args: argparse.Namespace, console: Any) -> None:
    print_model(_load_model(args.model), args.format)


def _cmd_plot(args: argparse.Namespace, console: Any) -> None:
    require_extra("matplotlib", "plotting")
    out = Path(args.out) if args.out else Path(Path(args.model).stem + ".png")
    _check_out(out, [args.model, args.data])
    from . import plotting

    plt = _headless_pyplot()
    model = _load_model(args.model)
    X = model_input(model, _read(args)) if args.data else None
    n_features = int(getattr(model, "n_features_in_", 0))
    kind = args.kind
    if kind == "auto":
        kind = {1: "density", 2: "density"}.get(n_features, "curve")
    if kind == "density" and n_features == 1:
        ax = plotting.plot_density_1d(model, X)
    elif kind == "density" and n_features == 2:
        ax = plotting.plot_mixture_2d(model, X)
    elif kind == "density":
        raise UserError(f"density plots need 1 or 2 features, the model has {n_features}")
    elif kind == "traces":
        if not hasattr(model, "posterior_samples_"):
            raise UserError(f"a {type(model).__name__} has no MCMC draws to plot")
        ax = plotting.plot_mcmc_traces(model).axes[0]
    else:
        ax = plotting.plot_training_curve(model)
    names = feature_names(model)
    if kind == "density" and names:
        ax.set_xlabel(names[0])
        if n_features == 2:
            ax.set_ylabel(names[1])
    ax.figure.savefig(out, dpi=120, bbox_inches="tight")
    console.note(f"picture written to {out}")
    plt.close(ax.figure)
    print(out)


def _cmd_select(args: argparse.Namespace, console: Any) -> None:
    from .io import save
    from .selection import select

    if args.plot:
        require_extra("matplotlib", "--plot")
        _check_out(args.plot, [args.data])
    if args.out:
        _check_out(args.out, [args.data])
    table = _read(args)
    result = select(
        table.values,
        _int_list(args.components),
        _covariance_list(args.covariance),
        criterion=args.criterion,
        cv=args.cv,
        random_state=args.seed,
        progress=console.bar(f"select ({args.criterion})"),
        max_iter=args.max_iter,
    )
    print_selection(result, args.format)
    if args.out:
        best = result.best_estimator_
        if table.names is not None:
            best.feature_names_in_ = np.asarray(table.names, dtype=object)
        save(best, args.out)
        console.note(f"best model written to {args.out}")
    if args.plot:
        from .plotting import plot_criterion

        plt = _headless_pyplot()
        ax = plot_criterion(result)
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        console.note(f"criterion plot written to {args.plot}")


def _cmd_demo(args: argparse.Namespace, console: Any) -> None:
    require_extra("matplotlib", "the demo")
    from .demo import run_demo

    _headless_pyplot()
    result = run_demo(
        args.out,
        n_components=_int_list(args.components),
        seed=args.seed,
        progress=console.bar("BIC sweep"),
    )
    print(result.summary())


def _headless_pyplot() -> Any:
    require_extra("matplotlib", "plotting")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _int_list(text: str) -> list[int]:
    try:
        if "-" in text:
            low, high = (int(part) for part in text.split("-", 1))
            return list(range(low, high + 1))
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError as error:
        raise UserError(f"--components expects e.g. 1-6 or 1,2,4, got {text!r}") from error


def _covariance_list(text: str) -> list[str]:
    return ["full", "diag", "spherical", "tied"] if text == "all" else text.split(",")


COMMANDS: dict[str, Callable[[argparse.Namespace, Any], None]] = {
    "fit": _cmd_fit,
    "score": _cmd_score,
    "predict": _cmd_predict,
    "sample": _cmd_sample,
    "info": _cmd_info,
    "plot": _cmd_plot,
    "select": _cmd_select,
    "demo": _cmd_demo,
}

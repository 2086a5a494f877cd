"""The ``mixtorch`` command: fit, score, predict, sample, plot and select models from the
shell.

Exit codes: 0 success, 2 a usage or user error (bad arguments, unreadable data, a file
that is not a model, ...; printed as one ``mixtorch: error: ...`` line), 1 an unexpected
failure (printed with its traceback), 130 interrupted.
"""

from __future__ import annotations

import argparse
import inspect
import os
import sys
import time
import traceback
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from ._cli_args import MODELS, build_parser
from ._tables import UserError, emit, read_data

__all__ = ["UserError", "build_parser", "main"]

EXIT_OK, EXIT_FAILURE, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


# -- progress ------------------------------------------------------------------------
class Progress:
    """A one-line progress bar on stderr, drawn only when enabled (and, by default,
    only on a terminal so logs stay clean)."""

    def __init__(self, label: str, enabled: bool, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stderr
        self.enabled = enabled and self.stream.isatty()
        self.label = label

    def __call__(self, done: int, total: int, row: dict[str, Any] | None = None) -> None:
        if not self.enabled:
            return
        width = 30
        filled = int(width * done / max(total, 1))
        detail = f" K={row['n_components']} {row['covariance_type']}" if row else ""
        bar = "#" * filled + "." * (width - filled)
        self.stream.write(f"\r{self.label} [{bar}] {done}/{total}{detail}   ")
        if done >= total:
            self.stream.write("\n")
        self.stream.flush()


class Console:
    """Where messages go: results on stdout, notes on stderr unless --quiet."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.quiet = bool(getattr(args, "quiet", False))
        self.progress = not self.quiet and not getattr(args, "no_progress", False)

    def note(self, message: str) -> None:
        if not self.quiet:
            print(message, file=sys.stderr)

    def bar(self, label: str) -> Progress:
        return Progress(label, self.progress)


# -- models --------------------------------------------------------------------------
def _model_class(name: str) -> type:
    import mixtorch

    class_name = MODELS[name]
    cls = getattr(mixtorch, class_name, None)
    if cls is None:
        raise UserError(f"--model {name} needs mixtorch.{class_name}, which this version lacks")
    return cls


def _build_model(args: argparse.Namespace) -> Any:
    cls = _model_class(args.model)
    model = cls()
    accepted = model.get_params(deep=False)
    wanted = {
        "n_components": ("--components", args.components),
        "covariance_type": ("--covariance", args.covariance),
        "algorithm": ("--algorithm", args.algorithm),
        "device": ("--device", args.device),
        "random_state": ("--seed", args.seed),
        "max_iter": ("--max-iter", args.max_iter),
        "n_init": ("--n-init", args.n_init),
    }
    params = {}
    for name, (flag, value) in wanted.items():
        if value is None:
            continue
        if name not in accepted:
            raise UserError(f"--model {args.model} does not take {flag}")
        params[name] = value
    return model.set_params(**params)


def _load_model(path: str) -> Any:
    from .io import load

    try:
        return load(path)
    except FileNotFoundError as error:
        raise UserError(str(error)) from error


# -- commands ------------------------------------------------------------------------
def _cmd_fit(args: argparse.Namespace, console: Console) -> None:
    from .io import save

    X = read_data(args.data)
    model = _build_model(args)
    console.note(f"fitting {model!r} to {X.shape[0]} x {X.shape[1]} data ...")
    start = time.perf_counter()
    if "callback" in inspect.signature(model.fit).parameters:
        bar = console.bar("EM")
        limit = int(model.get_params().get("max_iter", 100))
        model.fit(X, callback=lambda iteration, _: bar(min(iteration, limit), limit))
        bar(limit, limit)
    else:
        model.fit(X)
    out = Path(args.out) if args.out else Path(Path(args.data).stem + ".mixtorch")
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


def _cmd_score(args: argparse.Namespace, console: Console) -> None:
    model = _load_model(args.model)
    X = read_data(args.data)
    if args.per_sample:
        emit(model.score_samples(X), args.out, sys.stdout)
    else:
        print(f"{_mean_log_likelihood(model, X):.10g}")


def _cmd_predict(args: argparse.Namespace, console: Console) -> None:
    model = _load_model(args.model)
    method = "predict_proba" if args.proba else "predict"
    if not hasattr(model, method):
        raise UserError(f"a {type(model).__name__} has no components to {method.replace('_', ' ')}")
    emit(getattr(model, method)(read_data(args.data)), args.out, sys.stdout)


def _cmd_sample(args: argparse.Namespace, console: Console) -> None:
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
    emit(samples, args.out, sys.stdout)
    if args.out:
        console.note(f"{args.n} samples written to {args.out}")


def _cmd_plot(args: argparse.Namespace, console: Console) -> None:
    from . import plotting

    plt = _headless_pyplot()
    model = _load_model(args.model)
    X = read_data(args.data) if args.data else None
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
    out = Path(args.out) if args.out else Path(Path(args.model).stem + ".png")
    ax.figure.savefig(out, dpi=120, bbox_inches="tight")
    plt.close(ax.figure)
    print(out)


def _cmd_select(args: argparse.Namespace, console: Console) -> None:
    from .io import save
    from .selection import select

    X = read_data(args.data)
    result = select(
        X,
        _int_list(args.components),
        _covariance_list(args.covariance),
        criterion=args.criterion,
        cv=args.cv,
        random_state=args.seed,
        progress=console.bar(f"select ({args.criterion})"),
        max_iter=args.max_iter,
    )
    print(result)
    if args.out:
        save(result.best_estimator_, args.out)
        console.note(f"best model written to {args.out}")
    if args.plot:
        from .plotting import plot_criterion

        plt = _headless_pyplot()
        ax = plot_criterion(result)
        ax.figure.savefig(args.plot, dpi=120, bbox_inches="tight")
        plt.close(ax.figure)
        console.note(f"criterion plot written to {args.plot}")


def _cmd_demo(args: argparse.Namespace, console: Console) -> None:
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
    try:
        import matplotlib
    except ImportError as error:
        raise UserError("plots need matplotlib: pip install 'mixtorch[plot]'") from error
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


COMMANDS: dict[str, Callable[[argparse.Namespace, Console], None]] = {
    "fit": _cmd_fit,
    "score": _cmd_score,
    "predict": _cmd_predict,
    "sample": _cmd_sample,
    "plot": _cmd_plot,
    "select": _cmd_select,
    "demo": _cmd_demo,
}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code (see the module docstring)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits 0 on --help and 2 on usage errors
        return int(stop.code or 0)
    console = Console(args)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            COMMANDS[args.command](args, console)
    except BrokenPipeError:  # e.g. `mixtorch predict ... | head`: the reader left
        _silence_stdout()
        return EXIT_OK
    except KeyboardInterrupt:
        print("mixtorch: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (UserError, ValueError, OSError, ImportError) as error:
        print(f"mixtorch: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    except Exception:
        traceback.print_exc()
        print("mixtorch: unexpected error (a bug; please report it)", file=sys.stderr)
        return EXIT_FAILURE
    for warning in caught:
        if issubclass(warning.category, (DeprecationWarning, PendingDeprecationWarning)):
            continue  # about library internals, not about the user's data
        console.note(f"mixtorch: warning: {_one_line(warning.message)}")
    return EXIT_OK


def _silence_stdout() -> None:
    # Python would otherwise complain again when it flushes stdout at exit.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError, AttributeError):
        pass


def _one_line(message: Any) -> str:
    return " ".join(str(message).split())


if __name__ == "__main__":
    sys.exit(main())

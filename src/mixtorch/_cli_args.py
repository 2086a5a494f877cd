"""The ``mixtorch`` command's argument parser (see :mod:`mixtorch.cli`)."""

from __future__ import annotations

import argparse
from typing import Any, NoReturn

from . import __version__  # cheap: the package imports its modules lazily

__all__ = ["DEFAULT_DEMO_COMPONENTS", "MODELS", "build_parser"]

#: The values of K the digits demo compares (mixtorch.demo uses the same).
DEFAULT_DEMO_COMPONENTS = (1, 2, 4, 6, 8, 10, 12, 16, 20)


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows "(default: ...)" for every option with a real default."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if action.default in (None, False) or "default" in text:
            return text
        return super()._get_help_string(action) or text


_FORMATTER = _Formatter


class _Parser(argparse.ArgumentParser):
    """Reports a usage error in one line, pointing to --help, instead of argparse's usage
    block: every error of the command line is one line on stderr (exit code 2).
    Subcommands' parsers are of this class too (argparse makes them of the parent's)."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see '{self.prog} --help'\n")


#: --model name -> mixtorch class name. KDE and Bayesian mixtures are optional.
MODELS = {
    "gmm": "GaussianMixture",
    "gaussian": "Gaussian",
    "kde": "GaussianKDE",
    "bayes": "BayesianGaussianMixture",
}


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (exposed for documentation tools and tests)."""
    # The switches work before or after the command; after it, they must not reset
    # a value given before it, hence SUPPRESS as the subcommands' default.
    common = argparse.ArgumentParser(add_help=False)
    _add_switches(common, argparse.SUPPRESS)
    parser = _Parser(
        prog="mixtorch",
        description="Gaussian density estimation on PyTorch: fit Gaussians, Gaussian "
        "mixtures and KDEs to data files, then score, predict, impute, sample and plot.",
        epilog="Data files: .csv/.tsv/.txt (numeric; also .gz; '-' reads CSV from standard "
        "input), .npy, .parquet. A CSV header is detected when the first line is all names "
        "and the second all numbers; when that cannot be told, pass --header or "
        "--no-header (no row is ever dropped silently). Missing cells (empty, NA, NaN, "
        "Parquet nulls) are an error unless 'fit --missing' fits a gmm that marginalises "
        "them; score, predict and impute read them under such a model. Outputs: -o/--out "
        "on every command that writes a file. Model files are safetensors "
        "(*.mixtorch) written by 'mixtorch fit'. Exit codes: 0 ok, 2 usage or input error, "
        "1 unexpected failure. Run 'mixtorch COMMAND --help'.",
    )
    parser.add_argument("--version", action="version", version=f"mixtorch {__version__}")
    _add_switches(parser, False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_fit(commands, common)
    _add_model_data(commands, common, "score", "mean log-likelihood per sample of DATA")
    _add_model_data(commands, common, "predict", "most probable component of each row")
    sample = _command(commands, common, "sample", "draw new points from a model")
    sample.add_argument("model", metavar="MODEL", help="a model file written by 'mixtorch fit'")
    sample.add_argument(
        "-n", "--n-samples", dest="n", type=_positive_int, default=10, help="how many points"
    )
    sample.add_argument("--seed", type=_seed, help="random seed (reproducible draws)")
    _add_out(sample, "write to .csv/.npy/.parquet instead of stdout ('-')")
    info = _command(commands, common, "info", "show a model: class, parameters, features, fit")
    info.add_argument("model", metavar="MODEL", help="a model file written by 'mixtorch fit'")
    info.add_argument("--format", choices=["text", "json"], default="text", help="output format")
    plot = _command(commands, common, "plot", "draw a model (and data) to PNG")
    plot.add_argument("model", metavar="MODEL", help="a model file written by 'mixtorch fit'")
    plot.add_argument("data", metavar="DATA", nargs="?", help="data to draw under the model")
    _add_data_options(plot)
    plot.add_argument(
        "--kind",
        choices=["auto", "density", "curve", "traces"],
        default="auto",
        help="density: 1-D histogram + curves or 2-D scatter + ellipses; curve: training "
        "curve; traces: MCMC draws (default: density for 1-2 features, else curve)",
    )
    _add_out(plot, "picture file, .png (or .pdf, .svg) (default: MODEL's name with .png)")
    _add_impute(commands, common)
    _add_select(commands, common)
    demo = _command(commands, common, "demo", "fit the bundled digits, sample new ones, draw them")
    _add_out(demo, "output folder (default: out)", default="out", metavar="FOLDER")
    demo.add_argument("--seed", type=_seed, default=0, help="random seed")
    demo.add_argument(
        "--components",
        default=",".join(map(str, DEFAULT_DEMO_COMPONENTS)),
        help="values of K compared by BIC",
    )
    return parser


def _command(commands: Any, common: argparse.ArgumentParser, name: str, text: str) -> Any:
    return commands.add_parser(
        name, parents=[common], help=text, description=text, formatter_class=_FORMATTER
    )


def _add_out(
    command: argparse.ArgumentParser, text: str, default: str | None = None, metavar: str = "FILE"
) -> None:
    """``-o/--out``, the same on every command that writes a file (or a folder)."""
    command.add_argument(
        "-o", "--out", type=_file_name, default=default, metavar=metavar, help=text
    )


def _add_missing(command: argparse.ArgumentParser, what: str) -> None:
    command.add_argument(
        "--missing",
        action="store_true",
        help="read empty cells, NA and NaN (Parquet nulls) as missing and fit by EM that "
        f"marginalises them ({what}; the model then scores, predicts and imputes rows "
        "with missing cells); infinite values stay errors",
    )


def _add_data_options(command: argparse.ArgumentParser) -> None:
    header = command.add_mutually_exclusive_group()
    header.add_argument(
        "--header",
        dest="header",
        action="store_const",
        const=True,
        help="the CSV's first line holds column names (CSV only; default: detect, and "
        "refuse if unsure)",
    )
    header.add_argument(
        "--no-header",
        dest="header",
        action="store_const",
        const=False,
        help="the CSV's first line is data (CSV only)",
    )
    command.add_argument("--columns", type=_names, help="use only these columns (names or 0-based)")
    command.add_argument("--drop", type=_names, help="leave out these columns (names or 0-based)")


def _add_switches(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="print only results"
    )
    parser.add_argument(
        "--no-progress", action="store_true", default=default, help="no progress bars"
    )


def _add_fit(commands: Any, common: argparse.ArgumentParser) -> None:
    fit = _command(commands, common, "fit", "fit a model to DATA, write MODEL")
    fit.add_argument("data", metavar="DATA", help="a .csv, .npy or .parquet table ('-': stdin)")
    _add_data_options(fit)
    fit.add_argument("--model", choices=sorted(MODELS), default="gmm", help="what to fit")
    _add_missing(fit, "--model gmm only")
    fit.add_argument(
        "--components",
        "-k",
        type=_positive_int,
        help="number of components; required for gmm and bayes ('mixtorch select' "
        "chooses it by BIC)",
    )
    fit.add_argument(
        "--covariance",
        choices=["full", "diag", "spherical", "tied"],
        help="covariance type (default: the model's, full)",
    )
    fit.add_argument("--algorithm", help="fitting algorithm, where the model offers several")
    fit.add_argument(
        "--device", help="cpu, cuda, cuda:1, mps ..., one this machine has (default: cpu)"
    )
    fit.add_argument("--seed", type=_seed, help="random seed (reproducible fits)")
    fit.add_argument("--max-iter", type=_positive_int, help="iteration limit (model default)")
    fit.add_argument("--n-init", type=_positive_int, help="restarts; the best is kept")
    fit.add_argument("--tol", type=float, help="convergence threshold (model default)")
    fit.add_argument(
        "--reg-covar", type=float, help="added to covariance diagonals (model default)"
    )
    fit.add_argument(
        "--bandwidth", help="KDE bandwidth: scott, silverman, loo or a number (default scott)"
    )
    _add_out(
        fit, "model file, named *.mixtorch or *.safetensors (default: DATA's name + .mixtorch)"
    )


def _add_model_data(commands: Any, common: argparse.ArgumentParser, name: str, text: str) -> None:
    command = _command(commands, common, name, text)
    command.add_argument("model", metavar="MODEL", help="a model file written by 'mixtorch fit'")
    command.add_argument("data", metavar="DATA", help="a .csv, .npy or .parquet table ('-': stdin)")
    _add_data_options(command)
    _add_out(command, "write to .csv/.npy/.parquet instead of stdout ('-')")
    if name == "score":
        command.add_argument(
            "--per-sample", action="store_true", help="log-density of every row instead"
        )
    else:
        command.add_argument("--proba", action="store_true", help="responsibilities instead")


def _add_impute(commands: Any, common: argparse.ArgumentParser) -> None:
    impute = _command(
        commands,
        common,
        "impute",
        "fill the missing cells of DATA with their conditional means under a Gaussian "
        "mixture: MODEL's, or, without MODEL, one fitted to DATA itself",
    )
    impute.description = (
        f"{impute.description}. Observed cells are written unchanged and no row is "
        "dropped: a row with every cell missing gets the mixture's mean. Missing cells are "
        "empty cells, NA, NaN and Parquet nulls; infinite values are errors."
    )
    impute.add_argument(
        "model",
        metavar="MODEL",
        nargs="?",
        help="a model file written by 'mixtorch fit' (gmm, gaussian, kde or bayes; fitted "
        "with --missing or not) or a saved GaussianMixtureImputer; leave it out to fit a "
        "GaussianMixtureImputer (EM with the missing cells marginalised) to DATA and fill "
        "DATA with it",
    )
    impute.add_argument("data", metavar="DATA", help="a .csv, .npy or .parquet table ('-': stdin)")
    _add_data_options(impute)
    _add_out(
        impute,
        "write to .csv/.npy/.parquet instead of stdout ('-'); a CSV keeps DATA's header line "
        "if it had one",
    )
    fitting = impute.add_argument_group("fitting to DATA (only without MODEL)")
    fitting.add_argument(
        "--components", "-k", type=_positive_int, help="number of components (default: 1)"
    )
    fitting.add_argument(
        "--covariance",
        choices=["full", "diag", "spherical", "tied"],
        help="covariance type (default: full; only full and tied let observed cells inform "
        "missing ones within a component)",
    )
    fitting.add_argument(
        "--device", help="cpu, cuda, cuda:1, mps ..., one this machine has (default: cpu)"
    )
    fitting.add_argument("--seed", type=_seed, help="random seed (reproducible fits)")
    fitting.add_argument("--max-iter", type=_positive_int, help="EM iteration limit (default: 100)")
    fitting.add_argument("--n-init", type=_positive_int, help="restarts; the best is kept")
    fitting.add_argument("--tol", type=float, help="convergence threshold (default: 1e-3)")
    fitting.add_argument("--reg-covar", type=float, help="added to covariance diagonals")


def _add_select(commands: Any, common: argparse.ArgumentParser) -> None:
    select = _command(commands, common, "select", "choose K and covariance type by BIC, AIC or CV")
    select.add_argument("data", metavar="DATA", help="a .csv, .npy or .parquet table ('-': stdin)")
    _add_data_options(select)
    _add_missing(select, "every candidate")
    select.add_argument("--components", default="1-6", help="values of K, e.g. 1-6 or 1,2,4")
    select.add_argument("--covariance", default="all", help="comma list, or 'all' for all four")
    select.add_argument(
        "--criterion", choices=["bic", "aic", "cv"], default="bic", help="what to minimise"
    )
    select.add_argument("--cv", type=_positive_int, help="folds for --criterion cv (default: 5)")
    select.add_argument("--seed", type=_seed, help="random seed")
    select.add_argument("--max-iter", type=_positive_int, default=100, help="EM iteration limit")
    select.add_argument(
        "--format", choices=["text", "csv", "json"], default="text", help="how to print the table"
    )
    _add_out(select, "write the best model here (*.mixtorch or *.safetensors)")
    select.add_argument("--plot", type=_file_name, help="write the criterion-vs-K plot here (PNG)")


def _names(text: str) -> list[str]:
    names = [name.strip() for name in text.split(",") if name.strip()]
    if not names:
        raise argparse.ArgumentTypeError("expected a comma-separated list of column names")
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:  # a column read twice would be a second, identical feature
        raise argparse.ArgumentTypeError(
            f"{', '.join(map(repr, repeated))} given more than once; name each column once"
        )
    return names


def _file_name(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a file name, got an empty one")
    return text


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _seed(text: str) -> int:
    """A seed as scikit-learn takes one: an integer in [0, 2**32 - 1], for every command."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer seed, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"expected a seed in [0, 2**32 - 1], got {text!r}")
    return value

"""The ``mixtorch`` command's argument parser (see :mod:`mixtorch.cli`)."""

from __future__ import annotations

import argparse
from typing import Any

from . import __version__
from .demo import DEFAULT_COMPONENTS

__all__ = ["MODELS", "build_parser"]

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
    parser = argparse.ArgumentParser(
        prog="mixtorch",
        description="Gaussian density estimation on PyTorch: fit Gaussians, Gaussian "
        "mixtures and KDEs to data files, then score, predict, sample and plot.",
        epilog="Data files: .csv/.tsv/.txt (numeric, optional header), .npy, .parquet. "
        "Model files are safetensors written by 'mixtorch fit'. Exit codes: 0 ok, "
        "2 usage or input error, 1 unexpected failure. Run 'mixtorch COMMAND --help'.",
    )
    parser.add_argument("--version", action="version", version=f"mixtorch {__version__}")
    _add_switches(parser, False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    _add_fit(commands, common)
    _add_model_data(commands, common, "score", "mean log-likelihood per sample of DATA")
    _add_model_data(commands, common, "predict", "most probable component of each row")
    sample = commands.add_parser("sample", parents=[common], help="draw new points from a model")
    sample.add_argument("model", metavar="MODEL")
    sample.add_argument("-n", type=_positive_int, default=10, help="how many (default 10)")
    sample.add_argument("--seed", type=int, help="random seed")
    sample.add_argument("--out", help="write to .csv/.npy/.parquet instead of stdout")
    plot = commands.add_parser("plot", parents=[common], help="draw a model (and data) to PNG")
    plot.add_argument("model", metavar="MODEL")
    plot.add_argument("data", metavar="DATA", nargs="?", help="data to draw under the model")
    plot.add_argument(
        "--kind",
        choices=["auto", "density", "curve", "traces"],
        default="auto",
        help="density: 1-D histogram + curves or 2-D scatter + ellipses; curve: training "
        "curve; traces: MCMC draws (default: density for 1-2 features, else curve)",
    )
    plot.add_argument("--out", help="PNG file (default: MODEL's name with .png)")
    _add_select(commands, common)
    demo = commands.add_parser(
        "demo", parents=[common], help="fit the bundled digits, sample new ones, draw them"
    )
    demo.add_argument("--out", default="out", help="output folder (default out)")
    demo.add_argument("--seed", type=int, default=0)
    demo.add_argument(
        "--components",
        default=",".join(map(str, DEFAULT_COMPONENTS)),
        help="values of K compared by BIC (default %(default)s)",
    )
    return parser


def _add_switches(parser: argparse.ArgumentParser, default: Any) -> None:
    parser.add_argument(
        "-q", "--quiet", action="store_true", default=default, help="print only results"
    )
    parser.add_argument(
        "--no-progress", action="store_true", default=default, help="no progress bars"
    )


def _add_fit(commands: Any, common: argparse.ArgumentParser) -> None:
    fit = commands.add_parser("fit", parents=[common], help="fit a model to DATA, write MODEL")
    fit.add_argument("data", metavar="DATA", help="a .csv, .npy or .parquet table")
    fit.add_argument("--model", choices=sorted(MODELS), default="gmm", help="default gmm")
    fit.add_argument("--components", "-k", type=_positive_int, help="number of components")
    fit.add_argument("--covariance", choices=["full", "diag", "spherical", "tied"])
    fit.add_argument("--algorithm", help="fitting algorithm, where the model offers several")
    fit.add_argument("--device", help="cpu, cuda, cuda:1, mps ...")
    fit.add_argument("--seed", type=int, help="random seed (reproducible fits)")
    fit.add_argument("--max-iter", type=_positive_int)
    fit.add_argument("--n-init", type=_positive_int, help="restarts; the best is kept")
    fit.add_argument("--out", "-o", help="model file (default: DATA's name + .mixtorch)")


def _add_model_data(commands: Any, common: argparse.ArgumentParser, name: str, text: str) -> None:
    command = commands.add_parser(name, parents=[common], help=text)
    command.add_argument("model", metavar="MODEL")
    command.add_argument("data", metavar="DATA")
    command.add_argument("--out", help="write to .csv/.npy/.parquet instead of stdout")
    if name == "score":
        command.add_argument(
            "--per-sample", action="store_true", help="log-density of every row instead"
        )
    else:
        command.add_argument("--proba", action="store_true", help="responsibilities instead")


def _add_select(commands: Any, common: argparse.ArgumentParser) -> None:
    select = commands.add_parser(
        "select", parents=[common], help="choose K and covariance type by BIC, AIC or CV"
    )
    select.add_argument("data", metavar="DATA")
    select.add_argument("--components", default="1-6", help="e.g. 1-6 or 1,2,4 (default 1-6)")
    select.add_argument(
        "--covariance", default="all", help="comma list or 'all' (default all four)"
    )
    select.add_argument("--criterion", choices=["bic", "aic", "cv"], default="bic")
    select.add_argument("--cv", type=_positive_int, default=5, help="folds for --criterion cv")
    select.add_argument("--seed", type=int, help="random seed")
    select.add_argument("--max-iter", type=_positive_int, default=100)
    select.add_argument("--out", help="write the best model here")
    select.add_argument("--plot", help="write the criterion-vs-K plot here (PNG)")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value

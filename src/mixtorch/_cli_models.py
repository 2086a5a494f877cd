"""How ``mixtorch fit`` (and ``mixtorch impute`` without MODEL) build their models from
the options (see :mod:`mixtorch.cli`): the class, the device and the parameters, checked
before any data are read."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ._cli_args import MODELS
from ._tables import UserError
from .impute import GaussianMixtureImputer

__all__ = ["build_imputer", "build_model", "refuse_fit_options"]

#: Option -> (the parameter it sets, the argparse attribute holding it).
_OPTIONS = {
    "--components": ("n_components", "components"),
    "--covariance": ("covariance_type", "covariance"),
    "--algorithm": ("algorithm", "algorithm"),
    "--device": ("device", "device"),
    "--seed": ("random_state", "seed"),
    "--max-iter": ("max_iter", "max_iter"),
    "--n-init": ("n_init", "n_init"),
    "--tol": ("tol", "tol"),
    "--reg-covar": ("reg_covar", "reg_covar"),
    "--bandwidth": ("bandwidth", "bandwidth"),
}


def _model_class(name: str) -> type:
    import mixtorch

    class_name = MODELS[name]
    cls = getattr(mixtorch, class_name, None)
    if cls is None:
        raise UserError(f"--model {name} needs mixtorch.{class_name}, which this version lacks")
    return cls


def _devices() -> list[str]:
    """The devices of this machine, named as --device takes them."""
    import torch

    names = ["cpu"]
    if torch.cuda.is_available():
        names += [f"cuda:{index}" for index in range(torch.cuda.device_count())]
    if torch.backends.mps.is_available():
        names.append("mps")
    xpu = getattr(torch, "xpu", None)
    if xpu is not None and xpu.is_available():
        names += [f"xpu:{index}" for index in range(xpu.device_count())]
    return names


def _check_device(text: str | None) -> None:
    """Refuse a --device this machine does not have (torch itself takes ``cpu:1`` and
    would fail on ``cuda:7`` only once the data are read), listing those it has."""
    if text is None:
        return
    import torch

    available = _devices()
    shown = text if text.strip() == text and text else repr(text)
    advice = f"give one this machine has: {', '.join(available)}"
    try:
        device = torch.device(text)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {shown} is not a device name; {advice}.") from None
    # "cuda" is device 0 unless a program chooses; the CPU and MPS have only one
    index = 0 if device.index is None else device.index
    single = index == 0 and device.type in ("cpu", "mps")
    if (device.type if single else f"{device.type}:{index}") in available:
        return
    raise UserError(f"--device {shown}: no such device here; {advice}.")


def _bandwidth(text: str | None) -> Any:
    if text is None:
        return None
    try:
        return float(text)
    except ValueError:
        return text


def build_model(args: argparse.Namespace) -> Any:
    """The estimator ``mixtorch fit`` fits, its parameters set from the options."""
    cls = _model_class(args.model)
    model = cls()
    accepted = model.get_params(deep=False)
    if args.missing:
        _check_missing(args, accepted)
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
    _set_options(model, args, f"--model {args.model}")
    if args.missing:
        model.set_params(missing_values=np.nan)
    return model


def _check_missing(args: argparse.Namespace, accepted: dict[str, Any]) -> None:
    """Refuse --missing for a model that cannot fit rows with missing cells."""
    if "missing_values" not in accepted:
        single = " (for one Gaussian, --model gmm -k 1)" if args.model == "gaussian" else ""
        raise UserError(
            f"--missing needs --model gmm, the model whose EM marginalises missing cells; "
            f"--model {args.model} fits complete rows only: use --model gmm{single}, or fill "
            "the cells first with 'mixtorch impute DATA'."
        )
    if args.algorithm not in (None, "em"):
        raise UserError(
            f"--missing fits by EM only; leave out --algorithm {args.algorithm} (or give "
            "--algorithm em)."
        )


def build_imputer(args: argparse.Namespace) -> Any:
    """The ``GaussianMixtureImputer`` that ``mixtorch impute DATA`` (no MODEL) fits."""
    imputer = GaussianMixtureImputer()
    _set_options(imputer, args, "'mixtorch impute'")
    return imputer


def _set_options(model: Any, args: argparse.Namespace, what: str) -> None:
    """Set the parameters the options give (those a command has and the user passed);
    an option that the model does not take is refused, naming ``what`` refuses it."""
    _check_device(getattr(args, "device", None))
    accepted = model.get_params(deep=False)
    wanted: dict[str, tuple[str, Any]] = {}
    for flag, (name, attribute) in _OPTIONS.items():
        value = getattr(args, attribute, None)
        wanted[name] = (flag, _bandwidth(value) if name == "bandwidth" else value)
    params = {}
    for name, (flag, value) in wanted.items():
        if value is None:
            continue
        if name not in accepted:
            raise UserError(f"{what} does not take {flag}")
        params[name] = value
    model.set_params(**params)
    _validate_options(model, wanted)


def _validate_options(model: Any, wanted: dict[str, tuple[str, Any]]) -> None:
    """The model's own parameter check, now rather than after the data are read, with
    the option that set a refused parameter named first."""
    validate = getattr(model, "_validate_params", None)
    if validate is None:
        return
    try:
        validate()
    except (ValueError, TypeError) as error:
        for name, (flag, value) in wanted.items():
            if value is not None and f"'{name}' parameter" in str(error):
                raise UserError(f"{flag} {value}: {error}") from None
        raise


def refuse_fit_options(args: argparse.Namespace) -> None:
    """With MODEL, 'mixtorch impute' fits nothing: an option of the fit is a mistake."""
    for flag, value in (
        ("-k/--components", args.components),
        ("--covariance", args.covariance),
        ("--device", args.device),
        ("--seed", args.seed),
        ("--max-iter", args.max_iter),
        ("--n-init", args.n_init),
        ("--tol", args.tol),
        ("--reg-covar", args.reg_covar),
    ):
        if value is not None:
            raise UserError(
                f"{flag} sets the mixture that 'mixtorch impute' fits to DATA when no MODEL "
                f"is given, and MODEL ({args.model}) is already fitted; leave {flag} out, "
                "or leave MODEL out to fit a new mixture to DATA."
            )

"""How ``mixtorch fit`` builds its model from the options (see :mod:`mixtorch.cli`):
the class, the device and the parameters, checked before any data are read."""

from __future__ import annotations

import argparse
from typing import Any

from ._cli_args import MODELS
from ._tables import UserError

__all__ = ["build_model"]


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
    model.set_params(**params)
    _validate_options(model, wanted)
    return model


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

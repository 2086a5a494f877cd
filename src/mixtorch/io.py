"""Model files: ``save(model, path)`` and ``load(path)``, never pickle.

A model file is one safetensors file. The tensors hold every array of the fitted model;
safetensors' string metadata carries a JSON document with the class, its
hyper-parameters (``get_params``), the fitted scalars, how results are handed back
(NumPy or tensors), the format version and the mixtorch version. Loading never runs code
from the file: the class must live in the ``mixtorch`` package or be registered with
:func:`register_estimator`.

Estimators holding a ``mixture_`` (:class:`~mixtorch.GaussianMixture`,
:class:`~mixtorch.Gaussian`) are saved as their mixture parameters and rebuilt through
their public ``set_fitted``; any other estimator is saved generically: every attribute that
``fit`` set (fitted ``name_`` and private ``_name``) goes to the file, tensors and arrays
as tensors, mixtures, covariances and mixtorch dataclasses field by field, the rest as
JSON; it is restored with ``setattr`` followed by the class's ``_after_load()`` hook if
it has one.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ._codec import (
    Writer,
    class_name,
    decode,
    decode_kind,
    encode,
    encode_kind,
    import_mixtorch_class,
    is_mixtorch_module,
)
from .fit.em import EMTrace
from .fit.stepwise import StepwiseState
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .mixture import Mixture

__all__ = ["FORMAT_NAME", "FORMAT_VERSION", "load", "register_estimator", "save"]

FORMAT_NAME = "mixtorch-model"
FORMAT_VERSION = 1
_METADATA_KEY = "mixtorch"
_MAX_JSON_BYTES = 50_000_000

# -- estimator formats ---------------------------------------------------------------
#: state(model, writer) -> JSON tree; rebuild(model, tree, tensors, device) fills the model.
StateFn = Callable[[Any, "Writer"], dict[str, Any]]
RebuildFn = Callable[[Any, dict[str, Any], dict[str, torch.Tensor], Any], None]

_FORMATS: dict[type, tuple[StateFn, RebuildFn]] = {}
_REGISTERED: dict[str, type] = {}

_EM_SCALARS = ("converged_", "n_iter_", "lower_bound_", "lower_bounds_")


def register_estimator(
    cls: type, state: StateFn | None = None, rebuild: RebuildFn | None = None
) -> type:
    """Allow ``load`` to rebuild ``cls`` (needed for classes outside the mixtorch package).

    Parameters
    ----------
    cls : type
        A scikit-learn style estimator class.
    state, rebuild : callable, optional
        A custom format; by default the generic one (fitted attributes ending in ``_``).

    Returns
    -------
    cls, so the function can be used as a class decorator.
    """
    _REGISTERED[class_name(cls)] = cls
    if state is not None and rebuild is not None:
        _FORMATS[cls] = (state, rebuild)
    return cls


def _mixture_state(model: Any, writer: Writer) -> dict[str, Any]:
    state: dict[str, Any] = {
        "mixture_": encode(model.mixture_, "mixture_", writer, True),
        "kind": encode_kind(model.output_kind),
    }
    for name in (*_EM_SCALARS, "feature_names_in_"):
        if hasattr(model, name):
            state[name] = encode(getattr(model, name), name, writer, True)
    # partial_fit's running state (step counter, reference, statistics): tensors + JSON
    if getattr(model, "stepwise_state_", None) is not None:
        stepwise_tensors, stepwise_meta = model.stepwise_state_.to_tensors()
        state["stepwise_state_"] = {
            "meta": stepwise_meta,
            "tensors": {n: writer.add(f"stepwise.{n}", t) for n, t in stepwise_tensors.items()},
        }
    return state


def _mixture_rebuild(
    model: Any, state: dict[str, Any], tensors: dict[str, torch.Tensor], device: Any
) -> None:
    mixture = decode(state["mixture_"], tensors)
    if device is not None:
        mixture = mixture.to(device=device)
    kind = decode_kind(state["kind"], device)
    if isinstance(model, GaussianMixture):
        trace = EMTrace(
            lower_bounds=list(state.get("lower_bounds_", [])),
            n_iter=int(state.get("n_iter_", 0)),
            converged=bool(state.get("converged_", False)),
        )
        model.set_fitted(mixture, trace, output=kind)
        model.lower_bound_ = decode(state.get("lower_bound_", trace.lower_bound), tensors)
    else:
        model.set_fitted(mixture, output=kind)
    if "stepwise_state_" in state:
        saved = state["stepwise_state_"]
        stepwise = {name: tensors[key] for name, key in saved["tensors"].items()}
        model.stepwise_state_ = StepwiseState.from_tensors(stepwise, saved["meta"], device)
    if "feature_names_in_" in state:
        model.feature_names_in_ = decode(state["feature_names_in_"], tensors)


def _generic_state(model: Any, writer: Writer) -> dict[str, Any]:
    params = model.get_params(deep=False)
    # Fitted attributes (``name_``) and private state (``_name``) that fit computed;
    # hyper-parameters come from get_params and the output kind is saved on its own.
    fitted = {
        name: value
        for name, value in vars(model).items()
        if name not in params
        and name != "_fit_kind"
        and not name.startswith("__")
        and (name.endswith("_") or name.startswith("_"))
    }
    state: dict[str, Any] = {"attributes": encode(fitted, "attr", writer, True)}
    if hasattr(model, "output_kind"):
        state["kind"] = encode_kind(model.output_kind)
    return state


def _generic_rebuild(
    model: Any, state: dict[str, Any], tensors: dict[str, torch.Tensor], device: Any
) -> None:
    if device is not None:
        tensors = {key: value.to(device) for key, value in tensors.items()}
    for name, value in decode(state["attributes"], tensors).items():
        if device is not None and isinstance(value, Mixture):
            value = value.to(device=device)
        setattr(model, name, value)
    if "kind" in state:
        model.output_kind = decode_kind(state["kind"], device)
    hook = getattr(model, "_after_load", None)
    if callable(hook):
        hook()


for _cls in (GaussianMixture, Gaussian):
    _FORMATS[_cls] = (_mixture_state, _mixture_rebuild)


# -- public API ----------------------------------------------------------------------
def save(model: Any, path: str | os.PathLike[str]) -> Path:
    """Write a fitted estimator to ``path`` (a safetensors file; ``.mixtorch`` or
    ``.safetensors`` are good suffixes).

    Parameters
    ----------
    model : estimator
        A fitted mixtorch estimator (or one registered with :func:`register_estimator`).
    path : str or path-like

    Returns
    -------
    Path
        The path written.
    """
    from safetensors.torch import save_file

    from . import __version__

    if not hasattr(model, "get_params"):
        raise TypeError(f"save expects a scikit-learn style estimator, got {type(model)!r}.")
    if not any(name.endswith("_") and not name.startswith("_") for name in vars(model)):
        raise ValueError(f"This {type(model).__name__} is not fitted yet; fit it before saving.")
    writer = Writer({}, [])
    params = encode(model.get_params(deep=False), "params", writer, False)
    state_fn = _FORMATS.get(type(model), (_generic_state, _generic_rebuild))[0]
    document = {
        "format": FORMAT_NAME,
        "format_version": FORMAT_VERSION,
        "mixtorch_version": __version__,
        "class": class_name(type(model)),
        "params": params,
        "state": state_fn(model, writer),
        "dropped_params": writer.dropped,
    }
    path = Path(path)
    save_file(writer.tensors, str(path), metadata={_METADATA_KEY: json.dumps(document)})
    return path


def load(path: str | os.PathLike[str], *, device: Any = None) -> Any:
    """Read a model written by :func:`save`.

    Parameters
    ----------
    path : str or path-like
    device : str or torch.device, optional
        Where to put the parameters; by default the CPU. A model fitted on tensors hands
        back tensors on this device (so a GPU model loads anywhere; pass
        ``device="cuda"`` to put it back on the GPU); a NumPy-fitted one hands back NumPy.

    Returns
    -------
    estimator
        Predicts, scores and samples exactly as the saved model did.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    ValueError
        If the file is truncated, corrupted, a pickle, not a mixtorch model, or written by
        a newer format version.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"No model file at {path}.")
    _refuse_pickles(path)
    document, tensors = _read(path)
    cls = _resolve_class(document.get("class"), path)
    params = decode(document.get("params", {}), tensors)
    try:
        model = cls(**params)
    except TypeError as error:
        raise ValueError(
            f"{path}: cannot rebuild {cls.__name__} from its parameters: {error}"
        ) from error
    rebuild = _FORMATS.get(cls, (_generic_state, _generic_rebuild))[1]
    try:
        rebuild(model, document["state"], tensors, device)
    except (KeyError, TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{path}: the model file is inconsistent ({error}).") from error
    return model


def _refuse_pickles(path: Path) -> None:
    with path.open("rb") as handle:
        head = handle.read(2)
    # 0x80 opens every pickle of protocol >= 2; torch.save writes a zip ("PK").
    if head[:1] == b"\x80" or head == b"PK":
        raise ValueError(
            f"{path} looks like a pickle or torch.save file; mixtorch model files are "
            "safetensors and pickles are never loaded (they can run arbitrary code)."
        )


def _read(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    from safetensors import safe_open

    not_ours = f"{path} is not a mixtorch model file"
    try:
        with safe_open(str(path), framework="pt", device="cpu") as handle:
            metadata = handle.metadata() or {}
            text = metadata.get(_METADATA_KEY)
            if text is None:
                raise ValueError(f"{not_ours} (a safetensors file without mixtorch metadata).")
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except ValueError:
        raise
    except Exception as error:  # safetensors raises its own error types for bad bytes
        raise ValueError(f"{not_ours}, or it is truncated or corrupted: {error}") from error
    if len(text) > _MAX_JSON_BYTES:
        raise ValueError(f"{not_ours} (its metadata is implausibly large).")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}: the model metadata is not valid JSON ({error}).") from error
    _check_document(document, path)
    return document, tensors


def _check_document(document: Any, path: Path) -> None:
    if not isinstance(document, dict) or document.get("format") != FORMAT_NAME:
        raise ValueError(f"{path} is not a mixtorch model file (no '{FORMAT_NAME}' tag).")
    version = document.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise ValueError(f"{path}: the model file has no valid format version ({version!r}).")
    if version > FORMAT_VERSION:
        raise ValueError(
            f"{path} uses model format version {version}, newer than this mixtorch reads "
            f"(version {FORMAT_VERSION}); upgrade mixtorch to load it."
        )
    if version < 1 or "state" not in document:
        raise ValueError(f"{path}: unsupported or incomplete model file (version {version}).")


def _resolve_class(name: Any, path: Path) -> type:
    if not isinstance(name, str) or ":" not in name:
        raise ValueError(f"{path}: the model file does not name a class ({name!r}).")
    if name in _REGISTERED:
        return _REGISTERED[name]
    if not is_mixtorch_module(name.partition(":")[0]):
        raise ValueError(
            f"{path} holds a {name}, which is not a mixtorch estimator; register it with "
            "mixtorch.io.register_estimator before loading."
        )
    try:
        target = import_mixtorch_class(name)
    except ValueError as error:
        raise ValueError(f"{path}: this mixtorch has no estimator {name} ({error}).") from error
    if not hasattr(target, "get_params"):
        raise ValueError(f"{path}: {name} is not an estimator class.")
    return target

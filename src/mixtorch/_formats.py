"""How each estimator becomes a model file's JSON tree and tensors, and back (see
:mod:`mixtorch.io`).

Three formats:

* mixture estimators (:class:`~mixtorch.GaussianMixture`, :class:`~mixtorch.Gaussian`):
  the fitted :class:`~mixtorch.Mixture`, the fit record and any ``partial_fit`` state,
  rebuilt through the public ``set_fitted``;
* estimators that wrap a fitted ``GaussianMixture`` in ``mixture_model_``
  (:class:`~mixtorch.GaussianMixtureRegressor`, :class:`~mixtorch.GaussianMixtureImputer`):
  the inner model in the mixture format (its tensors under ``mixture_model_/``), the
  rest generically;
* any other estimator (generic): every attribute ``fit`` set (``name_`` and ``_name``),
  restored with ``setattr`` and the class's ``_after_load()`` hook if it has one.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable
from typing import Any

import torch
from sklearn.utils._param_validation import validate_parameter_constraints

from ._codec import Writer, decode, decode_kind, encode, encode_kind
from .fit.em import EMTrace
from .fit.stepwise import StepwiseState
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .impute import GaussianMixtureImputer
from .mixture import Mixture
from .regression import GaussianMixtureRegressor

__all__ = ["FORMATS", "REGISTERED", "RebuildFn", "StateFn", "generic_format"]

#: state(model, writer) -> JSON tree; rebuild(model, tree, tensors, device) fills the model.
StateFn = Callable[[Any, Writer], dict[str, Any]]
RebuildFn = Callable[[Any, dict[str, Any], dict[str, torch.Tensor], Any], None]

#: Classes registered with :func:`mixtorch.io.register_estimator`, by class tag.
REGISTERED: dict[str, type] = {}

_EM_SCALARS = ("converged_", "n_iter_", "lower_bound_", "lower_bounds_")
#: Prefix of the inner model's tensors in a wrapper's file.
_INNER = "mixture_model_/"


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
        trace = _em_trace(state, tensors)
        model.set_fitted(mixture, trace, output=kind)
        model.lower_bound_ = _bound(
            decode(state.get("lower_bound_", trace.lower_bound), tensors), "lower_bound_"
        )
    else:
        model.set_fitted(mixture, output=kind)
    if "stepwise_state_" in state:
        saved = state["stepwise_state_"]
        stepwise = {name: tensors[key] for name, key in saved["tensors"].items()}
        model.stepwise_state_ = StepwiseState.from_tensors(stepwise, saved["meta"], device)
    if "feature_names_in_" in state:
        model.feature_names_in_ = decode(state["feature_names_in_"], tensors)


def _em_trace(state: dict[str, Any], tensors: dict[str, torch.Tensor]) -> EMTrace:
    """The fit record of a mixture file, each value of the type a fit gives it (a file
    edited by hand could say ``converged_: "no"``, which ``bool()`` reads as True)."""
    n_iter = state.get("n_iter_", 0)
    if isinstance(n_iter, bool) or not isinstance(n_iter, int) or n_iter < 0:
        raise ValueError(f"n_iter_ must be a non-negative integer, got {n_iter!r}")
    converged = state.get("converged_", False)
    if not isinstance(converged, bool):
        raise ValueError(f"converged_ must be true or false, got {converged!r}")
    bounds = decode(state.get("lower_bounds_", []), tensors)  # -inf is stored as a tag
    if not isinstance(bounds, list):
        raise ValueError(f"lower_bounds_ must be a list of numbers, got {bounds!r}")
    return EMTrace(
        lower_bounds=[_bound(value, "lower_bounds_") for value in bounds],
        n_iter=n_iter,
        converged=converged,
    )


def _bound(value: Any, name: str) -> float:
    """``value`` as a lower bound: a real number, possibly infinite, never NaN."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ValueError(f"{name} must hold real numbers (not NaN), got {value!r}")
    return float(value)


def _generic_state(
    model: Any, writer: Writer, excluded: frozenset[str] = frozenset()
) -> dict[str, Any]:
    params = model.get_params(deep=False)
    # Fitted attributes (``name_``) and private state (``_name``) that fit computed;
    # hyper-parameters come from get_params and the output kind is saved on its own.
    fitted = {
        name: value
        for name, value in vars(model).items()
        if name not in params
        and name not in excluded
        and name != "_fit_kind"
        and not name.startswith("__")
        and (name.endswith("_") or name.startswith("_"))
    }
    state: dict[str, Any] = {"attributes": encode(fitted, "attr", writer, True)}
    if "_fit_kind" in vars(model):  # how results are handed back, set by fit
        state["kind"] = encode_kind(vars(model)["_fit_kind"])
    return state


def _generic_rebuild(
    model: Any, state: dict[str, Any], tensors: dict[str, torch.Tensor], device: Any
) -> None:
    if device is not None:
        tensors = {key: value.to(device) for key, value in tensors.items()}
    attributes = decode(state["attributes"], tensors)
    if not isinstance(attributes, dict):
        raise ValueError(
            f"the fitted attributes must be a mapping, got {type(attributes).__name__}"
        )
    for name, value in attributes.items():
        _check_attribute_name(model, name)
        if device is not None and isinstance(value, Mixture):
            value = value.to(device=device)
        setattr(model, name, value)
    if "kind" in state:
        vars(model)["_fit_kind"] = decode_kind(state["kind"], device)
    hook = getattr(model, "_after_load", None)
    if callable(hook):
        hook()


def _check_attribute_name(model: Any, name: str) -> None:
    """Refuse what :func:`_generic_state` never writes: hyper-parameters (they would skip
    their validation), dunder names, and names of the class's methods and properties (a
    file could otherwise replace ``_after_load`` and with it the class's own checks)."""
    cls = type(model)
    static = inspect.getattr_static(cls, name, None)
    if (
        name in model.get_params(deep=False)
        or name in ("_fit_kind", "_after_load")
        or name.startswith("__")
        or not (name.endswith("_") or name.startswith("_"))
        or callable(static)
        or hasattr(type(static), "__set__")  # a property or another data descriptor
    ):
        raise ValueError(
            f"{name!r} is not a fitted attribute of {cls.__name__} (fitted attributes end "
            "or start with '_' and are not parameters, methods or properties)"
        )


def _wrapper_state(model: Any, writer: Writer) -> dict[str, Any]:
    """The inner ``mixture_model_`` in the mixture format, the rest generically."""
    inner, inner_writer = model.mixture_model_, Writer({}, [])
    tree = {
        "params": encode(inner.get_params(deep=False), "params", inner_writer, False),
        "state": _mixture_state(inner, inner_writer),
    }
    for key, tensor in inner_writer.tensors.items():
        writer.add(_INNER + key, tensor)
    writer.dropped.extend(f"mixture_model_.{key}" for key in inner_writer.dropped)
    return {"mixture_model_": tree, **_generic_state(model, writer, frozenset({"mixture_model_"}))}


def _wrapper_rebuild(
    model: Any, state: dict[str, Any], tensors: dict[str, torch.Tensor], device: Any
) -> None:
    inner_tensors = {
        key.removeprefix(_INNER): value for key, value in tensors.items() if key.startswith(_INNER)
    }
    tree = state["mixture_model_"]
    params = decode(tree["params"], inner_tensors)
    inner = GaussianMixture(**params)
    _check_inner_params(model, params)
    _mixture_rebuild(inner, tree["state"], inner_tensors, device)
    _generic_rebuild(model, state, tensors, device)
    model.mixture_model_ = inner


#: The wrapper parameters that fix the joint mixture's shape: a file whose joint mixture
#: has others is refused. The rest (``max_iter``, ``random_state``, ``chunk_size``, ...)
#: may have changed by ``set_params`` after the fit and need only be valid.
_SHAPING_PARAMS = ("n_components", "covariance_type")


def _check_inner_params(model: Any, params: dict[str, Any]) -> None:
    """The joint mixture's hyper-parameters: ``n_components`` and ``covariance_type``
    equal the wrapper's, and all of them within their constraints."""
    outer = model.get_params(deep=False)
    for name in _SHAPING_PARAMS:
        if name in params and name in outer and params[name] != outer[name]:
            raise ValueError(
                f"the joint mixture has {name}={params[name]!r} but the "
                f"{type(model).__name__} has {name}={outer[name]!r}"
            )
    validate_parameter_constraints(
        GaussianMixture._parameter_constraints, params, caller_name="GaussianMixture"
    )


def generic_format() -> tuple[StateFn, RebuildFn]:
    """The format of estimators without a format of their own."""
    return _generic_state, _generic_rebuild


#: The format of each of mixtorch's estimators that does not use the generic one.
FORMATS: dict[type, tuple[StateFn, RebuildFn]] = {
    GaussianMixture: (_mixture_state, _mixture_rebuild),
    Gaussian: (_mixture_state, _mixture_rebuild),
    GaussianMixtureRegressor: (_wrapper_state, _wrapper_rebuild),
    GaussianMixtureImputer: (_wrapper_state, _wrapper_rebuild),
}

"""Encoding of estimator state for model files: a JSON-safe tree plus named tensors.

Values JSON cannot hold are tagged: tensors and numeric arrays become references to
tensors in the safetensors file, mixtures, covariances and mixtorch dataclasses are stored
field by field, non-finite floats, dtypes, devices, tuples and string arrays get small
tags. Decoding never imports anything a file names: dtypes come from an allow-list and
dataclasses from an explicit table of mixtorch's value types (:data:`VALUE_TYPES`); every
mixture and covariance read back is validated as ``Mixture.from_parameters`` validates.
"""

from __future__ import annotations

import dataclasses
import hashlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._validation import OutputKind
from .covariance import Covariance, covariance_class
from .fit.bandwidth import LooResult
from .fit.binned import RegularGrid
from .fit.binned_score import LogDensityGrid
from .fit.em import EMTrace
from .fit.gradient_trace import GradientTrace
from .fit.variational import VariationalPosterior, VariationalPrior, VariationalTrace
from .mixture import Mixture
from .stats import SufficientStatistics

__all__ = [
    "Writer",
    "class_name",
    "decode",
    "decode_kind",
    "encode",
    "encode_kind",
    "is_mixtorch_module",
    "tensor_digest",
]

# Tags of the JSON encoding of values that JSON cannot hold directly.
_TENSOR, _ARRAY, _MIXTURE, _DTYPE, _DEVICE, _FLOAT, _STRINGS, _TUPLE = (
    "__tensor__",
    "__ndarray__",
    "__mixture__",
    "__dtype__",
    "__device__",
    "__float__",
    "__strings__",
    "__tuple__",
)
_COVARIANCE, _DATACLASS = "__covariance__", "__dataclass__"

#: The dtypes a file may name (never ``getattr(torch, name)`` on a name from a file).
DTYPES: dict[str, torch.dtype] = {
    str(dtype).removeprefix("torch."): dtype
    for dtype in (
        torch.float16,
        torch.bfloat16,
        torch.float32,
        torch.float64,
        torch.complex64,
        torch.complex128,
        torch.int8,
        torch.int16,
        torch.int32,
        torch.int64,
        torch.uint8,
        torch.bool,
    )
}

#: The dataclasses a file may hold, by name (fitted state of mixtorch's estimators).
VALUE_TYPES: dict[str, type] = {
    cls.__qualname__: cls
    for cls in (
        EMTrace,
        GradientTrace,
        LogDensityGrid,
        LooResult,
        RegularGrid,
        SufficientStatistics,
        VariationalPosterior,
        VariationalPrior,
        VariationalTrace,
    )
}


@dataclass
class Writer:
    """Collects tensors while the JSON tree is built."""

    tensors: dict[str, torch.Tensor]
    dropped: list[str]

    def add(self, key: str, value: torch.Tensor) -> str:
        self.tensors[key] = value.detach().cpu().contiguous().clone()
        return key


# -- encoding ------------------------------------------------------------------------
def encode(value: Any, key: str, writer: Writer, strict: bool) -> Any:
    """A JSON-safe tree for ``value``; arrays go to ``writer`` under ``key``."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool):
        return int(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (float, np.floating)):
        number = float(value)
        # Infinity and NaN are not JSON; lower_bound_ is -inf before any EM iteration.
        return number if math.isfinite(number) else {_FLOAT: repr(number)}
    if isinstance(value, torch.dtype):
        return {_DTYPE: str(value).removeprefix("torch.")}
    if isinstance(value, torch.device):
        return {_DEVICE: str(value)}
    if isinstance(value, torch.Tensor):
        return {_TENSOR: writer.add(key, value)}
    if isinstance(value, np.ndarray):
        if value.dtype.kind in "OUS":
            return {_STRINGS: [str(item) for item in value.ravel().tolist()]}
        return {_ARRAY: writer.add(key, torch.from_numpy(np.ascontiguousarray(value)))}
    if isinstance(value, Mixture):
        return _encode_mixture(value, key, writer)
    if isinstance(value, OutputKind):
        return encode_kind(value)
    if isinstance(value, Covariance):
        tensor_key = writer.add(f"{key}.covariances", value.covariances)
        return {_COVARIANCE: [value.kind, tensor_key, value.n_features]}
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _encode_dataclass(value, key, writer, strict)
    if isinstance(value, dict) and all(isinstance(name, str) for name in value):
        return {name: encode(item, f"{key}.{name}", writer, strict) for name, item in value.items()}
    if isinstance(value, (set, frozenset)) and all(isinstance(item, str) for item in value):
        return sorted(value)  # read back as a list (e.g. GaussianMixture's `fixed`)
    if isinstance(value, (list, tuple)):
        items = [encode(item, f"{key}.{i}", writer, strict) for i, item in enumerate(value)]
        return {_TUPLE: items} if isinstance(value, tuple) else items
    if strict:
        raise TypeError(
            f"Cannot save {key!r} of type {type(value).__name__}: only numbers, strings, "
            "tensors, arrays, lists and dicts can go in a model file. Register the class "
            "with mixtorch.io.register_estimator to save it another way."
        )
    # A hyper-parameter such as a RandomState cannot be written; it is reset to None.
    writer.dropped.append(key)
    return None


def _encode_mixture(mixture: Mixture, key: str, writer: Writer) -> dict[str, Any]:
    return {
        _MIXTURE: {
            "covariance_type": mixture.covariance_type,
            "weights": writer.add(f"{key}.weights", mixture.weights),
            "means": writer.add(f"{key}.means", mixture.means),
            "covariances": writer.add(f"{key}.covariances", mixture.covariance.covariances),
        }
    }


def _encode_dataclass(value: Any, key: str, writer: Writer, strict: bool) -> dict[str, Any]:
    """A mixtorch dataclass (a posterior, a density grid, ...) as its fields."""
    cls = type(value)
    if VALUE_TYPES.get(cls.__qualname__) is not cls:
        return encode(object(), key, writer, strict)  # refused like any unknown object
    fields = {
        field.name: encode(getattr(value, field.name), f"{key}.{field.name}", writer, strict)
        for field in dataclasses.fields(value)
    }
    return {_DATACLASS: [class_name(cls), fields]}


def encode_kind(kind: OutputKind) -> dict[str, Any]:
    return {
        "is_tensor": kind.is_tensor,
        "device": None if kind.device is None else str(kind.device),
    }


# -- decoding ------------------------------------------------------------------------
def decode(tree: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """The value ``tree`` encodes. Raises KeyError, IndexError, TypeError or ValueError
    on a malformed tree (the caller names the file)."""
    if isinstance(tree, list):
        return [decode(item, tensors) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        ((tag, payload),) = tree.items()
        decoder = _DECODERS.get(tag)
        if decoder is not None:
            return decoder(payload, tensors)
    return {name: decode(item, tensors) for name, item in tree.items()}


def _decode_dtype(payload: Any, tensors: dict[str, torch.Tensor]) -> torch.dtype:
    if not isinstance(payload, str) or payload not in DTYPES:
        raise ValueError(f"unknown dtype {payload!r} (known: {', '.join(DTYPES)})")
    return DTYPES[payload]


def _decode_device(payload: Any) -> torch.device:
    try:
        return torch.device(str(payload))
    except RuntimeError as error:  # torch's error for a name it does not know
        raise ValueError(f"unknown device {payload!r}: {error}") from error


def _decode_mixture(payload: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Mixture:
    means = tensors[payload["means"]]
    _check_finite(means, "means")
    # The checks of from_parameters: shapes, finite non-negative weights summing to one,
    # finite positive-definite covariances.
    return Mixture.from_parameters(
        tensors[payload["weights"]],
        means,
        tensors[payload["covariances"]],
        payload["covariance_type"],
    )


def _decode_covariance(payload: list[Any], tensors: dict[str, torch.Tensor]) -> Covariance:
    kind, tensor_key, n_features = payload
    covariances = tensors[tensor_key]
    _check_finite(covariances, "covariances")
    return covariance_class(kind)(covariances, n_features=int(n_features))


def _check_finite(tensor: torch.Tensor, what: str) -> None:
    if not tensor.is_floating_point() or not bool(torch.isfinite(tensor).all()):
        raise ValueError(f"the {what} are not finite floating-point numbers")


def _decode_dataclass(payload: list[Any], tensors: dict[str, torch.Tensor]) -> Any:
    name, fields = payload
    cls = VALUE_TYPES.get(str(name).rpartition(":")[2])
    if cls is None or not is_mixtorch_module(str(name).partition(":")[0]):
        raise ValueError(f"{name} is not one of mixtorch's value types")
    values = {field: decode(item, tensors) for field, item in fields.items()}
    init = {f.name: values.pop(f.name) for f in dataclasses.fields(cls) if f.init}
    instance = cls(**init)
    for field, value in values.items():  # fields computed in __post_init__
        object.__setattr__(instance, field, value)
    if isinstance(instance, (VariationalPrior, VariationalPosterior)):
        _check_variational(instance)
    return instance


def _check_variational(value: VariationalPrior | VariationalPosterior) -> None:
    """The constraints a fit guarantees: finite values, positive concentrations and mean
    precisions, more than ``n_features - 1`` degrees of freedom (a Wishart's)."""
    if isinstance(value, VariationalPrior):
        centre, spread = value.mean, value.covariance
        concentrations: Any = [value.weight_concentration]
    else:
        centre, spread = value.means, value.covariance.covariances
        concentrations = list(value.weight_concentration)
    for what, number in (("mean", centre), ("covariance", spread)):
        _check_finite(torch.as_tensor(number), f"{type(value).__name__} {what}s")
    n_features = int(torch.as_tensor(centre).shape[-1])
    checks = (
        ("weight concentrations", concentrations, 0.0),
        ("mean precisions", [value.mean_precision], 0.0),
        ("degrees of freedom", [value.degrees_of_freedom], n_features - 1.0),
    )
    for what, parts, least in checks:
        numbers = torch.cat(
            [torch.as_tensor(part, dtype=torch.float64).reshape(-1) for part in parts]
        )
        if not bool(torch.isfinite(numbers).all()) or not bool((numbers > least).all()):
            raise ValueError(
                f"the {type(value).__name__}'s {what} must be finite and greater than {least:g}"
            )


_DECODERS: dict[str, Any] = {
    _TENSOR: lambda payload, tensors: tensors[payload],
    _ARRAY: lambda payload, tensors: tensors[payload].numpy(),
    _MIXTURE: _decode_mixture,
    _DTYPE: _decode_dtype,
    _DEVICE: lambda payload, tensors: _decode_device(payload),
    _FLOAT: lambda payload, tensors: float(str(payload)),
    _STRINGS: lambda payload, tensors: np.asarray([str(item) for item in payload], dtype=object),
    _TUPLE: lambda payload, tensors: tuple(decode(item, tensors) for item in payload),
    _COVARIANCE: _decode_covariance,
    _DATACLASS: _decode_dataclass,
}


def tensor_digest(tensors: dict[str, torch.Tensor]) -> str:
    """SHA-256 over every tensor's name, dtype, shape and bytes, in name order."""
    digest = hashlib.sha256()
    for name in sorted(tensors):
        tensor = tensors[name].detach().cpu()
        # A fresh 1-D copy has unit stride, which viewing as bytes needs.
        flat = torch.empty(tensor.numel(), dtype=tensor.dtype).copy_(tensor.reshape(-1))
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(flat.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def decode_kind(tree: dict[str, Any], device: Any) -> OutputKind:
    if not tree.get("is_tensor"):
        return OutputKind(False)
    # Tensors come back where the parameters are loaded (the CPU unless ``device`` says
    # otherwise), never on the saving machine's device, which may not exist here.
    return OutputKind(True, torch.device(device if device is not None else "cpu"))


def class_name(cls: type) -> str:
    return f"{cls.__module__}:{cls.__qualname__}"


def is_mixtorch_module(module_name: str) -> bool:
    return module_name == "mixtorch" or module_name.startswith("mixtorch.")

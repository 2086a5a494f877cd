"""Encoding of estimator state for model files: a JSON-safe tree plus named tensors.

Values JSON cannot hold are tagged: tensors and numeric arrays become references to
tensors in the safetensors file, mixtures, covariances and mixtorch dataclasses are stored
field by field, non-finite floats, dtypes, devices, tuples and string arrays get small
tags. Decoding imports classes only from mixtorch's own modules.
"""

from __future__ import annotations

import dataclasses
import importlib
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from ._validation import OutputKind
from .covariance import Covariance, covariance_class
from .mixture import Mixture

__all__ = [
    "Writer",
    "class_name",
    "decode",
    "decode_kind",
    "encode",
    "encode_kind",
    "import_mixtorch_class",
    "is_mixtorch_module",
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
    if not is_mixtorch_module(cls.__module__):
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
    if isinstance(tree, list):
        return [decode(item, tensors) for item in tree]
    if not isinstance(tree, dict):
        return tree
    if len(tree) == 1:
        ((tag, payload),) = tree.items()
        if tag == _TENSOR:
            return tensors[payload]
        if tag == _ARRAY:
            return tensors[payload].numpy()
        if tag == _MIXTURE:
            return _decode_mixture(payload, tensors)
        if tag == _DTYPE:
            return getattr(torch, payload)
        if tag == _DEVICE:
            return torch.device(payload)
        if tag == _FLOAT:
            return float(payload)
        if tag == _STRINGS:
            return np.asarray(payload, dtype=object)
        if tag == _TUPLE:
            return tuple(decode(item, tensors) for item in payload)
        if tag == _COVARIANCE:
            kind, tensor_key, n_features = payload
            return covariance_class(kind)(tensors[tensor_key], n_features=n_features)
        if tag == _DATACLASS:
            return _decode_dataclass(payload, tensors)
    return {name: decode(item, tensors) for name, item in tree.items()}


def _decode_mixture(payload: dict[str, Any], tensors: dict[str, torch.Tensor]) -> Mixture:
    means = tensors[payload["means"]]
    kind = covariance_class(payload["covariance_type"])
    covariance = kind(tensors[payload["covariances"]], n_features=means.shape[1])
    return Mixture(tensors[payload["weights"]], means, covariance)


def _decode_dataclass(payload: list[Any], tensors: dict[str, torch.Tensor]) -> Any:
    name, fields = payload
    cls = import_mixtorch_class(name)
    if not dataclasses.is_dataclass(cls):
        raise ValueError(f"{name} is not a dataclass")
    values = {field: decode(item, tensors) for field, item in fields.items()}
    init = {f.name: values.pop(f.name) for f in dataclasses.fields(cls) if f.init}
    instance = cls(**init)
    for field, value in values.items():  # fields computed in __post_init__
        object.__setattr__(instance, field, value)
    return instance


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


def import_mixtorch_class(name: str) -> type:
    """The class ``module:qualname``, imported only from mixtorch's own modules: importing
    a module named by a file would run code chosen by whoever wrote the file."""
    module_name, _, qualname = name.partition(":")
    if not is_mixtorch_module(module_name):
        raise ValueError(f"{name} is not part of mixtorch")
    try:
        target: Any = importlib.import_module(module_name)
        for part in qualname.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as error:
        raise ValueError(str(error)) from error
    if not isinstance(target, type):
        raise ValueError(f"{name} is not a class")
    return target

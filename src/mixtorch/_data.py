"""How an estimator's ``fit`` input becomes what the fitters take: a chunk source for data
sources and for shards across ``torch.distributed`` ranks.

Ranks first agree on their configuration (:func:`~mixtorch.distributed.check_same_configuration`,
one small collective), so a mismatch is the same clear ``ValueError`` on every rank
instead of a collective that aborts or hangs. A rank whose shard has no rows takes part
with one empty chunk and contributes nothing.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from ._validation import OutputKind, resolve_dtype, to_tensor
from .distributed import check_same_configuration, is_distributed
from .sources import ChunkSource, as_source, from_callable, is_source

__all__ = [
    "NotInMemoryError",
    "SourceInput",
    "prepare_source",
    "refuse_across_ranks",
    "refuse_sources",
    "uses_source",
]


class NotInMemoryError(TypeError, ValueError):
    """A path or data source where only in-memory data is read: a ``TypeError``, and a
    ``ValueError`` as scikit-learn's validation made a path string before."""


def refuse_sources(
    X: Any, name: str, action: str = "scores and predicts", parameter: str = "X"
) -> None:
    """A :class:`NotInMemoryError` naming ``parameter`` and how to load it, when ``X`` is a
    path, a data source, a ``DataLoader`` or a callable (:func:`~mixtorch.sources.is_source`);
    ``name`` is the estimator's class name and ``action`` what it does with ``X``.

    Only ``fit`` reads sources in chunks (and not every fit); elsewhere NumPy's conversion
    would fail with "could not convert string to float" or a message about ``float()``.
    """
    if not is_source(X):
        return
    what = f"a path ({X!r})" if isinstance(X, (str, os.PathLike)) else type(X).__name__
    raise NotInMemoryError(
        f"{parameter} must be an array or a tensor: {name} {action} in-memory arrays and "
        f"tensors, not data sources or paths (got {what}); it needs in-memory data. Load the data "
        f"first, e.g. {parameter} = np.load(path) for a .npy file, or "
        f"{parameter} = torch.cat(list(mixtorch.sources.as_source(path)())) for other files, "
        "directories and sources."
    )


@dataclass(frozen=True)
class SourceInput:
    """A fit's data as a chunk source, with the computation dtype and device.

    ``tensor`` is the in-memory shard when the input was an array or tensor.
    """

    source: ChunkSource
    kind: OutputKind
    dtype: torch.dtype
    device: torch.device
    n_features: int
    tensor: Tensor | None = None


def uses_source(X: Any, collective: bool, refusal: str = "") -> bool:
    """Whether ``fit(X)`` goes through the chunk-source path: ``X`` is a source, or a
    process group is initialised and the algorithm works across ranks (``collective``).

    Under a process group an in-memory fit that does not work across ranks raises
    ``ValueError(refusal)`` (every rank decides alike, before any collective) instead of
    silently fitting the rank's own shard.
    """
    if is_source(X):
        return True
    if is_distributed() and not collective:
        refuse_across_ranks(refusal)
    return is_distributed()


def refuse_across_ranks(message: str) -> None:
    """Raise ``ValueError(message)`` when a process group is initialised (an estimator
    that cannot fit the union of the ranks' shards says so, the same on every rank)."""
    if is_distributed():
        raise ValueError(
            f"{message} A torch.distributed process group is initialised, and this fit "
            "would only see this rank's shard; fit outside the process group (or gather "
            "the data) instead."
        )


def prepare_source(
    estimator: Any,
    X: Any,
    *,
    dtype: Any,
    device: Any,
    warm_dtype: torch.dtype | None,
    configuration: dict[str, Any],
    missing_values: float | None = None,
) -> SourceInput:
    """``X`` as a :class:`SourceInput`; sets ``estimator.n_features_in_`` as ``fit`` does.

    Parameters
    ----------
    estimator : estimator
        Receives ``n_features_in_`` (checked against it for a warm start).
    X : array-like, Tensor or chunk source
    dtype, device : requested computation dtype and device (None: from the data)
    warm_dtype : torch.dtype, optional
        The fitted model's dtype for a warm start.
    configuration : dict
        Settings every rank must share (``n_components``, ``covariance_type``, ...).
    missing_values : float or None
        ``np.nan`` to accept NaN as missing entries (chunks and file cells), else None.
    """
    if is_source(X):
        source = as_source(X).with_missing_values(missing_values)
        first = source.first_chunk()
        computation = warm_dtype or resolve_dtype(dtype, first)
        n_features = int(first.shape[1])
        if warm_dtype is not None and n_features != estimator.n_features_in_:
            raise ValueError(
                f"X has {n_features} features, but {type(estimator).__name__} is expecting "
                f"{estimator.n_features_in_} features as input."
            )
        estimator.n_features_in_ = n_features
        if hasattr(estimator, "feature_names_in_"):
            del estimator.feature_names_in_
        target = torch.device(device) if device is not None else first.device
        prepared = SourceInput(source, OutputKind(False), computation, target, n_features)
    else:
        computation = warm_dtype or resolve_dtype(dtype, X)
        tensor, kind = to_tensor(
            estimator,
            X,
            reset=warm_dtype is None,
            dtype=computation,
            device=device,
            ensure_min_samples=0 if is_distributed() else 1,
            allow_nan=missing_values is not None,
        )
        whole = from_callable(lambda: iter((tensor,)), n_features=tensor.shape[1])
        whole = whole.with_missing_values(missing_values)
        prepared = SourceInput(
            whole, kind, computation, tensor.device, int(tensor.shape[1]), tensor
        )
    check_same_configuration(
        {"n_features": prepared.n_features, "dtype": str(computation), **configuration}
    )
    return prepared

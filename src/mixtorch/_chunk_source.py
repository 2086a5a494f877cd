"""The :class:`ChunkSource` type, the chunk checks every source applies, and the sources
built from objects in memory (a callable, a tensor or array, a ``DataLoader``).
Public through :mod:`mixtorch.sources`."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import numpy as np
import torch
from torch import Tensor

# The byte budget, re-exported: imported from here.
from ._chunk_budget import DEFAULT_SOURCE_CHUNK_ROWS as DEFAULT_SOURCE_CHUNK_ROWS
from ._chunk_budget import MAX_SOURCE_CHUNK_ROWS as MAX_SOURCE_CHUNK_ROWS
from ._chunk_budget import MIN_SOURCE_CHUNK_ROWS as MIN_SOURCE_CHUNK_ROWS
from ._chunk_budget import SOURCE_CHUNK_BYTES as SOURCE_CHUNK_BYTES
from ._chunk_budget import check_chunk_size as check_chunk_size
from ._chunk_budget import source_chunk_rows as source_chunk_rows
from ._chunk_budget import source_rows as source_rows
from ._validation import real_values, refuse_meta


class ChunkSource:
    """A re-iterable data set read in row chunks.

    Every call returns a fresh iterator over validated chunks (2-D, numeric, finite, a
    constant number of columns), and every complete pass must see the same rows. Pass one
    as ``X`` to ``fit`` of :class:`~mixtorch.Gaussian`, :class:`~mixtorch.GaussianMixture`
    or :class:`~mixtorch.BayesianGaussianMixture`.

    Parameters
    ----------
    factory : callable
        Returns a fresh iterable of chunks (arrays or tensors of shape (n_i, n_features))
        every time it is called.
    n_features : int, default=None
        Columns per row; None learns it from the first chunk.
    n_samples : int, default=None
        Total rows, when known without a pass over the data; a pass with a different
        count is then an error.
    name : str, default='data source'
        Used in error messages.
    missing_values : float or None, default=None
        ``np.nan`` to let chunks hold NaN (missing entries, for
        ``GaussianMixture(missing_values=np.nan)``); ``None`` keeps NaN an error.
        Infinities are always an error. See :meth:`with_missing_values`.

    Raises
    ------
    TypeError
        If ``factory`` is not callable.

    See Also
    --------
    as_source : Builds one from paths, loaders, callables or arrays.
    torch.utils.data.IterableDataset : torch's notion of a streamed data set.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.sources import from_tensor
    >>> source = from_tensor(np.arange(10.0).reshape(5, 2), chunk_size=2)
    >>> [tuple(chunk.shape) for chunk in source()]
    [(2, 2), (2, 2), (1, 2)]
    """

    def __init__(
        self,
        factory: Callable[[], Iterable[Any]],
        *,
        n_features: int | None = None,
        n_samples: int | None = None,
        name: str = "data source",
        missing_values: float | None = None,
    ) -> None:
        if not callable(factory):
            raise TypeError(f"factory must be callable, got {type(factory).__name__}.")
        self.factory = factory
        self.n_features = n_features
        self.n_samples = n_samples
        self.name = name
        self.missing_values = check_missing_values(missing_values)
        self._last: Any = None  # the previous pass's iterable, to spot one-shot iterators
        self._pass_rows: int | None = None

    def __call__(self) -> Iterator[Tensor]:
        """A fresh iterator over validated chunks, each a tensor of shape (n_i, n_features).

        Yields
        ------
        Tensor of shape (n_i, n_features)
            The next chunk, checked: 2-D, numeric, finite, as many columns as the first.

        Raises
        ------
        ValueError
            Naming the chunk, for an invalid chunk; at the end of a pass whose row count
            differs from earlier passes (or ``n_samples``); when the factory hands back the
            iterator of the previous pass.

        See Also
        --------
        ChunkSource.first_chunk, as_source
        """
        iterable = self.factory()
        try:  # iter() also takes what iterates by __getitem__ (a map-style Dataset)
            iter(iterable)
        except TypeError:
            raise TypeError(
                f"The factory of {self.name} must return an iterable of chunks (a list, a "
                f"generator, ...), got {type(iterable).__name__}."
            ) from None
        if iterable is self._last and iter(iterable) is iterable:
            raise ValueError(
                f"The factory of {self.name} returned the same iterator as on the previous "
                "pass, and an iterator can be read only once: return a fresh iterable "
                "(e.g. a new generator) on every call."
            )
        self._last = iterable
        rows, index = 0, -1
        # Not enumerate(): its result tuple, reused from call to call, would keep the
        # previous chunk alive while the next one is read (two chunks in memory, not one).
        for chunk in iterable:
            index += 1
            where = f"chunk {index} of {self.name}"
            tensor = checked_chunk(chunk, where, allow_nan=self.missing_values is not None)
            if self.n_features is None:
                self.n_features = int(tensor.shape[1])
            elif tensor.shape[1] != self.n_features:
                raise ValueError(
                    f"chunk {index} of {self.name} has {tensor.shape[1]} columns, "
                    f"expected {self.n_features} as in the first chunk."
                )
            rows += int(tensor.shape[0])
            yield tensor
            del chunk, tensor  # freed when the consumer drops it, before the next read
        self._check_pass(rows)

    def _check_pass(self, rows: int) -> None:
        """Every complete pass sees the same rows (as many as ``n_samples`` if known)."""
        expected = self._pass_rows if self._pass_rows is not None else self.n_samples
        if expected is not None and rows != expected:
            raise ValueError(
                f"The {self.name} yielded {rows} rows on this pass but {expected} "
                f"{'on an earlier pass' if self._pass_rows is not None else 'were announced'}: "
                "every pass must see the same data (a DataLoader with drop_last=True, a "
                "sampler that resamples, or an exhausted iterator do not)."
            )
        self._pass_rows = rows

    def with_missing_values(self, missing_values: float | None) -> ChunkSource:
        """The same data with NaN accepted as missing entries (``np.nan``) or refused
        (``None``); file readers then also read empty and ``NA`` cells as missing.

        Parameters
        ----------
        missing_values : float or None
            ``np.nan`` or ``None``.

        Returns
        -------
        ChunkSource
            A new source; this one is unchanged.

        See Also
        --------
        mixtorch.GaussianMixture : With ``missing_values=np.nan`` it fits such sources.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch.sources import from_tensor
        >>> source = from_tensor(np.array([[1.0, np.nan], [2.0, 3.0]]))
        >>> next(source.with_missing_values(np.nan)()).isnan().sum().item()
        1
        """
        factory = self.factory
        reread = getattr(factory, "with_missing_values", None)
        if callable(reread):  # a file reader: it must parse missing cells itself
            factory = reread(missing_values)
        return ChunkSource(
            factory,
            n_features=self.n_features,
            n_samples=self.n_samples,
            name=self.name,
            missing_values=missing_values,
        )

    def first_chunk(self) -> Tensor:
        """The first chunk (sets ``n_features`` when it was unknown).

        Returns
        -------
        Tensor of shape (n_0, n_features)
            The first validated chunk.

        Raises
        ------
        ValueError
            If the source yields no chunks.

        See Also
        --------
        ChunkSource.__call__
        """
        for chunk in self():
            return chunk
        raise ValueError(f"The {self.name} yielded no chunks.")

    def __repr__(self) -> str:
        return (
            f"ChunkSource({self.name!r}, n_features={self.n_features}, n_samples={self.n_samples})"
        )


def check_missing_values(missing_values: Any) -> float | None:
    """``missing_values`` checked: ``None`` or NaN (the only marker of missing entries)."""
    if missing_values is None:
        return None
    if isinstance(missing_values, (float, np.floating)) and np.isnan(missing_values):
        return float("nan")
    raise ValueError(
        f"missing_values must be None or np.nan, got {missing_values!r}; mark missing "
        "entries with NaN."
    )


def checked_chunk(chunk: Any, where: str, allow_nan: bool = False) -> Tensor:
    """``chunk`` as a 2-D float32/float64 tensor; ValueError/TypeError naming ``where``.

    NaN is an error unless ``allow_nan``; infinity always is.
    """
    if _is_feature_batch(chunk):
        chunk = chunk[0]  # a (features, target, ...) batch from a DataLoader
    if isinstance(chunk, Tensor):
        tensor = chunk.detach()
    else:
        try:
            array = np.asarray(chunk)
        except (TypeError, ValueError) as error:
            raise TypeError(f"{where} is not array-like: {error}") from error
        if array.dtype.kind not in "fiu":
            raise ValueError(f"{where} must be numeric, got dtype {array.dtype}.")
        tensor = torch.from_numpy(np.ascontiguousarray(native_order(array)))
    if tensor.is_complex() or tensor.dtype == torch.bool:
        raise ValueError(f"{where} must be real numeric, got dtype {tensor.dtype}.")
    if tensor.ndim != 2:
        raise ValueError(f"{where} must be 2-D (rows, features), got shape {tuple(tensor.shape)}.")
    if tensor.shape[1] < 1:
        raise ValueError(f"{where} has no columns.")
    if not tensor.is_floating_point():
        tensor = tensor.to(torch.float64)
    elif tensor.dtype not in (torch.float32, torch.float64):
        tensor = tensor.float()
    if bool(torch.isinf(tensor).any()):
        raise ValueError(f"{where} contains infinity.")
    if not allow_nan and bool(torch.isnan(tensor).any()):
        raise ValueError(
            f"{where} contains NaN; GaussianMixture(missing_values=np.nan) fits rows with "
            "missing entries, other estimators need them filled or removed."
        )
    return tensor


def native_order(array: np.ndarray) -> np.ndarray:
    """``array`` in the machine's byte order (a big-endian ``.npy`` file, ``>f8``, is read
    as such; torch takes native byte order only)."""
    return array if array.dtype.isnative else array.astype(array.dtype.newbyteorder("="))


def _is_feature_batch(chunk: Any) -> bool:
    """A tuple/list whose first item is a 2-D array (not a plain list of rows)."""
    if not isinstance(chunk, (tuple, list)) or not chunk:
        return False
    first = chunk[0]
    return isinstance(first, (Tensor, np.ndarray)) and first.ndim == 2


# -- constructors ----------------------------------------------------------------------
def from_callable(
    factory: Callable[[], Iterable[Any]],
    *,
    n_features: int | None = None,
    n_samples: int | None = None,
) -> ChunkSource:
    """A source from a callable returning a fresh iterable of chunks on every call.

    Parameters
    ----------
    factory : callable
        Called with no arguments at the start of every pass; returns an iterable of
        arrays or tensors of shape (n_i, n_features) (e.g. a new generator each time).
    n_features : int, default=None
        Columns per row; None learns it from the first chunk.
    n_samples : int, default=None
        Total rows, if known; None learns it from the first pass.

    Returns
    -------
    ChunkSource
        The source.

    See Also
    --------
    ChunkSource, from_dataloader

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixture
    >>> from mixtorch.sources import from_callable
    >>> rng = np.random.default_rng(0)
    >>> chunks = [rng.normal(size=(500, 2)) for _ in range(4)]
    >>> source = from_callable(lambda: iter(chunks))
    >>> model = GaussianMixture(2, random_state=0).fit(source)
    >>> model.means_.shape
    (2, 2)
    """
    name = getattr(factory, "__name__", type(factory).__name__)
    return ChunkSource(factory, n_features=n_features, n_samples=n_samples, name=name)


def from_tensor(X: Any, chunk_size: int | None = None) -> ChunkSource:
    """An in-memory array or tensor of shape (n_samples, n_features) as a source.

    Parameters
    ----------
    X : array-like or Tensor of shape (n_samples, n_features)
        The data; a tensor's chunks are views on its device.
    chunk_size : int, default=None
        Rows per chunk; None picks them by :func:`source_chunk_rows` from the width and
        dtype of ``X`` (65536 rows up to 128 bytes a row, about 8 MiB of rows beyond).

    Returns
    -------
    ChunkSource
        With ``n_samples`` and ``n_features`` known.

    Raises
    ------
    ValueError
        If ``X`` is not 2-D, does not hold numbers, is a tensor on the 'meta' device, or
        ``chunk_size`` is neither a positive integer nor None.

    See Also
    --------
    as_source

    Examples
    --------
    >>> import torch
    >>> from mixtorch.sources import from_tensor
    >>> source = from_tensor(torch.zeros(7, 3), chunk_size=3)
    >>> [len(chunk) for chunk in source()]
    [3, 3, 1]
    """
    refuse_meta(X, "X")
    if isinstance(X, Tensor):
        data = X
    else:
        array = np.asarray(X)
        if array.dtype.kind not in "iuf":  # float32 stays float32; objects of numbers, bools
            array = real_values(array, "X")  # convert; complex, strings raise naming X
        data = torch.as_tensor(native_order(array))
    if data.ndim != 2:
        raise ValueError(f"X must be 2-D, got shape {tuple(data.shape)}.")
    rows = source_rows(check_chunk_size(chunk_size), max(data.shape[1], 1), data.dtype)

    def chunks() -> Iterator[Tensor]:
        for start in range(0, data.shape[0], rows):
            yield data[start : start + rows]

    return ChunkSource(chunks, n_features=data.shape[1], n_samples=data.shape[0], name="tensor")


def from_dataloader(loader: Any) -> ChunkSource:
    """A source from a ``torch.utils.data.DataLoader`` (or any re-iterable of batches).

    Batches may be tensors, arrays, or tuples whose first element holds the features.
    The loader is iterated afresh on every pass (shuffling, if any, is the loader's; it
    changes only the order).

    Parameters
    ----------
    loader : torch.utils.data.DataLoader or re-iterable
        Yields batches of shape (batch_size, n_features) (or tuples of them).

    Returns
    -------
    ChunkSource
        The source; one chunk per batch.

    Raises
    ------
    ValueError
        For a loader that would leave rows out (``drop_last=True`` with a last batch
        that is not full): each pass would fit different rows.

    See Also
    --------
    from_callable, as_source

    Examples
    --------
    >>> import torch
    >>> import numpy as np
    >>> from torch.utils.data import DataLoader, TensorDataset
    >>> from mixtorch import Gaussian
    >>> from mixtorch.sources import from_dataloader
    >>> X = torch.randn(1000, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    >>> loader = DataLoader(TensorDataset(X), batch_size=256)
    >>> model = Gaussian().fit(from_dataloader(loader))
    >>> np.allclose(model.mean_, X.mean(0).numpy())
    True
    """
    try:
        n_samples: int | None = len(loader.sampler)
    except (AttributeError, TypeError):  # iterable-style datasets have no length
        n_samples = None
    batch_size = getattr(loader, "batch_size", None)
    if getattr(loader, "drop_last", False) and n_samples and batch_size:
        if n_samples % batch_size:
            raise ValueError(
                f"This DataLoader drops the last {n_samples % batch_size} of its "
                f"{n_samples} rows on every pass (drop_last=True with batch_size="
                f"{batch_size}), different ones when it shuffles; use drop_last=False."
            )
    return ChunkSource(lambda: iter(loader), n_samples=n_samples, name="DataLoader")

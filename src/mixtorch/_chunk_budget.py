"""How many rows a source's chunk holds when no ``chunk_size`` is given (a byte budget),
and the ``chunk_size`` check every source applies. Public through :mod:`mixtorch.sources`;
:mod:`mixtorch._chunk_source` re-exports it too."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._validation import IntegerKindError, integer

# How long a source's chunks are when no ``chunk_size`` is given: a byte budget, so that a
# chunk costs about the same memory whatever the width of the rows. A source chunk is the
# unit of reading (a memory map, a Parquet row batch, a block of CSV lines); the
# estimators split it again into their own, cache-sized chunks (mixtorch._chunks: 2 MiB of
# float32 intermediates), so a source chunk should hold several of those, and be long
# enough that the per-chunk costs (a map, the finiteness checks, a Python iteration) stay
# small next to the copy of its bytes.

#: Bytes a source chunk aims for when no ``chunk_size`` is given: 8 MiB, what the former
#: fixed default of 65536 rows held at 16 float64 columns, and four of the estimators'
#: 2 MiB chunk budgets.
SOURCE_CHUNK_BYTES = 2**23
#: The fewest rows of a default chunk, whatever the width: the estimators' own floor
#: (below it per-chunk overhead dominates, and they would hold 256 rows anyway). Rows wider
#: than 32 KiB (over 4096 float64 or 8192 float32 columns) get chunks over the budget.
MIN_SOURCE_CHUNK_ROWS = 256
#: The most rows of a default chunk: the former fixed default, so that data of at most 128
#: bytes a row (16 float64 or 32 float32 columns) is read in the same chunks as before;
#: longer chunks of very narrow rows would save only overhead that is already small.
MAX_SOURCE_CHUNK_ROWS = 65_536
#: Deprecated alias of :data:`MAX_SOURCE_CHUNK_ROWS`, kept so that code importing it still
#: works: the default chunk is no longer a fixed number of rows (see
#: :func:`source_chunk_rows`); narrow data still gets these 65536 rows.
DEFAULT_SOURCE_CHUNK_ROWS = MAX_SOURCE_CHUNK_ROWS


def check_chunk_size(chunk_size: Any) -> int | None:
    """``chunk_size`` checked: a positive integer, or None (pick by the byte budget)."""
    if chunk_size is None:
        return None
    integral = not isinstance(chunk_size, bool) and isinstance(chunk_size, (int, np.integer))
    if not integral or chunk_size < 1:
        # a non-integer is a TypeError (and a ValueError, as it was), a count below 1 a
        # ValueError
        error = ValueError if integral else IntegerKindError
        raise error(
            f"chunk_size must be a positive integer, got {chunk_size!r}; None picks "
            f"{MAX_SOURCE_CHUNK_ROWS} rows, fewer for rows over "
            f"{SOURCE_CHUNK_BYTES // MAX_SOURCE_CHUNK_ROWS} bytes "
            f"(about {SOURCE_CHUNK_BYTES // 2**20} MiB a chunk)."
        )
    return int(chunk_size)


def source_rows(chunk_size: int | None, n_features: int, dtype: Any) -> int:
    """Rows per chunk of a source: a checked ``chunk_size``, or
    :func:`source_chunk_rows` for None (as ``as_source`` and the estimators read None:
    pick it for me)."""
    if chunk_size is not None:
        return chunk_size
    return source_chunk_rows(n_features, dtype)


def source_chunk_rows(n_features: int, dtype: Any = np.float64) -> int:
    """Rows per chunk a source reads when no ``chunk_size`` is given.

    ``SOURCE_CHUNK_BYTES // (n_features * itemsize)``, clamped to
    [:data:`MIN_SOURCE_CHUNK_ROWS`, :data:`MAX_SOURCE_CHUNK_ROWS`], where ``itemsize`` is
    that of the dtype the chunks are delivered in: float32 stays float32 (4 bytes), float64
    (8 bytes) stays float64, half precision becomes float32 (4) and integers float64 (8).
    The rows depend on the width and the dtype only, so the same data is always read in
    the same chunks.

    Parameters
    ----------
    n_features : int
        Columns per row.
    dtype : numpy or torch dtype, default=numpy.float64
        The dtype of the data as stored (a ``.npy`` file's, a tensor's); CSV and Parquet
        are read as float64.

    Returns
    -------
    int
        Rows per chunk: 65536 for up to 16 float64 or 32 float32 columns, about 8 MiB
        of rows for wider data, never fewer than 256 rows.

    Raises
    ------
    TypeError
        If ``n_features`` is not an integer (a bool, float, string or None), as the
        other integer parameters are refused.
    ValueError
        If ``n_features`` is an integer below 1.

    See Also
    --------
    from_npy, from_tensor, from_directory : Use it for ``chunk_size=None``.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch.sources import source_chunk_rows
    >>> source_chunk_rows(16, np.float64), source_chunk_rows(16, np.float32)
    (65536, 65536)
    >>> source_chunk_rows(1000, np.float64), source_chunk_rows(1000, np.float32)
    (1048, 2097)
    >>> source_chunk_rows(100_000, np.float64)
    256
    """
    count = integer(n_features, "n_features")
    if count < 1:
        raise ValueError(f"n_features must be a positive integer, got {count}.")
    row_bytes = count * delivered_itemsize(dtype)
    rows = SOURCE_CHUNK_BYTES // row_bytes
    return max(MIN_SOURCE_CHUNK_ROWS, min(MAX_SOURCE_CHUNK_ROWS, rows))


def delivered_itemsize(dtype: Any) -> int:
    """Bytes per value of a chunk as :func:`checked_chunk` delivers data of ``dtype``:
    4 for float32 and narrower floats (made float32), 8 for float64, integers and the
    rest (made float64, or refused)."""
    if isinstance(dtype, torch.dtype):
        floating, size = dtype.is_floating_point, dtype.itemsize
    else:
        numpy_dtype = np.dtype(dtype)
        floating, size = numpy_dtype.kind == "f", numpy_dtype.itemsize
    return 4 if floating and size <= 4 else 8

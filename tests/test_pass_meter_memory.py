"""A pass over a source holds one source chunk at a time (PassMeter)."""

from __future__ import annotations

import weakref

import torch

from mixtorch.fit.streaming import PassMeter


def _checked_source(n_chunks: int, rows: int, alive: list[bool]):
    """A source whose generator records, before it makes each chunk, whether the one it
    handed out before is still referenced anywhere."""

    def source():
        previous = None
        for index in range(n_chunks):
            if previous is not None:
                alive.append(previous() is not None)
            chunk = torch.full((rows, 3), float(index), dtype=torch.float64)
            previous = weakref.ref(chunk)
            yield chunk
            del chunk

    return source


def test_previous_chunk_released_before_the_next_is_read() -> None:
    alive: list[bool] = []
    meter = PassMeter(_checked_source(4, 10, alive), 4, torch.device("cpu"), torch.float64)
    totals = []
    pieces = iter(meter())
    while (piece := next(pieces, None)) is not None:
        totals.append(float(piece.sum()))
        del piece
    assert alive == [False, False, False]
    # every row went through, in order: chunk i has 10 rows of value i in 3 columns
    assert sum(totals) == sum(30.0 * index for index in range(4))
    assert meter.last_rows == 40


def test_dtype_conversion_keeps_one_chunk() -> None:
    alive: list[bool] = []
    meter = PassMeter(_checked_source(3, 8, alive), 8, torch.device("cpu"), torch.float32)
    dtypes = set()
    pieces = iter(meter())
    while (piece := next(pieces, None)) is not None:
        dtypes.add(piece.dtype)
        del piece
    assert alive == [False, False]
    assert dtypes == {torch.float32}
    assert meter.last_rows == 24

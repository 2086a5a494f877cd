"""Where the NaN of a chunk are, grouped by pattern, kept across EM iterations.

The missing-value E-step (:mod:`mixtorch.fit.missing`) handles the rows of many patterns
of missing entries at once. What it needs of a chunk besides the numbers depends only on
where the chunk's NaN are: which rows are complete, the observed mask of the others and,
for full and tied covariances, those rows grouped by pattern into segments of a
power-of-two number of rows (:func:`_segments`). That is a chunk's *layout*
(:class:`_ChunkLayout`); :class:`_LayoutCache` keeps the layouts of live chunk tensors, so
in-memory EM groups once per fit and not once per iteration.
"""

from __future__ import annotations

import threading
import weakref
from collections import deque
from dataclasses import dataclass

import torch
from torch import Tensor

__all__: list[str] = []

#: Rows of one pattern in one segment, at most (a longer pattern is split).
_SEGMENT_ROWS = 1024

#: Bytes of pattern layouts kept in all (see :class:`_LayoutCache`): 128 MiB is the
#: layout of about 3 million rows of 16 features that all miss an entry.
_LAYOUT_CACHE_BYTES = 1 << 27


@dataclass
class _Segments:
    """Rows of several patterns, ``R`` of each (a power of two): ``observed`` (S, D) the
    pattern of each segment, ``rows`` (S, R) indices into a chunk's incomplete rows, and
    ``valid`` (S, R) marking the real ones where a pattern has fewer than ``R`` rows (its
    last row fills the rest), None when every row is real."""

    observed: Tensor
    rows: Tensor
    valid: Tensor | None

    def __getitem__(self, index: slice) -> _Segments:
        valid = None if self.valid is None else self.valid[index]
        return _Segments(self.observed[index], self.rows[index], valid)

    @property
    def nbytes(self) -> int:
        tensors = [self.observed, self.rows] + ([] if self.valid is None else [self.valid])
        return sum(tensor.nbytes for tensor in tensors)


def _segments(observed: Tensor) -> list[_Segments]:
    """The rows of ``observed`` (n, D), a boolean mask of observed entries, grouped by
    pattern: one :class:`_Segments` per segment length, the rows of a pattern in order."""
    unique, inverse, counts = torch.unique(observed, dim=0, return_inverse=True, return_counts=True)
    order = torch.argsort(inverse, stable=True)  # rows of pattern 0, then 1, ...
    starts = torch.cumsum(counts, 0) - counts
    pieces = torch.div(counts + _SEGMENT_ROWS - 1, _SEGMENT_ROWS, rounding_mode="floor")
    pattern = torch.repeat_interleave(torch.arange(len(counts), device=counts.device), pieces)
    piece = (
        torch.arange(len(pattern), device=counts.device)
        - (torch.cumsum(pieces, 0) - pieces)[pattern]
    )
    first = starts[pattern] + piece * _SEGMENT_ROWS
    size = torch.clamp(counts[pattern] - piece * _SEGMENT_ROWS, max=_SEGMENT_ROWS)
    # The next power of two >= size: 2**e with 2**(e-1) <= size - 1 < 2**e (1 for size 1).
    width = torch.pow(2, torch.frexp((size - 1).float()).exponent)
    lengths, tallies = (values.tolist() for values in torch.unique(width, return_counts=True))
    carried = 0
    for shorter, longer, count in zip(lengths[:-1], lengths[1:], tallies[:-1], strict=True):
        # Each group costs a few dozen operations: one that pads few rows is merged on.
        carried += count
        if carried * (longer - shorter) <= _SEGMENT_ROWS:
            width[width == shorter] = longer
        else:
            carried = 0
    groups = []
    for length in torch.unique(width).tolist():
        chosen = torch.nonzero(width == length).flatten()
        columns = torch.arange(length, device=counts.device)
        rank = torch.minimum(columns[None, :], size[chosen, None] - 1)
        valid = columns[None, :] < size[chosen, None]
        padded = None if bool(valid.all()) else valid
        groups.append(_Segments(unique[pattern[chosen]], order[first[chosen, None] + rank], padded))
    return groups


@dataclass(eq=False)
class _ChunkLayout:
    """Where a chunk's NaN are (what does not change between EM iterations): ``missing``
    (n, D) its NaN mask, ``complete`` and ``incomplete`` the indices of rows without and
    with a missing entry, ``observed`` (n_i, D) the observed entries of the latter.

    ``grouping`` is the grouping by pattern of the rows of the buffer this chunk closed
    in the last pass, with weak references to the layouts of the chunks before it in that
    buffer (the same layouts, each checked against its chunk, make the same buffer).
    ``chunk`` refers to the chunk while a :class:`_LayoutCache` keeps the layout, and
    ``charged`` is the bytes it counts for it.
    """

    missing: Tensor
    complete: Tensor
    incomplete: Tensor
    observed: Tensor
    grouping: tuple[tuple[weakref.ref[_ChunkLayout], ...], list[_Segments]] | None = None
    chunk: weakref.ref[Tensor] | None = None
    charged: int = 0

    @classmethod
    def of(cls, missing: Tensor) -> _ChunkLayout:
        holes = missing.any(1)
        incomplete = torch.nonzero(holes).flatten()
        complete = torch.nonzero(~holes).flatten()
        return cls(missing, complete, incomplete, ~missing[incomplete])

    @property
    def nbytes(self) -> int:
        """Bytes of its tensors, without the grouping."""
        return sum(t.nbytes for t in (self.missing, self.complete, self.incomplete, self.observed))

    def kept_grouping(self, before: tuple[_ChunkLayout, ...]) -> list[_Segments] | None:
        """The grouping kept for a buffer of the ``before`` layouts and this one."""
        grouping = self.grouping  # read once: another thread may replace it meanwhile
        if grouping is None or len(grouping[0]) != len(before):
            return None
        references, segments = grouping
        same = all(ref() is layout for ref, layout in zip(references, before, strict=True))
        return segments if same else None


class _LayoutCache:
    """The layouts of live chunk tensors, so that in-memory EM groups rows by pattern once
    per fit instead of once per iteration.

    A layout is found by the identity of its chunk tensor and used only if that chunk's
    NaN mask is still the one it was made from (compared elementwise: one pass over a
    boolean tensor). The grouping depends on nothing else, so a chunk that changed in
    place (a source refilling one buffer) or a new tensor that took a dead one's ``id``
    is grouped anew, never given a stale layout. A layout is dropped when its chunk is
    garbage-collected (a weak reference), so streamed chunks leave nothing behind.

    Memory: a layout takes ``D + 8`` bytes per row of its chunk and ``D`` more per row
    with a missing entry; a grouping (full and tied covariances) about 16 bytes more per
    such row (its index, padding included) and ``D`` per segment. What would take the
    layouts kept past ``max_bytes`` is not kept; those chunks are grouped again in every
    pass. The cache holds no reference to a chunk, nor to a layout of another chunk.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: dict[int, tuple[weakref.ref[Tensor], _ChunkLayout]] = {}
        self._held = 0
        self._freed: deque[int] = deque()  # bytes of layouts dropped by their chunk
        self._lock = threading.Lock()

    def lookup(self, chunk: Tensor, missing: Tensor) -> _ChunkLayout | None:
        """The layout of ``chunk`` if one is kept and ``missing`` is still its NaN mask."""
        with self._lock:
            entry = self._entries.get(id(chunk))
        if entry is None or entry[0]() is not chunk:
            return None
        kept = entry[1].missing
        if kept.shape != missing.shape or kept.device != missing.device:
            return None
        return entry[1] if torch.equal(kept, missing) else None

    def store(self, chunk: Tensor, layout: _ChunkLayout) -> None:
        """Keep ``layout`` while ``chunk`` lives, if it fits in ``max_bytes``."""
        key, entries, freed = id(chunk), self._entries, self._freed

        def forget(reference: weakref.ref[Tensor]) -> None:
            # Runs when the chunk is collected, in any thread (even one holding the lock):
            # atomic dict and deque operations only.
            entry = entries.get(key)
            if entry is not None and entry[0] is reference:
                entries.pop(key, None)
                freed.append(entry[1].charged)

        with self._lock:
            previous = entries.pop(key, None)
            if previous is not None:
                self._held -= previous[1].charged
                previous[1].chunk, previous[1].charged = None, 0
            if self._current() + layout.nbytes > self.max_bytes:
                return
            layout.chunk = weakref.ref(chunk, forget)
            layout.charged = layout.nbytes
            entries[key] = (layout.chunk, layout)
            self._held += layout.charged

    def keep_grouping(
        self, last: _ChunkLayout, before: tuple[_ChunkLayout, ...], segments: list[_Segments]
    ) -> None:
        """Let ``last`` (if kept) hold ``segments``, the grouping of the buffer that the
        ``before`` layouts and ``last`` made, if it fits in ``max_bytes``."""
        chunk = None if last.chunk is None else last.chunk()
        if chunk is None:  # not kept, or its chunk is gone
            return
        with self._lock:
            if last.chunk is None:  # dropped meanwhile: its chunk was stored again
                return
            old = last.charged - last.nbytes
            added = sum(part.nbytes for part in segments)
            last.grouping = None
            if self._current() - old + added <= self.max_bytes:
                last.grouping = (tuple(weakref.ref(layout) for layout in before), segments)
            else:
                added = 0
            last.charged += added - old
            self._held += added - old

    @property
    def nbytes(self) -> int:
        """Bytes of the layouts kept now."""
        with self._lock:
            return self._current()

    def _current(self) -> int:
        while self._freed:
            self._held -= self._freed.popleft()
        return self._held

    def __len__(self) -> int:
        return len(self._entries)


#: The layouts of every missing-value E-step in this process.
_LAYOUTS = _LayoutCache(_LAYOUT_CACHE_BYTES)


def _layout(chunk: Tensor, missing: Tensor, layouts: _LayoutCache | None) -> _ChunkLayout:
    """The layout of ``chunk`` (its NaN mask ``missing``), kept in ``layouts`` if given."""
    layout = None if layouts is None else layouts.lookup(chunk, missing)
    if layout is None:
        layout = _ChunkLayout.of(missing)
        if layouts is not None:
            layouts.store(chunk, layout)
    return layout

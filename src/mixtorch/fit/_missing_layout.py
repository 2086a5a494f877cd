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

import contextlib
import os
import threading
import weakref
from collections import OrderedDict, deque
from collections.abc import Iterator
from dataclasses import dataclass

import torch
from torch import Tensor

from .._chunks import DEFAULT_ELEMENT_BUDGET

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

    def parts(self, n_components: int) -> list[_Segments]:
        """These segments in slices whose largest blocks, ``n_components`` of (S, R, D)
        and of (S, D, D), fit the element budget of a chunk."""
        S, R = self.rows.shape
        D = self.observed.shape[1]
        step = max(1, DEFAULT_ELEMENT_BUDGET // (n_components * (R * D + D * D)))
        return [self[start : start + step] for start in range(0, S, step)]

    @property
    def nbytes(self) -> int:
        tensors = [self.observed, self.rows] + ([] if self.valid is None else [self.valid])
        return sum(tensor.nbytes for tensor in tensors)


def _segments(observed: Tensor) -> list[_Segments]:
    """The rows of ``observed`` (n, D), a boolean mask of observed entries, grouped by
    pattern: one :class:`_Segments` per segment length, the rows of a pattern in order."""
    unique, order, counts = _patterns(observed)
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


def _patterns(observed: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """The distinct rows of ``observed`` (n, D) (P, D), the row indices ordered by
    pattern (n,) (the rows of a pattern in order) and the rows of each pattern (P,).

    ``torch.unique(dim=0)`` compares rows one at a time on the CPU (0.7 s for 80k rows
    of 16 features); here each row is packed into 63-bit words that are sorted as
    numbers, the last word first, so the sort is stable and lexicographic."""
    n, D = observed.shape
    bits = torch.arange(63, device=observed.device)
    powers = torch.pow(torch.full_like(bits, 2), bits)
    words = [
        (observed[:, start : start + 63].long() * powers[: min(63, D - start)]).sum(1)
        for start in range(0, D, 63)
    ]
    order = torch.arange(n, device=observed.device)
    for word in reversed(words):
        order = order[torch.argsort(word[order], stable=True)]
    ranked = torch.stack([word[order] for word in words], 1)
    first = torch.ones(n, dtype=torch.bool, device=observed.device)
    first[1:] = (ranked[1:] != ranked[:-1]).any(1)
    heads = torch.nonzero(first).flatten()
    counts = torch.diff(heads, append=heads.new_tensor([n]))
    return observed[order[heads]], order, counts


@dataclass(eq=False)
class _ChunkLayout:
    """Where a chunk's NaN are (what does not change between EM iterations): ``missing``
    (n, D) its NaN mask, ``complete`` and ``incomplete`` the indices of rows without and
    with a missing entry, ``observed`` (n_i, D) the observed entries of the latter.

    ``grouping`` is the grouping by pattern of the rows of the buffer this chunk closed
    in the last pass, with weak references to the layouts of the chunks before it in that
    buffer (the same layouts, each checked against its chunk, make the same buffer).
    ``chunk`` refers to the chunk while a :class:`_LayoutCache` keeps the layout,
    ``charged`` is the bytes it counts for it, ``used`` when it was last used and
    ``since`` when its chunk was seen before that (None: not before).
    """

    missing: Tensor
    complete: Tensor
    incomplete: Tensor
    observed: Tensor
    grouping: tuple[tuple[weakref.ref[_ChunkLayout], ...], list[_Segments]] | None = None
    chunk: weakref.ref[Tensor] | None = None
    charged: int = 0
    used: int = 0
    since: int | None = None

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
    is grouped anew, never given a stale layout. A layout is dropped as soon as its chunk
    is garbage-collected (a weak reference), so streamed chunks leave nothing behind.

    Memory: a layout takes ``D + 8`` bytes per row of its chunk and ``D`` more per row
    with a missing entry; a grouping (full and tied covariances) about 16 bytes more per
    such row (its index, padding included) and ``D`` per segment. Past ``max_bytes`` the
    least recently used layouts are dropped to make room, with one exception that keeps
    a fit whose layouts do not all fit from dropping, in every pass, the very layouts it
    is about to use (each pass would then group everything anew): a chunk seen before
    displaces only layouts not used since it was last seen. Those of a finished fit
    whose chunks are still alive go; those its own pass uses are kept, and the chunks
    that found no room are grouped again in every pass. The cache holds no reference to
    a chunk, nor to a layout of another chunk.

    Threads share it under one lock (reset in a child process after ``os.fork``, with an
    empty cache: another thread may have held it, or been halfway through a change, when
    the process forked).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        #: The kept layouts, least recently used first.
        self._entries: OrderedDict[int, tuple[weakref.ref[Tensor], _ChunkLayout]]
        #: Live chunks seen without a kept layout, and when they were last seen.
        self._seen: dict[int, tuple[weakref.ref[Tensor], int]]
        #: Chunks collected since the lock was last held (see :meth:`_reference`).
        self._dead: deque[tuple[int, weakref.ref[Tensor]]]
        self._reset()
        _CACHES.add(self)

    def lookup(self, chunk: Tensor, missing: Tensor) -> _ChunkLayout | None:
        """The layout of ``chunk`` if one is kept and ``missing`` is still its NaN mask."""
        with self._locked():
            entry = self._entries.get(id(chunk))
        if entry is None or entry[0]() is not chunk or not _same(entry[1].missing, missing):
            return None
        with self._locked():
            if self._entries.get(id(chunk)) is entry:  # not dropped meanwhile
                self._use(id(chunk), entry[1], entry[1].used)
        return entry[1]

    def store(self, chunk: Tensor, layout: _ChunkLayout) -> _ChunkLayout:
        """Keep ``layout`` while ``chunk`` lives, if there is room; the layout to use:
        ``layout``, or the one another thread kept for the same chunk and NaN meanwhile
        (so that threads on one chunk share a layout and its grouping)."""
        key = id(chunk)
        with self._locked():
            previous = self._entries.get(key)
            if previous is not None and previous[0]() is chunk:
                if _same(previous[1].missing, layout.missing):
                    self._use(key, previous[1], previous[1].used)
                    return previous[1]
                since: int | None = previous[1].used  # refilled in place: seen before
            else:
                seen = self._seen.get(key)
                since = seen[1] if seen is not None and seen[0]() is chunk else None
            self._drop(key)
            self._seen.pop(key, None)
            self._clock += 1
            layout.used, layout.since = self._clock, since
            reference = self._reference(chunk)
            if not self._make_room(layout.nbytes, since, ()):
                self._seen[key] = (reference, self._clock)
                return layout
            layout.chunk, layout.charged = reference, layout.nbytes
            self._entries[key] = (reference, layout)
            self._held += layout.charged
        return layout

    def keep_grouping(
        self, last: _ChunkLayout, before: tuple[_ChunkLayout, ...], segments: list[_Segments]
    ) -> None:
        """Let ``last`` (if kept) hold ``segments``, the grouping of the buffer that the
        ``before`` layouts and ``last`` made, if there is room (as :meth:`store` makes
        it, never dropping the layouts of the buffer)."""
        chunk = None if last.chunk is None else last.chunk()
        if chunk is None:  # not kept, or its chunk is gone
            return
        with self._locked():
            if last.chunk is None:  # dropped meanwhile
                return
            old = last.charged - last.nbytes
            last.grouping, last.charged = None, last.charged - old
            self._held -= old
            added = sum(part.nbytes for part in segments)
            if self._make_room(added, last.since, (last, *before)):
                last.grouping = (tuple(weakref.ref(layout) for layout in before), segments)
                last.charged += added
                self._held += added

    @property
    def nbytes(self) -> int:
        """Bytes of the layouts kept now."""
        with self._locked():
            return self._held

    def __len__(self) -> int:
        with self._locked():
            return len(self._entries)

    def _use(self, key: int, layout: _ChunkLayout, since: int | None) -> None:
        self._clock += 1
        layout.used, layout.since = self._clock, since
        self._entries.move_to_end(key)

    def _make_room(self, size: int, since: int | None, keep: tuple[_ChunkLayout, ...]) -> bool:
        """Drop least recently used layouts until ``size`` more bytes fit; False, with
        nothing dropped past the first refusal, if they cannot: too big, or the oldest
        layout one of ``keep`` or (a chunk seen before at ``since``) used since then."""
        if size > self.max_bytes:
            return False
        while self._held + size > self.max_bytes and self._entries:
            key, (_, oldest) = next(iter(self._entries.items()))
            if any(oldest is layout for layout in keep):
                return False
            if since is not None and oldest.used >= since:
                return False
            self._drop(key)
        return self._held + size <= self.max_bytes

    def _drop(self, key: int) -> None:
        """Let go of the layout kept for ``key``, remembering its chunk as seen."""
        entry = self._entries.pop(key, None)
        if entry is None:
            return
        reference, layout = entry
        self._held -= layout.charged
        layout.chunk, layout.charged = None, 0
        self._seen[key] = (reference, layout.used)

    def _reference(self, chunk: Tensor) -> weakref.ref[Tensor]:
        """A weak reference to ``chunk`` that drops what is kept for it when it dies.

        The callback runs in whatever thread frees the chunk, possibly one that holds
        the lock, so it only queues the chunk and empties the queue if the lock is free;
        otherwise the holder empties it on leaving (:meth:`_locked`)."""
        key, cache = id(chunk), weakref.ref(self)

        def forget(reference: weakref.ref[Tensor]) -> None:
            alive = cache()
            if alive is not None:
                alive._dead.append((key, reference))
                alive._forget_if_free()

        return weakref.ref(chunk, forget)

    @contextlib.contextmanager
    def _locked(self) -> Iterator[None]:
        with self._lock:
            self._forget()
            yield
            self._forget()
        # A chunk that died after the last call, whose callback found the lock taken.
        self._forget_if_free()

    def _forget_if_free(self) -> None:
        while self._dead and self._lock.acquire(blocking=False):
            try:
                self._forget()
            finally:
                self._lock.release()

    def _forget(self) -> None:
        """Drop what is kept for chunks that died (the lock held)."""
        while self._dead:
            key, reference = self._dead.popleft()
            entry = self._entries.get(key)
            if entry is not None and entry[0] is reference:
                self._drop(key)
            seen = self._seen.get(key)
            if seen is not None and seen[0] is reference:
                del self._seen[key]

    def _reset(self) -> None:
        """Empty, with a new lock: at creation and in a child process after a fork."""
        for _, layout in getattr(self, "_entries", {}).values():
            layout.chunk, layout.charged = None, 0
        self._lock = threading.Lock()
        self._entries = OrderedDict()
        self._seen = {}
        self._dead = deque()
        self._held = 0
        self._clock = 0


def _same(kept: Tensor, missing: Tensor) -> bool:
    """Whether ``kept`` and ``missing`` are the same NaN mask."""
    if kept.shape != missing.shape or kept.device != missing.device:
        return False
    return torch.equal(kept, missing)


#: Every cache of this process, emptied in a child process after a fork.
_CACHES: weakref.WeakSet[_LayoutCache] = weakref.WeakSet()


def _reset_after_fork() -> None:
    for cache in list(_CACHES):
        cache._reset()


if hasattr(os, "register_at_fork"):  # not on Windows, which cannot fork
    os.register_at_fork(after_in_child=_reset_after_fork)

#: The layouts of every missing-value E-step in this process.
_LAYOUTS = _LayoutCache(_LAYOUT_CACHE_BYTES)


def _layout(chunk: Tensor, missing: Tensor, layouts: _LayoutCache | None) -> _ChunkLayout:
    """The layout of ``chunk`` (its NaN mask ``missing``), kept in ``layouts`` if given."""
    layout = None if layouts is None else layouts.lookup(chunk, missing)
    if layout is None:
        layout = _ChunkLayout.of(missing)
        if layouts is not None:
            layout = layouts.store(chunk, layout)
    return layout

"""The layout cache's eviction, its cleanup of dead chunks, and fork safety.

References: which chunks a least-recently-used cache with the admission rule of
:class:`~mixtorch.fit._missing_layout._LayoutCache` keeps (worked out by hand for each
sequence of visits), the cache's own byte count summed over the layouts it keeps, and
the statistics of an E-step that keeps no layouts.
"""

from __future__ import annotations

import gc
import os
import signal
import threading
import time

import numpy as np
import pytest
import torch

import mixtorch.fit._missing_layout as layout_module
import mixtorch.fit.missing as missing_module
from mixtorch import Mixture
from mixtorch.fit._missing_layout import _ChunkLayout, _LayoutCache, _segments
from mixtorch.fit.missing import _missing_pass, missing_statistics


def _mixture(d: int, seed: int) -> Mixture:
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(2, d, d))
    covariances = (a @ a.transpose(0, 2, 1) + 0.3 * np.eye(d)).tolist()
    means = rng.normal(scale=3.0, size=(2, d)).tolist()
    mixture = Mixture.from_parameters([0.4, 0.6], means, covariances, "full")
    return mixture.to(dtype=torch.float64)


def _holes(n: int, d: int, fraction: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=3.0, size=(n, d))
    X[rng.random(X.shape) < fraction] = np.nan
    return torch.as_tensor(X)


def _charged(cache: _LayoutCache) -> int:
    return sum(layout.charged for _, layout in cache._entries.values())


def _chunk_list(count: int, seed: int) -> list[torch.Tensor]:
    return [_holes(40, 4, 0.3, seed + index) for index in range(count)]


def _visit(cache: _LayoutCache, chunk: torch.Tensor) -> bool:
    """What the E-step does with a chunk: True if its layout was kept."""
    missing = torch.isnan(chunk)
    if cache.lookup(chunk, missing) is not None:
        return True
    cache.store(chunk, _ChunkLayout.of(missing))
    return False


def test_least_recently_used_layouts_make_room_for_a_later_fit():
    first, second = _chunk_list(4, 20), _chunk_list(3, 30)
    one = _ChunkLayout.of(torch.isnan(first[0])).nbytes
    cache = _LayoutCache(int(4.5 * one))
    assert [_visit(cache, chunk) for chunk in first] == [False] * 4
    assert [_visit(cache, chunk) for chunk in first] == [True] * 4
    # The first fit's chunks stay alive; the later fit still gets its layouts kept.
    assert [_visit(cache, chunk) for chunk in second] == [False] * 3
    assert [_visit(cache, chunk) for chunk in second] == [True] * 3
    kept = [cache.lookup(chunk, torch.isnan(chunk)) is not None for chunk in first]
    assert kept == [False, False, False, True]  # the most recently used one stays
    assert len(cache) == 4
    assert cache.nbytes == _charged(cache) <= cache.max_bytes


def test_a_fit_bigger_than_the_cache_keeps_what_fits_instead_of_thrashing():
    # Ten chunks, room for four: plain LRU would drop, in every pass, the layout the
    # next chunk needs, and keep none. A chunk seen before displaces only layouts not
    # used since, so the four kept after the first pass stay kept.
    chunks = _chunk_list(10, 40)
    one = _ChunkLayout.of(torch.isnan(chunks[0])).nbytes
    cache = _LayoutCache(int(4.5 * one))
    hits = [[_visit(cache, chunk) for chunk in chunks] for _ in range(4)]
    assert hits[0] == [False] * 10
    for later in hits[1:]:
        assert later == [False] * 6 + [True] * 4
    assert cache.nbytes == _charged(cache) <= cache.max_bytes
    assert len(cache._seen) == 6  # the others, remembered (no tensors) while they live
    del chunks
    gc.collect()
    assert not cache._entries and not cache._seen and cache._held == 0


def test_a_later_fit_keeps_its_groupings_when_an_earlier_one_filled_the_cache(monkeypatch):
    calls = []
    original = missing_module._segments

    def counted(observed):
        calls.append(observed.shape[0])
        return original(observed)

    monkeypatch.setattr(missing_module, "_segments", counted)
    mixture = _mixture(4, 8)
    first = [_holes(300, 4, 0.3, 9)[:150], _holes(300, 4, 0.3, 9)[150:]]
    second = [_holes(300, 4, 0.3, 10)[:150], _holes(300, 4, 0.3, 10)[150:]]
    layouts = [_ChunkLayout.of(torch.isnan(chunk)) for chunk in first]
    grouping = sum(part.nbytes for part in _segments(torch.cat([x.observed for x in layouts])))
    cache = _LayoutCache(sum(layout.nbytes for layout in layouts) + grouping + 64)
    for chunks in (first, second):
        expected = _missing_pass(mixture, chunks, layouts=None)
        calls.clear()
        for _ in range(3):
            stats = _missing_pass(mixture, chunks, layouts=cache)
            for name in ("counts", "sums", "scatter", "log_likelihood", "n_samples"):
                assert torch.equal(getattr(stats, name), getattr(expected, name)), name
        assert len(calls) == 1  # grouped in the first pass only
    assert cache.nbytes == _charged(cache) <= cache.max_bytes


def test_chunks_that_die_are_dropped_at_once_even_while_the_lock_is_held():
    cache = _LayoutCache(1 << 20)
    chunks = _chunk_list(3, 50)
    for chunk in chunks:
        _visit(cache, chunk)
    del chunk
    chunks.pop()
    gc.collect()
    assert len(cache._entries) == 2  # without another call into the cache
    with cache._locked():  # the chunk dies while this thread holds the lock
        chunks.pop()
        gc.collect()
        assert len(cache._entries) == 2 and len(cache._dead) == 1
    assert len(cache._entries) == 1 and not cache._dead  # dropped on leaving
    assert cache._held == _charged(cache)


def test_two_stores_of_one_chunk_and_mask_share_a_layout():
    # Two threads that both missed on a chunk store a layout each: the second gets the
    # first, so that they share it and the grouping it keeps.
    cache = _LayoutCache(1 << 20)
    chunk = _holes(30, 3, 0.3, 60)
    first, second = (_ChunkLayout.of(torch.isnan(chunk)) for _ in range(2))
    assert cache.store(chunk, first) is first
    assert cache.store(chunk, second) is first
    assert len(cache) == 1 and cache.nbytes == first.nbytes and second.chunk is None


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork")
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_a_child_forked_while_another_thread_holds_the_lock_starts_afresh():
    cache = layout_module._LAYOUTS
    mixture = _mixture(3, 11)
    X = _holes(60, 3, 0.3, 12)
    expected = missing_statistics(mixture, [X])  # leaves X's layout in the cache
    assert len(cache) >= 1
    held, release = threading.Event(), threading.Event()

    def hold() -> None:
        with cache._lock:
            held.set()
            release.wait(60)

    holder = threading.Thread(target=hold)
    holder.start()
    held.wait(60)
    pid = os.fork()
    if pid == 0:  # the child: exit at once, with what it found as the status
        status = 3
        try:
            torch.set_num_threads(1)
            empty = len(cache) == 0 and cache.nbytes == 0
            stats = missing_statistics(mixture, [X])
            same = bool(torch.equal(stats.scatter, expected.scatter))
            status = 0 if empty and same and len(cache) == 1 else 2
        finally:
            os._exit(status)
    release.set()
    holder.join()
    deadline = time.monotonic() + 120
    while (found := os.waitpid(pid, os.WNOHANG))[0] == 0 and time.monotonic() < deadline:
        time.sleep(0.05)
    if found[0] == 0:
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        pytest.fail("the forked child deadlocked on the layout cache's lock")
    assert os.waitstatus_to_exitcode(found[1]) == 0

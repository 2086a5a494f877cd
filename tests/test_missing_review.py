"""Adversarial checks of the batched missing-value E-step and its layout cache.

References: the per-pattern E-step the batched one replaced (``_missing_pass(...,
batched=False)``), and the cache's own byte count summed over the layouts it keeps.
"""

from __future__ import annotations

import gc
import threading

import numpy as np
import pytest
import torch

import mixtorch.fit._missing_layout as layout_module
import mixtorch.fit.missing as missing_module
from mixtorch import Mixture
from mixtorch.fit._missing_layout import _ChunkLayout, _LayoutCache, _segments
from mixtorch.fit.missing import _missing_pass, missing_statistics

NAMES = ("counts", "sums", "scatter", "log_likelihood", "n_samples")


def _mixture(kind: str, k: int, d: int, seed: int) -> Mixture:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k)).tolist()
    means = rng.normal(scale=3.0, size=(k, d)).tolist()
    if kind == "full":
        a = rng.normal(size=(k, d, d))
        covariances = (a @ a.transpose(0, 2, 1) + 0.3 * np.eye(d)).tolist()
    elif kind == "tied":
        a = rng.normal(size=(d, d))
        covariances = (a @ a.T + 0.3 * np.eye(d)).tolist()
    elif kind == "diag":
        covariances = rng.uniform(0.3, 3.0, size=(k, d)).tolist()
    else:
        covariances = rng.uniform(0.3, 3.0, size=k).tolist()
    mixture = Mixture.from_parameters(weights, means, covariances, kind)
    return mixture.to(dtype=torch.float64)


def _holes(n: int, d: int, fraction: float, seed: int) -> torch.Tensor:
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=3.0, size=(n, d))
    X[rng.random(X.shape) < fraction] = np.nan
    X[[0, n // 3]] = rng.normal(size=(2, d))  # a complete row in each chunk
    return torch.as_tensor(X)


def _assert_same(new, old, rtol: float) -> None:
    for name in NAMES:
        ours, theirs = getattr(new, name).double(), getattr(old, name).double()
        scale = float(theirs.abs().max())
        torch.testing.assert_close(ours, theirs, rtol=rtol, atol=rtol * scale, msg=name)


class _HookedLock:
    """The cache's lock, running ``hook`` once before it is next taken: what another
    thread would do between a check made outside the lock and the locked block."""

    def __init__(self, lock: threading.Lock) -> None:
        self.lock = lock
        self.hook = None

    def __enter__(self) -> bool:
        hook, self.hook = self.hook, None
        if hook is not None:
            hook()
        return self.lock.__enter__()

    def __exit__(self, *exc) -> None:
        self.lock.__exit__(*exc)

    def acquire(self, blocking: bool = True) -> bool:
        return self.lock.acquire(blocking)

    def release(self) -> None:
        self.lock.release()


def _charged(cache: _LayoutCache) -> int:
    return sum(layout.charged for _, layout in cache._entries.values())


def test_a_grouping_is_not_charged_to_a_layout_dropped_meanwhile():
    # Thread A groups the buffer of ``first``; before it takes the lock, thread B refills
    # the chunk (a NaN moved) and stores its new layout, which drops ``first``. The
    # grouping must not be charged to the dropped layout: no entry would ever give those
    # bytes back.
    cache = _LayoutCache(1 << 20)
    chunk = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0], [3.0, 4.0]])
    first = _ChunkLayout.of(torch.isnan(chunk))
    assert cache.store(chunk, first) is first
    lock = _HookedLock(cache._lock)
    cache._lock = lock
    held = [chunk]

    def refill() -> None:
        held[0][2, 0] = float("nan")
        assert cache.store(held[0], _ChunkLayout.of(torch.isnan(held[0]))) is not first

    lock.hook = refill
    cache.keep_grouping(first, (), _segments(first.observed))
    assert first.grouping is None and first.charged == 0
    assert len(cache) == 1
    assert cache.nbytes == _charged(cache) > 0
    del chunk, held[:]
    gc.collect()
    assert len(cache) == 0
    assert cache.nbytes == 0


def test_a_grouping_replaced_while_it_is_read_is_read_whole():
    # Another thread replacing a layout's grouping (it sets None, then the new one) while
    # this one checks it: the check and the use must see the same grouping.
    chunk = torch.tensor([[1.0, float("nan")], [float("nan"), 2.0], [float("nan"), 5.0]])
    layout = _ChunkLayout.of(torch.isnan(chunk))
    segments = _segments(layout.observed)

    class Replaced(tuple):
        def __len__(self) -> int:
            layout.grouping = None  # the other thread's write, between two reads
            return super().__len__()

    layout.grouping = (Replaced(), segments)
    assert layout.kept_grouping(()) is segments
    assert layout.kept_grouping(()) is None  # now the other thread's (None)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("k", [1, 3])
def test_edge_patterns_match_the_per_pattern_path(kind, k, monkeypatch):
    # Segments of 8 rows at most, so that a pattern is split and padded at small sizes.
    monkeypatch.setattr(layout_module, "_SEGMENT_ROWS", 8)
    nan = float("nan")
    cases = {}
    X = _holes(60, 4, 0.0, 0)
    X[1::3] = nan  # rows with nothing observed
    X[2::7, 2] = nan
    cases["all missing rows"] = X
    X = _holes(60, 4, 0.0, 1)
    X[:, 3] = nan
    X[17, 3] = 0.25  # a column observed in one row only
    cases["column seen once"] = X
    X = _holes(45, 4, 0.0, 2)
    X[1:, 1] = nan  # one pattern, 44 rows: five segments of 8, one of 4
    cases["one pattern"] = X
    X = _holes(40, 1, 0.5, 3)
    cases["one feature"] = X
    X = _holes(80, 7, 0.5, 4)  # nearly a pattern per row
    cases["a pattern per row"] = X
    for seed, (name, X) in enumerate(cases.items()):
        mixture = _mixture(kind, k, X.shape[1], seed)
        chunks = [X[: len(X) // 3], X[len(X) // 3 :]]
        old = _missing_pass(mixture, chunks, batched=False)
        cache = _LayoutCache(1 << 24)
        for _ in range(2):  # grouped, then reused
            new = _missing_pass(mixture, chunks, layouts=cache)
            _assert_same(new, old, rtol=1e-10)
        assert float(new.n_samples) == len(X), name


def test_threads_on_different_and_shared_chunks_see_their_own_layouts(monkeypatch):
    cache = _LayoutCache(1 << 30)  # the process-wide one, without other tests' chunks
    monkeypatch.setattr(missing_module, "_LAYOUTS", cache)
    mixture = _mixture("full", 3, 5, 5)
    first, second = _holes(400, 5, 0.3, 6), _holes(400, 5, 0.3, 7)
    own = [first[:150], first[150:]]
    other = [second[:100], second[100:250], second[250:]]
    shared = [second[:200], second[200:]]
    cases = [(own, 6), (other, 6), (shared, 6), (shared[1:], 6), (shared, 6)]
    expected = [_missing_pass(mixture, chunks, layouts=None) for chunks, _ in cases]
    results: list[list] = [[] for _ in cases]
    errors: list[BaseException] = []

    def work(index: int) -> None:
        chunks, passes = cases[index]
        try:
            for _ in range(passes):
                results[index].append(missing_statistics(mixture, chunks))
        except BaseException as error:  # reported below
            errors.append(error)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(cases))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    for reference, found in zip(expected, results, strict=True):
        assert len(found) == 6
        for stats in found:
            for name in NAMES:
                ours, theirs = getattr(stats, name), getattr(reference, name)
                assert torch.equal(ours, theirs), name
    assert cache.nbytes == _charged(cache)
    kept = len(cache)
    del own, other, shared, first, second, cases[:]
    gc.collect()
    assert kept > 0
    assert len(cache) == 0 and cache.nbytes == 0

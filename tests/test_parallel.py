"""Chunk-level threads: same answers as one chunk at a time, settings left as found."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest
import torch

from mixtorch import GaussianMixture
from mixtorch._chunks import chunk_list, iter_chunks
from mixtorch._parallel import (
    SWITCH_INTERVAL,
    chunk_workers,
    fold_in_threads,
    map_in_threads,
    run_chunks,
)
from mixtorch.stats import accumulate_statistics


def test_results_come_back_in_order():
    items = list(range(50))
    assert map_in_threads(lambda i: i * i, items, workers=3) == [i * i for i in items]
    assert map_in_threads(lambda i: -i, items, workers=1) == [-i for i in items]
    assert map_in_threads(lambda i: i, [], workers=2) == []


def test_an_exception_in_a_worker_reaches_the_caller():
    def fail_on_seven(i):
        if i == 7:
            raise ValueError("seven")
        return i

    with pytest.raises(ValueError, match="seven"):
        map_in_threads(fail_on_seven, list(range(20)), workers=2)


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_folds_run_in_item_order_as_soon_as_their_predecessors_are_done(workers):
    items = list(range(24))
    computed: set[int] = set()
    five_done = threading.Event()
    lock = threading.Lock()

    def compute(i: int) -> int:
        if i == 0 and workers > 1:  # item 0 finishes only after items 1-5 have
            assert five_done.wait(timeout=30)
        with lock:
            computed.add(i)
            if i == 5:
                five_done.set()
        return i

    folded: list[int] = []
    waiting: list[int] = []  # results computed but not yet folded, at each fold

    def fold(i: int) -> None:
        with lock:
            waiting.append(len(computed) - len(folded) - 1)
        folded.append(i)

    fold_in_threads(compute, items, workers, fold)
    assert folded == items
    if workers == 1:
        assert max(waiting) == 0  # inline: each result is folded before the next is computed
    else:
        # items 1-5 waited for item 0 and were folded right after it, in order
        assert waiting[0] >= 5 and waiting[1] >= 4


def test_a_failure_stops_the_fold_and_reaches_the_caller():
    folded: list[int] = []

    def fail_on_seven(i: int) -> int:
        if i == 7:
            raise ValueError("seven")
        return i

    with pytest.raises(ValueError, match="seven"):
        fold_in_threads(fail_on_seven, list(range(40)), 2, folded.append)
    assert folded == list(range(len(folded))) and 7 not in folded


def test_thread_settings_are_put_back():
    before = torch.get_num_threads()
    map_in_threads(lambda x: torch.ones(3).sum(), list(range(8)), workers=2)
    assert torch.get_num_threads() == before
    seen = []
    thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
    thread.start()
    thread.join()
    assert seen == [before]  # threads created later get the usual default


@pytest.mark.parametrize("fails", [False, True])
def test_the_switch_interval_is_lowered_while_chunks_run_and_put_back(fails):
    before = sys.getswitchinterval()
    seen: list[float] = []

    def work(i):
        seen.append(sys.getswitchinterval())
        if fails and i == 5:
            raise ValueError("five")
        return i

    try:
        sys.setswitchinterval(0.004)
        if fails:
            with pytest.raises(ValueError, match="five"):
                map_in_threads(work, list(range(12)), workers=2)
        else:
            map_in_threads(work, list(range(12)), workers=2)
        assert seen and seen == pytest.approx([SWITCH_INTERVAL] * len(seen), rel=0.02)
        assert sys.getswitchinterval() == pytest.approx(0.004, rel=0.02)  # the caller's, not 5 ms
        # A caller that already switches more often keeps its own interval.
        sys.setswitchinterval(SWITCH_INTERVAL / 2)
        seen.clear()
        map_in_threads(lambda i: seen.append(sys.getswitchinterval()), list(range(8)), 2)
        assert seen == pytest.approx([SWITCH_INTERVAL / 2] * len(seen), rel=0.02)
    finally:
        sys.setswitchinterval(before)


def test_concurrent_passes_put_the_switch_interval_back_once_all_have_ended():
    before = sys.getswitchinterval()
    X = np.random.default_rng(0).normal(size=(40_000, 4))
    model = GaussianMixture.from_parameters(
        [0.5, 0.5], np.zeros((2, 4)) + [[0.0], [2.0]], np.ones((2, 4)), covariance_type="diag"
    )
    barrier = threading.Barrier(3)

    def score():
        barrier.wait()
        for _ in range(5):
            model.score_samples(X)

    threads = [threading.Thread(target=score) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sys.getswitchinterval() == before


@pytest.mark.parametrize("n_chunks", [1, 2, 9])
def test_one_chunk_runs_in_the_caller_and_every_chunk_has_one_intra_op_thread(n_chunks):
    # A one-chunk pass starts no thread (starting one cost more than a small pass); more
    # chunks are shared by the caller and one fresh thread; every chunk sees one intra-op
    # thread and the caller keeps its own count.
    seen: list[tuple[int, int]] = []
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        run_chunks(
            lambda index: seen.append((threading.get_ident(), torch.get_num_threads())),
            n_chunks,
            torch.device("cpu"),
        )
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    assert len(seen) == n_chunks
    assert {count for _, count in seen} == {1}
    threads = {ident for ident, _ in seen}
    if n_chunks == 1:
        assert threads == {threading.get_ident()}
    else:
        assert threading.get_ident() in threads and len(threads) <= 2


def test_a_failing_chunk_in_the_caller_leaves_its_thread_count():
    def one(index):
        assert torch.get_num_threads() == 1
        raise ValueError(f"chunk {index}")

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(ValueError, match="chunk 0"):
            run_chunks(one, 1, torch.device("cpu"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_few_chunks_or_one_thread_run_inline():
    cpu = torch.device("cpu")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        assert chunk_workers(cpu, 7) == 1  # fewer than four chunks a thread
        assert chunk_workers(cpu, 8) == 2
        torch.set_num_threads(1)
        assert chunk_workers(cpu, 100) == 1
    finally:
        torch.set_num_threads(before)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_threaded_pass_equals_the_sequential_one(kind):
    rng = np.random.default_rng(0)
    X = torch.tensor(rng.normal(size=(3000, 4)) + rng.integers(0, 3, (3000, 1)) * 4.0)
    model = GaussianMixture(3, covariance_type=kind, random_state=0, max_iter=3)
    mixture = model.fit(X).mixture_
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        threaded = accumulate_statistics(mixture, chunk_list(X, 100))  # 30 chunks, 2 threads
        sequential = accumulate_statistics(mixture, iter_chunks(X, 100))
    finally:
        torch.set_num_threads(before)
    for name in ("counts", "sums", "scatter", "log_likelihood", "n_samples"):
        torch.testing.assert_close(
            getattr(threaded, name), getattr(sequential, name), rtol=1e-12, atol=1e-10
        )


def test_threaded_weighted_pass_equals_the_sequential_one():
    rng = np.random.default_rng(1)
    X = torch.tensor(rng.normal(size=(2000, 3)))
    weight = torch.tensor(rng.uniform(0.2, 2.0, 2000))
    mixture = GaussianMixture(2, random_state=0).fit(X).mixture_
    pairs = [(X[i : i + 100], weight[i : i + 100]) for i in range(0, 2000, 100)]
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        threaded = accumulate_statistics(mixture, pairs)
        sequential = accumulate_statistics(mixture, iter(pairs))
    finally:
        torch.set_num_threads(before)
    assert threaded.n_samples.item() == pytest.approx(weight.sum().item(), rel=1e-12)
    for name in ("counts", "sums", "scatter", "log_likelihood"):
        torch.testing.assert_close(
            getattr(threaded, name), getattr(sequential, name), rtol=1e-12, atol=1e-10
        )


def test_a_one_chunk_pass_ending_midway_leaves_a_concurrent_pass_single_threaded():
    # The one-chunk pass puts its caller's count back, which also sets PyTorch's process
    # default; a worker of the other pass must keep its one thread all the same.
    cpu = torch.device("cpu")
    in_chunk, one_done = threading.Event(), threading.Event()
    seen: list[int] = []

    def many_chunks() -> None:
        torch.set_num_threads(2)

        def one(index):
            if index == 0:
                in_chunk.set()
                one_done.wait(10)
            seen.append(torch.get_num_threads())

        run_chunks(one, 8, cpu)

    before = torch.get_num_threads()
    other = threading.Thread(target=many_chunks)
    try:
        torch.set_num_threads(2)
        other.start()
        assert in_chunk.wait(10)
        run_chunks(lambda index: None, 1, cpu)
    finally:
        one_done.set()
        other.join()
        torch.set_num_threads(before)
    assert seen == [1] * 8


@pytest.mark.parametrize("last", [("b", 3), ("b", 2)])
def test_every_caller_gets_its_own_thread_count_back(last):
    # a (2 threads) starts a pass, b enters while it runs and leaves last: each caller
    # ends with its own count, and new threads get the default the first pass found.
    cpu = torch.device("cpu")
    b_in, a_done = threading.Event(), threading.Event()
    counts: dict[str, int] = {}
    order: list[str] = []

    def caller(name: str, threads: int, fn) -> None:
        torch.set_num_threads(threads)
        run_chunks(fn, 8, cpu)
        order.append(name)
        counts[name] = torch.get_num_threads()
        if name == "a":
            a_done.set()

    def a_chunk(index):
        if index == 0:
            assert b_in.wait(10)  # b has entered while a's pass is in flight

    def b_chunk(index):
        if index == 0:
            b_in.set()
            assert a_done.wait(10)  # so b leaves last

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)  # the default new threads get
        a = threading.Thread(target=caller, args=("a", 2, a_chunk))
        b = threading.Thread(target=caller, args=("b", last[1], b_chunk))
        a.start()
        b.start()
        a.join()
        b.join()
        fresh: list[int] = []
        thread = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
        thread.start()
        thread.join()
    finally:
        torch.set_num_threads(before)
    assert order == ["a", "b"]
    assert counts == {"a": 2, "b": last[1]}
    assert fresh == [2]


@pytest.mark.parametrize("mode", ["inference_mode", "no_grad", "enable_grad"])
def test_every_chunk_runs_under_the_callers_autograd_mode(mode):
    # Modes are per thread and a new thread starts with the defaults: a helper outside
    # inference mode may not write into the inference tensors its caller made.
    caller = threading.get_ident()
    helper_ran = threading.Event()
    seen: set[tuple[bool, bool]] = set()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with getattr(torch, mode)():
            expected = (torch.is_inference_mode_enabled(), torch.is_grad_enabled())
            out = torch.zeros(9)

            def one(index):
                seen.add((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
                if threading.get_ident() == caller:
                    assert helper_ran.wait(10)  # so that the helper computes a chunk too
                else:
                    helper_ran.set()
                out[index] = index

            run_chunks(one, 9, torch.device("cpu"))
    finally:
        torch.set_num_threads(before)
    assert helper_ran.is_set() and seen == {expected}
    assert out.tolist() == list(range(9))


def test_scoring_under_inference_mode_equals_scoring_outside_it():
    rng = np.random.default_rng(2)
    X = torch.tensor(rng.normal(size=(100_000, 4)))
    model = GaussianMixture(3, covariance_type="diag", random_state=0).fit(X[:2000])
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        expected = model.score_samples(X), model.predict_proba(X), model.predict(X)
        with torch.inference_mode():  # several chunks, shared with a helper thread
            got = model.score_samples(X), model.predict_proba(X), model.predict(X)
    finally:
        torch.set_num_threads(before)
    for value, reference in zip(got, expected, strict=True):
        torch.testing.assert_close(value, reference, rtol=0, atol=0)


def test_a_ctrl_c_in_the_callers_share_is_not_lost_behind_a_helpers_error():
    # The helper fails first; the caller, still in its chunk, is then interrupted: the
    # interrupt reaches the caller, not the helper's ValueError.
    caller = threading.get_ident()
    helper_failed = threading.Event()

    def one(index: int) -> None:
        if threading.get_ident() != caller:
            helper_failed.set()
            raise ValueError(f"chunk {index}")
        assert helper_failed.wait(10)
        time.sleep(0.05)  # the helper's error is recorded first
        raise KeyboardInterrupt

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        with pytest.raises(KeyboardInterrupt):
            run_chunks(one, 8, torch.device("cpu"))
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)

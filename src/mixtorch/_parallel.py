"""Chunk-level parallelism on CPU: whole chunks per thread instead of one op across threads.

PyTorch parallelises each operation over its intra-op threads, with a barrier at the end of
each. The E-step of a chunk is a few dozen operations on blocks of a few MiB, where those
barriers cost a noticeable share (and every operation waits for the slowest core, which
on a shared machine is often a preempted one). Giving threads whole chunks, one intra-op
thread each, avoids that: measured on 2 cores, a full-covariance E-step pass (N=200k,
K=D=16) took 31 ms instead of 38 ms; diagonal covariances gained nothing measurable.

Two entry points:

* :func:`map_in_threads` (EM passes): results come back in chunk order, so sums over them
  do not depend on thread timing. With few chunks the pass runs inline with the caller's
  intra-op threads (faster there), so the last bits of a fit can depend on
  ``torch.get_num_threads()``.
* :func:`run_chunks` (scoring passes): every chunk is computed by a thread with exactly
  one intra-op thread, whatever the caller's thread count, so each chunk's result is
  bitwise the same however many threads there are, which thread computes it, and how
  many passes run at once.

Thread counts are per thread (OpenMP's, and MKL's through ``mkl_set_num_threads_local``),
so each worker sets its own to one (after a first query: a thread's first query sets its
count from the process default, which would undo an earlier setting); a pass of one chunk
runs in the calling thread. Every caller gets its own count back when its pass ends.
PyTorch also records the last requested count as the default for threads created later,
which the last pass in flight puts back as the first one found it.

**The GIL.** Each tensor operation is queued from Python under the GIL and runs without
it. A worker that finds the GIL taken waits for the holder to release it, but the holder
releases it only for the length of one operation (microseconds) and usually takes it back
before the waiter has woken up; the waiter then gets it only when CPython's switch
interval (5 ms by default) forces a hand-over. Traced on a full-covariance scoring pass,
one worker sat 5 ms inside a single call while the other ran ten chunks. While passes run,
the switch interval is therefore lowered to :data:`SWITCH_INTERVAL` (and put back by the
last pass in flight, as the thread counts are): scoring passes on 200k rows took 8-12%
less time, and kernels queue few operations per chunk (views made once per pass, see
:class:`mixtorch.estep.EStepKernel`), so there is little left to wait for.
"""

from __future__ import annotations

import _thread
import functools
import itertools
import sys
import threading
from collections.abc import Callable, Sequence
from typing import TypeVar

import torch

__all__ = ["SWITCH_INTERVAL", "chunk_workers", "fold_in_threads", "map_in_threads", "run_chunks"]

#: CPython's thread switch interval while chunks run in threads (seconds): 0.2 ms,
#: against a default of 5 ms. Measured on scoring passes (N=200k, K=D=16, 2 cores):
#: 0.2 ms and 0.05 ms gave the same times, 0.01 ms no less.
SWITCH_INTERVAL = 2e-4

T = TypeVar("T")
R = TypeVar("R")


@functools.cache
def _openmp_backend() -> bool:
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def chunk_workers(device: torch.device, n_chunks: int) -> int:
    """How many threads should share ``n_chunks`` chunks on ``device`` (1: inline).

    Threads need at least four chunks each: a single-threaded worker left with one
    chunk more than the others would otherwise cost more than the barriers saved
    (measured: diag E-step, 5 chunks on 2 threads, 17 ms against 11 ms inline).
    """
    threads = torch.get_num_threads()
    if device.type != "cpu" or threads < 2 or n_chunks < 4 * threads or not _openmp_backend():
        return 1
    return threads


class _ThreadSettings:
    """Counts the passes in flight; the first saves the thread count and the switch
    interval (lowering that to :data:`SWITCH_INTERVAL`), the last restores both."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._in_flight = 0
        self._saved = 1
        self._saved_interval = sys.getswitchinterval()

    def enter(self) -> None:
        with self._lock:
            if self._in_flight == 0:
                self._saved = torch.get_num_threads()
                self._saved_interval = sys.getswitchinterval()
                sys.setswitchinterval(min(self._saved_interval, SWITCH_INTERVAL))
            self._in_flight += 1

    def leave(self, own: int) -> None:
        """End a pass of a caller whose own count was ``own``: the caller gets it back,
        and the last pass in flight puts PyTorch's default for new threads back as the
        first one found it. ``torch.set_num_threads`` sets both the calling thread's
        count and that default, so where the two differ the default is set from a
        short-lived thread."""
        with self._lock:
            self._in_flight -= 1
            torch.set_num_threads(own)
            if self._in_flight == 0:
                sys.setswitchinterval(self._saved_interval)
                if own != self._saved:
                    helper = threading.Thread(target=torch.set_num_threads, args=(self._saved,))
                    helper.start()
                    helper.join()


_SETTINGS = _ThreadSettings()


def _in_threads(fn: Callable[[int], None], n_items: int, workers: int) -> None:
    """``fn(i)`` for every ``i < n_items``, shared out to the caller and ``workers - 1``
    fresh threads.

    Each of them runs with one intra-op thread and the caller's autograd mode, and takes the
    next unprocessed index until none is left. The helpers are started without waiting for
    them to run (``_thread.start_new_thread``; ``threading.Thread.start`` blocks until the
    new thread runs), and the caller begins on the first chunk at once. On a machine whose
    other cores are idle, as between a user's calls, a new thread runs only when its core
    has woken: on the 2-core Intel Xeon machine (a virtual machine) starting a thread took
    0.45-0.6 ms after a 50 ms pause (0.09 ms back to back), and the caller sat that long in
    ``Thread.start``. Measured there (N=200k, K=D=16, 0.2 s pauses, 15-20 interleaved calls,
    best / median ms), against two started threads with the caller waiting: diag float32
    ``predict`` 9.2 / 10.7 against 9.7 / 12.2, ``score_samples`` 10.0 / 11.6 against 11.2 /
    12.8; full float32 ``predict_proba`` 24.7 / 31.1 against 26.1 / 34.8; diag float64
    ``predict`` 16.9 / 20.7 against 18.1 / 22.4. (An earlier round measured the caller as a
    worker slower on the AMD EPYC machine, 8.5-11.1 against 5.5-8.1 ms for that
    ``score_samples``; it then waited in ``Thread.start`` before its share.)

    The caller's own thread count is put back at the end. The first exception raised by
    ``fn`` (in any of them) is raised here, after the helpers have stopped; an interrupt
    (``KeyboardInterrupt`` or another non-``Exception``) before any earlier error.
    """
    failures: list[BaseException] = []
    stop = threading.Event()  # a failure, or the caller interrupted (Ctrl-C)
    indices = itertools.count()  # next() on a count is atomic under the GIL

    def work() -> None:
        # A thread's first query initialises its count from PyTorch's process default,
        # overriding what it set before: done first, so that a concurrent pass that puts
        # the default back cannot give this worker more than one thread mid-pass.
        torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            for index in iter(indices.__next__, None):
                if index >= n_items or stop.is_set():
                    return
                fn(index)
        except BaseException as error:  # re-raised in the calling thread
            failures.append(error)
            stop.set()

    # Autograd modes are per thread and a new thread starts with the defaults: the
    # helpers take the caller's, so every chunk runs alike, and a pass under
    # torch.inference_mode() can write into the inference tensors its caller made.
    inference, grad = torch.is_inference_mode_enabled(), torch.is_grad_enabled()

    def helper(finished: threading.Lock) -> None:
        try:
            with torch.inference_mode(inference), torch.set_grad_enabled(grad):
                work()
        finally:
            finished.release()

    helpers: list[threading.Lock] = []  # each held until its helper has finished
    own_threads = torch.get_num_threads()
    _SETTINGS.enter()
    try:
        for _ in range(workers - 1):
            finished = threading.Lock()
            finished.acquire()
            _thread.start_new_thread(helper, (finished,))
            helpers.append(finished)
        work()
        for finished in helpers:
            finished.acquire()
    finally:
        stop.set()  # helpers still running (the caller was interrupted) stop after a chunk
        _SETTINGS.leave(own_threads)  # the caller's own count, whoever entered first
    if failures:  # a Ctrl-C in the caller's share wins over a helper's earlier error
        raise next((error for error in failures if not isinstance(error, Exception)), failures[0])


def fold_in_threads(
    fn: Callable[[T], R], items: Sequence[T], workers: int, fold: Callable[[R], None]
) -> None:
    """``fold(fn(item))`` for every item, in item order, ``fn`` computed by ``workers``
    threads (inline below 2).

    Each result is folded as soon as those of all earlier items have been, so at most
    a few are held at any time (those finished ahead of an earlier one). Holding every
    chunk's small results until the end of a pass, as :func:`map_in_threads` does, left
    one small allocation in the C heap per chunk between the large temporaries that
    chunks free, and the heap grew with the number of chunks: an E-step pass over 4M
    rows (D=32, K=64, float32, 245 chunks) peaked 405 MiB above its start when each
    product made a fresh output, 8 MiB with the results folded in order. ``fold`` runs
    under a lock, in whichever worker finished the chunk that completed the sequence.
    """
    if workers < 2:
        for item in items:
            fold(fn(item))
        return
    pending: dict[int, R] = {}
    lock = threading.Lock()
    following = 0  # index of the next result to fold

    def one(index: int) -> None:
        nonlocal following
        result = fn(items[index])
        with lock:
            pending[index] = result
            while following in pending:
                fold(pending.pop(following))
                following += 1

    _in_threads(one, len(items), workers)


def map_in_threads(fn: Callable[[T], R], items: Sequence[T], workers: int) -> list[R]:
    """``[fn(item) for item in items]`` computed by ``workers`` threads (inline below 2)."""
    results: list[R] = []
    fold_in_threads(fn, items, workers, results.append)
    return results


def run_chunks(fn: Callable[[int], None], n_chunks: int, device: torch.device) -> None:
    """``fn(i)`` for every chunk index ``i``; on CPU each call has one intra-op thread.

    ``fn`` writes its chunk's results into place. On CPU (OpenMP builds) chunks go to
    ``min(torch.get_num_threads(), n_chunks)`` threads, the caller and fresh ones, with
    one intra-op thread each (a single chunk, or a caller with one intra-op thread, runs
    in the calling thread alone), so each chunk is computed single-threaded wherever it
    runs (see the module docstring), and under the caller's autograd mode (no_grad,
    inference_mode).
    Elsewhere (GPU) the chunks run in order in the calling thread.
    """
    inline = device.type != "cpu" or not _openmp_backend() or torch.get_num_threads() == 1
    if inline or n_chunks == 0:
        for index in range(n_chunks):
            fn(index)
        return
    if n_chunks == 1:
        # The caller computes it, with its count set to one and put back (counts are per
        # thread in PyTorch: OpenMP's, and MKL's through mkl_set_num_threads_local).
        # Starting and joining a thread cost 0.1-0.3 ms on an idle 2-core machine and
        # several ms on a busy one: a one-row diag predict took 4.3 ms, now 0.12.
        own = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            fn(0)
        finally:
            torch.set_num_threads(own)
        return
    _in_threads(fn, n_chunks, min(torch.get_num_threads(), n_chunks))

"""The E-step kernel interface: chunk sums, normalised responsibilities, pass buffers.

Every kernel (:mod:`mixtorch.estep`) derives from :class:`EStepKernel`, which normalises
(K, rows) log-probabilities into responsibilities (and their entropy when tracked) and
keeps one set of reusable buffers per thread for a pass over the data.
"""

from __future__ import annotations

import math
import threading
from abc import ABC, abstractmethod
from collections.abc import Callable, Hashable
from typing import Any, NamedTuple, TypeVar

import torch
from torch import Tensor

__all__ = ["ChunkSums", "EStepKernel", "normalise_log_weights", "normalise_with_entropy"]

P = TypeVar("P")


class ChunkSums(NamedTuple):
    """Sums over one chunk (weighted by ``sample_weight`` when given).

    ``log_likelihood`` is a float64 scalar, ``counts`` (K,); ``first`` and ``second``
    are the first and second moments in the kernel's own layout. ``entropy`` is
    ``-sum_ik r_ik log r_ik`` (a scalar) when the kernel tracks it
    (:attr:`EStepKernel.track_entropy`, for the variational bound), else None.
    """

    log_likelihood: Tensor
    counts: Tensor
    first: Tensor
    second: Tensor
    entropy: Tensor | None = None


#: ``log2(e)``: :func:`exp_` raises ``exp2(log2(e) x)`` on CPU.
LOG2_E = 1.0 / math.log(2.0)


def exp_(values: Tensor, out: Tensor | None = None) -> Tensor:
    """``exp(values)`` into ``out`` (``values`` itself when None), computed on CPU as
    ``exp2(log2(e) x)``.

    PyTorch's CPU ``exp2`` ran 3.3x faster than its ``exp`` on the AMD EPYC benchmark
    machine (float32 4.17 against 1.28 G/s per core; float64 1.54 against 0.55), both
    within one unit in the last place; the multiplication costs a tenth of either. It
    rounds relative to ``x``, which is at most a few dozen where terms matter
    (log-probabilities less their peak; KDE exponents), so the result is within a few
    more units in the last place. GPUs keep ``exp`` (a second pass over memory would cost
    more there).

    Examples
    --------
    >>> import torch
    >>> x = torch.tensor([0.0, -1.0, -20.0], dtype=torch.float64)
    >>> bool(torch.allclose(exp_(x.clone()), x.exp(), rtol=1e-14, atol=0))
    True
    """
    target = values if out is None else out
    if values.device.type != "cpu":
        return torch.exp(values, out=target)
    return torch.mul(values, LOG2_E, out=target).exp2_()


def normalise_log_weights(log_prob: Tensor, dim: int = 1) -> tuple[Tensor, Tensor]:
    """``logsumexp`` along ``dim`` and the normalised responsibilities, one exp pass.

    ``log_prob`` is overwritten with the responsibilities (which are returned).

    Examples
    --------
    >>> import torch
    >>> log_prob = torch.log(torch.tensor([[0.2, 0.6], [0.1, 0.1]], dtype=torch.float64))
    >>> log_norm, responsibilities = normalise_log_weights(log_prob)
    >>> log_norm.exp()  # the row sums 0.8 and 0.2
    tensor([0.8000, 0.2000], dtype=torch.float64)
    >>> responsibilities
    tensor([[0.2500, 0.7500],
            [0.5000, 0.5000]], dtype=torch.float64)
    """
    peak = log_prob.amax(dim, keepdim=True)
    # All components -inf (a point at overflowing distance) would give NaN; clamping the
    # peak to the most negative finite number keeps exp() at zero instead.
    peak.clamp_min_(torch.finfo(log_prob.dtype).min)
    # Clamping at log(tiny) keeps exp() out of subnormal numbers, which are many times
    # slower on CPUs; the responsibilities it changes are below 1e-37 (float32).
    floor = math.log(torch.finfo(log_prob.dtype).tiny) + 2.0  # a margin above rounding
    exponentials = exp_(log_prob.sub_(peak).clamp_min_(floor))
    total = exponentials.sum(dim, keepdim=True)
    return (peak + total.log()).squeeze(dim), exponentials.div_(total)


def normalise_with_entropy(
    log_prob: Tensor, dim: int, out: Tensor | None = None
) -> tuple[Tensor, Tensor, Tensor]:
    """:func:`normalise_log_weights` plus each row's entropy ``-sum_k r_k log r_k``.

    With ``s_k`` the log-probabilities less their peak and ``e_k = exp(s_k)``, the
    entropy is ``log sum_k e_k - sum_k e_k s_k / sum_k e_k``: one more product pass,
    no logarithm of the responsibilities. ``log_prob`` is overwritten with ``s``; the
    responsibilities go to ``out`` (a new tensor when None).

    Examples
    --------
    >>> import math
    >>> import torch
    >>> log_prob = torch.log(torch.tensor([[0.2, 0.6], [0.1, 0.1]], dtype=torch.float64))
    >>> _, responsibilities, entropy = normalise_with_entropy(log_prob, 1)
    >>> entropy  # -(0.25 log 0.25 + 0.75 log 0.75) and log 2
    tensor([0.5623, 0.6931], dtype=torch.float64)
    >>> math.isclose(entropy[1].item(), math.log(2), rel_tol=1e-15)
    True
    """
    peak = log_prob.amax(dim, keepdim=True)
    peak.clamp_min_(torch.finfo(log_prob.dtype).min)
    floor = math.log(torch.finfo(log_prob.dtype).tiny) + 2.0
    shifted = log_prob.sub_(peak).clamp_min_(floor)
    exponentials = exp_(shifted, out=torch.empty_like(shifted) if out is None else out)
    total = exponentials.sum(dim, keepdim=True)
    log_total = total.log()
    expected_shift = torch.linalg.vecdot(exponentials, shifted, dim=dim).unsqueeze(dim) / total
    entropy = (log_total - expected_shift).squeeze(dim)
    return (peak + log_total).squeeze(dim), exponentials.div_(total), entropy


def _weighted(
    log_norm: Tensor, responsibilities: Tensor, sample_weight: Tensor | None, dim: int
) -> tuple[Tensor, Tensor]:
    """Chunk log-likelihood (float64) and responsibilities times the sample weights.

    ``dim`` is the responsibilities' component axis.
    """
    if sample_weight is None:
        return log_norm.sum(dtype=torch.float64), responsibilities
    weight = sample_weight.unsqueeze(dim)
    return log_norm.double() @ sample_weight.double(), responsibilities.mul_(weight)


def _row_sum(values: Tensor | None, sample_weight: Tensor | None) -> Tensor | None:
    """The (weighted) float64 sum of per-row ``values``; None stays None."""
    if values is None:
        return None
    if sample_weight is None:
        return values.sum(dtype=torch.float64)
    return values.double() @ sample_weight.double()


class _Scratch(threading.local):
    """Reusable buffers per thread (the block, the log-probabilities) for one pass.

    Allocating fresh buffers of a few MiB for every chunk let the C allocator's cached
    memory grow to 100-250 MiB over a pass with two threads (glibc's dynamic mmap
    threshold keeps freed blocks); reusing them keeps it at a few buffers per thread.
    """

    def __init__(self) -> None:
        self.buffers: dict[str, Tensor] = {}
        self.plans: dict[Hashable, Any] = {}

    def __reduce__(self) -> tuple[type, tuple[()]]:
        return _Scratch, ()  # a pickled kernel starts with no buffers

    def take(self, name: str, shape: tuple[int, int], like: Tensor) -> Tensor:
        numel = shape[0] * shape[1]
        buffer = self.buffers.get(name)
        if (
            buffer is None
            or buffer.numel() < numel
            or buffer.dtype != like.dtype
            or buffer.device != like.device
        ):
            buffer = self.buffers[name] = like.new_empty(numel)
        return buffer[:numel].view(shape)

    def plan(self, key: Hashable, build: Callable[[], P]) -> P:
        """``build()``, made once per ``key`` in this thread and pass: views of the
        buffers that every chunk of one length writes into. Slicing and viewing are
        Python-level tensor operations run under the GIL (about 1 us each); made once,
        they leave the threads of a pass only the arithmetic to queue for it."""
        made = self.plans.get(key)
        if made is None:
            made = self.plans[key] = build()
        return made


class EStepKernel(ABC):
    """The E-step of one mixture, applied chunk by chunk.

    Parameters
    ----------
    center : Tensor of shape (D,)
        Rows are shifted by this point before any arithmetic.
    origin : Tensor of shape (K, D)
        :meth:`finish` returns moments about this point (in shifted coordinates).
    """

    #: Whether chunk sums include the responsibilities' entropy (variational Bayes).
    track_entropy: bool = False

    #: Elements per row of the largest intermediate of :meth:`column_log_prob` when it
    #: is a block other than the (K, rows) output (scoring chunks are sized by it); None
    #: keeps the E-step's chunk length.
    scoring_row_elements: int | None = None

    def __init__(self, center: Tensor, origin: Tensor) -> None:
        self.center = center
        self.origin = origin
        self._scratch = _Scratch()

    def _normalise(
        self, log_prob: Tensor, sample_weight: Tensor | None
    ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Weighted log-likelihood, weighted responsibilities and entropy of (K, rows)
        log-probabilities (overwritten); the entropy is None unless tracked."""
        entropy = None
        if self.track_entropy:
            shape = (int(log_prob.shape[0]), int(log_prob.shape[1]))
            out = self._scratch.take("exp", shape, log_prob)
            log_norm, responsibilities, entropy = normalise_with_entropy(log_prob, 0, out)
        else:
            log_norm, responsibilities = normalise_log_weights(log_prob, dim=0)
        log_likelihood, responsibilities = _weighted(log_norm, responsibilities, sample_weight, 0)
        return log_likelihood, responsibilities, _row_sum(entropy, sample_weight)

    def release(self) -> None:
        """Drop the block buffers kept for a pass (called when the pass ends)."""
        self._scratch = _Scratch()

    @abstractmethod
    def weighted_log_prob(self, X: Tensor) -> Tensor:
        """``log w_k + log N(x_i | m_k, S_k)``, shape (n, K), for unshifted rows."""

    @abstractmethod
    def __call__(self, X: Tensor, sample_weight: Tensor | None = None) -> ChunkSums:
        """Log-likelihood, counts and moments of one chunk of unshifted rows."""

    def column_log_prob(self, X: Tensor) -> Tensor:
        """``log w_k + log N(x_i | m_k, S_k)`` as (K, n), for unshifted rows.

        The scoring passes' entry point (:mod:`mixtorch._scoring`): the E-step's
        arithmetic (the quadratic-form kernels fold the bias into their product here),
        written into this thread's pass buffer, which the next call in the
        same thread overwrites (reductions may work in place).
        """
        return self.weighted_log_prob(X).T

    def finish(self, first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
        """``sums`` (K, D) and ``scatter`` about :attr:`origin` from summed moments."""
        return first, second

"""The kernels' matrix products: oneDNN's for float32 on CPU, MKL's (``torch.mm``) otherwise.

Every E-step and scoring product multiplies a small matrix (K or the block's rows) by a
long one (thousands of rows), shapes for which PyTorch's CPU ``mm`` (MKL) is far from the
machine's peak on some processors. Measured on the 2-core AMD EPYC machine (AVX-512,
one thread, float32, each block rewritten between calls as in a pass), MKL against oneDNN's
inner product (``torch.ops.mkldnn._linear_pointwise``, the operation PyTorch's compiler
emits for ``linear`` on CPU):

=================================================  ========  ========
product                                            MKL (us)  oneDNN
=================================================  ========  ========
full, (16, 161) x (161, 3276) log-probabilities      266       136
full, (160, 6241) x (6241, 16) moments               490       217
diag, (16, 33) x (33, 16384) log-probabilities       344       198
diag, (16, 43690) x (43690, 32) moments              746       263
=================================================  ========  ========

On Intel processors MKL is the faster of the two for the log-probability products:
measured on the 2-core Intel Xeon machine (AVX-512, one thread, same method), MKL took
250 and 286 us for the first and third products above against oneDNN's 326 and 326, and
whole scoring calls (N=200k, D=K=16, float32, alternating nine times) took 20-30% less
with MKL's (full ``predict`` 31 against 40 ms, diag 12.0 against 13.3 ms). The moments'
products stay with oneDNN there: in whole EM iterations it was as fast or faster (diag
N=1M, D=32, K=64: 390-416 ms against MKL's 510-650; D=K=16 the same within noise), though
alone on one thread MKL was ahead on some of their shapes. MKL picks its code paths by
the processor's vendor, so the log-probability products take oneDNN only on processors
of other vendors (the AMD EPYC figures above) or where PyTorch has no MKL
(:func:`onednn_log_prob_products`).

oneDNN reads either factor in the layout the kernels keep (it repacks the "weight" factor
itself), and its float32 products round as MKL's do (full precision; the same values on
these shapes up to a few units in the last place of long sums). It is used only where it
computes in full float32 precision (no TF32/bfloat16 mode set, see
:func:`~mixtorch.estep.matmul_roundoff`), for tensors that need no gradient, when
``torch.backends.mkldnn`` is enabled, and after a first product on small integers came out
exact. On any other dtype or device, and where the operation is missing (it is private to
PyTorch), the products are ``torch.mm``'s.
"""

from __future__ import annotations

import functools
import platform

import torch
from torch import Tensor

from ._roundoff import matmul_roundoff

__all__ = ["ONEDNN_MIN_MULTIPLY_ADDS", "onednn_log_prob_products", "onednn_products", "product"]

#: Smallest product (multiply-adds) given to oneDNN: each of its calls costs about 15 us
#: more than ``torch.mm``'s, and a first call for a new shape 0.4-5 ms (a kernel is made
#: for it, then cached). Measured (one thread, K=16): oneDNN is faster from about 2M
#: multiply-adds ((16, 32) x (32, 4096): 65 against 75 us; (16, 160) x (160, 1024): 73
#: against 90 us), slower below.
ONEDNN_MIN_MULTIPLY_ADDS = 2**21


@functools.cache
def _onednn_works() -> bool:
    """Whether oneDNN's inner product exists here and multiplies exactly on integers."""
    try:
        left = torch.arange(6, dtype=torch.float32).reshape(2, 3)
        right = torch.arange(12, dtype=torch.float32).reshape(3, 4) - 5.0
        got = torch.ops.mkldnn._linear_pointwise(left, right.T, None, "none", [], "")
        return bool(torch.equal(got, left @ right))
    except (AttributeError, RuntimeError, TypeError, NotImplementedError):
        return False


@functools.cache
def _intel_processor() -> bool:
    """Whether the processor is Intel's (``vendor_id`` in ``/proc/cpuinfo`` on Linux, the
    processor string elsewhere, which names the vendor on Windows)."""
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as lines:
            for line in lines:
                if line.startswith("vendor_id"):
                    return "GenuineIntel" in line
    except OSError:
        pass
    return "GenuineIntel" in platform.processor()


def _mkl_is_tuned_here() -> bool:
    """Whether ``torch.mm`` runs MKL on a processor MKL is tuned for (module docstring)."""
    return torch.backends.mkl.is_available() and _intel_processor()


def onednn_products(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether kernels of this dtype and device should take oneDNN's products now.

    Examples
    --------
    >>> import torch
    >>> onednn_products(torch.float64, torch.device("cpu"))  # oneDNN has no float64 product
    False
    """
    return (
        device.type == "cpu"
        and dtype == torch.float32
        and torch.backends.mkldnn.is_available()
        and _full_precision_now()
        and _onednn_works()
    )


def onednn_log_prob_products(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether the kernels' log-probability products (a small matrix times the block)
    should take oneDNN's products: :func:`onednn_products`, except on processors MKL is
    tuned for (module docstring)."""
    return onednn_products(dtype, device) and not _mkl_is_tuned_here()


def _full_precision_now() -> bool:
    """oneDNN enabled and float32 products kept at full precision: the switches a caller
    may flip after a kernel was built, so :func:`product` reads them again (3 us)."""
    cpu = torch.device("cpu")
    return bool(torch.backends.mkldnn.enabled) and (
        matmul_roundoff(torch.float32, cpu) == torch.finfo(torch.float32).eps
    )


def product(left: Tensor, right: Tensor, onednn: bool) -> Tensor:
    """``left @ right`` for 2-D tensors, by oneDNN when ``onednn`` and it applies.

    ``left`` must be contiguous for oneDNN (it is read row by row); ``right`` may have
    any strides; products below :data:`ONEDNN_MIN_MULTIPLY_ADDS` go to ``torch.mm``, and
    so do all products once oneDNN is disabled or float32 products may round to less than
    full precision (switches a caller may flip after ``onednn`` was decided). The result
    is a new contiguous tensor either way.

    Examples
    --------
    >>> import torch
    >>> left = torch.tensor([[1.0, 2.0], [3.0, 4.0]])
    >>> right = torch.tensor([[1.0, 0.0, 2.0], [0.0, 1.0, -1.0]])
    >>> product(left, right, onednn=onednn_products(left.dtype, left.device))
    tensor([[1., 2., 0.],
            [3., 4., 2.]])
    """
    if (
        onednn
        and left.dtype == right.dtype == torch.float32
        and left.shape[0] * left.shape[1] * right.shape[1] >= ONEDNN_MIN_MULTIPLY_ADDS
        and left.is_contiguous()
        and not (left.requires_grad or right.requires_grad)
        and _full_precision_now()
    ):
        return torch.ops.mkldnn._linear_pointwise(left, right.T, None, "none", [], "")
    return torch.mm(left, right)

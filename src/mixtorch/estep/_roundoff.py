"""When a quadratic-form kernel is accurate: the rounding of a matrix product.

The quadratic forms of :mod:`mixtorch.estep` lose about ``u * delta^2`` relative (``u``
the unit roundoff of a matrix product, ``delta`` a component mean's whitened distance from
the centre); the kernel choosers compare that with a tolerance.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["bias_may_enter_products", "matmul_roundoff", "quadratic_form_is_accurate"]


def matmul_roundoff(dtype: torch.dtype, device: torch.device) -> float:
    """Relative rounding of a matrix product, allowing for TF32 or bfloat16 float32 modes.

    mixtorch never enables reduced-precision float32 products itself (PyTorch's default
    is full precision); when a user does, the quadratic forms become inaccurate sooner
    and the kernels fall back to explicit differences.

    Examples
    --------
    >>> import torch
    >>> matmul_roundoff(torch.float32, torch.device("cpu"))  # full float32 precision
    1.1920928955078125e-07
    >>> matmul_roundoff(torch.float64, torch.device("cpu")) == torch.finfo(torch.float64).eps
    True
    """
    eps = torch.finfo(dtype).eps
    if dtype != torch.float32:
        return eps
    backend = torch.backends.cuda.matmul if device.type == "cuda" else torch.backends.mkldnn
    backend_matmul = getattr(backend, "matmul", backend)
    modes = {
        torch.get_float32_matmul_precision(),
        str(getattr(backend_matmul, "fp32_precision", "none")),
        str(getattr(torch.backends, "fp32_precision", "none")),
    }
    if device.type == "cuda" and torch.backends.cuda.matmul.allow_tf32:
        modes.add("tf32")
    if modes & {"medium", "bf16"}:
        return max(eps, 2.0**-8)
    if modes & {"high", "tf32"}:
        return max(eps, 2.0**-11)
    return eps


def bias_may_enter_products(dtype: torch.dtype, device: torch.device) -> bool:
    """Whether a bias may be folded into a product (a column of ones times it) as exactly
    as ``addmm`` adds it: only where products keep full precision. TF32 or bfloat16
    products round their inputs, and a bias of log-determinants (tens of nats for tight
    components) would lose ``u * |bias|`` with them; ``addmm`` adds it unrounded."""
    return matmul_roundoff(dtype, device) == torch.finfo(dtype).eps


def quadratic_form_is_accurate(whitened_means: Tensor, tolerance: float) -> bool:
    """Whether ``roundoff * max_k delta_k^2`` is within ``tolerance``."""
    spread = float(whitened_means.square().sum(1).max())
    roundoff = matmul_roundoff(whitened_means.dtype, whitened_means.device)
    return roundoff * spread <= tolerance

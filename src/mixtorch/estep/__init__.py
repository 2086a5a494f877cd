"""E-step kernels: one pass over a chunk of rows gives its log-likelihood and moments.

A kernel is built once per EM iteration from the current mixture, so every constant that
depends only on the parameters is computed once rather than once per chunk, and is then
called on each chunk. A call returns chunk sums (log-likelihood, summed
responsibilities, and first and second moments in a layout of the kernel's choosing);
after the sums of all chunks are added up in float64, :meth:`EStepKernel.finish` turns
the moments into ``sums`` (K, D) and ``scatter`` about :attr:`EStepKernel.origin`.

Full and tied covariances have two formulations:

* **Quadratic form** (:class:`QuadraticFullKernel`). With ``y`` a row shifted by the
  mixture centre, ``-(y - m)^T L (y - m) / 2 = sum_{i<=j} c_ij y_i y_j + y^T L m + const``.
  The products ``y_i y_j`` (i <= j, plus a few duplicates) and ``y`` are laid out as the
  rows of a (about D^2/2 + D, rows) block; one matrix product with a (K, block rows)
  coefficient matrix gives every component's log-density, and one product of the block
  with the responsibilities gives every first and second moment. Symmetry brings the
  multiply-adds to about 70% of those of explicit differences for D=16 (half for large
  D), and there is no (K, rows, D) intermediate. Rounding grows with the square of
  ``delta_k``, the distance of component ``k``'s mean from the centre in units of its own
  covariance (whitened distance).
* **Explicit differences** (:class:`DifferenceFullKernel`). ``y - m_k`` is formed for
  every component, which stays accurate in float32 however far and tight the components
  are, at the price of 1.4-2x the multiply-adds and three elementwise passes over
  (K, rows, D) values.

:func:`full_kernel` takes the quadratic form when ``u * max_k delta_k^2`` is at most
:data:`QUADRATIC_FORM_TOLERANCE`, with ``u`` the unit roundoff of a matrix product
(float32: every mean within about 32 of its own standard deviations from the centre), and
the block is not much larger than the differences (``D <= 4 K``); explicit differences
otherwise. Diagonal and spherical covariances work the same way with ``[y^2, y]`` as the
block and a looser bound, :data:`DIAG_QUADRATIC_FORM_TOLERANCE` (:func:`diag_kernel`).
If TF32 or bfloat16 products are enabled for float32
(``torch.set_float32_matmul_precision``), ``u`` grows accordingly and explicit
differences are used.
"""

from __future__ import annotations

from ._diag import (
    DIAG_QUADRATIC_FORM_TOLERANCE,
    DiagDifferenceKernel,
    DiagKernel,
    diag_kernel,
)
from ._full import (
    QUADRATIC_FORM_TOLERANCE,
    DifferenceFullKernel,
    QuadraticFullKernel,
    full_kernel,
)
from ._kernel import ChunkSums, EStepKernel, normalise_log_weights, normalise_with_entropy
from ._roundoff import matmul_roundoff

__all__ = [
    "DIAG_QUADRATIC_FORM_TOLERANCE",
    "QUADRATIC_FORM_TOLERANCE",
    "ChunkSums",
    "DiagDifferenceKernel",
    "DiagKernel",
    "DifferenceFullKernel",
    "EStepKernel",
    "QuadraticFullKernel",
    "diag_kernel",
    "full_kernel",
    "matmul_roundoff",
    "normalise_log_weights",
    "normalise_with_entropy",
]

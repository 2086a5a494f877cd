"""Full and tied covariance kernels: the packed quadratic form or explicit differences,
and :func:`full_kernel`, which picks the faster one that is accurate (see
:mod:`mixtorch.estep`)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._difference import DifferenceKernel
from ._kernel import ChunkSums, EStepKernel
from ._products import onednn_log_prob_products, onednn_products, product
from ._roundoff import bias_may_enter_products, quadratic_form_is_accurate

__all__ = ["QUADRATIC_FORM_TOLERANCE", "DifferenceFullKernel", "QuadraticFullKernel", "full_kernel"]

#: Largest ``u * max_k delta_k^2`` (``u`` the matrix-product unit roundoff) for which full
#: and tied covariances use the quadratic form. Measured in float32 against float64 (N=40k,
#: D=K=16): the largest log-density error is about ``3 u delta^2`` nats (1.7e-4 at
#: ``u delta^2`` = 5.9e-5, where scikit-learn's float32 E-step is off by 6.6e-6) and
#: covariance entries are off by about ``0.15 u delta^2`` relative (8.9e-6 there), so at this
#: bound log-densities are within about 4e-4 nats and covariances within 2e-5.
QUADRATIC_FORM_TOLERANCE = 2.0**-13

#: Row groups of the packed quadratic block: more groups pack tighter (D^2/2 products)
#: but cost one more elementwise call per chunk.
_QUADRATIC_GROUPS = 8


class QuadraticFullKernel(EStepKernel):
    """Full or tied covariances by the packed quadratic form (see :mod:`mixtorch.estep`).

    The block's rows come in groups: group ``g`` covers features ``[s_g, e_g)`` and holds
    ``y_i * y_j`` for ``i`` in the group and ``j >= s_g``, so every product with
    ``i <= j`` appears, those inside a group's own square twice (their coefficient is
    halved). The last D rows hold ``y``.
    """

    def __init__(
        self, center: Tensor, means: Tensor, precision_factor: Tensor, bias: Tensor
    ) -> None:
        K, D = means.shape
        super().__init__(center, torch.zeros_like(means))
        # Constants in float64, so they add no rounding of their own.
        factor = precision_factor.double()
        precision = (factor @ factor.mT).expand(K, D, D)  # tied: one matrix for all
        means64 = means.double()
        linear = torch.einsum("kde,ke->kd", precision, means64)
        edges = torch.linspace(0, D, min(D, _QUADRATIC_GROUPS) + 1).round().long().tolist()
        self.groups: list[tuple[int, int, int]] = []  # (start, end, first block row)
        pieces, row = [], 0
        for start, end in zip(edges[:-1], edges[1:], strict=True):
            self.groups.append((start, end, row))
            row += (end - start) * (D - start)
            # Products outside the group's own square appear once: coefficient -L_ij.
            doubled = (torch.arange(D - start, device=means.device) >= end - start) + 1.0
            piece = -0.5 * precision[:, start:end, start:] * doubled.double()
            pieces.append(piece.reshape(K, -1))
        self.n_products = row
        self.scoring_row_elements = row + D + 1
        self.coefficients = torch.cat(pieces + [linear], dim=1).to(means.dtype).contiguous()
        self.bias = (bias.double() - 0.5 * (linear * means64).sum(1)).to(means.dtype)[:, None]
        # Scoring folds the bias into the product: a row of ones ends its block.
        self.scoring_coefficients = torch.cat([self.coefficients, self.bias], 1)
        self.n_features = D
        self.onednn = onednn_products(means.dtype, means.device)  # the moments' products
        self.onednn_log_prob = onednn_log_prob_products(means.dtype, means.device)

    def _block(self, X: Tensor, reuse: bool = False) -> Tensor:
        """The block of chunk ``X``, in this thread's pass buffer when ``reuse``."""
        n = X.shape[0]
        if reuse:
            key = ("block", n, X.dtype, X.device)
            block, Y, products = self._scratch.plan(key, lambda: self._views(X, True))
        else:
            block, Y, products = self._views(X, False)
        self._fill(X, Y, products)
        return block

    def _fill(self, X: Tensor, Y: Tensor, products: list[tuple[Tensor, Tensor, Tensor]]) -> None:
        # One strided pass: shift and transpose (copying (X - c).T after would be two).
        torch.sub(X.T, self.center[:, None], out=Y)
        for left, right, out in products:
            torch.mul(left, right, out=out)

    def _views(
        self, X: Tensor, reuse: bool, scoring: bool = False
    ) -> tuple[Tensor, Tensor, list[tuple[Tensor, Tensor, Tensor]]]:
        """A block for chunks of ``X``'s length, its ``y`` rows, and for each group the
        two factors and the rows their products go to. A ``scoring`` block (always
        reused) has one more row, for the ones the caller sets."""
        n, D = X.shape[0], self.n_features
        shape = (self.n_products + D + int(scoring), n)
        name = "scoring_block" if scoring else "block"
        block = self._scratch.take(name, shape, X) if reuse else X.new_empty(shape)
        Y = block[self.n_products : self.n_products + D]
        products = [
            (
                Y[start:end, None, :],
                Y[None, start:, :],
                block[row : row + (end - start) * (D - start)].view(end - start, D - start, n),
            )
            for start, end, row in self.groups
        ]
        return block, Y, products

    def weighted_log_prob(self, X: Tensor) -> Tensor:
        # Row-major (n, K), so that reductions over components run on contiguous memory.
        return torch.addmm(self.bias, self.coefficients, self._block(X)).T.contiguous()

    def column_log_prob(self, X: Tensor) -> Tensor:
        """(K, rows) log-probabilities for scoring: the block with a row of ones, times
        the coefficients with the bias as their last column (as the diag kernel's, which
        says what that saves); nothing is added after the product. Products that round
        their inputs (TF32, bfloat16) keep ``addmm``."""
        if not bias_may_enter_products(X.dtype, X.device):
            return self._log_prob(self._block(X, reuse=True))
        key = ("scoring", X.shape[0], X.dtype, X.device)
        block, Y, products = self._scratch.plan(key, lambda: self._views(X, True, True))
        # Rows of a block are as long as its chunk, so a longer chunk's block covers a
        # shorter one's row of ones with its products: set on every call (one row).
        block[-1].fill_(1.0)
        self._fill(X, Y, products)
        out = self._scratch.take("log_prob", (self.bias.shape[0], block.shape[1]), block)
        if self.onednn_log_prob:  # its fresh product is dropped at once (see _products)
            return out.copy_(product(self.scoring_coefficients, block, True))
        return torch.mm(self.scoring_coefficients, block, out=out)

    def _log_prob(self, block: Tensor) -> Tensor:
        """(K, rows) log-probabilities of a block (see :mod:`mixtorch.estep._products`)."""
        out = self._scratch.take("log_prob", (self.bias.shape[0], block.shape[1]), block)
        if self.onednn_log_prob:  # its fresh product is dropped at once (see _products)
            return torch.add(product(self.coefficients, block, True), self.bias, out=out)
        return torch.addmm(self.bias, self.coefficients, block, out=out)

    def __call__(self, X: Tensor, sample_weight: Tensor | None = None) -> ChunkSums:
        block = self._block(X, reuse=True)
        log_prob = self._log_prob(block)  # (K, rows)
        log_likelihood, responsibilities, entropy = self._normalise(log_prob, sample_weight)
        moments = product(block, responsibilities.T, self.onednn)  # (block rows, K)
        return ChunkSums(
            log_likelihood,
            responsibilities.sum(1),
            moments[self.n_products :],
            moments[: self.n_products],
            entropy,
        )

    def finish(self, first: Tensor, second: Tensor) -> tuple[Tensor, Tensor]:
        K, D = first.shape[1], self.n_features
        scatter = first.new_empty(K, D, D)
        for start, end, row in self.groups:
            piece = second[row : row + (end - start) * (D - start)]
            piece = piece.T.reshape(K, end - start, D - start)
            scatter[:, start:end, start:] = piece
            scatter[:, start:, start:end] = piece.mT
        return first.T, scatter


class DifferenceFullKernel(DifferenceKernel):
    """Full or tied covariances from explicit differences ``y - m_k`` (always accurate)."""

    def __init__(
        self, center: Tensor, means: Tensor, precision_factor: Tensor, bias: Tensor
    ) -> None:
        super().__init__(center, means, bias)
        self.precision_factor = precision_factor

    def _whiten(self, differences: Tensor) -> Tensor:
        return torch.matmul(differences, self.precision_factor)

    def _second_moment(self, weighted: Tensor, differences: Tensor) -> Tensor:
        return torch.bmm(weighted.mT, differences)  # (K, D, D)


def full_kernel(
    center: Tensor, means: Tensor, precision_factor: Tensor, bias: Tensor
) -> EStepKernel:
    """The fastest full/tied kernel that is accurate for these parameters.

    ``means`` are relative to ``center``; ``precision_factor`` is ``P`` with
    ``S^-1 = P P^T`` ((K, D, D), or (D, D) when tied); ``bias`` is
    ``log w_k - (D log 2 pi + log|S_k|) / 2``.

    Examples
    --------
    >>> import math
    >>> import torch
    >>> means = torch.tensor([[0.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    >>> factor = torch.eye(2, dtype=torch.float64).expand(2, 2, 2)  # unit covariances
    >>> log_weights = torch.log(torch.tensor([0.3, 0.7], dtype=torch.float64))
    >>> bias = log_weights - math.log(2 * math.pi)  # log|S_k| = 0, D = 2
    >>> kernel = full_kernel(torch.zeros(2, dtype=torch.float64), means, factor, bias)
    >>> type(kernel).__name__
    'QuadraticFullKernel'
    >>> X = torch.tensor([[1.0, 0.5], [2.0, 2.0]], dtype=torch.float64)
    >>> normal = torch.distributions.MultivariateNormal(means, torch.eye(2, dtype=torch.float64))
    >>> expected = log_weights + normal.log_prob(X[:, None])
    >>> torch.allclose(kernel.weighted_log_prob(X), expected)
    True
    >>> sums = kernel(X)  # chunk sums: log-likelihood and summed responsibilities
    >>> torch.allclose(sums.log_likelihood, torch.logsumexp(expected, 1).sum())
    True
    >>> sums.counts
    tensor([0.6785, 1.3215], dtype=torch.float64)

    Means 1000 standard deviations from the centre are too far for the float32 quadratic
    form:

    >>> far = full_kernel(torch.zeros(2), 1e3 * means.float(), factor.float(), bias.float())
    >>> type(far).__name__
    'DifferenceFullKernel'
    """
    K, D = means.shape
    whitened = torch.einsum("kd,kde->ke", means, precision_factor.expand(K, D, D))
    quadratic = D <= 4 * K and quadratic_form_is_accurate(whitened, QUADRATIC_FORM_TOLERANCE)
    kind = QuadraticFullKernel if quadratic else DifferenceFullKernel
    return kind(center, means, precision_factor, bias)

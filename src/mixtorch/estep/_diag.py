"""Diagonal and spherical covariance kernels: ``[y^2, y]`` times a coefficient matrix, or
explicit differences, and :func:`diag_kernel`, which picks between them (see
:mod:`mixtorch.estep`)."""

from __future__ import annotations

import torch
from torch import Tensor

from ._difference import DifferenceKernel
from ._kernel import ChunkSums, EStepKernel
from ._products import onednn_log_prob_products, onednn_products, product
from ._roundoff import bias_may_enter_products, quadratic_form_is_accurate

__all__ = ["DIAG_QUADRATIC_FORM_TOLERANCE", "DiagDifferenceKernel", "DiagKernel", "diag_kernel"]

#: The same bound for diagonal and spherical covariances. scikit-learn's float32 E-step uses
#: this quadratic form without shifting the data; measured on the same kind of data, it
#: was 1.5x less accurate than mixtorch's at every spread, so the bound is looser: at it
#: log-densities are within about 2e-3 nats and variances within 2e-4 relative.
DIAG_QUADRATIC_FORM_TOLERANCE = 2.0**-10


def diag_kernel(center: Tensor, means: Tensor, variances: Tensor, bias: Tensor) -> EStepKernel:
    """The diag/spherical kernel for these parameters (quadratic form when accurate).

    ``variances`` is (K, D); the other arguments are as for :func:`full_kernel`.

    Examples
    --------
    >>> import math
    >>> import torch
    >>> means = torch.tensor([[0.0, 0.0], [3.0, 1.0]], dtype=torch.float64)
    >>> variances = torch.tensor([[1.0, 4.0], [0.5, 2.0]], dtype=torch.float64)
    >>> log_weights = torch.log(torch.tensor([0.3, 0.7], dtype=torch.float64))
    >>> bias = log_weights - 0.5 * (2 * math.log(2 * math.pi) + variances.log().sum(1))
    >>> kernel = diag_kernel(torch.zeros(2, dtype=torch.float64), means, variances, bias)
    >>> type(kernel).__name__
    'DiagKernel'
    >>> X = torch.tensor([[1.0, 0.5], [2.0, 2.0]], dtype=torch.float64)
    >>> normal = torch.distributions.Normal(means, variances.sqrt())
    >>> expected = log_weights + normal.log_prob(X[:, None]).sum(-1)
    >>> torch.allclose(kernel.weighted_log_prob(X), expected)
    True
    """
    whitened = means / variances.sqrt()
    accurate = quadratic_form_is_accurate(whitened, DIAG_QUADRATIC_FORM_TOLERANCE)
    kind = DiagKernel if accurate else DiagDifferenceKernel
    return kind(center, means, variances, bias)


class DiagDifferenceKernel(DifferenceKernel):
    """Diagonal covariances from explicit differences ``y - m_k``; moments about the means."""

    def __init__(self, center: Tensor, means: Tensor, variances: Tensor, bias: Tensor) -> None:
        super().__init__(center, means, bias)
        self.scales = variances.rsqrt().unsqueeze(1)  # (K, 1, D)

    def _whiten(self, differences: Tensor) -> Tensor:
        return differences * self.scales

    def _second_moment(self, weighted: Tensor, differences: Tensor) -> Tensor:
        return (weighted * differences).sum(1)  # diagonals, (K, D)


class DiagKernel(EStepKernel):
    """Diagonal (and spherical) covariances: ``[y^2, y]`` times a (K, 2D) coefficient matrix.

    Moments are about the centre. Rounding grows with ``delta_k^2`` as for the full
    kernels' quadratic form (:mod:`mixtorch.estep`); the shift by the centre keeps
    ``delta_k`` small for most data.
    """

    def __init__(self, center: Tensor, means: Tensor, variances: Tensor, bias: Tensor) -> None:
        super().__init__(center, torch.zeros_like(means))
        precisions, means64 = 1.0 / variances.double(), means.double()
        coefficients = torch.cat([-0.5 * precisions, means64 * precisions], dim=1)
        self.coefficients = coefficients.to(means.dtype).contiguous()  # (K, 2D)
        offsets = (means64 * means64 * precisions).sum(1)
        self.bias = (bias.double() - 0.5 * offsets).to(means.dtype)
        # Scoring folds the bias into the product: a column of ones ends its block.
        self.scoring_coefficients = torch.cat([self.coefficients, self.bias[:, None]], 1)
        self.n_features = means.shape[1]
        self.scoring_row_elements = 2 * self.n_features + 1
        self.onednn = onednn_products(means.dtype, means.device)  # the moments' products
        self.onednn_log_prob = onednn_log_prob_products(means.dtype, means.device)

    def _block(self, X: Tensor, reuse: bool = False) -> Tensor:
        """(rows, 2D): ``y^2`` then ``y`` (in this thread's pass buffer when ``reuse``)."""
        D = self.n_features
        shape = (X.shape[0], 2 * D)
        block = self._scratch.take("block", shape, X) if reuse else X.new_empty(shape)
        Y = torch.sub(X, self.center, out=block[:, D:])
        torch.mul(Y, Y, out=block[:, :D])
        return block

    def weighted_log_prob(self, X: Tensor) -> Tensor:
        return torch.addmm(self.bias, self._block(X), self.coefficients.T)

    def column_log_prob(self, X: Tensor) -> Tensor:
        """(K, rows) log-probabilities for scoring: ``[y^2, y, 1]`` times the coefficients
        with the bias as their last column, one product and nothing added after it.
        Adding the bias to the product (``addmm``) first copies it over the whole output:
        on the Intel Xeon machine (one thread, (16, 16384) float32 per chunk) the product
        with the bias folded in took 676 against 796 us for shift, squares and ``addmm``.
        Products that round their inputs (TF32, bfloat16) keep ``addmm``.
        """
        if not bias_may_enter_products(X.dtype, X.device):
            return self._log_prob(self._block(X, reuse=True))
        block, Y, squares = self._scratch.plan(
            ("scoring", X.shape[0], X.dtype, X.device), lambda: self._scoring_views(X)
        )
        torch.sub(X, self.center, out=Y)
        torch.mul(Y, Y, out=squares)
        out = self._scratch.take("log_prob", (self.bias.shape[0], block.shape[0]), block)
        if self.onednn_log_prob:  # its fresh product is dropped at once (see _products)
            return out.copy_(product(self.scoring_coefficients, block.T, True))
        return torch.mm(self.scoring_coefficients, block.T, out=out)

    def _scoring_views(self, X: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """This thread's scoring block for chunks of ``X``'s length (its last column set
        to ones once), its ``y`` columns and its ``y^2`` columns."""
        D = self.n_features
        block = self._scratch.take("scoring_block", (X.shape[0], 2 * D + 1), X)
        block[:, 2 * D].fill_(1.0)
        return block, block[:, D : 2 * D], block[:, :D]

    def _log_prob(self, block: Tensor) -> Tensor:
        """Log-probabilities as (K, rows): the reductions over components then run across
        rows (vectorised), 25% faster than (rows, K). oneDNN's product where it applies
        (:mod:`mixtorch.estep._products`)."""
        out = self._scratch.take("log_prob", (self.bias.shape[0], block.shape[0]), block)
        if self.onednn_log_prob:  # its fresh product is dropped at once (see _products)
            return torch.add(product(self.coefficients, block.T, True), self.bias[:, None], out=out)
        return torch.addmm(self.bias[:, None], self.coefficients, block.T, out=out)

    def __call__(self, X: Tensor, sample_weight: Tensor | None = None) -> ChunkSums:
        D = self.n_features
        block = self._block(X, reuse=True)
        log_prob = self._log_prob(block)
        log_likelihood, responsibilities, entropy = self._normalise(log_prob, sample_weight)
        moments = product(responsibilities, block, self.onednn)  # (K, 2D)
        return ChunkSums(
            log_likelihood, responsibilities.sum(1), moments[:, D:], moments[:, :D], entropy
        )

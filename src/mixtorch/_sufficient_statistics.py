"""The additive sufficient statistics of a Gaussian mixture, as a value type.

:class:`SufficientStatistics` holds per-component counts, weighted sums and scatter about
a reference point, adds up over chunks, sums across processes and turns into parameters
(:meth:`~SufficientStatistics.m_step`, :meth:`~SufficientStatistics.moments`). The passes
over data that produce them are in :mod:`mixtorch.stats`, which re-exports this class.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .covariance import Covariance
from .distributed import all_reduce_tensors
from .mixture import Mixture

__all__ = ["ACCUMULATOR_DTYPE", "SufficientStatistics"]


ACCUMULATOR_DTYPE = torch.float64


@dataclass
class SufficientStatistics:
    """Sums over samples that determine the M-step.

    Add them over chunks (``+``), sum them across ranks (:meth:`all_reduce`), then turn
    them into parameters (:meth:`m_step`, or :meth:`moments` for variational updates):
    the sufficient statistics of EM for mixtures [1]_ [2]_.

    Attributes
    ----------
    counts : Tensor of shape (K,)
        Summed responsibilities (times sample weights).
    sums : Tensor of shape (K, D)
        ``sum_i r_ik (x_i - reference_k)``.
    scatter : Tensor of shape (K, D, D) or (K, D)
        ``sum_i r_ik (x_i - reference_k)(x_i - reference_k)^T`` (diagonals only for
        diag and spherical covariances).
    reference : Tensor of shape (K, D)
        The point about which moments are taken; identical for all added statistics.
    log_likelihood : Tensor, scalar
        Summed (weighted) log-likelihood of the samples under the model that produced the
        responsibilities (NaN-free; zero for hard-assignment statistics).
    n_samples : Tensor, scalar
        Summed sample weights.
    entropy : Tensor, scalar, optional
        ``-sum_ik r_ik log r_ik`` of the responsibilities (times sample weights), when
        the pass tracked it (the variational lower bound needs it); else None.

    See Also
    --------
    accumulate_statistics : The E-step pass that produces them.
    statistics_from_responsibilities : The same from given responsibilities.

    References
    ----------
    .. [1] A. P. Dempster, N. M. Laird and D. B. Rubin (1977), "Maximum likelihood from
       incomplete data via the EM algorithm", *JRSS B* 39(1).
    .. [2] T. F. Chan, G. H. Golub and R. J. LeVeque (1983), "Algorithms for computing the
       sample variance", *The American Statistician* 37(3) (merging moments of chunks).

    Examples
    --------
    >>> import torch
    >>> from mixtorch import FullCovariance, Mixture
    >>> from mixtorch.stats import accumulate_statistics
    >>> X = torch.randn(100, 2, dtype=torch.float64)
    >>> start = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[[1.0, 0.0], [0.0, 1.0]]],
    ...                                 dtype=torch.float64)
    >>> stats = accumulate_statistics(start, [X[:60], X[60:]])
    >>> stats.counts
    tensor([100.], dtype=torch.float64)
    >>> fitted = stats.m_step(FullCovariance, reg_covar=0.0, dtype=torch.float64)
    >>> torch.allclose(fitted.means[0], X.mean(0))
    True
    """

    counts: Tensor
    sums: Tensor
    scatter: Tensor
    reference: Tensor
    log_likelihood: Tensor
    n_samples: Tensor
    entropy: Tensor | None = None

    def __add__(self, other: SufficientStatistics) -> SufficientStatistics:
        entropy = None
        if self.entropy is not None and other.entropy is not None:
            entropy = self.entropy + other.entropy
        return SufficientStatistics(
            self.counts + other.counts,
            self.sums + other.sums,
            self.scatter + other.scatter,
            self.reference,
            self.log_likelihood + other.log_likelihood,
            self.n_samples + other.n_samples,
            entropy,
        )

    def all_reduce(self, group: Any = None) -> SufficientStatistics:
        """Sum over all ranks of ``torch.distributed`` (one collective); a no-op otherwise.

        Every rank must have taken its moments about the same :attr:`reference`.

        Parameters
        ----------
        group : torch.distributed.ProcessGroup, default=None
            The group to sum over; None is the default group.

        Returns
        -------
        SufficientStatistics
            The summed statistics (this rank's own when not distributed).

        See Also
        --------
        mixtorch.distributed.all_reduce_tensors : The collective.
        """
        fields = [self.counts, self.sums, self.scatter, self.log_likelihood, self.n_samples]
        if self.entropy is not None:
            fields.append(self.entropy)
        summed = all_reduce_tensors(fields, group)
        counts, sums, scatter, log_likelihood, n_samples = summed[:5]
        entropy = summed[5] if self.entropy is not None else None
        return SufficientStatistics(
            counts, sums, scatter, self.reference, log_likelihood, n_samples, entropy
        )

    def about(self, reference: Tensor) -> SufficientStatistics:
        """The same statistics with moments taken about ``reference`` instead.

        Exact in float64: with ``d = reference - self.reference``, the sums lose
        ``counts * d`` and the scatter ``s d^T + d s^T - counts d d^T`` (diagonals only
        for diag/spherical scatter).

        Parameters
        ----------
        reference : Tensor of shape (K, D)
            The new point per component.

        Returns
        -------
        SufficientStatistics
            Equal statistics about ``reference`` (counts, log-likelihood unchanged).

        See Also
        --------
        SufficientStatistics.moments
        """
        target = reference.to(ACCUMULATOR_DTYPE)
        step = target - self.reference.to(ACCUMULATOR_DTYPE)
        counts = self.counts[:, None]
        sums = self.sums - counts * step
        if self.scatter.ndim == 3:
            cross = self.sums[:, :, None] * step[:, None, :]
            scatter = (
                self.scatter
                - cross
                - cross.mT
                + counts[:, :, None] * step[:, :, None] * step[:, None, :]
            )
        else:
            scatter = self.scatter - 2.0 * self.sums * step + counts * step * step
        return SufficientStatistics(
            self.counts, sums, scatter, target, self.log_likelihood, self.n_samples, self.entropy
        )

    @property
    def mean_log_likelihood(self) -> float:
        """Average log-likelihood per (weighted) sample."""
        return float(self.log_likelihood / self.n_samples)

    def moments(self, dtype: torch.dtype) -> tuple[Tensor, Tensor, Tensor]:
        """Counts, means and scatter about the means, in float64.

        The algebra of every M-step (maximum likelihood and variational). ``10 * eps`` of
        ``dtype`` is added to every count, as scikit-learn does, so an empty component gives
        finite numbers.

        Parameters
        ----------
        dtype : torch.dtype
            The model's dtype, whose ``eps`` guards the counts.

        Returns
        -------
        counts : Tensor of shape (K,)
            Guarded summed responsibilities.
        means : Tensor of shape (K, D)
            Weighted means.
        centred : Tensor of shape (K, D, D), or (K, D) (diagonals) for diag/spherical
            ``sum_i r_ik (x_i - mean_k)(x_i - mean_k)^T``.

        See Also
        --------
        SufficientStatistics.m_step
        """
        counts = self.counts.to(ACCUMULATOR_DTYPE) + 10 * torch.finfo(dtype).eps
        step = self.sums / counts[:, None]
        if self.scatter.ndim == 3:
            centred = self.scatter - counts[:, None, None] * step[:, :, None] * step[:, None, :]
        else:
            centred = (self.scatter - counts[:, None] * step * step).clamp_min(0.0)
        return counts, self.reference.to(ACCUMULATOR_DTYPE) + step, centred

    def m_step(
        self, covariance_type: type[Covariance], reg_covar: float, dtype: torch.dtype
    ) -> Mixture:
        """Maximum-likelihood weights, means and covariances from these statistics.

        Callers detect and re-seed empty components (see :meth:`moments`).

        Parameters
        ----------
        covariance_type : type of Covariance
            The kind of covariance to estimate (:func:`mixtorch.covariance.covariance_class`).
        reg_covar : float
            Added to every variance.
        dtype : torch.dtype
            The dtype of the returned mixture.

        Returns
        -------
        Mixture
            The M-step's mixture.

        Raises
        ------
        mixtorch.CovarianceError
            If a covariance cannot be factored even with ``reg_covar``.

        See Also
        --------
        SufficientStatistics.moments, mixtorch.covariance.Covariance.from_scatter
        """
        counts, means, centred = self.moments(dtype)
        covariance = covariance_type.from_scatter(centred.to(dtype), counts.to(dtype), reg_covar)
        weights = (counts / counts.sum()).to(dtype)
        return Mixture(weights, means.to(dtype), covariance)

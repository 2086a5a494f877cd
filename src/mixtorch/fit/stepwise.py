"""Stepwise (online) EM on unbounded streams, as a function on values
(``GaussianMixture.partial_fit`` calls it).

Cappé & Moulines (2009); Liang & Klein (2009). The model keeps running *per-sample*
sufficient statistics about a fixed reference point (the mixture centre when the running
statistics start), so statistics from different batches can be blended:

    s <- (1 - eta_t) s + eta_t * stats(batch) / batch_size,   eta_t = (t + 2) ** -alpha

for the t-th batch after the first (t = 0, 1, ...), with ``alpha = step_size_decay`` in
(0.5, 1]; the first batch sets ``s`` outright. An M-step follows every batch. For alpha in
that range the steps satisfy the Robbins-Monro conditions (sum eta = inf, sum eta^2 < inf),
so on stationary data the parameters approach the batch EM fixed point; smaller alpha
forgets the start faster and follows drift better, at the price of more noise.

The running state (:class:`StepwiseState`: the step counter, the reference point and the
running statistics) is a value object that converts to tensors plus JSON, so a saved model
continues where it stopped.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._chunks import chunk_list
from ..mixture import Mixture
from ..stats import SufficientStatistics, accumulate_statistics
from .em import EMTrace, reseed_empty_components

__all__ = ["StepwiseState", "stepwise_update"]

_STATISTICS = ("counts", "sums", "scatter", "reference", "log_likelihood", "n_samples")


@dataclass(frozen=True)
class StepwiseState:
    """Where stepwise EM stands.

    Attributes
    ----------
    step : int
        Batches blended in after the first (``t`` of the module notes).
    statistics : SufficientStatistics
        Running per-sample statistics about ``statistics.reference`` (K, D).

    See Also
    --------
    stepwise_update : Produces the next state.
    mixtorch.GaussianMixture.partial_fit : Keeps one between calls.

    References
    ----------
    .. [1] O. Cappé and E. Moulines (2009), "On-line expectation-maximization algorithm
       for latent data models", *JRSS B* 71(3).
    .. [2] P. Liang and D. Klein (2009), "Online EM for unsupervised models", *NAACL*.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.stepwise import StepwiseState
    >>> from mixtorch.stats import accumulate_statistics
    >>> start = Mixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.float64)
    >>> state = StepwiseState(0, accumulate_statistics(start, [torch.ones(4, 1)]))
    >>> tensors, meta = state.to_tensors()
    >>> meta, StepwiseState.from_tensors(tensors, meta).statistics.counts
    ({'step': 0}, tensor([4.], dtype=torch.float64))
    """

    step: int
    statistics: SufficientStatistics

    def to_tensors(self) -> tuple[dict[str, Tensor], dict[str, Any]]:
        """The state as named tensors plus a JSON-able dict (for model files).

        Returns
        -------
        tensors : dict of str to Tensor
            The running statistics' fields.
        meta : dict
            ``{"step": step}``.

        See Also
        --------
        StepwiseState.from_tensors : The inverse.
        """
        tensors = {name: getattr(self.statistics, name) for name in _STATISTICS}
        return tensors, {"step": int(self.step)}

    @classmethod
    def from_tensors(
        cls, tensors: dict[str, Tensor], meta: dict[str, Any], device: Any = None
    ) -> StepwiseState:
        """Inverse of :meth:`to_tensors` (tensors moved to ``device`` if given).

        Parameters
        ----------
        tensors : dict of str to Tensor
            As :meth:`to_tensors` returns.
        meta : dict
            As :meth:`to_tensors` returns.
        device : torch.device, optional
            Where the tensors go; they stay where they are by default.

        Returns
        -------
        StepwiseState
            The restored state.

        Raises
        ------
        ValueError
            If a statistic is missing or the step is not a non-negative integer.

        See Also
        --------
        StepwiseState.to_tensors : What this reads back.
        """
        missing = [name for name in _STATISTICS if name not in tensors]
        step = meta.get("step")
        if missing or not isinstance(step, int) or isinstance(step, bool) or step < 0:
            raise ValueError(f"incomplete stepwise state (missing {missing}, step {step!r}).")
        values = {name: tensors[name].to(device) for name in _STATISTICS}
        return cls(step, SufficientStatistics(**values))


def stepwise_update(
    mixture: Mixture,
    X: Tensor,
    state: StepwiseState | None,
    *,
    decay: float,
    reg_covar: float,
    rows: int,
    statistics: Callable[[Mixture, Iterable], SufficientStatistics] = accumulate_statistics,
) -> tuple[Mixture, StepwiseState, EMTrace]:
    """One stepwise-EM update of ``mixture`` from the batch ``X`` (see module notes).

    Parameters
    ----------
    mixture : Mixture
        The current model (E-step of the batch).
    X : Tensor of shape (n_samples, n_features)
        The batch.
    state : StepwiseState, optional
        None starts the running statistics from this batch, about ``mixture``'s centre.
    decay : float
        ``step_size_decay`` in (0.5, 1]: the batch's statistics get weight
        ``(step + 2) ** -decay``.
    reg_covar : float
        Added to the diagonal of every covariance.
    rows : int
        Rows per chunk.
    statistics : callable, optional
        The E-step pass, as for :func:`~mixtorch.fit.em.fit_em`:
        :func:`~mixtorch.fit.missing.missing_statistics` for batches with missing entries.

    Returns
    -------
    mixture, state, trace
        The updated model, the new state and a one-entry trace (mean log-likelihood of the
        running statistics, ``n_iter`` = batches seen).

    See Also
    --------
    StepwiseState : The running state.
    mixtorch.fit.em.fit_em : Batch EM over all the data.
    mixtorch.GaussianMixture.partial_fit : The estimator's entry point.

    References
    ----------
    .. [1] O. Cappé and E. Moulines (2009), "On-line expectation-maximization algorithm
       for latent data models", *JRSS B* 71(3).
    .. [2] P. Liang and D. Klein (2009), "Online EM for unsupervised models", *NAACL*.

    Examples
    --------
    With ``decay=1`` the step sizes are ``1/(t + 2)``: the running statistics are the
    plain average of the batches, and one component's mean is the mean of all rows:

    >>> import torch
    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.stepwise import stepwise_update
    >>> mixture = Mixture.from_parameters([1.0], [[0.0]], [[[1.0]]], dtype=torch.float64)
    >>> batches = torch.tensor([[1.0], [2.0], [3.0], [4.0], [5.0], [6.0]]).split(2)
    >>> state = None
    >>> for batch in batches:
    ...     mixture, state, trace = stepwise_update(
    ...         mixture, batch, state, decay=1.0, reg_covar=0.0, rows=2)
    >>> state.step, mixture.means
    (2, tensor([[3.5000]], dtype=torch.float64))
    """
    covariance = type(mixture.covariance)
    if state is None:
        reference = mixture.center.expand(mixture.n_components, -1)
        running = _batch_statistics(mixture, X, reference, rows, statistics)
        step = 0
    else:
        batch = _batch_statistics(mixture, X, state.statistics.reference, rows, statistics)
        running = _blend(state.statistics, batch, float(state.step + 2) ** -float(decay))
        step = state.step + 1
    updated = running.m_step(covariance, reg_covar, mixture.dtype)
    updated, _ = reseed_empty_components(updated, running, covariance)
    trace = EMTrace(lower_bounds=[running.mean_log_likelihood], n_iter=step + 1)
    return updated, StepwiseState(step, running), trace


def _batch_statistics(
    mixture: Mixture,
    X: Tensor,
    reference: Tensor,
    rows: int,
    statistics: Callable[[Mixture, Iterable], SufficientStatistics],
) -> Any:
    """E-step statistics of one batch about a fixed ``reference``, per sample; across
    ``torch.distributed`` ranks, of the union of the ranks' batches (summed in one
    collective, so every rank takes the same step)."""
    total = statistics(mixture, chunk_list(X, rows)).all_reduce().about(reference)
    n = total.n_samples
    return SufficientStatistics(
        total.counts / n,
        total.sums / n,
        total.scatter / n,
        reference,
        total.log_likelihood / n,
        torch.ones_like(n),
    )


def _blend(
    running: SufficientStatistics, batch: SufficientStatistics, eta: float
) -> SufficientStatistics:
    keep = 1.0 - eta
    return SufficientStatistics(
        keep * running.counts + eta * batch.counts,
        keep * running.sums + eta * batch.sums,
        keep * running.scatter + eta * batch.scatter,
        running.reference,
        keep * running.log_likelihood + eta * batch.log_likelihood,
        running.n_samples,
    )

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

A weighted batch (``sample_weight``) enters through its weighted statistics divided by its
summed weight, so only the weights within a batch matter, not their scale from batch to
batch; across ranks the union's statistics and summed weight are summed alike.
:func:`union_counts` and :func:`check_same_model` are the bookkeeping of such a union.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor

from .._chunks import chunk_list
from ..distributed import all_reduce_sum, check_same_configuration
from ..mixture import Mixture
from ..stats import SufficientStatistics, accumulate_statistics
from .em import EMTrace, reseed_empty_components

__all__ = ["StepwiseState", "check_same_model", "stepwise_update", "union_counts"]

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
    sample_weight: Tensor | None = None,
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
    sample_weight : Tensor of shape (n_samples,), optional
        Non-negative weights of the batch's rows (the pass gets ``(chunk, weight)``
        pairs); the batch's statistics are divided by their sum.

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
    chunks: list[Any] = chunk_list(X, rows)
    if sample_weight is not None and chunks:  # (a batch of no rows has no chunks)
        chunks = list(zip(chunks, sample_weight.split(rows), strict=True))
    if state is None:
        reference = mixture.center.expand(mixture.n_components, -1)
        running = _batch_statistics(mixture, chunks, reference, statistics)
        step = 0
    else:
        batch = _batch_statistics(mixture, chunks, state.statistics.reference, statistics)
        running = _blend(state.statistics, batch, float(state.step + 2) ** -float(decay))
        step = state.step + 1
    updated = running.m_step(covariance, reg_covar, mixture.dtype)
    updated, _ = reseed_empty_components(updated, running, covariance)
    trace = EMTrace(lower_bounds=[running.mean_log_likelihood], n_iter=step + 1)
    return updated, StepwiseState(step, running), trace


def _batch_statistics(
    mixture: Mixture,
    chunks: list[Any],
    reference: Tensor,
    statistics: Callable[[Mixture, Iterable], SufficientStatistics],
) -> Any:
    """E-step statistics of one batch's chunks about a fixed ``reference``, per sample
    (per unit of weight); across ``torch.distributed`` ranks, of the union of the ranks'
    batches (summed in one collective, so every rank takes the same step)."""
    total = statistics(mixture, chunks).all_reduce().about(reference)
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


def union_counts(X: Tensor, weighted: bool, missing: bool) -> tuple[int, bool, Tensor | None]:
    """The union of the ranks' batches, counted in one ``all_reduce`` (this batch's own
    counts outside a process group): its rows, whether any rank's batch is weighted (a
    rank without weights then weighs its rows 1), and with missing values each column's
    count of observed entries (None without).

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        This rank's batch (its rows of positive weight, for a weighted batch).
    weighted : bool
        Whether this rank's batch has weights.
    missing : bool
        Whether NaN marks missing entries.

    Returns
    -------
    n_rows : int
        Rows of the union of the ranks' batches.
    weighted : bool
        Whether any rank's batch is weighted.
    observed : Tensor of shape (n_features,) or None
        With ``missing``, the union's count of observed entries per column (float64);
        None without.

    See Also
    --------
    check_same_model : The other check of a distributed step.
    mixtorch.GaussianMixture.partial_fit : The estimator's entry point.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.fit.stepwise import union_counts
    >>> union_counts(torch.tensor([[1.0, float("nan")], [2.0, 3.0]]), False, True)
    (2, False, tensor([2., 1.], dtype=torch.float64))
    """
    counts = torch.tensor([X.shape[0], float(weighted)], dtype=torch.float64, device=X.device)
    if missing:
        counts = torch.cat([counts, (~torch.isnan(X)).sum(0).to(counts)])
    total = all_reduce_sum(counts)
    return int(total[0]), bool(total[1] > 0), (total[2:] if missing else None)


def check_same_model(mixture: Mixture, step: int) -> None:
    """A ValueError on every rank unless all ranks hold the same ``mixture`` (compared
    to the last bit, by a digest of its parameters) at the same ``step``: ranks fitted
    apart, or started from different ``*_init`` values, would otherwise each take their
    own step.

    Parameters
    ----------
    mixture : Mixture
        This rank's model before the step.
    step : int
        This rank's count of steps taken (``StepwiseState.step``).

    Raises
    ------
    ValueError
        On every rank, if any two ranks differ in ``mixture`` or ``step``.

    See Also
    --------
    union_counts : The union's rows, counted before the step.
    mixtorch.distributed.check_same_configuration : The comparison across ranks used.

    Examples
    --------
    Outside a process group there is one rank, which always agrees with itself:

    >>> from mixtorch import Mixture
    >>> from mixtorch.fit.stepwise import check_same_model
    >>> model = Mixture.from_parameters([1.0], [[0.0, 0.0]], [[1.0, 1.0]], "diag")
    >>> check_same_model(model, step=3) is None
    True
    """
    digest = hashlib.sha256()
    for tensor in (mixture.weights, mixture.means, mixture.covariance.covariances):
        digest.update(tensor.detach().to("cpu", torch.float64).contiguous().numpy().tobytes())
    try:
        check_same_configuration({"model": digest.hexdigest(), "step": step})
    except ValueError:
        raise ValueError(
            "partial_fit must step the same model on every rank, but the ranks hold different "
            "ones (fitted apart, or given different weights_init/means_init/precisions_init); "
            "start every rank from the same model, e.g. one fit(X) inside the process group."
        ) from None

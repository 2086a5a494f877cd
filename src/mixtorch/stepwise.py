"""Stepwise (online) EM for ``GaussianMixture.partial_fit`` on unbounded streams.

Cappé & Moulines (2009); Liang & Klein (2009). The model keeps running *per-sample*
sufficient statistics about a fixed reference point (the mixture centre when the running
statistics start), so statistics from different batches can be blended:

    s <- (1 - eta_t) s + eta_t * stats(batch) / batch_size,   eta_t = (t + 2) ** -alpha

for the t-th batch after the first (t = 0, 1, ...), with ``alpha = step_size_decay`` in
(0.5, 1]; the first batch sets ``s`` outright. An M-step follows every batch. For alpha in
that range the steps satisfy the Robbins-Monro conditions (sum eta = inf, sum eta^2 < inf),
so on stationary data the parameters approach the batch EM fixed point; smaller alpha
forgets the start faster and follows drift better, at the price of more noise.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._chunks import chunk_list, chunk_rows
from ._validation import check_random_generator, resolve_dtype, to_tensor
from .covariance import covariance_class
from .fit.em import EMTrace, reseed_empty_components
from .mixture import Mixture
from .stats import SufficientStatistics, accumulate_statistics

__all__ = ["partial_fit"]


def partial_fit(estimator: Any, X: Any) -> Any:
    """One stepwise-EM update of ``estimator`` from the batch ``X`` (see module notes).

    The first call (on an unfitted estimator) initialises from the batch as ``fit`` would
    (``init_params``, ``*_init``), which needs at least ``n_components`` rows. On a model
    fitted by ``fit``, the running statistics restart from the fitted parameters.
    """
    estimator._check_parameters()
    decay = estimator.step_size_decay
    if not (isinstance(decay, (int, float)) and 0.5 < float(decay) <= 1.0):
        raise ValueError(f"step_size_decay must be in (0.5, 1], got {decay!r}.")
    fitted = hasattr(estimator, "mixture_")
    dtype = estimator.mixture_.dtype if fitted else resolve_dtype(estimator.dtype, X)
    X, kind = to_tensor(estimator, X, reset=not fitted, dtype=dtype, device=estimator.device)
    rows = chunk_rows(estimator.n_components, X.shape[1], estimator.chunk_size)
    covariance_type = covariance_class(estimator.covariance_type)
    state: dict[str, Any] | None = getattr(estimator, "online_state_", None)
    if not fitted:
        if X.shape[0] < max(2, estimator.n_components):
            raise ValueError(
                f"The first partial_fit batch needs at least max(2, n_components) = "
                f"{max(2, estimator.n_components)} rows, got {X.shape[0]}."
            )
        generator = check_random_generator(estimator.random_state, X.device)
        given = estimator._initial_parameters(X.shape[1], X)
        mixture = estimator._initialise(X, generator, rows, given)
    elif estimator.mixture_.device != X.device:
        mixture = estimator.mixture_.to(X.device, dtype)
    else:
        mixture = estimator.mixture_  # same dtype by construction: no re-factoring
    if state is None or state["mixture"] is not estimator.__dict__.get("mixture_"):
        state = {
            "step": 0,
            "reference": mixture.center.expand(mixture.n_components, -1),
            "statistics": None,
        }
    batch = _batch_statistics(mixture, X, state["reference"], rows)
    eta = 1.0 if state["statistics"] is None else float(state["step"] + 2) ** -float(decay)
    state["statistics"] = _blend(state["statistics"], batch, eta)
    updated = state["statistics"].m_step(covariance_type, estimator.reg_covar, dtype)
    updated, _ = reseed_empty_components(updated, state["statistics"], covariance_type)
    state["step"] += 1 if eta < 1.0 else 0
    trace = EMTrace(
        lower_bounds=[state["statistics"].mean_log_likelihood], n_iter=int(state["step"]) + 1
    )
    estimator._store(updated, trace, kind)
    state["mixture"] = estimator.mixture_
    estimator.online_state_ = state
    return estimator


def _batch_statistics(mixture: Mixture, X: Tensor, reference: Tensor, rows: int) -> Any:
    """E-step statistics of one batch about a fixed ``reference``, per sample."""
    total = accumulate_statistics(mixture, chunk_list(X, rows)).about(reference)
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
    running: SufficientStatistics | None, batch: SufficientStatistics, eta: float
) -> SufficientStatistics:
    if running is None:
        return batch
    keep = 1.0 - eta
    return SufficientStatistics(
        keep * running.counts + eta * batch.counts,
        keep * running.sums + eta * batch.sums,
        keep * running.scatter + eta * batch.scatter,
        running.reference,
        keep * running.log_likelihood + eta * batch.log_likelihood,
        running.n_samples,
    )

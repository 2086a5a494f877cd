"""Maximum likelihood by gradient descent, as a pure function on tensors.

The mixture is held by a :class:`~mixtorch.nn.GaussianMixtureModule` (unconstrained
parameters: softmax logits, log scales, Cholesky factors with a log diagonal) and the
mean negative log-likelihood per sample is minimised with any ``torch.optim`` optimiser,
full batch or in mini-batches. Gradients are accumulated over row chunks, so memory is
bounded by the chunk size whatever the batch size.

Stopping rule (:func:`~mixtorch.fit.gradient_trace.has_converged`): the epoch NLL per
sample is averaged over windows of ``patience`` epochs; the run has converged when the
NLL is stable within ``tol`` from epoch to epoch over the last window, no step was undone
recently, and the decrease still to come, extrapolated geometrically from the last two
window drops, is below ``tol``. So ``tol`` bounds the estimated distance of the NLL per
sample from its limit, the quantity scikit-learn's ``tol`` refers to; unlike a relative
change it does not depend on the units of the data. A per-epoch change test is not
enough for stochastic or slow optimisers: plain SGD changes the NLL by less than 1e-3 per
epoch long before it is within 1e-3 of the optimum. With mini-batches the epoch NLL is
the average of the batch losses, each taken before its own step; the window means damp
their noise, and a run whose NLL keeps moving by more than ``tol`` between epochs (noise
or oscillation) never counts as converged. No gradient-norm test is used: its scale
depends on the parametrisation and on the units of the data.

A run that ends with a non-finite NLL, or more than ``max(1, 0.1 |NLL_0|)`` nats per
sample above its starting NLL ``NLL_0``, has diverged: :class:`~mixtorch.exceptions.
DivergenceError` is raised (a ``ValueError``) asking for a lower learning rate, rather
than returning a model that is worse than its start.

A step that makes the loss or a parameter non-finite is undone: the parameters go back
to the last finite values, the learning rate is halved and the optimiser's state is
cleared. So a poor start (scales far too large or too small) slows the fit down but never
produces NaN.
"""

from __future__ import annotations

import math
import numbers
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import Tensor

from .._chunks import chunk_rows
from .._validation import normalised_sample_weight
from ..covariance import CovarianceError
from ..exceptions import DivergenceError
from ..mixture import Mixture
from ..nn import GaussianMixtureModule
from .gradient_trace import GradientTrace, check_divergence, has_converged

__all__ = [
    "OPTIMIZERS",
    "GradientTrace",
    "check_gradient_options",
    "fit_gradient",
    "make_optimizer",
]

OptimizerSpec = str | type[torch.optim.Optimizer] | Callable[..., torch.optim.Optimizer]

#: Optimiser names accepted by :func:`fit_gradient`.
OPTIMIZERS: dict[str, type[torch.optim.Optimizer]] = {
    "adam": torch.optim.Adam,
    "adamw": torch.optim.AdamW,
    "sgd": torch.optim.SGD,
    "rmsprop": torch.optim.RMSprop,
    "adagrad": torch.optim.Adagrad,
    "lbfgs": torch.optim.LBFGS,
}

#: Models with at most this many free parameters get a snapshot per iteration.
_SNAPSHOT_LIMIT = 64


def fit_gradient(
    X: Tensor,
    initial: Mixture,
    *,
    optimizer: OptimizerSpec = "adam",
    learning_rate: float = 0.05,
    batch_size: int | None = None,
    max_iter: int = 1000,
    tol: float = 1e-6,
    patience: int = 10,
    generator: torch.Generator | None = None,
    reg_covar: float = 1e-6,
    sample_weight: Tensor | None = None,
    chunk_size: int | None = None,
    record_parameters: bool | None = None,
    callback: Callable[[int, float], None] | None = None,
) -> tuple[Mixture, GradientTrace]:
    """Minimise the mean negative log-likelihood from ``initial``.

    Parameters
    ----------
    X : Tensor of shape (n_samples, n_features)
        The data, in the dtype and on the device of the computation.
    initial : Mixture
        Starting parameters; its covariance type is kept.
    optimizer : str, optimiser class or callable, default='adam'
        A name from :data:`OPTIMIZERS`, a ``torch.optim.Optimizer`` subclass, or a
        callable ``(params, lr=learning_rate) -> optimizer``.
    learning_rate : float, default=0.05
    batch_size : int, optional
        Rows per step; ``None`` is full batch (one step per epoch).
    max_iter : int, default=1000
        Maximum number of epochs.
    tol : float, default=1e-6
        Convergence threshold on the estimated distance of the NLL per sample from its
        limit (see the module notes).
    patience : int, default=10
        Window length in epochs of the stopping rule; a run takes at least
        ``3 * patience`` epochs to converge.
    generator : torch.Generator, optional
        Shuffles the rows for mini-batches (on ``X``'s device).
    reg_covar : float, default=1e-6
        Added to every covariance diagonal during and after the fit.
    sample_weight : Tensor of shape (n_samples,), optional
        Non-negative weights; the loss is the weighted mean NLL.
    chunk_size : int, optional
        Rows per forward/backward chunk (memory bound).
    record_parameters : bool, optional
        Snapshot parameters every epoch; by default only for models with at most 64
        free parameters.
    callback : callable, optional
        Called as ``callback(epoch, nll)`` after every epoch.

    Returns
    -------
    mixture : Mixture
    trace : GradientTrace
        ``converged`` is False when ``max_iter`` epochs ran out first; callers warn.

    Raises
    ------
    DivergenceError
        When the run diverged (see the module notes).
    """
    _check_arguments(X, initial, learning_rate, batch_size, max_iter, tol, patience)
    started = time.perf_counter()
    module = GaussianMixtureModule.from_mixture(initial.to(X.device, X.dtype), reg_covar=reg_covar)
    parameters = [p for p in module.parameters() if p.requires_grad]
    optim = make_optimizer(optimizer, parameters, learning_rate)
    weights = normalised_sample_weight(sample_weight, X)
    rows = chunk_rows(initial.n_components, initial.n_features, chunk_size)
    batch = X.shape[0] if batch_size is None else min(int(batch_size), X.shape[0])
    record = (
        initial.n_parameters() <= _SNAPSHOT_LIMIT
        if record_parameters is None
        else bool(record_parameters)
    )

    trace = GradientTrace()
    stepper = _Stepper(module, optim, rows, trace)
    start_nll = _full_nll(module, X, weights, rows) if max_iter > 0 else math.nan
    for epoch in range(1, max_iter + 1):
        if record:
            trace.parameters.append(_snapshot(module, trace))
        rejected_before = trace.n_rejected
        nll = stepper.epoch(X, weights, batch, generator)
        trace.iterations.append(epoch)
        trace.nll.append(nll)
        trace.rejected.append(trace.n_rejected - rejected_before)
        trace.n_iter = epoch
        if callback is not None:
            callback(epoch, nll)
        if has_converged(trace, int(patience), tol):
            trace.converged = True
            break
    trace.final_nll = _full_nll(module, X, weights, rows)
    trace.seconds = time.perf_counter() - started
    check_divergence(trace, start_nll)
    return _mixture_of(module, trace), trace


def make_optimizer(
    spec: OptimizerSpec, parameters: Iterable[Tensor], learning_rate: float
) -> torch.optim.Optimizer:
    """Build an optimiser from a name, an optimiser class or a factory callable."""
    params = list(parameters)
    if isinstance(spec, str):
        key = spec.lower()
        if key not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {spec!r}.")
        factory: Callable[..., torch.optim.Optimizer] = OPTIMIZERS[key]
        return factory(params, lr=learning_rate)
    if callable(spec):
        build: Callable[..., Any] = spec
        built = build(params, lr=learning_rate)
        if not isinstance(built, torch.optim.Optimizer):
            raise TypeError(
                f"optimizer must build a torch.optim.Optimizer, it built {type(built).__name__}."
            )
        return built
    raise TypeError(
        "optimizer must be a name, a torch.optim.Optimizer class or a callable, "
        f"got {type(spec).__name__}."
    )


# -- one epoch --------------------------------------------------------------------------
class _Stepper:
    """Optimiser steps with the non-finite guard described in the module notes."""

    #: Give up when repeated rejections have shrunk the learning rate this much.
    min_lr_factor = 1e-10

    def __init__(
        self,
        module: GaussianMixtureModule,
        optim: torch.optim.Optimizer,
        rows: int,
        trace: GradientTrace,
    ) -> None:
        self.module = module
        self.optim = optim
        self.parameters = [p for p in module.parameters() if p.requires_grad]
        self.rows = rows
        self.trace = trace
        self.last_good: list[Tensor] | None = None
        self.initial_lr = [float(group["lr"]) for group in optim.param_groups]

    def epoch(self, X: Tensor, weights: Tensor, batch: int, generator: Any) -> float:
        """One pass over the data; returns the weighted mean of the batch losses."""
        n_samples = X.shape[0]
        order = None
        if batch < n_samples:
            order = torch.randperm(n_samples, generator=generator, device=X.device)
        total = 0.0
        for start in range(0, n_samples, batch):
            index = None if order is None else order[start : start + batch]
            rows_x = X if index is None else X[index]
            rows_w = weights if index is None else weights[index]
            mass = float(rows_w.sum())
            if mass > 0:
                total += self.step(rows_x, rows_w / mass) * mass
        return total

    def step(self, X: Tensor, weights: Tensor) -> float:
        """One step on a batch whose weights sum to one; returns the loss before it."""
        saved = [p.detach().clone() for p in self.parameters]
        first: list[tuple[float, bool]] = []

        def closure() -> float:
            self.optim.zero_grad()
            value, gradient_finite = _accumulate_gradient(self.module, X, weights, self.rows)
            if not first:
                first.append((value, gradient_finite))
            return value if gradient_finite else math.inf

        self.optim.step(closure)
        loss, gradient_finite = first[0]
        parameters_finite = self._valid_parameters()
        if math.isfinite(loss) and gradient_finite and parameters_finite:
            self.last_good = saved
            return loss
        self._reject(saved if math.isfinite(loss) else self.last_good)
        return loss if math.isfinite(loss) else _full_nll(self.module, X, weights, self.rows)

    def _valid_parameters(self) -> bool:
        """Finite parameters whose covariances (exp of log scales) are finite too."""
        with torch.no_grad():
            checks = [torch.isfinite(p).all() for p in self.parameters]
            checks.append(torch.isfinite(self.module.covariances()).all())
            return bool(torch.stack(checks).all())  # one device sync per step

    def _reject(self, restore: list[Tensor] | None) -> None:
        if restore is None:
            raise FloatingPointError(
                "The negative log-likelihood is not finite at the starting parameters; "
                "scale the data or start from another initialisation."
            )
        self.trace.n_rejected += 1
        with torch.no_grad():
            for parameter, value in zip(self.parameters, restore, strict=True):
                parameter.copy_(value)
        for group, initial in zip(self.optim.param_groups, self.initial_lr, strict=True):
            group["lr"] = group["lr"] * 0.5
            if group["lr"] < initial * self.min_lr_factor:
                raise DivergenceError(
                    "Gradient steps keep producing non-finite values even with a tiny "
                    "learning rate; scale the data, lower learning_rate or increase reg_covar."
                )
        self.optim.state.clear()


def _accumulate_gradient(
    module: GaussianMixtureModule, X: Tensor, weights: Tensor, rows: int
) -> tuple[float, bool]:
    """Backpropagate sum_i w_i * NLL(x_i) chunk by chunk.

    Returns its value and whether every gradient is finite; non-finite gradients are
    zeroed so that an optimiser never stores NaN in its state.
    """
    total = 0.0
    for start in range(0, X.shape[0], rows):
        log_prob = module.log_prob(X[start : start + rows])
        chunk_loss = -(log_prob * weights[start : start + rows]).sum()
        chunk_loss.backward()
        total += float(chunk_loss.detach())
    finite = True
    for parameter in module.parameters():
        if parameter.grad is not None and not bool(torch.isfinite(parameter.grad).all()):
            parameter.grad.zero_()
            finite = False
    return total, finite


def _full_nll(module: GaussianMixtureModule, X: Tensor, weights: Tensor, rows: int) -> float:
    """sum_i w_i * NLL(x_i) with weights summing to one, without gradients."""
    total = 0.0
    scale = float(weights.sum())
    with torch.no_grad():
        for start in range(0, X.shape[0], rows):
            log_prob = module.log_prob(X[start : start + rows]).to(torch.float64)
            total -= float((log_prob * weights[start : start + rows].to(torch.float64)).sum())
    return total / scale


# -- helpers ----------------------------------------------------------------------------
def _mixture_of(module: GaussianMixtureModule, trace: GradientTrace) -> Mixture:
    """The module's mixture; a covariance that no longer factors (finite parameters of
    absurd scale after huge steps) means the run diverged."""
    try:
        return module.to_mixture()
    except CovarianceError as error:
        raise DivergenceError(
            f"Gradient descent diverged after {trace.n_iter} epochs: {error.args[0].split('. ')[0]}"
            ". Lower learning_rate (or use optimizer='adam')."
        ) from error


def _snapshot(module: GaussianMixtureModule, trace: GradientTrace) -> dict[str, Tensor]:
    mixture = _mixture_of(module, trace)
    return {
        "weights": mixture.weights.to("cpu", torch.float64),
        "means": mixture.means.to("cpu", torch.float64),
        "covariances": mixture.covariance.covariances.to("cpu", torch.float64),
    }


def _check_arguments(
    X: Tensor,
    initial: Mixture,
    learning_rate: float,
    batch_size: int | None,
    max_iter: int,
    tol: float,
    patience: int,
) -> None:
    if X.ndim != 2 or X.shape[1] != initial.n_features:
        raise ValueError(
            f"X must have shape (n_samples, {initial.n_features}), got {tuple(X.shape)}."
        )
    if X.shape[0] < 1 or not bool(torch.isfinite(X).all()):
        raise ValueError("X must have at least one row and contain only finite values.")
    if not (isinstance(learning_rate, int | float) and math.isfinite(learning_rate)):
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}.")
    if learning_rate <= 0:
        raise ValueError(f"learning_rate must be a positive number, got {learning_rate!r}.")
    if batch_size is not None and (isinstance(batch_size, bool) or int(batch_size) < 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch_size!r}.")
    if int(max_iter) < 0 or int(patience) < 1:
        raise ValueError(f"max_iter must be >= 0 and patience >= 1, got {max_iter}, {patience}.")
    if not (math.isfinite(tol) and tol >= 0):
        raise ValueError(f"tol must be a non-negative finite number, got {tol!r}.")


def check_gradient_options(
    estimator: Any, algorithms: tuple[str, ...], *, iterations: bool = False
) -> None:
    """Validate an estimator's ``algorithm``, ``optimizer``, ``learning_rate`` and
    ``batch_size`` parameters (and ``max_iter``, ``tol`` when ``iterations``) with clear
    errors; called at ``fit``."""
    algorithm = estimator.algorithm
    if not isinstance(algorithm, str) or algorithm not in algorithms:
        raise ValueError(f"algorithm must be one of {list(algorithms)}, got {algorithm!r}.")
    optimizer = estimator.optimizer
    if isinstance(optimizer, str):
        if optimizer.lower() not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {sorted(OPTIMIZERS)}, got {optimizer!r}.")
    elif not callable(optimizer):
        raise TypeError(
            "optimizer must be a name, a torch.optim.Optimizer class or a callable, "
            f"got {type(optimizer).__name__}."
        )
    rate = estimator.learning_rate
    valid_rate = isinstance(rate, numbers.Real) and not isinstance(rate, bool)
    if not (valid_rate and math.isfinite(rate) and rate > 0):
        raise ValueError(f"learning_rate must be a positive finite number, got {rate!r}.")
    batch = estimator.batch_size
    valid_batch = isinstance(batch, numbers.Integral) and not isinstance(batch, bool)
    if batch is not None and not (valid_batch and int(batch) >= 1):
        raise ValueError(f"batch_size must be a positive integer or None, got {batch!r}.")
    if iterations:
        max_iter, tol = estimator.max_iter, estimator.tol
        if isinstance(max_iter, bool) or not isinstance(max_iter, numbers.Integral) or max_iter < 0:
            raise ValueError(f"max_iter must be an integer >= 0, got {max_iter!r}.")
        valid_tol = isinstance(tol, numbers.Real) and not isinstance(tol, bool)
        if not (valid_tol and math.isfinite(tol) and tol >= 0):
            raise ValueError(f"tol must be a non-negative finite number, got {tol!r}.")

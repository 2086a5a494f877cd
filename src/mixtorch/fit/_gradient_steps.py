"""One epoch of gradient descent on a mixture's negative log-likelihood, with the guard
that undoes non-finite steps (see :mod:`mixtorch.fit.gradient`, whose driver uses it)."""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor

from .._module import GaussianMixtureModule
from ..exceptions import DivergenceError
from .gradient_trace import GradientTrace

__all__ = ["Stepper", "accumulate_gradient", "full_nll"]


class Stepper:
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
            value, gradient_finite = accumulate_gradient(self.module, X, weights, self.rows)
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
        return loss if math.isfinite(loss) else full_nll(self.module, X, weights, self.rows)

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


def accumulate_gradient(
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


def full_nll(module: GaussianMixtureModule, X: Tensor, weights: Tensor, rows: int) -> float:
    """sum_i w_i * NLL(x_i) with weights summing to one, without gradients."""
    total = 0.0
    scale = float(weights.sum())
    with torch.no_grad():
        for start in range(0, X.shape[0], rows):
            log_prob = module.log_prob(X[start : start + rows]).to(torch.float64)
            total -= float((log_prob * weights[start : start + rows].to(torch.float64)).sum())
    return total / scale

"""``GaussianMixture``'s fits from data sources, across ranks and batch by batch.

A mixin of :class:`~mixtorch.GaussianMixture`: it turns the estimator's parameters into
the values the pure fitters of :mod:`mixtorch.fit.streaming` and
:mod:`mixtorch.fit.stepwise` take, and runs the shared restart loop
(:func:`~mixtorch._estimator.best_of_n_init`).
"""

from __future__ import annotations

from typing import Any

import torch

from ._data import prepare_source, uses_source
from ._estimator import Progress, best_of_n_init
from ._validation import as_output, check_random_generator, resolve_dtype, to_tensor
from .distributed import synchronised_generator
from .fit.em import fit_em
from .fit.start import start_mixture
from .fit.stepwise import StepwiseState, stepwise_update
from .fit.streaming import PassMeter, reservoir_sample, stream_start_mixture

__all__ = ["OnlineFitMixin"]


class OnlineFitMixin:
    """Source, distributed and stepwise fitting for :class:`~mixtorch.GaussianMixture`."""

    # Provided by GaussianMixture.
    n_components: int
    algorithm: str
    init_sample_size: int
    step_size_decay: float
    mixture_: Any
    stepwise_state_: StepwiseState

    def _uses_source(self, X: Any) -> bool:
        return uses_source(X, collective=self.algorithm == "em")

    def _fit_source(self, X: Any, progress: Progress, labels: bool) -> Any:
        """Exact EM over a chunk source (or this rank's shard); see mixtorch.fit.streaming."""
        model: Any = self
        if model.algorithm != "em":
            raise ValueError("Fitting from a data source or across ranks needs algorithm='em'.")
        warm = model._warm()
        data = prepare_source(
            model,
            X,
            dtype=model.dtype,
            device=model.device,
            warm_dtype=model.mixture_.dtype if warm else None,
            configuration={
                "n_components": model.n_components,
                "covariance_type": model.covariance_type,
                "init_params": model.init_params,
            },
        )
        rows = model._rows(data.n_features)
        chunks = PassMeter(data.source, rows, data.device, data.dtype)
        if model.init_sample_size < model.n_components:
            raise ValueError(
                "init_sample_size must be an integer >= n_components, got "
                f"{model.init_sample_size!r}."
            )
        generator = synchronised_generator(check_random_generator(model.random_state), data.device)
        sample, n_samples = reservoir_sample(
            chunks, int(model.init_sample_size), generator, data.n_features
        )
        if n_samples < max(2, model.n_components):
            raise ValueError(
                f"Expected n_samples >= max(2, n_components) but got n_samples = {n_samples}, "
                f"n_components = {model.n_components}."
            )
        spec = model._start_spec(data.n_features, data.dtype, data.device)
        progress.describe = chunks.describe
        mixture, trace = best_of_n_init(
            lambda: stream_start_mixture(chunks, sample, spec, generator),
            lambda start, previous: fit_em(
                chunks,
                start,
                tol=model.tol,
                max_iter=model.max_iter,
                reg_covar=model.reg_covar,
                previous_lower_bound=previous,
                callback=progress.iteration if progress.active else None,
            ),
            n_init=model.n_init,
            warm=(model.mixture_.to(data.device, data.dtype), model.lower_bound_) if warm else None,
            progress=progress,
            max_iter=model.max_iter,
        )
        model._set_fitted(mixture, trace, data.kind)
        if not labels:
            return None
        predicted = [mixture.predict(chunk, rows) for chunk in chunks()]
        return as_output(torch.cat(predicted), data.kind)

    def partial_fit(self, X: Any, y: Any = None) -> Any:
        """One stepwise-EM update from the batch ``X`` (online EM for unbounded streams).

        The first call initialises from the batch (``init_params``, ``*_init``; it needs
        at least ``max(2, n_components)`` rows); each later batch is blended into running
        sufficient statistics with step ``(t + 2) ** -step_size_decay`` followed by an
        M-step (see :mod:`mixtorch.fit.stepwise`). On a model fitted by ``fit`` the
        running statistics restart from the fitted parameters. The running state is
        ``stepwise_state_``, saved with the model.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self
        """
        model: Any = self
        model._validate_params()
        fitted = hasattr(model, "mixture_")
        dtype = model.mixture_.dtype if fitted else resolve_dtype(model.dtype, X)
        tensor, kind = to_tensor(model, X, reset=not fitted, dtype=dtype, device=model.device)
        rows = model._rows(tensor.shape[1])
        if fitted:
            mixture = model.mixture_
            if mixture.device != tensor.device:
                mixture = mixture.to(tensor.device, dtype)
            state = getattr(model, "stepwise_state_", None)
        else:
            if tensor.shape[0] < max(2, model.n_components):
                raise ValueError(
                    "The first partial_fit batch needs at least max(2, n_components) = "
                    f"{max(2, model.n_components)} rows, got {tensor.shape[0]}."
                )
            generator = check_random_generator(model.random_state, tensor.device)
            spec = model._start_spec(tensor.shape[1], tensor.dtype, tensor.device)
            mixture, state = start_mixture(tensor, spec, generator, rows), None
        updated, state, trace = stepwise_update(
            mixture,
            tensor,
            state,
            decay=float(model.step_size_decay),
            reg_covar=model.reg_covar,
            rows=rows,
        )
        model._set_fitted(updated, trace, kind)
        model.stepwise_state_ = state
        return model

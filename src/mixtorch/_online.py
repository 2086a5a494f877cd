"""``GaussianMixture``'s fits from data sources, across ranks and batch by batch.

A mixin of :class:`~mixtorch.GaussianMixture`: it turns the estimator's parameters into
the values the pure fitters of :mod:`mixtorch.fit.streaming` and
:mod:`mixtorch.fit.stepwise` take, and runs the shared restart loop
(:func:`~mixtorch._estimator.best_of_n_init`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

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

    # Provided by GaussianMixture (and its bases).
    n_components: int
    covariance_type: str
    init_params: str
    algorithm: str
    init_sample_size: int
    step_size_decay: float
    dtype: Any
    device: Any
    random_state: Any
    tol: float
    max_iter: int
    n_init: int
    reg_covar: float
    lower_bound_: float
    mixture_: Any
    stepwise_state_: StepwiseState

    if TYPE_CHECKING:

        def _warm(self) -> bool: ...
        def _rows(self, n_features: int) -> int: ...
        def _start_spec(self, n_features: int, dtype: torch.dtype, device: Any) -> Any: ...
        def _set_fitted(self, mixture: Any, record: Any, output: Any) -> None: ...
        def _validate_params(self) -> None: ...

    def _uses_source(self, X: Any) -> bool:
        return uses_source(
            X,
            collective=self.algorithm == "em",
            refusal="GaussianMixture(algorithm='gradient') does not fit across ranks.",
        )

    def _fit_source(self, X: Any, progress: Progress, labels: bool) -> Any:
        """Exact EM over a chunk source (or this rank's shard); see mixtorch.fit.streaming."""
        if self.algorithm != "em":
            raise ValueError("Fitting from a data source or across ranks needs algorithm='em'.")
        warm = self._warm()
        data = prepare_source(
            self,
            X,
            dtype=self.dtype,
            device=self.device,
            warm_dtype=self.mixture_.dtype if warm else None,
            configuration={
                "n_components": self.n_components,
                "covariance_type": self.covariance_type,
                "init_params": self.init_params,
            },
        )
        rows = self._rows(data.n_features)
        chunks = PassMeter(data.source, rows, data.device, data.dtype)
        if self.init_sample_size < self.n_components:
            raise ValueError(
                "init_sample_size must be an integer >= n_components, got "
                f"{self.init_sample_size!r}."
            )
        generator = synchronised_generator(check_random_generator(self.random_state), data.device)
        sample, n_samples = reservoir_sample(
            chunks, int(self.init_sample_size), generator, data.n_features
        )
        if n_samples < max(2, self.n_components):
            raise ValueError(
                f"Expected n_samples >= max(2, n_components) but got n_samples = {n_samples}, "
                f"n_components = {self.n_components}."
            )
        spec = self._start_spec(data.n_features, data.dtype, data.device)
        progress.describe, progress.label = chunks.describe, "Pass"
        mixture, trace = best_of_n_init(
            lambda: stream_start_mixture(chunks, sample, spec, generator),
            lambda start, previous: fit_em(
                chunks,
                start,
                tol=self.tol,
                max_iter=self.max_iter,
                reg_covar=self.reg_covar,
                previous_lower_bound=previous,
                callback=progress.iteration if progress.active else None,
            ),
            n_init=self.n_init,
            warm=(self.mixture_.to(data.device, data.dtype), self.lower_bound_) if warm else None,
            progress=progress,
            max_iter=self.max_iter,
        )
        self._set_fitted(mixture, trace, data.kind)
        if not labels:
            return None
        predicted = [mixture.predict(chunk, rows) for chunk in chunks()]
        return as_output(torch.cat(predicted), data.kind)

    def partial_fit(self, X: Any, y: Any = None) -> Any:
        """One stepwise-EM update from the batch ``X`` (online EM for unbounded streams).

        The first call initialises from the batch (``init_params``, ``*_init``; it needs
        at least ``max(2, n_components)`` rows); each later batch is blended into running
        sufficient statistics with step ``(t + 2) ** -step_size_decay`` followed by an
        M-step [1]_ [2]_ (see :mod:`mixtorch.fit.stepwise`). On a model fitted by ``fit`` the
        running statistics restart from the fitted parameters. The running state is
        ``stepwise_state_``, saved with the model.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            One batch of rows (the first one fixes ``n_features_in_``).
        y : ignored
            Present for scikit-learn's API.

        Returns
        -------
        self

        See Also
        --------
        fit : Batch EM over all the data (also from chunk sources, out of core).
        mixtorch.fit.stepwise.stepwise_update : The update as a pure function.

        References
        ----------
        .. [1] O. Cappé and E. Moulines, "On-line expectation-maximization algorithm for
           latent data models", J. R. Stat. Soc. B 71(3), 2009.
        .. [2] P. Liang and D. Klein, "Online EM for unsupervised models", NAACL 2009.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> model = GaussianMixture(n_components=2, random_state=0)
        >>> for _ in range(20):
        ...     batch = np.concatenate([rng.normal(-5, 1, (50, 1)), rng.normal(5, 1, (50, 1))])
        ...     model = model.partial_fit(batch)
        >>> np.sort(model.means_[:, 0]).round(0)
        array([-5.,  5.])
        """
        self._validate_params()
        fitted = hasattr(self, "mixture_")
        dtype = self.mixture_.dtype if fitted else resolve_dtype(self.dtype, X)
        tensor, kind = to_tensor(self, X, reset=not fitted, dtype=dtype, device=self.device)
        rows = self._rows(tensor.shape[1])
        if fitted:
            mixture = self.mixture_
            if mixture.device != tensor.device:
                mixture = mixture.to(tensor.device, dtype)
            state = getattr(self, "stepwise_state_", None)
        else:
            if tensor.shape[0] < max(2, self.n_components):
                raise ValueError(
                    "The first partial_fit batch needs at least max(2, n_components) = "
                    f"{max(2, self.n_components)} rows, got {tensor.shape[0]}."
                )
            generator = check_random_generator(self.random_state, tensor.device)
            spec = self._start_spec(tensor.shape[1], tensor.dtype, tensor.device)
            mixture, state = start_mixture(tensor, spec, generator, rows), None
        updated, state, trace = stepwise_update(
            mixture,
            tensor,
            state,
            decay=float(self.step_size_decay),
            reg_covar=self.reg_covar,
            rows=rows,
        )
        self._set_fitted(updated, trace, kind)
        self.stepwise_state_ = state
        return self

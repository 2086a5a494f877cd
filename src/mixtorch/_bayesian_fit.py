"""``BayesianGaussianMixture``'s fit, as a mixin: the shard (and its weights), the prior,
the starts and the restart loop over the CAVI fitter (:mod:`mixtorch.fit.variational`).

The counterpart of :mod:`mixtorch._memory_fit` for the variational estimator: it converts
the input, takes ``sample_weight`` as frequency weights
(:func:`~mixtorch._memory_fit.weighted_rows`: rows of weight 0 dropped, the rest weighing
the start, every update and the default prior's moments), runs
:func:`~mixtorch._estimator.best_of_n_init` and stores the result through the
fitted-state protocol with a :class:`VariationalFit` record.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import torch

from ._bayesian_prior import PRIOR_TYPES, build_prior
from ._chunks import chunk_rows
from ._data import refuse_sources
from ._estimator import Progress, best_of_n_init
from ._memory_fit import weighted_rows
from ._validation import OutputKind, as_output, check_random_generator, resolve_dtype, to_tensor
from .covariance import Covariance, covariance_class
from .distributed import (
    all_reduce_sum,
    check_same_on_every_rank,
    is_distributed,
    raise_on_every_rank,
    synchronised_generator,
)
from .fit.init import initial_responsibilities
from .fit.sharded_init import initial_statistics
from .fit.start import check_continues
from .fit.variational import (
    VariationalPosterior,
    VariationalPrior,
    VariationalTrace,
    fit_variational,
    posterior_from_responsibilities,
    update_posterior,
    weighted_prior_moments,
)
from .mixture import Mixture
from .stats import pass_chunks

__all__ = ["VariationalFit", "VariationalFitMixin"]


@dataclass(frozen=True)
class VariationalFit:
    """The fit record of a variational fit: prior, posterior and trace (see
    :meth:`BayesianGaussianMixture.set_fitted`)."""

    prior: VariationalPrior
    posterior: VariationalPosterior
    trace: VariationalTrace


class VariationalFitMixin:
    """The in-memory (or sharded) CAVI fit of :class:`~mixtorch.BayesianGaussianMixture`."""

    # Provided by BayesianGaussianMixture (and its bases).
    n_components: int
    covariance_type: str
    init_params: str
    tol: float
    max_iter: int
    n_init: int
    reg_covar: float
    warm_start: bool
    verbose: int
    verbose_interval: int
    chunk_size: int | None
    device: Any
    dtype: Any
    random_state: Any
    weight_concentration_prior_type: str
    weight_concentration_prior: float | None
    mean_precision_prior: float | None
    mean_prior: Any
    degrees_of_freedom_prior: float | None
    covariance_prior: Any
    lower_bound_: float
    mixture_: Mixture
    _prior: VariationalPrior
    _posterior: VariationalPosterior

    if TYPE_CHECKING:

        def _validate_params(self) -> None: ...
        def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None: ...
        def _weighted(self, X: torch.Tensor, rows: int) -> torch.Tensor: ...

    def _fit_variational(self, X: Any, sample_weight: Any) -> Any:
        """Fit ``X`` (its rows weighted by ``sample_weight``); the labels of its rows."""
        self._validate_params()
        warm = bool(self.warm_start) and hasattr(self, "_posterior")
        if warm:
            check_continues(
                "BayesianGaussianMixture", self.mixture_, self.n_components, self.covariance_type
            )
        tensor, kind, data, weights = self._shard(X, warm, sample_weight)
        rows = chunk_rows(self.n_components, data.shape[1], self.chunk_size, self._covariance())
        chunks = pass_chunks(data, rows)  # a sequence: E-step passes use chunk threads
        n_samples = int(all_reduce_sum(torch.tensor(float(data.shape[0]))))
        least = max(2, self.n_components) if sample_weight is None else self.n_components
        if n_samples < least:
            positive = "" if sample_weight is None else " (rows of positive sample_weight)"
            bound = "max(2, n_components)" if sample_weight is None else "n_components"
            raise ValueError(
                f"Expected n_samples >= {bound} but got "
                f"n_components = {self.n_components}, n_samples = {n_samples}{positive}"
            )
        prior = self._build_prior(chunks, data, weights, rows)  # today's prior, as sklearn
        if warm and prior.process != self._prior.process:
            raise ValueError(
                "BayesianGaussianMixture was fitted with weight_concentration_prior_type="
                f"{PRIOR_TYPES[not self._prior.process]!r}, but it is now "
                f"{self.weight_concentration_prior_type!r}: warm_start=True continues the "
                "previous posterior, whose weight prior type cannot change. Set "
                "warm_start=False to fit afresh, or set it back."
            )
        generator = check_random_generator(self.random_state, data.device)
        if is_distributed():  # every rank draws the same numbers
            generator = synchronised_generator(generator, data.device)
        progress = Progress(self.verbose, self.verbose_interval)
        passes: list[Any] = chunks  # the E-step kernels weigh (chunk, weight) pairs
        if weights is not None:
            passes = list(zip(chunks, weights.split([len(c) for c in chunks]), strict=True))
        posterior, trace = best_of_n_init(
            lambda: self._initialise(data, chunks, prior, generator, rows, weights),
            lambda start, previous: fit_variational(
                lambda: passes,
                start,
                prior,
                tol=self.tol,
                max_iter=self.max_iter,
                reg_covar=self.reg_covar,
                previous_lower_bound=previous,
                callback=progress.iteration if progress.active else None,
            ),
            n_init=self.n_init,
            warm=(self._posterior, self.lower_bound_) if warm else None,
            progress=progress,
            max_iter=self.max_iter,
        )
        self._set_fitted(posterior.mixture(), VariationalFit(prior, posterior, trace), kind)
        return as_output(self._weighted(tensor, rows).argmax(1), kind)

    def _shard(self, X: Any, warm: bool, sample_weight: Any) -> tuple[Any, ...]:
        """``X`` validated as a tensor, its output kind, and the rows of positive
        ``sample_weight`` with their frequency weights (:func:`weighted_rows`); under a
        process group every rank raises if any rank's shard is unusable (or weighted),
        before any other collective."""
        dtype = resolve_dtype(self.dtype, X) if not warm else self.mixture_.dtype
        error: Exception | None = None
        try:
            refuse_sources(X, "BayesianGaussianMixture", "fits")  # holds all of X
            tensor, kind = to_tensor(
                self,
                X,
                reset=not warm,
                dtype=dtype,
                device=self.device,
                ensure_min_samples=1 if is_distributed() else 2,
            )
            if sample_weight is not None and is_distributed():
                raise ValueError(
                    "BayesianGaussianMixture takes no sample_weight across torch.distributed "
                    "ranks; fit outside the process group, or without weights."
                )
            data, weights = weighted_rows(tensor, sample_weight, frequency=True)
        except (ValueError, TypeError) as caught:
            error = caught
        raise_on_every_rank(error)
        check_same_on_every_rank(
            tensor.shape[1], "Every rank's shard must have the same number of features."
        )
        return tensor, kind, data, weights

    def _covariance(self) -> type[Covariance]:
        return covariance_class(self.covariance_type)

    def _initialise(
        self,
        X: torch.Tensor,
        chunks: list[torch.Tensor],
        prior: VariationalPrior,
        generator: torch.Generator,
        rows: int,
        weights: torch.Tensor | None,
    ) -> VariationalPosterior:
        covariance_type = covariance_class(self.covariance_type)
        if is_distributed():  # the union of the shards, identical on every rank
            stats = initial_statistics(
                lambda: iter(chunks),
                self.n_components,
                self.init_params,
                covariance_type,
                generator,
            )
            return update_posterior(stats, prior, covariance_type, self.reg_covar, X.dtype)
        fn, centers = initial_responsibilities(
            X, self.n_components, self.init_params, generator, rows, weights
        )
        return posterior_from_responsibilities(
            X, fn, prior, covariance_type, self.reg_covar, rows, mean_guess=centers
        )

    def _build_prior(
        self, chunks: list[torch.Tensor], X: torch.Tensor, weights: Any, rows: int
    ) -> VariationalPrior:
        """The prior: given hyper-parameters checked, missing ones from every rank's data
        (the weighted moments of ``X`` for a weighted fit)."""
        prior = build_prior(
            chunks,
            self._covariance(),
            n_components=self.n_components,
            weight_concentration_prior_type=self.weight_concentration_prior_type,
            weight_concentration_prior=self.weight_concentration_prior,
            mean_precision_prior=self.mean_precision_prior,
            mean_prior=self.mean_prior,
            degrees_of_freedom_prior=self.degrees_of_freedom_prior,
            covariance_prior=self.covariance_prior,
        )
        if weights is None or (self.mean_prior is not None and self.covariance_prior is not None):
            return prior
        mean, covariance = weighted_prior_moments(X, weights, self._covariance(), rows)
        return replace(
            prior,
            mean=prior.mean if self.mean_prior is not None else mean,
            covariance=prior.covariance if self.covariance_prior is not None else covariance,
        )

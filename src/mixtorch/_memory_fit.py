"""``GaussianMixture``'s fits of data held in memory: EM (with or without missing
entries) and gradient descent.

A mixin of :class:`~mixtorch.GaussianMixture`, the in-memory counterpart of
:mod:`mixtorch._online` (data sources, ranks, batches): it converts the input, draws the
starts (:func:`~mixtorch.fit.start.start_mixture`), runs the shared restart loop
(:func:`~mixtorch._estimator.best_of_n_init`) over the pure fitters
(:func:`~mixtorch.fit.em.fit_em`, :func:`~mixtorch.fit.gradient.fit_gradient`) and
stores the result through the fitted-state protocol.

``sample_weight`` is read by :func:`weighted_rows` (which ``partial_fit`` and
``BayesianGaussianMixture`` use too): rows of weight 0 are
dropped (as if removed), equal weights are no weights, and the rest reach the start (weighted
k-means, see :mod:`mixtorch.fit.init`), the E-step (``(chunk, weight)`` pairs) and the
gradient fitter's weighted mean NLL; labels are returned for every row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch

from ._chunk_source import check_missing_values
from ._chunks import chunk_list
from ._estimator import Progress, best_of_n_init
from ._kde_checks import shard_sample_weight
from ._validation import (
    as_output,
    check_random_generator,
    check_sample_weight,
    real_values,
    resolve_dtype,
    to_tensor,
)
from .fit.collapse import warn_if_collapsed
from .fit.em import EMTrace, fit_em, fixed_groups
from .fit.gradient import GradientTrace, fit_gradient
from .fit.missing import (
    check_observed_columns,
    fill_column_means,
    missing_statistics,
    observed_weighted_log_prob,
)
from .fit.start import start_mixture
from .mixture import Mixture
from .stats import accumulate_statistics

__all__ = ["InMemoryFitMixin", "weighted_rows"]

#: The ``*_init`` parameter that gives the values of each group ``fixed`` may name.
FIXED_FROM = {"weights": "weights_init", "means": "means_init", "covariances": "precisions_init"}


def weighted_rows(
    X: torch.Tensor, sample_weight: Any, frequency: bool = False, shard: bool = False
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """The rows a weighted fit uses and their weights: ``sample_weight`` checked (the
    shared check: a ValueError naming it for a wrong length, NaN, infinity, a negative
    entry or weights that are all zero), rows of weight 0 dropped (a copy of the others),
    as if they had been removed.

    ``frequency=False`` (fits whose result only depends on relative weights, such as
    maximum likelihood): weights scaled so the largest is 1, and None when they are all
    equal, so such weights give exactly the unweighted fit. ``frequency=True`` (a
    posterior, where a row of weight 2 is two rows of evidence against the prior): the
    weights as given, None when they are all 1. ``shard=True`` (one rank's share of a
    union): as given, and all zero allowed (the rank then keeps no rows).
    """
    if sample_weight is None:
        return X, None
    if callable(sample_weight) and not hasattr(sample_weight, "__len__"):
        raise TypeError(
            "sample_weight must be an array of n_samples weights, got a callable; pass a "
            "progress callback as callback=..."
        )
    if shard:
        weights = shard_sample_weight(sample_weight, X).to(X.dtype)
    else:
        weights = check_sample_weight(sample_weight, X)
    if frequency and not shard:
        given = torch.as_tensor(real_values(sample_weight, "sample_weight")).detach()
        weights = given.to(device=X.device, dtype=torch.float64).to(X.dtype)
    if not bool(torch.isfinite(weights).all()):
        raise ValueError(
            f"sample_weight holds values too large for {X.dtype}; scale them down "
            "(a frequency weight of w counts a row w times)."
        )
    keep = weights > 0
    if not bool(keep.all()):
        X, weights = X[keep], weights[keep]
    scaled = not (frequency or shard)
    if X.shape[0] and bool((weights == (weights[0] if scaled else 1.0)).all()):
        return X, None
    return X, weights


class InMemoryFitMixin:
    """In-memory EM and gradient fitting for :class:`~mixtorch.GaussianMixture`."""

    # Provided by GaussianMixture (and its bases).
    n_components: int
    algorithm: str
    dtype: Any
    device: Any
    random_state: Any
    tol: float
    max_iter: int
    n_init: int
    reg_covar: float
    optimizer: Any
    learning_rate: float
    batch_size: int | None
    missing_values: Any
    fixed: Any
    lower_bound_: float
    mixture_: Mixture

    if TYPE_CHECKING:

        def _warm(self) -> bool: ...
        def _rows(self, n_features: int) -> int: ...
        def _start_spec(self, n_features: int, dtype: torch.dtype, device: Any) -> Any: ...
        def _set_fitted(self, mixture: Any, record: Any, output: Any) -> None: ...

    def _fit_in_memory(
        self, X: Any, progress: Progress, labels: bool, sample_weight: Any = None
    ) -> Any:
        """Fit ``X`` (array-like or tensor), its rows weighted by ``sample_weight``; the
        labels of its rows when ``labels``."""
        warm = self._warm()
        dtype = self.mixture_.dtype if warm else resolve_dtype(self.dtype, X)
        tensor, kind = to_tensor(
            self,
            X,
            reset=not warm,
            dtype=dtype,
            device=self.device,
            ensure_min_samples=2,
            allow_nan=self._allows_missing(),
        )
        data, weights = weighted_rows(tensor, sample_weight)
        holes = self._allows_missing() and bool(torch.isnan(data).any())
        if holes and self.algorithm != "em":
            raise ValueError(
                "Rows with missing entries are fitted by EM only; use algorithm='em' "
                "with missing_values=np.nan."
            )
        if data.shape[0] < self.n_components:
            positive = " (rows of positive sample_weight)" if sample_weight is not None else ""
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {data.shape[0]}{positive}"
            )
        if holes:
            check_observed_columns(data)
        rows = self._rows(data.shape[1])
        spec = self._start_spec(data.shape[1], data.dtype, data.device)
        generator = check_random_generator(self.random_state, data.device)
        filled = fill_column_means(data, weights) if holes else data
        mixture, trace = best_of_n_init(
            lambda: start_mixture(filled, spec, generator, rows, weights),
            lambda start, previous: self._run(
                data, weights, start, rows, previous, generator, progress
            ),
            n_init=self.n_init,
            warm=(self.mixture_.to(tensor.device, tensor.dtype), self.lower_bound_)
            if warm
            else None,
            progress=progress,
            max_iter=self.max_iter,
        )
        warn_if_collapsed(mixture, self.reg_covar)  # the kept run only
        self._set_fitted(mixture, trace, kind)
        if not labels:
            _ = mixture.e_step_kernel  # the E-step kernel is chosen with the fit's settings
            return None
        if self._allows_missing() and bool(torch.isnan(tensor).any()):
            return as_output(observed_weighted_log_prob(mixture, tensor).argmax(1), kind)
        return as_output(mixture.predict(tensor, rows), kind)

    def _run(
        self,
        X: torch.Tensor,
        weights: torch.Tensor | None,
        start: Mixture,
        rows: int,
        previous: float,
        generator: torch.Generator,
        progress: Progress,
    ) -> tuple[Mixture, EMTrace | GradientTrace]:
        """One run of the chosen algorithm from ``start``, rows weighted by ``weights``."""
        if self.algorithm == "gradient":
            return fit_gradient(
                X,
                start,
                optimizer=self.optimizer,
                learning_rate=self.learning_rate,
                batch_size=self.batch_size,
                max_iter=self.max_iter,
                tol=self.tol,
                generator=generator,
                reg_covar=self.reg_covar,
                chunk_size=rows,
                callback=progress.epoch if progress.active else None,
                fixed=self._fixed(),
                sample_weight=weights,
            )
        chunks: list[Any] = chunk_list(X, rows)
        if weights is not None:  # the E-step kernels weigh (chunk, weight) pairs
            chunks = list(zip(chunks, weights.split(rows), strict=True))
        holes = self._allows_missing() and bool(torch.isnan(X).any())
        return fit_em(
            lambda: chunks,
            start,
            tol=self.tol,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            previous_lower_bound=previous,
            callback=progress.iteration if progress.active else None,
            statistics=missing_statistics if holes else accumulate_statistics,
            fixed=self._fixed(),
        )

    def _allows_missing(self) -> bool:
        """Whether NaN marks missing entries (``missing_values=np.nan``)."""
        return check_missing_values(self.missing_values) is not None

    def _held_groups(self) -> frozenset[str]:
        """The groups named by ``fixed``: not counted by :meth:`bic` and :meth:`aic`."""
        return fixed_groups(self.fixed)

    def _fixed(self) -> frozenset[str]:
        """``fixed`` as a set of group names, each with its ``*_init`` given."""
        names = fixed_groups(self.fixed)
        for name in sorted(names):
            if getattr(self, FIXED_FROM[name]) is None:
                raise ValueError(
                    f"fixed contains {name!r}, so {FIXED_FROM[name]} must give its values."
                )
        return names

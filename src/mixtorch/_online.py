"""``GaussianMixture``'s fits from data sources, across ranks and batch by batch.

A mixin of :class:`~mixtorch.GaussianMixture`: it turns the estimator's parameters into
the values the pure fitters of :mod:`mixtorch.fit.streaming` and
:mod:`mixtorch.fit.stepwise` take, and runs the shared restart loop
(:func:`~mixtorch._estimator.best_of_n_init`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ._data import prepare_source, uses_source
from ._estimator import Progress, best_of_n_init, keeps_state_on_failure
from ._memory_fit import weighted_rows
from ._validation import OutputKind, as_output, check_random_generator, resolve_dtype, to_tensor
from .distributed import (
    all_reduce_sum,
    check_same_configuration,
    gather_rows,
    is_distributed,
    raise_on_every_rank,
    synchronised_generator,
)
from .fit.em import fit_em
from .fit.missing import (
    check_observed_counts,
    column_means,
    fill_missing,
    missing_statistics,
    observed_weighted_log_prob,
)
from .fit.start import StartSpec, check_continues, start_mixture
from .fit.stepwise import StepwiseState, check_same_model, stepwise_update, union_counts
from .fit.streaming import Chunks, PassMeter, reservoir_sample, stream_start_mixture
from .mixture import Mixture
from .sources import is_source
from .stats import SufficientStatistics, accumulate_statistics

__all__ = ["OnlineFitMixin"]

#: An E-step pass over chunks, as :func:`~mixtorch.fit.stepwise.stepwise_update` takes it.
StatisticsPass = Callable[[Mixture, Iterable[Tensor]], SufficientStatistics]


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
        def _allows_missing(self) -> bool: ...

    def _uses_source(self, X: Any) -> bool:
        return uses_source(
            X,
            collective=self.algorithm == "em",
            refusal="GaussianMixture(algorithm='gradient') does not fit across ranks.",
        )

    def _fit_source(self, X: Any, progress: Progress, labels: bool, weighted: bool) -> Any:
        """Exact EM over a chunk source (or this rank's shard); see mixtorch.fit.streaming.

        With ``missing_values=np.nan`` the E-step is :func:`missing_statistics` (additive
        like the complete-data one) and the start is drawn from the data with each NaN
        replaced by its column's mean over the reservoir sample. ``weighted`` (a
        ``sample_weight`` was given) is refused on every rank alike: sources carry no
        weights, and neither does the reservoir sample of the start.
        """
        if self.algorithm != "em":
            raise ValueError("Fitting from a data source or across ranks needs algorithm='em'.")
        missing = self._allows_missing()
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
                "missing_values": missing,
                "sample_weight": weighted,
            },
            missing_values=np.nan if missing else None,
        )
        if weighted:
            raise ValueError(
                "sample_weight is not supported when fitting a data source or across "
                "torch.distributed ranks (chunk sources carry no weights). Fit in-memory "
                "data outside a process group, or pass the batches to partial_fit, which "
                "takes sample_weight on every rank."
            )
        rows = self._rows(data.n_features)
        chunks = PassMeter(data.source, rows, data.device, data.dtype)
        if self.init_sample_size < self.n_components:
            raise ValueError(
                "init_sample_size must be an integer >= n_components, got "
                f"{self.init_sample_size!r}."
            )
        generator = synchronised_generator(check_random_generator(self.random_state), data.device)
        observed = torch.zeros(data.n_features, dtype=torch.float64, device=data.device)
        sample, n_samples = reservoir_sample(
            _counting_observed(chunks, observed) if missing else chunks,
            int(self.init_sample_size),
            generator,
            data.n_features,
        )
        if missing:  # a feature no rank ever observes cannot be estimated
            check_observed_counts(all_reduce_sum(observed))
        if n_samples < max(2, self.n_components):
            raise ValueError(
                f"Expected n_samples >= max(2, n_components) but got n_samples = {n_samples}, "
                f"n_components = {self.n_components}."
            )
        spec = self._start_spec(data.n_features, data.dtype, data.device)
        progress.describe, progress.label = chunks.describe, "Pass"
        start_chunks, start_sample = _start_data(chunks, sample, missing)
        mixture, trace = best_of_n_init(
            lambda: stream_start_mixture(start_chunks, start_sample, spec, generator),
            lambda start, previous: fit_em(
                chunks,
                start,
                tol=self.tol,
                max_iter=self.max_iter,
                reg_covar=self.reg_covar,
                previous_lower_bound=previous,
                callback=progress.iteration if progress.active else None,
                statistics=missing_statistics if missing else accumulate_statistics,
            ),
            n_init=self.n_init,
            warm=(self.mixture_.to(data.device, data.dtype), self.lower_bound_) if warm else None,
            progress=progress,
            max_iter=self.max_iter,
        )
        self._set_fitted(mixture, trace, data.kind)
        if not labels:
            return None
        predicted, stream = [], iter(chunks())
        while (chunk := next(stream, None)) is not None:  # one source chunk held at a time
            predicted.append(_labels(mixture, chunk, rows, missing))
            del chunk
        return as_output(torch.cat(predicted), data.kind)

    @keeps_state_on_failure
    def partial_fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """One stepwise-EM update from the batch ``X`` (online EM for unbounded streams).

        The first call initialises from the batch (``init_params``, ``*_init``; it needs
        at least ``max(2, n_components)`` rows); each later batch is blended into running
        sufficient statistics with step ``(t + 2) ** -step_size_decay`` followed by an
        M-step [1]_ [2]_ (see :mod:`mixtorch.fit.stepwise`). On a model fitted by ``fit`` the
        running statistics restart from the fitted parameters. ``n_components`` or
        ``covariance_type`` changed since (``set_params``) is a ValueError; start afresh
        from ``sklearn.base.clone(model)``. The running state is
        ``stepwise_state_``, saved with the model. With ``missing_values=np.nan`` batches
        may hold NaN: their expected statistics enter as in :meth:`fit` (the first start
        is drawn with each NaN replaced by its column's mean in the batch). Inside a
        ``torch.distributed`` process group every rank passes its own batch and each call
        takes the step of the union of the ranks' batches (one ``all_reduce``; the first
        call starts from the gathered first batches, or from the start given in full by
        ``weights_init``, ``means_init`` and ``precisions_init`` without gathering), so
        every rank keeps the same model (see ``docs/distributed.md``). A rank may pass a
        batch of no rows: it contributes nothing and keeps the same model.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            One batch of rows (the first one fixes ``n_features_in_``).
        y : ignored
            Present for scikit-learn's API.
        sample_weight : array-like or Tensor of shape (n_samples,), optional
            Non-negative frequency weights of the batch's rows, as for :meth:`fit` (the
            first start is drawn from the weighted rows): the batch enters through its
            weighted statistics over its summed weight, so the step size stays per batch.
            Across ranks weights are taken as given and summed over the union (a rank
            without weights weighs its rows 1, and one whose weights are all zero adds
            nothing); outside a process group only relative weights matter.

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
        batch = self._partial_fit_batch(X, sample_weight)
        tensor, weights, missing = batch.tensor, batch.weights, self._allows_missing()
        rows = self._rows(tensor.shape[1])
        n_union, weighted, observed = union_counts(tensor, weights is not None, missing)
        if weighted and weights is None:  # another rank's batch is weighted
            weights = torch.ones(tensor.shape[0], dtype=tensor.dtype, device=tensor.device)
        if batch.start is None:  # a later call (or one after fit): step the model held
            if n_union == 0:
                raise ValueError(
                    "partial_fit needs at least one row (of positive sample_weight) across "
                    "the ranks, but every rank passed an empty batch; call it when some "
                    "rank has rows."
                )
            mixture = self.mixture_
            if mixture.device != tensor.device:
                mixture = mixture.to(tensor.device, tensor.dtype)
            state = getattr(self, "stepwise_state_", None)
            step = -1 if state is None else state.step
        else:
            mixture = self._first_start(batch, n_union, observed, rows, weights)
            state, step = None, -2
        if is_distributed():  # the model every rank steps from must be one and the same
            check_same_model(mixture, step)
        updated, state, trace = stepwise_update(
            mixture,
            tensor,
            state,
            decay=float(self.step_size_decay),
            reg_covar=self.reg_covar,
            rows=rows,
            statistics=_batch_pass(tensor, missing),
            sample_weight=weights,
        )
        self._set_fitted(updated, trace, batch.kind)
        self.stepwise_state_ = state
        return self

    def _first_start(
        self,
        batch: _Batch,
        n_union: int,
        observed: Tensor | None,
        rows: int,
        weights: Tensor | None,
    ) -> Mixture:
        """The first ``partial_fit`` call's start, the same on every rank: the given one
        (no data needed: no rows are gathered and no seed is sent), or one drawn from the
        union of the ranks' first batches, weighted by ``weights`` if given. ``n_union``
        rows (and ``observed`` entries per column, with missing values) in that union,
        counted across ranks."""
        assert batch.start is not None
        least = max(2, self.n_components) if weights is None else self.n_components
        if n_union < least:
            across = " (all ranks together)" if is_distributed() else ""
            bound = "max(2, n_components)" if weights is None else "n_components"
            positive = " of positive sample_weight" if batch.weighted else ""
            raise ValueError(
                f"The first partial_fit batch needs at least {bound} = {least} rows"
                f"{positive}{across}, got {n_union}."
            )
        if observed is not None:
            check_observed_counts(observed, first_batch=True)
        spec, generator = batch.start
        given = spec.complete()
        if given is not None:
            return given
        missing = self._allows_missing()
        return _drawn_start(batch.tensor, weights, spec, generator, rows, missing)

    def _partial_fit_batch(self, X: Any, sample_weight: Any) -> _Batch:
        """``partial_fit``'s batch, checked; across ranks an error on any rank is raised on
        every rank, and the ranks' settings are compared, before any other collective.

        A rank may pass no rows across ranks (it adds zero statistics to the union's). On
        the first call the start (``*_init``) and the seed are checked here too."""
        try:  # raised on every rank: none may wait in a collective
            self._validate_params()
            if is_source(X):
                raise TypeError(
                    f"partial_fit takes one in-memory batch (an array or tensor), got "
                    f"{type(X).__name__}; fit a whole data source with fit(X), or pass its "
                    "chunks to partial_fit one at a time (for chunk in source(): ...)."
                )
            fitted = hasattr(self, "mixture_")
            if fitted:
                check_continues(
                    "GaussianMixture",
                    self.mixture_,
                    self.n_components,
                    self.covariance_type,
                    "partial_fit",
                    "Start afresh from sklearn.base.clone(model) (or call fit)",
                )
            dtype = self.mixture_.dtype if fitted else resolve_dtype(self.dtype, X)
            tensor, kind = to_tensor(
                self, X, reset=not fitted, dtype=dtype, device=self.device,
                allow_nan=self._allows_missing(), ensure_min_samples=0 if is_distributed() else 1,
            )  # fmt: skip
            tensor, weights = weighted_rows(tensor, sample_weight, shard=is_distributed())
            start = None
            if not fitted:
                start = (
                    self._start_spec(tensor.shape[1], tensor.dtype, tensor.device),
                    check_random_generator(self.random_state, tensor.device),
                )
        except Exception as error:
            raise_on_every_rank(error)
            raise
        raise_on_every_rank(None)
        check_same_configuration(
            {
                "n_features": int(tensor.shape[1]),
                "dtype": str(tensor.dtype),
                "n_components": self.n_components,
                "covariance_type": self.covariance_type,
                "missing_values": self._allows_missing(),
                "continues": fitted,
                "reg_covar": float(self.reg_covar),
                "step_size_decay": float(self.step_size_decay),
                # whether the start is drawn from data decides the collectives that follow
                "given_init": [] if start is None else start[0].given_names(),
            }
        )
        return _Batch(tensor, kind, start, weights, sample_weight is not None)


@dataclass(frozen=True)
class _Batch:
    """A checked ``partial_fit`` batch (its rows of positive weight, and their weights);
    on the first call, with what the start takes (the start's specification and the
    random generator)."""

    tensor: Tensor
    kind: OutputKind
    start: tuple[StartSpec, torch.Generator] | None
    weights: Tensor | None = None
    weighted: bool = False  #: whether a sample_weight was given


def _drawn_start(
    tensor: Tensor,
    weights: Tensor | None,
    spec: StartSpec,
    generator: torch.Generator,
    rows: int,
    missing: bool,
) -> Mixture:
    """The first ``partial_fit`` start drawn from data: across ranks, from the union of the
    ranks' first batches (gathered in rank order, the weights as one more column) with
    rank 0's seed, so every rank draws the same start."""
    union = tensor
    if is_distributed():
        if weights is not None:
            tensor = torch.cat([tensor, weights.to(tensor.dtype)[:, None]], 1)
        union = torch.cat(gather_rows(tensor))
        if weights is not None:
            union, weights = union[:, :-1], union[:, -1]
        generator = synchronised_generator(generator, tensor.device)
    filled = fill_missing(union, column_means(union, weights)) if missing else union
    return start_mixture(filled, spec, generator, rows, weights)


def _batch_pass(tensor: Tensor, missing: bool) -> StatisticsPass:
    """The E-step pass of a ``partial_fit`` batch. A batch of no rows (a rank with nothing
    this call) is read as one empty chunk, so the rank adds zero statistics to the
    union's ``all_reduce`` (a pass over no chunks at all is an error)."""
    statistics: StatisticsPass = missing_statistics if missing else accumulate_statistics
    if tensor.shape[0] > 0:
        return statistics

    def one_empty_chunk(mixture: Mixture, chunks: Iterable[Tensor]) -> SufficientStatistics:
        return statistics(mixture, [tensor])

    return one_empty_chunk


def _counting_observed(chunks: Chunks, observed: Tensor) -> Chunks:
    """``chunks``, adding each chunk's count of observed (non-NaN) entries per column to
    ``observed`` as it goes by (the sampling pass reads every row anyway)."""

    def counted() -> Iterator[Tensor]:
        stream = iter(chunks())
        while (chunk := next(stream, None)) is not None:
            observed.add_((~torch.isnan(chunk)).sum(0).to(observed))
            yield chunk
            del chunk  # before the source reads the next one

    return counted


def _start_data(chunks: Chunks, sample: Tensor, missing: bool) -> tuple[Chunks, Tensor]:
    """The stream and sample the start is drawn from: with missing entries, each NaN
    replaced by its column's mean over the sample (the same on every rank)."""
    if not missing:
        return chunks, sample
    means = column_means(sample)

    def filled() -> Iterator[Tensor]:
        stream = iter(chunks())
        while (chunk := next(stream, None)) is not None:
            copy = fill_missing(chunk, means)
            del chunk  # before the source reads the next one
            yield copy
            del copy

    return filled, fill_missing(sample, means)


def _labels(mixture: Mixture, chunk: Tensor, rows: int, missing: bool) -> Tensor:
    """The most probable component of each row (over its observed entries)."""
    if missing:
        return observed_weighted_log_prob(mixture, chunk).argmax(1)
    return mixture.predict(chunk, rows)

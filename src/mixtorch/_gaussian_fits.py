"""How a :class:`~mixtorch.Gaussian` fits other than in memory in closed form: from a data
source or across ranks (two passes, fewer with held values), and by gradient descent from
mean 0 and identity covariance; and the held values (``fixed_mean``,
``fixed_covariance``) every fit reads, a ``fixed_mean`` Series by its labels."""

from __future__ import annotations

from typing import Any

import torch

from ._chunks import chunk_rows
from ._data import prepare_source
from ._estimator import MixtureEstimator, Progress, best_of_n_init
from ._gaussian_torch import FixedParameters, check_fixed, fit_with_fixed, held_digest
from ._validation import check_random_generator
from .covariance import covariance_class
from .fit.gradient import GradientTrace, fit_gradient
from .fit.streaming import PassMeter, gaussian_from_stream, stream_mean
from .mixture import Mixture


class GaussianFitsMixin(MixtureEstimator):
    """:class:`~mixtorch.Gaussian`'s fits from data sources and by gradient descent."""

    # the estimator's parameters (set by Gaussian.__init__)
    covariance_type: Any
    reg_covar: Any
    random_state: Any
    chunk_size: Any
    device: Any
    dtype: Any
    algorithm: Any
    optimizer: Any
    learning_rate: Any
    batch_size: Any
    max_iter: Any
    tol: Any
    fixed_mean: Any
    fixed_covariance: Any

    def _fixed(self, n_features: int, dtype: torch.dtype, device: Any) -> FixedParameters:
        """``fixed_mean`` and ``fixed_covariance``, checked for data of ``n_features``."""
        kind = covariance_class(self.covariance_type)
        mean = _mean_by_label(self.fixed_mean, getattr(self, "feature_names_in_", None))
        return check_fixed(mean, self.fixed_covariance, kind, n_features, dtype, device)

    def _fit_source(self, X: Any, sample_weight: Any) -> None:
        """Two passes over a source (or the ranks' shards): the mean, then the scatter; a
        held value leaves one pass (or none)."""
        if sample_weight is not None:
            raise ValueError("sample_weight is not supported for data sources or across ranks.")
        if self.algorithm != "closed_form":
            raise ValueError(
                "Fitting from a data source or across ranks needs algorithm='closed_form'."
            )
        covariance_type = covariance_class(self.covariance_type)
        data = prepare_source(
            self,
            X,
            dtype=self.dtype,
            device=self.device,
            warm_dtype=None,
            configuration={  # ranks holding different values would sum unrelated moments
                "covariance_type": self.covariance_type,
                "fixed_mean/fixed_covariance": held_digest(self.fixed_mean, self.fixed_covariance),
            },
        )
        rows = chunk_rows(1, data.n_features, self.chunk_size, covariance_type)
        chunks = PassMeter(data.source, rows, data.device, data.dtype)
        fixed = self._fixed(data.n_features, data.dtype, data.device)
        if fixed.groups:
            mixture = fit_with_fixed(
                fixed,
                covariance_type,
                self.reg_covar,
                chunks,
                lambda chunk, start: chunk.new_ones(chunk.shape[0], 1),
                lambda: stream_mean(chunks, data.n_features, data.dtype, data.device),
            )
        else:
            mixture = gaussian_from_stream(
                chunks, covariance_type, self.reg_covar, data.n_features, data.device, data.dtype
            )
        self._set_fitted(mixture, None, data.kind)

    def _fit_gradient(
        self, X: torch.Tensor, weights: torch.Tensor | None, rows: int, fixed: FixedParameters
    ) -> tuple[Mixture, GradientTrace]:
        """Gradient descent from mean 0 and identity covariance, or from the held values,
        which are not optimised (a held covariance gets no ``reg_covar``)."""
        start = fixed.start(covariance_class(self.covariance_type), X.shape[1], X.dtype, X.device)
        reg_covar = 0.0 if fixed.covariance is not None else self.reg_covar
        mixture, trace = best_of_n_init(
            lambda: start,
            lambda begin, previous: fit_gradient(
                X,
                begin,
                optimizer=self.optimizer,
                learning_rate=self.learning_rate,
                batch_size=self.batch_size,
                max_iter=self.max_iter,
                tol=self.tol,
                generator=check_random_generator(self.random_state, X.device),
                reg_covar=reg_covar,
                sample_weight=weights,
                chunk_size=rows,
                fixed=fixed.groups | {"weights"},  # one component: its weight is 1
            ),
            n_init=1,
            progress=Progress(),
            max_iter=self.max_iter,
        )
        return fixed.impose(mixture), trace


def _mean_by_label(mean: Any, names: Any) -> Any:
    """A pandas Series ``fixed_mean`` labelled by column names, in the order of ``names``
    (the columns ``X`` was fitted with); anything else, and a Series with the default
    labels 0..n-1, as given (by position)."""
    if not (getattr(mean, "ndim", None) == 1 and hasattr(mean, "index") and hasattr(mean, "iloc")):
        return mean
    labels = list(mean.index)
    if labels == list(range(len(labels))):
        return mean
    if names is None:
        raise ValueError(
            f"fixed_mean is a Series labelled {labels!r}, but X has no column names to "
            "match them with; fit on a DataFrame with those columns, or pass the values in "
            "the order of X's columns as an array."
        )
    columns = [str(name) for name in names]
    given = [str(label) for label in labels]
    missing = [name for name in columns if name not in given]
    extra = [label for label in given if label not in columns]
    if missing or extra or len(set(given)) != len(given):
        raise ValueError(
            f"fixed_mean's labels {given!r} must be X's columns {columns!r}, each once "
            f"(missing: {missing!r}, unknown: {extra!r})."
        )
    by_label = dict(zip(given, mean.to_numpy(), strict=True))
    return [by_label[name] for name in columns]

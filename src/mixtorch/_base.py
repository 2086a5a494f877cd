"""Scoring, prediction and sampling shared by every estimator that holds a ``mixture_``;
the hook of the estimators that hold a joint ``mixture_model_`` instead."""

from __future__ import annotations

import math
import numbers
import warnings
from collections.abc import Callable
from typing import Any

import torch
from sklearn.utils.validation import check_is_fitted

from ._chunks import chunk_rows
from ._data import refuse_sources
from ._mixture_scoring import weighted_mean
from ._validation import OutputKind, as_output, check_random_generator, integer, to_tensor
from .fit.missing import observed_weighted_log_prob
from .mixture import Mixture

__all__ = ["JointMixtureMixin", "MixtureScoringMixin"]


class MixtureScoringMixin:
    """Methods of a fitted density model whose parameters live in ``self.mixture_``.

    Subclasses set ``mixture_`` and ``_fit_kind`` in ``fit`` (through the fitted-state
    protocol of :mod:`mixtorch._estimator`) and define the
    ``chunk_size`` and ``random_state`` parameters.
    """

    mixture_: Mixture
    _fit_kind: OutputKind
    chunk_size: int | None
    random_state: Any

    # -- helpers ---------------------------------------------------------------------
    def _prepare(self, X: Any, defer_finite: bool = False) -> tuple[torch.Tensor, OutputKind, int]:
        """``X`` validated as a tensor in the model's dtype and device, its output kind,
        and the E-step's chunk rows. ``defer_finite``: leave the check for NaN and
        infinity to :meth:`_scoring_input` (see :func:`mixtorch._validation.to_tensor`)."""
        check_is_fitted(self, "mixture_")
        refuse_sources(X, type(self).__name__)
        mixture = self.mixture_
        tensor, kind = to_tensor(
            self,
            X,
            reset=False,
            dtype=mixture.dtype,
            device=mixture.device,
            allow_nan=getattr(self, "missing_values", None) is not None,
            defer_finite=defer_finite,
        )
        rows = chunk_rows(
            mixture.n_components, mixture.n_features, self.chunk_size, type(mixture.covariance)
        )
        return tensor, kind, rows

    def _scoring_input(self, X: Any) -> tuple[torch.Tensor, OutputKind, Callable[[], None]]:
        """``X`` for a scoring pass, its output kind, and the pass's ``on_overflow``.

        The pass reads the data once: NaN and infinity are found by it (they make terms
        non-finite), and ``on_overflow`` then validates ``X`` again with the check, which
        raises the error that validating first would have raised. Saves a read of all of
        ``X`` (0.8 ms of 7 on 200k x 16 float32, 1.5 ms when ``X`` is not in the caches).
        """
        tensor, kind, _ = self._prepare(X, defer_finite=True)

        def check() -> None:
            with warnings.catch_warnings():  # the first validation gave its warnings
                warnings.simplefilter("ignore")
                self._prepare(X)

        return tensor, kind, check

    def _observed(self, X: torch.Tensor) -> torch.Tensor | None:
        """Weighted log-densities over each row's observed entries, when ``X`` has
        missing entries (``missing_values=np.nan``); None for complete rows."""
        if getattr(self, "missing_values", None) is None or not bool(torch.isnan(X).any()):
            return None
        return observed_weighted_log_prob(self.mixture_, X)

    def _n_parameters(self) -> int:
        """Number of free parameters of the fitted model (those held fixed not counted)."""
        check_is_fitted(self, "mixture_")
        return self.mixture_.n_parameters(self._held_groups())

    def _held_groups(self) -> frozenset[str]:
        """Parameter groups the fit was given rather than estimated (none here)."""
        return frozenset()

    # -- densities -------------------------------------------------------------------
    def score_samples(self, X: Any) -> Any:
        """Log-density of each sample under the fitted model.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Points to score: NumPy/array-likes give NumPy output, tensors give tensors on
            the model's device. NaN entries are accepted only with ``missing_values``
            set; each such row is then scored by its observed entries' marginal.

        Returns
        -------
        log_prob : ndarray or Tensor of shape (n_samples,)
            ``log p(x_i)`` in the model's dtype; ``-inf`` for points so far away that
            their density underflows.

        See Also
        --------
        score : Their mean.
        predict_proba : The share of each component in the density.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(500, 2))
        >>> model = GaussianMixture(n_components=2, random_state=0).fit(X)
        >>> model.score_samples([[0.0, 0.0], [5.0, 5.0]]).round(1)
        array([ -1.8, -28. ])
        """
        tensor, kind, check = self._scoring_input(X)
        observed = self._observed(tensor)
        if observed is not None:
            return as_output(torch.logsumexp(observed, 1), kind)
        return as_output(self._log_prob(tensor, check), kind)

    def _log_prob(self, X: torch.Tensor, on_overflow: Callable[[], None]) -> torch.Tensor:
        """Log-densities of validated rows (the mixture's chunked pass; a single Gaussian
        overrides it with its direct form)."""
        return self.mixture_.log_prob(X, self.chunk_size, on_overflow)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean log-likelihood per sample (scikit-learn's convention for mixtures).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Points to score (as for :meth:`score_samples`).
        y : ignored
            Present for scikit-learn's API (pipelines, grid searches).
        sample_weight : array-like or Tensor of shape (n_samples,), optional
            Non-negative frequency weights, as ``fit`` takes them: the result is then
            ``sum_i w_i log p(x_i) / sum_i w_i`` (rows of weight 0 take no part). A
            ValueError naming ``sample_weight`` for a wrong length, NaN, infinity, a
            negative entry or weights that are all zero. :meth:`bic` and :meth:`aic`
            stay unweighted: their ``n`` counts rows (repeat the rows for integer
            weights).

        Returns
        -------
        float
            ``mean_i log p(x_i)`` (or its weighted mean), summed in float64 whatever the
            model's dtype.

        See Also
        --------
        score_samples : The per-sample values.
        bic, aic : Penalised versions for choosing a model.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(500, 2))
        >>> model = GaussianMixture(n_components=1).fit(X)
        >>> round(model.score(X), 2)
        -2.79
        >>> w = np.arange(500) % 3
        >>> bool(np.isclose(model.score(X, sample_weight=w),
        ...                 np.average(model.score_samples(X), weights=w)))
        True
        """
        tensor, _, check = self._scoring_input(X)
        observed = self._observed(tensor)
        if observed is not None:
            return weighted_mean(torch.logsumexp(observed, 1), sample_weight)
        if sample_weight is not None:
            return weighted_mean(self._log_prob(tensor, check), sample_weight)
        total = self.mixture_.total_log_prob(tensor, self.chunk_size, check)
        return float(total) / tensor.shape[0]

    def bic(self, X: Any) -> float:
        """Bayesian information criterion [1]_, ``-2 log L + p log n``; lower is better.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Data on which ``log L`` (the total log-likelihood) is computed, usually the
            training data; ``n`` is its number of rows and ``p`` the model's number of
            free parameters: groups held fixed in the fit (``fixed``, ``fixed_mean``,
            ``fixed_covariance``) were not estimated and are not counted.

        Returns
        -------
        float

        See Also
        --------
        aic : A lighter penalty, ``2 p``.
        mixtorch.selection.select : BIC/AIC over a grid of models, with a table.

        References
        ----------
        .. [1] G. Schwarz, "Estimating the dimension of a model", Ann. Statist. 6(2),
           1978.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(-4, 1, (300, 1)), rng.normal(4, 1, (300, 1))])
        >>> bics = [GaussianMixture(k, random_state=0).fit(X).bic(X) for k in (1, 2, 3)]
        >>> int(np.argmin(bics)) + 1
        2
        """
        n_samples = _n_rows(X)
        log_likelihood = self.score(X) * n_samples
        return -2.0 * log_likelihood + self._n_parameters() * math.log(n_samples)

    def aic(self, X: Any) -> float:
        """Akaike information criterion [1]_, ``-2 log L + 2 p``; lower is better.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Data on which the total log-likelihood ``log L`` is computed; ``p`` is the
            model's number of free parameters (those held fixed not counted, as for
            :meth:`bic`).

        Returns
        -------
        float

        See Also
        --------
        bic : A penalty growing with ``log n``, which favours smaller models.

        References
        ----------
        .. [1] H. Akaike, "A new look at the statistical model identification", IEEE
           Trans. Automatic Control 19(6), 1974.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(400, 2))
        >>> model = GaussianMixture(n_components=1).fit(X)
        >>> bool(model.aic(X) < model.bic(X))  # 2 p < p log 400
        True
        """
        return -2.0 * self.score(X) * _n_rows(X) + 2.0 * self._n_parameters()

    # -- generation ------------------------------------------------------------------
    def _draw(self, n_samples: int) -> tuple[Any, Any]:
        check_is_fitted(self, "mixture_")
        n_samples = integer(n_samples, "n_samples")
        if n_samples < 1:
            raise ValueError(
                f"Invalid value for 'n_samples': {n_samples}. The sampling requires at "
                "least one sample."
            )
        generator = check_random_generator(self.random_state, self.mixture_.device)
        samples, labels = self.mixture_.sample(int(n_samples), generator)
        return as_output(samples, self._fit_kind), as_output(labels, self._fit_kind)


class ClusterScoringMixin(MixtureScoringMixin):
    """Cluster assignment methods for models with several components."""

    def predict(self, X: Any) -> Any:
        """Most probable component of each sample (hard cluster assignment).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Points to assign (as for :meth:`score_samples`).

        Returns
        -------
        labels : ndarray or Tensor of shape (n_samples,)
            ``argmax_k w_k N(x_i | m_k, S_k)`` (int64); ties go to the lowest index.

        See Also
        --------
        predict_proba : The soft assignment.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> model = GaussianMixture.from_parameters(
        ...     [0.5, 0.5], [[-3.0], [3.0]], [[[1.0]], [[1.0]]], covariance_type="full")
        >>> model.predict([[-2.0], [0.5], [4.0]])
        array([0, 1, 1])
        """
        tensor, kind, check = self._scoring_input(X)
        observed = self._observed(tensor)
        if observed is not None:
            return as_output(observed.argmax(1), kind)
        return as_output(self.mixture_.predict(tensor, self.chunk_size, check), kind)

    def predict_proba(self, X: Any) -> Any:
        """Posterior probability of each component given each sample (responsibilities).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Points to assign (as for :meth:`score_samples`).

        Returns
        -------
        responsibilities : ndarray or Tensor of shape (n_samples, n_components)
            ``p(z_i = k | x_i)``; every row sums to one.

        See Also
        --------
        predict : The most probable component.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> model = GaussianMixture.from_parameters(
        ...     [0.5, 0.5], [[-1.0], [1.0]], [[[1.0]], [[1.0]]], covariance_type="full")
        >>> model.predict_proba([[0.0], [1.0]]).round(3)
        array([[0.5  , 0.5  ],
               [0.119, 0.881]])
        """
        tensor, kind, check = self._scoring_input(X)
        observed = self._observed(tensor)
        if observed is not None:
            return as_output(torch.softmax(observed, 1), kind)
        return as_output(self.mixture_.responsibilities(tensor, self.chunk_size, check), kind)

    def sample(self, n_samples: int = 1) -> tuple[Any, Any]:
        """Generate samples: a component by its weight, then a point from it.

        Parameters
        ----------
        n_samples : int, default=1
            Number of points to draw. Draws come from the ``random_state`` the model
            was built with (an int seed gives the same draws on every call, as in
            scikit-learn).

        Returns
        -------
        X : ndarray or Tensor of shape (n_samples, n_features)
            The points, in the model's dtype, on its device for tensor models.
        y : ndarray or Tensor of shape (n_samples,)
            Component labels, grouped by component.

        See Also
        --------
        mixtorch.Mixture.sample : The value-level draw, with a ``torch.Generator``.

        Examples
        --------
        >>> from mixtorch import GaussianMixture
        >>> model = GaussianMixture.from_parameters(
        ...     [0.25, 0.75], [[0.0, 0.0], [10.0, 10.0]], [[1.0, 1.0], [1.0, 1.0]],
        ...     covariance_type="diag", random_state=0)
        >>> X, y = model.sample(1000)
        >>> X.shape, round(float(y.mean()), 1)
        ((1000, 2), 0.7)
        """
        return self._draw(n_samples)


def _n_rows(X: Any) -> int:
    shape = getattr(X, "shape", None)
    return int(shape[0]) if shape is not None else len(X)


class JointMixtureMixin:
    """The hook of an estimator whose fitted model is a :class:`~mixtorch.GaussianMixture`
    over other columns than ``X``'s (``mixture_model_``): the regressor's over ``[X, y]``,
    the imputer's over the features of ``X`` that had an observed value in fit.

    :func:`mixtorch.load` asks :meth:`__mixtorch_joint_features__` how many columns the
    stored mixture must cover, so that it needs to know nothing of each class's
    attributes. A protocol method (as scikit-learn's ``__sklearn_is_fitted__``), not a
    private one: ``io`` lies below the estimators and calls none of their private methods.
    """

    def __mixtorch_joint_features__(self) -> int:
        """The number of columns ``mixture_model_`` covers, from the other fitted
        attributes; a ``ValueError`` naming one that is not a positive integer (a file
        edited by hand)."""
        raise NotImplementedError(f"{type(self).__name__} does not say what its mixture covers.")

    def _fitted_count(self, name: str) -> int:
        """The fitted attribute ``name`` as a positive int; a ``ValueError`` naming it if it
        is anything else (a bool, a float, a string, zero)."""
        count = getattr(self, name)
        if isinstance(count, bool) or not isinstance(count, numbers.Integral) or count < 1:
            raise ValueError(f"{name} must be a positive integer, got {count!r}")
        return int(count)

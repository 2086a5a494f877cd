"""``GaussianMixture``: scikit-learn's estimator, fitted by EM in torch."""

from __future__ import annotations

import math
import numbers
import warnings
from typing import Any

import torch
from sklearn.base import BaseEstimator, DensityMixin
from sklearn.exceptions import ConvergenceWarning

from ._base import ClusterScoringMixin
from ._chunks import chunk_list, chunk_rows
from ._conditional import ConditioningMixin
from ._validation import OutputKind, as_output, check_random_generator, resolve_dtype, to_tensor
from .covariance import Covariance, covariance_class
from .fit.collapse import warn_if_collapsed
from .fit.em import EMTrace, fit_em
from .fit.gradient import GradientTrace, check_gradient_options, fit_gradient
from .fit.init import INIT_METHODS, initial_mixture
from .mixture import Mixture, _check_covariance_shape, _check_weights

__all__ = ["GaussianMixture"]


class GaussianMixture(ConditioningMixin, ClusterScoringMixin, DensityMixin, BaseEstimator):
    """Gaussian mixture fitted by expectation-maximisation, on CPU or GPU.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: same parameters,
    defaults, fitted attributes and methods, plus ``chunk_size``, ``device`` and ``dtype``.
    NumPy input gives NumPy output; tensor input gives tensors on the input's device.

    Parameters
    ----------
    n_components : int, default=1
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
    n_init : int, default=1
        Number of initialisations; the best (highest lower bound) is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
    weights_init : array-like of shape (n_components,), optional
    means_init : array-like of shape (n_components, n_features), optional
    precisions_init : array-like, optional
        Shape depends on ``covariance_type`` as in scikit-learn.
    random_state : int, RandomState, Generator or torch.Generator, optional
    warm_start : bool, default=False
        Start from the previous fit's parameters (``n_init`` is then ignored).
    verbose : int, default=0
    verbose_interval : int, default=10
    chunk_size : int, optional
        Rows per chunk in every pass over the data; by default chosen so that the largest
        intermediate holds about 8M elements. Memory for responsibilities and
        differences is proportional to ``chunk_size``, never to ``n_samples``.
    device : str or torch.device, optional
        Where to compute. By default the input tensor's device (CPU for NumPy input).
    dtype : {'float32', 'float64'} or torch.dtype, optional
        Computation dtype. By default float32 input stays float32, otherwise float64.
    algorithm : {'em', 'gradient'}, default='em'
        'gradient' minimises the negative log-likelihood with a torch optimiser from the
        same initialisation as EM (see :func:`mixtorch.fit.gradient.fit_gradient`);
        ``max_iter`` then counts epochs and ``tol`` applies to the change of the epoch's
        mean NLL per sample, which must stay below it for 10 epochs.
    optimizer : str, torch.optim.Optimizer class or callable, default='adam'
        Only for ``algorithm='gradient'``: 'adam', 'adamw', 'sgd', 'rmsprop', 'adagrad',
        'lbfgs', an optimiser class, or a callable ``(params, lr=...) -> optimizer``.
    learning_rate : float, default=0.05
        Only for ``algorithm='gradient'``.
    batch_size : int, optional
        Only for ``algorithm='gradient'``: rows per step (default: full batch).
    init_sample_size : int, default=100_000
        When fitting from a data source (a DataLoader, a ``.npy`` file, a directory of
        shards, a callable or a :class:`~mixtorch.sources.ChunkSource`), or across
        ``torch.distributed`` ranks: the size of the uniform reservoir sample of rows,
        drawn in one pass over the union of the shards, on which k-means++ seeding runs
        before Lloyd and EM pass over the full stream (see :mod:`mixtorch.streaming`).
    step_size_decay : float, default=0.7
        For :meth:`partial_fit` (stepwise EM): the t-th batch after the first enters the
        running statistics with weight ``(t + 2) ** -step_size_decay``; in (0.5, 1].

    Attributes
    ----------
    weights_ : array of shape (n_components,)
    means_ : array of shape (n_components, n_features)
    covariances_ : array, layout depending on ``covariance_type``
    precisions_ : array
    precisions_cholesky_ : array
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
        Mean log-likelihood per sample of the best run (from its last E-step).
    lower_bounds_ : list of float
        The lower bound at every iteration of the best run.
    n_features_in_ : int
    mixture_ : Mixture
        The fitted parameters as a torch value object (on the computation device).
    history_ : GradientTrace
        Only for ``algorithm='gradient'``: the best run's per-epoch NLL (and parameter
        snapshots for small models), with ``.table()`` and ``.plot()``.

    Notes
    -----
    Empty components: when a component's summed responsibility falls to round-off level
    (``100 * eps * n_samples``), it is re-seeded by splitting the most populated
    component along its principal axis; the split halves share its weight and covariance.
    Such an iteration never counts as converged. Collapsing components are held away from
    zero variance by ``reg_covar``.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-3, 1, size=(200, 2)), rng.normal(3, 1, size=(200, 2))])
    >>> gm = GaussianMixture(n_components=2, random_state=0).fit(X)
    >>> np.sort(gm.means_[:, 0]).round(1)
    array([-3.1,  3. ])
    >>> gm.predict([[-3.0, -3.0], [3.0, 3.0]]).tolist() in ([0, 1], [1, 0])
    True
    >>> gm.predict_proba([[0.0, 0.0]]).round(2)
    array([[0.58, 0.42]])
    >>> round(float(gm.score(X)), 2)
    -3.53
    """

    def __init__(
        self,
        n_components: int = 1,
        *,
        covariance_type: str = "full",
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        weights_init: Any = None,
        means_init: Any = None,
        precisions_init: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        device: Any = None,
        dtype: Any = None,
        algorithm: str = "em",
        optimizer: Any = "adam",
        learning_rate: float = 0.05,
        batch_size: int | None = None,
        init_sample_size: int = 100_000,
        step_size_decay: float = 0.7,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weights_init = weights_init
        self.means_init = means_init
        self.precisions_init = precisions_init
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype
        self.algorithm = algorithm
        self.optimizer = optimizer
        self.learning_rate = learning_rate
        self.batch_size = batch_size
        self.init_sample_size = init_sample_size
        self.step_size_decay = step_size_decay

    # -- construction from known parameters ------------------------------------------
    @classmethod
    def from_parameters(
        cls,
        weights: Any,
        means: Any,
        covariances: Any,
        covariance_type: str = "full",
        **params: Any,
    ) -> GaussianMixture:
        """A ready-to-use model with the given parameters (scikit-learn layouts).

        Parameters
        ----------
        weights : array-like of shape (n_components,)
        means : array-like of shape (n_components, n_features)
        covariances : array-like
            (K, D, D) for 'full', (D, D) for 'tied', (K, D) for 'diag', (K,) for 'spherical'.
        covariance_type : str, default='full'
        **params
            Other constructor parameters (``random_state``, ``device``, ``dtype``, ...).

        Examples
        --------
        >>> from mixtorch import GaussianMixture
        >>> model = GaussianMixture.from_parameters(
        ...     [0.5, 0.5], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 1.0], [1.0, 1.0]],
        ...     covariance_type="diag", random_state=0,
        ... )
        >>> model.predict([[0.1, -0.2], [2.9, 3.3]])
        array([0, 1])
        >>> X, labels = model.sample(4)
        >>> X.shape, labels.shape
        ((4, 2), (4,))
        """
        dtype = resolve_dtype(params.get("dtype"), means)
        mixture = Mixture.from_parameters(
            weights, means, covariances, covariance_type, dtype=dtype, device=params.get("device")
        )
        model = cls(n_components=mixture.n_components, covariance_type=covariance_type, **params)
        model._store(mixture, EMTrace(), OutputKind.of(means))
        return model

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, callback: Any = None) -> GaussianMixture:
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored
        callback : callable, optional
            Called as ``callback(iteration, lower_bound)`` after every EM iteration (or
            gradient epoch) of in-memory fits, e.g. to drive a progress bar.

        Returns
        -------
        self
        """
        self._callback = callback
        if _uses_streaming(self, X):
            from .streaming import fit_source

            fit_source(self, X, return_labels=False)
            return self
        self.fit_predict(X, y)
        return self

    def partial_fit(self, X: Any, y: Any = None) -> GaussianMixture:
        """One stepwise-EM update from the batch ``X`` (online EM for unbounded streams).

        The first call initialises from the batch (``init_params``); each later batch is
        blended into running sufficient statistics with step ``(t + 2) ** -step_size_decay``
        followed by an M-step (see :mod:`mixtorch.streaming`).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored

        Returns
        -------
        self

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> model = GaussianMixture(2, random_state=0)
        >>> for _ in range(50):
        ...     batch = np.concatenate([rng.normal(-3, 1, (50, 1)), rng.normal(3, 1, (50, 1))])
        ...     model = model.partial_fit(batch)
        ...
        >>> np.sort(model.means_[:, 0]).round(0)
        array([-3.,  3.])
        >>> model.n_iter_
        50
        """
        from .streaming import partial_fit

        return partial_fit(self, X)

    def fit_predict(self, X: Any, y: Any = None) -> Any:
        """Fit, then return the component of each sample (after one last E-step, so the
        labels agree with ``predict``)."""
        if _uses_streaming(self, X):
            from .streaming import fit_source

            return fit_source(self, X)
        self._check_parameters()
        warm = bool(self.warm_start) and hasattr(self, "mixture_")
        dtype = resolve_dtype(self.dtype, X) if not warm else self.mixture_.dtype
        tensor, kind = to_tensor(
            self, X, reset=not warm, dtype=dtype, device=self.device, ensure_min_samples=2
        )
        n_samples, n_features = tensor.shape
        if n_samples < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {n_samples}"
            )
        initial_parameters = self._initial_parameters(n_features, tensor)
        rows = chunk_rows(self.n_components, n_features, self.chunk_size, self.covariance_type)
        generator = check_random_generator(self.random_state, tensor.device)
        best: tuple[Mixture, EMTrace | GradientTrace] | None = None
        for init in range(1 if warm else self.n_init):
            if warm:
                start = self.mixture_.to(tensor.device, tensor.dtype)
                previous = self.lower_bound_
            else:
                start = self._initialise(tensor, generator, rows, initial_parameters)
                previous = -math.inf
            self._say(1, f"Initialization {init}")
            result = self._run(tensor, start, rows, previous, generator)
            self._say(
                1, f"Initialization {'converged' if result[1].converged else 'did not converge'}."
            )
            if best is None or result[1].lower_bound > best[1].lower_bound:
                best = result
        assert best is not None
        mixture, trace = best
        if not trace.converged and self.max_iter > 0:
            warnings.warn(
                "Best performing initialization did not converge. Try different init "
                "parameters, or increase max_iter, tol, or check for degenerate data.",
                ConvergenceWarning,
                stacklevel=2,
            )
        warn_if_collapsed(mixture, self.reg_covar)  # the kept run only (numerics, issue 13)
        self._store(mixture, trace, kind)
        return as_output(mixture.predict(tensor, rows), kind)

    def _run(
        self,
        X: torch.Tensor,
        start: Mixture,
        rows: int,
        previous: float,
        generator: torch.Generator,
    ) -> tuple[Mixture, EMTrace | GradientTrace]:
        """One run of the chosen algorithm from ``start``."""
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
                callback=self._report_epoch if self._reporting() else None,
            )
        chunks = chunk_list(X, rows)
        return fit_em(
            lambda: chunks,
            start,
            tol=self.tol,
            max_iter=self.max_iter,
            reg_covar=self.reg_covar,
            previous_lower_bound=previous,
            callback=self._report if self._reporting() else None,
        )

    def _initialise(
        self, X: torch.Tensor, generator: torch.Generator, rows: int, given: dict[str, Any]
    ) -> Mixture:
        covariance_type = covariance_class(self.covariance_type)
        if len(given) == 3:
            weights, means, covariance = given["weights"], given["means"], given["covariance"]
        else:
            start = initial_mixture(
                X,
                self.n_components,
                covariance_type,
                self.init_params,
                self.reg_covar,
                generator,
                rows,
            )
            weights = given.get("weights", start.weights)
            means = given.get("means", start.means)
            covariance = given.get("covariance", start.covariance)
        return Mixture(weights, means, covariance)

    def _initial_parameters(self, n_features: int, X: torch.Tensor) -> dict[str, Any]:
        """``weights_init``, ``means_init`` and ``precisions_init``, checked and converted."""
        K = self.n_components
        given: dict[str, Any] = {}
        if self.weights_init is not None:
            weights = torch.as_tensor(self.weights_init, dtype=X.dtype, device=X.device).reshape(-1)
            if weights.shape != (K,):
                raise ValueError(
                    f"weights_init must have shape ({K},), got {tuple(weights.shape)}."
                )
            _check_weights(weights)
            given["weights"] = weights
        if self.means_init is not None:
            means = torch.as_tensor(self.means_init, dtype=X.dtype, device=X.device)
            if means.shape != (K, n_features):
                raise ValueError(
                    f"means_init must have shape ({K}, {n_features}), got {tuple(means.shape)}."
                )
            given["means"] = means
        if self.precisions_init is not None:
            precisions = torch.as_tensor(self.precisions_init, dtype=X.dtype, device=X.device)
            _check_covariance_shape(precisions, self.covariance_type, K, n_features)
            kind = covariance_class(self.covariance_type)
            try:
                given["covariance"] = kind.from_precisions(precisions, n_features)
            except (ValueError, RuntimeError) as error:
                raise ValueError(
                    f"precisions_init must be symmetric positive definite: {error}"
                ) from error
        return given

    def _check_parameters(self) -> None:
        _check_int(self.n_components, "n_components", 1)
        _check_int(self.n_init, "n_init", 1)
        _check_int(self.max_iter, "max_iter", 0)
        _check_int(self.verbose_interval, "verbose_interval", 1)
        for name in ("tol", "reg_covar"):
            value = getattr(self, name)
            valid = isinstance(value, numbers.Real) and math.isfinite(value) and float(value) >= 0
            if not valid:
                raise ValueError(f"{name} must be a non-negative finite number, got {value!r}.")
        covariance_class(self.covariance_type)
        if self.init_params not in INIT_METHODS:
            raise ValueError(
                f"init_params must be one of {INIT_METHODS}, got {self.init_params!r}."
            )
        check_gradient_options(self, ("em", "gradient"))

    def _store(self, mixture: Mixture, trace: EMTrace | GradientTrace, kind: Any) -> None:
        covariance: Covariance = mixture.covariance
        self.mixture_ = mixture
        self._fit_kind = kind
        self.weights_ = as_output(mixture.weights, kind)
        self.means_ = as_output(mixture.means, kind)
        self.covariances_ = as_output(covariance.covariances, kind)
        self.precisions_ = as_output(covariance.precisions(), kind)
        self.precisions_cholesky_ = as_output(covariance.precisions_cholesky(), kind)
        self.converged_ = trace.converged
        self.n_iter_ = trace.n_iter
        self.lower_bound_ = trace.lower_bound
        self.lower_bounds_ = list(trace.lower_bounds)
        if isinstance(trace, GradientTrace):
            self.history_ = trace
        elif hasattr(self, "history_"):
            del self.history_
        self.n_features_in_ = mixture.n_features

    # -- progress --------------------------------------------------------------------
    def _say(self, level: int, message: str) -> None:
        if self.verbose >= level:
            print(message)

    def _reporting(self) -> bool:
        return bool(self.verbose) or getattr(self, "_callback", None) is not None

    def _report(self, iteration: int, lower_bound: float, change: float) -> None:
        callback = getattr(self, "_callback", None)
        if callback is not None:
            callback(iteration, lower_bound)
        if iteration % self.verbose_interval == 0:
            detail = f"\t lower bound {lower_bound:.5f}\t change {change:.3g}"
            self._say(1, f"  Iteration {iteration}" + (detail if self.verbose >= 2 else ""))

    def _report_epoch(self, epoch: int, nll: float) -> None:
        self._report(epoch, -nll, math.nan)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mixture_")


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def _uses_streaming(estimator: GaussianMixture, X: Any) -> bool:
    from .streaming import uses_streaming

    return uses_streaming(estimator, X)

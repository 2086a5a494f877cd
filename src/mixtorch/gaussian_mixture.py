"""``GaussianMixture``: scikit-learn's estimator, fitted by EM in torch."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any, ClassVar

import torch
from sklearn.base import DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ClusterScoringMixin
from ._chunks import chunk_rows
from ._conditional import ConditioningMixin
from ._estimator import (
    MIXTURE_CONSTRAINTS,
    OPTIMIZER,
    MixtureEstimator,
    Progress,
    keeps_state_on_failure,
)
from ._known_parameters import KnownParametersMixin
from ._memory_fit import InMemoryFitMixin
from ._online import OnlineFitMixin
from ._validation import OutputKind, as_output
from .covariance import Covariance, covariance_class
from .fit.em import EMTrace
from .fit.gradient import GradientTrace
from .fit.start import StartSpec, check_continues, check_given_start
from .mixture import Mixture

__all__ = ["GaussianMixture"]


class GaussianMixture(
    KnownParametersMixin,
    ConditioningMixin,
    OnlineFitMixin,
    InMemoryFitMixin,
    ClusterScoringMixin,
    DensityMixin,
    MixtureEstimator,
):
    """Gaussian mixture fitted by expectation-maximisation, on CPU or GPU.

    A drop-in replacement for :class:`sklearn.mixture.GaussianMixture`: same parameters,
    defaults, fitted attributes and methods, plus ``chunk_size``, ``device`` and ``dtype``.
    NumPy input gives NumPy output; tensor input gives tensors on the input's device.

    Parameters
    ----------
    n_components : int, default=1
        Number of Gaussian components K.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Covariance of each component: a full (D, D) matrix each ('full'), one full matrix
        shared by all ('tied'), a diagonal each ('diag') or one variance each
        ('spherical'); see :mod:`mixtorch.covariance`.
    tol : float, default=1e-3
        Convergence threshold on the change of the mean log-likelihood per sample
        between two EM iterations.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance after each M-step, so that no
        component collapses onto a point.
    max_iter : int, default=100
        EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the best (highest lower bound) is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        Starting responsibilities: from k-means (k-means++ seeding then Lloyd
        iterations), from k-means++ seeds alone, random, or centred on random data
        points; as in scikit-learn.
    weights_init : array-like of shape (n_components,), optional
        Starting weights (summing to one); taken instead of ``init_params``'s.
    means_init : array-like of shape (n_components, n_features), optional
        Starting means; taken instead of ``init_params``'s.
    precisions_init : array-like, optional
        Starting precisions (inverse covariances), in scikit-learn's layout for
        ``covariance_type``: (K, D, D) full, (D, D) tied, (K, D) diag, (K,) spherical.
    random_state : int, RandomState, Generator or torch.Generator, optional
        Seed of the initialisation (and of sampling); an int gives reproducible fits.
    warm_start : bool, default=False
        Start from the previous fit's parameters (``n_init`` is then ignored); a changed
        ``n_components`` or ``covariance_type`` is a ValueError.
    verbose : int, default=0
        1 prints each initialisation's result, 2 also every ``verbose_interval``-th
        iteration's lower bound and time.
    verbose_interval : int, default=10
        Iterations between two progress lines when ``verbose >= 2``.
    chunk_size : int, optional
        Rows per chunk in every pass over the data (scoring passes take at most
        ``2**18 / n_components`` rows). By default EM's chunks hold about half a million
        elements in their largest intermediate (2 MiB of float32: 6241 rows for full
        covariances at K = D = 16, 43690 for diag) and scoring's a 4 MiB block (6553 rows
        full float32, 3276 float64, 16384 diag). Memory for responsibilities and
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
        'lbfgs' in any case (torch's class names such as 'Adam' or 'LBFGS' work too), an
        optimiser class, or a callable ``(params, lr=...) -> optimizer``.
    learning_rate : float, default=0.05
        Only for ``algorithm='gradient'``.
    batch_size : int, optional
        Only for ``algorithm='gradient'``: rows per step (default: full batch).
    init_sample_size : int, default=100_000
        When fitting from a data source (a DataLoader, a ``.npy`` file, a directory of
        shards, a callable or a :class:`~mixtorch.sources.ChunkSource`), or across
        ``torch.distributed`` ranks: the size of the uniform reservoir sample of rows,
        drawn in one pass over the union of the shards, on which k-means++ seeding runs
        before Lloyd and EM pass over the full stream (see :mod:`mixtorch.fit.streaming`).
    step_size_decay : float, default=0.7
        For :meth:`partial_fit` (stepwise EM): the t-th batch after the first enters the
        running statistics with weight ``(t + 2) ** -step_size_decay``; in (0.5, 1].
    missing_values : float or None, default=None
        ``np.nan`` to accept rows with missing entries (NaN, missing at random): EM then
        uses the expected sufficient statistics of every pattern of missing entries
        (exact EM, :mod:`mixtorch.fit.missing`; the start is drawn from the data with
        NaN replaced by column means), and ``score_samples``, ``score``, ``predict`` and
        ``predict_proba`` use each row's marginal over its observed entries. ``None``
        keeps NaN an error. Fits from data sources and across ``torch.distributed``
        ranks accept missing entries too (file readers then read empty and ``NA`` cells
        as NaN), with the same exact EM; ``algorithm='gradient'`` does not.
    fixed : tuple of {'weights', 'means', 'covariances'}, default=()
        Parameter groups taken from ``weights_init``, ``means_init`` and
        ``precisions_init`` (which must then be given) and never updated, by EM or by
        gradient fitting; the others get their best values given the fixed ones. With
        ``covariance_type='spherical'``, fixed tiny covariances and fixed equal weights,
        EM is k-means (Lloyd's algorithm) from ``means_init``. Empty components are not
        re-seeded while anything is fixed.

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

    stepwise_state_ : StepwiseState
        Only after :meth:`partial_fit`: the running statistics and step counter (saved
        with the model, so a loaded model continues).

    See Also
    --------
    BayesianGaussianMixture : Variational Bayes, which can switch unneeded components off.
    GaussianMixtureRegressor : Regression with the conditional of a joint mixture.
    GaussianMixtureImputer : Fills missing entries with conditional means or draws.
    mixtorch.Mixture : The fitted parameters as a torch value object (``mixture_``).
    mixtorch.selection.select : Choose K and the covariance type by BIC, AIC or CV.
    sklearn.mixture.GaussianMixture : The scikit-learn estimator this one mirrors.

    Notes
    -----
    EM alternates responsibilities (E-step) and weighted moments (M-step) [1]_; every
    pass goes over the data in chunks of ``chunk_size`` rows, so memory does not grow with
    ``n_samples``. Missing entries use the conditional moments of each row's missing
    part given its observed part [2]_. k-means++ seeding follows [3]_.

    Empty components: when a component's summed responsibility falls to round-off level
    (``100 * eps * n_samples``), it is re-seeded by splitting the most populated
    component along its principal axis; the split halves share its weight and covariance.
    Such an iteration never counts as converged. Collapsing components are held away from
    zero variance by ``reg_covar``.

    References
    ----------
    .. [1] A. P. Dempster, N. M. Laird and D. B. Rubin, "Maximum likelihood from
       incomplete data via the EM algorithm", J. R. Stat. Soc. B 39(1), 1977; and
       C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006, ch. 9.
    .. [2] Z. Ghahramani and M. I. Jordan, "Supervised learning from incomplete data via
       an EM approach", NIPS 6, 1994.
    .. [3] D. Arthur and S. Vassilvitskii, "k-means++: the advantages of careful
       seeding", SODA 2007.

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

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **MIXTURE_CONSTRAINTS,
        "weights_init": ["array-like", None],
        "means_init": ["array-like", None],
        "precisions_init": ["array-like", None],
        "algorithm": [StrOptions({"em", "gradient"})],
        "optimizer": OPTIMIZER,
        "learning_rate": [Interval(Real, 0.0, None, closed="neither")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), None],
        "init_sample_size": [Interval(Integral, 1, None, closed="left")],
        "step_size_decay": [Interval(Real, 0.5, 1.0, closed="right")],
        "missing_values": [Real, None],
        "fixed": [tuple, list, set, frozenset],
    }

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
        missing_values: Any = None,
        fixed: Any = (),
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
        self.missing_values = missing_values
        self.fixed = fixed

    def __sklearn_tags__(self) -> Any:
        """scikit-learn's tags; NaN input is allowed when ``missing_values`` is NaN (what
        pipelines, ``check_estimator`` and meta-estimators read)."""
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self.missing_values is not None
        return tags

    @classmethod
    def _params_of(cls, mixture: Mixture) -> dict[str, Any]:
        return {"n_components": mixture.n_components, "covariance_type": mixture.covariance_type}

    # -- fitting ---------------------------------------------------------------------
    def fit(
        self, X: Any, y: Any = None, sample_weight: Any = None, *, callback: Any = None
    ) -> GaussianMixture:
        """Estimate the parameters by EM.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features), or a data source
        y : ignored
        sample_weight : array-like or Tensor of shape (n_samples,), optional
            Non-negative frequency weights (a row of weight 2 counts twice, of weight 0 not
            at all; only relative weights matter) for the start (see
            :mod:`mixtorch.fit.init`: weighted k-means++ and Lloyd, ``'random_from_data'``
            draws in proportion to weight), every EM step and the gradient's mean NLL;
            ``lower_bound_`` is then the weighted mean log-likelihood; with missing entries
            the expected statistics of each row are weighted. Not for data sources or
            across ranks (:meth:`partial_fit` takes them there).
        callback : callable, optional
            Called as ``callback(iteration, lower_bound)`` after every EM iteration (or
            gradient epoch), e.g. to drive a progress bar.

        Returns
        -------
        self

        Raises
        ------
        ValueError
            For invalid parameters or data, and for ``sample_weight`` of the wrong length,
            with NaN, infinity, negative entries, or fewer positive ones than components.

        Examples
        --------
        Integer weights give the fit of the repeated rows:

        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> X = np.array([[0.0], [1.0], [10.0], [12.0]])
        >>> w = np.array([3, 1, 1, 1])
        >>> start = dict(means_init=[[0.0], [10.0]], random_state=0)
        >>> weighted = GaussianMixture(2, **start).fit(X, sample_weight=w)
        >>> repeated = GaussianMixture(2, **start).fit(np.repeat(X, w, axis=0))
        >>> np.allclose(weighted.means_, repeated.means_), weighted.means_.ravel().round(2)
        (True, array([ 0.25, 11.  ]))
        """
        self._fit(X, callback, labels=False, sample_weight=sample_weight)
        return self

    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then return the component of each sample (after one last E-step, so the
        labels agree with ``predict``); ``sample_weight`` as for :meth:`fit` (rows of
        weight 0 are labelled too)."""
        return self._fit(X, None, labels=True, sample_weight=sample_weight)

    @keeps_state_on_failure
    def _fit(self, X: Any, callback: Any, labels: bool, sample_weight: Any = None) -> Any:
        """Fit from a data source or across ranks (:mod:`mixtorch._online`), else in
        memory (:mod:`mixtorch._memory_fit`)."""
        self._validate_params()
        if callback is not None and not callable(callback):
            raise TypeError(
                "callback must be a callable taking (iteration, lower_bound), got "
                f"{type(callback).__name__}."
            )
        progress = Progress(self.verbose, self.verbose_interval, callback)
        if self._uses_source(X):
            return self._fit_source(X, progress, labels, weighted=sample_weight is not None)
        return self._fit_in_memory(X, progress, labels, sample_weight)

    # -- shared by the in-memory, source and online paths ------------------------------
    def _warm(self) -> bool:
        warm = bool(self.warm_start) and hasattr(self, "mixture_")
        if warm:
            check_continues(
                "GaussianMixture", self.mixture_, self.n_components, self.covariance_type
            )
        return warm

    def _covariance(self) -> type[Covariance]:
        return covariance_class(self.covariance_type)

    def _rows(self, n_features: int) -> int:
        """Rows per chunk: ``chunk_size``, else the covariance type's default."""
        return chunk_rows(self.n_components, n_features, self.chunk_size, self._covariance())

    def _start_spec(self, n_features: int, dtype: torch.dtype, device: Any) -> StartSpec:
        given = check_given_start(
            self.weights_init,
            self.means_init,
            self.precisions_init,
            self._covariance(),
            self.n_components,
            n_features,
            dtype,
            device,
        )
        return StartSpec(
            self.n_components, self._covariance(), self.init_params, self.reg_covar, **given
        )

    def _fit_record(self) -> EMTrace | GradientTrace:
        if hasattr(self, "history_"):
            return self.history_
        return EMTrace(list(self.lower_bounds_), self.n_iter_, self.converged_)

    def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None:
        """The fitted-state protocol (see :mod:`mixtorch._estimator`)."""
        trace = EMTrace() if record is None else record
        covariance: Covariance = mixture.covariance
        self.mixture_ = mixture
        self._fit_kind = output
        self.weights_ = as_output(mixture.weights, output)
        self.means_ = as_output(mixture.means, output)
        self.covariances_ = as_output(covariance.covariances, output)
        self.precisions_ = as_output(covariance.precisions(), output)
        self.precisions_cholesky_ = as_output(covariance.precisions_cholesky(), output)
        self.converged_ = trace.converged
        self.n_iter_ = trace.n_iter
        self.lower_bound_ = trace.lower_bound
        self.lower_bounds_ = list(trace.lower_bounds)
        if isinstance(trace, GradientTrace):
            self.history_ = trace
        elif hasattr(self, "history_"):
            del self.history_
        self.n_features_in_ = mixture.n_features
        self.__dict__.pop("stepwise_state_", None)  # a new fit: online EM starts afresh

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "mixture_")

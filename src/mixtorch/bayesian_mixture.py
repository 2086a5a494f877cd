"""``BayesianGaussianMixture``: scikit-learn's variational Bayesian mixture, in torch."""

from __future__ import annotations

from numbers import Real
from typing import Any, ClassVar

from sklearn.base import DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions

from ._base import ClusterScoringMixin
from ._bayesian_fit import VariationalFit, VariationalFitMixin
from ._bayesian_prior import PRIOR_TYPES
from ._conditional import PointEstimateConditioningMixin
from ._estimator import (
    MIXTURE_CONSTRAINTS,
    MixtureEstimator,
    keeps_state_on_failure,
)
from ._mixture_scoring import weighted_mean
from ._validation import OutputKind, as_output
from ._variational_scoring import VariationalScoringMixin
from .fit.variational import VariationalTrace
from .gaussian_mixture import GaussianMixture
from .mixture import Mixture

__all__ = ["BayesianGaussianMixture"]

_POSITIVE = Interval(Real, 0.0, None, closed="neither")


class BayesianGaussianMixture(
    VariationalFitMixin,
    PointEstimateConditioningMixin,
    VariationalScoringMixin,
    ClusterScoringMixin,
    DensityMixin,
    MixtureEstimator,
):
    """Variational Bayesian Gaussian mixture (closed-form coordinate ascent), on CPU or GPU.

    A drop-in replacement for :class:`sklearn.mixture.BayesianGaussianMixture`: the same
    model (Dirichlet or Dirichlet-process prior on the weights, Normal-Wishart prior on
    means and precisions), parameters, defaults, fitted attributes and methods, plus
    ``chunk_size``, ``device`` and ``dtype``. Surplus components end with negligible
    weight. NumPy input gives NumPy output; tensor input gives tensors on its device.

    Parameters
    ----------
    n_components : int, default=1
        Upper bound on the number of components.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Covariance structure of the components, as for :class:`GaussianMixture`.
    tol : float, default=1e-3
        Convergence threshold on the change of the lower bound (per sample).
    reg_covar : float, default=1e-6
        Added to the diagonal of the data's covariance estimates, so that no component
        collapses onto a point.
    max_iter : int, default=100
        Coordinate-ascent iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the one with the highest lower bound is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        Starting responsibilities, as for :class:`GaussianMixture`.
    weight_concentration_prior_type : {'dirichlet_process', 'dirichlet_distribution'}, \
default='dirichlet_process'
        Prior on the weights: a stick-breaking (truncated Dirichlet process) prior [2]_,
        which favours few components, or a symmetric Dirichlet distribution.
    weight_concentration_prior : float, optional
        Concentration of the weight prior (``gamma`` of the process, ``alpha`` of the
        Dirichlet); smaller values put more weight on fewer components. Defaults to
        ``1 / n_components``.
    mean_precision_prior : float, optional
        Precision scale ``beta_0`` of the Normal prior on the means (how strongly the
        means are pulled towards ``mean_prior``). Defaults to 1.
    mean_prior : array-like of shape (n_features,), optional
        Defaults to the data mean.
    degrees_of_freedom_prior : float, optional
        Defaults to ``n_features``; must exceed ``n_features - 1``.
    covariance_prior : float or array-like, optional
        (D, D) for full/tied, (D,) for diag, a float for spherical. Defaults to the data's
        (unbiased) covariance in that layout.
    random_state : int, RandomState, Generator or torch.Generator, optional
        Seed of the initialisation; an int gives reproducible fits.
    warm_start : bool, default=False
        Start from the previous fit's posterior (``n_init`` is then ignored); the prior
        is built again from today's parameters and ``X``, as scikit-learn does. A changed
        ``n_components``, ``covariance_type`` or ``weight_concentration_prior_type`` is
        a ValueError.
    verbose : int, default=0
        1 prints each initialisation's result, 2 also the lower bound every
        ``verbose_interval`` iterations.
    verbose_interval : int, default=10
        Iterations between two progress lines when ``verbose >= 2``.
    chunk_size : int, optional
        Rows per chunk in every pass over the data (memory is proportional to it, never
        to ``n_samples``); by default as for :class:`GaussianMixture`.
    device : str or torch.device, optional
        Where to compute; by default the input tensor's device (CPU for NumPy input).
    dtype : {'float32', 'float64'} or torch.dtype, optional
        Computation dtype; by default float32 input stays float32, otherwise float64.

    Attributes
    ----------
    weights_ : array of shape (n_components,)
    means_ : array of shape (n_components, n_features)
    covariances_, precisions_, precisions_cholesky_ : arrays in scikit-learn's layouts
    converged_ : bool
    n_iter_ : int
    lower_bound_ : float
    lower_bounds_ : list of float
        The bound at every iteration of the best run (non-decreasing).
    weight_concentration_prior_ : float
    weight_concentration_ : array of shape (n_components,) or tuple of two such arrays
    mean_precision_prior_ : float
    mean_precision_ : array of shape (n_components,)
    mean_prior_ : array of shape (n_features,)
    degrees_of_freedom_prior_ : float
    degrees_of_freedom_ : array of shape (n_components,) (a float for 'tied')
    covariance_prior_ : float or array
    n_features_in_ : int
    mixture_ : Mixture
        The point estimate of the variational posterior: the posterior-mean weights
        (``weights_``; under the ``'dirichlet_process'`` prior the truncated stick's
        expected weights renormalised to sum to one), the posterior-mean means
        (``means_``) and the inverse of the posterior-mean precisions (``covariances_``,
        the inverse of ``precisions_``; not the posterior mean of the covariances). Used
        by ``sample``, ``marginal`` and ``condition``.

    See Also
    --------
    GaussianMixture : Maximum-likelihood mixtures by EM.
    mixtorch.bayes.SVIGaussianMixture : Stochastic variational inference with Pyro.
    mixtorch.bayes.MCMCGaussianMixture : Posterior draws by NUTS with Pyro.
    sklearn.mixture.BayesianGaussianMixture : The scikit-learn estimator this one mirrors.

    Notes
    -----
    The updates are the closed-form mean-field coordinate ascent of [1]_ (ch. 10.2),
    run through the same chunked E-step kernels as EM.

    As in scikit-learn, ``score_samples``, ``predict`` and ``predict_proba`` use the
    *expected* log-weights and log-densities under the variational posterior (the
    quantities of the E-step), not the plug-in density of ``mixture_``. ``marginal`` and
    ``condition`` return a :class:`GaussianMixture` holding the marginal or conditional of
    that point estimate ``mixture_`` (not of the posterior predictive, a Student-t
    mixture), with the same weights, means and covariances a ``GaussianMixture`` built
    from ``weights_``, ``means_`` and ``covariances_`` would give; no variational
    posterior comes with them.

    References
    ----------
    .. [1] C. M. Bishop, *Pattern Recognition and Machine Learning*, Springer 2006,
       ch. 10.
    .. [2] D. M. Blei and M. I. Jordan, "Variational inference for Dirichlet process
       mixtures", Bayesian Analysis 1(1), 2006.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import BayesianGaussianMixture
    >>> rng = np.random.default_rng(0)
    >>> X = np.concatenate([rng.normal(-4, 1, size=(150, 2)), rng.normal(4, 1, size=(150, 2))])
    >>> bgm = BayesianGaussianMixture(n_components=6, random_state=0, max_iter=300).fit(X)
    >>> int((bgm.weights_ > 0.05).sum())
    2
    >>> bgm.converged_
    True
    """

    _parameter_constraints: ClassVar[dict[str, Any]] = {
        **MIXTURE_CONSTRAINTS,
        "weight_concentration_prior_type": [StrOptions(set(PRIOR_TYPES))],
        "weight_concentration_prior": [None, _POSITIVE],
        "mean_precision_prior": [None, _POSITIVE],
        "mean_prior": [None, "array-like"],
        "degrees_of_freedom_prior": [None, _POSITIVE],
        "covariance_prior": [None, "array-like", _POSITIVE],
    }
    #: ``marginal`` and ``condition`` return fitted GaussianMixture (no posterior to carry).
    _conditioned_estimator = GaussianMixture

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
        weight_concentration_prior_type: str = "dirichlet_process",
        weight_concentration_prior: float | None = None,
        mean_precision_prior: float | None = None,
        mean_prior: Any = None,
        degrees_of_freedom_prior: float | None = None,
        covariance_prior: Any = None,
        random_state: Any = None,
        warm_start: bool = False,
        verbose: int = 0,
        verbose_interval: int = 10,
        chunk_size: int | None = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.n_components = n_components
        self.covariance_type = covariance_type
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.weight_concentration_prior_type = weight_concentration_prior_type
        self.weight_concentration_prior = weight_concentration_prior
        self.mean_precision_prior = mean_precision_prior
        self.mean_prior = mean_prior
        self.degrees_of_freedom_prior = degrees_of_freedom_prior
        self.covariance_prior = covariance_prior
        self.random_state = random_state
        self.warm_start = warm_start
        self.verbose = verbose
        self.verbose_interval = verbose_interval
        self.chunk_size = chunk_size
        self.device = device
        self.dtype = dtype

    # -- fitting ---------------------------------------------------------------------
    def fit(self, X: Any, y: Any = None, sample_weight: Any = None) -> BayesianGaussianMixture:
        """Estimate the variational posterior by coordinate ascent.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            In memory: unlike :class:`~mixtorch.GaussianMixture`, this estimator does not
            fit data sources or files (load them first, e.g. ``np.load(path)``).
        y : ignored
        sample_weight : array-like or Tensor of shape (n_samples,), optional
            Non-negative frequency weights: a row of weight ``w`` is the row seen ``w``
            times (weight 0: not at all), in the start (as for
            :meth:`GaussianMixture.fit`), every update and the default ``mean_prior`` and
            ``covariance_prior`` (weighted mean, and covariance over ``sum(w) - 1``). Their
            scale matters, unlike in maximum likelihood: doubling every weight doubles the
            evidence against the prior. Not across ``torch.distributed`` ranks. None
            weighs every row 1.

        Returns
        -------
        self

        Raises
        ------
        TypeError
            For a data source, a path or a callable as ``X``.
        ValueError
            For ``sample_weight`` of the wrong length, with NaN, infinity or negative
            entries, all zero, or too few positive entries.
        """
        self.fit_predict(X, y, sample_weight)
        return self

    @keeps_state_on_failure
    def fit_predict(self, X: Any, y: Any = None, sample_weight: Any = None) -> Any:
        """Fit, then return the component of each sample (agreeing with ``predict``);
        ``sample_weight`` as for :meth:`fit` (rows of weight 0 are labelled too)."""
        return self._fit_variational(X, sample_weight)

    def score(self, X: Any, y: Any = None, sample_weight: Any = None) -> float:
        """Mean of :meth:`score_samples` (scikit-learn's convention), weighted by
        ``sample_weight`` (``sum_i w_i l_i / sum_i w_i``; rows of weight 0 take no part)
        when given.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        y : ignored
        sample_weight : array-like of shape (n_samples,), optional

        Returns
        -------
        float
        """
        log_density, _ = self._log_density(X)
        return weighted_mean(log_density, sample_weight)

    @classmethod
    def _params_of(cls, mixture: Mixture) -> dict[str, Any]:
        return {"n_components": mixture.n_components, "covariance_type": mixture.covariance_type}

    def _fit_record(self) -> VariationalFit:
        trace = VariationalTrace(list(self.lower_bounds_), self.n_iter_, self.converged_)
        return VariationalFit(self._prior, self._posterior, trace)

    def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None:
        """The fitted-state protocol (see :mod:`mixtorch._estimator`): ``record`` is a
        :class:`VariationalFit`; ``mixture`` is its posterior-mean mixture."""
        if not isinstance(record, VariationalFit):
            raise TypeError("BayesianGaussianMixture is fitted from a VariationalFit record.")
        prior, posterior, trace, kind = record.prior, record.posterior, record.trace, output
        covariance = posterior.covariance
        self._prior, self._posterior, self._fit_kind = prior, posterior, kind
        self.mixture_ = mixture
        self.weights_ = as_output(self.mixture_.weights, kind)
        self.means_ = as_output(posterior.means, kind)
        self.covariances_ = as_output(covariance.covariances, kind)
        self.precisions_ = as_output(covariance.precisions(), kind)
        self.precisions_cholesky_ = as_output(covariance.precisions_cholesky(), kind)
        self.converged_ = trace.converged
        self.n_iter_ = trace.n_iter
        self.lower_bound_ = trace.lower_bound
        self.lower_bounds_ = list(trace.lower_bounds)
        self.weight_concentration_prior_ = prior.weight_concentration
        concentration = tuple(as_output(c, kind) for c in posterior.weight_concentration)
        self.weight_concentration_ = concentration if prior.process else concentration[0]
        self.mean_precision_prior_ = prior.mean_precision
        self.mean_precision_ = as_output(posterior.mean_precision, kind)
        self.mean_prior_ = as_output(prior.mean, kind)
        self.degrees_of_freedom_prior_ = prior.degrees_of_freedom
        dof = posterior.degrees_of_freedom
        self.degrees_of_freedom_ = float(dof) if dof.ndim == 0 else as_output(dof, kind)
        cov_prior = prior.covariance
        self.covariance_prior_ = (
            float(cov_prior) if cov_prior.ndim == 0 else as_output(cov_prior, kind)
        )

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_posterior")

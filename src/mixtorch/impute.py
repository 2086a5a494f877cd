"""``GaussianMixtureImputer``: fill missing entries from a Gaussian mixture's conditionals."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._missing import is_pandas_na, is_scalar_nan
from sklearn.utils._param_validation import MissingValues
from sklearn.utils.validation import check_is_fitted

from ._estimator import keeps_state_on_failure, mixture_constraints
from ._validation import (
    OutputKind,
    as_output,
    check_device,
    check_random_generator,
    resolve_dtype,
    validate_with_advice,
)
from .fit.missing import patterns
from .gaussian_mixture import GaussianMixture
from .regression import host_values

__all__ = ["GaussianMixtureImputer"]


class GaussianMixtureImputer(OneToOneFeatureMixin, TransformerMixin, BaseEstimator):
    """Impute missing entries with a Gaussian mixture fitted to the incomplete data.

    ``fit`` fits a :class:`~mixtorch.GaussianMixture` with ``missing_values=np.nan``
    (exact EM with entries missing at random [1]_: no row is dropped and nothing is filled
    in before fitting). ``transform`` replaces every missing entry of a row with its
    conditional mean given the row's observed entries, a mixture of the components'
    regressions weighted by how well each explains the observed part; with
    ``sample_posterior=True`` it draws from that conditional instead (for multiple
    imputation). Clustered data with different correlations per cluster are where this
    beats chained linear regressions.

    Parameters
    ----------
    n_components : int, default=1
        Components K of the mixture; one component is a single multivariate Gaussian.
    missing_values : int, float, np.nan or pandas.NA, default=np.nan
        The placeholder of a missing entry, as in :class:`sklearn.impute.SimpleImputer`:
        every entry equal to it is imputed. With a number (e.g. ``-1``), NaN in the data is
        an error; ``pandas.NA`` (nullable columns) reads as NaN.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
        Only 'full' and 'tied' let observed entries inform missing ones within a
        component; 'diag'/'spherical' impute through the component weights alone.
    sample_posterior : bool, default=False
        Draw from ``p(x_missing | x_observed)`` instead of taking its mean.
    tol : float, default=1e-3
        EM convergence threshold on the change of the mean log-likelihood per sample.
    reg_covar : float, default=1e-6
        Added to the diagonal of every covariance.
    max_iter : int, default=100
        Maximum EM iterations per initialisation.
    n_init : int, default=1
        Number of initialisations; the best is kept.
    init_params : {'kmeans', 'k-means++', 'random', 'random_from_data'}, default='kmeans'
        How EM is started (on the data with NaN replaced by column means).
    random_state : int, RandomState, Generator or torch.Generator, default=None
        Seeds the fit and the draws of ``sample_posterior``.
    device : str or torch.device, default=None
        Where to compute; None uses the input tensor's device (CPU for NumPy input).
    dtype : {'float32', 'float64'} or torch.dtype, default=None
        Computation dtype; None keeps float32 input in float32, otherwise float64.

    Attributes
    ----------
    mixture_model_ : GaussianMixture
        The fitted mixture (scores rows with missing entries by their observed marginal).
    n_features_in_ : int
        Number of features seen by :meth:`fit`.
    feature_names_in_ : ndarray of shape (n_features_in_,)
        Only when ``X`` has string column names.
    n_iter_ : int
        EM iterations of the best initialisation.

    See Also
    --------
    mixtorch.GaussianMixtureRegressor : Conditions on fixed input columns.
    mixtorch.Mixture.conditionals : The conditional mixtures used here.
    sklearn.impute.IterativeImputer : Imputation by chained regressions.
    sklearn.impute.SimpleImputer : Column means or medians.

    References
    ----------
    .. [1] Z. Ghahramani and M. I. Jordan (1994), "Supervised learning from incomplete
       data via an EM approach", *NIPS 6*.

    Examples
    --------
    >>> import numpy as np
    >>> from mixtorch import GaussianMixtureImputer
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 2)) @ np.array([[1.0, 0.9], [0.0, 0.3]])
    >>> X[:5, 1] = np.nan
    >>> filled = GaussianMixtureImputer(random_state=0).fit_transform(X)
    >>> bool(np.isnan(filled).any())
    False
    """

    _parameter_constraints: dict[str, list[Any]] = mixture_constraints(
        "n_components",
        "covariance_type",
        "tol",
        "reg_covar",
        "max_iter",
        "n_init",
        "init_params",
        "random_state",
        "device",
        "dtype",
    ) | {
        "sample_posterior": ["boolean"],
        "missing_values": [MissingValues(numeric_only=True)],
    }

    #: Parameters of the imputer that are not the mixture's.
    _OWN_PARAMETERS = frozenset({"sample_posterior", "missing_values"})

    def __init__(
        self,
        n_components: int = 1,
        *,
        missing_values: Any = np.nan,
        covariance_type: str = "full",
        sample_posterior: bool = False,
        tol: float = 1e-3,
        reg_covar: float = 1e-6,
        max_iter: int = 100,
        n_init: int = 1,
        init_params: str = "kmeans",
        random_state: Any = None,
        device: Any = None,
        dtype: Any = None,
    ) -> None:
        self.n_components = n_components
        self.missing_values = missing_values
        self.covariance_type = covariance_type
        self.sample_posterior = sample_posterior
        self.tol = tol
        self.reg_covar = reg_covar
        self.max_iter = max_iter
        self.n_init = n_init
        self.init_params = init_params
        self.random_state = random_state
        self.device = device
        self.dtype = dtype

    def _after_load(self) -> None:
        """Called by :func:`mixtorch.load`: a NaN ``missing_values`` read from the file is
        ``np.nan`` itself again, so the loaded ``get_params()`` equals the saved one (NaN
        compares unequal to every other NaN object)."""
        if is_scalar_nan(self.missing_values):
            self.missing_values = np.nan

    def _marks_nan(self) -> bool:
        """Whether ``missing_values`` is NaN (or ``pandas.NA``, which reads as NaN)."""
        return bool(is_scalar_nan(self.missing_values) or is_pandas_na(self.missing_values))

    def _validated(self, X: Any, reset: bool) -> np.ndarray:
        """``X`` as a float32/float64 array (its own dtype; anything else float64) with NaN
        at every missing entry; a fresh array, never ``X`` itself."""
        marks_nan = self._marks_nan()
        # An infinite marker (missing_values=np.inf) is in X by design: finiteness is
        # checked below, once the marked entries are NaN.
        infinite_marker = not marks_nan and bool(np.isinf(self.missing_values))
        try:
            array = validate_with_advice(
                self,
                host_values(X, "X"),
                reset=reset,
                dtype=[np.float64, np.float32],
                ensure_all_finite="allow-nan" if marks_nan else not infinite_marker,
                ensure_min_samples=2 if reset else 1,
                copy=True,
            )
        except ValueError as error:
            if marks_nan or not str(error).startswith("Input X contains NaN"):
                raise
            raise self._nan_under_a_marker() from None
        if infinite_marker and np.isnan(array).any():
            raise self._nan_under_a_marker()
        if not marks_nan:
            array[array == self.missing_values] = np.nan
        if infinite_marker and np.isinf(array).any():
            raise ValueError(
                f"Input X contains infinity of the other sign than missing_values="
                f"{self.missing_values!r}; only the marker may be infinite. Replace those "
                "entries (or mark them missing too) before imputing."
            )
        return array

    def _nan_under_a_marker(self) -> ValueError:
        """The error for NaN in X when a number marks the missing entries."""
        return ValueError(
            f"Input X contains NaN, but missing_values={self.missing_values!r} marks the "
            "missing entries; build the imputer with missing_values=np.nan if NaN marks them."
        )

    def _tensor(self, X: Any) -> torch.Tensor:
        """The training data as a tensor of the computation dtype, on its device."""
        array = self._validated(X, reset=True)
        dtype = resolve_dtype(self.dtype, array)
        device = check_device(self.device) or getattr(X, "device", torch.device("cpu"))
        return torch.tensor(array, dtype=dtype, device=device)

    @keeps_state_on_failure
    def fit(self, X: Any, y: Any = None) -> GaussianMixtureImputer:
        """Fit the mixture to ``X`` with its missing entries (NaN).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Training data; ``missing_values`` (NaN by default) marks a missing entry,
            infinity is an error. At least two rows.
        y : None
            Ignored; present for scikit-learn API consistency.

        Returns
        -------
        self : GaussianMixtureImputer
            The fitted imputer.

        Raises
        ------
        ValueError
            For infinite values or fewer than two rows.

        See Also
        --------
        mixtorch.GaussianMixture.fit : The EM fit with ``missing_values=np.nan``.
        """
        self._validate_params()
        tensor = self._tensor(X)
        params = {
            name: getattr(self, name)
            for name in self._parameter_constraints
            if name not in self._OWN_PARAMETERS
        }
        model = GaussianMixture(**params, missing_values=np.nan)
        self.mixture_model_ = model.fit(tensor)
        self.n_iter_ = self.mixture_model_.n_iter_
        return self

    def transform(self, X: Any) -> Any:
        """``X`` with every missing entry replaced by its conditional mean (or a draw).

        A row with nothing observed gets the mixture's mean (or a draw from the mixture).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Data with the features seen in :meth:`fit`; ``missing_values`` (NaN by
            default) marks a missing entry.

        Returns
        -------
        X_filled : ndarray or Tensor of shape (n_samples, n_features)
            Observed entries unchanged, bit for bit: float32 or float64 as ``X`` is
            (other input becomes float64), whatever dtype the mixture computes in. NumPy
            for NumPy input, a tensor on the input's device for tensor input.

        See Also
        --------
        mixtorch.Mixture.conditionals : The conditional of the missing given the observed.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixtureImputer
        >>> rng = np.random.default_rng(0)
        >>> X = rng.normal(size=(400, 2)) @ np.array([[1.0, 0.9], [0.0, 0.3]])
        >>> imputer = GaussianMixtureImputer(random_state=0).fit(X)
        >>> imputer.transform([[1.0, np.nan]]).round(1)
        array([[1. , 0.9]])
        """
        check_is_fitted(self, "mixture_model_")
        check_device(self.device)  # a device set (or loaded) that this machine lacks
        kind = OutputKind.of(X)
        mixture = self.mixture_model_.mixture_
        # The output keeps the input's dtype: observed entries are copied, never rounded
        # to the mixture's dtype; only the imputed entries are computed in it.
        filled = torch.from_numpy(self._validated(X, reset=False)).to(mixture.device)
        given_values = filled.to(mixture.dtype)
        generator = check_random_generator(self.random_state, mixture.device)
        unique, inverse = patterns(filled)
        for index, pattern in enumerate(unique):
            given = torch.nonzero(pattern).flatten()
            if given.numel() == mixture.n_features:
                continue
            rows = torch.nonzero(inverse == index).flatten()
            missing = torch.nonzero(~pattern).flatten()
            if given.numel() == 0:  # nothing observed: the mixture itself
                values = (
                    mixture.sample(rows.numel(), generator)[0][
                        torch.randperm(rows.numel(), generator=generator, device=mixture.device)
                    ]
                    if self.sample_posterior
                    else mixture.center.expand(rows.numel(), -1)
                )
            else:
                conditionals = mixture.conditionals(given.cpu(), given_values[rows][:, given])
                values = (
                    conditionals.sample(1, generator)[:, 0]
                    if self.sample_posterior
                    else conditionals.mean()
                )
            filled[rows[:, None], missing[None, :]] = values.to(filled.dtype)
        return as_output(filled, kind)

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._marks_nan()
        return tags

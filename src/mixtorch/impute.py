"""``GaussianMixtureImputer``: fill missing entries from a Gaussian mixture's conditionals."""

from __future__ import annotations

import warnings
from numbers import Integral
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, OneToOneFeatureMixin, TransformerMixin
from sklearn.utils._missing import is_pandas_na, is_scalar_nan
from sklearn.utils._param_validation import MissingValues
from sklearn.utils.validation import check_is_fitted

from ._base import JointMixtureMixin
from ._estimator import keeps_state_on_failure, mixture_constraints
from ._validation import (
    OutputKind,
    as_output,
    check_device,
    check_random_generator,
    resolve_dtype,
    validate_with_advice,
)
from ._warnings import user_stacklevel
from .fit.missing import patterns
from .gaussian_mixture import GaussianMixture
from .regression import host_values

__all__ = ["GaussianMixtureImputer"]


class GaussianMixtureImputer(
    JointMixtureMixin, OneToOneFeatureMixin, TransformerMixin, BaseEstimator
):
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
    keep_empty_features : bool, default=False
        What to do with a feature that has no observed value at all in :meth:`fit` (an
        empty feature), as in :class:`sklearn.impute.SimpleImputer`. The mixture is fitted
        to the other features either way. False: :meth:`transform` leaves empty features
        out of its output, with a ``UserWarning`` naming them, and
        :meth:`get_feature_names_out` omits them. True: they stay in the output, their
        missing entries filled with 0 and their observed entries (values seen only at
        :meth:`transform`) unchanged; they never inform the other features' imputations.

    Attributes
    ----------
    mixture_model_ : GaussianMixture
        The fitted mixture (scores rows with missing entries by their observed marginal),
        over the features that are not empty, in their order.
    n_features_in_ : int
        Number of features seen by :meth:`fit`, empty ones included.
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
        "keep_empty_features": ["boolean"],
    }

    #: Parameters of the imputer that are not the mixture's.
    _OWN_PARAMETERS = frozenset({"sample_posterior", "missing_values", "keep_empty_features"})

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
        keep_empty_features: bool = False,
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
        self.keep_empty_features = keep_empty_features

    def _after_load(self) -> None:
        """Called by :func:`mixtorch.load`: a NaN ``missing_values`` read from the file is
        ``np.nan`` itself again, so the loaded ``get_params()`` equals the saved one (NaN
        compares unequal to every other NaN object); a mask of empty features that is not
        one bool per feature, with at least one feature not empty, is refused."""
        if is_scalar_nan(self.missing_values):
            self.missing_values = np.nan
        empty = vars(self).get("_is_empty_feature")
        n_features = getattr(self, "n_features_in_", None)
        if empty is None or isinstance(n_features, bool) or not isinstance(n_features, Integral):
            return  # an n_features_in_ that is no integer is mixtorch.load's to refuse
        valid = isinstance(empty, np.ndarray) and empty.dtype == bool
        if not valid or empty.shape != (n_features,) or bool(empty.all()):
            raise ValueError(
                f"_is_empty_feature must be {n_features!r} booleans, not all True (one per "
                f"feature seen in fit), got {empty!r}"
            )

    def __mixtorch_joint_features__(self) -> int:
        """The features of ``X`` seen in fit less those with no observed value there
        (``_is_empty_feature``, checked by :meth:`_after_load`): they are not in the
        mixture."""
        empty = int(np.count_nonzero(getattr(self, "_is_empty_feature", ())))
        return self._fitted_count("n_features_in_") - empty

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
        """The training data's non-empty features as a tensor of the computation dtype,
        on its device; sets ``_is_empty_feature``."""
        array = self._validated(X, reset=True)
        empty = np.isnan(array).all(axis=0)
        if empty.all():
            raise ValueError(
                "Every feature of X is missing (no column has an observed value), so there "
                "is nothing to fit a mixture to; pass data with observed entries."
            )
        self._is_empty_feature = empty
        dtype = resolve_dtype(self.dtype, array)
        device = check_device(self.device) or getattr(X, "device", torch.device("cpu"))
        return torch.tensor(array[:, ~empty], dtype=dtype, device=device)

    def _empty_features(self) -> np.ndarray:
        """Which features had no observed value in :meth:`fit`, (n_features_in_,) bool
        (none for a model saved before the mask existed)."""
        empty = getattr(self, "_is_empty_feature", None)
        if empty is None:
            return np.zeros(self.n_features_in_, dtype=bool)
        return np.asarray(empty, dtype=bool)

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
            For infinite values, fewer than two rows, or no observed value in any feature.

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
        Features empty in :meth:`fit` are handled as ``keep_empty_features`` says.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
            Data with the features seen in :meth:`fit`; ``missing_values`` (NaN by
            default) marks a missing entry.

        Returns
        -------
        X_filled : ndarray or Tensor of shape (n_samples, n_features_out)
            Observed entries unchanged, bit for bit: float32 or float64 as ``X`` is
            (other input becomes float64), whatever dtype the mixture computes in. NumPy
            for NumPy input, a tensor on the input's device for tensor input.
            ``n_features_out`` is ``n_features_in_`` less the features empty in
            :meth:`fit`, unless ``keep_empty_features=True``.

        Warns
        -----
        UserWarning
            Naming the features left out, when some were empty in :meth:`fit` and
            ``keep_empty_features=False``.

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
        array = self._validated(X, reset=False)
        empty = self._empty_features()
        if not empty.any():
            return as_output(self._impute(torch.from_numpy(array)), kind)
        if self.keep_empty_features:
            # Values seen only now in an empty feature pass through; the rest are 0.
            array[:, empty] = np.nan_to_num(array[:, empty], nan=0.0)
            array[:, ~empty] = self._impute(torch.from_numpy(array[:, ~empty])).cpu().numpy()
            return as_output(torch.from_numpy(array), kind)
        warnings.warn(
            f"Feature(s) {self._feature_labels(empty)} had no observed value in fit, so "
            f"{type(self).__name__} leaves them out of its output; pass "
            "keep_empty_features=True to keep them (missing entries filled with 0), or "
            "drop them from the data.",
            UserWarning,
            stacklevel=user_stacklevel(),
        )
        return as_output(self._impute(torch.from_numpy(array[:, ~empty])), kind)

    def _impute(self, filled: torch.Tensor) -> torch.Tensor:
        """``filled`` (the non-empty features, NaN at missing entries) with every NaN
        replaced, in place, on the mixture's device."""
        mixture = self.mixture_model_.mixture_
        # The output keeps the input's dtype: observed entries are copied, never rounded
        # to the mixture's dtype; only the imputed entries are computed in it.
        filled = filled.to(mixture.device)
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
        return filled

    def _feature_labels(self, mask: np.ndarray) -> list[Any]:
        """The names (or else the indices) of the features selected by ``mask``."""
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            return [str(name) for name in names[mask]]
        return np.flatnonzero(mask).tolist()

    def get_feature_names_out(self, input_features: Any = None) -> np.ndarray:
        """Names of the output features: the input features, less the empty ones unless
        ``keep_empty_features=True``.

        Parameters
        ----------
        input_features : array-like of str or None, default=None
            Input feature names; None uses ``feature_names_in_`` or else
            ``["x0", "x1", ...]``. If given, they must equal ``feature_names_in_`` when
            that is set.

        Returns
        -------
        feature_names_out : ndarray of str objects
            The names of the columns :meth:`transform` returns.

        See Also
        --------
        transform : Returns those columns, filled.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixtureImputer
        >>> X = np.array([[1.0, np.nan, 2.0], [2.0, np.nan, 3.5], [3.0, np.nan, 5.0]])
        >>> GaussianMixtureImputer().fit(X).get_feature_names_out()
        array(['x0', 'x2'], dtype=object)
        """
        names = super().get_feature_names_out(input_features)
        if self.keep_empty_features:
            return names
        return names[~self._empty_features()]

    def __sklearn_tags__(self) -> Any:
        tags = super().__sklearn_tags__()
        tags.input_tags.allow_nan = self._marks_nan()
        return tags

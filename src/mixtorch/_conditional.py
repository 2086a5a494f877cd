"""``marginal`` and ``condition`` for fitted mixture estimators (mixins): of the host's own
class for maximum-likelihood models, as ``GaussianMixture`` of the point estimate for
Bayesian ones."""

from __future__ import annotations

from collections.abc import Mapping
from collections.abc import Set as AbstractSet
from typing import Any, ClassVar

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._features import check_features, free_features
from .mixture import Mixture

__all__ = ["ConditioningMixin", "PointEstimateConditioningMixin"]

#: Constructor parameters whose values have the full model's shapes.
_SHAPED_PARAMETERS = ("weights_init", "means_init", "precisions_init")


class ConditioningMixin:
    """Marginals and conditionals of a fitted mixture, as fitted estimators of its class.

    The host class provides ``mixture_``, ``get_params`` and the fitted-state protocol
    of :mod:`mixtorch._estimator` (``from_mixture``, ``output_kind``). The results are
    fitted estimators of ``_conditioned_estimator`` (the host's own class when None), built
    with those of the host's constructor parameters that class accepts (only those named
    in ``_carried_parameters`` when the host names them).
    """

    mixture_: Mixture
    means_: Any
    #: The class of the marginal and conditional models; None for the host's own class.
    _conditioned_estimator: ClassVar[Any] = None
    #: The constructor parameters handed on to the results; None for every one of the
    #: same name (for hosts whose parameters of the same name mean the same thing).
    _carried_parameters: ClassVar[tuple[str, ...] | None] = None

    def marginal(self, features: Any) -> Any:
        """The fitted model of the features ``features`` alone (indices, in that order).

        Parameters
        ----------
        features : sequence of int or of str
            Feature indices (negative ones count from the end), a boolean mask, or, for a
            model fitted on a DataFrame, column names.

        Returns
        -------
        estimator of the same class
            Same weights; the means and covariances of those features, of the same
            ``covariance_type``; ``feature_names_in_`` follows when the model has names.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> X = np.random.default_rng(0).normal([0.0, 5.0, -5.0], 1.0, size=(500, 3))
        >>> model = GaussianMixture(2, random_state=0).fit(X)
        >>> second = model.marginal([1])
        >>> second.n_features_in_, round(float(second.score(X[:, [1]])), 2)
        (1, -1.37)
        """
        check_is_fitted(self, "mixture_")
        index = check_features(self._named(features), self.mixture_.n_features)
        return self._from_mixture(self.mixture_.marginal(index), index)

    def condition(self, features: Any, values: Any) -> Any:
        """The fitted model of the other features given ``X[:, features] = values``.

        Parameters
        ----------
        features : sequence of int or of str
            Indices of the observed features, a boolean mask, or, for a model fitted on a
            DataFrame, their column names.
        values : array-like of shape (len(features),)
            One row of observed values, in the order of ``features``. A pandas Series, a
            one-row DataFrame or a dict labelled by the model's column names is read by its
            labels (it may hold other columns too); a missing label is a ValueError, never
            a silent mix-up.

        Returns
        -------
        estimator of the same class
            A mixture over the remaining features (in increasing order), whose weights are
            the components' posterior probabilities given ``values`` and whose means and
            covariances are the Gaussian conditionals, of the same ``covariance_type``.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import GaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=1000)
        >>> X = np.column_stack([x, 2 * x + 0.1 * rng.normal(size=1000)])
        >>> model = GaussianMixture(1, random_state=0).fit(X)
        >>> given = model.condition([0], [1.5])
        >>> given.means_.round(1)
        array([[3.]])
        """
        check_is_fitted(self, "mixture_")
        index = check_features(self._named(features), self.mixture_.n_features, leave_one=True)
        conditional = self.mixture_.condition(index, self._by_label(index, values))
        return self._from_mixture(conditional, free_features(index, self.mixture_.n_features))

    def _named(self, features: Any) -> Any:
        """Column names (a str or a sequence of them) as indices, for a model fitted on a
        DataFrame; anything else is passed on as it is."""
        if isinstance(features, str):
            given = [features]
        elif isinstance(features, (torch.Tensor, AbstractSet)) or (
            isinstance(features, np.ndarray) and features.dtype.kind in "biuf"
        ):
            return features  # indices, masks; sets are refused by check_features
        else:
            try:
                given = list(features)  # read once: generators and iterators too
            except TypeError:  # one index
                return features
        named = [isinstance(name, str) for name in given]
        if any(named) and not all(named):
            raise TypeError(
                f"features {given!r} mixes column names and indices; give only column "
                "names or only integer indices."
            )
        if not given or not all(named):
            return given
        names = getattr(self, "feature_names_in_", None)
        if names is None:
            raise TypeError(
                f"features {list(given)!r} are column names, but this model was fitted "
                "without them (not on a DataFrame); give feature indices instead."
            )
        position = {str(name): index for index, name in enumerate(names)}
        unknown = [name for name in given if name not in position]
        if unknown:
            raise ValueError(
                f"features {unknown!r} are not columns the model was fitted on; its columns "
                f"are {[str(name) for name in names]!r}."
            )
        return [position[name] for name in given]

    def _by_label(self, index: torch.Tensor, values: Any) -> Any:
        """``values`` in the order of the features ``index`` when they are a pandas Series
        or DataFrame labelled by this model's column names (a Series' index, a frame's
        columns); anything else, or labels that are not names (a RangeIndex), as given."""
        labels = _labels(values)
        names = getattr(self, "feature_names_in_", None)
        if isinstance(values, Mapping):
            if names is None:
                raise TypeError(
                    f"values is a mapping {values!r}, but this model was fitted without "
                    "column names (not on a DataFrame); pass the values as numbers in the "
                    "order of features."
                )
            if not all(isinstance(x, str) for x in values):
                raise TypeError(
                    f"values is a mapping with keys {list(values)!r}; its keys must be the "
                    f"column names the model was fitted on ({[str(n) for n in names]!r}), "
                    "or pass the values as numbers in the order of features."
                )
        if labels is None or names is None or not all(isinstance(x, str) for x in labels):
            return values
        wanted = [str(names[i]) for i in index.tolist()]
        absent = [name for name in wanted if name not in labels]
        if absent:
            raise ValueError(
                f"values are labelled {labels!r}, which lacks the features {absent!r}; label "
                f"them by the column names {wanted!r}, or pass plain numbers in the order of "
                "features."
            )
        if isinstance(values, Mapping):
            return [values[name] for name in wanted]
        return values[wanted]

    def _from_mixture(self, mixture: Mixture, features: torch.Tensor) -> Any:
        target: Any = self._conditioned_estimator or type(self)
        accepted = set(target._get_param_names())
        own = self.get_params(deep=False)  # type: ignore[attr-defined]
        if self._carried_parameters is not None:
            accepted &= set(self._carried_parameters)
        params = {name: value for name, value in own.items() if name in accepted}
        for name in ("n_components", "covariance_type", *_SHAPED_PARAMETERS):
            params.pop(name, None)
        if "fixed" in params:
            params["fixed"] = ()  # the fixed values came from the *_init parameters
        output = self.output_kind  # type: ignore[attr-defined]
        model = target.from_mixture(mixture, output=output, **params)
        names = getattr(self, "feature_names_in_", None)
        if names is not None:
            model.feature_names_in_ = np.asarray(names)[features.numpy()]
        return model


class PointEstimateConditioningMixin(ConditioningMixin):
    """``marginal`` and ``condition`` of the point-estimate mixture ``mixture_`` of a model
    fitted as a posterior over mixtures, as fitted :class:`~mixtorch.GaussianMixture`.

    The host sets ``_conditioned_estimator`` (to ``GaussianMixture``: this module cannot
    import it), provides what :class:`ConditioningMixin` needs and, since the methods'
    docstrings here serve every host, says in its own docstring which point estimate
    ``mixture_`` is and how it differs from its posterior predictive and its scoring.
    """

    def marginal(self, features: Any) -> Any:
        """The point-estimate mixture of the features ``features`` alone, as a
        :class:`~mixtorch.GaussianMixture`.

        The mixture marginalised is ``mixture_``, the estimator's point estimate of the
        mixture (``weights_``, ``means_``, ``covariances_``), which ``sample`` draws from;
        the class's description of ``mixture_`` says which estimate it is. The result is
        the marginal a ``GaussianMixture`` built from ``weights_``, ``means_`` and
        ``covariances_`` gives. It is not the marginal of the posterior predictive
        density, which averages over the posterior's spread, nor in general of what
        ``score_samples`` and ``predict_proba`` use (the class says what they use): the
        result holds no parameter uncertainty.

        Parameters
        ----------
        features : int, sequence of int or of str, or boolean mask
            The kept features, in the order wanted: indices (negative ones count from the
            end), a mask of n_features booleans, or, for a model fitted on a DataFrame,
            column names. Repeats are a ValueError.

        Returns
        -------
        GaussianMixture
            Fitted, with the same weights and the blocks of those features of the means
            and covariances, of the same ``covariance_type``, dtype and device. The
            constructor parameters that mean the same in ``GaussianMixture`` are kept
            (``random_state``, ``device``, ``dtype`` and, where the estimator has them,
            ``tol``, ``reg_covar``, ``chunk_size``, ...), the prior's and the inference's
            are dropped: there is no posterior over the marginal, and ``fit`` on the
            result is EM. ``feature_names_in_`` follows the features.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        ValueError
            For indices out of range, repeated features or unknown column names.
        TypeError
            For features that are not integers, names or a mask, or names given to a
            model fitted without them.

        See Also
        --------
        condition : The features given values, instead of integrated out.
        mixtorch.GaussianMixture.marginal : The same on a maximum-likelihood mixture.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import BayesianGaussianMixture
        >>> # SVIGaussianMixture and MCMCGaussianMixture (the bayes extra) alike
        >>> rng = np.random.default_rng(0)
        >>> X = np.concatenate([rng.normal(c, 1, (150, 3)) for c in ([-4, 0, 2], [4, 1, 2])])
        >>> bgm = BayesianGaussianMixture(n_components=4, random_state=0, max_iter=500).fit(X)
        >>> first = bgm.marginal([0])
        >>> type(first).__name__, first.n_features_in_
        ('GaussianMixture', 1)
        >>> np.allclose(first.means_, bgm.means_[:, [0]]), np.allclose(first.weights_, bgm.weights_)
        (True, True)
        """
        return super().marginal(features)

    def condition(self, features: Any, values: Any) -> Any:
        """The point-estimate mixture of the other features given ``X[:, features] =
        values``, as a :class:`~mixtorch.GaussianMixture`.

        The mixture conditioned is ``mixture_``, the point estimate described in
        :meth:`marginal` (the class says which), not the posterior predictive: the
        result's weights are its components' probabilities given ``values``
        (``weights_`` times each component's marginal density at ``values``,
        renormalised), its means and covariances their Gaussian conditionals (regression
        on ``values`` and the Schur complement), as a ``GaussianMixture`` built from
        ``weights_``, ``means_`` and ``covariances_`` gives them.

        Parameters
        ----------
        features : int, sequence of int or of str, or boolean mask
            The observed features, as for :meth:`marginal`; at least one feature must stay
            free.
        values : array-like of shape (len(features),)
            One row of observed values in the order of ``features``. A pandas Series, a
            one-row DataFrame or a dict labelled by the model's column names is read by
            its labels (other labels are ignored; a missing one is a ValueError).

        Returns
        -------
        GaussianMixture
            Fitted, over the free features in increasing order, of the same
            ``covariance_type``; constructor parameters as for :meth:`marginal`.

        Raises
        ------
        sklearn.exceptions.NotFittedError
            If the model is not fitted.
        ValueError
            As for :meth:`marginal`, for values that are not finite or not one per given
            feature, or when no feature is left free.
        TypeError
            As for :meth:`marginal`, for values that are not numbers, or a dict given to a
            model fitted without column names.

        See Also
        --------
        marginal : The features integrated out instead.
        mixtorch.GaussianMixture.condition : The same on a maximum-likelihood mixture.
        mixtorch.Mixture.conditionals : Many rows of values at once (on ``mixture_``).

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import BayesianGaussianMixture
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=1000)
        >>> X = np.column_stack([x, 2 * x + 0.1 * rng.normal(size=1000)])
        >>> bgm = BayesianGaussianMixture(random_state=0).fit(X)
        >>> given = bgm.condition([0], [1.5])
        >>> type(given).__name__, given.means_.round(1)
        ('GaussianMixture', array([[3.]]))
        """
        return super().condition(features, values)


def _labels(values: Any) -> list[Any] | None:
    """The labels of a pandas Series (its index), a DataFrame (its columns) or a mapping
    (its keys); None for anything else."""
    if isinstance(values, Mapping):
        return list(values)
    ndim = getattr(values, "ndim", None)
    if ndim == 2 and hasattr(values, "columns") and hasattr(values, "iloc"):
        return list(values.columns)
    if ndim == 1 and hasattr(values, "index") and hasattr(values, "iloc"):
        return list(values.index)
    return None

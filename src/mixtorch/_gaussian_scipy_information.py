"""SciPy ``multivariate_normal``'s parameters, information measures and marginals for a
fitted :class:`~mixtorch.Gaussian`: ``mean``, ``cov``, ``entropy`` and ``kl_divergence``
(computed in float64 with NumPy), ``marginal`` and, beside it, ``condition`` (the algebra
of :mod:`mixtorch.conditioning`, through :class:`~mixtorch._conditional.ConditioningMixin`).
The densities and sampling build on it in :mod:`mixtorch._gaussian_scipy`."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.utils.validation import check_is_fitted

from ._conditional import ConditioningMixin
from ._validation import OutputKind, as_output
from .mixture import Mixture

__all__ = ["ScipyGaussianInformation"]


class ScipyGaussianInformation(ConditioningMixin):
    """``multivariate_normal``'s ``mean``, ``cov``, ``entropy`` and ``marginal``, the KL
    divergence and ``condition``, for a fitted ``Gaussian``."""

    covariance_: Any
    _fit_kind: OutputKind
    random_state: Any

    # -- parameters ------------------------------------------------------------------
    def _full_covariance(self) -> torch.Tensor:
        check_is_fitted(self, "mixture_")
        mixture = self.mixture_
        values = torch.as_tensor(self.covariance_, dtype=mixture.dtype, device=mixture.device)
        D = mixture.n_features
        if values.ndim == 2:  # 'full' or 'tied'
            return values
        if values.ndim == 1:  # 'diag'
            return torch.diag(values)
        return values * torch.eye(D, dtype=mixture.dtype, device=mixture.device)

    def _float64_parameters(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.mixture_.means[0].detach().cpu().to(torch.float64).numpy()
        covariance = self._full_covariance().detach().cpu().to(torch.float64).numpy()
        return mean, covariance

    @property
    def mean(self) -> Any:
        """The mean, shape (n_features,), as ``multivariate_normal(...).mean``.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> X = np.random.default_rng(0).normal(size=(500, 2))
        >>> np.allclose(Gaussian().fit(X).mean, X.mean(0))
        True
        """
        check_is_fitted(self, "mixture_")
        return as_output(self.mixture_.means[0], self._fit_kind)

    @property
    def cov(self) -> Any:
        """The covariance as a full (n_features, n_features) matrix, whatever the
        ``covariance_type``, as ``multivariate_normal(...).cov``.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> X = np.random.default_rng(0).normal(size=(500, 2))
        >>> Gaussian(covariance_type="spherical").fit(X).cov.round(3)
        array([[0.952, 0.   ],
               [0.   , 0.952]])
        """
        return as_output(self._full_covariance(), self._fit_kind)

    def entropy(self) -> float:
        """Differential entropy in nats, ``0.5 * log det(2 pi e cov)``, in float64.

        Returns
        -------
        entropy : float
            The entropy of the fitted distribution.

        See Also
        --------
        Gaussian.kl_divergence : Relative entropy to another Gaussian.
        scipy.stats.multivariate_normal : SciPy's ``entropy``, same value.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> g = Gaussian().fit(np.random.default_rng(0).normal(size=(1000, 2)))
        >>> round(g.entropy(), 3)
        2.837
        """
        check_is_fitted(self, "mixture_")
        _, covariance = self._float64_parameters()
        _, log_det = np.linalg.slogdet(2.0 * math.pi * math.e * covariance)
        return 0.5 * float(log_det)

    def kl_divergence(self, other: Any) -> float:
        """``KL(self || other)`` in nats, in closed form [1]_ and float64.

        Parameters
        ----------
        other : Gaussian or torch.distributions.MultivariateNormal
            A fitted Gaussian, or a single (empty batch shape) MultivariateNormal, with the
            same number of features.

        Returns
        -------
        kl : float
            The divergence, non-negative (0 for identical distributions).

        Raises
        ------
        ValueError
            If the feature counts differ or ``other`` has a batch shape.
        TypeError
            If ``other`` is neither kind.

        See Also
        --------
        Gaussian.entropy : Differential entropy.
        torch.distributions.kl.kl_divergence : torch's closed form for two normals.

        References
        ----------
        .. [1] S. Kullback and R. A. Leibler (1951), "On information and sufficiency",
           *Annals of Mathematical Statistics* 22(1).

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> rng = np.random.default_rng(0)
        >>> p = Gaussian().fit(rng.normal(0.0, 1.0, size=(1000, 2)))
        >>> q = Gaussian().fit(rng.normal(1.0, 2.0, size=(1000, 2)))
        >>> round(p.kl_divergence(q), 3), round(p.kl_divergence(p), 12)
        (0.908, 0.0)
        """
        check_is_fitted(self, "mixture_")
        mean, covariance = self._float64_parameters()
        other_mean, other_covariance = _other_parameters(other)
        if other_mean.shape != mean.shape:
            raise ValueError(
                f"other must have {mean.shape[0]} features, got {other_mean.shape[0]}."
            )
        cholesky = np.linalg.cholesky(other_covariance)
        whitened_cov = np.linalg.solve(cholesky, np.linalg.cholesky(covariance))
        whitened_mean = np.linalg.solve(cholesky, other_mean - mean)
        log_det_ratio = 2.0 * (
            np.log(np.diag(cholesky)).sum() - np.log(np.diag(np.linalg.cholesky(covariance))).sum()
        )
        trace = float((whitened_cov**2).sum())
        kl = 0.5 * (trace + float(whitened_mean @ whitened_mean) - mean.shape[0] + log_det_ratio)
        return max(float(kl), 0.0)

    # -- marginals and conditionals ------------------------------------------------------
    def marginal(self, features: Any) -> Any:
        """The fitted Gaussian of the features ``features`` alone, as SciPy's ``marginal``.

        Parameters
        ----------
        features : int, sequence of int or of str, or boolean mask
            The kept features, in the order wanted: indices (negative ones count from the
            end, as SciPy's ``dimensions``), a mask of n_features booleans, or, for a model
            fitted on a DataFrame, column names. Repeats are a ValueError.

        Returns
        -------
        Gaussian
            The mean and covariance blocks of those features, of the same
            ``covariance_type``, dtype and device. The other constructor parameters are
            kept, except ``fixed_mean`` and ``fixed_covariance`` (shaped for all the
            features), which become None; ``feature_names_in_`` follows the features.

        Raises
        ------
        ValueError
            For indices out of range, repeated features or unknown column names.
        TypeError
            For features that are not integers, names or a mask, or names given to a
            model fitted without them.

        See Also
        --------
        Gaussian.condition : The features given values, instead of integrated out.
        scipy.stats.multivariate_normal : SciPy's ``marginal`` (same indices).

        Examples
        --------
        >>> import numpy as np
        >>> from scipy import stats
        >>> from mixtorch import Gaussian
        >>> X = np.random.default_rng(0).normal([0.0, 5.0, -5.0], [1.0, 2.0, 3.0], (500, 3))
        >>> g = Gaussian().fit(X)
        >>> last_two = g.marginal([-1, 1])
        >>> last_two.mean.round(2)
        array([-5.  ,  5.16])
        >>> reference = stats.multivariate_normal(g.mean, g.cov).marginal([-1, 1])
        >>> bool(np.isclose(last_two.logpdf([-5.0, 5.0]), reference.logpdf([-5.0, 5.0])))
        True
        """
        return super().marginal(features)

    def condition(self, features: Any, values: Any) -> Any:
        """The fitted Gaussian of the other features given ``x[features] = values``.

        For the mean ``mu`` and covariance ``S`` split into the given features ``g`` and
        the free ones ``f``, the conditional mean is ``mu_f + S_fg S_gg^-1 (values -
        mu_g)`` and the covariance the Schur complement ``S_ff - S_fg S_gg^-1 S_gf``
        (which does not depend on ``values``), of the same ``covariance_type`` [1]_.

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
        Gaussian
            Over the free features in increasing order; constructor parameters as for
            :meth:`marginal`.

        Raises
        ------
        ValueError
            As for :meth:`marginal`, for values that are not finite or not one per given
            feature, or when no feature is left free.
        TypeError
            As for :meth:`marginal`, for values that are not numbers, or a dict given to a
            model fitted without column names.

        See Also
        --------
        Gaussian.marginal : The features integrated out instead.
        mixtorch.Mixture.conditionals : Many rows of values at once.

        References
        ----------
        .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
           section 2.3.1.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import Gaussian
        >>> rng = np.random.default_rng(0)
        >>> x = rng.normal(size=2000)
        >>> X = np.column_stack([x, 2 * x + 0.5 * rng.normal(size=2000)])
        >>> given = Gaussian().fit(X).condition([0], [1.5])
        >>> float(given.mean[0].round(1)), float(given.covariance_[0, 0].round(2))
        (3.0, 0.25)
        """
        return super().condition(features, values)

    def _from_mixture(self, mixture: Mixture, features: torch.Tensor) -> Any:
        model = super()._from_mixture(mixture, features)
        # the held values are shaped for every feature (as GaussianMixture's *_init)
        return model.set_params(fixed_mean=None, fixed_covariance=None)


def _float64(values: torch.Tensor) -> np.ndarray:
    return values.detach().cpu().to(torch.float64).numpy()


def _other_parameters(other: Any) -> tuple[np.ndarray, np.ndarray]:
    """Float64 mean and full covariance of a fitted Gaussian or a MultivariateNormal."""
    if isinstance(other, ScipyGaussianInformation):
        check_is_fitted(other, "mixture_")
        return other._float64_parameters()
    if isinstance(other, torch.distributions.MultivariateNormal):
        if other.batch_shape != torch.Size():
            raise ValueError(
                f"other must be a single MultivariateNormal, got batch shape "
                f"{tuple(other.batch_shape)}."
            )
        return _float64(other.loc), _float64(other.covariance_matrix)
    raise TypeError(
        "other must be a fitted Gaussian or a torch.distributions.MultivariateNormal, "
        f"got {type(other).__name__}."
    )

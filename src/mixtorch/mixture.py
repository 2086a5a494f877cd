"""The Gaussian mixture value object shared by every model in mixtorch.

A single Gaussian is a mixture with K = 1 and a Gaussian KDE is a mixture with one
component per data point, so densities, responsibilities and samples are computed here
once. The object holds tensors and does no fitting.

This module holds construction and scoring (densities, responsibilities, labels); the
parameters and their derived quantities, sampling, marginals and conditionals, and
conversion to and from ``torch.distributions`` are mixins in their own modules
(:mod:`._mixture_parameters`, :mod:`._mixture_sampling`, :mod:`._mixture_conditioning`,
:mod:`._mixture_torch`).
"""

from __future__ import annotations

from collections.abc import Iterable
from functools import cached_property
from typing import Any

import torch
from torch import Tensor

from ._mixture_checks import checked_parameters
from ._mixture_conditioning import MixtureConditioning
from ._mixture_sampling import MixtureSampling
from ._mixture_scoring import SCORING_BLOCK_BYTES, SCORING_ELEMENTS, MixtureScoring
from ._mixture_torch import MixtureTorch
from ._validation import resolve_dtype
from .covariance import covariance_class
from .estep import EStepKernel

__all__ = ["SCORING_BLOCK_BYTES", "SCORING_ELEMENTS", "Mixture", "parameter_count"]


def parameter_count(
    n_components: int, n_features: int, covariance_type: str, held: frozenset[str] = frozenset()
) -> int:
    """Free parameters of a K-component mixture in D dimensions of that covariance type.

    Parameters
    ----------
    n_components, n_features : int
        K and D.
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        The covariance structure.
    held : frozenset of {'weights', 'means', 'covariances'}, default=frozenset()
        Groups given rather than estimated; they are not counted.

    Returns
    -------
    int
        Weights (K - 1), means (K * D) and the covariance's own parameters, less the
        held groups: the ``p`` of the BIC and the AIC.

    See Also
    --------
    Mixture.n_parameters : The count for a mixture at hand.

    Examples
    --------
    >>> parameter_count(3, 2, "full"), parameter_count(3, 2, "full", frozenset({"means"}))
    (17, 11)
    """
    K, D = n_components, n_features
    groups = {
        "weights": K - 1,
        "means": K * D,
        "covariances": covariance_class(covariance_type).n_parameters(K, D),
    }
    return sum(count for group, count in groups.items() if group not in held)


class Mixture(MixtureScoring, MixtureSampling, MixtureConditioning, MixtureTorch):
    """A mixture of K Gaussians in D dimensions, ``p(x) = sum_k w_k N(x | mu_k, S_k)`` [1]_.

    A value object holding tensors: densities, responsibilities, samples, marginals and
    conditionals [2]_ [3]_; no fitting. Every estimator's ``mixture_`` is one.

    Parameters
    ----------
    weights : Tensor of shape (K,)
        Mixing proportions, non-negative, summing to one.
    means : Tensor of shape (K, D)
        Component means, in the dtype and on the device of the computation.
    covariance : Covariance
        One of :class:`~mixtorch.covariance.FullCovariance`, ``TiedCovariance``,
        ``DiagCovariance`` or ``SphericalCovariance``, for D features.

    Raises
    ------
    ValueError
        If the shapes of ``weights``, ``means`` and ``covariance`` do not agree.

    See Also
    --------
    mixtorch.GaussianMixture : The estimator that fits one by EM.
    torch.distributions.MixtureSameFamily : torch's counterpart (:meth:`to_torch`).

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 9.2; marginals and conditionals of a Gaussian: section 2.3.
    .. [2] Z. Ghahramani and M. I. Jordan (1994), "Supervised learning from incomplete
       data via an EM approach", *NIPS 6*.
    .. [3] H. G. Sung (2004), "Gaussian mixture regression and classification", PhD
       thesis, Rice University.

    Examples
    --------
    >>> import torch
    >>> from mixtorch import Mixture
    >>> mixture = Mixture.from_parameters(
    ...     [0.3, 0.7], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 1.0], [0.5, 0.5]],
    ...     covariance_type="diag", dtype=torch.float64,
    ... )
    >>> mixture.n_components, mixture.n_features, mixture.covariance_type
    (2, 2, 'diag')
    >>> X = torch.tensor([[0.0, 0.0], [3.0, 3.0]], dtype=torch.float64)
    >>> mixture.responsibilities(X).round(decimals=3)
    tensor([[1., 0.],
            [0., 1.]], dtype=torch.float64)
    >>> torch.allclose(mixture.log_prob(X), mixture.to_torch().log_prob(X))
    True
    """

    # -- construction ----------------------------------------------------------------
    @classmethod
    def from_parameters(
        cls,
        weights: Any,
        means: Any,
        covariances: Any,
        covariance_type: str = "full",
        *,
        dtype: Any = None,
        device: Any = None,
    ) -> Mixture:
        """Build from array-likes in scikit-learn's layouts (see :mod:`.covariance`).

        Parameters
        ----------
        weights : array-like of shape (K,)
            Mixing proportions, non-negative, summing to one.
        means : array-like of shape (K, D)
            Component means; ``weights`` and ``covariances`` take their dtype and device.
        covariances : array-like
            (K, D, D) for 'full', (D, D) for 'tied', (K, D) for 'diag', (K,) for 'spherical'.
        covariance_type : {'full', 'tied', 'diag', 'spherical'}, default='full'
            Layout of ``covariances``.
        dtype : torch.dtype, str or NumPy dtype, default=None
            float32 or float64, spelled as the estimators' ``dtype`` takes it
            (``torch.float64``, ``'float64'``, ``np.float64``); None keeps the dtype of
            ``means`` (float32 stays float32, anything else becomes float64).
        device : str or torch.device, default=None
            None keeps the device of ``means`` (CPU for NumPy).

        Returns
        -------
        Mixture
            The validated mixture.

        Raises
        ------
        ValueError
            Naming the parameter: NaN or infinite values, wrong shapes, weights negative or
            not summing to one, covariances not symmetric positive definite, tensors on the
            'meta' device, a ``dtype`` other than float32 and float64.
        TypeError
            For values that are not numeric arrays, or a ``dtype`` that is no dtype (this
            error is a ``ValueError`` too).

        See Also
        --------
        mixtorch.GaussianMixture.from_mixture : A fitted estimator holding a mixture.
        """
        return cls(*checked_parameters(weights, means, covariances, covariance_type, dtype, device))

    # -- derived quantities -----------------------------------------------------------
    @cached_property
    def e_step_kernel(self) -> EStepKernel:
        """This mixture's E-step, applied to chunks of rows (see :mod:`mixtorch.estep`)."""
        return self.covariance.e_step_kernel(self.center, self.centred_means, self.log_weights)

    def n_parameters(self, held: Iterable[str] = ()) -> int:
        """Free parameters: weights (K - 1), means (K * D) and the covariance's own, less
        the groups ``held`` fixed in the fit.

        Parameters
        ----------
        held : iterable of {'weights', 'means', 'covariances'}, default=()
            Parameter groups that were given, not estimated (``GaussianMixture(fixed=...)``,
            ``Gaussian(fixed_mean=...)``): they are not counted.

        Returns
        -------
        int
            The count the BIC and AIC use.

        See Also
        --------
        mixtorch.GaussianMixture.bic, mixtorch.GaussianMixture.aic

        Examples
        --------
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters(
        ...     [0.5, 0.5], [[0.0, 0.0], [3.0, 3.0]], [[1.0, 1.0], [2.0, 2.0]], "diag")
        >>> mixture.n_parameters(), mixture.n_parameters(held=("means",))
        (9, 5)
        """
        return parameter_count(
            self.n_components, self.n_features, self.covariance_type, frozenset(held)
        )

    def to(self, device: Any = None, dtype: Any = None) -> Mixture:
        """A copy on another device and/or dtype (None keeps the current one).

        Parameters
        ----------
        device : str or torch.device, default=None
            Target device.
        dtype : torch.dtype, str or NumPy dtype, default=None
            Target dtype, float32 or float64 (as :meth:`from_parameters` takes it).

        Returns
        -------
        Mixture
            The copy.

        See Also
        --------
        mixtorch.GaussianMixture.to : The same for a fitted estimator.
        """
        cast = None if dtype is None else resolve_dtype(dtype, None)
        return Mixture(
            self.weights.to(device=device, dtype=cast),
            self.means.to(device=device, dtype=cast),
            self.covariance.to(device=device, dtype=cast),
        )

    # -- densities -------------------------------------------------------------------
    def component_log_prob(self, X: Tensor) -> Tensor:
        """log N(x_i | mu_k, Sigma_k), shape (n, K), for one chunk ``X`` of shape (n, D).

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            One chunk of rows (no chunking is done here).

        Returns
        -------
        Tensor of shape (n_samples, K)
            Per-component log-densities, without the weights.

        See Also
        --------
        Mixture.weighted_log_prob, Mixture.log_prob
        """
        zeros = torch.zeros_like(self.weights)
        return self.covariance.log_gaussian(
            X.to(self.dtype) - self.center, self.centred_means, zeros
        )

    def weighted_log_prob(self, X: Tensor) -> Tensor:
        """log pi_k + log N(x_i | mu_k, Sigma_k), shape (n, K), for one chunk ``X``.

        Parameters
        ----------
        X : Tensor of shape (n_samples, n_features)
            One chunk of rows.

        Returns
        -------
        Tensor of shape (n_samples, K)
            Its ``logsumexp`` over components is :meth:`log_prob`.

        See Also
        --------
        Mixture.component_log_prob, Mixture.responsibilities
        """
        return self.e_step_kernel.weighted_log_prob(X.to(self.dtype))

    def __repr__(self) -> str:
        return (
            f"Mixture(n_components={self.n_components}, n_features={self.n_features}, "
            f"covariance_type={self.covariance_type!r}, dtype={self.dtype}, device={self.device})"
        )

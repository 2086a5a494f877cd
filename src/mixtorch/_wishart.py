"""The variational-Bayes behaviour of each covariance kind: the Normal-Wishart update.

One mixin per kind, inherited by the classes of :mod:`mixtorch.covariance`
(``FullCovariance`` inherits :class:`_FullVariational`, and so on), so
:mod:`mixtorch.fit.variational` calls methods of the covariance type and never
dispatches on its kind. The model is scikit-learn's ``BayesianGaussianMixture``
(Bishop, *Pattern Recognition and Machine Learning*, section 10.2): the updates below
are its ``_estimate_wishart_*`` written from the scatter about the means, so the
per-sample covariance is never divided by the counts and multiplied back.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Protocol

import torch
from torch import Tensor

__all__ = ["NormalWishartPrior"]


class NormalWishartPrior(Protocol):
    """What the Wishart update reads from a prior (``VariationalPrior`` has these).

    A structural type: any object with these attributes can be passed to
    :meth:`~mixtorch.covariance.Covariance.wishart_posterior`.

    Attributes
    ----------
    mean : Tensor of shape (n_features,)
        Mean ``m_0`` of the Normal prior on the component means.
    mean_precision : float
        Its precision scale ``beta_0``.
    degrees_of_freedom : float
        Wishart degrees of freedom ``nu_0`` (> n_features - 1).
    covariance : Tensor
        Wishart scale inverse ``Psi_0`` in the covariance kind's ``covariance_prior``
        layout: (D, D), (D,) or ().

    See Also
    --------
    mixtorch.fit.variational.VariationalPrior : The implementation mixtorch uses.
    mixtorch.BayesianGaussianMixture : Its ``*_prior`` parameters.

    References
    ----------
    .. [1] C. M. Bishop (2006), *Pattern Recognition and Machine Learning*, Springer,
       section 10.2.

    Examples
    --------
    >>> import torch
    >>> from mixtorch.covariance import DiagCovariance, NormalWishartPrior
    >>> from mixtorch.fit.variational import VariationalPrior
    >>> prior: NormalWishartPrior = VariationalPrior(
    ...     1.0, False, 1.0, torch.zeros(1, dtype=torch.float64), 1.0,
    ...     torch.ones(1, dtype=torch.float64))
    >>> dof, covariances = DiagCovariance.wishart_posterior(
    ...     torch.tensor([4.0], dtype=torch.float64), torch.zeros(1, 1, dtype=torch.float64),
    ...     torch.full((1, 1), 8.0, dtype=torch.float64), prior,
    ...     torch.tensor([5.0], dtype=torch.float64), 0.0)
    >>> dof  # nu_0 + N
    tensor([5.], dtype=torch.float64)
    >>> covariances  # (Psi_0 + N S) / nu = (1 + 8) / 5 with S = 8 / 4, means at m_0
    tensor([[1.8000]], dtype=torch.float64)
    """

    mean: Tensor
    mean_precision: float
    degrees_of_freedom: float
    covariance: Tensor


class _Variational(ABC):
    """The covariance-specific part of variational Bayes (scikit-learn's
    ``BayesianGaussianMixture``; Bishop, PRML, section 10.2)."""

    @classmethod
    @abstractmethod
    def wishart_posterior(
        cls,
        counts: Tensor,
        means: Tensor,
        centred: Tensor,
        prior: NormalWishartPrior,
        mean_precision: Tensor,
        reg_covar: float,
    ) -> tuple[Tensor, Tensor]:
        """Posterior degrees of freedom and ``W^-1 / nu`` (this kind's layout).

        Parameters
        ----------
        counts : Tensor of shape (K,)
            Summed responsibilities ``N_k``.
        means : Tensor of shape (K, D)
            Responsibility-weighted means of the data.
        centred : Tensor of shape (K, D, D) or (K, D)
            Scatter about ``means`` (its diagonals for diag/spherical).
        prior : NormalWishartPrior
            The prior's ``mean``, ``mean_precision``, ``degrees_of_freedom`` and
            ``covariance``.
        mean_precision : Tensor of shape (K,)
            The posterior ``beta_k``.
        reg_covar : float
            Added to each per-sample covariance, as scikit-learn does.

        Returns
        -------
        degrees_of_freedom : Tensor of shape (K,), or () for tied
            ``nu_0 + N_k``.
        covariances : Tensor
            ``W_k^-1 / nu_k`` in this kind's layout.

        See Also
        --------
        mixtorch.fit.variational.update_posterior : The M-step that calls it.
        """

    @classmethod
    @abstractmethod
    def prior_covariance_shape(cls, n_features: int) -> tuple[int, ...]:
        """Shape of ``covariance_prior``: (D, D), (D,) or ().

        Parameters
        ----------
        n_features : int
            D.

        Returns
        -------
        tuple of int
            The shape this kind expects.

        See Also
        --------
        prior_covariance_from : The default prior in that shape.
        """

    @classmethod
    @abstractmethod
    def prior_covariance_from(cls, covariance: Tensor) -> Tensor:
        """The default ``covariance_prior`` from the data covariance.

        Parameters
        ----------
        covariance : Tensor of shape (D, D) or (D,)
            The data covariance, or its diagonal for diag/spherical (as
            :meth:`Covariance.moments` lays it out).

        Returns
        -------
        Tensor
            In :meth:`prior_covariance_shape`.

        See Also
        --------
        mixtorch.fit.variational.data_prior_moments : Calls it.
        """

    @classmethod
    def check_prior_covariance(cls, prior: Tensor) -> None:
        """Raise ValueError unless ``prior`` is finite and positive (definite).

        Parameters
        ----------
        prior : Tensor
            A ``covariance_prior`` in :meth:`prior_covariance_shape`.

        Raises
        ------
        ValueError
            If it has NaN or infinite entries, or a matrix is not symmetric positive
            definite, or a vector or scalar is not positive.

        See Also
        --------
        prior_covariance_shape : The shape it should have.
        """
        name = f"'{getattr(cls, 'kind', '')} covariance_prior'"
        if not bool(torch.isfinite(prior).all()):
            raise ValueError(f"{name} contains NaN or infinity.")
        if prior.ndim == 2:
            symmetric = torch.allclose(prior, prior.T)
            if not symmetric or int(torch.linalg.cholesky_ex(prior).info) != 0:
                raise ValueError(f"{name} should be symmetric, positive-definite.")
        elif not bool((prior > 0).all()):
            raise ValueError(f"{name} should be positive.")


def _shrinkage(counts: Tensor, prior: NormalWishartPrior, mean_precision: Tensor) -> Tensor:
    """``N_k beta_0 / beta_k``: the weight of the means' distance from the prior mean."""
    return counts * prior.mean_precision / mean_precision


class _FullVariational(_Variational):
    @classmethod
    def wishart_posterior(
        cls,
        counts: Tensor,
        means: Tensor,
        centred: Tensor,
        prior: NormalWishartPrior,
        mean_precision: Tensor,
        reg_covar: float,
    ) -> tuple[Tensor, Tensor]:
        diff = means - prior.mean
        eye = torch.eye(means.shape[1], dtype=means.dtype, device=means.device)
        shrink = _shrinkage(counts, prior, mean_precision)[:, None, None]
        scale = (
            prior.covariance
            + centred
            + (reg_covar * counts)[:, None, None] * eye
            + shrink * diff[:, :, None] * diff[:, None, :]
        )
        dof = prior.degrees_of_freedom + counts
        return dof, scale / dof[:, None, None]

    @classmethod
    def prior_covariance_shape(cls, n_features: int) -> tuple[int, ...]:
        return (n_features, n_features)

    @classmethod
    def prior_covariance_from(cls, covariance: Tensor) -> Tensor:
        return covariance


class _TiedVariational(_FullVariational):
    @classmethod
    def wishart_posterior(
        cls,
        counts: Tensor,
        means: Tensor,
        centred: Tensor,
        prior: NormalWishartPrior,
        mean_precision: Tensor,
        reg_covar: float,
    ) -> tuple[Tensor, Tensor]:
        K, D = means.shape
        diff = means - prior.mean
        eye = torch.eye(D, dtype=means.dtype, device=means.device)
        total = counts.sum()
        between = ((counts / mean_precision)[:, None] * diff).T @ diff
        scale = (
            prior.covariance
            + (centred.sum(0) + reg_covar * total * eye) / K
            + prior.mean_precision / K * between
        )
        dof = prior.degrees_of_freedom + total / K
        return dof, scale / dof


class _DiagVariational(_Variational):
    @classmethod
    def wishart_posterior(
        cls,
        counts: Tensor,
        means: Tensor,
        centred: Tensor,
        prior: NormalWishartPrior,
        mean_precision: Tensor,
        reg_covar: float,
    ) -> tuple[Tensor, Tensor]:
        spread = (means - prior.mean).square()
        shrink = _shrinkage(counts, prior, mean_precision)[:, None]
        scale = prior.covariance + centred + (reg_covar * counts)[:, None] + shrink * spread
        dof = prior.degrees_of_freedom + counts
        return dof, scale / dof[:, None]

    @classmethod
    def prior_covariance_shape(cls, n_features: int) -> tuple[int, ...]:
        return (n_features,)

    @classmethod
    def prior_covariance_from(cls, covariance: Tensor) -> Tensor:
        return covariance


class _SphericalVariational(_Variational):
    @classmethod
    def wishart_posterior(
        cls,
        counts: Tensor,
        means: Tensor,
        centred: Tensor,
        prior: NormalWishartPrior,
        mean_precision: Tensor,
        reg_covar: float,
    ) -> tuple[Tensor, Tensor]:
        spread = (means - prior.mean).square().mean(1)
        shrink = _shrinkage(counts, prior, mean_precision)
        scale = prior.covariance + centred.mean(1) + reg_covar * counts + shrink * spread
        dof = prior.degrees_of_freedom + counts
        return dof, scale / dof

    @classmethod
    def prior_covariance_shape(cls, n_features: int) -> tuple[int, ...]:
        return ()

    @classmethod
    def prior_covariance_from(cls, covariance: Tensor) -> Tensor:
        return covariance.mean()

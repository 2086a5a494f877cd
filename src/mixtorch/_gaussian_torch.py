"""A fitted :class:`~mixtorch.Gaussian` from a ``torch.distributions`` Gaussian
(:meth:`~GaussianTorchMixin.from_torch`, a base of the estimator)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ._estimator import MixtureEstimator
from ._torch_interop import estimator_options

if TYPE_CHECKING:
    from .gaussian import Gaussian

__all__ = ["GaussianTorchMixin"]


class GaussianTorchMixin(MixtureEstimator):
    """``from_torch`` for :class:`~mixtorch.Gaussian`."""

    @classmethod
    def from_torch(cls, distribution: Any, **params: Any) -> Gaussian:
        """A fitted model with the parameters of a torch distribution.

        Parameters
        ----------
        distribution : torch.distributions.MultivariateNormal or Independent
            A ``MultivariateNormal`` (gives ``covariance_type='full'``) or an
            ``Independent(Normal, 1)`` (gives ``'diag'``), of empty batch shape.
        **params
            Further constructor parameters. The model computes on the distribution's device
            and in its dtype, unless ``device`` or ``dtype`` is given: the parameters are
            then converted there. It hands tensors back.

        Returns
        -------
        model : Gaussian
            A fitted estimator, as if :meth:`fit` had found the distribution's parameters.

        Raises
        ------
        TypeError
            If ``distribution`` is neither of the two kinds above.
        ValueError
            If its batch shape is not empty, or ``dtype`` is not float32 or float64.

        See Also
        --------
        mixtorch.GaussianMixture.from_torch : The same for ``MixtureSameFamily``.
        mixtorch.Mixture.to_torch : The way back, for a mixture.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Gaussian
        >>> from torch.distributions import MultivariateNormal
        >>> distribution = MultivariateNormal(torch.ones(2), 2 * torch.eye(2))
        >>> model = Gaussian.from_torch(distribution)
        >>> model.covariance_.tolist()
        [[2.0, 0.0], [0.0, 2.0]]
        >>> x = torch.zeros(1, 2)
        >>> torch.allclose(model.score_samples(x), distribution.log_prob(x))
        True
        """
        mixture, output, options = estimator_options(distribution, params, allow_mixture=False)
        return cls.from_mixture(mixture, output=output, **options)

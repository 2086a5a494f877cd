"""The single-Gaussian ``torch.nn.Module`` behind :class:`mixtorch.nn.GaussianModule`: a
one-component :class:`~mixtorch._module.GaussianMixtureModule` whose weight is fixed."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from ._module import GaussianMixtureModule
from .mixture import Mixture

__all__ = ["GaussianModule"]


class GaussianModule(GaussianMixtureModule):
    """A single Gaussian with unconstrained parameters (a one-component mixture).

    Documented, with parameters and examples, as :class:`mixtorch.nn.GaussianModule`.
    """

    def __init__(
        self,
        n_features: int,
        covariance_type: str = "full",
        *,
        reg_covar: float = 0.0,
        dtype: torch.dtype | None = None,
        device: Any = None,
        validate_args: bool | None = None,
    ) -> None:
        super().__init__(
            1,
            n_features,
            covariance_type,
            reg_covar=reg_covar,
            dtype=dtype,
            device=device,
            validate_args=validate_args,
        )
        # One component: the weight is fixed at 1, so it is a buffer, not a parameter.
        del self.logits
        self.register_buffer("logits", torch.zeros(1, dtype=dtype, device=device))
        with torch.no_grad():
            self.means.zero_()

    @property
    def mean(self) -> Tensor:
        """The mean, shape (D,) (the module's only component)."""
        return self.means[0]

    @classmethod
    def _blank(cls, mixture: Mixture, reg_covar: float) -> GaussianMixtureModule:
        if mixture.n_components != 1:
            raise ValueError(
                f"GaussianModule holds one component, the mixture has {mixture.n_components}."
            )
        return cls(
            mixture.n_features,
            mixture.covariance_type,
            reg_covar=reg_covar,
            dtype=mixture.dtype,
            device=mixture.device,
        )

    def sample(  # type: ignore[override]
        self, n_samples: int, generator: torch.Generator | None = None
    ) -> Tensor:
        """Reparameterised draws from the Gaussian.

        Parameters
        ----------
        n_samples : int
            Number of points, at least 1.
        generator : torch.Generator, default=None
            Source of randomness; None uses torch's global one.

        Returns
        -------
        Tensor of shape (n_samples, D)
            Differentiable in the mean and covariance parameters.

        See Also
        --------
        GaussianMixtureModule.sample : With component labels.
        """
        return super().sample(n_samples, generator)[0]

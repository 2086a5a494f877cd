"""Sampling from :class:`~mixtorch._module.GaussianMixtureModule` (a base of it): labels
drawn from the weights, then reparameterised draws, differentiable in the means and the
covariance parameters."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from ._mixture_checks import check_n_samples


class ModuleSamplingMixin(nn.Module):
    """``sample`` for :class:`~mixtorch._module.GaussianMixtureModule`."""

    if TYPE_CHECKING:  # provided by GaussianMixtureModule
        means: Tensor
        logits: Tensor
        _structure: Any

        @property
        def n_features(self) -> int: ...

        @property
        def dtype(self) -> torch.dtype: ...

        def _scale_tril(self) -> tuple[Tensor, Tensor]: ...

        def _log_variances(self) -> Tensor: ...

    # -- generation ------------------------------------------------------------------
    def sample(
        self, n_samples: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw points: z ~ Categorical(weights), then x = mu_z + L_z eps.

        The draw is reparameterised: the samples are differentiable with respect to the
        means and covariance parameters (not the weights, which enter through a discrete
        choice).

        Parameters
        ----------
        n_samples : int
            Number of points, at least 1.
        generator : torch.Generator, default=None
            Source of randomness on the module's device; None uses torch's global one.

        Returns
        -------
        samples : Tensor of shape (n_samples, D)
            The points, in draw order.
        labels : Tensor of shape (n_samples,)
            Their components.

        Raises
        ------
        ValueError
            If ``n_samples`` is less than 1.
        TypeError
            If ``n_samples`` is not an integer (a float, a string, a bool) or ``generator``
            is not a ``torch.Generator``.
        MemoryError
            If the draws would not fit in the memory free on the device.

        See Also
        --------
        GaussianMixtureModule.to_torch : ``rsample`` of the distribution, the same draws' law.

        Examples
        --------
        >>> import torch
        >>> from mixtorch.nn import GaussianMixtureModule
        >>> module = GaussianMixtureModule(2, 3, dtype=torch.float64)
        >>> samples, labels = module.sample(4, generator=torch.Generator().manual_seed(0))
        >>> samples.shape, labels.shape, samples.requires_grad
        (torch.Size([4, 3]), torch.Size([4]), True)
        """
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        # Per draw: the label, the noise, the scaled noise and the result (D values each).
        itemsize = torch.finfo(self.dtype).bits // 8
        row_bytes = 8 + 3 * itemsize * self.n_features
        n_samples = check_n_samples(n_samples, row_bytes, self.means.device)
        device = self.means.device
        with torch.no_grad():
            weights = torch.softmax(self.logits.to(torch.float64), 0)
            labels = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
        noise = torch.randn(
            n_samples, self.n_features, dtype=self.dtype, device=device, generator=generator
        )
        return self.means[labels] + self._scale_noise(noise, labels), labels

    def _scale_noise(self, noise: Tensor, labels: Tensor) -> Tensor:
        if self._structure.is_triangular():
            factor = self._scale_tril()[0].to(self.dtype)
            factor = factor if factor.ndim == 2 else factor[labels]
            return (factor @ noise.unsqueeze(-1)).squeeze(-1)
        scales = torch.exp(0.5 * self._log_variances())
        scales = scales[labels]
        return noise * (scales if scales.ndim == 2 else scales[:, None])

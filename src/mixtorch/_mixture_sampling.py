"""Drawing points from a mixture: the sampling part of :class:`~mixtorch.Mixture`."""

from __future__ import annotations

import torch
from torch import Tensor

from ._mixture_checks import check_n_samples
from ._mixture_parameters import MixtureParameters

__all__ = ["MixtureSampling"]


class MixtureSampling(MixtureParameters):
    """:meth:`sample` for :class:`~mixtorch.Mixture` (z ~ Categorical, then x ~ N(mu_z, S_z))."""

    def sample(
        self, n_samples: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw ``n_samples`` points: z ~ Categorical(weights), then x ~ N(mu_z, Sigma_z).

        Parameters
        ----------
        n_samples : int
            Number of points, at least 1 (ValueError otherwise; TypeError if not an integer).
        generator : torch.Generator, default=None
            Source of randomness on the mixture's device; None uses torch's global one.

        Returns
        -------
        X : Tensor of shape (n_samples, n_features)
            The samples, grouped by component as scikit-learn does.
        labels : Tensor of shape (n_samples,)
            Their components, sorted.

        See Also
        --------
        mixtorch.GaussianMixture.sample, torch.distributions.MixtureSameFamily.sample

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Mixture
        >>> mixture = Mixture.from_parameters([0.2, 0.8], [[0.0], [10.0]], [[[1.0]], [[1.0]]],
        ...                                   dtype=torch.float64)
        >>> X, labels = mixture.sample(1000, generator=torch.Generator().manual_seed(0))
        >>> X.shape, round(labels.double().mean().item(), 1)
        (torch.Size([1000, 1]), 0.8)
        """
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        # Each draw: its row, a label, and the noise and sort buffers (about 2x each).
        itemsize = torch.finfo(self.dtype).bits // 8
        n_samples = check_n_samples(n_samples, 2 * (itemsize * self.n_features + 8), self.device)
        labels = (
            torch.multinomial(
                self.weights.to(torch.float64).cpu(),
                n_samples,
                replacement=True,
                generator=_cpu_generator(generator),
            )
            .sort()
            .values.to(self.device)
        )
        counts = torch.bincount(labels, minlength=self.n_components).tolist()
        blocks = []
        for component, count in enumerate(counts):
            if count == 0:
                continue
            noise = torch.randn(
                count, self.n_features, dtype=self.dtype, device=self.device, generator=generator
            )
            blocks.append(self.means[component] + self.covariance.scale_noise(noise, component))
        return torch.cat(blocks), labels


def _cpu_generator(generator: torch.Generator | None) -> torch.Generator | None:
    """torch.multinomial on the CPU needs a CPU generator; derive one deterministically."""
    if generator is None or generator.device.type == "cpu":
        return generator
    seed = int(torch.randint(0, 2**62, (1,), generator=generator, device=generator.device))
    return torch.Generator().manual_seed(seed)

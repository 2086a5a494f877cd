"""What the Pyro-based estimators share: priors, seeding, the posterior summary and the
posterior predictive density."""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator
from numbers import Integral, Real
from typing import Any

import torch
from sklearn.base import DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions
from torch import Tensor

from .._base import ClusterScoringMixin
from .._data import refuse_across_ranks
from .._estimator import RANDOM_STATE, MixtureEstimator
from .._validation import OutputKind, as_output, check_random_generator, resolve_dtype, to_tensor
from ..covariance import DiagCovariance
from ..fit.kmeans import kmeans
from ..mixture import Mixture
from .model import SCALE_FAMILIES, SITES, MixturePrior, log_likelihood, make_prior

__all__ = ["PYRO_CONSTRAINTS", "PyroMixtureBase", "quiet_pyro"]

#: posterior draws evaluated together in the predictive density (bounds memory)
_DRAWS_PER_BLOCK = 64


#: Parameters every Pyro estimator shares.
PYRO_CONSTRAINTS: dict[str, Any] = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "weight_concentration_prior": [Interval(Real, 0.0, None, closed="neither")],
    "mean_prior": [None, "array-like", Real],
    "mean_prior_scale": [None, "array-like", Real],
    "scale_prior": [None, "array-like", Real],
    "scale_family": [StrOptions(set(SCALE_FAMILIES))],
    "random_state": RANDOM_STATE,
    "dtype": "no_validation",
}


@contextlib.contextmanager
def quiet_pyro() -> Iterator[None]:
    """Silence Pyro's and the JIT's advisory warnings (pytest turns warnings into errors);
    only inside Pyro calls, never globally."""
    with warnings.catch_warnings():
        for category in (UserWarning, FutureWarning, DeprecationWarning, RuntimeWarning):
            warnings.filterwarnings("ignore", category=category, module=r"pyro\..*")
            warnings.filterwarnings("ignore", category=category, module=r"torch\..*")
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        yield


class PyroMixtureBase(ClusterScoringMixin, DensityMixin, MixtureEstimator):
    """Common plumbing for :class:`SVIGaussianMixture` and :class:`MCMCGaussianMixture`.

    Subclasses fit, then hand relabelled posterior draws ``{site: (n_draws, ...)}`` to
    ``_store_draws``; scoring and the predictive density work from those draws.
    """

    #: scoring helpers in ClusterScoringMixin read this; the data here are small
    chunk_size: int | None = None
    n_components: int
    weight_concentration_prior: float
    mean_prior: Any
    mean_prior_scale: Any
    scale_prior: Any
    scale_family: str
    dtype: Any

    # -- fitting ---------------------------------------------------------------------
    def _fit_data(self, X: Any) -> tuple[Tensor, OutputKind, MixturePrior]:
        self._validate_params()
        refuse_across_ranks(f"{type(self).__name__} does not fit across ranks.")
        tensor, kind = to_tensor(
            self, X, reset=True, dtype=resolve_dtype(self.dtype, X), ensure_min_samples=2
        )
        if tensor.shape[0] < self.n_components:
            raise ValueError(
                "Expected n_samples >= n_components but got "
                f"n_components = {self.n_components}, n_samples = {tensor.shape[0]}"
            )
        prior = make_prior(
            tensor,
            self.weight_concentration_prior,
            self.mean_prior,
            self.mean_prior_scale,
            self.scale_prior,
            self.scale_family,
        )
        return tensor, kind, prior

    def _seeds(self, count: int, device: torch.device) -> list[int]:
        generator = check_random_generator(self.random_state, device)
        draws = torch.randint(0, 2**31 - 1, (count,), generator=generator, device=device)
        return [int(seed) for seed in draws]

    def _initial_values(self, X: Tensor, seed: int) -> dict[str, Tensor]:
        """A start near a k-means solution: centres, within-cluster spreads, cluster sizes."""
        generator = torch.Generator(device=X.device).manual_seed(seed)
        K = self.n_components
        result = kmeans(X, K, generator)
        labels = torch.cdist(X, result.centers).argmin(1)
        counts = torch.bincount(labels, minlength=K).to(X.dtype)
        spread = X.std(0) if X.shape[0] > 1 else X.new_ones(X.shape[1])
        scales = torch.stack([X[labels == k].std(0) if counts[k] > 1 else spread for k in range(K)])
        scales = torch.where(scales > 0, scales, spread.clamp_min(1e-3)).clamp_min(1e-3)
        weights = (counts + 1.0) / (counts + 1.0).sum()
        return {"weights": weights, "locs": result.centers.clone(), "scales": scales}

    def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None:
        """The fitted-state protocol (see :mod:`mixtorch._estimator`): ``record`` holds the
        relabelled posterior draws ``{site: (n_draws, ...)}``; the plug-in ``mixture`` is
        their posterior mean."""
        self._store_draws(record, output)

    def _store_draws(self, draws: dict[str, Tensor], kind: OutputKind) -> None:
        """Posterior-mean parameters, the plug-in mixture and the kept draws."""
        weights = draws["weights"].mean(0)
        covariances = draws["scales"].square().mean(0)
        self._draws = draws
        self._fit_kind = kind
        self.mixture_ = Mixture(
            weights / weights.sum(), draws["locs"].mean(0), DiagCovariance(covariances)
        )
        self.weights_ = as_output(self.mixture_.weights, kind)
        self.means_ = as_output(self.mixture_.means, kind)
        self.covariances_ = as_output(covariances, kind)
        self.posterior_samples_ = {name: as_output(draws[name], kind) for name in SITES}

    # -- posterior predictive --------------------------------------------------------
    def _draw_log_likelihood(self, X: Tensor) -> Tensor:
        """log p(x_i | theta_s) for every kept draw s, shape (n_draws, n_samples)."""
        blocks = []
        n_draws = self._draws["weights"].shape[0]
        for start in range(0, n_draws, _DRAWS_PER_BLOCK):
            part = {name: self._draws[name][start : start + _DRAWS_PER_BLOCK] for name in SITES}
            blocks.append(log_likelihood(X, part["weights"], part["locs"], part["scales"]))
        return torch.cat(blocks)

    def score_samples(self, X: Any) -> Any:
        """Log posterior predictive density, ``log mean_s p(x | theta_s)`` over the draws.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)

        Returns
        -------
        log_prob : ndarray or Tensor of shape (n_samples,)
        """
        tensor, kind, _ = self._prepare(X)
        per_draw = self._draw_log_likelihood(tensor)
        return as_output(torch.logsumexp(per_draw, 0) - math.log(per_draw.shape[0]), kind)

    def score(self, X: Any, y: Any = None) -> float:
        """Mean log posterior predictive density per sample."""
        return float(torch.as_tensor(self.score_samples(X)).to(torch.float64).mean())

    def predictive_density(
        self, X: Any, quantiles: tuple[float, float] = (0.05, 0.95)
    ) -> tuple[Any, Any, Any]:
        """Posterior predictive density with a pointwise credible band.

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features)
        quantiles : (float, float)
            Lower and upper posterior quantiles of ``p(x | theta)`` (default a 90% band).

        Returns
        -------
        mean, lower, upper : ndarray or Tensor of shape (n_samples,)
            The posterior mean of the density and the requested quantiles.
        """
        low, high = (float(q) for q in quantiles)
        if not 0.0 <= low <= high <= 1.0:
            raise ValueError(f"quantiles must satisfy 0 <= low <= high <= 1, got {quantiles!r}.")
        tensor, kind, _ = self._prepare(X)
        density = torch.exp(self._draw_log_likelihood(tensor))
        levels = torch.tensor([low, high], dtype=density.dtype, device=density.device)
        lower, upper = torch.quantile(density, levels, dim=0)
        return tuple(as_output(value, kind) for value in (density.mean(0), lower, upper))

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_draws")

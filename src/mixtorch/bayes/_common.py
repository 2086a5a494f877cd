"""What the Pyro-based estimators share: priors, seeding, the posterior summary and the
posterior predictive density."""

from __future__ import annotations

import contextlib
import math
import numbers
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from sklearn.base import BaseEstimator, DensityMixin
from torch import Tensor

from .._base import ClusterScoringMixin
from .._validation import OutputKind, as_output, check_random_generator, resolve_dtype, to_tensor
from ..covariance import DiagCovariance
from ..fit.kmeans import kmeans
from ..mixture import Mixture
from .model import SITES, MixturePrior, log_likelihood, make_prior

__all__ = ["PyroMixtureBase", "quiet_pyro"]

#: posterior draws evaluated together in the predictive density (bounds memory)
_DRAWS_PER_BLOCK = 64


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


class PyroMixtureBase(ClusterScoringMixin, DensityMixin, BaseEstimator):
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
        _check_int(self.n_components, "n_components", 1)
        check_positive_real(self.weight_concentration_prior, "weight_concentration_prior")
        tensor, kind = to_tensor(
            self, X, reset=True, dtype=resolve_dtype(self.dtype, X), ensure_min_samples=2
        )
        for name, positive in (
            ("mean_prior", False),
            ("mean_prior_scale", True),
            ("scale_prior", True),
        ):
            check_per_feature(getattr(self, name), name, tensor.shape[1], positive=positive)
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


def _check_int(value: Any, name: str, minimum: int) -> None:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or int(value) < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def check_positive_int(value: Any, name: str, minimum: int = 1) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is an integer >= ``minimum``."""
    _check_int(value, name, minimum)


def check_positive_real(value: Any, name: str) -> None:
    """Raise a ValueError naming ``name`` unless ``value`` is a finite real number > 0
    (booleans are refused)."""
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if not (valid and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive finite number, got {value!r}.")


def check_per_feature(value: Any, name: str, n_features: int, *, positive: bool) -> None:
    """A prior setting given per feature: None, a number, or an array of shape
    ``(n_features,)``; finite, and positive when ``positive``.

    Raises a ``TypeError`` for non-numeric values and a ``ValueError`` naming ``name``
    and the expected shape otherwise.
    """
    if value is None:
        return
    if isinstance(value, Tensor):
        value = value.detach().cpu().numpy()
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as error:
        raise TypeError(
            f"{name} must be a number or an array of {n_features} numbers, got {value!r}."
        ) from error
    if array.ndim > 1 or (array.ndim == 1 and array.shape[0] not in (1, n_features)):
        raise ValueError(
            f"{name} must be a number or an array of shape ({n_features},) (one value per "
            f"feature of X), got shape {array.shape}."
        )
    if not np.isfinite(array).all() or (positive and not (array > 0).all()):
        adjective = "positive and finite" if positive else "finite"
        raise ValueError(f"{name} must be {adjective}, got {value!r}.")

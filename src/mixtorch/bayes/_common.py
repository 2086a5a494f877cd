"""What the Pyro-based estimators share: parameters, seeding, starts and the fitted state."""

from __future__ import annotations

from numbers import Integral, Real
from typing import Any

import torch
from sklearn.base import DensityMixin
from sklearn.utils._param_validation import Interval, StrOptions
from sklearn.utils.validation import check_is_fitted
from torch import Tensor

from .._base import ClusterScoringMixin
from .._conditional import PointEstimateConditioningMixin
from .._data import refuse_across_ranks
from .._estimator import RANDOM_STATE, MixtureEstimator
from .._validation import (
    OutputKind,
    as_output,
    check_device,
    check_random_generator,
    resolve_dtype,
    to_tensor,
)
from ..fit.kmeans import kmeans
from ..gaussian_mixture import GaussianMixture
from ..mixture import Mixture
from ._arviz import inference_data
from ._components import COMPONENT_FAMILIES, ComponentFamily, component_family
from ._posterior import PosteriorPredictiveMixin
from ._quiet import quiet_pyro
from .prior import (
    SCALE_FAMILIES,
    MixturePrior,
    check_per_feature,
    check_positive_real,
    make_prior,
)

__all__ = ["PYRO_CONSTRAINTS", "PyroMixtureBase", "quiet_pyro"]


#: Parameters every Pyro estimator shares.
PYRO_CONSTRAINTS: dict[str, Any] = {
    "n_components": [Interval(Integral, 1, None, closed="left")],
    "covariance_type": [StrOptions(set(COMPONENT_FAMILIES))],
    "weight_concentration_prior": [Interval(Real, 0.0, None, closed="neither")],
    "mean_prior": [None, "array-like", Real],
    "mean_prior_scale": [None, "array-like", Real],
    "scale_prior": [None, "array-like", Real],
    "scale_family": [StrOptions(set(SCALE_FAMILIES))],
    "lkj_concentration": [Interval(Real, 0.0, None, closed="neither")],
    "device": "no_validation",  # checked by check_device, which names what exists
    "random_state": RANDOM_STATE,
    "dtype": "no_validation",
}


class PyroMixtureBase(
    PointEstimateConditioningMixin,
    PosteriorPredictiveMixin,
    ClusterScoringMixin,
    DensityMixin,
    MixtureEstimator,
):
    """Common plumbing for :class:`SVIGaussianMixture` and :class:`MCMCGaussianMixture`.

    Subclasses fit, then hand relabelled posterior draws ``{site: (n_chains, n_draws,
    ...)}`` to ``_store_draws``; scoring and the predictive density work from those
    draws (:class:`~mixtorch.bayes._posterior.PosteriorPredictiveMixin`), ``sample``,
    ``marginal`` and ``condition`` from their posterior-mean mixture ``mixture_``
    (:class:`~mixtorch._conditional.PointEstimateConditioningMixin`).
    """

    #: scoring helpers in ClusterScoringMixin read this; the data here are small
    chunk_size: int | None = None
    n_components: int
    covariance_type: str
    weight_concentration_prior: float
    mean_prior: Any
    mean_prior_scale: Any
    scale_prior: Any
    scale_family: str
    lkj_concentration: float
    device: Any
    dtype: Any
    #: ``marginal`` and ``condition`` return fitted GaussianMixture (no draws to carry),
    #: with only these parameters: the others of the same name mean something else there
    #: (SVI's ``learning_rate`` steps on the ELBO, GaussianMixture's on the likelihood).
    _conditioned_estimator = GaussianMixture
    _carried_parameters = ("random_state", "device", "dtype")

    def _family(self) -> type[ComponentFamily]:
        return component_family(self.covariance_type)

    # -- fitting ---------------------------------------------------------------------
    def _fit_data(self, X: Any) -> tuple[Tensor, OutputKind, MixturePrior]:
        self._validate_params()
        device = check_device(self.device)
        refuse_across_ranks(f"{type(self).__name__} does not fit across ranks.")
        check_positive_real(self.weight_concentration_prior, "weight_concentration_prior")
        check_positive_real(self.lkj_concentration, "lkj_concentration")
        tensor, kind = to_tensor(
            self,
            X,
            reset=True,
            dtype=resolve_dtype(self.dtype, X),
            device=device,
            ensure_min_samples=2,
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
        refuse_constant_features(tensor)
        prior = make_prior(
            tensor,
            self.weight_concentration_prior,
            self.mean_prior,
            self.mean_prior_scale,
            self.scale_prior,
            self.scale_family,
            covariance_type=self.covariance_type,
            lkj_concentration=self.lkj_concentration,
        )
        return tensor, kind, prior

    def _seeds(self, count: int, device: torch.device) -> list[int]:
        generator = check_random_generator(self.random_state, device)
        draws = torch.randint(0, 2**31 - 1, (count,), generator=generator, device=device)
        return [int(seed) for seed in draws]

    def _initial_values(self, X: Tensor, seed: int) -> dict[str, Tensor]:
        """A start near a k-means solution: centres, within-cluster spreads (and
        correlations), cluster sizes."""
        return initial_values(X, self.n_components, self._family(), seed)

    def _set_fitted(self, mixture: Mixture, record: Any, output: OutputKind) -> None:
        """The fitted-state protocol (see :mod:`mixtorch._estimator`): ``record`` is
        ``(draws, sample_stats)``, the relabelled posterior draws ``{site: (n_chains,
        n_draws, ...)}`` and per-draw statistics; the plug-in ``mixture`` is their
        posterior mean."""
        if not (isinstance(record, tuple) and len(record) == 2):
            raise TypeError(
                f"{type(self).__name__} is built from posterior draws, not from a mixture "
                "alone: fit it, or pass record=(draws, sample_stats)."
            )
        chains, sample_stats = record
        self._store_draws(chains, sample_stats, output)

    def _fit_record(self) -> Any:
        return self._chains, self._sample_stats

    def _move(self, device: Any, dtype: Any, output: OutputKind) -> None:
        def move(values: dict[str, Tensor]) -> dict[str, Tensor]:
            return {
                name: value.to(device, dtype if value.is_floating_point() else None)
                for name, value in values.items()
            }

        self._store_draws(move(self._chains), move(self._sample_stats), output)

    def _store_draws(
        self, chains: dict[str, Tensor], sample_stats: dict[str, Tensor], kind: OutputKind
    ) -> None:
        """Posterior-mean parameters, the plug-in mixture and the kept draws."""
        family = self._family()
        self._chains, self._sample_stats, self._fit_kind = chains, sample_stats, kind
        self._draws = {name: value.flatten(0, 1) for name, value in chains.items()}
        weights = self._draws["weights"].mean(0)
        covariances = family.covariances(self._draws).mean(0)
        self.mixture_ = Mixture(
            weights / weights.sum(), self._draws["locs"].mean(0), family.covariance(covariances)
        )
        self.weights_ = as_output(self.mixture_.weights, kind)
        self.means_ = as_output(self.mixture_.means, kind)
        self.covariances_ = as_output(covariances, kind)
        self.posterior_samples_ = {
            name: as_output(value, kind) for name, value in self._draws.items()
        }

    def _sample_statistics(
        self, X: Tensor, chains: dict[str, Tensor], prior: MixturePrior
    ) -> Tensor:
        """Log joint density ``log p(theta) + sum_i log p(x_i | theta)`` of every draw,
        shape (n_chains, n_draws)."""
        family = self._family()
        flat = {name: value.flatten(0, 1) for name, value in chains.items()}
        log_likelihood = self._draw_log_likelihood(X, flat).sum(-1)
        log_joint = family.log_prior(flat, prior) + log_likelihood
        return log_joint.reshape(chains["weights"].shape[:2])

    def to_arviz(self, X: Any = None) -> Any:
        """The posterior as an ArviZ ``InferenceData`` (needs the ``arviz`` package).

        Parameters
        ----------
        X : array-like or Tensor of shape (n_samples, n_features), optional
            Data whose pointwise log-likelihood ``log p(x_i | theta)`` of every draw goes
            into the ``log_likelihood`` group (variable ``obs``, for ``arviz.loo`` and
            ``arviz.waic``).

        Returns
        -------
        arviz.InferenceData
            ``posterior`` holds every latent site with dimensions ``(chain, draw,
            component[, feature[, feature_bis]])``: an MCMC fit's chains, or an SVI fit's
            draws from the guide as one chain. ``sample_stats`` holds ``lp`` (the log
            joint density of each draw on the training data) and, for NUTS,
            ``diverging``.

        Examples
        --------
        >>> import numpy as np
        >>> from mixtorch import SVIGaussianMixture
        >>> X = np.random.default_rng(0).normal(size=(40, 2))
        >>> model = SVIGaussianMixture(2, guide="mean_field", num_steps=20, num_restarts=1,
        ...                            num_samples=30, random_state=0).fit(X)
        >>> data = model.to_arviz(X)
        >>> data.posterior["locs"].shape, data.log_likelihood["obs"].shape
        ((1, 30, 2, 2), (1, 30, 40))
        """
        check_is_fitted(self, "mixture_")
        tensor = None if X is None else self._prepare(X)[0]
        log_likelihood = None
        if tensor is not None:
            per_draw = self._draw_log_likelihood(tensor)
            log_likelihood = per_draw.reshape(*self._chains["weights"].shape[:2], -1)
        return inference_data(self._chains, self._sample_stats, log_likelihood)

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "_draws")


def refuse_constant_features(X: Tensor) -> None:
    """ValueError naming the features of ``X`` that hold one value in every row.

    Whatever the priors, the likelihood of such a feature grows without bound as its
    standard deviation shrinks, and the model has no ``reg_covar`` to stop it: the
    posterior piles up at zero (improper under a HalfCauchy prior), so SVI and NUTS
    would return a scale set by how long they ran, and densities to match. EM fits the
    same input only because ``reg_covar`` holds the variance at a floor (with
    ``reg_covar=0`` it fails too).
    """
    constant = (X == X[0]).all(0)
    if bool(constant.any()):
        features = constant.nonzero().flatten().tolist()
        raise ValueError(
            f"Feature(s) {features} of X are constant (one value in every row): the "
            "posterior of their standard deviation piles up at zero whatever "
            "mean_prior_scale and scale_prior are, so no fit would be meaningful. Drop "
            "those features (they cannot tell components apart), or fit GaussianMixture "
            "or BayesianGaussianMixture, whose reg_covar holds the variance at a floor."
        )


def initial_values(
    X: Tensor, n_components: int, family: type[ComponentFamily], seed: int
) -> dict[str, Tensor]:
    """Values of every latent site from a k-means solution of ``X`` (seeded by ``seed``).

    Returns
    -------
    dict of str -> Tensor
        ``weights`` (K,), ``locs`` (K, D) and the family's scale sites.
    """
    generator = torch.Generator(device=X.device).manual_seed(seed)
    result = kmeans(X, n_components, generator)
    labels = torch.cdist(X, result.centers).argmin(1)
    counts = torch.bincount(labels, minlength=n_components).to(X.dtype)
    weights = (counts + 1.0) / (counts + 1.0).sum()
    start = {"weights": weights, "locs": result.centers.clone()}
    start.update(family.initial_scales(X, labels, n_components))
    return start

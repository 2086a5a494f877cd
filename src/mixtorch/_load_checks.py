"""What :func:`mixtorch.load` checks of a rebuilt model before handing it back: shapes that
agree with each other and with the hyper-parameters (also of a regressor's or imputer's
joint mixture), stored copies of the parameters equal to the mixture the model scores
with, a KDE's kernel sums equal to its data's density, and a finite density at the
model's own heaviest component."""

from __future__ import annotations

import math
import numbers
from typing import Any

import numpy as np
import torch

from ._restored import close_to
from .fit.variational import VariationalPosterior
from .gaussian import Gaussian
from .gaussian_mixture import GaussianMixture
from .kde import GaussianKDE
from .mixture import Mixture


def _check_consistent(model: Any) -> None:
    """Shapes agree with each other and with the hyper-parameters."""
    inner = getattr(model, "mixture_model_", None)
    if inner is not None:  # a regressor or imputer: its joint mixture, then the columns
        if not isinstance(inner, GaussianMixture):
            raise TypeError(f"mixture_model_ is a {type(inner).__name__}, not a GaussianMixture")
        _check_consistent(inner)
        expected = model.__mixtorch_joint_features__()  # the class says what its mixture covers
        if inner.n_features_in_ != expected:
            raise ValueError(
                f"the mixture has {inner.n_features_in_} features but the model expects {expected}"
            )
    mixture = getattr(model, "mixture_", None)
    if mixture is None:
        return
    if not isinstance(mixture, Mixture):
        raise TypeError(f"mixture_ is a {type(mixture).__name__}, not a Mixture")
    n_features = getattr(model, "n_features_in_", mixture.n_features)
    if isinstance(n_features, bool) or not isinstance(n_features, numbers.Integral):
        raise ValueError(f"n_features_in_ must be an integer, got {n_features!r}")
    if int(n_features) != mixture.n_features:
        raise ValueError(
            f"n_features_in_ is {n_features} but the parameters have {mixture.n_features} features"
        )
    names = getattr(model, "feature_names_in_", None)
    if names is not None:
        if not isinstance(names, np.ndarray) or names.ndim != 1:
            raise ValueError(f"feature_names_in_ must be a 1-D array, got {type(names).__name__}")
        if not all(isinstance(name, str) for name in names.tolist()):
            raise ValueError("feature_names_in_ must hold strings (column names)")
        if len(names) != mixture.n_features:
            raise ValueError(f"{len(names)} feature names for {mixture.n_features} features")
    _check_copies(model, mixture)
    _check_scores_finite(model, mixture)
    if isinstance(model, (GaussianMixture, Gaussian)):
        expected = getattr(model, "n_components", 1)
        if mixture.n_components != expected:
            raise ValueError(
                f"n_components is {expected} but the parameters have "
                f"{mixture.n_components} components"
            )
        if mixture.covariance_type != getattr(model, "covariance_type", "full"):
            raise ValueError(
                f"covariance_type is {model.covariance_type!r} but the parameters are "
                f"{mixture.covariance_type!r}"
            )


#: Fitted attributes that some estimators keep beside ``mixture_`` as copies of its
#: parameters (a BayesianGaussianMixture's ``weights_``, a GaussianKDE's ``_data`` and
#: ``bandwidth_``): a file must not hand back copies that differ from what it scores with.
_COPIES: dict[str, Any] = {
    "weights_": lambda mixture: mixture.weights,
    "_weights": lambda mixture: mixture.weights,
    "means_": lambda mixture: mixture.means,
    "_data": lambda mixture: mixture.means,
    "covariances_": lambda mixture: mixture.covariance.covariances,
    "bandwidth_": lambda mixture: mixture.covariance.covariances,
    "_bandwidth_matrix": lambda mixture: mixture.covariance.covariances,
}


def _check_copies(model: Any, mixture: Mixture) -> None:
    """Stored copies of the mixture's parameters (and a variational posterior's point
    estimates) agree with the mixture; a KDE's counts and exact density agree with its
    kernels."""
    stored = vars(model)
    expected = {name: of(mixture) for name, of in _COPIES.items() if name in stored}
    given = {name: stored[name] for name in expected}
    posterior = stored.get("_posterior")
    if isinstance(posterior, VariationalPosterior):  # the mixture is its point estimate
        point = posterior.mixture()
        for name, of in (
            ("weights", "weights_"),
            ("means", "means_"),
            ("covariances", "covariances_"),
        ):
            expected[f"posterior {name}"] = _COPIES[of](mixture)
            given[f"posterior {name}"] = _COPIES[of](point)
    for name, reference in expected.items():
        if not close_to(given[name], reference):
            raise ValueError(
                f"the stored {name} does not match the mixture the model scores with "
                "(an edited file)"
            )
    if isinstance(model, GaussianKDE):
        count = stored.get("n_samples_fit_")
        if count != mixture.n_components or isinstance(count, bool):
            raise ValueError(
                f"n_samples_fit_ is {count!r} but the model holds {mixture.n_components} points"
            )
        factor = stored.get("factor_")
        number = isinstance(factor, (int, float)) and not isinstance(factor, bool)
        if not (number and math.isfinite(factor) and factor > 0):
            raise ValueError(f"factor_ must be a positive number, got {factor!r}")
        if model.algorithm != "fft":  # the exact density is the mixture's
            probe = mixture.means[int(torch.argmax(mixture.weights))][None]
            density = torch.as_tensor(model.score_samples(probe), device=probe.device)
            if not close_to(density, _kernel_log_density(mixture, probe), tolerance=1e-3):
                raise ValueError(
                    "the stored kernel sums do not give the density of the stored data and "
                    "bandwidth (an edited file)"
                )


def _kernel_log_density(mixture: Mixture, probe: torch.Tensor) -> torch.Tensor:
    """log of a KDE's density at one point ``probe`` (1, D), summed directly over its
    kernels (one shared covariance): ``mixture.log_prob`` would build and keep the
    mixture's E-step kernel, twice the data's memory on the loaded model."""
    factor = mixture.covariance.cholesky
    differences = (mixture.means - probe).T  # (D, N)
    squared = torch.linalg.solve_triangular(factor, differences, upper=False).square().sum(0)
    log_det = 2.0 * torch.log(torch.diagonal(factor)).sum()
    constant = 0.5 * (probe.shape[1] * math.log(2.0 * math.pi) + log_det)
    return (torch.logsumexp(torch.log(mixture.weights) - 0.5 * squared, 0) - constant)[None]


def _check_scores_finite(model: Any, mixture: Mixture) -> None:
    """Whatever else the model keeps (a KDE's data, a grid, posterior draws), it must
    give a finite density at the mean of its heaviest component."""
    if not callable(getattr(model, "score_samples", None)):
        return
    probe = mixture.means[int(torch.argmax(mixture.weights))][None]
    value = torch.as_tensor(model.score_samples(probe))
    if not bool(torch.isfinite(value).all()):
        raise ValueError(
            f"the loaded model's log-density at its own heaviest component is {value.item()}: "
            "its stored state is inconsistent"
        )

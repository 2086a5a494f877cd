"""The Pyro estimators refuse bad inputs with errors naming the parameter (issue 13)."""

from __future__ import annotations

import math

import numpy as np
import pytest

pytest.importorskip("pyro")

from mixtorch.bayes import MCMCGaussianMixture, SVIGaussianMixture  # noqa: E402

SVI = dict(n_components=2, num_steps=2, num_restarts=1, num_samples=2, random_state=0)
MCMC = dict(n_components=2, num_samples=3, warmup_steps=2, num_chains=1, jit_compile=False)
X = np.random.default_rng(0).normal(size=(30, 2))


@pytest.mark.parametrize(
    "name, value, message",
    [
        ("mean_prior", [1.0, 2.0, 3.0], r"mean_prior must be .* shape \(2,\).*got shape \(3,\)"),
        ("mean_prior", np.ones((2, 2)), r"mean_prior must be .* shape \(2,\)"),
        ("mean_prior", [math.nan, 0.0], "mean_prior must be finite"),
        ("mean_prior_scale", [1.0, 2.0, 3.0], r"mean_prior_scale must be .* shape \(2,\)"),
        ("mean_prior_scale", [0.0, 1.0], "mean_prior_scale must be positive"),
        ("scale_prior", [1.0, 2.0, 3.0], r"scale_prior must be .* shape \(2,\)"),
        ("scale_prior", -1.0, "scale_prior must be positive"),
        ("weight_concentration_prior", True, "weight_concentration_prior"),
        ("weight_concentration_prior", math.inf, "weight_concentration_prior"),
        ("dtype", 3, "dtype must be float32 or float64"),
    ],
)
@pytest.mark.parametrize(
    "estimator, base", [(SVIGaussianMixture, SVI), (MCMCGaussianMixture, MCMC)]
)
def test_prior_inputs_are_checked_up_front(estimator, base, name, value, message):
    with pytest.raises(ValueError, match=message):
        estimator(**{**base, name: value}).fit(X)


@pytest.mark.parametrize(
    "estimator, base", [(SVIGaussianMixture, SVI), (MCMCGaussianMixture, MCMC)]
)
def test_non_numeric_prior_is_a_type_error(estimator, base):
    with pytest.raises(TypeError, match="mean_prior"):
        estimator(**{**base, "mean_prior": "a"}).fit(X)


@pytest.mark.parametrize(
    "name, value",
    [("learning_rate", math.inf), ("learning_rate", "0.1"), ("guide", None)],
)
def test_svi_options_are_checked(name, value):
    with pytest.raises(ValueError, match=name):
        SVIGaussianMixture(**{**SVI, name: value}).fit(X)


@pytest.mark.parametrize("value", ["yes", None])
def test_mcmc_jit_compile_must_be_a_boolean(value):
    with pytest.raises(ValueError, match="jit_compile"):
        MCMCGaussianMixture(**{**MCMC, "jit_compile": value}).fit(X)


def test_per_feature_priors_of_the_right_length_are_used():
    model = SVIGaussianMixture(**{**SVI, "mean_prior": [0.5, -0.5], "scale_prior": 2.0}).fit(X)
    assert model.means_.shape == (2, 2) and np.isfinite(model.means_).all()


@pytest.mark.parametrize("value", ["threads", None, True])
def test_mcmc_chain_method_is_validated(value):
    from sklearn.utils._param_validation import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="chain_method"):
        MCMCGaussianMixture(**{**MCMC, "chain_method": value}).fit(X)


def test_building_from_a_bare_mixture_is_refused_clearly():
    from mixtorch import GaussianMixture

    mixture = GaussianMixture(2, random_state=0).fit(X).mixture_
    with pytest.raises(TypeError, match="posterior draws"):
        SVIGaussianMixture.from_mixture(mixture)

"""Second review round of the day's changes: one test per mend, each failing before it."""

from __future__ import annotations

import numpy as np
import pytest

from mixtorch import BayesianGaussianMixture


@pytest.mark.parametrize("covariance_type", ["full", "diag", "tied", "spherical"])
def test_bgm_mixture_attribute_is_the_documented_point_estimate(covariance_type):
    # mixture_ holds the posterior-mean weights and means and the inverse of the
    # posterior-mean precisions, as its attribute entry now says.
    X = np.random.default_rng(0).normal(size=(200, 2))
    bgm = BayesianGaussianMixture(
        n_components=2,
        covariance_type=covariance_type,
        weight_concentration_prior_type="dirichlet_distribution",
        max_iter=500,
        random_state=0,
    ).fit(X)
    mixture = bgm.mixture_
    concentration = bgm.weight_concentration_
    np.testing.assert_allclose(
        mixture.weights.numpy(), concentration / concentration.sum(), rtol=1e-10
    )
    np.testing.assert_allclose(mixture.means.numpy(), bgm.means_, rtol=1e-10)
    precisions = np.asarray(bgm.precisions_, dtype=np.float64)
    inverse = 1.0 / precisions if covariance_type in ("diag", "spherical") else None
    if inverse is None:
        inverse = np.linalg.inv(precisions)
    np.testing.assert_allclose(bgm.covariances_, inverse, rtol=1e-8)
    np.testing.assert_allclose(np.asarray(mixture.covariance.covariances), inverse, rtol=1e-8)
    entry = BayesianGaussianMixture.__doc__.split("mixture_ : Mixture")[1]
    assert "inverse of the posterior-mean precisions" in " ".join(entry.split())

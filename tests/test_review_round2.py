"""Second review round of the day's changes: one test per mend, each failing before it."""

from __future__ import annotations

import numpy as np
import pytest

import mixtorch
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


def test_gaussian_score_takes_sample_weight_as_its_fit_does():
    # Gaussian.fit took sample_weight but Gaussian.score did not (GaussianMixture's did).
    from scipy import stats

    from mixtorch import Gaussian

    X = np.random.default_rng(1).normal([1.0, -2.0], [1.0, 3.0], size=(120, 2))
    w = np.arange(120) % 4
    model = Gaussian().fit(X, sample_weight=w)
    reference = stats.multivariate_normal(model.mean, model.cov).logpdf(X)
    assert model.score(X, sample_weight=w) == pytest.approx(
        np.average(reference, weights=w), rel=1e-12
    )
    assert model.score(X, None, w) == model.score(X, sample_weight=w)
    assert model.score(X) == pytest.approx(reference.mean(), rel=1e-12)
    with pytest.raises(ValueError, match="sample_weight"):
        model.score(X, sample_weight=w[:5])
    with pytest.raises(ValueError, match="sample_weight"):
        model.score(X, sample_weight=-np.ones(120))


def test_mixture_score_weights_rows_with_missing_cells():
    from mixtorch import GaussianMixture

    X = np.random.default_rng(2).normal(size=(150, 3))
    X[::7, 1] = np.nan
    w = (np.arange(150) % 5).astype(float)
    model = GaussianMixture(2, missing_values=np.nan, random_state=0).fit(X)
    expected = np.average(model.score_samples(X), weights=w)
    assert model.score(X, sample_weight=w) == pytest.approx(expected, rel=1e-12)


def test_pyro_posterior_score_takes_sample_weight():
    pytest.importorskip("pyro")
    from mixtorch.bayes._posterior import PosteriorPredictiveMixin

    class Fixed(PosteriorPredictiveMixin):
        def score_samples(self, X):
            return np.asarray(X, dtype=float)[:, 0]

    values = np.array([[-1.0], [-3.0], [-np.inf]])
    assert Fixed().score(values, sample_weight=[3.0, 1.0, 0.0]) == pytest.approx(-1.5)
    with pytest.raises(ValueError, match="sample_weight"):
        Fixed().score(values, sample_weight=[1.0, 1.0])


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (np.nan, r"Input sample_weight contains NaN \(row 3\); give every row a finite"),
        (np.inf, r"Input sample_weight contains infinity \(row 3\)"),
        (-2.0, r"sample_weight must be non-negative, got -2\.0 for row 3; 0 leaves a row out"),
    ],
)
def test_a_bad_sample_weight_names_the_row_and_the_remedy(bad, message):
    X = np.random.default_rng(0).normal(size=(20, 2))
    weights = np.ones(20)
    weights[3] = bad
    for model in (mixtorch.Gaussian(), mixtorch.GaussianMixture(2, random_state=0)):
        with pytest.raises(ValueError, match=message):
            model.fit(X, sample_weight=weights)

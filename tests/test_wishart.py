"""The Normal-Wishart (variational Bayes) update of each covariance kind
(mixtorch._wishart, inherited by the covariance types) against scikit-learn's
``BayesianGaussianMixture`` and against Bishop's update written out in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.mixture import BayesianGaussianMixture as SkBGMM

from conftest import make_blobs_mixture
from mixtorch.covariance import FullCovariance, TiedCovariance, covariance_class
from mixtorch.fit.variational import VariationalPrior

KINDS = ["full", "tied", "diag", "spherical"]
K = 3


def a_prior(X: np.ndarray, kind: str, dtype: torch.dtype = torch.float64) -> VariationalPrior:
    full = np.cov(X.T)
    given = full if kind in ("full", "tied") else np.diag(full).copy()
    covariance = covariance_class(kind).prior_covariance_from(torch.as_tensor(given))
    return VariationalPrior(
        weight_concentration=0.3,
        process=True,
        mean_precision=0.8,
        mean=torch.as_tensor(X.mean(0), dtype=dtype),
        degrees_of_freedom=X.shape[1] + 0.5,
        covariance=covariance.to(dtype),
    )


def wishart_inputs(kind: str, seed: int = 2):
    rng = np.random.default_rng(seed)
    d = 3
    counts = rng.uniform(5, 50, K)
    means = rng.normal(size=(K, d))
    factors = rng.normal(size=(K, d, d))
    centred_full = factors @ factors.transpose(0, 2, 1) * counts[:, None, None] / 3
    centred = (
        centred_full if kind in ("full", "tied") else np.diagonal(centred_full, 0, 1, 2).copy()
    )
    prior = a_prior(make_blobs_mixture(600, d, K, seed=3).X, kind)
    return counts, means, centred_full, centred, prior, prior.mean_precision + counts


@pytest.mark.parametrize("kind", KINDS)
def test_wishart_posterior_matches_sklearn(kind):
    counts, means, centred_full, centred, prior, mean_precision = wishart_inputs(kind)
    d, reg = means.shape[1], 1e-4
    dof, covariances = covariance_class(kind).wishart_posterior(
        torch.as_tensor(counts),
        torch.as_tensor(means),
        torch.as_tensor(centred),
        prior,
        torch.as_tensor(mean_precision),
        reg,
    )
    per_sample = {  # scikit-learn's sk from _estimate_gaussian_parameters
        "full": centred_full / counts[:, None, None] + reg * np.eye(d),
        "tied": centred_full.sum(0) / counts.sum() + reg * np.eye(d),
        "diag": centred / counts[:, None] + reg,
        "spherical": (centred / counts[:, None] + reg).mean(1),
    }[kind]
    sk = SkBGMM(n_components=K, covariance_type=kind)
    sk.degrees_of_freedom_prior_ = prior.degrees_of_freedom
    sk.covariance_prior_ = prior.covariance.numpy()
    sk.mean_prior_ = prior.mean.numpy()
    sk.mean_precision_prior_ = prior.mean_precision
    sk.mean_precision_ = mean_precision
    getattr(sk, f"_estimate_wishart_{kind}")(counts, means, per_sample)
    np.testing.assert_allclose(dof.numpy(), sk.degrees_of_freedom_, rtol=1e-13)
    np.testing.assert_allclose(covariances.numpy(), sk.covariances_, rtol=1e-12)


def test_full_wishart_posterior_is_bishops_update():
    """Bishop (10.60)-(10.63) written out in float64, one component at a time:
    nu_k = nu_0 + N_k and W_k^-1 = W_0^-1 + N_k S_k + beta_0 N_k / (beta_0 + N_k) dd^T,
    with S_k the per-sample covariance (plus reg_covar) and d = xbar_k - m_0; the
    returned covariance is W_k^-1 / nu_k."""
    counts, means, centred_full, _, prior, mean_precision = wishart_inputs("full", seed=12)
    reg = 1e-3
    dof, covariances = FullCovariance.wishart_posterior(
        torch.as_tensor(counts),
        torch.as_tensor(means),
        torch.as_tensor(centred_full),
        prior,
        torch.as_tensor(mean_precision),
        reg,
    )
    beta0, m0 = prior.mean_precision, prior.mean.numpy()
    W0_inv, nu0 = prior.covariance.numpy(), prior.degrees_of_freedom
    for k in range(K):
        S = centred_full[k] / counts[k] + reg * np.eye(3)
        d = means[k] - m0
        W_inv = W0_inv + counts[k] * S + beta0 * counts[k] / (beta0 + counts[k]) * np.outer(d, d)
        nu = nu0 + counts[k]
        assert float(dof[k]) == pytest.approx(nu, rel=1e-15)
        np.testing.assert_allclose(covariances[k].numpy(), W_inv / nu, rtol=1e-13)


def test_tied_wishart_posterior_averages_the_components():
    """scikit-learn's tied update written out: the component scatters and the shrinkage
    terms are averaged over components, nu = nu_0 + N / K."""
    counts, means, centred_full, _, prior, mean_precision = wishart_inputs("tied", seed=13)
    reg = 1e-3
    dof, covariance = TiedCovariance.wishart_posterior(
        torch.as_tensor(counts),
        torch.as_tensor(means),
        torch.as_tensor(centred_full),
        prior,
        torch.as_tensor(mean_precision),
        reg,
    )
    beta0, m0 = prior.mean_precision, prior.mean.numpy()
    total = counts.sum()
    scatter = centred_full.sum(0) + reg * total * np.eye(3)
    between = sum(
        counts[k] / mean_precision[k] * np.outer(means[k] - m0, means[k] - m0) for k in range(K)
    )
    W_inv = prior.covariance.numpy() + scatter / K + beta0 / K * between
    nu = prior.degrees_of_freedom + total / K
    assert float(dof) == pytest.approx(nu, rel=1e-15)
    np.testing.assert_allclose(covariance.numpy(), W_inv / nu, rtol=1e-13)


def test_prior_covariance_layouts_and_checks():
    full = torch.tensor([[2.0, 0.5], [0.5, 1.0]], dtype=torch.float64)
    assert covariance_class("tied").prior_covariance_shape(2) == (2, 2)
    assert covariance_class("spherical").prior_covariance_shape(2) == ()
    diagonal = torch.diagonal(full)
    assert float(covariance_class("spherical").prior_covariance_from(diagonal)) == 1.5
    with pytest.raises(ValueError, match="positive-definite"):
        covariance_class("full").check_prior_covariance(torch.tensor([[1.0, 2.0], [2.0, 1.0]]))
    with pytest.raises(ValueError, match="should be positive"):
        covariance_class("diag").check_prior_covariance(torch.tensor([1.0, 0.0]))
    with pytest.raises(ValueError, match="NaN"):
        covariance_class("spherical").check_prior_covariance(torch.tensor(float("nan")))

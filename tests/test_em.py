"""EM as a pure function (mixtorch.fit.em) against one EM step written out in float64
with SciPy densities, and its weighting, fixing and re-seeding rules."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from conftest import make_blobs_mixture
from mixtorch.fit.em import fit_em
from mixtorch.mixture import Mixture

KINDS = ["full", "tied", "diag", "spherical"]
K, D = 3, 2


def a_start(kind: str, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Weights, means and covariances (scikit-learn's layout) of a rough starting point."""
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(K) * 3)
    means = rng.normal(0, 4, size=(K, D))
    covariances = {
        "full": np.stack([np.eye(D) * s for s in (1.0, 2.0, 0.5)]),
        "tied": np.array([[1.5, 0.3], [0.3, 1.0]]),
        "diag": rng.uniform(0.5, 2.0, size=(K, D)),
        "spherical": rng.uniform(0.5, 2.0, size=K),
    }[kind]
    return weights, means, covariances


def dense(kind: str, covariances: np.ndarray) -> np.ndarray:
    if kind == "full":
        return covariances
    if kind == "tied":
        return np.broadcast_to(covariances, (K, D, D))
    if kind == "diag":
        return np.stack([np.diag(row) for row in covariances])
    return covariances[:, None, None] * np.eye(D)


def em_step_by_hand(X, w, weights, means, covariances, kind, reg_covar):
    """One EM step in float64 (Bishop 9.23-9.27, scikit-learn's layouts and reg_covar).

    Returns the mean log-likelihood under the given parameters and the updated ones.
    """
    log_prob = np.stack(
        [
            np.log(weights[k])
            + multivariate_normal(means[k], dense(kind, covariances)[k]).logpdf(X)
            for k in range(K)
        ],
        1,
    )
    log_norm = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - log_norm[:, None]) * w[:, None]
    counts = resp.sum(0)
    new_means = resp.T @ X / counts[:, None]
    scatter = np.stack(
        [(resp[:, k, None] * (X - new_means[k])).T @ (X - new_means[k]) for k in range(K)]
    )
    full = scatter / counts[:, None, None]
    new_covariances = {
        "full": full + reg_covar * np.eye(D),
        "tied": scatter.sum(0) / counts.sum() + reg_covar * np.eye(D),
        "diag": np.diagonal(full, 0, 1, 2) + reg_covar,
        "spherical": np.diagonal(full, 0, 1, 2).mean(1) + reg_covar,
    }[kind]
    mean_log_likelihood = float((w * log_norm).sum() / w.sum())
    return mean_log_likelihood, counts / counts.sum(), new_means, new_covariances


@pytest.mark.parametrize("kind", KINDS)
def test_one_iteration_is_one_em_step(kind):
    X = make_blobs_mixture(400, D, K, seed=1).X
    weights, means, covariances = a_start(kind)
    start = Mixture.from_parameters(weights, means, covariances, kind)
    mixture, trace = fit_em(lambda: [torch.as_tensor(X)], start, max_iter=1, reg_covar=1e-3)
    bound, new_weights, new_means, new_covariances = em_step_by_hand(
        X, np.ones(len(X)), weights, means, covariances, kind, 1e-3
    )
    assert trace.n_iter == 1 and not trace.converged
    assert trace.lower_bounds[0] == pytest.approx(bound, rel=1e-12)
    np.testing.assert_allclose(mixture.weights.numpy(), new_weights, rtol=1e-10)
    np.testing.assert_allclose(mixture.means.numpy(), new_means, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(mixture.covariance.covariances.numpy(), new_covariances, rtol=1e-9)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_sample_weights_count_like_repeated_rows(kind):
    X = make_blobs_mixture(300, D, K, seed=2).X
    repeats = np.random.default_rng(3).integers(1, 4, len(X))
    weights, means, covariances = a_start(kind, seed=4)
    start = Mixture.from_parameters(weights, means, covariances, kind)
    pair = (torch.as_tensor(X), torch.as_tensor(repeats, dtype=torch.float64))
    weighted, weighted_trace = fit_em(lambda: [pair], start, max_iter=5, tol=0.0)
    rows = torch.as_tensor(np.repeat(X, repeats, axis=0))
    repeated, repeated_trace = fit_em(lambda: [rows], start, max_iter=5, tol=0.0)
    np.testing.assert_allclose(weighted_trace.lower_bounds, repeated_trace.lower_bounds, rtol=1e-12)
    np.testing.assert_allclose(weighted.means.numpy(), repeated.means.numpy(), rtol=1e-10)
    np.testing.assert_allclose(
        weighted.covariance.covariances.numpy(), repeated.covariance.covariances.numpy(), rtol=1e-9
    )


def test_chunks_and_their_order_do_not_change_the_fit():
    X = torch.as_tensor(make_blobs_mixture(500, D, K, seed=5).X)
    start = Mixture.from_parameters(*a_start("full", seed=6), "full")
    whole, _ = fit_em(lambda: [X], start, max_iter=10, tol=0.0)
    pieces, _ = fit_em(lambda: [X[300:], X[:120], X[120:300]], start, max_iter=10, tol=0.0)
    np.testing.assert_allclose(pieces.means.numpy(), whole.means.numpy(), rtol=1e-10)
    np.testing.assert_allclose(pieces.weights.numpy(), whole.weights.numpy(), rtol=1e-10)


def test_lower_bound_never_decreases_and_convergence_is_on_the_change():
    X = torch.as_tensor(make_blobs_mixture(600, D, K, seed=7, separation=3.0).X)
    start = Mixture.from_parameters(*a_start("full", seed=8), "full")
    seen = []
    mixture, trace = fit_em(
        lambda: [X], start, max_iter=500, tol=1e-6, callback=lambda *args: seen.append(args)
    )
    bounds = np.array(trace.lower_bounds)
    assert (np.diff(bounds) >= -1e-12).all()
    assert trace.converged and abs(bounds[-1] - bounds[-2]) < 1e-6 <= abs(bounds[-2] - bounds[-3])
    assert [s[0] for s in seen] == list(range(1, trace.n_iter + 1))
    assert [s[1] for s in seen] == trace.lower_bounds
    assert math.isfinite(float(mixture.log_prob(X).sum()))


def test_fixed_means_give_the_scatter_about_those_means():
    X = make_blobs_mixture(300, D, K, seed=9).X
    weights, means, covariances = a_start("full", seed=10)
    start = Mixture.from_parameters(weights, means, covariances, "full")
    mixture, _ = fit_em(
        lambda: [torch.as_tensor(X)], start, max_iter=1, reg_covar=0.0, fixed=("means",)
    )
    np.testing.assert_array_equal(mixture.means.numpy(), means)
    log_prob = np.stack(
        [
            np.log(weights[k]) + multivariate_normal(means[k], covariances[k]).logpdf(X)
            for k in range(K)
        ],
        1,
    )
    resp = np.exp(log_prob - logsumexp(log_prob, axis=1, keepdims=True))
    counts = resp.sum(0)
    expected = np.stack(
        [(resp[:, k, None] * (X - means[k])).T @ (X - means[k]) / counts[k] for k in range(K)]
    )
    np.testing.assert_allclose(mixture.covariance.covariances.numpy(), expected, rtol=1e-8)
    np.testing.assert_allclose(mixture.weights.numpy(), counts / counts.sum(), rtol=1e-8)


def test_fixed_names_are_checked():
    start = Mixture.from_parameters(*a_start("diag"), "diag")
    X = torch.zeros(5, D, dtype=torch.float64)
    with pytest.raises(ValueError, match="fixed may only name"):
        fit_em(lambda: [X], start, fixed=("precisions",))


def test_an_empty_component_is_reseeded_not_nan():
    X = make_blobs_mixture(300, D, 2, seed=11, separation=6.0).X
    weights = np.array([0.4, 0.4, 0.2])
    means = np.vstack([X[:2], [[1e3, 1e3]]])  # the third sits where no data are
    start = Mixture.from_parameters(weights, means, np.ones(K), "spherical")
    mixture, trace = fit_em(lambda: [torch.as_tensor(X)], start, max_iter=20)
    assert trace.reseeded >= 1
    assert bool(torch.isfinite(mixture.means).all())
    assert float(mixture.means.abs().max()) < 100  # the far component came back to the data
    assert float(mixture.weights.min()) > 0.01

"""Variational Bayes (mixtorch.fit.variational) against scikit-learn and against brute
force in float64. The covariance types' Wishart update is tested in test_covariance.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import digamma

from mixtorch.covariance import covariance_class
from mixtorch.fit.variational import (
    VariationalPosterior,
    VariationalPrior,
    expected_log_prob,
    fit_variational,
    posterior_from_responsibilities,
)
from mixtorch.fit.variational import _e_step as variational_e_step
from mixtorch.stats import pass_chunks

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


CENTERS = np.array([[0.0, 0.0, 0.0], [5.0, 1.0, -2.0], [1.0, 6.0, 2.0]])


@pytest.fixture(autouse=True)
def _restore_thread_count():
    """Some tests set torch's intra-op thread count (chunk threads need two)."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def blobs(n=600, d=3, seed=0, offset=0.0):
    rng = np.random.default_rng(seed)
    centers = CENTERS[:, :d]
    X = centers[rng.integers(0, 3, n)] + rng.normal(size=(n, d)) * [1.0, 0.6, 1.3][:d]
    return X + offset


def a_prior(X, covariance_type, process=True, dtype=torch.float64):
    layout = covariance_class(covariance_type).prior_covariance_from
    full = np.cov(X.T)
    covariance = layout(
        torch.as_tensor(full if covariance_type in ("full", "tied") else np.diag(full).copy())
    )
    return VariationalPrior(
        weight_concentration=0.3,
        process=process,
        mean_precision=0.8,
        mean=torch.as_tensor(X.mean(0), dtype=dtype),
        degrees_of_freedom=X.shape[1] + 0.5,
        covariance=covariance.to(dtype),
    )


def start(X, covariance_type, process=True, seed=1, offset=None):
    """A posterior one M-step away from random responsibilities (float64), or, given the
    data's ``offset``, from the nearest of the true centres (a start near the optimum)."""
    rng = np.random.default_rng(seed)
    responsibilities = torch.as_tensor(rng.dirichlet(np.ones(3) * 0.3, size=len(X)))
    if offset is not None:
        nearest = np.argmin(((X[:, None] - CENTERS[None] - offset) ** 2).sum(-1), 1)
        responsibilities = torch.nn.functional.one_hot(torch.as_tensor(nearest), 3).double()
    prior = a_prior(X, covariance_type, process)
    tensor = torch.as_tensor(X)
    posterior = posterior_from_responsibilities(
        tensor, responsibilities, prior, covariance_type, 1e-6, rows=128
    )
    return posterior, prior


# -- the E-step through the EM kernels against the textbook formula ----------------------
def brute_expected_log_prob(X, posterior: VariationalPosterior) -> np.ndarray:
    """Bishop (10.46)-(10.50) in float64 with W^-1 = nu * covariance, written out."""
    n, D = X.shape
    K = posterior.means.shape[0]
    nu = np.broadcast_to(posterior.degrees_of_freedom.numpy(), (K,))
    beta = posterior.mean_precision.numpy()
    covariances = posterior.covariance.full_matrices(K).numpy()
    if posterior.process:
        a, b = (c.numpy() for c in posterior.weight_concentration)
        log_sticks = digamma(b) - digamma(a + b)
        log_weights = (
            digamma(a) - digamma(a + b) + np.concatenate([[0.0], np.cumsum(log_sticks)[:-1]])
        )
    else:
        alpha = posterior.weight_concentration[0].numpy()
        log_weights = digamma(alpha) - digamma(alpha.sum())
    result = np.empty((n, K))
    for k in range(K):
        W = np.linalg.inv(nu[k] * covariances[k])
        log_det_lambda = (
            digamma(0.5 * (nu[k] - np.arange(D))).sum() + D * np.log(2) + np.linalg.slogdet(W)[1]
        )
        diff = X - posterior.means[k].numpy()
        quadratic = D / beta[k] + nu[k] * np.einsum("nd,de,ne->n", diff, W, diff)
        result[:, k] = (
            log_weights[k] + 0.5 * log_det_lambda - 0.5 * D * np.log(2 * np.pi) - 0.5 * quadratic
        )
    return result


@pytest.mark.parametrize("process", [True, False])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_e_step_through_the_kernels_equals_brute_force(covariance_type, process):
    X = blobs(seed=4)
    posterior, _ = start(X, covariance_type, process)
    expected = brute_expected_log_prob(X, posterior)
    np.testing.assert_allclose(
        expected_log_prob(torch.as_tensor(X), posterior).numpy(), expected, rtol=1e-10
    )
    stats = variational_e_step(pass_chunks(torch.as_tensor(X), 64), posterior)
    log_norm = np.logaddexp.reduce(expected, axis=1)
    responsibilities = np.exp(expected - log_norm[:, None])
    assert float(stats.log_likelihood) == pytest.approx(log_norm.sum(), rel=1e-11)
    assert float(stats.entropy) == pytest.approx(
        -np.sum(responsibilities * np.log(responsibilities)), rel=1e-9
    )
    np.testing.assert_allclose(stats.counts.numpy(), responsibilities.sum(0), rtol=1e-10)


# -- float32 and threads -----------------------------------------------------------------
def cast(posterior: VariationalPosterior, dtype: torch.dtype) -> VariationalPosterior:
    return VariationalPosterior(
        weight_concentration=tuple(c.to(dtype) for c in posterior.weight_concentration),
        mean_precision=posterior.mean_precision.to(dtype),
        means=posterior.means.to(dtype),
        degrees_of_freedom=posterior.degrees_of_freedom.to(dtype),
        covariance=posterior.covariance.to(dtype=dtype),
    )


def as_float32(posterior: VariationalPosterior) -> VariationalPosterior:
    return cast(posterior, torch.float32)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_float32_on_offset_data_stays_accurate(covariance_type):
    # Offset 1e4, spread ~1: E[x^2] - mean^2 in float32 would lose every digit. float32
    # arithmetic is compared with float64 arithmetic on the same float32 numbers
    # (rounding data and means to float32 at 1e4 is a perturbation of its own, about
    # 5e-4 per coordinate, that no arithmetic can undo).
    X = blobs(n=3000, seed=5, offset=1e4)
    X32 = torch.as_tensor(X, dtype=torch.float32)
    X64 = X32.double()
    initial, prior = start(X64.numpy(), covariance_type, seed=6, offset=1e4)
    rounded = as_float32(initial)
    prior32 = VariationalPrior(
        prior.weight_concentration,
        prior.process,
        prior.mean_precision,
        prior.mean.float(),
        prior.degrees_of_freedom,
        prior.covariance.float(),
    )
    # one E-step from a random start: the statistics themselves
    random_start = as_float32(start(X64.numpy(), covariance_type, seed=6)[0])
    stats = variational_e_step(pass_chunks(X64, 256), cast(random_start, torch.float64))
    stats32 = variational_e_step(pass_chunks(X32, 256), random_start)
    counts, means, centred = stats.moments(torch.float64)
    counts32, means32, centred32 = stats32.moments(torch.float32)
    np.testing.assert_allclose(counts32.numpy(), counts.numpy(), rtol=1e-5)
    np.testing.assert_allclose(means32.numpy(), means.numpy(), rtol=0, atol=1e-4)
    scale = counts.numpy().max()  # scatter entries are O(counts) for unit spread
    np.testing.assert_allclose(centred32.numpy(), centred.numpy(), rtol=0, atol=1e-5 * scale)
    assert float(stats32.entropy) == pytest.approx(float(stats.entropy), rel=1e-5)
    # whole fits: ten iterations from the same start near the optimum
    exact, trace = fit_variational(
        lambda: pass_chunks(X64, 256), cast(rounded, torch.float64), prior, tol=0, max_iter=10
    )
    single, trace32 = fit_variational(
        lambda: pass_chunks(X32, 256), rounded, prior32, tol=0, max_iter=10
    )
    # means are stored in float32: at 1e4 one unit in the last place is 1e-3
    np.testing.assert_allclose(single.means.numpy(), exact.means.numpy(), rtol=0, atol=1e-2)
    np.testing.assert_allclose(
        single.covariance.covariances.numpy(),
        exact.covariance.covariances.numpy(),
        rtol=2e-3,
        atol=2e-3,
    )
    np.testing.assert_allclose(trace32.lower_bounds, trace.lower_bounds, rtol=1e-5)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_threads_give_the_sequential_fit(covariance_type, dtype):
    X = blobs(n=4000, seed=7)
    initial, prior = start(X, covariance_type, seed=8)
    if dtype == torch.float32:
        initial = as_float32(initial)
        prior.mean, prior.covariance = prior.mean.float(), prior.covariance.float()
    chunks = list(torch.as_tensor(X, dtype=dtype).split(100))  # 40 chunks: threads
    torch.set_num_threads(2)
    threaded, trace = fit_variational(lambda: chunks, initial, prior, tol=0, max_iter=6)
    sequential, trace_seq = fit_variational(lambda: iter(chunks), initial, prior, tol=0, max_iter=6)
    assert trace.lower_bounds == trace_seq.lower_bounds  # same sums, same order: equal
    torch.testing.assert_close(threaded.means, sequential.means, rtol=0, atol=0)
    torch.testing.assert_close(
        threaded.covariance.covariances, sequential.covariance.covariances, rtol=0, atol=0
    )

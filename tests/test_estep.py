"""E-step kernels against float64 brute force, and the choice between them."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mixtorch import GaussianMixture
from mixtorch.covariance import covariance_class
from mixtorch.estep import (
    DiagDifferenceKernel,
    DiagKernel,
    DifferenceFullKernel,
    QuadraticFullKernel,
    full_kernel,
    matmul_roundoff,
)
from mixtorch.estep._kernel import exp_
from mixtorch.mixture import Mixture
from mixtorch.stats import SufficientStatistics, accumulate_statistics


def random_mixture(kind: str, K: int, D: int, rng: np.random.Generator, spread: float = 3.0):
    weights = rng.dirichlet(np.ones(K) * 2)
    means = rng.normal(0, spread, (K, D)) + 5.0
    if kind == "full":
        A = rng.normal(size=(K, D, D)) * 0.4
        covariances = A @ A.transpose(0, 2, 1) + np.eye(D)
    elif kind == "tied":
        A = rng.normal(size=(D, D)) * 0.4
        covariances = A @ A.T + np.eye(D)
    elif kind == "diag":
        covariances = rng.uniform(0.3, 2.0, (K, D))
    else:
        covariances = rng.uniform(0.3, 2.0, K)
    return weights, means, covariances


def brute_force(X, weights, means, covariances, kind, sample_weight=None):
    """log-likelihood, counts, sums and scatter about the means, by SciPy in float64."""
    K, D = means.shape
    full = {
        "full": lambda k: covariances[k],
        "tied": lambda k: covariances,
        "diag": lambda k: np.diag(covariances[k]),
        "spherical": lambda k: covariances[k] * np.eye(D),
    }[kind]
    log_prob = np.stack(
        [np.log(weights[k]) + multivariate_normal(means[k], full(k)).logpdf(X) for k in range(K)],
        axis=1,
    )
    log_norm = logsumexp(log_prob, axis=1)
    resp = np.exp(log_prob - log_norm[:, None])
    w = np.ones(len(X)) if sample_weight is None else sample_weight
    resp = resp * w[:, None]
    diffs = X[None, :, :] - means[:, None, :]
    sums = np.einsum("nk,knd->kd", resp, diffs)
    scatter = np.einsum("nk,knd,kne->kde", resp, diffs, diffs)
    return float(log_norm @ w), resp.sum(0), sums, scatter, log_prob


def as_mixture(weights, means, covariances, kind, dtype):
    D = np.shape(means)[1]
    covariance = covariance_class(kind)(torch.tensor(covariances, dtype=dtype), n_features=D)
    return Mixture(torch.tensor(weights, dtype=dtype), torch.tensor(means, dtype=dtype), covariance)


def chunks_of(X: torch.Tensor, rows: int, weight: torch.Tensor | None = None):
    for start in range(0, X.shape[0], rows):
        if weight is None:
            yield X[start : start + rows]
        else:
            yield X[start : start + rows], weight[start : start + rows]


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("D", [1, 2, 5, 16, 17])
@pytest.mark.parametrize("weighted", [False, True])
def test_statistics_match_brute_force(kind, D, weighted):
    rng = np.random.default_rng(D)
    K = 4
    weights, means, covariances = random_mixture(kind, K, D, rng)
    X = means[rng.integers(0, K, 700)] + rng.normal(size=(700, D))
    sample_weight = rng.uniform(0.1, 3.0, 700) if weighted else None
    ll, counts, sums, scatter, _ = brute_force(X, weights, means, covariances, kind, sample_weight)
    mixture = as_mixture(weights, means, covariances, kind, torch.float64)
    weight_t = None if sample_weight is None else torch.tensor(sample_weight)
    stats = accumulate_statistics(mixture, chunks_of(torch.tensor(X), 256, weight_t))
    assert stats.log_likelihood.item() == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(stats.counts.numpy(), counts, rtol=1e-11)
    # Diag/spherical moments are about the centre: move them to the means to compare.
    stats = stats.about(torch.tensor(means))
    diagonal = np.einsum("kdd->kd", scatter)
    expected = scatter if stats.scatter.ndim == 3 else diagonal
    np.testing.assert_allclose(stats.sums.numpy(), sums, atol=1e-9 * np.abs(X).max() * 700)
    np.testing.assert_allclose(stats.scatter.numpy(), expected, rtol=1e-9, atol=1e-8)


@pytest.mark.parametrize("kernel_type", [QuadraticFullKernel, DifferenceFullKernel])
@pytest.mark.parametrize("kind", ["full", "tied"])
def test_both_full_kernels_agree_with_brute_force(kernel_type, kind):
    rng = np.random.default_rng(1)
    K, D = 5, 6
    weights, means, covariances = random_mixture(kind, K, D, rng)
    X = means[rng.integers(0, K, 900)] + rng.normal(size=(900, D))
    ll, counts, sums, scatter, log_prob = brute_force(X, weights, means, covariances, kind)
    mixture = as_mixture(weights, means, covariances, kind, torch.float64)
    covariance = mixture.covariance
    kernel = kernel_type(
        mixture.center,
        mixture.centred_means,
        covariance.precisions_cholesky(),
        covariance._bias(mixture.log_weights),
    )
    X_t = torch.tensor(X)
    np.testing.assert_allclose(kernel.weighted_log_prob(X_t).numpy(), log_prob, rtol=1e-12)
    result = kernel(X_t)
    assert result.log_likelihood.item() == pytest.approx(ll, rel=1e-12)
    np.testing.assert_allclose(result.counts.numpy(), counts, rtol=1e-11)
    sums_k, scatter_k = kernel.finish(result.first, result.second)
    origin = (kernel.origin + mixture.center).double()
    stats = SufficientStatistics(
        result.counts, sums_k, scatter_k, origin, result.log_likelihood, torch.tensor(900.0)
    ).about(torch.tensor(means))
    np.testing.assert_allclose(stats.sums.numpy(), sums, atol=1e-9)
    np.testing.assert_allclose(stats.scatter.numpy(), scatter, rtol=1e-10, atol=1e-9)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_scoring_products_with_the_bias_folded_in_match_brute_force(kind):
    # column_log_prob multiplies a block ending in ones by coefficients ending in the
    # bias; chunks of other lengths in the same thread (short after long, a longer one
    # outgrowing the buffer, long after short) must not disturb the ones.
    rng = np.random.default_rng(4)
    K, D = 4, 5
    weights, means, covariances = random_mixture(kind, K, D, rng)
    X = means[rng.integers(0, K, 700)] + rng.normal(size=(700, D))
    *_, log_prob = brute_force(X, weights, means, covariances, kind)
    kernel = as_mixture(weights, means, covariances, kind, torch.float64).e_step_kernel
    assert type(kernel) in (QuadraticFullKernel, DiagKernel)
    X_t = torch.tensor(X)
    try:
        chunks = [(0, 37), (37, 637), (637, 700), (0, 37), (100, 700), (0, 600), (600, 663)]
        for start, stop in chunks + [(0, 600), (637, 700)]:
            got = kernel.column_log_prob(X_t[start:stop]).numpy().copy()
            np.testing.assert_allclose(got.T, log_prob[start:stop], rtol=1e-12)
    finally:
        kernel.release()


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_scoring_keeps_the_bias_out_of_products_that_round_their_inputs(kind):
    # bfloat16 products would round the bias (log-determinants, tens of nats for tight
    # components) as one of their inputs: scoring then adds it after the product.
    rng = np.random.default_rng(5)
    weights, means, covariances = random_mixture(kind, 3, 4, rng)
    means, covariances = means * 0.01, covariances * 1e-4  # whitened distances kept
    kernel = as_mixture(weights, means, covariances, kind, torch.float32).e_step_kernel
    assert type(kernel) in (QuadraticFullKernel, DiagKernel)
    X = torch.tensor(means[rng.integers(0, 3, 500)] + rng.normal(size=(500, 4)) * 0.01)
    X = X.float()
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("medium")
        scored = kernel.column_log_prob(X).clone()
        assert "scoring_block" not in kernel._scratch.buffers  # the block without ones
        added = kernel._log_prob(kernel._block(X, reuse=True)).clone()
    finally:
        torch.set_float32_matmul_precision(before)
        kernel.release()
    assert float(kernel.bias.abs().max()) > 2  # bfloat16 would round it by 1e-2 or more
    torch.testing.assert_close(scored, added, rtol=0, atol=0)


def test_difference_kernel_splits_long_chunks_exactly():
    rng = np.random.default_rng(2)
    weights, means, covariances = random_mixture("full", 3, 4, rng)
    X = torch.tensor(means[rng.integers(0, 3, 1000)] + rng.normal(size=(1000, 4)))
    mixture = as_mixture(weights, means, covariances, "full", torch.float64)
    covariance = mixture.covariance
    args = (
        mixture.center,
        mixture.centred_means,
        covariance.precisions_cholesky(),
        covariance._bias(mixture.log_weights),
    )
    whole, pieces = DifferenceFullKernel(*args), DifferenceFullKernel(*args)
    whole.piece_rows, pieces.piece_rows = 1000, 97
    for a, b in zip(whole(X), pieces(X), strict=True):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-10)


def test_quadratic_form_chosen_for_ordinary_data():
    rng = np.random.default_rng(3)
    weights, means, covariances = random_mixture("full", 8, 16, rng)
    mixture = as_mixture(weights, means, covariances, "full", torch.float32)
    assert isinstance(mixture.e_step_kernel, QuadraticFullKernel)


def test_far_tight_components_use_differences_and_stay_accurate_in_float32():
    """Two clusters 2000 standard deviations apart: the quadratic form would cancel."""
    rng = np.random.default_rng(4)
    D = 3
    means = np.array([[0.0] * D, [20.0] * D])
    X = np.concatenate(
        [means[0] + 0.01 * rng.normal(size=(500, D)), means[1] + 0.01 * rng.normal(size=(500, D))]
    )
    covariances = np.stack([np.eye(D) * 1e-4] * 2)
    weights = np.array([0.5, 0.5])
    mixture = as_mixture(weights, means, covariances, "full", torch.float32)
    assert isinstance(mixture.e_step_kernel, DifferenceFullKernel)
    ll, counts, sums, scatter, _ = brute_force(X, weights, means, covariances, "full")
    stats = accumulate_statistics(mixture, chunks_of(torch.tensor(X, dtype=torch.float32), 300))
    assert stats.log_likelihood.item() / 1000 == pytest.approx(ll / 1000, abs=1e-4)
    # Covariance estimates (scatter / counts) to float32 precision, not 2000^2 * eps.
    estimate = stats.scatter.numpy() / stats.counts.numpy()[:, None, None]
    np.testing.assert_allclose(estimate, scatter / counts[:, None, None], rtol=1e-4, atol=1e-9)


def test_quadratic_form_float32_error_is_bounded_at_the_tolerance_edge():
    """Means ~30 whitened units from the centre (the largest the quadratic form takes)."""
    rng = np.random.default_rng(5)
    K, D = 4, 8
    means = rng.normal(0, 1, (K, D))
    means *= 22.0 / np.linalg.norm(means, axis=1, keepdims=True)
    covariances = np.stack([np.eye(D)] * K)
    weights = np.full(K, 0.25)
    X = means[rng.integers(0, K, 4000)] + rng.normal(size=(4000, D))
    mixture = as_mixture(weights, means, covariances, "full", torch.float32)
    delta = torch.linalg.vector_norm(mixture.centred_means, dim=1).max().item()
    assert delta**2 * torch.finfo(torch.float32).eps <= 2.0**-13
    assert isinstance(mixture.e_step_kernel, QuadraticFullKernel)
    ll, counts, sums, scatter, log_prob = brute_force(X, weights, means, covariances, "full")
    X32 = torch.tensor(X, dtype=torch.float32)
    # The documented error model: log-densities within a few u * delta^2 nats.
    error = np.abs(mixture.weighted_log_prob(X32).double().numpy() - log_prob)
    responsible = log_prob >= log_prob.max(1, keepdims=True) - 10  # where it matters
    assert error[responsible].max() <= 5 * torch.finfo().eps * delta**2
    stats = accumulate_statistics(mixture, chunks_of(X32, 1024))
    assert stats.log_likelihood.item() / 4000 == pytest.approx(ll / 4000, abs=2e-4)
    estimate = stats.scatter.numpy() / stats.counts.numpy()[:, None, None]
    np.testing.assert_allclose(estimate, scatter / counts[:, None, None], atol=2e-3)


def test_full_kernel_prefers_differences_when_the_block_would_be_large():
    rng = np.random.default_rng(6)
    weights, means, covariances = random_mixture("full", 2, 12, rng, spread=0.1)
    mixture = as_mixture(weights, means, covariances - 0.0, "full", torch.float64)
    covariance = mixture.covariance
    kernel = full_kernel(
        mixture.center,
        mixture.centred_means,
        covariance.precisions_cholesky(),
        covariance._bias(mixture.log_weights),
    )
    assert isinstance(kernel, DifferenceFullKernel)  # D = 12 > 4 K = 8


def test_about_moves_moments_exactly():
    rng = np.random.default_rng(7)
    X = rng.normal(size=(50, 3))
    r = rng.uniform(size=(50, 2))
    a, b = rng.normal(size=(2, 3)), rng.normal(size=(2, 3))

    def moments(ref):
        d = X[None] - ref[:, None]
        return np.einsum("nk,knd->kd", r, d), np.einsum("nk,knd,kne->kde", r, d, d)

    sums_a, scatter_a = moments(a)
    sums_b, scatter_b = moments(b)
    stats = SufficientStatistics(
        torch.tensor(r.sum(0)),
        torch.tensor(sums_a),
        torch.tensor(scatter_a),
        torch.tensor(a),
        torch.zeros(()),
        torch.tensor(50.0),
    ).about(torch.tensor(b))
    np.testing.assert_allclose(stats.sums.numpy(), sums_b, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(stats.scatter.numpy(), scatter_b, rtol=1e-12, atol=1e-12)
    diagonal = SufficientStatistics(
        torch.tensor(r.sum(0)),
        torch.tensor(sums_a),
        torch.tensor(np.einsum("kdd->kd", scatter_a)),
        torch.tensor(a),
        torch.zeros(()),
        torch.tensor(50.0),
    ).about(torch.tensor(b))
    np.testing.assert_allclose(
        diagonal.scatter.numpy(), np.einsum("kdd->kd", scatter_b), rtol=1e-12, atol=1e-12
    )


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
@pytest.mark.parametrize("kind", ["full", "tied"])
def test_em_agrees_between_kernels(kind, monkeypatch):
    """A whole float32 fit by the quadratic form equals one by explicit differences."""
    rng = np.random.default_rng(8)
    weights, means, covariances = random_mixture("full", 4, 5, rng)
    X = (means[rng.integers(0, 4, 3000)] + rng.normal(size=(3000, 5))).astype(np.float32)
    params = dict(covariance_type=kind, random_state=0, tol=0.0, max_iter=25)
    quadratic = GaussianMixture(4, **params).fit(X)
    monkeypatch.setattr("mixtorch.estep._full.QUADRATIC_FORM_TOLERANCE", -math.inf)
    differences = GaussianMixture(4, **params).fit(X)
    assert isinstance(quadratic.mixture_.e_step_kernel, QuadraticFullKernel)
    assert isinstance(differences.mixture_.e_step_kernel, DifferenceFullKernel)
    assert quadratic.lower_bound_ == pytest.approx(differences.lower_bound_, abs=1e-5)
    np.testing.assert_allclose(quadratic.means_, differences.means_, atol=1e-4)
    np.testing.assert_allclose(quadratic.covariances_, differences.covariances_, atol=1e-4)


@pytest.mark.parametrize("kind", ["diag", "spherical"])
def test_far_tight_diagonal_components_use_differences(kind):
    rng = np.random.default_rng(9)
    D = 4
    means = np.array([[0.0] * D, [30.0] * D])
    X = np.concatenate([m + 0.01 * rng.normal(size=(400, D)) for m in means])
    covariances = np.full((2, D), 1e-4) if kind == "diag" else np.full(2, 1e-4)
    weights = np.array([0.5, 0.5])
    mixture = as_mixture(weights, means, covariances, kind, torch.float32)
    assert isinstance(mixture.e_step_kernel, DiagDifferenceKernel)
    ll, counts, sums, scatter, _ = brute_force(X, weights, means, covariances, kind)
    stats = accumulate_statistics(mixture, chunks_of(torch.tensor(X, dtype=torch.float32), 300))
    assert stats.log_likelihood.item() / 800 == pytest.approx(ll / 800, abs=1e-4)
    stats = stats.about(torch.tensor(means))
    estimate = stats.scatter.numpy() / stats.counts.numpy()[:, None]
    expected = np.einsum("kdd->kd", scatter) / counts[:, None]
    np.testing.assert_allclose(estimate, expected, rtol=1e-4)
    ordinary = as_mixture(weights, means / 1000, covariances * 1e4, kind, torch.float32)
    assert isinstance(ordinary.e_step_kernel, DiagKernel)


def test_reduced_precision_matmul_turns_the_quadratic_form_off():
    rng = np.random.default_rng(10)
    weights, means, covariances = random_mixture("full", 4, 3, rng)
    before = torch.get_float32_matmul_precision()
    try:
        assert matmul_roundoff(torch.float32, torch.device("cpu")) == torch.finfo().eps
        torch.set_float32_matmul_precision("high")
        assert matmul_roundoff(torch.float32, torch.device("cpu")) == 2.0**-11
        assert matmul_roundoff(torch.float64, torch.device("cpu")) == torch.finfo(torch.float64).eps
        mixture = as_mixture(weights, means, covariances, "full", torch.float32)
        assert isinstance(mixture.e_step_kernel, DifferenceFullKernel)
        torch.set_float32_matmul_precision("medium")
        assert matmul_roundoff(torch.float32, torch.device("cpu")) == 2.0**-8
    finally:
        torch.set_float32_matmul_precision(before)
    mixture = as_mixture(weights, means, covariances, "full", torch.float32)
    assert isinstance(mixture.e_step_kernel, QuadraticFullKernel)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_by_exp2_is_within_a_few_units_in_the_last_place(dtype):
    # x from the clamp floor used by the E-step (log(tiny) + 2) up to 0
    floor = math.log(torch.finfo(dtype).tiny) + 2.0
    x = torch.linspace(floor, 0.0, 100_001, dtype=torch.float64).to(dtype)
    got = exp_(x.clone()).double()
    exact = x.double().exp()
    relative = ((got - exact).abs() / exact).max().item()
    # one rounding of log2(e) x, relative to |x| <= 90 (float32) or 706 (float64)
    assert relative <= 2 * torch.finfo(dtype).eps * (1.0 + abs(floor))
    near = x >= -10.0  # terms that carry the sums: within a few units
    assert ((got - exact).abs() / exact)[near].max().item() <= 16 * torch.finfo(dtype).eps

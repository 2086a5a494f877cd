"""The value object against SciPy and torch.distributions, in float64."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from scipy.special import logsumexp

from mixtorch import CovarianceError, Mixture

RNG = np.random.default_rng(42)
K, D = 3, 4


def random_parameters(kind: str):
    weights = RNG.dirichlet(np.ones(K))
    means = RNG.normal(0, 3, size=(K, D))
    if kind == "full":
        A = RNG.normal(size=(K, D, D))
        covariances = A @ A.transpose(0, 2, 1) + 0.5 * np.eye(D)
        full = covariances
    elif kind == "tied":
        A = RNG.normal(size=(D, D))
        covariances = A @ A.T + 0.5 * np.eye(D)
        full = np.broadcast_to(covariances, (K, D, D))
    elif kind == "diag":
        covariances = RNG.uniform(0.2, 3.0, size=(K, D))
        full = np.stack([np.diag(c) for c in covariances])
    else:
        covariances = RNG.uniform(0.2, 3.0, size=K)
        full = np.stack([c * np.eye(D) for c in covariances])
    return weights, means, covariances, full


def scipy_log_density(X, weights, means, full):
    per_component = np.stack(
        [stats.multivariate_normal(means[k], full[k]).logpdf(X) for k in range(K)], axis=1
    )
    return per_component, logsumexp(per_component + np.log(weights), axis=1)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_log_densities_equal_scipy_and_torch_distributions(kind):
    weights, means, covariances, full = random_parameters(kind)
    mixture = Mixture.from_parameters(weights, means, covariances, kind)
    X = RNG.normal(0, 4, size=(500, D))
    expected_components, expected = scipy_log_density(X, weights, means, full)
    X_t = torch.as_tensor(X)
    np.testing.assert_allclose(
        mixture.component_log_prob(X_t).numpy(), expected_components, rtol=1e-12, atol=1e-10
    )
    np.testing.assert_allclose(mixture.log_prob(X_t).numpy(), expected, rtol=1e-12, atol=1e-10)
    np.testing.assert_allclose(
        mixture.to_torch().log_prob(X_t).numpy(), expected, rtol=1e-12, atol=1e-10
    )
    # chunking never changes the answer
    np.testing.assert_allclose(
        mixture.log_prob(X_t, chunk_size=7).numpy(), expected, rtol=1e-12, atol=1e-10
    )


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_responsibilities_are_bayes_rule(kind):
    weights, means, covariances, full = random_parameters(kind)
    mixture = Mixture.from_parameters(weights, means, covariances, kind)
    X = RNG.normal(0, 4, size=(300, D))
    components, total = scipy_log_density(X, weights, means, full)
    expected = np.exp(components + np.log(weights) - total[:, None])
    got = mixture.responsibilities(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(got, expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(got.sum(1), 1.0, rtol=1e-12)
    np.testing.assert_array_equal(mixture.predict(torch.as_tensor(X)).numpy(), expected.argmax(1))


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_samples_follow_the_mixture(kind):
    weights, means, covariances, full = random_parameters(kind)
    mixture = Mixture.from_parameters(weights, means, covariances, kind)
    generator = torch.Generator().manual_seed(0)
    samples, labels = mixture.sample(40_000, generator)
    samples, labels = samples.numpy(), labels.numpy()
    assert samples.shape == (40_000, D)
    counts = np.bincount(labels, minlength=K)
    # component frequencies: chi-square goodness of fit
    assert stats.chisquare(counts, weights * 40_000).pvalue > 1e-3
    for k in range(K):
        chunk = samples[labels == k]
        np.testing.assert_allclose(
            chunk.mean(0), means[k], atol=5 * np.sqrt(full[k].max() / len(chunk)) + 0.02
        )
        np.testing.assert_allclose(np.cov(chunk.T), full[k], atol=0.12 * np.abs(full[k]).max())
    # a 1-D projection of the samples follows the mixture's projected CDF (KS test)
    direction = RNG.normal(size=D)
    projected = samples @ direction
    proj_means, proj_vars = means @ direction, np.einsum("i,kij,j->k", direction, full, direction)

    def cdf(x):
        return sum(
            w * stats.norm.cdf(x, m, np.sqrt(v))
            for w, m, v in zip(weights, proj_means, proj_vars, strict=False)
        )

    assert stats.kstest(projected, cdf).pvalue > 1e-3


def test_same_generator_seed_gives_same_samples():
    weights, means, covariances, _ = random_parameters("full")
    mixture = Mixture.from_parameters(weights, means, covariances, "full")
    a = mixture.sample(100, torch.Generator().manual_seed(3))[0]
    b = mixture.sample(100, torch.Generator().manual_seed(3))[0]
    assert torch.equal(a, b)


def test_float32_density_is_accurate_far_from_the_origin():
    # components at 1e4 with unit spread: shifting by the mixture centre keeps float32 exact
    weights, means, covariances, full = random_parameters("full")
    means = means + 1e4
    X = means[0] + RNG.normal(size=(200, D))
    _, expected = scipy_log_density(X, weights, means, full)
    mixture = Mixture.from_parameters(weights, means, covariances, "full", dtype=torch.float32)
    got = mixture.log_prob(torch.as_tensor(X, dtype=torch.float32)).numpy()
    np.testing.assert_allclose(got, expected, atol=2e-2)


def test_not_positive_definite_covariance_names_the_component():
    weights, means, covariances, _ = random_parameters("full")
    covariances[1] = -np.eye(D)
    with pytest.raises(CovarianceError, match=r"covariances must be .* component 1 ") as caught:
        Mixture.from_parameters(weights, means, covariances, "full")
    assert "reg_covar" not in str(caught.value)  # given values: fitting advice does not apply


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([0.5, 0.6, -0.1], "non-negative"),
        ([0.2, 0.2, 0.2], "sum to 1"),
        ([np.nan, 0.5, 0.5], "finite"),
    ],
)
def test_bad_weights_are_rejected(weights, message):
    _, means, covariances, _ = random_parameters("diag")
    with pytest.raises(ValueError, match=message):
        Mixture.from_parameters(weights, means, covariances, "diag")


def test_wrong_covariance_shape_is_rejected():
    weights, means, _, _ = random_parameters("diag")
    with pytest.raises(ValueError, match=r"'full' covariances must have shape \(3, 4, 4\)"):
        Mixture.from_parameters(weights, means, np.ones((3, 4)), "full")
    with pytest.raises(ValueError, match="covariance_type must be one of"):
        Mixture.from_parameters(weights, means, np.ones((3, 4)), "banana")


def test_parameter_count_matches_scikit_learn():
    from sklearn.mixture import GaussianMixture as SkGaussianMixture

    X = RNG.normal(size=(50, D))
    for kind in ["full", "tied", "diag", "spherical"]:
        weights, means, covariances, _ = random_parameters(kind)
        mixture = Mixture.from_parameters(weights, means, covariances, kind)
        reference = SkGaussianMixture(K, covariance_type=kind, max_iter=200).fit(X)
        assert mixture.n_parameters() == reference._n_parameters()


@pytest.mark.parametrize("make", ["mixture", "gaussian", "kde"])
def test_sample_sizes_beyond_memory_are_refused_before_allocating(make):
    """A draw larger than free memory is a MemoryError saying how much it needs (torch's
    allocator failure or an integer overflow deep inside torch otherwise)."""
    import mixtorch

    X = np.random.default_rng(0).normal(size=(50, 2))
    model = {
        "mixture": mixtorch.GaussianMixture(2, random_state=0),
        "gaussian": mixtorch.Gaussian(),
        "kde": mixtorch.GaussianKDE(),
    }[make].fit(X)
    with pytest.raises(MemoryError, match=r"n_samples=1000000000000 would need about .* GiB"):
        model.sample(10**12)
    with pytest.raises(ValueError, match="too large"):
        model.sample(10**20)
    assert np.asarray(model.sample(3)[0] if make != "kde" else model.sample(3)).shape[-1] == 2

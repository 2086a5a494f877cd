"""Tests for mixtorch.nn: differentiable Gaussian and Gaussian-mixture modules."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

from mixtorch import Gaussian, GaussianMixture, Mixture
from mixtorch.nn import GaussianMixtureModule, GaussianModule

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread avoids the oversubscription that makes
    small torch ops many times slower on a busy two-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _random_module(covariance_type: str, reg_covar: float = 0.0, seed: int = 0):
    """A 3-component module in 2-D with non-trivial parameters (float64)."""
    generator = torch.Generator().manual_seed(seed)
    module = GaussianMixtureModule(
        3, 2, covariance_type, reg_covar=reg_covar, dtype=torch.float64, generator=generator
    )
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(
                0.4 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            )
    return module


def _scipy_log_prob(module: GaussianMixtureModule, X: np.ndarray) -> np.ndarray:
    """Brute-force float64 reference from the module's weights, means and covariances."""
    weights = torch.softmax(module.logits, 0).detach().numpy()
    means = module.means.detach().numpy()
    matrices = module.to_mixture().covariance.full_matrices(module.n_components).numpy()
    columns = [
        np.log(weights[k]) + multivariate_normal(means[k], matrices[k]).logpdf(X)
        for k in range(module.n_components)
    ]
    return logsumexp(np.stack(columns, axis=1), axis=1)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("reg_covar", [0.0, 0.05])
def test_log_prob_matches_scipy(covariance_type, reg_covar):
    module = _random_module(covariance_type, reg_covar)
    X = np.random.default_rng(1).normal(size=(50, 2)) * 2.0
    expected = _scipy_log_prob(module, X)
    actual = module.log_prob(torch.from_numpy(X)).detach().numpy()
    np.testing.assert_allclose(actual, expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_covariance_includes_reg_covar(covariance_type):
    plain = _random_module(covariance_type, 0.0)
    ridged = _random_module(covariance_type, 0.25)
    difference = (ridged.covariances() - plain.covariances()).detach()
    if covariance_type in ("full", "tied"):
        expected = 0.25 * torch.eye(2, dtype=torch.float64).expand_as(difference)
    else:
        expected = torch.full_like(difference, 0.25)
    torch.testing.assert_close(difference, expected)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
@pytest.mark.parametrize("reg_covar", [0.0, 0.1])
def test_log_prob_gradients_agree_with_finite_differences(covariance_type, reg_covar):
    module = _random_module(covariance_type, reg_covar, seed=3)
    X = torch.randn(6, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    names = [name for name, _ in module.named_parameters()]
    values = tuple(p.detach().clone().requires_grad_(True) for p in module.parameters())

    def log_prob(*parameters):
        state = dict(zip(names, parameters, strict=True))
        return torch.func.functional_call(module, state, (X,))

    assert torch.autograd.gradcheck(log_prob, values, eps=1e-6, atol=1e-6)
    assert set(names) == {
        "logits",
        "means",
        "raw_cholesky" if covariance_type in ("full", "tied") else "log_scale",
    }


def test_full_factor_is_lower_triangular_with_positive_diagonal():
    module = _random_module("full")
    factor = module.cholesky_factor().detach()
    assert torch.equal(factor, torch.tril(factor))
    assert bool((torch.diagonal(factor, dim1=-2, dim2=-1) > 0).all())
    # The upper triangle of the raw matrix is ignored: changing it changes nothing.
    before = module.log_prob(torch.zeros(1, 2)).detach()
    with torch.no_grad():
        module.raw_cholesky[:, 0, 1] += 5.0
    torch.testing.assert_close(module.log_prob(torch.zeros(1, 2)).detach(), before)


def test_extreme_parameters_give_finite_log_prob():
    X = torch.randn(20, 2, dtype=torch.float64) * 1e3
    for log_scale in (-30.0, 30.0):
        for covariance_type in COVARIANCE_TYPES:
            module = GaussianMixtureModule(2, 2, covariance_type, dtype=torch.float64)
            with torch.no_grad():
                if covariance_type in ("full", "tied"):
                    torch.diagonal(module.raw_cholesky, dim1=-2, dim2=-1).fill_(log_scale)
                else:
                    module.log_scale.fill_(log_scale)
            value = module.log_prob(X)
            value.sum().backward()
            assert bool(torch.isfinite(value).all())
            assert all(bool(torch.isfinite(p.grad).all()) for p in module.parameters())


def test_batch_dimensions_and_responsibilities():
    module = _random_module("diag")
    x = torch.randn(4, 5, 2, dtype=torch.float64)
    flat = module.log_prob(x.reshape(-1, 2))
    assert module.log_prob(x).shape == (4, 5)
    torch.testing.assert_close(module(x).reshape(-1), flat)
    responsibilities = module.responsibilities(x)
    assert responsibilities.shape == (4, 5, 3)
    torch.testing.assert_close(responsibilities.sum(-1), torch.ones(4, 5, dtype=torch.float64))


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_samples_follow_the_parameters(covariance_type):
    module = _random_module(covariance_type)
    samples, labels = module.sample(60_000, torch.Generator().manual_seed(0))
    weights = torch.softmax(module.logits, 0).detach()
    counts = torch.bincount(labels, minlength=3).double() / labels.numel()
    torch.testing.assert_close(counts, weights, atol=0.01, rtol=0)
    matrices = module.to_mixture().covariance.full_matrices(3)
    for k in range(3):
        chosen = samples[labels == k].detach()
        torch.testing.assert_close(chosen.mean(0), module.means[k].detach(), atol=0.05, rtol=0)
        torch.testing.assert_close(torch.cov(chosen.T), matrices[k], atol=0.06, rtol=0.05)


def test_samples_are_reparameterised():
    module = _random_module("full")
    samples, labels = module.sample(500, torch.Generator().manual_seed(0))
    samples.sum().backward()
    counts = torch.bincount(labels, minlength=3).double()
    # d(sum of samples)/d(mean_k) is the number of samples drawn from component k.
    torch.testing.assert_close(module.means.grad, counts[:, None].expand(3, 2))
    assert float(module.raw_cholesky.grad.abs().sum()) > 0


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip_with_estimator_keeps_log_densities(covariance_type):
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(0, 1, (80, 2)), rng.normal(5, 0.5, (80, 2))])
    estimator = GaussianMixture(2, covariance_type=covariance_type, random_state=0).fit(X)
    module = GaussianMixtureModule.from_estimator(estimator)
    expected = estimator.score_samples(X)
    np.testing.assert_allclose(
        module.log_prob(torch.from_numpy(X)).detach().numpy(), expected, rtol=1e-10
    )
    back = module.to_estimator()
    np.testing.assert_allclose(back.score_samples(X), expected, rtol=1e-10)
    np.testing.assert_allclose(back.covariances_, estimator.covariances_, rtol=1e-10)
    assert isinstance(back.means_, np.ndarray)
    # An independent reference: scikit-learn's mixture with the same parameters.
    reference = SklearnGaussianMixture(2, covariance_type=covariance_type)
    reference.weights_, reference.means_ = back.weights_, back.means_
    reference.covariances_, reference.precisions_cholesky_ = (
        back.covariances_,
        back.precisions_cholesky_,
    )
    np.testing.assert_allclose(reference.score_samples(X), expected, rtol=1e-10)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_from_mixture_subtracts_reg_covar(covariance_type):
    module = _random_module(covariance_type, reg_covar=0.01)
    mixture = module.to_mixture()
    again = GaussianMixtureModule.from_mixture(mixture, reg_covar=0.01)
    torch.testing.assert_close(again.covariances().detach(), mixture.covariance.covariances)
    # Logits are defined up to a constant and the raw upper triangle is unused.
    torch.testing.assert_close(again.log_weights(), module.log_weights())
    torch.testing.assert_close(again.means, module.means)
    if covariance_type in ("full", "tied"):
        torch.testing.assert_close(again.cholesky_factor(), module.cholesky_factor())
    else:
        torch.testing.assert_close(again.log_scale, module.log_scale)


def test_from_mixture_keeps_covariance_when_reg_covar_is_too_large():
    mixture = Mixture.from_parameters([0.5, 0.5], [[0.0], [1.0]], [1e-3, 2.0], "spherical")
    module = GaussianMixtureModule.from_mixture(mixture, reg_covar=0.01)
    covariances = module.covariances().detach()
    assert bool(torch.isfinite(covariances).all())
    assert float(covariances[1]) == pytest.approx(2.0, rel=1e-6)
    assert float(covariances[0]) == pytest.approx(1e-3 + 0.01, rel=1e-6)


def test_gaussian_module_and_estimator():
    rng = np.random.default_rng(0)
    X = rng.multivariate_normal([1.0, -2.0], [[2.0, 0.6], [0.6, 1.0]], size=300)
    estimator = Gaussian().fit(X)
    module = GaussianModule.from_estimator(estimator)
    assert isinstance(module, GaussianModule)
    assert [name for name, _ in module.named_parameters()] == ["means", "raw_cholesky"]
    torch.testing.assert_close(module.mean.detach(), torch.from_numpy(X.mean(0)))
    reference = multivariate_normal(X.mean(0), np.cov(X.T, bias=True)).logpdf(X)
    np.testing.assert_allclose(
        module.log_prob(torch.from_numpy(X)).detach().numpy(), reference, rtol=1e-10
    )
    back = module.to_estimator()
    assert isinstance(back, Gaussian)
    np.testing.assert_allclose(back.covariance_, np.cov(X.T, bias=True), rtol=1e-10)
    assert module.sample(7).shape == (7, 2)


def test_gaussian_module_starts_at_standard_normal():
    module = GaussianModule(3, "diag")
    x = torch.randn(10, 3)
    expected = torch.distributions.Normal(0.0, 1.0).log_prob(x).sum(-1)
    torch.testing.assert_close(module.log_prob(x), expected)


def test_module_as_learned_prior_inside_a_larger_model():
    """A linear encoder and a mixture prior trained jointly: gradients reach both."""
    torch.manual_seed(0)
    encoder = torch.nn.Linear(4, 2)
    prior = GaussianMixtureModule(2, 2, "full")
    optimiser = torch.optim.Adam([*encoder.parameters(), *prior.parameters()], lr=0.05)
    data = torch.randn(128, 4)
    first = None
    for _ in range(30):
        optimiser.zero_grad()
        loss = -prior(encoder(data)).mean()
        loss.backward()
        first = float(loss.detach()) if first is None else first
        optimiser.step()
    assert encoder.weight.grad is not None and prior.raw_cholesky.grad is not None
    assert float(loss.detach()) < first


def test_invalid_arguments():
    with pytest.raises(ValueError, match="covariance_type"):
        GaussianMixtureModule(2, 2, "banana")
    with pytest.raises(ValueError, match="n_components"):
        GaussianMixtureModule(0, 2)
    with pytest.raises(ValueError, match="reg_covar"):
        GaussianMixtureModule(2, 2, reg_covar=-1.0)
    module = GaussianMixtureModule(2, 3)
    with pytest.raises(ValueError, match="shape"):
        module.log_prob(torch.zeros(5, 2))
    with pytest.raises(TypeError, match="torch.Tensor"):
        module.log_prob(np.zeros((5, 3)))
    with pytest.raises(ValueError, match="n_samples"):
        module.sample(0)
    two = Mixture.from_parameters([0.5, 0.5], [[0.0], [1.0]], [1.0, 1.0], "spherical")
    with pytest.raises(ValueError, match="one component"):
        GaussianModule.from_mixture(two)
    with pytest.raises(AttributeError, match="Cholesky"):
        GaussianMixtureModule(2, 2, "diag").cholesky_factor()

"""PyTorch interoperability: ``to(device, dtype)`` on fitted estimators, ``from_torch``
from ``torch.distributions`` and the differentiable ``to_torch()`` of ``mixtorch.nn``.

The reference throughout is ``torch.distributions`` itself (its ``log_prob`` and the
gradients autograd takes through it), and the same model's float64 scores on the CPU.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
)

from conftest import make_overlapping_blobs
from mixtorch import BayesianGaussianMixture, Gaussian, GaussianKDE, GaussianMixture
from mixtorch._torch_interop import gaussian_components, mixture_from_torch
from mixtorch.nn import GaussianMixtureModule, GaussianModule

COVARIANCE_TYPES = ["full", "tied", "diag", "spherical"]
cuda = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())"
)


def _data(n: int = 300, d: int = 2, seed: int = 0) -> np.ndarray:
    return make_overlapping_blobs(n, d, 3, seed)


def _fitted(name: str, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        if name == "gmm":
            return GaussianMixture(3, random_state=0).fit(X)
        if name == "gmm-diag":
            return GaussianMixture(3, covariance_type="diag", random_state=0).fit(X)
        if name == "gaussian":
            return Gaussian().fit(X)
        if name == "bgm":
            return BayesianGaussianMixture(n_components=3, random_state=0, max_iter=50).fit(X)
        return GaussianKDE().fit(X)


ESTIMATORS = ["gmm", "gmm-diag", "gaussian", "bgm", "kde"]


# -- to(device, dtype) ---------------------------------------------------------------
@pytest.mark.parametrize("name", ESTIMATORS)
def test_to_float32_returns_self_and_keeps_the_scores(name):
    X = _data()
    model = _fitted(name, X)
    before = model.score_samples(X)
    assert model.to(dtype=torch.float32) is model
    assert model.mixture_.dtype == torch.float32
    after = model.score_samples(X)
    assert isinstance(after, np.ndarray) and after.dtype == np.float32
    np.testing.assert_allclose(after, before, rtol=1e-4, atol=1e-4)
    # and back: float64 again, still the same density
    model.to("cpu", torch.float64)
    assert model.mixture_.dtype == torch.float64
    np.testing.assert_allclose(model.score_samples(X), before, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("name", ESTIMATORS)
def test_to_keeps_tensor_output_for_models_fitted_on_tensors(name):
    X = torch.as_tensor(_data())
    model = _fitted(name, X)
    before = model.score_samples(X)
    model.to(torch.device("cpu"), "float32")
    after = model.score_samples(X)
    assert isinstance(after, torch.Tensor) and after.dtype == torch.float32
    torch.testing.assert_close(after.double(), before, rtol=1e-4, atol=1e-4)
    draws = model.sample(3)
    draws = draws[0] if isinstance(draws, tuple) else draws  # mixtures add the labels
    assert isinstance(draws, torch.Tensor) and draws.dtype == torch.float32


def test_to_casts_the_fitted_attributes_and_keeps_the_fit_record():
    X = _data()
    model = _fitted("gmm", X)
    record = (model.n_iter_, model.converged_, model.lower_bound_, list(model.lower_bounds_))
    model.to(dtype=torch.float32)
    assert model.means_.dtype == np.float32 and model.precisions_cholesky_.dtype == np.float32
    assert (model.n_iter_, model.converged_, model.lower_bound_, model.lower_bounds_) == record
    np.testing.assert_allclose(model.predict_proba(X).sum(1), 1.0, rtol=1e-5)


def test_to_on_a_bayesian_mixture_moves_the_posterior():
    X = _data()
    model = _fitted("bgm", X)
    concentration = np.asarray(model.weight_concentration_[0])
    model.to(dtype=torch.float32)
    assert model.mean_precision_.dtype == np.float32
    np.testing.assert_allclose(model.weight_concentration_[0], concentration, rtol=1e-5)
    np.testing.assert_allclose(model.predict_proba(X).sum(1), 1.0, rtol=1e-5)


def test_to_on_a_gradient_fit_keeps_its_history():
    X = torch.as_tensor(_data())
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(2, algorithm="gradient", max_iter=5, random_state=0).fit(X)
    history = model.history_
    model.to(dtype=torch.float32)
    assert model.history_.nll == history.nll


def test_to_keeps_the_online_em_state():
    X = _data(600)
    model = GaussianMixture(3, random_state=0)
    reference = GaussianMixture(3, random_state=0)
    for batch in np.array_split(X[:400], 2):
        model.partial_fit(batch)
        reference.partial_fit(batch)
    step = model.stepwise_state_.step
    model.to(dtype=torch.float32).partial_fit(X[400:])
    reference.partial_fit(X[400:])
    assert model.stepwise_state_.step == step + 1
    assert model.mixture_.dtype == torch.float32
    np.testing.assert_allclose(model.means_, reference.means_, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("device", ["no-such-device", "cuda:99", "meta"])
def test_to_rejects_devices_that_do_not_exist(device):
    model = _fitted("gmm", _data())
    with pytest.raises(ValueError, match="device"):
        model.to(device)


def test_to_rejects_bad_dtypes_and_unfitted_models():
    model = _fitted("kde", _data())
    with pytest.raises(ValueError, match="dtype"):
        model.to(dtype=torch.int32)
    with pytest.raises(TypeError, match="device"):
        model.to(1.5)
    with pytest.raises(NotFittedError):
        GaussianMixture(2).to("cpu")


@cuda
@pytest.mark.parametrize("name", ESTIMATORS)
def test_to_cuda_computes_there_and_matches_the_cpu(name):
    X = _data()
    model = _fitted(name, X)
    before = model.score_samples(X)
    model.to("cuda")
    assert model.mixture_.device.type == "cuda"
    np.testing.assert_allclose(model.score_samples(X), before, rtol=1e-6, atol=1e-6)
    tensor_model = _fitted(name, torch.as_tensor(X)).to("cuda")
    on_device = tensor_model.score_samples(torch.as_tensor(X, device="cuda"))
    assert on_device.device.type == "cuda"
    np.testing.assert_allclose(on_device.cpu().numpy(), before, rtol=1e-6, atol=1e-6)
    draws = tensor_model.sample(2)
    draws = draws[0] if isinstance(draws, tuple) else draws
    assert draws.device.type == "cuda"
    model.to("cpu")
    np.testing.assert_allclose(model.score_samples(X), before, rtol=1e-6, atol=1e-6)


# -- from_torch --------------------------------------------------------------------
def _random_parameters(K: int = 3, D: int = 2, seed: int = 0):
    generator = torch.Generator().manual_seed(seed)
    weights = torch.softmax(torch.randn(K, generator=generator, dtype=torch.float64), 0)
    means = 2 * torch.randn(K, D, generator=generator, dtype=torch.float64)
    root = torch.randn(K, D, D, generator=generator, dtype=torch.float64)
    covariances = root @ root.mT + 0.5 * torch.eye(D, dtype=torch.float64)
    scales = torch.rand(K, D, generator=generator, dtype=torch.float64) + 0.3
    return weights, means, covariances, scales


def _queries(D: int = 2) -> torch.Tensor:
    return 3 * torch.randn(50, D, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


def test_gaussian_mixture_from_torch_full():
    weights, means, covariances, _ = _random_parameters()
    distribution = MixtureSameFamily(Categorical(weights), MultivariateNormal(means, covariances))
    model = GaussianMixture.from_torch(distribution)
    assert (model.n_components, model.covariance_type) == (3, "full")
    X = _queries()
    torch.testing.assert_close(model.score_samples(X), distribution.log_prob(X))
    torch.testing.assert_close(model.covariances_, covariances)
    torch.testing.assert_close(model.weights_, weights)
    assert isinstance(model.sample(4)[0], torch.Tensor)
    np.testing.assert_allclose(model.score_samples(X.numpy()), distribution.log_prob(X).numpy())


def test_gaussian_mixture_from_torch_diag():
    weights, means, _, scales = _random_parameters()
    components = Independent(Normal(means, scales), 1)
    distribution = MixtureSameFamily(Categorical(logits=weights.log()), components)
    model = GaussianMixture.from_torch(distribution, random_state=3)
    assert model.covariance_type == "diag" and model.random_state == 3
    torch.testing.assert_close(model.covariances_, scales**2)
    X = _queries()
    torch.testing.assert_close(model.score_samples(X), distribution.log_prob(X))
    torch.testing.assert_close(
        mixture_from_torch(distribution).log_prob(X), distribution.log_prob(X)
    )


def test_gaussian_from_torch():
    _, means, covariances, scales = _random_parameters(K=1, D=3)
    X = _queries(3)
    for distribution, kind in [
        (MultivariateNormal(means[0], scale_tril=torch.linalg.cholesky(covariances[0])), "full"),
        (Independent(Normal(means[0], scales[0]), 1), "diag"),
    ]:
        model = Gaussian.from_torch(distribution)
        assert model.covariance_type == kind
        torch.testing.assert_close(model.score_samples(X), distribution.log_prob(X))
        torch.testing.assert_close(model.mean_, means[0])


def test_from_torch_detaches_and_keeps_the_dtype():
    means = torch.zeros(2, 2, requires_grad=True)
    distribution = MixtureSameFamily(
        Categorical(logits=torch.zeros(2)), MultivariateNormal(means, torch.eye(2).expand(2, 2, 2))
    )
    mixture = mixture_from_torch(distribution)
    assert mixture.dtype == torch.float32 and not mixture.means.requires_grad
    assert GaussianMixture.from_torch(distribution).mixture_.dtype == torch.float32


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_round_trip_through_torch_reproduces_the_densities(covariance_type):
    X = _data()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(X)
    again = GaussianMixture.from_torch(model.mixture_.to_torch())
    np.testing.assert_allclose(again.score_samples(X), model.score_samples(X), rtol=1e-10)
    gaussian = Gaussian(covariance_type=covariance_type).fit(X)
    single = gaussian.mixture_.to_torch().component_distribution
    if covariance_type in ("full", "tied"):
        single = MultivariateNormal(single.loc[0], scale_tril=single.scale_tril[0])
    else:
        single = Independent(Normal(single.base_dist.loc[0], single.base_dist.scale[0]), 1)
    again_single = Gaussian.from_torch(single)
    np.testing.assert_allclose(again_single.score_samples(X), gaussian.score_samples(X), rtol=1e-10)


def test_from_torch_rejects_unsupported_distributions():
    weights, means, covariances, scales = _random_parameters()
    unsupported = [
        Normal(0.0, 1.0),
        Categorical(weights),
        Independent(Normal(means, scales), 2),
        MixtureSameFamily(Categorical(weights), Normal(means[:, 0], scales[:, 0])),
    ]
    for distribution in unsupported:
        with pytest.raises(TypeError, match="supported: MixtureSameFamily"):
            GaussianMixture.from_torch(distribution)
    mixture = MixtureSameFamily(Categorical(weights), MultivariateNormal(means, covariances))
    with pytest.raises(TypeError, match="single Gaussian"):
        Gaussian.from_torch(mixture)
    with pytest.raises(ValueError, match="batch shape"):
        Gaussian.from_torch(MultivariateNormal(means, covariances))
    batched = MixtureSameFamily(
        Categorical(weights.expand(4, 3)),
        MultivariateNormal(means.expand(4, 3, 2), covariances.expand(4, 3, 2, 2)),
    )
    with pytest.raises(TypeError, match="empty batch shape"):
        GaussianMixture.from_torch(batched)
    with pytest.raises(TypeError, match="float32 or float64"):
        mixture_from_torch(Independent(Normal(means[0].half(), scales[0].half()), 1))


# -- differentiable to_torch() of the nn modules ------------------------------------------
def _perturbed(module):
    generator = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for parameter in module.parameters():
            parameter.add_(
                0.4 * torch.randn(parameter.shape, generator=generator, dtype=torch.float64)
            )
    return module


def _gradients(module, loss):
    module.zero_grad()
    loss.backward()
    return {name: parameter.grad.clone() for name, parameter in module.named_parameters()}


@pytest.mark.parametrize("reg_covar", [0.0, 0.05])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_mixture_module_to_torch_matches_log_prob_and_gradients(covariance_type, reg_covar):
    module = _perturbed(
        GaussianMixtureModule(3, 2, covariance_type, reg_covar=reg_covar, dtype=torch.float64)
    )
    X = _queries()
    distribution = module.to_torch()
    assert isinstance(distribution, MixtureSameFamily)
    torch.testing.assert_close(distribution.log_prob(X), module.log_prob(X))
    through_torch = _gradients(module, -distribution.log_prob(X).mean())
    direct = _gradients(module, -module.log_prob(X).mean())
    assert set(through_torch) == {"logits", "means", *direct.keys()}
    for name, gradient in direct.items():
        assert gradient.abs().sum() > 0
        torch.testing.assert_close(through_torch[name], gradient)


@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_gaussian_module_to_torch(covariance_type):
    module = _perturbed(GaussianModule(3, covariance_type, reg_covar=0.01, dtype=torch.float64))
    X = _queries(3)
    distribution = module.to_torch()
    expected = MultivariateNormal if covariance_type in ("full", "tied") else Independent
    assert isinstance(distribution, expected) and distribution.batch_shape == torch.Size()
    torch.testing.assert_close(distribution.log_prob(X), module.log_prob(X))
    through_torch = _gradients(module, -distribution.log_prob(X).mean())
    direct = _gradients(module, -module.log_prob(X).mean())
    for name, gradient in direct.items():
        torch.testing.assert_close(through_torch[name], gradient)
    # reparameterised draws carry gradients back to the mean as well
    module.zero_grad()
    module.to_torch().rsample((5,)).sum().backward()
    torch.testing.assert_close(module.means.grad, torch.full((1, 3), 5.0, dtype=torch.float64))


def test_gaussian_components_needs_exactly_one_scale():
    with pytest.raises(ValueError, match="exactly one"):
        gaussian_components(torch.zeros(2))

"""``Mixture.from_torch`` and ``Mixture.to_torch`` against ``torch.distributions``."""

from __future__ import annotations

import pytest
import torch
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    MultivariateNormal,
    Normal,
    StudentT,
)

from mixtorch import Mixture

F64 = torch.float64


def _points(n_features, seed=0):
    generator = torch.Generator().manual_seed(seed)
    return 3.0 * torch.randn(50, n_features, dtype=F64, generator=generator)


def _full_mixture():
    generator = torch.Generator().manual_seed(1)
    factors = torch.randn(3, 4, 4, dtype=F64, generator=generator)
    covariances = factors @ factors.mT + 0.5 * torch.eye(4, dtype=F64)
    means = torch.randn(3, 4, dtype=F64, generator=generator)
    mixing = Categorical(probs=torch.tensor([0.2, 0.5, 0.3], dtype=F64))
    return MixtureSameFamily(mixing, MultivariateNormal(means, covariance_matrix=covariances))


def test_from_torch_full_mixture_matches_torch_log_prob():
    distribution = _full_mixture()
    mixture = Mixture.from_torch(distribution)
    assert (mixture.n_components, mixture.n_features, mixture.covariance_type) == (3, 4, "full")
    assert mixture.dtype == F64
    X = _points(4)
    torch.testing.assert_close(
        mixture.log_prob(X), distribution.log_prob(X), rtol=1e-10, atol=1e-10
    )
    torch.testing.assert_close(mixture.weights, torch.tensor([0.2, 0.5, 0.3], dtype=F64))


def test_from_torch_diag_mixture_matches_torch_log_prob_in_float32():
    means = torch.tensor([[0.0, 1.0, -1.0], [4.0, 0.0, 2.0]])
    scales = torch.tensor([[1.0, 0.5, 2.0], [0.3, 1.5, 1.0]])
    mixing = Categorical(logits=torch.tensor([0.0, 1.0]))
    distribution = MixtureSameFamily(mixing, Independent(Normal(means, scales), 1))
    mixture = Mixture.from_torch(distribution)
    assert mixture.covariance_type == "diag" and mixture.dtype == torch.float32
    torch.testing.assert_close(mixture.covariance.covariances, scales**2)
    X = _points(3).float()
    torch.testing.assert_close(mixture.log_prob(X), distribution.log_prob(X), rtol=1e-5, atol=1e-4)


def test_from_torch_single_multivariate_normal_is_one_component():
    covariance = torch.tensor([[2.0, 0.6], [0.6, 1.0]], dtype=F64)
    distribution = MultivariateNormal(torch.tensor([1.0, -2.0], dtype=F64), covariance)
    mixture = Mixture.from_torch(distribution)
    assert mixture.n_components == 1
    torch.testing.assert_close(mixture.weights, torch.ones(1, dtype=F64))
    X = _points(2)
    torch.testing.assert_close(
        mixture.log_prob(X), distribution.log_prob(X), rtol=1e-10, atol=1e-10
    )


def test_from_torch_is_detached_and_round_trips_through_to_torch():
    means = torch.zeros(2, 2, dtype=F64, requires_grad=True)
    components = MultivariateNormal(means + torch.tensor([[0.0], [3.0]], dtype=F64),
                                    scale_tril=torch.eye(2, dtype=F64).expand(2, 2, 2))  # fmt: skip
    distribution = MixtureSameFamily(
        Categorical(probs=torch.tensor([0.5, 0.5], dtype=F64)), components
    )
    mixture = Mixture.from_torch(distribution)
    assert not mixture.means.requires_grad
    X = _points(2)
    torch.testing.assert_close(mixture.to_torch().log_prob(X), distribution.log_prob(X).detach())


def test_from_torch_keeps_the_subclass():
    class Tagged(Mixture):
        pass

    assert type(Tagged.from_torch(MultivariateNormal(torch.zeros(2), torch.eye(2)))) is Tagged


@pytest.mark.parametrize(
    "distribution, match",
    [
        (Normal(torch.zeros(2), torch.ones(2)), "Unsupported distribution Normal"),
        (StudentT(3.0, torch.zeros(2), torch.ones(2)), "Unsupported distribution StudentT"),
        ("not a distribution", "Unsupported distribution str"),
        (
            MixtureSameFamily(
                Categorical(probs=torch.ones(2, 3) / 3),
                MultivariateNormal(torch.zeros(2, 3, 1), torch.eye(1).expand(2, 3, 1, 1)),
            ),
            "mixing distribution must be a Categorical",
        ),  # fmt: skip
    ],
)
def test_from_torch_rejects_unsupported_distributions_with_type_error(distribution, match):
    with pytest.raises(TypeError, match=match):
        Mixture.from_torch(distribution)


def test_from_torch_rejects_batched_gaussians_and_bad_parameters_with_value_error():
    batched = MultivariateNormal(torch.zeros(3, 2), torch.eye(2))  # batch shape (3,), no mixing
    with pytest.raises(ValueError, match="batch shape"):
        Mixture.from_torch(batched)
    nan_means = MultivariateNormal(
        torch.tensor([float("nan"), 0.0]), torch.eye(2), validate_args=False
    )
    with pytest.raises(ValueError, match="means"):
        Mixture.from_torch(nan_means)

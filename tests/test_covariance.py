"""The covariance types (mixtorch.covariance): every kind's operations against NumPy,
SciPy, scikit-learn and torch.distributions. The variational (Normal-Wishart) update of
each kind is in test_wishart.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy.stats import multivariate_normal
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.mixture import _gaussian_mixture as sk_gaussian
from torch.distributions import Independent, MultivariateNormal, Normal

from conftest import make_blobs_mixture
from mixtorch._chunks import DEFAULT_ELEMENT_BUDGET, chunk_rows
from mixtorch._torch_interop import mixture_from_torch
from mixtorch.covariance import (
    COVARIANCE_TYPES,
    CovarianceError,
    FullCovariance,
    covariance_class,
)
from mixtorch.estep import DiagKernel, QuadraticFullKernel
from mixtorch.mixture import Mixture
from mixtorch.nn import GaussianMixtureModule

KINDS = ["full", "tied", "diag", "spherical"]
K, D = 3, 4


def random_covariances(kind: str, k: int = K, d: int = D, seed: int = 0) -> np.ndarray:
    """Random, well-conditioned covariances in scikit-learn's layout for ``kind``."""
    rng = np.random.default_rng(seed)
    if kind in ("full", "tied"):
        A = rng.normal(size=(k, d, d)) * 0.5
        matrices = A @ A.transpose(0, 2, 1) + np.eye(d)
        return matrices[0] if kind == "tied" else matrices
    if kind == "diag":
        return rng.uniform(0.3, 2.5, size=(k, d))
    return rng.uniform(0.3, 2.5, size=k)


def dense(kind: str, covariances: np.ndarray, k: int = K, d: int = D) -> np.ndarray:
    """(k, d, d) matrices from a layout, written out independently of mixtorch."""
    if kind == "full":
        return covariances
    if kind == "tied":
        return np.broadcast_to(covariances, (k, d, d)).copy()
    if kind == "diag":
        return np.stack([np.diag(row) for row in covariances])
    return covariances[:, None, None] * np.eye(d)


def build(kind: str, covariances: np.ndarray, d: int = D):
    return covariance_class(kind)(torch.as_tensor(covariances), n_features=d)


# -- layout, shapes and the identity start -----------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_layout_is_scikit_learns(kind):
    X = make_blobs_mixture(120, D, K, seed=1).X
    reference = SkGaussianMixture(K, covariance_type=kind, max_iter=5, random_state=0).fit(X)
    cls = covariance_class(kind)
    assert cls.layout(K, D) == reference.covariances_.shape
    assert cls.layout(K, D) == reference.precisions_cholesky_.shape
    ours = cls(torch.as_tensor(reference.covariances_), n_features=D)
    assert tuple(ours.precisions().shape) == reference.precisions_.shape
    assert tuple(ours.full_matrices(K).shape) == (K, D, D)
    assert cls.n_parameters(K, D) + K * D + K - 1 == reference._n_parameters()
    with pytest.raises(ValueError, match=rf"'{kind}' precisions must have shape"):
        cls.check_layout(torch.ones(7, 7, 7, 7), K, D, "precisions")
    with pytest.raises(ValueError, match="finite"):
        cls.check_layout(torch.full(cls.layout(K, D), math.nan), K, D, "covariances")


@pytest.mark.parametrize("kind", KINDS)
def test_identity_start_is_the_unit_covariance(kind):
    cls = covariance_class(kind)
    values = cls.identity_values(K, D, torch.float64, "cpu")
    assert tuple(values.shape) == cls.layout(K, D)
    covariance = cls(values, n_features=D)
    np.testing.assert_array_equal(
        covariance.full_matrices(K).numpy(), np.broadcast_to(np.eye(D), (K, D, D))
    )
    np.testing.assert_array_equal(np.broadcast_to(covariance.log_det().numpy(), (K,)), np.zeros(K))
    values[..., 0] = 5.0  # a fresh tensor, not a view of a shared identity
    assert float(cls.identity_values(K, D, torch.float64, "cpu").max()) == 1.0


# -- factors, precisions and log-determinants against NumPy ------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_precisions_and_factors_match_numpy(kind):
    covariances = random_covariances(kind)
    covariance = build(kind, covariances)
    expected_precisions = {
        "full": lambda: np.linalg.inv(covariances),
        "tied": lambda: np.linalg.inv(covariances),
        "diag": lambda: 1.0 / covariances,
        "spherical": lambda: 1.0 / covariances,
    }[kind]()
    np.testing.assert_allclose(covariance.precisions().numpy(), expected_precisions, rtol=1e-11)
    expected = sk_gaussian._compute_precision_cholesky(covariances, kind)
    np.testing.assert_allclose(covariance.precisions_cholesky().numpy(), expected, rtol=1e-12)
    if kind in ("full", "tied"):
        np.testing.assert_allclose(
            covariance.cholesky.numpy(), np.linalg.cholesky(covariances), rtol=1e-12
        )
        factor = covariance.precisions_cholesky().numpy()
        product = factor @ np.swapaxes(factor, -1, -2)
        np.testing.assert_allclose(product, expected_precisions, rtol=1e-10, atol=1e-12)
    else:
        np.testing.assert_allclose(covariance.cholesky.numpy(), np.sqrt(covariances), rtol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_log_det_matches_slogdet(kind):
    covariances = random_covariances(kind, seed=3)
    sign, expected = np.linalg.slogdet(dense(kind, covariances))
    assert (sign > 0).all()
    got = np.broadcast_to(build(kind, covariances).log_det().numpy(), (K,))
    np.testing.assert_allclose(got, expected, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_log_gaussian_matches_scipy(kind):
    rng = np.random.default_rng(4)
    covariances = random_covariances(kind, seed=4)
    means = rng.normal(size=(K, D))
    log_weights = np.log(rng.dirichlet(np.ones(K)))
    Y = rng.normal(size=(50, D)) * 2
    got = build(kind, covariances).log_gaussian(
        torch.as_tensor(Y), torch.as_tensor(means), torch.as_tensor(log_weights)
    )
    matrices = dense(kind, covariances)
    expected = np.stack(
        [multivariate_normal(means[k], matrices[k]).logpdf(Y) + log_weights[k] for k in range(K)], 1
    )
    np.testing.assert_allclose(got.numpy(), expected, rtol=1e-11)


@pytest.mark.parametrize("kind", KINDS)
def test_from_precisions_and_full_matrices_round_trip(kind):
    covariances = random_covariances(kind, seed=5)
    cls = covariance_class(kind)
    covariance = build(kind, covariances)
    again = cls.from_precisions(covariance.precisions(), D)
    np.testing.assert_allclose(again.covariances.numpy(), covariances, rtol=1e-11)
    from_dense = cls.from_full_matrices(torch.as_tensor(dense(kind, covariances)))
    np.testing.assert_allclose(from_dense.covariances.numpy(), covariances, rtol=1e-15)
    np.testing.assert_allclose(covariance.full_matrices(K).numpy(), dense(kind, covariances))


@pytest.mark.parametrize("kind", ["full", "tied"])
def test_not_positive_definite_is_a_covariance_error_naming_the_component(kind):
    covariances = random_covariances(kind, seed=6)
    if kind == "full":
        covariances[2] = -np.eye(D)
    else:
        covariances[0, 0] = -1.0
    with pytest.raises(CovarianceError, match="component 2" if kind == "full" else "tied"):
        build(kind, covariances)


@pytest.mark.parametrize("kind", ["diag", "spherical"])
def test_non_positive_variance_is_a_covariance_error(kind):
    covariances = random_covariances(kind, seed=6)
    covariances[1] = 0.0
    with pytest.raises(CovarianceError, match="Component 1"):
        build(kind, covariances)


def test_unknown_kind_names_the_allowed_ones():
    with pytest.raises(ValueError, match=r"covariance_type must be one of \['diag', 'full'"):
        covariance_class("banana")
    assert sorted(COVARIANCE_TYPES) == sorted(KINDS)


# -- the M-step pieces against scikit-learn -----------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_moments_and_from_scatter_match_scikit_learn(kind):
    rng = np.random.default_rng(7)
    X = make_blobs_mixture(300, D, K, seed=7).X
    responsibilities = rng.dirichlet(np.ones(K), size=len(X))
    counts = responsibilities.sum(0)
    means = responsibilities.T @ X / counts[:, None]
    reg = 1e-3
    cls = covariance_class(kind)
    reference = means if cls.centred_per_component else np.zeros((K, D))
    first, second = cls.moments(
        torch.as_tensor(X), torch.as_tensor(responsibilities), torch.as_tensor(reference)
    )
    differences = X[None] - reference[:, None]  # (K, n, D)
    weighted = differences * responsibilities.T[:, :, None]
    np.testing.assert_allclose(first.numpy(), weighted.sum(1), rtol=1e-12, atol=1e-10)
    dense_second = np.einsum("knd,kne->kde", weighted, differences)
    expected_second = (
        dense_second if kind in ("full", "tied") else np.diagonal(dense_second, 0, 1, 2)
    )
    np.testing.assert_allclose(second.numpy(), expected_second, rtol=1e-12)
    # the scatter about the means, in this kind's layout, then the M-step estimate
    about_means = X[None] - means[:, None]
    weighted_about = about_means * responsibilities.T[:, :, None]
    scatter = np.einsum("knd,kne->kde", weighted_about, about_means)
    layout_scatter = cls.scatter_from_dense(torch.as_tensor(scatter))
    estimate = cls.from_scatter(layout_scatter, torch.as_tensor(counts), reg)
    sk_estimate = getattr(sk_gaussian, f"_estimate_gaussian_covariances_{kind}")(
        responsibilities, X, counts, means, reg
    )
    np.testing.assert_allclose(estimate.covariances.numpy(), sk_estimate, rtol=1e-10)


@pytest.mark.parametrize("kind", KINDS)
def test_reg_covar_is_added_to_every_variance_once(kind):
    cls = covariance_class(kind)
    values = torch.as_tensor(random_covariances(kind, seed=8))
    added = cls.add_reg_covar(values, 0.25)
    difference = dense(kind, (added - values).numpy())
    np.testing.assert_allclose(difference, 0.25 * np.broadcast_to(np.eye(D), (K, D, D)), atol=1e-15)


# -- torch.distributions -------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_to_and_from_torch_distributions(kind):
    rng = np.random.default_rng(9)
    covariances = random_covariances(kind, seed=9)
    weights, means = rng.dirichlet(np.ones(K)), rng.normal(size=(K, D))
    mixture = Mixture.from_parameters(weights, means, covariances, kind)
    distribution = mixture.to_torch()
    Y = torch.as_tensor(rng.normal(size=(40, D)))
    matrices = dense(kind, covariances)
    expected = np.log(
        sum(
            weights[k] * multivariate_normal(means[k], matrices[k]).pdf(Y.numpy()) for k in range(K)
        )
    )
    np.testing.assert_allclose(distribution.log_prob(Y).numpy(), expected, rtol=1e-11)
    back = mixture_from_torch(distribution)
    assert back.covariance_type == ("full" if kind in ("full", "tied") else "diag")
    np.testing.assert_allclose(back.covariance.full_matrices(K).numpy(), matrices, rtol=1e-12)
    np.testing.assert_allclose(back.log_prob(Y).numpy(), expected, rtol=1e-11)


def test_single_gaussians_from_torch_keep_their_structure():
    covariance = random_covariances("full", seed=10)[0]
    mean = np.arange(D, dtype=np.float64)
    full = mixture_from_torch(
        MultivariateNormal(torch.as_tensor(mean), torch.as_tensor(covariance))
    )
    assert isinstance(full.covariance, FullCovariance)
    np.testing.assert_allclose(full.covariance.covariances[0].numpy(), covariance, rtol=1e-12)
    scales = np.array([0.5, 1.0, 2.0, 3.0])
    independent = Independent(Normal(torch.as_tensor(mean), torch.as_tensor(scales)), 1)
    diag = mixture_from_torch(independent)
    assert diag.covariance_type == "diag"
    np.testing.assert_allclose(diag.covariance.covariances[0].numpy(), scales**2, rtol=1e-15)


# -- the unconstrained parametrisation (what mixtorch.nn differentiates) -------------------
@pytest.mark.parametrize("reg_covar", [0.0, 1e-2])
@pytest.mark.parametrize("kind", KINDS)
def test_unconstrained_parametrisation_round_trip(kind, reg_covar):
    rng = np.random.default_rng(11)
    covariances = random_covariances(kind, seed=11) + (0 if kind in ("full", "tied") else 0.1)
    mixture = Mixture.from_parameters(
        rng.dirichlet(np.ones(K)), rng.normal(size=(K, D)), covariances, kind
    )
    module = GaussianMixtureModule.from_mixture(mixture, reg_covar=reg_covar)
    if kind in ("full", "tied"):
        # raw parameters: the strict lower triangle and the log of the diagonal of the
        # Cholesky factor of the covariance less reg_covar
        lower = np.linalg.cholesky(covariances - reg_covar * np.eye(D))
        raw = module.raw_cholesky.detach().numpy()
        np.testing.assert_allclose(np.tril(raw, -1), np.tril(lower, -1), rtol=1e-11, atol=1e-14)
        diagonal = np.diagonal(raw, 0, -2, -1)
        np.testing.assert_allclose(diagonal, np.log(np.diagonal(lower, 0, -2, -1)), rtol=1e-11)
    else:
        expected = 0.5 * np.log(covariances - reg_covar)
        np.testing.assert_allclose(module.log_scale.detach().numpy(), expected, rtol=1e-11)
    again = module.to_mixture()
    assert again.covariance_type == kind
    np.testing.assert_allclose(again.covariance.covariances.numpy(), covariances, rtol=1e-11)
    np.testing.assert_allclose(again.weights.numpy(), mixture.weights.numpy(), rtol=1e-12)


# -- chunk cost ---------------------------------------------------------------------------
@pytest.mark.parametrize("kind", KINDS)
def test_chunk_cost_tracks_the_e_step_buffers(kind):
    """Rows per chunk come from the kind's per-row cost, and that cost is proportional
    (within 10%) to the buffers the E-step kernel really holds per row, at every size."""
    cls = covariance_class(kind)
    ratios = []
    for k, d in [(4, 4), (16, 16), (8, 32)]:
        cost = cls.row_cost(k, d)
        assert chunk_rows(k, d, None, cls) == max(256, int(DEFAULT_ELEMENT_BUDGET / cost))
        assert chunk_rows(k, d, 1000, cls) == 1000
        rng = np.random.default_rng(k + d)
        covariance = cls(cls.identity_values(k, d, torch.float64, "cpu"), n_features=d)
        means = torch.as_tensor(rng.normal(0, 0.1, size=(k, d)))
        zeros = torch.zeros(k, dtype=torch.float64)
        kernel = covariance.e_step_kernel(torch.zeros(d, dtype=torch.float64), means, zeros)
        assert isinstance(kernel, QuadraticFullKernel if cls.is_triangular() else DiagKernel)
        rows = 300
        kernel(torch.as_tensor(rng.normal(size=(rows, d))))
        held = sum(buffer.numel() for buffer in kernel._scratch.buffers.values())
        ratios.append(held / rows / cost)
    assert max(ratios) <= 1.1 * min(ratios), ratios
    # triangular kinds cost O(D^2) per row, diagonal kinds O(D)
    growth = cls.row_cost(4, 64) / cls.row_cost(4, 16)
    assert growth > 10 if cls.is_triangular() else growth < 4.5

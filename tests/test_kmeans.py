"""k-means++ seeding, Lloyd iterations and the hard-label M-step, against scikit-learn
and float64 brute force."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans, kmeans_plusplus

from conftest import make_blobs_mixture
from mixtorch.covariance import covariance_class
from mixtorch.fit.init import initial_mixture, mixture_from_labels
from mixtorch.fit.kmeans import kmeans, kmeans_chunk_rows, lloyd, nearest_centers
from mixtorch.fit.kmeans import kmeans_plusplus as torch_kmeans_plusplus


def blobs(n: int = 3000, d: int = 4, k: int = 6, seed: int = 0) -> np.ndarray:
    return make_blobs_mixture(n, d, k, "spherical", seed=seed, scale_range=(0.5, 1.5)).X


def potential(X: np.ndarray, centers: np.ndarray) -> float:
    """k-means cost of ``centers``, brute force in float64."""
    distances = ((X[:, None, :] - centers[None, :, :]) ** 2).sum(-1)
    return float(distances.min(1).sum())


def sklearn_lloyd(X: np.ndarray, init: np.ndarray, tol: float) -> KMeans:
    return KMeans(len(init), init=init, n_init=1, algorithm="lloyd", tol=tol).fit(X)


@pytest.mark.parametrize("tol", [0.0, 1e-4])
@pytest.mark.parametrize("rows", [None, 97])
def test_lloyd_matches_sklearn_in_float64(tol: float, rows: int | None) -> None:
    X = blobs()
    init = X[[0, 1, 2, 3, 4, 5]]
    reference = sklearn_lloyd(X, init, tol)
    ours = lloyd(torch.from_numpy(X), torch.from_numpy(init), rows, tol=tol)
    np.testing.assert_allclose(ours.centers.numpy(), reference.cluster_centers_, atol=1e-10)
    # the centres are the means of the final clusters
    labels = ours.labels.numpy()
    for k in range(len(init)):
        np.testing.assert_allclose(ours.centers[k].numpy(), X[labels == k].mean(0), atol=1e-10)
    # ours: last assignment about the final centres; scikit-learn assigns once more
    assert reference.inertia_ <= ours.inertia * (1 + 1e-12)
    assert ours.inertia == pytest.approx(reference.inertia_, rel=1e-3 if tol else 1e-10)
    if tol == 0.0:
        np.testing.assert_array_equal(labels, reference.labels_)
        assert ours.inertia == pytest.approx(potential(X, reference.cluster_centers_), rel=1e-10)


def test_lloyd_relocates_an_empty_cluster_like_sklearn() -> None:
    X = blobs(n=500, d=3, k=3, seed=1)
    far_away = np.full((1, 3), 1e3)
    init = np.concatenate([X[[0, 1, 2]], far_away])  # the last centre attracts no row
    reference = sklearn_lloyd(X, init, 0.0)
    ours = lloyd(torch.from_numpy(X), torch.from_numpy(init), tol=0.0)
    assert torch.isfinite(ours.centers).all()
    assert torch.bincount(ours.labels, minlength=4).min() >= 1
    np.testing.assert_allclose(ours.centers.numpy(), reference.cluster_centers_, atol=1e-10)
    assert ours.inertia == pytest.approx(reference.inertia_, rel=1e-10)


def test_kmeans_plusplus_potential_is_comparable_to_sklearn() -> None:
    X = blobs(n=2000, d=5, k=10, seed=2)
    tensor = torch.from_numpy(X)
    ours, theirs, uniform = [], [], []
    rng = np.random.default_rng(0)
    for seed in range(30):
        centers, indices = torch_kmeans_plusplus(tensor, 10, torch.Generator().manual_seed(seed))
        np.testing.assert_array_equal(centers.numpy(), X[indices.numpy()])
        assert len(set(indices.tolist())) == 10
        ours.append(potential(X, centers.numpy()))
        theirs.append(potential(X, kmeans_plusplus(X, 10, random_state=seed)[0]))
        uniform.append(potential(X, X[rng.choice(len(X), 10, replace=False)]))
    # same algorithm, different random streams: equal means up to sampling noise, and
    # both far better than centres drawn uniformly
    assert np.mean(ours) == pytest.approx(np.mean(theirs), rel=0.15)
    assert np.mean(ours) < 0.6 * np.mean(uniform)


def test_kmeans_plusplus_is_deterministic_and_chunk_independent() -> None:
    tensor = torch.from_numpy(blobs(seed=3))
    first, first_rows = torch_kmeans_plusplus(tensor, 6, torch.Generator().manual_seed(7))
    again, again_rows = torch_kmeans_plusplus(tensor, 6, torch.Generator().manual_seed(7), 50)
    np.testing.assert_array_equal(first_rows.numpy(), again_rows.numpy())
    np.testing.assert_array_equal(first.numpy(), again.numpy())


def test_kmeans_chunked_equals_unchunked() -> None:
    tensor = torch.from_numpy(blobs(n=2500, seed=4))
    whole = kmeans(tensor, 6, torch.Generator().manual_seed(1), rows=len(tensor))
    chunked = kmeans(tensor, 6, torch.Generator().manual_seed(1), rows=61)
    np.testing.assert_allclose(chunked.centers.numpy(), whole.centers.numpy(), atol=1e-12)
    np.testing.assert_array_equal(chunked.labels.numpy(), whole.labels.numpy())
    assert chunked.n_iter == whole.n_iter
    assert chunked.inertia == pytest.approx(whole.inertia, rel=1e-12)


def test_kmeans_inertia_matches_sklearn_on_average() -> None:
    X = blobs(n=4000, d=6, k=8, seed=5)
    tensor = torch.from_numpy(X)
    ours = [kmeans(tensor, 8, torch.Generator().manual_seed(s)).inertia for s in range(10)]
    theirs = [KMeans(8, n_init=1, random_state=s).fit(X).inertia_ for s in range(10)]
    assert np.mean(ours) == pytest.approx(np.mean(theirs), rel=0.05)


def test_float32_kmeans_is_accurate_far_from_the_origin() -> None:
    X64 = 1000.0 + 0.01 * blobs(n=3000, seed=6)
    X32 = torch.from_numpy(X64.astype(np.float32))
    init = X64[[0, 1, 2, 3, 4, 5]]
    reference = sklearn_lloyd(X64, init, 0.0)
    ours = lloyd(X32, torch.from_numpy(init).float(), tol=0.0)
    # within-cluster spread is about 0.01; float32 resolution at 1000 is 6e-5
    np.testing.assert_allclose(ours.centers.double().numpy(), reference.cluster_centers_, atol=2e-4)
    assert (ours.labels.numpy() == reference.labels_).mean() > 0.999
    assert ours.inertia == pytest.approx(reference.inertia_, rel=1e-2)
    seeded = kmeans(X32, 6, torch.Generator().manual_seed(0))
    brute = potential(X64, seeded.centers.double().numpy())
    assert seeded.inertia == pytest.approx(brute, rel=1e-2)


def test_nearest_centers_is_brute_force() -> None:
    X = blobs(n=1000, seed=7)
    centers = X[[3, 30, 300, 600]]
    expected = ((X[:, None, :] - centers[None]) ** 2).sum(-1).argmin(1)
    labels = nearest_centers(torch.from_numpy(X), torch.from_numpy(centers), rows=33)
    np.testing.assert_array_equal(labels.numpy(), expected)


def brute_force_m_step(
    X: np.ndarray, labels: np.ndarray, k: int, kind: str, reg: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n, d = X.shape
    weights = np.bincount(labels, minlength=k) / n
    means = np.stack([X[labels == j].mean(0) for j in range(k)])
    scatter = np.stack(
        [(X[labels == j] - means[j]).T @ (X[labels == j] - means[j]) for j in range(k)]
    )
    counts = np.bincount(labels, minlength=k)
    full = scatter / counts[:, None, None] + reg * np.eye(d)
    covariances = {
        "full": full,
        "tied": scatter.sum(0) / n + reg * np.eye(d),
        "diag": np.diagonal(full, axis1=1, axis2=2),
        "spherical": np.diagonal(full, axis1=1, axis2=2).mean(1),
    }[kind]
    return weights, means, covariances


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_hard_label_m_step_is_brute_force(kind: str, dtype: torch.dtype) -> None:
    X = 500.0 + blobs(n=1200, d=3, k=4, seed=8)  # offset: float32 must not cancel
    labels = np.random.default_rng(0).integers(0, 4, len(X))
    # a reference away from the true means: the M-step must not rely on it being exact
    reference = np.stack([X[labels == j].mean(0) for j in range(4)]) + 0.3
    reg = 1e-6
    mixture = mixture_from_labels(
        torch.from_numpy(X).to(dtype),
        torch.from_numpy(labels),
        torch.from_numpy(reference).to(dtype),
        covariance_class(kind),
        reg,
        rows=101,
    )
    weights, means, covariances = brute_force_m_step(X, labels, 4, kind, reg)
    rtol = 1e-10 if dtype == torch.float64 else 1e-4
    np.testing.assert_allclose(mixture.weights.double().numpy(), weights, rtol=rtol)
    np.testing.assert_allclose(mixture.means.double().numpy(), means, rtol=rtol)
    scale = np.abs(covariances).max()
    np.testing.assert_allclose(
        mixture.covariance.covariances.double().numpy(), covariances, atol=rtol * scale
    )


def test_initial_mixture_from_kmeans_uses_its_clusters() -> None:
    X = torch.from_numpy(blobs(n=2000, seed=9))
    result = kmeans(X, 6, torch.Generator().manual_seed(3))
    mixture = initial_mixture(
        X, 6, covariance_class("full"), "kmeans", 1e-6, torch.Generator().manual_seed(3), 500
    )
    # the centres are the means of the k-means clusters, so the M-step returns them
    np.testing.assert_allclose(mixture.means.numpy(), result.centers.numpy(), atol=1e-10)
    counts = torch.bincount(result.labels, minlength=6).double() / len(X)
    np.testing.assert_allclose(mixture.weights.numpy(), counts.numpy(), rtol=1e-10)


def test_kmeans_chunk_rows_fits_the_budget() -> None:
    rows = kmeans_chunk_rows(16, 16)
    assert rows * (16 + 16) <= 2**18 < (rows + 1) * (16 + 16)
    assert kmeans_chunk_rows(10_000, 10_000) == 256


@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_seed_row_initialisation_is_one_hot_on_the_seeds(init_params: str, kind: str) -> None:
    X = torch.from_numpy(blobs(n=800, seed=10))
    reg = 1e-3
    mixture = initial_mixture(
        X, 5, covariance_class(kind), init_params, reg, torch.Generator().manual_seed(4), 100
    )
    if init_params == "k-means++":
        seeds = torch_kmeans_plusplus(X, 5, torch.Generator().manual_seed(4), 100)[0]
    else:
        order = torch.randperm(len(X), generator=torch.Generator().manual_seed(4))
        seeds = X[order[:5]]
    # scikit-learn: responsibilities one-hot on the seed rows, so each component is its
    # seed with covariance reg_covar * I, and equal weights
    np.testing.assert_allclose(mixture.means.numpy(), seeds.numpy(), atol=1e-12)
    np.testing.assert_allclose(mixture.weights.numpy(), np.full(5, 0.2), atol=1e-12)
    expected = {"full": reg * np.eye(4)[None].repeat(5, 0), "tied": reg * np.eye(4)}
    expected |= {"diag": np.full((5, 4), reg), "spherical": np.full(5, reg)}
    np.testing.assert_allclose(mixture.covariance.covariances.numpy(), expected[kind], rtol=1e-9)

"""Fixed parameter groups: never updated, the rest fitted given them; the k-means limit."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from mixtorch import GaussianMixture


def _blobs():
    X, _ = make_blobs(1500, centers=4, n_features=3, cluster_std=1.5, random_state=0)
    starts = X[np.random.default_rng(0).choice(len(X), 4, replace=False)]
    return X, starts


def test_tiny_fixed_spherical_covariances_and_equal_weights_make_em_kmeans():
    X, starts = _blobs()
    km = KMeans(4, init=starts, n_init=1, max_iter=300, tol=0, algorithm="lloyd").fit(X)
    gm = GaussianMixture(
        4,
        covariance_type="spherical",
        weights_init=np.full(4, 0.25),
        means_init=starts,
        precisions_init=np.full(4, 1e5),
        fixed=("weights", "covariances"),
        tol=1e-12,
        max_iter=300,
    ).fit(X)
    np.testing.assert_allclose(gm.means_, km.cluster_centers_, rtol=1e-10, atol=1e-10)
    np.testing.assert_array_equal(gm.predict(X), km.labels_)
    np.testing.assert_allclose(gm.weights_, 0.25)
    np.testing.assert_allclose(gm.covariances_, 1e-5)


@pytest.mark.parametrize("kind", ["full", "tied", "diag", "spherical"])
def test_fixed_means_give_the_scatter_about_those_means(kind):
    X, starts = _blobs()
    means = starts + 0.5
    gm = GaussianMixture(
        4,
        covariance_type=kind,
        means_init=means,
        fixed=("means",),
        random_state=0,
        max_iter=3000,
        tol=1e-12,
    ).fit(X)
    np.testing.assert_array_equal(gm.means_, means)
    # the covariance update given the means: responsibilities-weighted scatter about them
    resp = gm.predict_proba(X)
    counts = resp.sum(0)
    diffs = X[None] - means[:, None]
    full = np.einsum("nk,kni,knj->kij", resp, diffs, diffs) / counts[:, None, None]
    expected = {
        "full": full,
        "tied": np.einsum("k,kij->ij", counts, full) / counts.sum(),
        "diag": np.diagonal(full, axis1=1, axis2=2),
        "spherical": np.diagonal(full, axis1=1, axis2=2).mean(1),
    }[kind]
    reg = 1e-6 * (np.eye(3) if kind in ("full", "tied") else 1.0)
    np.testing.assert_allclose(gm.covariances_, expected + reg, rtol=2e-3)


def test_fixed_groups_hold_under_gradient_fitting():
    X, starts = _blobs()
    gm = GaussianMixture(
        4,
        covariance_type="diag",
        algorithm="gradient",
        means_init=starts,
        weights_init=np.full(4, 0.25),
        fixed=("means", "weights"),
        max_iter=30,
        random_state=0,
    )
    with pytest.warns(Warning):  # 30 epochs: not converged
        gm.fit(X)
    np.testing.assert_allclose(gm.means_, starts, rtol=0, atol=0)
    np.testing.assert_allclose(gm.weights_, 0.25, rtol=1e-12)


def test_fixed_needs_the_matching_init_and_known_names():
    X, _ = _blobs()
    with pytest.raises(ValueError, match="means_init"):
        GaussianMixture(2, fixed=("means",)).fit(X)
    with pytest.raises(ValueError, match="fixed may only contain"):
        GaussianMixture(2, fixed=("mean",)).fit(X)


def test_kmeans_limit_example_agrees_with_kmeans(capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "kmeans_limit.py"
    runpy.run_path(str(path))["main"]()
    last = capsys.readouterr().out.splitlines()[-1]
    assert "100.0%" in last and float(last.split()[-1]) < 1e-8

"""k-means as a Gaussian mixture with fixed, tiny spherical covariances.

Run with ``.venv/bin/python examples/kmeans_limit.py`` (a second).

With every covariance fixed at ``sigma^2 I`` and equal fixed weights, the E-step's
responsibilities harden to nearest-centre assignments as ``sigma -> 0`` and the M-step's
means become cluster averages: EM is Lloyd's algorithm. ``GaussianMixture(fixed=...)``
holds parameter groups at their ``*_init`` values, so the limit can be run directly and
compared with scikit-learn's KMeans from the same starting centres.
"""

from __future__ import annotations

import numpy as np
from sklearn.cluster import KMeans
from sklearn.datasets import make_blobs

from mixtorch import GaussianMixture


def main() -> None:
    X, _ = make_blobs(3000, centers=5, n_features=2, cluster_std=1.2, random_state=3)
    starts = X[np.random.default_rng(0).choice(len(X), 5, replace=False)]
    kmeans = KMeans(5, init=starts, n_init=1, tol=0, algorithm="lloyd").fit(X)
    for variance in (1.0, 1e-2, 1e-5):
        em = GaussianMixture(
            5,
            covariance_type="spherical",
            weights_init=np.full(5, 0.2),
            means_init=starts,
            precisions_init=np.full(5, 1.0 / variance),
            fixed=("weights", "covariances"),
            tol=1e-9,
            max_iter=5000,
        ).fit(X)
        agree = (em.predict(X) == kmeans.labels_).mean()
        gap = np.abs(em.means_ - kmeans.cluster_centers_).max()
        print(
            f"sigma^2 = {variance:g}: same labels as KMeans for {agree:.1%} of points, "
            f"largest centre difference {gap:.2e}"
        )


if __name__ == "__main__":
    main()

"""The generative story of a Gaussian mixture, step by step.

Run with ``.venv/bin/python examples/generative_story.py [OUT_DIR]`` (a few seconds).

A mixture p(x) = sum_k pi_k N(x | mu_k, Sigma_k) generates a point in two steps: pick a
component z ~ Categorical(pi), then draw x ~ N(mu_z, Sigma_z). This script does exactly
that by hand with NumPy, checks that ``model.sample`` gives the same distribution,
recovers the parameters with EM, and draws the result (``generative_story.png``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

import mixtorch  # noqa: E402
from mixtorch.plotting import plot_mixture_2d  # noqa: E402

WEIGHTS = np.array([0.5, 0.3, 0.2])
MEANS = np.array([[0.0, 0.0], [4.0, 1.0], [1.0, 4.0]])
COVARIANCES = np.array(
    [[[1.0, 0.6], [0.6, 1.0]], [[0.5, 0.0], [0.0, 1.5]], [[0.3, -0.2], [-0.2, 0.4]]]
)


def by_hand(n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Step 1: z ~ Categorical(weights). Step 2: x ~ N(means[z], covariances[z])."""
    z = rng.choice(len(WEIGHTS), size=n, p=WEIGHTS)
    x = np.stack([rng.multivariate_normal(MEANS[k], COVARIANCES[k]) for k in z])
    return x, z


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X, z = by_hand(1500, rng)
    print("component counts by hand:", np.bincount(z), "expected:", 1500 * WEIGHTS)

    truth = mixtorch.GaussianMixture.from_parameters(WEIGHTS, MEANS, COVARIANCES, random_state=0)
    X_model, _ = truth.sample(1500)
    print("mean of hand-made sample:   ", X.mean(0).round(3))
    print("mean of model.sample:       ", X_model.mean(0).round(3))
    print("true mixture mean:          ", (WEIGHTS @ MEANS).round(3))
    print(f"log-likelihood per point under the truth: {truth.score(X):.4f}")

    fitted = mixtorch.GaussianMixture(3, random_state=0).fit(X)
    order = np.argsort(fitted.weights_)[::-1]
    print("EM weights (sorted):", fitted.weights_[order].round(3), "true:", WEIGHTS)
    print(f"log-likelihood per point under EM's fit: {fitted.score(X):.4f}")
    print("responsibilities of the first point:", fitted.predict_proba(X[:1]).round(3))

    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 5))
    plot_mixture_2d(truth, X, ax=left)
    left.set_title("the true mixture and points drawn by hand")
    plot_mixture_2d(fitted, X, ax=right)
    right.set_title("recovered by EM (2-sigma ellipses)")
    path = out_dir / "generative_story.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print("picture:", path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples"))

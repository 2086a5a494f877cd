"""Scoring parameter guesses by log-likelihood: a bad guess, a good guess, and EM.

Run with ``.venv/bin/python examples/parameter_guesses.py [OUT_DIR]`` (a few seconds).

The log-likelihood sum_i log p(x_i) says how well parameters explain the data. Here a
guess that puts the components in the wrong places scores far worse than one close to the
truth, and EM, started anywhere sensible, climbs to (at least) the good guess. The picture
``parameter_guesses.png`` shows the three densities over a histogram of the data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402

from mixtorch import GaussianMixture  # noqa: E402
from mixtorch.plotting import plot_density_1d  # noqa: E402


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2.0, 0.6, 600), rng.normal(2.5, 1.0, 400)])[:, None]

    guesses = {
        "bad guess": GaussianMixture.from_parameters(
            [0.5, 0.5], [[0.0], [6.0]], [4.0, 0.2], covariance_type="spherical"
        ),
        "good guess": GaussianMixture.from_parameters(
            [0.6, 0.4], [[-2.0], [2.5]], [0.36, 1.0], covariance_type="spherical"
        ),
        "EM from k-means": GaussianMixture(2, covariance_type="spherical", random_state=0).fit(X),
    }
    figure, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
    for ax, (name, model) in zip(axes, guesses.items(), strict=True):
        total = model.score(X) * len(X)
        print(f"{name:>16}: log-likelihood {total:10.2f}  (per point {model.score(X):.4f})")
        plot_density_1d(model, X, ax=ax)
        ax.set_title(f"{name}: log L = {total:.1f}")
    fitted = guesses["EM from k-means"]
    print("EM's parameters: weights", fitted.weights_.round(3), "means", fitted.means_.ravel())
    print("EM's log-likelihood per iteration:", np.round(fitted.lower_bounds_, 4))
    path = out_dir / "parameter_guesses.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print("picture:", path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples"))

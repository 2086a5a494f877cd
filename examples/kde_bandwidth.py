"""Kernel density estimation: too small, too large, and leave-one-out bandwidths.

Run with ``.venv/bin/python examples/kde_bandwidth.py [OUT_DIR]`` (a few seconds).

A Gaussian KDE puts one Gaussian of width h on every data point. A tiny h gives a spiky
estimate that memorises the sample; a huge h smears the two modes into one. Maximising
the plain likelihood over h would drive h to 0, so the bandwidth is chosen by the
leave-one-out likelihood, which scores each point under the kernels of the others.
Pictures: ``kde_bandwidth.png`` (three estimates) and ``kde_loo_curve.png`` (LOO
log-likelihood against the bandwidth factor).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from scipy.stats import norm  # noqa: E402

from mixtorch import GaussianKDE  # noqa: E402
from mixtorch.plotting import plot_density_1d, plot_loo_curve  # noqa: E402


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    X = np.concatenate([rng.normal(-2.0, 0.5, 150), rng.normal(1.5, 1.0, 250)])[:, None]
    X_test = np.concatenate([rng.normal(-2.0, 0.5, 1500), rng.normal(1.5, 1.0, 2500)])[:, None]
    grid = np.linspace(-5, 6, 500)
    truth = 0.375 * norm.pdf(grid, -2.0, 0.5) + 0.625 * norm.pdf(grid, 1.5, 1.0)

    models = {
        "h = 0.03 (too small)": GaussianKDE(bandwidth=0.03).fit(X),
        "h = 2.0 (too large)": GaussianKDE(bandwidth=2.0).fit(X),
        "leave-one-out": GaussianKDE(bandwidth="loo").fit(X),
    }
    figure, axes = plt.subplots(1, 3, figsize=(15, 4), sharey=True)
    for ax, (name, model) in zip(axes, models.items(), strict=True):
        h = float(np.sqrt(model.bandwidth_[0, 0]))
        train, test = model.score_samples(X).mean(), model.score_samples(X_test).mean()
        print(f"{name:>22}: h = {h:.3f}  train {train:8.3f}  held-out {test:8.3f} per point")
        plot_density_1d(model, X, ax=ax)
        ax.plot(grid, truth, "r:", lw=2, label="true density")
        ax.legend(fontsize="small")
        ax.set_title(f"{name}: held-out log-lik {test:.3f}")
    path = out_dir / "kde_bandwidth.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print("picture:", path)

    ax = plot_loo_curve(models["leave-one-out"])
    ax.set_xlabel("bandwidth factor (times the data standard deviation)")
    curve_path = out_dir / "kde_loo_curve.png"
    ax.figure.savefig(curve_path, dpi=100, bbox_inches="tight")
    print("picture:", curve_path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples"))

"""Fitting and imputing with missing entries: exact EM, no rows dropped.

Run with ``.venv/bin/python examples/missing_values.py [OUT_DIR]`` (a few seconds).

Two clusters whose features correlate in opposite directions; the second feature is
missing in 40% of the rows. ``GaussianMixture(missing_values=np.nan)`` fits the mixture by
EM on the incomplete rows themselves (each row contributes its observed entries and the
expected statistics of its missing ones), and ``GaussianMixtureImputer`` fills the holes
with conditional means. A chained linear regression (scikit-learn's IterativeImputer)
fits one line through both clusters and imputes along it. Picture: ``missing_values.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.experimental import enable_iterative_imputer  # noqa: E402, F401
from sklearn.impute import IterativeImputer  # noqa: E402

from mixtorch import GaussianMixture, GaussianMixtureImputer  # noqa: E402


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    up = rng.multivariate_normal([0, 0], [[1, 0.9], [0.9, 1]], 400)
    down = rng.multivariate_normal([5, 0], [[1, -0.9], [-0.9, 1]], 400)
    X = np.concatenate([up, down])
    holes = X.copy()
    missing = rng.random(len(X)) < 0.4
    holes[missing, 1] = np.nan

    model = GaussianMixture(2, missing_values=np.nan, random_state=0).fit(holes)
    print(
        f"fitted on all {len(holes)} rows ({missing.sum()} incomplete) in {model.n_iter_} "
        f"EM iterations; mean log-likelihood {model.score(holes):.3f}"
    )
    ours = GaussianMixtureImputer(2, random_state=0).fit_transform(holes)
    chained = IterativeImputer(random_state=0).fit_transform(holes)
    for name, filled in (("GaussianMixtureImputer", ours), ("IterativeImputer", chained)):
        rmse = np.sqrt(np.mean((filled[missing, 1] - X[missing, 1]) ** 2))
        print(f"RMSE of the imputed entries, {name}: {rmse:.2f}")

    figure, axes = plt.subplots(1, 2, figsize=(10, 4), sharey=True)
    for axis, (title, filled) in zip(
        axes, (("mixture conditionals", ours), ("chained regression", chained)), strict=True
    ):
        axis.scatter(X[~missing, 0], X[~missing, 1], s=4, color="0.7", label="complete rows")
        axis.scatter(
            filled[missing, 0], filled[missing, 1], s=6, color="tab:orange", label="imputed"
        )
        axis.set_title(f"Imputation by {title}")
        axis.set_xlabel("feature 0 (observed)")
    axes[0].set_ylabel("feature 1 (40% missing)")
    axes[0].legend(loc="upper right", fontsize=8)
    figure.tight_layout()
    path = out_dir / "missing_values.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"picture: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))

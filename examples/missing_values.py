"""Fitting and imputing with missing entries: exact EM, no rows dropped.

Run with ``.venv/bin/python examples/missing_values.py [OUT_DIR]`` (a few seconds).

Two clusters whose features correlate in opposite directions; the second feature is
missing in 40% of the rows. ``GaussianMixture(missing_values=np.nan)`` fits the mixture by
EM on the incomplete rows themselves (each row contributes its observed entries and the
expected statistics of its missing ones), and ``GaussianMixtureImputer`` fills the holes
with conditional means. A chained linear regression (scikit-learn's IterativeImputer)
fits one line through both clusters and imputes along it. Picture: ``missing_values.png``.

Out of core: the same rows written as CSV shards with empty cells are fitted from the
folder, chunk by chunk (``fit(folder)``; under ``torch.distributed`` each rank would pass
its own shards), with the same exact EM: from the same start it gives the in-memory fit.
"""

from __future__ import annotations

import sys
import tempfile
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
    out_of_core(holes, model)
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


def out_of_core(holes: np.ndarray, model: GaussianMixture) -> None:
    """Fit from CSV shards with empty cells, 100 rows per chunk, from ``model``'s start."""
    start = {
        "weights_init": model.weights_,
        "means_init": model.means_ + 0.5,
        "precisions_init": model.precisions_,
    }
    options = {"missing_values": np.nan, "tol": 1e-8, "max_iter": 500, **start}
    in_memory = GaussianMixture(2, **options).fit(holes)
    with tempfile.TemporaryDirectory() as folder:
        for index, shard in enumerate(np.array_split(holes, 4)):
            lines = [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in shard]
            (Path(folder) / f"part-{index}.csv").write_text("\n".join(lines) + "\n")
        from_files = GaussianMixture(2, chunk_size=100, **options).fit(folder)
    gap = np.abs(from_files.means_ - in_memory.means_).max()
    print(
        f"fitted from 4 CSV shards with empty cells: largest gap to the in-memory means {gap:.1e}"
    )


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))

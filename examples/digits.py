"""Generating handwritten digits with a Gaussian mixture, step by step.

Run with ``.venv/bin/python examples/digits.py [OUT_DIR]`` (about ten seconds).

The same pipeline as ``make demo``, spelled out with the library's API: project the
8x8 digits on 30 principal components, choose the number of components by BIC, sample
new points, map them back to pixels, and save the model. Pictures:
``digits_examples_samples.png`` (new digits, one row per component) and
``digits_examples_bic.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.decomposition import PCA  # noqa: E402

import mixtorch  # noqa: E402
from mixtorch.plotting import plot_criterion, plot_samples_grid  # noqa: E402


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(1)  # small data: one thread is fastest
    digits = load_digits()
    pca = PCA(n_components=30, random_state=0).fit(digits.data)
    Z = pca.transform(digits.data)

    result = mixtorch.select(Z, [2, 4, 6, 8, 10, 12], ["full"], random_state=0, max_iter=200)
    print(result.table)
    model = result.best_estimator_
    K = model.n_components
    print(f"BIC chooses K = {K}")

    # Eight digits from each component: condition the story on z = k.
    rows = []
    generator = torch.Generator().manual_seed(0)
    mixture = model.mixture_
    for k in range(K):
        noise = torch.randn(8, mixture.n_features, dtype=mixture.dtype, generator=generator)
        points = mixture.means[k] + mixture.covariance.scale_noise(noise, k)
        rows.append(np.clip(pca.inverse_transform(points.numpy()), 0, 16))
    ax = plot_samples_grid(np.concatenate(rows), (8, 8), n_cols=8, value_range=(0, 16))
    ax.set_title(f"8 new digits from each of the {K} components")
    samples_path = out_dir / "digits_examples_samples.png"
    ax.figure.savefig(samples_path, dpi=100, bbox_inches="tight")
    plt.close(ax.figure)

    ax = plot_criterion(result)
    bic_path = out_dir / "digits_examples_bic.png"
    ax.figure.savefig(bic_path, dpi=100, bbox_inches="tight")
    model_path = mixtorch.save(model, out_dir / "digits_examples.mixtorch")
    again = mixtorch.load(model_path)
    assert np.array_equal(again.score_samples(Z), model.score_samples(Z))
    print(f"mean log-likelihood per digit {model.score(Z):.3f}; model saved to {model_path}")
    print("pictures:", samples_path, bic_path)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples"))

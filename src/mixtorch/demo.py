"""The digits demo (``make demo``, ``mixtorch demo``): generate new handwritten digits.

scikit-learn's bundled 8x8 digits (1797 images, 64 pixels of 0-16) are projected on their
leading principal components, a full-covariance Gaussian mixture is fitted there with the
number of components chosen by BIC, new points are sampled from it and mapped back to
pixels. The pictures and a Markdown report go to an output folder.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ._cli_args import DEFAULT_DEMO_COMPONENTS
from .io import save
from .selection import SelectionResult, select

__all__ = ["DemoResult", "run_demo"]

PIXEL_MAX = 16.0
IMAGE_SHAPE = (8, 8)
DEFAULT_COMPONENTS = DEFAULT_DEMO_COMPONENTS


@dataclass
class DemoResult:
    """What the demo produced.

    Attributes
    ----------
    selection : SelectionResult
        The BIC sweep; ``selection.best_estimator_`` is the model used.
    n_pca : int
        Dimensions kept by the PCA.
    explained_variance : float
        Fraction of the pixel variance those dimensions hold.
    log_likelihood : float
        Mean log-likelihood per digit (in PCA space) of the chosen model.
    files : dict of str -> Path
        'samples', 'real', 'bic', 'report' and 'model'.
    seconds : float
    """

    selection: SelectionResult
    n_pca: int
    explained_variance: float
    log_likelihood: float
    files: dict[str, Path]
    seconds: float

    def summary(self) -> str:
        best = self.selection.best_params_
        return "\n".join(
            [
                f"digits: 1797 images of 8x8 pixels, PCA to {self.n_pca} dimensions "
                f"({100 * self.explained_variance:.1f}% of the variance)",
                f"chosen by BIC: {best['n_components']} components, "
                f"{best['covariance_type']} covariance (BIC {self.selection.best_score_:.1f})",
                f"mean log-likelihood per digit: {self.log_likelihood:.3f} (PCA space)",
                f"new digits:   {self.files['samples']}",
                f"real digits:  {self.files['real']}",
                f"BIC vs K:     {self.files['bic']}",
                f"report:       {self.files['report']}",
                f"model file:   {self.files['model']}",
                f"data to pictures took {self.seconds:.1f} s (after importing PyTorch)",
            ]
        )


def run_demo(
    out_dir: str | Path = "out",
    *,
    n_components: Sequence[int] = DEFAULT_COMPONENTS,
    n_pca: int = 30,
    n_samples: int = 64,
    seed: int = 0,
    progress: Callable[[int, int, dict[str, Any]], None] | None = None,
) -> DemoResult:
    """Fit, select, sample and draw; write everything to ``out_dir``.

    Parameters
    ----------
    out_dir : str or Path, default='out'
    n_components : sequence of int
        The values of K compared by BIC.
    n_pca : int, default=30
        Principal components kept.
    n_samples : int, default=64
        New digits drawn.
    seed : int, default=0
    progress : callable, optional
        Passed to :func:`~mixtorch.select`.

    Returns
    -------
    DemoResult
    """
    # The data are small (1797 x 30): with several threads, synchronisation costs more
    # than the arithmetic, and on a busy machine spinning threads made the sweep 10-20x
    # slower (measured: ~3 s on one thread against ~50 s on two under load).
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _run(Path(out_dir), n_components, n_pca, n_samples, seed, progress)
    finally:
        torch.set_num_threads(threads)


def _run(
    out: Path,
    n_components: Sequence[int],
    n_pca: int,
    n_samples: int,
    seed: int,
    progress: Callable[[int, int, dict[str, Any]], None] | None,
) -> DemoResult:
    import matplotlib

    matplotlib.use("Agg")  # files only; never open a window
    from sklearn.datasets import load_digits
    from sklearn.decomposition import PCA

    start = time.perf_counter()
    out.mkdir(parents=True, exist_ok=True)
    digits = load_digits()
    pca = PCA(n_components=n_pca, random_state=seed).fit(digits.data)
    projected = pca.transform(digits.data)
    selection = select(
        projected,
        n_components,
        ("full",),
        criterion="bic",
        random_state=seed,
        progress=progress,
        max_iter=200,
    )
    model = selection.best_estimator_
    model.set_params(random_state=seed)
    new_points, components = model.sample(n_samples)
    # Sampled pixels can fall a little outside the ink range; clip them to what a scan holds.
    new_digits = np.clip(pca.inverse_transform(new_points), 0.0, PIXEL_MAX)
    real = digits.data[np.random.default_rng(seed).choice(len(digits.data), n_samples, False)]
    files = _write_pictures(out, selection, new_digits, real, components)
    files["model"] = save(model, out / "digits_model.mixtorch")
    result = DemoResult(
        selection=selection,
        n_pca=n_pca,
        explained_variance=float(pca.explained_variance_ratio_.sum()),
        log_likelihood=float(model.score(projected)),
        files=files,
        seconds=0.0,
    )
    result.seconds = time.perf_counter() - start
    files["report"] = _write_report(out, result)
    return result


def _write_pictures(
    out: Path,
    selection: SelectionResult,
    new_digits: np.ndarray,
    real: np.ndarray,
    components: np.ndarray,
) -> dict[str, Path]:
    import matplotlib.pyplot as plt

    from .plotting import plot_criterion, plot_samples_grid

    files = {
        "samples": out / "digits_samples.png",
        "real": out / "digits_real.png",
        "bic": out / "digits_bic.png",
    }
    pictures = [
        (
            files["samples"],
            new_digits,
            "digits sampled from the mixture\n(red: the component that drew each one)",
            components,
        ),
        (files["real"], real, "real digits from the data set", None),
    ]
    for path, images, title, labels in pictures:
        ax = plot_samples_grid(
            images, IMAGE_SHAPE, title=title, value_range=(0.0, PIXEL_MAX), labels=labels
        )
        ax.figure.savefig(path, dpi=100, bbox_inches="tight")
        plt.close(ax.figure)
    ax = plot_criterion(selection)
    ax.set_title("BIC of full-covariance mixtures on PCA digits")
    ax.figure.savefig(files["bic"], dpi=100, bbox_inches="tight")
    plt.close(ax.figure)
    return files


def _write_report(out: Path, result: DemoResult) -> Path:
    best = result.selection.best_params_
    text = f"""# mixtorch digits demo

Data: scikit-learn's 8x8 handwritten digits (1797 images, pixels 0-16), projected on
their first {result.n_pca} principal components ({100 * result.explained_variance:.1f}% of
the pixel variance).

Model: a Gaussian mixture with full covariances, fitted by EM; the number of components
was chosen by BIC over K in {[row["n_components"] for row in result.selection.table]}.
Chosen: **K = {best["n_components"]}**, mean log-likelihood per digit
{result.log_likelihood:.3f} (in PCA space).

## BIC against the number of components

![BIC vs K]({result.files["bic"].name})

## New digits sampled from the mixture

Each is a draw z ~ Categorical(weights), x ~ N(mean_z, covariance_z) in PCA space,
mapped back to pixels and clipped to 0-16. They come grouped by the component that
generated them, so each row shows a few of its digits.

![sampled digits]({result.files["samples"].name})

## Real digits for comparison

![real digits]({result.files["real"].name})

## The sweep

```
{result.selection.table}
```

The fitted model is saved as `{result.files["model"].name}`
(load it with `mixtorch.load`). Run time {result.seconds:.1f} s from loading the digits
to the pictures (the import of PyTorch and mixtorch before it not counted).
"""
    path = out / "report.md"
    path.write_text(text, encoding="utf-8")
    return path

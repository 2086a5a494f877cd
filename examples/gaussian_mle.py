"""Maximum likelihood for a Gaussian: the closed form against gradient descent.

Run with ``.venv/bin/python examples/gaussian_mle.py [OUT_DIR]`` (a few seconds).

1. One dimension. The maximum-likelihood estimate has a closed form: the sample mean and
   the biased sample variance. ``Gaussian(algorithm="gradient")`` finds the same numbers
   by minimising the negative log-likelihood with Adam, starting from a poor guess
   (mean 0, variance 1) and optimising ``log sigma`` so the variance stays positive.
   The iteration table shows the path.
2. Two dimensions, by hand. A :class:`mixtorch.nn.GaussianModule` holds the covariance
   as a Cholesky factor L whose diagonal is ``exp`` of a free parameter, so
   Sigma = L L^T is always valid. A plain torch training loop fits it.

Picture: ``gaussian_mle_curves.png`` (NLL per sample against iteration for both fits).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from mixtorch import Gaussian  # noqa: E402
from mixtorch.nn import GaussianModule  # noqa: E402


def one_dimension(rng: np.random.Generator) -> Gaussian:
    X = rng.normal(3.0, 2.0, size=(500, 1))
    closed = Gaussian().fit(X)
    gradient = Gaussian(algorithm="gradient", learning_rate=0.05, tol=1e-10).fit(X)
    print("1-D: closed form against Adam from mean 0, variance 1")
    print(gradient.history_.table(max_rows=12))
    print(f"{'':>12}{'mean':>12}{'variance':>12}{'mean log-lik':>15}")
    for name, model in (("closed form", closed), ("Adam", gradient)):
        row = f"{model.mean_[0]:12.6f}{model.covariance_[0, 0]:12.6f}{model.score(X):15.8f}"
        print(f"{name:>12}{row}")
    print(f"{'numpy':>12}{X.mean():12.6f}{X.var():12.6f}")
    return gradient


def two_dimensions(rng: np.random.Generator) -> list[float]:
    true_covariance = np.array([[2.0, 1.2], [1.2, 1.5]])
    X = torch.as_tensor(rng.multivariate_normal([1.0, -2.0], true_covariance, size=800))
    module = GaussianModule(2, "full", dtype=torch.float64)  # mean 0, identity
    optimiser = torch.optim.Adam(module.parameters(), lr=0.05)
    curve = []
    for _ in range(600):
        optimiser.zero_grad()
        loss = -module.log_prob(X).mean()
        loss.backward()
        optimiser.step()
        curve.append(float(loss.detach()))
    centred = X - X.mean(0)
    print("\n2-D: GaussianModule trained by a plain Adam loop (600 steps)")
    print(
        "  mean       ",
        module.mean.detach().numpy().round(5),
        "closed form",
        X.mean(0).numpy().round(5),
    )
    print("  Cholesky L ", module.cholesky_factor().detach().numpy().round(5).tolist())
    print("  L L^T      ", module.covariances().detach()[0].numpy().round(5).tolist())
    print("  closed form", (centred.T @ centred / len(X)).numpy().round(5).tolist())
    return curve


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    gradient = one_dimension(rng)
    curve = two_dimensions(rng)
    figure, axes = plt.subplots(1, 2, figsize=(10, 4))
    gradient.history_.plot(ax=axes[0])
    axes[0].set_title("1-D Gaussian, Adam on (mean, log sigma)")
    axes[1].plot(np.arange(1, len(curve) + 1), curve)
    axes[1].set(title="2-D Gaussian, Adam on (mean, Cholesky factor)", xlabel="step")
    figure.tight_layout()
    path = out_dir / "gaussian_mle_curves.png"
    figure.savefig(path, dpi=100)
    plt.close(figure)
    print(f"\nwrote {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples"))

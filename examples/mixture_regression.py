"""Gaussian mixture regression: a target with two values for one input.

Run with ``.venv/bin/python examples/mixture_regression.py [OUT_DIR]`` (a few seconds).

The data lie on the two branches ``y = +sqrt(x)`` and ``y = -sqrt(x)``. Least squares
(and any regressor that predicts one number) answers with the average of the branches,
close to zero, where no data point lies. :class:`mixtorch.GaussianMixtureRegressor` fits
one mixture to the joint points ``(x, y)`` and predicts with the conditional mixture
``p(y | x)``: its mean is still the average, but its draws (``sample_y``) and its
per-component conditional means fall on both branches, and ``predict(...,
return_std=True)`` reports the spread. Picture: ``mixture_regression.png``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.linear_model import LinearRegression  # noqa: E402

from mixtorch import GaussianMixtureRegressor  # noqa: E402


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    x = rng.uniform(0.5, 4.0, size=1500)
    y = np.sqrt(x) * rng.choice([-1.0, 1.0], size=x.size) + 0.08 * rng.normal(size=x.size)
    X = x[:, None]

    model = GaussianMixtureRegressor(n_components=10, random_state=0).fit(X, y)
    least_squares = LinearRegression().fit(X, y)
    grid = np.linspace(0.6, 3.9, 200)[:, None]
    mean, std = model.predict(grid, return_std=True)
    draws = model.sample_y(grid, n_samples=30, random_state=1)

    # How far each prediction lies from the nearest branch, on held-out points.
    x_test = rng.uniform(0.5, 4.0, size=2000)
    y_test = np.sqrt(x_test) * rng.choice([-1.0, 1.0], size=x_test.size)
    one_draw = model.sample_y(x_test[:, None], n_samples=1, random_state=2)[:, 0]
    gap_draw = np.abs(np.abs(one_draw) - np.sqrt(x_test)).mean()
    gap_ls = np.abs(np.abs(least_squares.predict(x_test[:, None])) - np.sqrt(x_test)).mean()
    print(
        f"mean distance to the nearest branch: least squares {gap_ls:.2f}, "
        f"a draw from p(y | x) {gap_draw:.2f}"
    )
    print(
        f"R^2 of the conditional mean {model.score(x_test[:, None], y_test):.2f} "
        f"(least squares {least_squares.score(x_test[:, None], y_test):.2f}): "
        "the mean is the wrong summary for a two-valued target"
    )

    figure, axis = plt.subplots(figsize=(7, 4.5))
    axis.scatter(x, y, s=3, color="0.75", label="data")
    axis.scatter(
        np.repeat(grid[:, 0], 30),
        draws.ravel(),
        s=2,
        color="tab:green",
        alpha=0.4,
        label="draws from p(y | x)",
    )
    axis.plot(grid[:, 0], least_squares.predict(grid), color="tab:red", label="least squares")
    axis.plot(grid[:, 0], mean, color="tab:blue", label="E[y | x]")
    axis.fill_between(
        grid[:, 0], mean - std, mean + std, color="tab:blue", alpha=0.15, label="E[y | x] +- std"
    )
    axis.set_xlabel("x")
    axis.set_ylabel("y")
    axis.set_title("Gaussian mixture regression on a two-valued target")
    axis.legend(loc="lower left", fontsize=8)
    figure.tight_layout()
    path = out_dir / "mixture_regression.png"
    figure.savefig(path, dpi=110)
    plt.close(figure)
    print(f"picture: {path}")


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else Path("out"))

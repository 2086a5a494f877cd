"""Full-covariance Bayesian mixtures with Pyro: LKJ correlations, NUTS and ArviZ.

Run with ``.venv/bin/python examples/bayes_full_covariance.py [OUT_DIR]`` (about half a
minute on two cores).

Two clusters whose features are strongly correlated, with opposite signs, cannot be
described by diagonal covariances. ``covariance_type="full"`` gives each component a
covariance ``diag(s) C diag(s)`` with half-Cauchy standard deviations ``s`` and an LKJ
prior on the correlation matrix ``C`` (through its Cholesky factor), the model Stan and
Pyro recommend. The script

1. fits the MAP estimate by SVI and compares it with scikit-learn's maximum likelihood,
2. samples the posterior with NUTS (two chains), prints r-hat and effective sample sizes,
   and the assignment probabilities averaged over the posterior draws,
3. exports the draws to ArviZ (``to_arviz``), and
4. draws the posterior predictive density with a 90% credible band for 1-D data
   (``bayes_predictive_band.png``) and the fitted 2-D mixture
   (``bayes_full_covariance.png``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.mixture import GaussianMixture  # noqa: E402

from mixtorch import MCMCGaussianMixture, SVIGaussianMixture  # noqa: E402
from mixtorch.bayes import plot_posterior_predictive  # noqa: E402
from mixtorch.plotting import plot_mixture_2d  # noqa: E402

MEANS = np.array([[0.0, 0.0], [6.0, 3.0]])
COVARIANCES = np.array([[[1.0, 0.8], [0.8, 1.0]], [[0.5, -0.3], [-0.3, 0.8]]])


def correlated_clusters(n_per_cluster: int = 150) -> np.ndarray:
    rng = np.random.default_rng(0)
    return np.concatenate(
        [
            rng.multivariate_normal(m, c, n_per_cluster)
            for m, c in zip(MEANS, COVARIANCES, strict=True)
        ]
    )


def map_against_maximum_likelihood(X: np.ndarray) -> None:
    svi = SVIGaussianMixture(
        2, covariance_type="full", num_steps=300, num_restarts=1, random_state=0
    ).fit(X)
    reference = GaussianMixture(2, covariance_type="full", random_state=0).fit(X)
    order = np.argsort(reference.means_[:, 0])
    gap = np.abs(svi.covariances_ - reference.covariances_[order]).max()
    print(f"SVI (MAP) covariances differ from scikit-learn's by at most {gap:.3f}")


def nuts(X: np.ndarray) -> MCMCGaussianMixture:
    model = MCMCGaussianMixture(
        2, covariance_type="full", num_samples=150, warmup_steps=150, num_chains=2,
        random_state=0,
    ).fit(X)  # fmt: skip
    print("NUTS, 2 chains x 150 draws; posterior mean covariances (then the truth):")
    for k in range(2):
        for row in range(2):
            print(f"  {np.round(model.covariances_[k, row], 2)}  {COVARIANCES[k, row]}")
    worst = max(float(np.max(value)) for value in model.r_hat_.values())
    fewest = min(float(np.min(value)) for value in model.ess_.values())
    print(f"  largest r-hat {worst:.3f}, smallest ESS {fewest:.0f}, "
          f"{model.divergences_} divergent transitions")  # fmt: skip
    proba = model.predict_proba(X)
    unsure = int(((proba > 0.05) & (proba < 0.95)).any(1).sum())
    print(f"  points with a posterior-averaged assignment between 5% and 95%: {unsure}")
    return model


def arviz_export(model: MCMCGaussianMixture, X: np.ndarray) -> None:
    data = model.to_arviz(X)
    print("ArviZ groups:", ", ".join(data.groups()))
    sizes = dict(data.posterior.sizes)
    print("  posterior dimensions:", sizes)
    print("  mean log joint density per chain:", data.sample_stats["lp"].mean("draw").values)


def pictures(model: MCMCGaussianMixture, X: np.ndarray, out_dir: Path) -> None:
    figure, ax = plt.subplots(figsize=(6, 5))
    plot_mixture_2d(model, X, ax=ax)
    ax.set_title("posterior-mean full covariances (NUTS)")
    path = out_dir / "bayes_full_covariance.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print("picture:", path)

    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2.0, 0.8, 60), rng.normal(2.0, 0.5, 90)])[:, None]
    one_d = MCMCGaussianMixture(
        2, num_samples=150, warmup_steps=150, num_chains=2, random_state=0
    ).fit(x)
    figure, ax = plt.subplots(figsize=(6, 4))
    plot_posterior_predictive(one_d, x, ax=ax, quantiles=(0.05, 0.95))
    ax.set_title("posterior predictive density, 90% band (150 points)")
    path = out_dir / "bayes_predictive_band.png"
    figure.savefig(path, dpi=100, bbox_inches="tight")
    print("picture:", path)


def main(out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    X = correlated_clusters()
    map_against_maximum_likelihood(X)
    model = nuts(X)
    arviz_export(model, X)
    pictures(model, X, out_dir)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "out/examples"))

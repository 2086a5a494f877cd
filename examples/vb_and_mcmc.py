"""Bayesian mixtures three ways: closed-form variational Bayes, Pyro SVI and NUTS.

Run with ``.venv/bin/python examples/vb_and_mcmc.py`` (under a minute on 2 cores).

1. ``BayesianGaussianMixture`` with 10 components on data from 3 clusters: the surplus
   components are switched off (their weights fall to almost zero).
2. ``SVIGaussianMixture`` (MAP and mean-field) on 1-D data from 2 components.
3. ``MCMCGaussianMixture`` (NUTS, two chains) on the same data: r-hat, effective sample
   size and the posterior predictive density with a 90% credible band.
"""

from __future__ import annotations

import numpy as np

import mixtorch


def variational_bayes() -> None:
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [4.0, 4.0], [0.0, 5.0]])
    X = np.concatenate([rng.normal(c, 0.6, size=(150, 2)) for c in centers])
    model = mixtorch.BayesianGaussianMixture(n_components=10, random_state=0, max_iter=500)
    model.fit(X)
    print("Variational Bayes, 10 components on 3 clusters")
    print("  weights:", np.array2string(np.sort(model.weights_)[::-1], precision=3))
    print(f"  components with weight > 0.05: {int((model.weights_ > 0.05).sum())}")
    print(f"  lower bound {model.lower_bound_:.2f} after {model.n_iter_} iterations")


def one_dimensional_data() -> np.ndarray:
    rng = np.random.default_rng(1)
    return np.concatenate([rng.normal(-2.0, 0.8, 80), rng.normal(2.0, 0.5, 120)])[:, None]


def stochastic_variational_inference(X: np.ndarray) -> None:
    print("SVI on 1-D data (truth: weights 0.4/0.6, means -2/2, sds 0.8/0.5)")
    for guide in ("map", "mean_field"):
        model = mixtorch.SVIGaussianMixture(
            n_components=2, guide=guide, num_steps=500, num_restarts=2, random_state=0
        ).fit(X)
        sd = model.posterior_samples_["locs"].std(0)[:, 0]
        print(
            f"  {guide:>10}: weights {np.round(model.weights_, 3)}, means "
            f"{np.round(model.means_[:, 0], 3)} (posterior sd {np.round(sd, 3)}), "
            f"sds {np.round(np.sqrt(model.covariances_[:, 0]), 3)}, ELBO {model.elbo_:.1f}"
        )


def nuts(X: np.ndarray) -> None:
    model = mixtorch.MCMCGaussianMixture(
        n_components=2, num_samples=300, warmup_steps=300, num_chains=2, random_state=0
    ).fit(X)
    print("NUTS, 2 chains x 300 draws")
    for name in ("weights", "locs", "scales"):
        print(
            f"  {name:>7}: mean {np.round(model.posterior_samples_[name].mean(0).ravel(), 3)}"
            f"  r-hat {np.round(model.r_hat_[name].ravel(), 3)}"
            f"  ess {np.round(model.ess_[name].ravel()).astype(int)}"
        )
    grid = np.linspace(-5, 5, 11)[:, None]
    mean, lower, upper = model.predictive_density(grid, quantiles=(0.05, 0.95))
    print("  posterior predictive density with 90% band:")
    for x, m, lo, hi in zip(grid[:, 0], mean, lower, upper, strict=True):
        print(f"    x={x:+.1f}  p={m:.4f}  [{lo:.4f}, {hi:.4f}]")


def main() -> None:
    variational_bayes()
    X = one_dimensional_data()
    stochastic_variational_inference(X)
    nuts(X)


if __name__ == "__main__":
    main()

"""Full-covariance Pyro mixtures: the LKJ model against torch.distributions and SciPy,
and posterior covariances against the generating ones and scikit-learn's fit."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils._param_validation import InvalidParameterError

pytest.importorskip("pyro")

import pyro  # noqa: E402
import torch.distributions as td  # noqa: E402

from mixtorch.bayes import (  # noqa: E402
    MCMCGaussianMixture,
    SVIGaussianMixture,
    full_log_likelihood,
    make_prior,
    mixture_model,
)

TRUE_COVARIANCES = np.array([[[1.0, 0.8], [0.8, 1.0]], [[0.5, -0.3], [-0.3, 0.8]]])
TRUE_MEANS = np.array([[0.0, 0.0], [6.0, 3.0]])


def correlated(n_per_component=150, seed=0):
    """Two well separated, strongly correlated clusters (opposite signs)."""
    rng = np.random.default_rng(seed)
    parts = [
        rng.multivariate_normal(mean, cov, n_per_component)
        for mean, cov in zip(TRUE_MEANS, TRUE_COVARIANCES, strict=True)
    ]
    return np.concatenate(parts)


@pytest.fixture(scope="module")
def data():
    X = correlated()
    reference = SkGaussianMixture(2, covariance_type="full", random_state=0).fit(X)
    order = np.argsort(reference.means_[:, 0])
    return X, reference.covariances_[order], reference.means_[order]


# -- the model ---------------------------------------------------------------------------
def test_full_log_likelihood_matches_scipy_brute_force():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(6, 3))
    weights = rng.dirichlet(np.ones(2), size=4)  # 4 draws, 2 components
    locs = rng.normal(size=(4, 2, 3))
    A = rng.normal(size=(4, 2, 3, 3))
    covariances = A @ A.transpose(0, 1, 3, 2) + 0.5 * np.eye(3)
    ours = full_log_likelihood(
        *(torch.from_numpy(a) for a in (X, weights, locs, np.linalg.cholesky(covariances)))
    )
    expected = np.array(
        [
            np.log(
                sum(
                    weights[s, k] * stats.multivariate_normal(locs[s, k], covariances[s, k]).pdf(X)
                    for k in range(2)
                )
            )
            for s in range(4)
        ]
    )
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


def test_prior_log_density_matches_torch_distributions():
    """The model's prior at a fixed draw equals the hand-written joint density
    Dirichlet x Normal x HalfCauchy x LKJCholesky (Stan's and Pyro's parametrisation)."""
    X = torch.as_tensor(correlated(20), dtype=torch.float64)
    prior = make_prior(
        X, 0.7, scale_prior=[1.5, 0.5], covariance_type="full", lkj_concentration=2.0
    )
    rng = np.random.default_rng(0)
    corr = [
        torch.linalg.cholesky(torch.tensor([[1.0, r], [r, 1.0]], dtype=torch.float64))
        for r in (0.6, -0.2, 0.1)
    ]
    draw = {
        "weights": torch.tensor([0.2, 0.5, 0.3]),
        "locs": torch.as_tensor(rng.normal(size=(3, 2))),
        "scales": torch.as_tensor(rng.uniform(0.3, 2.0, size=(3, 2))),
        "corr_cholesky": torch.stack(corr),
    }
    draw = {name: value.to(torch.float64) for name, value in draw.items()}
    conditioned = pyro.poutine.condition(mixture_model, data=draw)
    trace = pyro.poutine.trace(conditioned).get_trace(X, 3, prior)
    trace.compute_log_prob()
    model_prior = sum(trace.nodes[name]["log_prob_sum"] for name in draw)

    mean, std = X.mean(0), X.std(0)
    by_hand = td.Dirichlet(torch.full((3,), 0.7, dtype=torch.float64)).log_prob(draw["weights"])
    by_hand += td.Normal(mean, 2 * std).log_prob(draw["locs"]).sum()
    scales = torch.tensor([1.5, 0.5], dtype=torch.float64)
    by_hand += td.HalfCauchy(scales).log_prob(draw["scales"]).sum()
    lkj = td.LKJCholesky(2, torch.tensor(2.0, dtype=torch.float64))
    by_hand += lkj.log_prob(draw["corr_cholesky"]).sum()
    torch.testing.assert_close(model_prior, by_hand, rtol=1e-12, atol=1e-12)

    # Stan's LKJ Cholesky density: prod_{i >= 2} L_ii^(D - i + 2 eta - 2), for D = 2
    # L_11^(2 eta - 2) = (1 - r^2)^(eta - 1), a closed form independent of torch's code
    ratio = lkj.log_prob(draw["corr_cholesky"][0]) - lkj.log_prob(draw["corr_cholesky"][1])
    assert float(ratio) == pytest.approx(np.log((1 - 0.36) / (1 - 0.04)), rel=1e-10)

    covariances = (draw["scales"][:, :, None] * draw["corr_cholesky"]) @ (
        draw["scales"][:, :, None] * draw["corr_cholesky"]
    ).transpose(1, 2)
    likelihood = td.MixtureSameFamily(
        td.Categorical(draw["weights"]), td.MultivariateNormal(draw["locs"], covariances)
    ).log_prob(X)
    torch.testing.assert_close(trace.nodes["observations"]["log_prob_sum"], likelihood.sum())


# -- fits --------------------------------------------------------------------------------
def test_svi_map_full_matches_scikit_learn(data):
    X, covariances, means = data
    model = SVIGaussianMixture(
        2, covariance_type="full", num_steps=300, num_restarts=1, random_state=0
    ).fit(X)
    assert model.covariances_.shape == (2, 2, 2)
    # weak priors, 150 points per component: MAP is close to maximum likelihood
    np.testing.assert_allclose(model.covariances_, covariances, atol=0.03)
    np.testing.assert_allclose(model.means_, means, atol=0.03)
    # scoring uses the full covariances: the densities of the plug-in Gaussians
    expected = np.log(
        sum(
            w * stats.multivariate_normal(m, c).pdf(X[:5])
            for w, m, c in zip(model.weights_, model.means_, model.covariances_, strict=True)
        )
    )
    np.testing.assert_allclose(model.score_samples(X[:5]), expected, rtol=1e-6)


def test_nuts_full_posterior_mean_recovers_the_truth(data):
    X, covariances, _ = data
    model = MCMCGaussianMixture(
        2,
        covariance_type="full",
        num_samples=100,
        warmup_steps=100,
        num_chains=1,
        random_state=0,
    ).fit(X)
    samples = model.posterior_samples_
    assert samples["corr_cholesky"].shape == (100, 2, 2, 2)
    # the posterior mean of the covariances, from the draws by hand
    factors = samples["scales"][..., None] * samples["corr_cholesky"]
    by_hand = (factors @ factors.transpose(0, 1, 3, 2)).mean(0)
    np.testing.assert_allclose(model.covariances_, by_hand, rtol=1e-10)
    # the correlations (+0.8 and -0.3/sqrt(0.4)) are recovered, signs included
    np.testing.assert_allclose(model.covariances_, TRUE_COVARIANCES, atol=0.25)
    np.testing.assert_allclose(model.covariances_, covariances, atol=0.08)
    assert np.all(model.r_hat_["locs"] < 1.1)
    # entries fixed by construction: no 0/0 in the diagnostics
    assert np.all(np.isfinite(model.ess_["corr_cholesky"]))
    np.testing.assert_array_equal(model.r_hat_["corr_cholesky"][:, 0, :], 1.0)
    assert (model.predict(X) == np.repeat([0, 1], 150)).mean() > 0.99


def test_one_feature_full_is_the_diagonal_model():
    X = correlated(40)[:, :1]
    model = SVIGaussianMixture(
        2, covariance_type="full", num_steps=60, num_restarts=1, random_state=0
    ).fit(X)
    diag = SVIGaussianMixture(2, num_steps=60, num_restarts=1, random_state=0).fit(X)
    assert model.covariances_.shape == (2, 1, 1)
    np.testing.assert_array_equal(model.posterior_samples_["corr_cholesky"], 1.0)
    np.testing.assert_allclose(model.covariances_[:, 0, 0], diag.covariances_[:, 0], rtol=1e-6)


@pytest.mark.parametrize("estimator", [SVIGaussianMixture, MCMCGaussianMixture])
@pytest.mark.parametrize(
    ("name", "value"),
    [("covariance_type", "spherical"), ("covariance_type", None), ("lkj_concentration", 0.0)],
)
def test_covariance_parameters_are_validated(estimator, name, value):
    with pytest.raises(InvalidParameterError, match=name):
        estimator(2, **{name: value}).fit(correlated(10))


def test_full_model_saves_loads_and_moves(tmp_path):
    import mixtorch

    X = correlated(30)
    model = SVIGaussianMixture(
        2, covariance_type="full", guide="mean_field", num_steps=30, num_restarts=1,
        num_samples=10, random_state=0,
    ).fit(X)  # fmt: skip
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "full.mixtorch"))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    np.testing.assert_array_equal(loaded.predict_proba(X), model.predict_proba(X))
    before = model.predict_proba(X)
    model.to("cpu", torch.float32)
    assert model.mixture_.dtype == torch.float32
    np.testing.assert_allclose(model.predict_proba(X), before, atol=1e-5)


def test_relabel_moves_correlation_factors_with_their_components():
    from mixtorch.bayes import relabel

    rng = np.random.default_rng(5)
    base_locs = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
    base_corr = np.linalg.cholesky(np.array([[[1.0, r], [r, 1.0]] for r in (0.7, -0.4, 0.1)]))
    perms = np.stack([rng.permutation(3) for _ in range(50)]).reshape(2, 25, 3)  # 2 chains
    samples = {
        "weights": np.array([0.2, 0.3, 0.5])[perms],
        "locs": base_locs[perms] + rng.normal(0, 0.1, size=(2, 25, 3, 2)),
        "scales": np.ones((2, 25, 3, 2)),
        "corr_cholesky": base_corr[perms],
    }
    samples = {name: torch.from_numpy(value) for name, value in samples.items()}
    result = relabel(samples)
    # one labelling everywhere: lexicographic order of the means, correlations following
    expected = base_corr[np.lexsort(base_locs.T[::-1])]
    np.testing.assert_array_equal(
        result["corr_cholesky"].numpy(), np.broadcast_to(expected, (2, 25, 3, 2, 2))
    )

"""Pyro-based Bayesian mixtures: the model, SVI and NUTS against known truths."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.mixture import GaussianMixture as SkGaussianMixture

import mixtorch

pytest.importorskip("pyro")  # an optional extra; installed by `make test`

from mixtorch.bayes import (  # noqa: E402
    MCMCGaussianMixture,
    SVIGaussianMixture,
    log_likelihood,
    make_prior,
    relabel,
)

TRUE_WEIGHTS = np.array([0.4, 0.6])
TRUE_MEANS = np.array([-2.0, 2.0])
TRUE_SCALES = np.array([0.8, 0.5])


def one_dimensional(n=200, seed=0):
    """1-D data from a known two-component mixture, exact proportions."""
    rng = np.random.default_rng(seed)
    counts = (TRUE_WEIGHTS * n).astype(int)
    parts = [
        rng.normal(m, s, size=c) for m, s, c in zip(TRUE_MEANS, TRUE_SCALES, counts, strict=True)
    ]
    return np.concatenate(parts)[:, None], np.repeat([0, 1], counts)


def true_density(x):
    return sum(
        w * stats.norm.pdf(x, m, s)
        for w, m, s in zip(TRUE_WEIGHTS, TRUE_MEANS, TRUE_SCALES, strict=True)
    )


@pytest.fixture(scope="module")
def nuts_fit():
    X, labels = one_dimensional()
    model = MCMCGaussianMixture(
        n_components=2, num_samples=200, warmup_steps=200, num_chains=2, random_state=0
    ).fit(X)
    return model, X, labels


def within_posterior(samples, truth, width=4.0):
    mean, sd = samples.mean(0), samples.std(0)
    return np.abs(mean - truth) <= width * sd


# -- the model ---------------------------------------------------------------------------
def test_log_likelihood_matches_scipy_brute_force():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(7, 3))
    weights = rng.dirichlet(np.ones(4), size=5)  # 5 draws
    locs = rng.normal(size=(5, 4, 3))
    scales = rng.uniform(0.3, 2.0, size=(5, 4, 3))
    ours = log_likelihood(*(torch.from_numpy(a) for a in (X, weights, locs, scales)))
    assert ours.shape == (5, 7)
    expected = np.empty((5, 7))
    for s in range(5):
        for i in range(7):
            density = sum(
                weights[s, k] * np.prod(stats.norm.pdf(X[i], locs[s, k], scales[s, k]))
                for k in range(4)
            )
            expected[s, i] = np.log(density)
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


def test_relabel_undoes_label_switching_when_a_coordinate_is_shared():
    # components 0 and 1 share their first coordinate: ordering on it would mix them
    rng = np.random.default_rng(2)
    base_locs = np.array([[0.0, 0.0], [0.0, 5.0], [4.0, 4.0]])
    base_weights = np.array([0.2, 0.3, 0.5])
    base_scales = np.array([[0.5, 0.6], [0.7, 0.8], [0.9, 1.0]])
    n_draws = 300
    perms = np.stack([rng.permutation(3) for _ in range(n_draws)])
    locs = base_locs[perms] + rng.normal(0, 0.1, size=(n_draws, 3, 2))
    samples = {
        "weights": torch.from_numpy(base_weights[perms]),
        "locs": torch.from_numpy(locs),
        "scales": torch.from_numpy(base_scales[perms]),
    }
    result = relabel(samples)
    # one labelling for all draws: the same permutation of the base components everywhere
    labelling = np.array([int(np.flatnonzero(base_weights == w)[0]) for w in result["weights"][0]])
    assert sorted(labelling) == [0, 1, 2]
    assert np.abs(result["locs"].numpy() - base_locs[labelling]).max() < 0.6
    expected_weights = np.tile(base_weights[labelling], (n_draws, 1))
    np.testing.assert_array_equal(result["weights"].numpy(), expected_weights)
    expected_scales = np.tile(base_scales[labelling], (n_draws, 1, 1))
    np.testing.assert_array_equal(result["scales"].numpy(), expected_scales)
    # lexicographic order of the means, up to the tie in the first coordinate
    assert labelling[2] == 2
    # batch dimensions (chains, draws) are kept and aligned to one labelling
    batched = relabel(
        {name: value.reshape(3, 100, *value.shape[1:]) for name, value in samples.items()}
    )
    np.testing.assert_array_equal(batched["weights"].numpy().reshape(-1, 3), result["weights"])


def test_default_prior_is_scaled_to_the_data():
    X = torch.tensor([[0.0, 100.0], [2.0, 300.0], [4.0, 500.0]], dtype=torch.float64)
    prior = make_prior(X)
    np.testing.assert_allclose(prior.mean_loc, [2.0, 300.0])
    np.testing.assert_allclose(prior.mean_scale, [4.0, 400.0])
    np.testing.assert_allclose(prior.scale_scale, [2.0, 200.0])
    given = make_prior(X, mean_prior=0.0, scale_prior=[1.0, 2.0], scale_family="lognormal")
    np.testing.assert_allclose(given.mean_loc, [0.0, 0.0])
    np.testing.assert_allclose(torch.exp(given.scale_distribution().loc), [1.0, 2.0])
    with pytest.raises(ValueError, match="scale_prior"):
        make_prior(X, scale_prior=-1.0)
    with pytest.raises(ValueError, match="scale_family"):
        make_prior(X, scale_family="gamma")
    with pytest.raises(ValueError, match="weight_concentration_prior"):
        make_prior(X, weight_concentration=0.0)


# -- SVI ---------------------------------------------------------------------------------
def test_svi_map_recovers_the_maximum_likelihood_fit():
    X, labels = one_dimensional()
    model = SVIGaussianMixture(2, guide="map", num_steps=400, num_restarts=2, random_state=0).fit(X)
    reference = SkGaussianMixture(2, covariance_type="diag", random_state=0).fit(X)
    order = np.argsort(reference.means_[:, 0])
    # weak, data-scaled priors: MAP is close to maximum likelihood
    np.testing.assert_allclose(model.means_[:, 0], reference.means_[order, 0], atol=0.05)
    np.testing.assert_allclose(model.weights_, reference.weights_[order], atol=0.02)
    np.testing.assert_allclose(model.covariances_[:, 0], reference.covariances_[order, 0], rtol=0.1)
    np.testing.assert_allclose(model.means_[:, 0], TRUE_MEANS, atol=0.2)
    assert len(model.elbo_histories_) == 2
    assert len(model.elbo_history_) == 400
    assert model.elbo_history_[-1] > model.elbo_history_[0]
    finals = [np.mean(h[-50:]) for h in model.elbo_histories_]
    assert model.elbo_ == pytest.approx(max(finals))
    assert (model.predict(X) == labels).mean() > 0.97


def test_svi_mean_field_covers_the_truth():
    X, _ = one_dimensional(seed=1)
    model = SVIGaussianMixture(
        2, guide="mean_field", num_steps=500, num_restarts=1, random_state=1, num_samples=400
    ).fit(X)
    samples = model.posterior_samples_
    assert samples["locs"].shape == (400, 2, 1)
    assert np.all(samples["locs"].std(0) > 0)
    assert within_posterior(samples["locs"][:, :, 0], TRUE_MEANS).all()
    assert within_posterior(samples["weights"], TRUE_WEIGHTS).all()
    assert within_posterior(samples["scales"][:, :, 0], TRUE_SCALES, width=5.0).all()


def test_svi_tensor_in_tensor_out():
    X, _ = one_dimensional(n=100)
    model = SVIGaussianMixture(2, num_steps=100, num_restarts=1, random_state=0)
    model.fit(torch.from_numpy(X))
    assert isinstance(model.means_, torch.Tensor)
    proba = model.predict_proba(torch.from_numpy(X))
    assert isinstance(proba, torch.Tensor)
    torch.testing.assert_close(proba.sum(1), torch.ones(100, dtype=torch.float64))
    samples, components = model.sample(10)
    assert samples.shape == (10, 1) and components.shape == (10,)


def test_fitting_leaves_the_global_generator_alone():
    X, _ = one_dimensional(n=60)
    state = torch.get_rng_state()
    SVIGaussianMixture(2, num_steps=20, num_restarts=1, random_state=0).fit(X)
    assert torch.equal(state, torch.get_rng_state())


def test_svi_same_seed_same_fit():
    X, _ = one_dimensional(n=80)
    first = SVIGaussianMixture(2, num_steps=50, num_restarts=1, random_state=3).fit(X)
    second = SVIGaussianMixture(2, num_steps=50, num_restarts=1, random_state=3).fit(X)
    np.testing.assert_array_equal(first.means_, second.means_)


# -- NUTS --------------------------------------------------------------------------------
def test_nuts_diagnostics_are_good_on_a_separated_problem(nuts_fit):
    model, _, _ = nuts_fit
    for name in ("weights", "locs", "scales"):
        assert np.all(model.r_hat_[name] < 1.05), (name, model.r_hat_[name])
        assert np.all(model.ess_[name] > 50), (name, model.ess_[name])
    assert model.posterior_samples_["locs"].shape == (400, 2, 1)
    assert model.r_hat_["locs"].shape == (2, 1)


def test_nuts_recovers_the_true_parameters(nuts_fit):
    model, X, labels = nuts_fit
    samples = model.posterior_samples_
    assert within_posterior(samples["locs"][:, :, 0], TRUE_MEANS).all()
    assert within_posterior(samples["weights"], TRUE_WEIGHTS).all()
    assert within_posterior(samples["scales"][:, :, 0], TRUE_SCALES).all()
    np.testing.assert_allclose(model.means_[:, 0], samples["locs"].mean(0)[:, 0])
    np.testing.assert_allclose(model.covariances_, (samples["scales"] ** 2).mean(0))
    assert model.weights_.sum() == pytest.approx(1.0)
    assert (model.predict(X) == labels).mean() > 0.97


def test_nuts_posterior_predictive_density(nuts_fit):
    model, _, _ = nuts_fit
    grid = np.linspace(-6, 6, 241)[:, None]
    mean, lower, upper = model.predictive_density(grid, quantiles=(0.05, 0.95))
    # A mean always lies between the smallest and largest draw; it lies inside the 90% band
    # where the posterior is concentrated (in the far tails one draw can dominate it).
    _, lowest, highest = model.predictive_density(grid, quantiles=(0.0, 1.0))
    assert np.all(lowest <= mean * (1 + 1e-12)) and np.all(mean <= highest * (1 + 1e-12))
    data_range = np.abs(grid[:, 0]) <= 3
    assert np.all(lower[data_range] <= mean[data_range])
    assert np.all(mean[data_range] <= upper[data_range])
    assert np.all(upper - lower > 0)
    np.testing.assert_allclose(np.trapezoid(mean, grid[:, 0]), 1.0, atol=1e-3)
    assert np.max(np.abs(mean - true_density(grid[:, 0]))) < 0.06
    np.testing.assert_allclose(np.exp(model.score_samples(grid)), mean, rtol=1e-10)
    draws = model.posterior_samples_
    x = grid[100:101]
    per_draw = np.array(
        [
            sum(w[k] * stats.norm.pdf(x[0, 0], m[k, 0], s[k, 0]) for k in range(2))
            for w, m, s in zip(draws["weights"], draws["locs"], draws["scales"], strict=True)
        ]
    )
    assert mean[100] == pytest.approx(per_draw.mean(), rel=1e-10)
    assert lower[100] == pytest.approx(np.quantile(per_draw, 0.05), rel=1e-10)
    with pytest.raises(ValueError, match="quantiles"):
        model.predictive_density(grid, quantiles=(0.9, 0.1))


# -- interface and errors ----------------------------------------------------------------
def test_lazy_attributes_on_the_package():
    assert mixtorch.SVIGaussianMixture is SVIGaussianMixture
    assert mixtorch.MCMCGaussianMixture is MCMCGaussianMixture
    with pytest.raises(AttributeError):
        mixtorch.NoSuchThing  # noqa: B018


def test_import_mixtorch_works_without_pyro():
    code = (
        "import sys; sys.modules['pyro'] = None\n"
        "import mixtorch\n"
        "assert mixtorch.BayesianGaussianMixture\n"
        "try:\n"
        "    mixtorch.SVIGaussianMixture\n"
        "except ImportError as error:\n"
        "    assert 'pyro' in str(error).lower(), error\n"
        "else:\n"
        "    raise SystemExit('no ImportError')\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


@pytest.mark.parametrize(
    ("estimator", "message"),
    [
        (SVIGaussianMixture(2, guide="laplace"), "guide"),
        (SVIGaussianMixture(2, num_steps=0), "num_steps"),
        (SVIGaussianMixture(2, learning_rate=-1.0), "learning_rate"),
        (SVIGaussianMixture(0), "n_components"),
        (SVIGaussianMixture(2, scale_family="gamma"), "scale_family"),
        (MCMCGaussianMixture(2, num_chains=0), "num_chains"),
        (MCMCGaussianMixture(2, target_accept_prob=1.5), "target_accept_prob"),
        (MCMCGaussianMixture(500), "n_samples >= n_components"),
    ],
)
def test_bad_parameters_raise(estimator, message):
    X, _ = one_dimensional(n=50)
    with pytest.raises(ValueError, match=message):
        estimator.fit(X)


def test_unfitted_and_bad_input():
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        SVIGaussianMixture(2).score_samples(np.zeros((3, 1)))
    with pytest.raises(ValueError, match="NaN"):
        SVIGaussianMixture(2).fit(np.array([[0.0], [np.nan], [1.0]]))

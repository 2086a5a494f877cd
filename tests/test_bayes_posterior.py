"""Posterior summaries of the Pyro mixtures: assignment probabilities averaged over draws,
ArviZ export, chains run in parallel, the device option and the predictive band plot."""

from __future__ import annotations

import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy import stats  # noqa: E402

pytest.importorskip("pyro")
arviz = pytest.importorskip("arviz")

from mixtorch.bayes import (  # noqa: E402
    MCMCGaussianMixture,
    SVIGaussianMixture,
    plot_posterior_predictive,
)
from mixtorch.bayes._arviz import inference_data  # noqa: E402


def overlapping(n=60, seed=0):
    """Two 2-D clusters close enough that many points are ambiguous."""
    rng = np.random.default_rng(seed)
    cov = np.array([[1.0, 0.5], [0.5, 1.0]])
    return np.concatenate(
        [rng.multivariate_normal([0, 0], cov, n), rng.multivariate_normal([2.5, 1], cov, n)]
    )


def one_dimensional(seed=0):
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-2, 0.6, 60), rng.normal(1.5, 0.8, 60)])[:, None]


@pytest.fixture(scope="module")
def two_chains():
    """Two NUTS chains in worker processes (the same as one after another: see below)."""
    X = one_dimensional()
    options = dict(num_samples=40, warmup_steps=40, num_chains=2, jit_compile=False, random_state=1)
    parallel = MCMCGaussianMixture(2, chain_method="parallel", **options).fit(X)
    return parallel, X, options


# -- predict_proba averaged over draws ---------------------------------------------------
def brute_force_proba(X, samples, full):
    """mean over draws of w_k N(x | theta_k) / sum_j w_j N(x | theta_j), with SciPy."""
    total = np.zeros((X.shape[0], samples["weights"].shape[1]))
    for s in range(samples["weights"].shape[0]):
        if full:
            factor = samples["scales"][s][:, :, None] * samples["corr_cholesky"][s]
            covariances = factor @ factor.transpose(0, 2, 1)
        else:
            covariances = [np.diag(scale**2) for scale in samples["scales"][s]]
        joint = np.stack(
            [
                samples["weights"][s, k]
                * stats.multivariate_normal(samples["locs"][s, k], covariances[k]).pdf(X)
                for k in range(samples["weights"].shape[1])
            ],
            axis=1,
        )
        total += joint / joint.sum(1, keepdims=True)
    return total / samples["weights"].shape[0]


@pytest.mark.parametrize("covariance_type", ["diag", "full"])
def test_svi_predict_proba_averages_over_guide_draws(covariance_type):
    X = overlapping()
    model = SVIGaussianMixture(
        2,
        covariance_type=covariance_type,
        guide="mean_field",
        num_steps=150,
        num_restarts=1,
        num_samples=30,
        random_state=0,
    ).fit(X)
    samples = model.posterior_samples_
    assert samples["locs"].shape == (30, 2, 2)
    assert np.all(samples["locs"].std(0) > 0)  # the draws differ: a real average
    expected = brute_force_proba(X, samples, covariance_type == "full")
    proba = model.predict_proba(X)
    np.testing.assert_allclose(proba, expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X), expected.argmax(1))
    # the average differs from the responsibilities of the posterior-mean mixture
    assert np.abs(proba - model.mixture_.responsibilities(torch.as_tensor(X)).numpy()).max() > 1e-4


def test_mcmc_predict_proba_averages_over_all_chains(two_chains):
    model, X, _ = two_chains
    samples = model.posterior_samples_
    assert samples["weights"].shape == (80, 2)
    expected = brute_force_proba(X, samples, full=False)
    np.testing.assert_allclose(model.predict_proba(X), expected, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X), expected.argmax(1))


# -- chains ------------------------------------------------------------------------------
def test_parallel_chains_give_the_sequential_draws(two_chains):
    parallel, X, options = two_chains
    sequential = MCMCGaussianMixture(2, chain_method="sequential", **options).fit(X)
    for name, value in sequential.posterior_samples_.items():
        np.testing.assert_array_equal(parallel.posterior_samples_[name], value)
    np.testing.assert_array_equal(parallel.r_hat_["locs"], sequential.r_hat_["locs"])


def split_r_hat(draws):
    """Gelman et al.'s split r-hat (BDA3, 11.4) of (chains, draws) values, by hand."""
    half = draws.shape[1] // 2
    halves = np.concatenate([draws[:, :half], draws[:, draws.shape[1] - half :]])
    within = halves.var(1, ddof=1).mean()
    between = halves.mean(1).var(ddof=1)
    return np.sqrt(((half - 1) / half * within + between) / within)


def test_to_arviz_of_two_chains(two_chains):
    model, X, _ = two_chains
    data = model.to_arviz(X)
    assert isinstance(data, arviz.InferenceData)
    posterior = data.posterior
    assert dict(posterior.sizes) == {"chain": 2, "draw": 40, "component": 2, "feature": 1}
    assert set(posterior.data_vars) == {"weights", "locs", "scales"}
    # chain c holds the draws kept for chain c (chains one after another)
    np.testing.assert_array_equal(
        posterior["locs"].values.reshape(80, 2, 1), model.posterior_samples_["locs"]
    )
    # r_hat_ compares the two chains: the split r-hat of the exported chains, by hand
    for k in range(2):
        by_hand = split_r_hat(posterior["locs"].values[:, :, k, 0])
        assert model.r_hat_["locs"][k, 0] == pytest.approx(by_hand, rel=1e-8)
    assert np.all(np.isfinite(arviz.rhat(data)["locs"].values))
    # sample_stats: divergences and the log joint density of each draw
    assert data.sample_stats["diverging"].dtype == bool
    assert int(data.sample_stats["diverging"].values.sum()) == model.divergences_
    pointwise = data.log_likelihood["obs"].values
    assert pointwise.shape == (2, 40, X.shape[0])
    weights, locs, scales = (posterior[name].values for name in ("weights", "locs", "scales"))
    density = (weights[..., None] * stats.norm.pdf(X[:, 0], locs, scales)).sum(2)
    np.testing.assert_allclose(pointwise, np.log(density), rtol=1e-10)
    # lp = log prior + log-likelihood; the default prior (data-scaled) by hand with SciPy
    mean, std = X[:, 0].mean(), X[:, 0].std(ddof=1)
    log_prior = (
        np.array([stats.dirichlet.logpdf(w, [1.0, 1.0]) for w in weights.reshape(-1, 2)])
        + stats.norm.logpdf(locs, mean, 2 * std).sum((2, 3)).reshape(-1)
        + stats.halfcauchy.logpdf(scales, scale=std).sum((2, 3)).reshape(-1)
    )
    np.testing.assert_allclose(
        data.sample_stats["lp"].values.reshape(-1), log_prior + pointwise.sum(-1).reshape(-1),
        rtol=1e-10,
    )  # fmt: skip
    # ArviZ reads the pointwise log-likelihood: its in-sample lppd is ours
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # few draws: Pareto k warnings
        loo = arviz.loo(data)
    lppd = np.sum(np.log(np.exp(pointwise).reshape(80, -1).mean(0)))
    assert loo.elpd_loo + loo.p_loo == pytest.approx(lppd, rel=1e-8)


def test_svi_to_arviz_is_one_chain_of_guide_draws():
    X = overlapping(30)
    model = SVIGaussianMixture(
        2, covariance_type="full", guide="mean_field", num_steps=60, num_restarts=1,
        num_samples=25, random_state=0,
    ).fit(X)  # fmt: skip
    data = model.to_arviz()
    assert dict(data.posterior.sizes) == {
        "chain": 1, "draw": 25, "component": 2, "feature": 2, "feature_bis": 2,
    }  # fmt: skip
    np.testing.assert_array_equal(
        data.posterior["corr_cholesky"].values[0], model.posterior_samples_["corr_cholesky"]
    )
    assert "log_likelihood" not in data.groups()
    assert data.sample_stats["lp"].shape == (1, 25)


def test_missing_arviz_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "arviz", None)
    chains = {"weights": torch.full((1, 2, 2), 0.5), "locs": torch.zeros(1, 2, 2, 1)}
    with pytest.raises(ImportError, match=r"pip install 'mixtorch\[bayes\]'"):
        inference_data(chains, {})


# -- device ------------------------------------------------------------------------------
@pytest.mark.parametrize("estimator", [SVIGaussianMixture, MCMCGaussianMixture])
def test_device_is_checked_before_any_work(estimator):
    X = one_dimensional()
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match=r"device='cuda' is not available.*available: cpu"):
            estimator(2, device="cuda").fit(X)
    with pytest.raises(ValueError, match="device='tpu:9'"):
        estimator(2, device="tpu:9").fit(X)
    with pytest.raises(TypeError, match="device must be"):
        estimator(2, device=1.5).fit(X)


def test_device_cpu_gives_numpy_results():
    model = SVIGaussianMixture(2, num_steps=30, num_restarts=1, device="cpu", random_state=0)
    model.fit(one_dimensional())
    assert model.mixture_.device.type == "cpu" and isinstance(model.means_, np.ndarray)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_fits_on_cuda_match_cpu():
    X = one_dimensional()
    options = dict(num_steps=100, num_restarts=1, random_state=0, covariance_type="full")
    on_gpu = SVIGaussianMixture(2, device="cuda", **options).fit(torch.as_tensor(X))
    on_cpu = SVIGaussianMixture(2, **options).fit(X)
    assert on_gpu.means_.device.type == "cuda"
    np.testing.assert_allclose(on_gpu.means_.cpu().numpy(), on_cpu.means_, atol=0.05)
    mcmc = MCMCGaussianMixture(
        2, num_samples=20, warmup_steps=20, num_chains=2, device="cuda", random_state=0
    ).fit(X)
    assert mcmc.to_arviz().posterior.sizes["chain"] == 2


# -- plot --------------------------------------------------------------------------------
def test_posterior_predictive_band_plot(two_chains):
    model, X, _ = two_chains
    ax = plot_posterior_predictive(model, X, quantiles=(0.1, 0.9), bins=15)
    assert len(ax.patches) == 15  # the histogram
    mean_line = ax.lines[0]
    grid, mean = mean_line.get_xdata(), mean_line.get_ydata()
    expected, lower, upper = model.predictive_density(grid[:, None], quantiles=(0.1, 0.9))
    np.testing.assert_allclose(mean, expected, rtol=1e-12)
    # the band is the polygon between the quantile curves, and contains the mean where
    # the data are
    band = ax.collections[0].get_paths()[0].vertices
    assert band[:, 1].min() == pytest.approx(lower.min()) and band[:, 1].max() == pytest.approx(
        upper.max()
    )
    inside = (grid > X.min()) & (grid < X.max())
    assert np.all((lower <= mean)[inside]) and np.all((mean <= upper)[inside])
    assert np.all(upper - lower >= 0) and np.any(upper - lower > 1e-3)
    assert [text.get_text() for text in ax.get_legend().get_texts()] == [
        "data",
        "80% band",
        "posterior mean density",
    ]
    with pytest.raises(ValueError, match="1-D model"):
        plot_posterior_predictive(
            SVIGaussianMixture(2, num_steps=5, num_restarts=1).fit(overlapping(10))
        )


def test_auto_chain_method_uses_processes_only_when_they_pay(monkeypatch):
    import mixtorch.bayes.mcmc as mcmc

    cpu, long_run = torch.device("cpu"), dict(num_chains=2, num_samples=500, warmup_steps=500)
    monkeypatch.setattr(mcmc, "usable_cpus", lambda: 4)
    assert MCMCGaussianMixture(2, **long_run)._parallel(cpu)
    assert not MCMCGaussianMixture(2, **{**long_run, "num_chains": 1})._parallel(cpu)
    assert not MCMCGaussianMixture(2, **{**long_run, "warmup_steps": 100})._parallel(cpu)
    assert not MCMCGaussianMixture(2, chain_method="sequential", **long_run)._parallel(cpu)
    assert not MCMCGaussianMixture(2, **long_run)._parallel(torch.device("meta"))
    monkeypatch.setattr(mcmc, "usable_cpus", lambda: 1)
    assert not MCMCGaussianMixture(2, **long_run)._parallel(cpu)
    assert MCMCGaussianMixture(2, chain_method="parallel", **long_run)._parallel(cpu)


def test_scoring_in_blocks_of_draws_and_rows_gives_the_same_results(monkeypatch):
    import mixtorch.bayes._posterior as posterior

    X = overlapping(50)
    model = SVIGaussianMixture(
        2, covariance_type="full", guide="mean_field", num_steps=20, num_restarts=1,
        num_samples=40, random_state=0,
    ).fit(X)  # fmt: skip
    whole = model.predict_proba(X), model.score_samples(X)
    monkeypatch.setattr(posterior, "_DRAWS_PER_BLOCK", 7)  # 6 blocks, the last of 5 draws
    monkeypatch.setattr(posterior, "_BLOCK_ELEMENTS", 7 * 2 * 2 * 9)  # rows in blocks of 9
    np.testing.assert_allclose(model.predict_proba(X), whole[0], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(model.score_samples(X), whole[1], rtol=1e-12)


def test_to_arviz_before_fit_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    from mixtorch.bayes import MCMCGaussianMixture, SVIGaussianMixture

    for model in (MCMCGaussianMixture(2), SVIGaussianMixture(2)):
        with pytest.raises(NotFittedError):
            model.to_arviz()

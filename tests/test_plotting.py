"""Plots run on real fitted models and draw what they promise."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from matplotlib.patches import Ellipse  # noqa: E402
from scipy.stats import norm  # noqa: E402

from conftest import make_modes_1d, make_separated_blocks  # noqa: E402
from mixtorch import Gaussian, GaussianKDE, GaussianMixture, select  # noqa: E402
from mixtorch.plotting import (  # noqa: E402
    plot_criterion,
    plot_density_1d,
    plot_loo_curve,
    plot_mcmc_traces,
    plot_mixture_2d,
    plot_samples_grid,
    plot_training_curve,
)


@pytest.fixture(scope="module")
def blobs_2d() -> np.ndarray:
    return make_separated_blocks([[0, 0], [5, 1], [1, 6]], 100, seed=1, scale=0.8)


def test_density_1d_curves_match_scipy(tmp_path, one_dimensional):
    X = one_dimensional
    model = GaussianMixture(2, random_state=0).fit(X)
    ax = plot_density_1d(model, X)
    lines = ax.get_lines()
    assert len(lines) == 3  # two weighted components and the mixture
    assert len(ax.patches) == 40  # histogram bars
    grid, density = lines[0].get_data()
    weights, means = model.weights_, model.means_.ravel()
    stds = np.sqrt(model.covariances_.ravel())
    expected = sum(w * norm.pdf(grid, m, s) for w, m, s in zip(weights, means, stds, strict=True))
    np.testing.assert_allclose(density, expected, rtol=1e-9)
    np.testing.assert_allclose(lines[1].get_ydata() + lines[2].get_ydata(), expected, rtol=1e-9)
    ax.figure.savefig(tmp_path / "density_1d.png")


def test_density_1d_single_gaussian_has_one_curve():
    X = np.random.default_rng(2).normal(size=(50, 1))
    ax = plot_density_1d(Gaussian().fit(X))
    assert len(ax.get_lines()) == 1


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
def test_mixture_2d_ellipses(blobs_2d, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0).fit(blobs_2d)
    ax = plot_mixture_2d(model, blobs_2d, n_std=1.0)
    ellipses = [patch for patch in ax.patches if isinstance(patch, Ellipse)]
    assert len(ellipses) == 3
    assert len(ax.collections) >= 2  # the scatter plus contour lines
    matrices = model.mixture_.covariance.full_matrices(3).numpy()
    for ellipse, mean, matrix in zip(ellipses, model.means_, matrices, strict=True):
        np.testing.assert_allclose(ellipse.center, mean)
        # 1-sigma ellipse axes are twice the square roots of the eigenvalues
        axes_lengths = sorted([ellipse.width, ellipse.height])
        np.testing.assert_allclose(axes_lengths, sorted(2 * np.sqrt(np.linalg.eigvalsh(matrix))))


def test_mixture_2d_from_tensor_fit_and_saved_picture(tmp_path, blobs_2d):
    model = GaussianMixture(3, random_state=0).fit(torch.as_tensor(blobs_2d))
    ax = plot_mixture_2d(model, torch.as_tensor(blobs_2d))
    colours = ax.collections[0].get_array()
    np.testing.assert_array_equal(np.asarray(colours), model.predict(torch.as_tensor(blobs_2d)))
    ax.figure.savefig(tmp_path / "mixture_2d.png")


def test_wrong_dimension_is_refused(blobs_2d):
    model = GaussianMixture(2, random_state=0).fit(blobs_2d)
    with pytest.raises(ValueError, match="1-D model"):
        plot_density_1d(model)
    with pytest.raises(ValueError, match="no fitted mixture_"):
        plot_mixture_2d(GaussianMixture(2))


def test_training_curve_from_estimator_and_values(blobs_2d):
    model = GaussianMixture(3, random_state=0, init_params="random", max_iter=200).fit(blobs_2d)
    ax = plot_training_curve(model)
    y = ax.get_lines()[0].get_ydata()
    np.testing.assert_array_equal(y, model.lower_bounds_)
    assert ax.get_ylabel() == "mean log-likelihood per sample"
    ax = plot_training_curve([3.0, 2.0, 1.5], label="NLL")
    assert ax.get_ylabel() == "NLL" and len(ax.get_lines()[0].get_xdata()) == 3
    with pytest.raises(ValueError, match="no training curve"):
        plot_training_curve(Gaussian().fit(blobs_2d))


def test_training_curve_of_a_gradient_fitted_gaussian(blobs_2d):
    model = Gaussian(algorithm="gradient", max_iter=2000).fit(blobs_2d)
    ax = plot_training_curve(model)
    x, y = ax.get_lines()[0].get_data()
    np.testing.assert_array_equal(y, model.history_.nll)
    np.testing.assert_array_equal(x, np.arange(1, model.n_iter_ + 1))
    assert ax.get_ylabel() == "negative log-likelihood per sample"
    # the last epoch's NLL is the closed-form optimum's (numpy, not mixtorch)
    mean, covariance = blobs_2d.mean(0), np.cov(blobs_2d.T, bias=True)
    diff = blobs_2d - mean
    nll = 0.5 * np.mean(np.sum(diff @ np.linalg.inv(covariance) * diff, 1))
    nll += 0.5 * np.log(np.linalg.det(2 * np.pi * covariance))
    assert y[-1] == pytest.approx(nll, abs=1e-3)


def test_criterion_plot_from_selection(tmp_path, blobs_2d):
    result = select(blobs_2d, range(1, 5), ("full", "diag"), random_state=0)
    ax = plot_criterion(result)
    lines = ax.get_lines()
    assert len(lines) == 3  # one per covariance type and the best marker
    best_x, best_y = lines[-1].get_data()
    assert best_x[0] == result.best_params_["n_components"]
    assert best_y[0] == result.best_score_
    ax.figure.savefig(tmp_path / "criterion.png")
    ax = plot_criterion(result.table, "bic")
    assert "bic" in ax.get_ylabel()


def test_loo_curve_marks_the_best_bandwidth():
    class FakeKDE:  # a stand-in for the KDE estimator: only loo_curve_ matters here
        loo_curve_ = (np.array([0.1, 0.3, 1.0, 3.0]), np.array([-5.0, -2.0, -2.5, -4.0]))

        def get_params(self):
            return {}

    ax = plot_loo_curve(FakeKDE())
    assert ax.get_lines()[-1].get_xdata()[0] == 0.3
    assert "factor" in ax.get_xlabel()
    assert ax.get_legend().get_texts()[0].get_text() == "best factor 0.3"
    ax = plot_loo_curve({"bandwidth": [1.0, 2.0], "loo": [-1.0, -3.0]})
    assert ax.get_lines()[-1].get_xdata()[0] == 1.0
    with pytest.raises(ValueError, match="equal"):
        plot_loo_curve(([1.0, 2.0], [1.0]))


def test_samples_grid_tiles_the_images(tmp_path):
    images = np.arange(5 * 12, dtype=float).reshape(5, 12)
    ax = plot_samples_grid(images, (3, 4), n_cols=3, value_range=(0.0, 60.0))
    (artist,) = ax.get_images()
    canvas = artist.get_array()
    assert canvas.shape == (2 * 4 + 1, 3 * 5 + 1)
    np.testing.assert_array_equal(canvas[1:4, 1:5], images[0].reshape(3, 4))
    np.testing.assert_array_equal(canvas[5:8, 6:10], images[4].reshape(3, 4))
    ax.figure.savefig(tmp_path / "grid.png")
    with pytest.raises(ValueError, match="shape"):
        plot_samples_grid(images, (8, 8))


def test_mcmc_traces_layout():
    rng = np.random.default_rng(0)
    samples = {"weights": rng.dirichlet([1, 1, 1], size=200), "scale": rng.gamma(2, size=200)}
    figure = plot_mcmc_traces(samples)
    assert len(figure.axes) == 4
    assert len(figure.axes[0].get_lines()) == 3  # one trace per weight
    chains = {"locs": torch.randn(2, 100, 2)}
    figure = plot_mcmc_traces(chains, group_by_chain=True)
    assert len(figure.axes[0].get_lines()) == 4  # 2 chains x 2 series
    lines = figure.axes[0].get_lines()
    assert lines[0].get_color() == lines[1].get_color() != lines[2].get_color()
    assert lines[0].get_linestyle() != lines[1].get_linestyle()
    figure = plot_mcmc_traces(samples)
    assert figure.axes[0].get_legend() is None  # one chain: colours tell series apart
    with pytest.raises(ValueError, match="no parameters"):
        plot_mcmc_traces({})


def test_loo_curve_of_a_real_kde():
    X = np.random.default_rng(3).normal(size=(80, 1))
    kde = GaussianKDE(bandwidth="loo").fit(X)
    ax = plot_loo_curve(kde)
    factors, values = kde.loo_curve_
    curve_x, curve_y = ax.get_lines()[0].get_data()
    np.testing.assert_array_equal(curve_y, np.asarray(values))
    best = ax.get_lines()[-1].get_xdata()[0]
    assert best == curve_x[int(np.argmax(curve_y))]
    # the grid's best factor is next to the chosen one (the search refines within the grid)
    assert abs(np.log(best / kde.factor_)) < np.log(curve_x[1] / curve_x[0]) + 1e-9
    # the x-axis is the factor, not the kernel standard deviation h = factor * std
    assert ax.get_xlabel().startswith("bandwidth factor")
    h = best * X.std(ddof=1)
    assert ax.get_legend().get_texts()[0].get_text() == f"best factor {best:.3g} (h = {h:.3g})"
    with pytest.raises(ValueError, match="no loo_curve_"):
        plot_loo_curve(Gaussian().fit(X))


def test_density_1d_of_a_kde_draws_no_component_curves():
    X = np.random.default_rng(4).normal(size=(60, 1))
    ax = plot_density_1d(GaussianKDE(bandwidth=0.3).fit(X), X)
    assert len(ax.get_lines()) == 1


def test_mcmc_traces_of_a_real_sampler(tmp_path):
    from mixtorch import MCMCGaussianMixture

    X = make_modes_1d([(-2, 0.5, 25), (2, 0.5, 25)], seed=0)
    model = MCMCGaussianMixture(
        n_components=2,
        num_samples=15,
        warmup_steps=15,
        num_chains=2,
        jit_compile=False,
        random_state=0,
    ).fit(X)
    figure = plot_mcmc_traces(model)
    assert len(figure.axes) == 6  # weights, locs, scales: trace and density each
    trace_ax = figure.axes[0]
    assert len(trace_ax.get_lines()) == 2 * 2  # 2 chains x 2 weights
    first_chain = model.posterior_samples_["weights"][:15, 0]
    np.testing.assert_array_equal(trace_ax.get_lines()[0].get_ydata(), first_chain)
    second_chain = model.posterior_samples_["weights"][15:, 0]
    np.testing.assert_array_equal(trace_ax.get_lines()[2].get_ydata(), second_chain)
    # chains are told apart: one colour per chain, and a legend naming them
    colours = [line.get_color() for line in trace_ax.get_lines()]
    assert colours[0] == colours[1] != colours[2] == colours[3]
    assert [text.get_text() for text in trace_ax.get_legend().get_texts()] == [
        "chain 0",
        "chain 1",
    ]
    assert len(figure.axes[1].patches) == 2 * 2  # a density per chain and weight
    figure.savefig(tmp_path / "mcmc.png")


def test_training_curve_of_variational_bayes():
    from mixtorch import BayesianGaussianMixture

    X = np.random.default_rng(5).normal(size=(120, 2))
    model = BayesianGaussianMixture(n_components=3, random_state=0, max_iter=300).fit(X)
    ax = plot_training_curve(model)
    assert ax.get_ylabel() == "ELBO (total over samples, scikit-learn's lower bound)"
    np.testing.assert_array_equal(ax.get_lines()[0].get_ydata(), model.lower_bounds_)
    # a total: the same data four times over gives (nearly) four times the bound
    bigger = BayesianGaussianMixture(n_components=3, random_state=0, max_iter=300)
    ratio = bigger.fit(np.vstack([X] * 4)).lower_bound_ / model.lower_bound_
    assert 3.0 < ratio < 4.5


def test_mixture_2d_of_a_kde_draws_contours_only(tmp_path, blobs_2d):
    ax = plot_mixture_2d(GaussianKDE().fit(blobs_2d), blobs_2d)
    assert not [patch for patch in ax.patches if isinstance(patch, Ellipse)]
    assert len(ax.collections) >= 2
    ax.figure.savefig(tmp_path / "kde_2d.png")


def test_criterion_ticks_are_the_k_values_tried_and_grid_tiles_carry_labels():
    from mixtorch.plotting import plot_criterion, plot_samples_grid

    table = [
        {"n_components": k, "covariance_type": "full", "bic": float(b)}
        for k, b in ((1, 10.0), (2, 8.0), (4, 7.0), (8, 9.0))
    ]
    ax = plot_criterion(table)
    assert list(ax.get_xticks()) == [1, 2, 4, 8]
    images = np.zeros((6, 64))
    ax = plot_samples_grid(images, (8, 8), n_cols=3, labels=[0, 0, 1, 1, 2, 2])
    assert [text.get_text() for text in ax.texts] == ["0", "0", "1", "1", "2", "2"]
    with pytest.raises(ValueError, match="labels must have 6 entries"):
        plot_samples_grid(images, (8, 8), labels=[0, 1])

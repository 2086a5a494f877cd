"""Outside probe of mixtorch.plotting and the SciPy-style surfaces (Gaussian as
``scipy.stats.multivariate_normal``, GaussianKDE as ``scipy.stats.gaussian_kde``), as a
careless or SciPy/matplotlib-habituated user would call them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from scipy import stats

from mixtorch import (
    BayesianGaussianMixture,
    Gaussian,
    GaussianKDE,
    GaussianMixture,
    GaussianMixtureImputer,
    GaussianMixtureRegressor,
)

plt = pytest.importorskip("matplotlib.pyplot")
plotting = pytest.importorskip("mixtorch.plotting")
pd = pytest.importorskip("pandas")

RNG = np.random.default_rng(0)
X1 = RNG.normal(size=(150, 1))
X2 = RNG.normal([1.0, -2.0], [1.0, 0.5], size=(300, 2))


def _models():
    return [
        Gaussian(),
        GaussianMixture(2, random_state=0),
        BayesianGaussianMixture(n_components=2, random_state=0),
        GaussianKDE(bandwidth="scott"),
    ]


def _fit(model, X):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return model.fit(X)


def _open_figures() -> int:
    return len(plt.get_fignums())


# -- plotting: every estimator kind, data kinds -----------------------------------------
@pytest.mark.parametrize("index", range(4))
def test_unfitted_models_are_not_fitted_errors_without_figures(index):
    model = _models()[index]
    for plot, X in ((plotting.plot_density_1d, X1), (plotting.plot_mixture_2d, X2)):
        with pytest.raises(ValueError, match="fit it before plotting"):
            plot(model, X)
    assert _open_figures() == 0


@pytest.mark.parametrize("index", range(4))
def test_density_1d_data_kinds_match_the_model_density(index):
    model = _fit(_models()[index], X1)
    for data in (X1, X1.ravel().tolist(), torch.tensor(X1), pd.DataFrame(X1), pd.Series(X1[:, 0])):
        ax = plotting.plot_density_1d(model, data)
        grid = ax.lines[0].get_xdata()
        # the model's density; for variational Bayes its mean-parameter mixture (its
        # score_samples is scikit-learn's expected-log form, not a normalised density)
        points = torch.as_tensor(grid[:, None], dtype=model.mixture_.dtype)
        expected = model.mixture_.log_prob(points).exp().numpy()
        if not isinstance(model, BayesianGaussianMixture):
            np.testing.assert_allclose(expected, np.exp(model.score_samples(grid[:, None])))
        np.testing.assert_allclose(ax.lines[0].get_ydata(), expected, rtol=1e-6)
        # the histogram holds every row: its bars integrate to one
        heights = np.array([p.get_height() for p in ax.patches])
        widths = np.array([p.get_width() for p in ax.patches])
        assert np.isclose((heights * widths).sum(), 1.0)
        plt.close("all")


@pytest.mark.parametrize("index", range(4))
def test_mixture_2d_scatters_every_row_of_each_data_kind(index):
    model = _fit(_models()[index], X2)
    for data in (X2, X2.tolist(), torch.tensor(X2), pd.DataFrame(X2, columns=["a", "b"])):
        ax = plotting.plot_mixture_2d(model, data)
        np.testing.assert_array_equal(ax.collections[0].get_offsets(), X2)
        plt.close("all")


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_rows_are_refused_not_dropped(bad):
    g1, g2 = Gaussian().fit(X1), Gaussian().fit(X2)
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        plotting.plot_density_1d(g1, np.r_[X1, [[bad]]])
    with pytest.raises(ValueError, match="X contains NaN or infinity"):
        plotting.plot_mixture_2d(g2, np.r_[X2, [[bad, 0.0]]])
    assert _open_figures() == 0


def test_wrong_dimensions_name_the_expected_shape():
    g2, g5 = Gaussian().fit(X2), Gaussian().fit(RNG.normal(size=(50, 5)))
    with pytest.raises(ValueError, match=r"needs a 1-D model, got one with 2 features"):
        plotting.plot_density_1d(g2, X2)
    with pytest.raises(ValueError, match=r"needs a 2-D model, got one with 5 features"):
        plotting.plot_mixture_2d(g5)
    with pytest.raises(ValueError, match=r"X must have shape \(n_samples, 2\)"):
        plotting.plot_mixture_2d(g2, X2[:, :1])
    assert _open_figures() == 0


def test_given_axes_is_drawn_on_and_no_figure_is_added():
    fig, ax = plt.subplots()
    assert plotting.plot_mixture_2d(Gaussian().fit(X2), X2, ax=ax) is ax
    assert plotting.plot_density_1d(Gaussian().fit(X1), X1, ax=ax) is ax
    assert plt.get_fignums() == [fig.number]


@pytest.mark.parametrize("wrong", ["pyplot", "figure"])
def test_pyplot_module_or_figure_as_ax_is_a_type_error_pointing_to_gca(wrong):
    """``ax=plt`` has a ``plot`` attribute: it drew on a new figure, then failed with an
    AttributeError ('pyplot has no attribute set_xlabel') and left that figure open."""
    ax = plt if wrong == "pyplot" else plt.figure()
    before = _open_figures()
    for call in (
        lambda: plotting.plot_density_1d(Gaussian().fit(X1), X1, ax=ax),
        lambda: plotting.plot_mixture_2d(Gaussian().fit(X2), X2, ax=ax),
        lambda: plotting.plot_training_curve([1.0, 2.0], ax=ax),
    ):
        with pytest.raises(TypeError, match=r"ax must be a matplotlib Axes.*gca"):
            call()
    assert _open_figures() == before


def test_bad_bins_rule_is_a_value_error_before_a_figure_opens():
    g = Gaussian().fit(X1)
    with pytest.raises(ValueError, match="bins must be an integer, a NumPy rule name"):
        plotting.plot_density_1d(g, X1, bins="nonsense")
    with pytest.raises(ValueError, match="increasing bin edges"):
        plotting.plot_density_1d(g, X1, bins=[1.0, 0.0, 2.0])
    assert _open_figures() == 0
    ax = plotting.plot_density_1d(g, X1, bins="auto")
    assert len(ax.patches) == len(np.histogram_bin_edges(X1, "auto")) - 1


@pytest.mark.parametrize("kind", [GaussianMixtureImputer, GaussianMixtureRegressor])
def test_imputer_and_regressor_plot_their_joint_model(kind):
    """A fitted imputer or regressor was told it 'has no fitted mixture_; fit it'."""
    model = kind(n_components=2, random_state=0)
    with pytest.raises(ValueError, match="fit it before plotting"):
        plotting.plot_mixture_2d(model, X2)
    if kind is GaussianMixtureRegressor:
        model.fit(X2[:, :1], X2[:, 1])
    else:
        model.fit(X2)
    joint = model.mixture_model_
    ax = plotting.plot_mixture_2d(model, X2)
    assert len(ax.patches) == 2
    np.testing.assert_allclose([p.center for p in ax.patches], joint.means_, rtol=1e-6, atol=1e-9)
    curve = plotting.plot_training_curve(model)
    np.testing.assert_allclose(curve.lines[0].get_ydata(), joint.lower_bounds_)


def test_samples_grid_errors_leave_no_figure_and_bad_range_is_refused():
    images = RNG.uniform(0, 1, size=(4, 64))
    with pytest.raises(ValueError, match="labels must have 4 entries"):
        plotting.plot_samples_grid(images, labels=[1, 2])
    with pytest.raises(ValueError, match="cmap must be a matplotlib colour map"):
        plotting.plot_samples_grid(images, cmap="nosuch")
    for bad in [(np.nan, 1.0), (1.0, 0.0), "auto", (0.0, 1.0, 2.0)]:
        with pytest.raises(ValueError, match="value_range must be a"):
            plotting.plot_samples_grid(images, value_range=bad)
    assert _open_figures() == 0
    ax = plotting.plot_samples_grid(images.tolist(), value_range=[0.0, 2.0])
    assert ax.images[0].get_clim() == (0.0, 2.0)


def test_loo_curve_with_no_usable_values_is_a_clear_error_without_a_figure():
    with pytest.raises(ValueError, match="at least one log-likelihood that is not NaN"):
        plotting.plot_loo_curve(([0.1, 0.2, 0.3], [np.nan] * 3))
    with pytest.raises(ValueError, match="finite bandwidth factors"):
        plotting.plot_loo_curve(([np.nan, 0.2], [1.0, 2.0]))
    with pytest.raises(ValueError, match="bandwidths must be an array of numbers"):
        plotting.plot_loo_curve((["a", "b"], [1.0, 2.0]))
    assert _open_figures() == 0
    ax = plotting.plot_loo_curve(([0.1, 0.2, 0.3], [1.0, np.nan, 0.5]))
    assert ax.lines[1].get_xdata()[0] == 0.1  # the best finite point is marked


def test_mcmc_traces_refuse_nan_draws():
    with pytest.raises(ValueError, match=r"samples\['a'\] contains NaN"):
        plotting.plot_mcmc_traces({"a": [1.0, np.nan, 2.0]})
    assert _open_figures() == 0


# -- Gaussian vs scipy.stats.multivariate_normal ----------------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "diag", "spherical", "tied"])
def test_gaussian_densities_and_entropy_match_scipy(covariance_type):
    g = Gaussian(covariance_type=covariance_type).fit(X2)
    frozen = stats.multivariate_normal(g.mean, g.cov)
    points = RNG.normal(size=(4, 3, 2))
    ours = g.logpdf(points)
    assert ours.shape == (4, 3)
    np.testing.assert_allclose(ours, frozen.logpdf(points), rtol=1e-12)
    np.testing.assert_allclose(g.pdf(points), frozen.pdf(points), rtol=1e-12)
    assert g.entropy() == pytest.approx(frozen.entropy(), rel=1e-12)


@pytest.mark.parametrize(
    "x", [[0.0, 0.0], [[0.0, 0.0]], np.zeros((1, 1, 2)), [[0, 1], [2, 3]], np.zeros((0, 2))]
)
def test_gaussian_logpdf_shapes_and_scalars_follow_scipy(x):
    g = Gaussian().fit(X2)
    frozen = stats.multivariate_normal(g.mean, g.cov)
    ours, theirs = g.logpdf(x), frozen.logpdf(x)
    assert np.shape(ours) == np.shape(theirs)
    assert np.isscalar(ours) == np.isscalar(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=1e-12)


@pytest.mark.parametrize("x", [0.5, [0.5], [[0.5]], [-1.0, 0.0, 1.0], np.zeros((3, 1))])
def test_one_feature_gaussian_cdf_and_logpdf_follow_scipy(x):
    g = Gaussian().fit(X1)
    frozen = stats.multivariate_normal(g.mean, g.cov)
    for ours, theirs in ((g.logpdf(x), frozen.logpdf(x)), (g.cdf(x), frozen.cdf(x))):
        assert np.shape(ours) == np.shape(theirs)
        np.testing.assert_allclose(ours, theirs, rtol=1e-12)
    # the closed form of the interval, both orders
    z = (np.array([-1.0, 1.0]) - g.mean[0]) / np.sqrt(g.cov[0, 0])
    mass = stats.norm.cdf(z[1]) - stats.norm.cdf(z[0])
    assert g.cdf(1.0, lower_limit=-1.0) == pytest.approx(mass, rel=1e-12)
    assert g.cdf(-1.0, lower_limit=1.0) == pytest.approx(-mass, rel=1e-12)


def test_one_feature_logcdf_is_finite_where_scipy_underflows():
    g = Gaussian().fit(X1)
    z = (-40.0 - g.mean[0]) / np.sqrt(g.cov[0, 0])
    assert g.logcdf(-40.0) == pytest.approx(stats.norm.logcdf(z), rel=1e-12)


def test_two_feature_cdf_is_scipys_with_the_same_rng():
    g = Gaussian().fit(X2)
    frozen = stats.multivariate_normal(g.mean, g.cov)
    x = [[0.0, -2.0], [1.0, -1.5]]
    np.testing.assert_allclose(g.cdf(x, rng=0), frozen.cdf(x, rng=0), rtol=1e-12)
    assert g.cdf([np.inf, np.inf], rng=0) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="x contains NaN"):
        g.cdf([np.nan, 0.0])
    with pytest.raises(ValueError, match="lower_limit contains NaN"):
        g.cdf([0.0, 0.0], lower_limit=[np.nan, 0.0])


@pytest.mark.parametrize("bad", [[np.nan, 0.0], [np.inf, 0.0]])
def test_gaussian_logpdf_refuses_non_finite_points(bad):
    g = Gaussian().fit(X2)
    with pytest.raises(ValueError, match="Input X contains"):
        g.logpdf(bad)
    with pytest.raises(ValueError, match=r"x must have 2 values on its last axis"):
        g.logpdf([0.0, 0.0, 0.0])
    with pytest.raises(TypeError, match="x must be an array of numbers, got None"):
        g.logpdf(None)


def test_gaussian_rvs_shapes_and_random_state_follow_scipy():
    g, g1 = Gaussian().fit(X2), Gaussian().fit(X1)
    frozen = stats.multivariate_normal(g.mean, g.cov)
    frozen1 = stats.multivariate_normal(g1.mean, g1.cov)
    for size in (1, 5, (1,), (2, 1), (3, 4), 0):
        assert g.rvs(size, random_state=0).shape == frozen.rvs(size, random_state=0).shape
    assert np.isscalar(g1.rvs(random_state=0)) and np.isscalar(frozen1.rvs(random_state=0))
    assert g1.rvs(3, random_state=0).shape == (3,)
    for seed in (7, np.random.default_rng(7), np.random.RandomState(7)):
        draws = g.rvs(4000, random_state=seed)
        assert np.all(np.isfinite(draws))
        np.testing.assert_allclose(draws.mean(0), g.mean, atol=0.06)
    np.testing.assert_array_equal(g.rvs(5, random_state=3), g.rvs(5, random_state=3))
    with pytest.raises(ValueError, match="size must not be negative"):
        g.rvs(-1)
    with pytest.raises(TypeError, match="size must be an integer"):
        g.rvs(2.0)


def test_tensor_in_tensor_out_on_cpu():
    g = Gaussian().fit(X2)
    ours = g.logpdf(torch.zeros(3, 2, dtype=torch.float32))
    assert isinstance(ours, torch.Tensor) and ours.shape == (3,)
    expected = stats.multivariate_normal(g.mean, g.cov).logpdf(np.zeros((3, 2)))
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-12)


# -- GaussianKDE vs scipy.stats.gaussian_kde ---------------------------------------------
@pytest.mark.parametrize("bw_method", ["scott", "silverman"])
def test_kde_matches_scipy_evaluations_and_attributes(bw_method):
    kde = GaussianKDE(bandwidth=bw_method).fit(X2)
    theirs = stats.gaussian_kde(X2.T, bw_method=bw_method)
    points = RNG.normal(size=(2, 7))
    np.testing.assert_allclose(kde.logpdf(points), theirs.logpdf(points), rtol=1e-12)
    np.testing.assert_allclose(kde(points), theirs(points), rtol=1e-10)
    np.testing.assert_allclose(kde.pdf(points), theirs.pdf(points), rtol=1e-10)
    assert kde.factor == pytest.approx(theirs.factor, rel=1e-12)
    np.testing.assert_allclose(kde.covariance, theirs.covariance, rtol=1e-12)
    np.testing.assert_allclose(kde.inv_cov, theirs.inv_cov, rtol=1e-10)
    assert (kde.n, kde.d) == (theirs.n, theirs.d)
    assert kde.dataset.shape == theirs.dataset.shape


def test_kde_point_layouts_follow_scipy():
    kde, theirs = GaussianKDE(bandwidth="scott").fit(X2), stats.gaussian_kde(X2.T)
    kde1, theirs1 = GaussianKDE(bandwidth="scott").fit(X1), stats.gaussian_kde(X1.T)
    for ours, ref, points in (
        (kde, theirs, [0.5, -2.0]),
        (kde, theirs, np.eye(2)),
        (kde1, theirs1, 0.5),
        (kde1, theirs1, [0.0, 1.0, 2.0]),
    ):
        np.testing.assert_allclose(ours.evaluate(points), ref.evaluate(points), rtol=1e-10)
        assert ours.evaluate(points).shape == ref.evaluate(points).shape
    with pytest.raises(ValueError, match="points have dimension 5, dataset has dimension 2"):
        kde.evaluate(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="Input X contains NaN"):
        kde.logpdf([[np.nan], [0.0]])


def test_weighted_kde_matches_scipy():
    weights = RNG.uniform(0.1, 1.0, len(X2))
    kde = GaussianKDE(bandwidth="scott").fit(X2, sample_weight=weights)
    theirs = stats.gaussian_kde(X2.T, weights=weights)
    points = RNG.normal(size=(2, 5))
    np.testing.assert_allclose(kde.logpdf(points), theirs.logpdf(points), rtol=1e-12)
    assert kde.neff == pytest.approx(theirs.neff, rel=1e-12)
    np.testing.assert_allclose(kde.weights, theirs.weights, rtol=1e-12)


def test_kde_integrals_match_scipy():
    kde, theirs = GaussianKDE(bandwidth="scott").fit(X2), stats.gaussian_kde(X2.T)
    kde1, theirs1 = GaussianKDE(bandwidth="scott").fit(X1), stats.gaussian_kde(X1.T)
    assert kde1.integrate_box_1d(-1, 1) == pytest.approx(theirs1.integrate_box_1d(-1, 1))
    assert kde1.integrate_box_1d(1, -1) == pytest.approx(theirs1.integrate_box_1d(1, -1))
    assert kde1.integrate_box_1d(-np.inf, np.inf) == pytest.approx(1.0)
    assert kde.integrate_box([-1, -3], [1, -1], rng=0) == pytest.approx(
        theirs.integrate_box([-1, -3], [1, -1], rng=0), rel=1e-12
    )
    assert kde.integrate_gaussian([0, 0], np.eye(2)) == pytest.approx(
        theirs.integrate_gaussian([0, 0], np.eye(2)), rel=1e-12
    )
    assert kde.integrate_kde(kde) == pytest.approx(theirs.integrate_kde(theirs), rel=1e-12)
    with pytest.raises(ValueError, match="low is NaN"):
        kde1.integrate_box_1d(np.nan, 1.0)
    with pytest.raises(ValueError, match=r"only handles 1-D"):
        kde.integrate_box_1d(-1, 1)


def test_kde_resample_and_marginal_follow_scipy():
    kde, theirs = GaussianKDE(bandwidth="scott").fit(X2), stats.gaussian_kde(X2.T)
    assert kde.resample(3, seed=0).shape == theirs.resample(3, seed=0).shape
    # size=None draws int(neff) points; unweighted, neff is n (SciPy: 300 here, but 499
    # for 500 points, where its 1 / sum(w**2) rounds below 500), 299 before the fix
    for n in (300, 500, 1000):
        assert kde.fit(RNG.normal(size=(n, 2))).resample(seed=0).shape == (2, n)
    kde.fit(X2)
    np.testing.assert_array_equal(kde.resample(4, seed=1), kde.resample(4, seed=1))
    with pytest.raises(ValueError, match="size must be an integer >= 0"):
        kde.resample(-1)
    points = np.array([0.0, -2.0, 1.0])
    np.testing.assert_allclose(
        kde.marginal(1).logpdf(points), theirs.marginal(1).logpdf(points), rtol=1e-12
    )


@pytest.mark.parametrize("bw_method", [0.3, np.float64(0.3), "silverman", lambda k: 0.4])
def test_kde_set_bandwidth_matches_scipy(bw_method):
    kde, theirs = GaussianKDE(bandwidth="scott").fit(X2), stats.gaussian_kde(X2.T)
    kde.set_bandwidth(bw_method)
    theirs.set_bandwidth(bw_method)
    points = RNG.normal(size=(2, 5))
    assert kde.factor == pytest.approx(theirs.factor, rel=1e-12)
    np.testing.assert_allclose(kde.logpdf(points), theirs.logpdf(points), rtol=1e-12)


@pytest.mark.parametrize("bad", [True, np.bool_(False), np.nan, np.inf, -1.0, "scot"])
def test_kde_set_bandwidth_refuses_nonsense_and_keeps_the_kernel(bad):
    """``set_bandwidth(True)`` silently made the factor 1.0 (SciPy's isscalar accepts it)."""
    kde = GaussianKDE(bandwidth="scott").fit(X2)
    factor = kde.factor
    with pytest.raises(ValueError, match="bw_method|bandwidth factor must be a finite"):
        kde.set_bandwidth(bad)
    assert kde.factor == factor

"""A careless user's inputs to fitting: warm starts and ``partial_fit`` after
``set_params`` changed the model's shape, ``BayesianGaussianMixture``'s priors on a warm
start, one-pass iterators given as data, and the plotting functions' inputs. Each gets a
clear error naming the parameter and what to do (the estimator left as it was), not a
silently ignored setting or an error from inside NumPy."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from sklearn.exceptions import NotFittedError  # noqa: E402
from sklearn.mixture import BayesianGaussianMixture as SkBayesianGaussianMixture  # noqa: E402

from mixtorch import BayesianGaussianMixture, GaussianMixture  # noqa: E402
from mixtorch.plotting import (  # noqa: E402
    plot_criterion,
    plot_mcmc_traces,
    plot_samples_grid,
    plot_training_curve,
)
from mixtorch.sources import as_source, from_tensor, is_source  # noqa: E402


def _data(n: int = 80, d: int = 2, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-3, 1, (n // 2, d)), rng.normal(3, 1, (n - n // 2, d))])


# -- warm starts and partial_fit after set_params --------------------------------------
@pytest.mark.parametrize(("name", "value"), [("n_components", 3), ("covariance_type", "diag")])
@pytest.mark.parametrize("as_chunks", [False, True])
def test_warm_start_refuses_a_changed_shape_and_keeps_the_fit(name, value, as_chunks):
    X = _data()
    model = GaussianMixture(2, warm_start=True, max_iter=5, random_state=0).fit(X)
    weights, covariances = model.weights_.copy(), model.covariances_.copy()
    model.set_params(**{name: value})
    with pytest.raises(ValueError, match=rf"{name}=.*warm_start=False"):
        model.fit(from_tensor(X, 20) if as_chunks else X)
    np.testing.assert_array_equal(model.weights_, weights)
    np.testing.assert_array_equal(model.covariances_, covariances)
    model.set_params(warm_start=False)  # the advice works
    model.fit(X)
    assert model.weights_.shape == ((3,) if name == "n_components" else (2,))
    assert model.covariances_.shape == ((3, 2, 2) if name == "n_components" else (2, 2))


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_warm_start_with_the_same_shape_still_continues():
    X = _data()
    model = GaussianMixture(2, warm_start=True, max_iter=1, random_state=0).fit(X)
    model.set_params(max_iter=100, tol=1e-6)
    model.fit(X)  # unchanged n_components/covariance_type: no error
    assert model.weights_.shape == (2,)


@pytest.mark.parametrize(("name", "value"), [("n_components", 3), ("covariance_type", "tied")])
def test_partial_fit_refuses_a_changed_shape(name, value):
    X = _data()
    model = GaussianMixture(2, random_state=0).partial_fit(X)
    means, state = model.means_.copy(), model.stepwise_state_
    model.set_params(**{name: value})
    with pytest.raises(ValueError, match=rf"{name}=.*partial_fit.*clone"):
        model.partial_fit(X[:10])
    np.testing.assert_array_equal(model.means_, means)
    assert model.stepwise_state_ is state


def test_partial_fit_after_fit_with_the_same_shape_continues():
    X = _data()
    model = GaussianMixture(2, random_state=0).fit(X)
    model.partial_fit(X[:20])
    assert model.means_.shape == (2, 2) and np.isfinite(model.means_).all()


# -- BayesianGaussianMixture on a warm start --------------------------------------------
def test_bayesian_warm_start_refuses_a_changed_n_components():
    X = _data()
    model = BayesianGaussianMixture(n_components=2, warm_start=True, random_state=0).fit(X)
    weights = model.weights_.copy()
    model.set_params(n_components=3)
    with pytest.raises(ValueError, match=r"n_components=2.*warm_start=False"):
        model.fit(X)
    np.testing.assert_array_equal(model.weights_, weights)


def test_bayesian_warm_start_refuses_a_changed_weight_prior_type():
    X = _data()
    model = BayesianGaussianMixture(n_components=2, warm_start=True, random_state=0).fit(X)
    model.set_params(weight_concentration_prior_type="dirichlet_distribution")
    with pytest.raises(ValueError, match=r"weight_concentration_prior_type=.*warm_start=False"):
        model.fit(X)
    assert isinstance(model.weight_concentration_, tuple)  # still the process's pair


def test_bayesian_warm_start_uses_the_priors_set_since_as_scikit_learn():
    X = _data()
    ours = BayesianGaussianMixture(n_components=2, warm_start=True, random_state=0).fit(X)
    theirs = SkBayesianGaussianMixture(n_components=2, warm_start=True, random_state=0).fit(X)
    for model in (ours, theirs):
        model.set_params(mean_prior=[5.0, -5.0], mean_precision_prior=3.0)
        model.fit(X)
        np.testing.assert_allclose(model.mean_prior_, [5.0, -5.0])
        assert model.mean_precision_prior_ == 3.0
    # a prior of the wrong width is refused on a warm start too (it was ignored)
    ours.set_params(mean_prior=[0.0, 0.0, 0.0])
    with pytest.raises(ValueError, match=r"'mean_prior' should have the shape of \(2,\)"):
        ours.fit(X)
    np.testing.assert_allclose(ours.mean_prior_, [5.0, -5.0])


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")
def test_bayesian_warm_start_with_the_same_prior_continues():
    X = _data()
    model = BayesianGaussianMixture(n_components=2, max_iter=1, warm_start=True, random_state=0)
    model.fit(X)
    prior = model.mean_prior_.copy()
    model.set_params(max_iter=200)
    model.fit(X)
    np.testing.assert_array_equal(model.mean_prior_, prior)


def test_bayesian_mean_prior_shape_and_degrees_of_freedom_messages_name_the_parameter():
    X = _data()
    with pytest.raises(
        ValueError, match=r"'mean_prior' should have the shape of \(2,\).*means.*\(3,\)"
    ):
        BayesianGaussianMixture(n_components=2, mean_prior=[0.0, 0.0, 0.0]).fit(X)
    with pytest.raises(ValueError, match=r"greater than 1.*n_features - 1 = 1, or None"):
        BayesianGaussianMixture(n_components=2, degrees_of_freedom_prior=0.5).fit(X)


# -- one-pass iterators as data ---------------------------------------------------------
@pytest.mark.parametrize("make", [lambda X: iter([X]), lambda X: (c for c in [X[:40], X[40:]])])
def test_fit_refuses_a_one_pass_iterator_with_what_to_pass(make):
    X = _data()
    assert is_source(make(X))
    with pytest.raises(TypeError, match=r"one-pass iterator.*callable.*fresh iterator"):
        GaussianMixture(2).fit(make(X))
    with pytest.raises(TypeError, match="one-pass iterator"):
        as_source(make(X))
    model = GaussianMixture(2, random_state=0)
    model.fit(lambda: iter([X[:40], X[40:]]))  # the advice works
    assert model.n_features_in_ == 2


def test_scoring_and_bayesian_fit_refuse_an_iterator_naming_x():
    X = _data()
    model = GaussianMixture(2, random_state=0).fit(X)
    with pytest.raises(TypeError, match=r"X must be an array or a tensor.*list_iterator"):
        model.predict(iter([X]))
    with pytest.raises(TypeError, match=r"X must be an array or a tensor"):
        BayesianGaussianMixture(n_components=2).fit(iter([X]))
    with pytest.raises(TypeError, match=r"partial_fit takes one in-memory batch"):
        GaussianMixture(2).partial_fit(iter([X]))


# -- plotting ---------------------------------------------------------------------------
def test_training_curve_of_an_unfitted_model_or_a_string():
    with pytest.raises(NotFittedError, match="not fitted.*fit it before plotting"):
        plot_training_curve(GaussianMixture(2))
    with pytest.raises(TypeError, match="got the string 'foo'"):
        plot_training_curve("foo")
    with pytest.raises(ValueError, match="source must be an array of numbers"):
        plot_training_curve(["a", "b"])
    ax = plot_training_curve([3.0, 2.0, 1.0])
    np.testing.assert_array_equal(ax.lines[0].get_ydata(), [3.0, 2.0, 1.0])


def test_plot_criterion_refuses_rows_that_are_no_selection_rows():
    with pytest.raises(TypeError, match=r"dicts with at least 'n_components'.*got a row 1"):
        plot_criterion([1, 2, 3])
    with pytest.raises(ValueError, match="'covariance_type'"):
        plot_criterion([{"n_components": 1, "bic": 1.0}])
    rows = [
        {"n_components": k, "covariance_type": "full", "bic": b} for k, b in [(1, 5.0), (2, 3.0)]
    ]
    assert plot_criterion(rows).get_ylabel() == "bic (lower is better)"


def test_plot_mcmc_traces_inputs():
    with pytest.raises(TypeError, match="dict of parameter name -> draws"):
        plot_mcmc_traces(np.zeros(5))
    with pytest.raises(NotFittedError, match="fit it before plotting"):
        plot_mcmc_traces(GaussianMixture(2))
    fitted = GaussianMixture(1).fit(_data(d=1))
    with pytest.raises(TypeError, match="has no posterior_samples_.*MCMCGaussianMixture"):
        plot_mcmc_traces(fitted)
    with pytest.raises(ValueError, match=r"samples\['a'\] contains NaN"):
        plot_mcmc_traces({"a": np.array([1.0, np.nan, 2.0])})
    for name in ("max_series", "bins"):
        with pytest.raises(ValueError, match=rf"{name} must be an integer >= 1"):
            plot_mcmc_traces({"a": np.arange(5.0)}, **{name: 0})
    before = len(plt.get_fignums())
    with pytest.raises(ValueError):
        plot_mcmc_traces({"a": np.arange(5.0), "b": np.array([np.inf, 1.0])})
    assert len(plt.get_fignums()) == before  # checked before a figure is made
    assert len(plot_mcmc_traces({"a": np.arange(5.0)}).axes) == 2


def test_plot_samples_grid_refuses_nan_and_bad_shapes():
    with pytest.raises(ValueError, match="images contains NaN or infinity"):
        plot_samples_grid(np.full((4, 9), np.nan), shape=(3, 3))
    with pytest.raises(TypeError, match=r"shape must be a \(height, width\) pair"):
        plot_samples_grid(np.zeros((4, 9)), shape=(3,))
    with pytest.raises(ValueError, match=r"shape\[0\] \(height\) must be an integer >= 1"):
        plot_samples_grid(np.zeros((4, 9)), shape=(0, 3))
    assert plot_samples_grid(np.zeros((4, 9)), shape=[3, 3]).images

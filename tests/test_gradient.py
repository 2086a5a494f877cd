"""Tests for gradient-based maximum likelihood (fit_gradient and algorithm='gradient')."""

from __future__ import annotations

import sys
import warnings

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from scipy.stats import multivariate_normal  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture  # noqa: E402

from conftest import make_modes_1d
from mixtorch import Gaussian, GaussianMixture, Mixture  # noqa: E402
from mixtorch.exceptions import DivergenceError  # noqa: E402
from mixtorch.fit.gradient import GradientTrace, fit_gradient  # noqa: E402
from mixtorch.fit.gradient_trace import has_converged  # noqa: E402


@pytest.fixture(autouse=True)
def _one_thread():
    """These tensors are tiny: one intra-op thread avoids the oversubscription that makes
    small torch ops many times slower on a busy two-core machine."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


def _blobs(seed: int = 0, n: int = 200) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate(
        [
            rng.multivariate_normal([0.0, 0.0], [[1.0, 0.5], [0.5, 1.0]], size=n),
            rng.multivariate_normal([6.0, 1.0], [[0.5, 0.0], [0.0, 2.0]], size=n),
            rng.multivariate_normal([2.0, 7.0], [[1.5, -0.4], [-0.4, 0.6]], size=n),
        ]
    )


# -- a single Gaussian reaches the closed-form maximum-likelihood estimate ------------------
def test_one_dimensional_gaussian_reaches_closed_form_mle():
    X = np.random.default_rng(0).normal(3.0, 2.0, size=(400, 1))
    model = Gaussian(algorithm="gradient", tol=1e-11, max_iter=3000).fit(X)
    # The closed form: sample mean and biased sample variance (numpy, not mixtorch).
    assert model.mean_[0] == pytest.approx(X.mean(), abs=1e-4)
    assert model.covariance_[0, 0] == pytest.approx(X.var(), rel=1e-4)
    best = multivariate_normal(X.mean(), X.var()).logpdf(X).mean()
    assert model.score(X) == pytest.approx(best, abs=1e-8)
    assert model.history_.parameters[0]["means"].item() == 0.0  # the poor start
    assert model.converged_ and model.n_iter_ == len(model.history_.nll)


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_two_dimensional_full_gaussian_reaches_closed_form_mle(dtype):
    rng = np.random.default_rng(1)
    X = rng.multivariate_normal([2.0, -1.0], [[3.0, 1.2], [1.2, 1.0]], size=500).astype(dtype)
    model = Gaussian(algorithm="gradient", tol=1e-12, max_iter=3000).fit(X)
    X64 = X.astype(np.float64)
    mean, covariance = X64.mean(0), np.cov(X64.T, bias=True)
    tolerance = 1e-4 if dtype == np.float64 else 2e-3
    np.testing.assert_allclose(model.mean_, mean, atol=tolerance)
    np.testing.assert_allclose(model.covariance_, covariance, rtol=tolerance, atol=tolerance)
    best = multivariate_normal(mean, covariance).logpdf(X64).mean()
    assert model.score(X) == pytest.approx(best, abs=1e-7 if dtype == np.float64 else 1e-5)
    assert model.mean_.dtype == dtype
    history = model.history_
    assert history.nll[-1] < history.nll[0]
    assert history.parameters[0]["covariances"].numpy().tolist() == [[[1.0, 0.0], [0.0, 1.0]]]


@pytest.mark.parametrize("covariance_type", ["diag", "spherical", "tied"])
def test_gaussian_gradient_matches_closed_form_for_other_covariances(covariance_type):
    X = np.random.default_rng(2).normal([1.0, -1.0, 0.5], [0.5, 2.0, 1.0], size=(300, 3))
    closed = Gaussian(covariance_type=covariance_type).fit(X)
    gradient = Gaussian(covariance_type=covariance_type, algorithm="gradient", tol=1e-9).fit(X)
    np.testing.assert_allclose(gradient.mean_, closed.mean_, atol=1e-4)
    np.testing.assert_allclose(gradient.covariance_, closed.covariance_, rtol=1e-3, atol=1e-4)
    assert gradient.score(X) == pytest.approx(closed.score(X), abs=1e-7)


def test_weighted_gaussian_gradient_matches_weighted_closed_form():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 2)) + [1.0, 2.0]
    weights = rng.uniform(0.0, 3.0, size=200)
    mean = weights @ X / weights.sum()
    covariance = ((X - mean).T * weights) @ (X - mean) / weights.sum()
    model = Gaussian(algorithm="gradient", tol=1e-10).fit(X, sample_weight=weights)
    np.testing.assert_allclose(model.mean_, mean, atol=1e-4)
    np.testing.assert_allclose(model.covariance_, covariance, atol=1e-4)


def test_mini_batch_gaussian_is_close_and_deterministic():
    X = np.random.default_rng(4).normal(1.0, 1.5, size=(200, 2))
    fits = []
    for _ in range(2):
        model = Gaussian(
            algorithm="gradient", batch_size=50, learning_rate=0.02, random_state=0, max_iter=80
        )
        with warnings.catch_warnings():
            # Mini-batch noise keeps the epoch NLL moving: it runs all 80 epochs.
            warnings.simplefilter("ignore", ConvergenceWarning)
            fits.append(model.fit(X))
    np.testing.assert_array_equal(fits[0].mean_, fits[1].mean_)
    np.testing.assert_allclose(fits[0].mean_, X.mean(0), atol=0.05)
    np.testing.assert_allclose(fits[0].covariance_, np.cov(X.T, bias=True), atol=0.1)
    # Four steps per epoch: the epoch NLL averages the batch losses.
    assert fits[0].history_.nll[-1] == pytest.approx(-fits[0].score(X), abs=0.01)


# -- mixtures: gradient descent reaches EM's log-likelihood ---------------------------------
@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_gradient_mixture_matches_em_from_the_same_initialisation(covariance_type, dtype):
    X = _blobs()
    options = dict(covariance_type=covariance_type, random_state=0, dtype=dtype, max_iter=3000)
    em = GaussianMixture(3, tol=1e-8 if dtype == "float64" else 1e-6, **options).fit(X)
    gradient = GaussianMixture(3, algorithm="gradient", tol=1e-7, **options).fit(X)
    # An independent reference for the optimum: scikit-learn's EM.
    reference = SklearnGaussianMixture(3, covariance_type=covariance_type, tol=1e-8, random_state=0)
    best = reference.fit(X).score(X)
    assert em.score(X) == pytest.approx(best, abs=1e-5)
    assert gradient.score(X) == pytest.approx(em.score(X), abs=1e-3)
    assert gradient.converged_ and np.isfinite(gradient.lower_bound_)
    assert gradient.lower_bound_ == pytest.approx(gradient.score(X), abs=1e-5)
    assert gradient.means_.dtype == np.dtype(dtype)
    order = np.argsort(gradient.means_[:, 0])
    np.testing.assert_allclose(
        gradient.means_[order], em.means_[np.argsort(em.means_[:, 0])], atol=0.02
    )


def test_gradient_mixture_fills_sklearn_attributes_and_history():
    X = _blobs(1, 100)
    model = GaussianMixture(
        3, algorithm="gradient", init_params="random", random_state=0, max_iter=400
    ).fit(X)
    history = model.history_
    assert isinstance(history, GradientTrace)
    assert model.n_iter_ == len(history.nll) == len(model.lower_bounds_)
    assert model.lower_bounds_ == [-value for value in history.nll]
    assert history.nll[-1] < history.nll[0] - 0.5  # decreasing overall
    assert np.isfinite(history.nll).all()
    table = history.table(max_rows=5)
    lines = table.splitlines()
    assert lines[0].split()[:2] == ["iteration", "nll"]
    assert len(lines) == 2 + 5 + 1  # header, rule, rows, summary
    assert lines[2].split()[0] == "1" and lines[-2].split()[0] == str(model.n_iter_)
    assert "weights=[" in lines[2]  # parameter snapshots for a small model
    assert model.predict(X).shape == (300,)
    assert model.predict_proba(X).shape == (300, 3)


def test_history_plot_draws_the_training_curve():
    X = _blobs(2, 60)
    model = GaussianMixture(2, algorithm="gradient", random_state=0, max_iter=50, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    figure, ax = plt.subplots()
    returned = model.history_.plot(ax=ax)
    assert returned is ax
    x_data, y_data = ax.lines[0].get_data()
    np.testing.assert_array_equal(x_data, np.arange(1, 51))
    np.testing.assert_allclose(y_data, model.history_.nll)
    plt.close(figure)


def test_history_plot_without_matplotlib_gives_the_install_hint(monkeypatch):
    X = _blobs(2, 60)
    model = Gaussian(algorithm="gradient", random_state=0, max_iter=30, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    figure, ax = plt.subplots()
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match=r"pip install 'mixtorch\[plot\]'"):
        model.history_.plot(ax=ax)
    assert len(ax.lines) == 0  # refused before drawing anything
    plt.close(figure)


def test_em_refit_removes_gradient_history():
    X = _blobs(3, 50)
    model = GaussianMixture(2, algorithm="gradient", random_state=0, max_iter=300).fit(X)
    assert hasattr(model, "history_")
    model.set_params(algorithm="em").fit(X)
    assert not hasattr(model, "history_")


def test_restarts_keep_the_best_run():
    X = _blobs(5, 80)
    options = dict(algorithm="gradient", random_state=0, init_params="random", max_iter=500)
    single = GaussianMixture(3, **options).fit(X)
    several = GaussianMixture(3, n_init=3, **options).fit(X)
    # The first of the three starts is the single run's start (same generator stream).
    assert several.lower_bound_ >= single.lower_bound_ - 1e-12


def test_warm_start_continues_from_previous_parameters():
    X = _blobs(6, 80)
    model = GaussianMixture(3, algorithm="gradient", random_state=0, max_iter=400, warm_start=True)
    model.fit(X)
    first = model.score(X)
    model.set_params(max_iter=20, tol=0.0)
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    assert model.history_.nll[0] == pytest.approx(-first, abs=1e-9)


def test_tensor_input_gives_tensor_output():
    X = torch.as_tensor(_blobs(7, 50), dtype=torch.float32)
    model = GaussianMixture(2, algorithm="gradient", random_state=0, max_iter=500).fit(X)
    assert isinstance(model.means_, torch.Tensor) and model.means_.dtype == torch.float32
    assert isinstance(model.score_samples(X), torch.Tensor)


# -- robustness ----------------------------------------------------------------------
@pytest.mark.parametrize("scale", [1e-8, 1e8])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_bad_starting_scales_give_no_nan(scale, dtype):
    """Standard deviations 1e4 times too small or too large: slow, but never NaN."""
    X = _blobs(8, 100)
    means = [[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]]
    model = GaussianMixture(
        3,
        algorithm="gradient",
        means_init=means,
        precisions_init=np.stack([np.eye(2) / scale] * 3),
        max_iter=300,
        tol=0.0,
        dtype=dtype,
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(X)
    history = model.history_
    assert np.isfinite(history.nll).all() and np.isfinite(model.lower_bound_)
    for values in (model.weights_, model.means_, model.covariances_, model.precisions_):
        assert np.isfinite(values).all()
    assert np.isfinite(model.score_samples(X)).all()
    # The start is astronomically bad (NLL 20 for huge scales, 1e6 for tiny ones).
    assert history.final_nll < history.nll[0] - (10.0 if scale > 1 else 1e5)


def test_diverging_steps_are_undone_instead_of_producing_nan():
    X = torch.as_tensor(_blobs(9, 100))
    start = Mixture.from_parameters(
        np.full(3, 1 / 3), [[0.0, 0.0], [6.0, 1.0], [2.0, 7.0]], np.ones(3) * 1e-4, "spherical"
    )
    # Plain SGD on tiny scales takes enormous steps, which overflow.
    mixture, trace = fit_gradient(X, start, optimizer="sgd", learning_rate=10.0, max_iter=300)
    assert trace.n_rejected > 0
    assert np.isfinite(trace.nll).all() and np.isfinite(trace.final_nll)
    assert bool(torch.isfinite(mixture.covariance.covariances).all())
    assert trace.final_nll < trace.nll[0]


def test_non_finite_start_raises_a_clear_error():
    X = torch.tensor([[0.0], [1e200]], dtype=torch.float64)
    start = Mixture.from_parameters(np.ones(1), np.zeros((1, 1)), np.array([1e-200]), "spherical")
    with pytest.raises(FloatingPointError, match="not finite at the starting parameters"):
        fit_gradient(X, start, max_iter=5)


# -- optimisers and arguments ---------------------------------------------------------------
@pytest.mark.parametrize(
    "optimizer, learning_rate",
    [
        ("adagrad", 0.5),
        ("rmsprop", 0.01),
        (torch.optim.Adam, 0.05),
        (lambda params, lr: torch.optim.SGD(params, lr=lr, momentum=0.9), 0.02),
        ("lbfgs", 0.5),
    ],
)
def test_other_optimisers_reach_the_optimum(optimizer, learning_rate):
    X = np.random.default_rng(10).normal([0.0, 1.0], [1.0, 0.5], size=(300, 2))
    model = Gaussian(
        covariance_type="diag",
        algorithm="gradient",
        optimizer=optimizer,
        learning_rate=learning_rate,
        tol=1e-10,
        max_iter=3000,
    ).fit(X)
    np.testing.assert_allclose(model.mean_, X.mean(0), atol=1e-3)
    np.testing.assert_allclose(model.covariance_, X.var(0), rtol=1e-2)


@pytest.mark.parametrize(
    "params, message",
    [
        ({"algorithm": "newton"}, "'algorithm' parameter"),
        ({"algorithm": "gradient", "optimizer": "adamax"}, "'optimizer' parameter"),
        ({"algorithm": "gradient", "learning_rate": 0.0}, "learning_rate"),
        ({"algorithm": "gradient", "learning_rate": float("nan")}, "learning_rate"),
        ({"algorithm": "gradient", "batch_size": 0}, "batch_size"),
        ({"algorithm": "gradient", "batch_size": 2.5}, "batch_size"),
    ],
)
@pytest.mark.parametrize("estimator", [Gaussian, GaussianMixture])
def test_invalid_parameters_raise_clear_errors(estimator, params, message):
    X = _blobs(11, 20)
    with pytest.raises(ValueError, match=message):
        estimator(**params).fit(X)


def test_invalid_gaussian_iteration_parameters():
    X = _blobs(12, 20)
    with pytest.raises(ValueError, match="max_iter"):
        Gaussian(algorithm="gradient", max_iter=-1).fit(X)
    with pytest.raises(ValueError, match="tol"):
        Gaussian(algorithm="gradient", tol=-1.0).fit(X)
    with pytest.raises(TypeError, match="optimizer"):
        GaussianMixture(algorithm="gradient", optimizer=3).fit(X)


def test_fit_gradient_argument_checks():
    X = torch.zeros(10, 2, dtype=torch.float64)
    start = Mixture.from_parameters([1.0], np.zeros((1, 2)), np.ones(1), "spherical")
    with pytest.raises(ValueError, match="shape"):
        fit_gradient(torch.zeros(10, 3, dtype=torch.float64), start)
    with pytest.raises(ValueError, match="sample_weight"):
        fit_gradient(X, start, sample_weight=torch.ones(3))
    with pytest.raises(ValueError, match="sample_weight"):
        fit_gradient(X, start, sample_weight=-torch.ones(10))
    with pytest.raises(TypeError, match="Optimizer"):
        fit_gradient(X, start, optimizer=lambda params, lr: object())


# -- scikit-learn conventions -------------------------------------------------------------
@pytest.mark.parametrize(
    "check",
    [
        "check_parameters_default_constructible",
        "check_no_attributes_set_in_init",
        "check_get_params_invariance",
        "check_set_params",
        "check_dont_overwrite_parameters",
        "check_fit_score_takes_y",
    ],
)
@pytest.mark.parametrize(
    "estimator",
    [
        GaussianMixture(2, algorithm="gradient", random_state=0, max_iter=2000, tol=1e-4),
        Gaussian(algorithm="gradient", reg_covar=1e-6, max_iter=3000, tol=1e-5),
    ],
    ids=["GaussianMixture", "Gaussian"],
)
def test_sklearn_conventions_hold_for_the_gradient_algorithm(estimator, check):
    from sklearn.utils import estimator_checks

    getattr(estimator_checks, check)(type(estimator).__name__, estimator)


# -- the stopping rule (issue 13) -----------------------------------------------------------
def _three_clusters_1d() -> np.ndarray:
    return make_modes_1d([(-4, 1, 170), (0, 0.5, 160), (5, 1.5, 170)], seed=0)


def test_slow_sgd_is_not_declared_converged_short_of_the_optimum():
    """Plain SGD changes the NLL by < 1e-3 per epoch while 0.01 nats from the optimum."""
    X = _three_clusters_1d()
    model = GaussianMixture(
        3, covariance_type="spherical", algorithm="gradient", optimizer="sgd", random_state=0
    ).fit(X)
    reference = SklearnGaussianMixture(3, covariance_type="spherical", tol=1e-10, max_iter=2000)
    best = reference.fit(X).score(X)
    assert model.converged_
    assert best - model.score(X) < 2 * model.tol  # tol bounds the distance from the limit
    assert model.n_iter_ >= 30


def test_reaching_max_iter_warns_and_is_not_converged():
    X = _three_clusters_1d()
    model = GaussianMixture(
        3, covariance_type="spherical", algorithm="gradient", optimizer="sgd", max_iter=40
    )
    with pytest.warns(ConvergenceWarning):
        model.set_params(random_state=0).fit(X)
    assert not model.converged_ and model.n_iter_ == 40
    with pytest.warns(ConvergenceWarning):
        Gaussian(algorithm="gradient", optimizer="sgd", max_iter=5).fit(X)


def test_a_diverging_learning_rate_raises_instead_of_claiming_convergence():
    X = np.random.default_rng(1).normal(2.5, 1.0, size=(300, 2))
    with pytest.raises(DivergenceError, match="learning_rate") as caught:
        Gaussian(algorithm="gradient", optimizer="sgd", learning_rate=1e3).fit(X)
    assert isinstance(caught.value, ValueError)


def test_a_run_ending_far_above_its_start_raises():
    X = torch.as_tensor(np.random.default_rng(2).normal(size=(100, 2)))
    start = Mixture.from_parameters([1.0], np.zeros((1, 2)), np.ones(1), "spherical")

    def ascent(params, lr):
        return torch.optim.SGD(params, lr=lr, maximize=True)

    with pytest.raises(DivergenceError, match="diverged"):
        fit_gradient(X, start, optimizer=ascent, learning_rate=0.1, max_iter=30)


def _trace(nll, rejected=None):
    return GradientTrace(
        iterations=list(range(1, len(nll) + 1)),
        nll=list(nll),
        rejected=list(rejected or [0] * len(nll)),
    )


def test_stopping_rule_on_synthetic_histories():
    # Geometric decrease, ratio 0.97 per epoch: after 60 epochs each epoch changes the NLL
    # by < 5e-5 but 1.6e-3 is still to come (0.01 * 0.97**60).
    slow = 1.0 + 0.01 * 0.97 ** np.arange(60)
    assert not has_converged(_trace(slow), 10, 1e-3)
    assert has_converged(_trace(slow), 10, 2e-2)
    flat = np.full(30, 2.0)
    assert has_converged(_trace(flat), 10, 1e-6)
    assert not has_converged(_trace(flat[:29]), 10, 1e-6)  # needs three windows
    undone = [0] * 25 + [1] * 5  # constant because steps were undone, not because converged
    assert not has_converged(_trace(flat, undone), 10, 1e-6)
    oscillating = 2.0 + 0.01 * (-1.0) ** np.arange(30)  # window means agree, epochs do not
    assert not has_converged(_trace(oscillating), 10, 1e-3)
    assert not has_converged(_trace(2.0 - 1e-4 * np.arange(30)), 10, 1e-3)  # steady descent


@pytest.mark.parametrize("learning_rate", [1e5, 1e20])
def test_absurd_learning_rates_raise_a_value_error_naming_it(learning_rate):
    """Huge Adam steps leave finite parameters whose covariance no longer factors."""
    X = np.random.default_rng(0).normal(size=(40, 2))
    with pytest.raises(ValueError, match="learning_rate"):
        Gaussian(algorithm="gradient", max_iter=30, learning_rate=learning_rate).fit(X)

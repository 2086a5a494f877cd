"""The estimator skeleton: declarative parameter constraints, the one restart loop
(best of n_init, warm start, ConvergenceWarning, progress) and the fitted-state protocol."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils._param_validation import Interval, InvalidParameterError, StrOptions

from mixtorch import BayesianGaussianMixture, Gaussian, GaussianMixture, Mixture
from mixtorch._estimator import Progress, best_of_n_init
from mixtorch.fit.em import EMTrace


@pytest.fixture
def blobs(well_separated):
    return well_separated


def _estimators():
    from mixtorch.bayes import MCMCGaussianMixture, SVIGaussianMixture

    return {
        "GaussianMixture": GaussianMixture,
        "BayesianGaussianMixture": BayesianGaussianMixture,
        "Gaussian": Gaussian,
        "SVIGaussianMixture": SVIGaussianMixture,
        "MCMCGaussianMixture": MCMCGaussianMixture,
    }


BAD_PARAMETERS = [
    ("GaussianMixture", "n_components", "3"),
    ("GaussianMixture", "n_components", 0),
    ("GaussianMixture", "covariance_type", "banana"),
    ("GaussianMixture", "tol", float("nan")),
    ("GaussianMixture", "reg_covar", -1.0),
    ("GaussianMixture", "max_iter", 2.5),
    ("GaussianMixture", "n_init", 0),
    ("GaussianMixture", "init_params", "nope"),
    ("GaussianMixture", "warm_start", "yes"),
    ("GaussianMixture", "verbose_interval", 0),
    ("GaussianMixture", "chunk_size", 0),
    ("GaussianMixture", "chunk_size", float("inf")),
    ("GaussianMixture", "algorithm", "newton"),
    ("GaussianMixture", "optimizer", 3),
    ("GaussianMixture", "learning_rate", 0.0),
    ("GaussianMixture", "batch_size", -1),
    ("GaussianMixture", "init_sample_size", 0),
    ("GaussianMixture", "step_size_decay", 0.5),
    ("GaussianMixture", "step_size_decay", 1.5),
    ("GaussianMixture", "weights_init", "abc"),
    ("GaussianMixture", "random_state", "seed"),
    ("BayesianGaussianMixture", "n_components", 1.5),
    ("BayesianGaussianMixture", "weight_concentration_prior_type", "uniform"),
    ("BayesianGaussianMixture", "weight_concentration_prior", -1.0),
    ("BayesianGaussianMixture", "mean_precision_prior", 0.0),
    ("BayesianGaussianMixture", "degrees_of_freedom_prior", float("nan")),
    ("BayesianGaussianMixture", "covariance_prior", "wide"),
    ("Gaussian", "covariance_type", "round"),
    ("Gaussian", "reg_covar", -1e-3),
    ("Gaussian", "algorithm", "em"),
    ("Gaussian", "max_iter", -1),
    ("SVIGaussianMixture", "guide", "laplace"),
    ("SVIGaussianMixture", "num_steps", 0),
    ("SVIGaussianMixture", "learning_rate", -0.1),
    ("MCMCGaussianMixture", "num_samples", 1),
    ("MCMCGaussianMixture", "target_accept_prob", 1.0),
    ("MCMCGaussianMixture", "scale_family", "normal"),
]


@pytest.mark.parametrize(("name", "parameter", "value"), BAD_PARAMETERS)
def test_bad_constructor_parameters_raise_invalid_parameter_error(name, parameter, value, blobs):
    estimator = _estimators()[name](**{parameter: value})
    with pytest.raises(InvalidParameterError, match=f"'{parameter}' parameter") as error:
        estimator.fit(blobs)
    # scikit-learn's InvalidParameterError is both: code catching either keeps working.
    assert isinstance(error.value, ValueError) and isinstance(error.value, TypeError)


def test_constraints_cover_every_parameter():
    for cls in _estimators().values():
        assert set(cls._parameter_constraints) == set(cls().get_params()), cls.__name__


def test_shared_constraints_mirror_scikit_learn():
    ours = GaussianMixture._parameter_constraints
    for name, constraints in SkGaussianMixture._parameter_constraints.items():
        if name == "random_state":
            continue  # ours also takes numpy and torch Generators
        assert [_key(c) for c in ours[name]] == [_key(c) for c in constraints], name


def _key(constraint):
    if isinstance(constraint, StrOptions):
        return ("options", frozenset(constraint.options))
    if isinstance(constraint, Interval):
        return (constraint.type, constraint.left, constraint.right, constraint.closed)
    return constraint


def test_n_init_keeps_the_best_start(blobs):
    # Reference: every start on its own (warm-start-free single fits with the seeds that
    # the n_init loop draws in turn) - the loop must keep the highest lower bound.
    model = GaussianMixture(3, n_init=4, init_params="random", random_state=3, max_iter=4)
    singles = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        model.fit(blobs)
        generator = torch.Generator().manual_seed(3)
        for _ in range(4):
            one = GaussianMixture(3, init_params="random", random_state=generator, max_iter=4)
            singles.append(one.fit(blobs).lower_bound_)
    assert model.lower_bound_ == pytest.approx(max(singles), abs=1e-12)
    assert len(set(np.round(singles, 6))) > 1  # the starts really differ


def test_best_of_n_init_picks_highest_bound_and_warns():
    bounds = iter([-3.0, -1.0, -2.0])

    def run(start, previous):
        return start, EMTrace(lower_bounds=[next(bounds)], converged=False, n_iter=1)

    starts = iter(["a", "b", "c"])
    with pytest.warns(ConvergenceWarning, match="did not converge"):
        result, trace = best_of_n_init(lambda: next(starts), run, n_init=3, max_iter=5)
    assert (result, trace.lower_bound) == ("b", -1.0)


def test_best_of_n_init_warm_start_runs_once_from_previous():
    calls = []

    def run(start, previous):
        calls.append((start, previous))
        return start, EMTrace(lower_bounds=[0.0], converged=True, n_iter=1)

    result, _ = best_of_n_init(lambda: "fresh", run, n_init=5, warm=("old", -7.5))
    assert calls == [("old", -7.5)] and result == "old"


def test_warm_start_continues_from_previous_fit(blobs):
    model = GaussianMixture(
        3, warm_start=True, max_iter=2, tol=1e-10, init_params="random", random_state=0
    )
    with pytest.warns(ConvergenceWarning):
        model.fit(blobs)
    first = model.lower_bound_
    model.set_params(max_iter=500, tol=1e-8)
    model.fit(blobs)
    # The second fit starts where the first stopped, so the two fits together are one
    # uninterrupted run from the same start.
    assert model.lower_bounds_[0] >= first - 1e-9
    whole = GaussianMixture(3, max_iter=502, tol=1e-8, init_params="random", random_state=0)
    whole.fit(blobs)
    assert whole.n_iter_ == model.n_iter_ + 2
    np.testing.assert_allclose(model.lower_bounds_, whole.lower_bounds_[2:], rtol=1e-10)
    np.testing.assert_allclose(model.means_, whole.means_, rtol=1e-8)


def test_progress_reports_to_callback_and_prints(capsys, blobs):
    seen = []
    model = GaussianMixture(2, verbose=2, verbose_interval=1, random_state=0)
    model.fit(blobs, callback=lambda iteration, bound: seen.append((iteration, bound)))
    assert [i for i, _ in seen] == list(range(1, model.n_iter_ + 1))
    assert seen[-1][1] == pytest.approx(model.lower_bound_)
    out = capsys.readouterr().out
    assert "Initialization 0" in out and "Initialization converged." in out
    assert "lower bound" in out


def test_progress_without_listener_is_inactive():
    assert not Progress().active
    assert Progress(callback=lambda i, b: None).active


def test_from_mixture_builds_a_fitted_estimator(blobs):
    mixture = Mixture.from_parameters(
        [0.3, 0.7], [[0.0, 0.0], [5.0, 5.0]], [1.0, 2.0], "spherical", dtype=torch.float64
    )
    model = GaussianMixture.from_mixture(mixture, random_state=0)
    assert (model.n_components, model.covariance_type) == (2, "spherical")
    reference = SkGaussianMixture(2, covariance_type="spherical")
    reference.weights_, reference.means_ = model.weights_, model.means_
    reference.covariances_ = model.covariances_
    reference.precisions_cholesky_ = model.precisions_cholesky_
    np.testing.assert_allclose(model.score_samples(blobs), reference.score_samples(blobs))
    single = Gaussian.from_mixture(
        Mixture.from_parameters([1.0], [[1.0, 2.0]], [[[2.0, 0.5], [0.5, 1.0]]], "full")
    )
    np.testing.assert_allclose(single.covariance_, [[2.0, 0.5], [0.5, 1.0]])
    with pytest.raises(ValueError, match="one component"):
        Gaussian.from_mixture(mixture)

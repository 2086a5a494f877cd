"""GaussianMixtureRegressor against least squares, dense conditionals and sklearn's checks."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.linear_model import LinearRegression
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixtorch import GaussianMixtureRegressor


# scikit-learn's toy data can collapse a component onto a few points, which warns
@pytest.mark.filterwarnings("ignore::mixtorch.exceptions.DegenerateComponentWarning")
@parametrize_with_checks([GaussianMixtureRegressor(), GaussianMixtureRegressor(n_components=2)])
def test_sklearn_compatible_regressor(estimator, check):
    check(estimator)


def test_one_full_component_is_ordinary_least_squares():
    # The conditional mean of one joint Gaussian is the least-squares line fitted to the
    # same data (maximum-likelihood covariance), so the two agree to round-off.
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 3))
    y = X @ np.array([1.5, -2.0, 0.3]) + 0.7 + 0.1 * rng.normal(size=300)
    model = GaussianMixtureRegressor(reg_covar=0.0).fit(X, y)
    reference = LinearRegression().fit(X, y)
    queries = rng.normal(size=(20, 3))
    np.testing.assert_allclose(model.predict(queries), reference.predict(queries), rtol=1e-9)
    residual = y - reference.predict(X)
    _, std = model.predict(queries, return_std=True)
    np.testing.assert_allclose(std, residual.std(), rtol=1e-9)  # homoscedastic Gaussian


def test_prediction_and_std_match_a_dense_reference():
    rng = np.random.default_rng(1)
    x = rng.uniform(-3, 3, size=(600, 1))
    y = np.sin(2 * x[:, 0]) + 0.1 * rng.normal(size=600)
    model = GaussianMixtureRegressor(n_components=5, random_state=0).fit(x, y)
    mixture = model.mixture_model_.mixture_
    queries = np.linspace(-2.5, 2.5, 7)[:, None]
    mean, std = model.predict(queries, return_std=True)
    w, mu = mixture.weights.numpy(), mixture.means.numpy()
    S = mixture.covariance.full_matrices(5).numpy()
    for q, m, s in zip(queries[:, 0], mean, std, strict=True):
        log_p = np.log(w) - 0.5 * ((q - mu[:, 0]) ** 2 / S[:, 0, 0] + np.log(S[:, 0, 0]))
        r = np.exp(log_p - log_p.max())
        r /= r.sum()
        cm = mu[:, 1] + S[:, 1, 0] / S[:, 0, 0] * (q - mu[:, 0])
        cv = S[:, 1, 1] - S[:, 1, 0] ** 2 / S[:, 0, 0]
        assert m == pytest.approx(r @ cm, rel=1e-10)
        assert s == pytest.approx(np.sqrt(r @ (cv + cm**2) - (r @ cm) ** 2), rel=1e-9)
    assert np.abs(mean - np.sin(2 * queries[:, 0])).max() < 0.3  # a smooth fit, not exact


def test_samples_show_both_branches_of_a_two_valued_target():
    # y = +-sqrt(x): least squares predicts the average (about 0), the conditional mixture
    # puts its draws on both branches.
    rng = np.random.default_rng(2)
    x = rng.uniform(1, 4, size=1000)
    y = np.sqrt(x) * rng.choice([-1.0, 1.0], size=1000) + 0.05 * rng.normal(size=1000)
    model = GaussianMixtureRegressor(n_components=8, random_state=0).fit(x[:, None], y)
    draws = model.sample_y([[2.25]], n_samples=2000, random_state=0)
    assert draws.shape == (1, 2000)
    upper, lower = draws[0][draws[0] > 0], draws[0][draws[0] < 0]
    assert 0.35 < upper.size / 2000 < 0.65
    assert abs(np.median(upper) - 1.5) < 0.1 and abs(np.median(lower) + 1.5) < 0.1
    assert abs(float(model.predict([[2.25]])[0])) < 0.3  # the mean sits between the branches
    again = model.sample_y([[2.25]], n_samples=2000, random_state=0)
    np.testing.assert_array_equal(draws, again)


def test_multi_output_targets_and_shapes():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 2))
    Y = np.stack([X[:, 0] + X[:, 1], X[:, 0] - X[:, 1]], axis=1) + 0.01 * rng.normal(size=(400, 2))
    model = GaussianMixtureRegressor(n_components=1).fit(X, Y)
    assert model.n_targets_ == 2
    mean, std = model.predict(X[:5], return_std=True)
    assert mean.shape == (5, 2) and std.shape == (5, 2)
    np.testing.assert_allclose(mean, Y[:5], atol=0.05)
    assert model.sample_y(X[:5], n_samples=3, random_state=0).shape == (5, 2, 3)
    column = GaussianMixtureRegressor().fit(X, Y[:, :1])
    assert column.predict(X[:4]).shape == (4, 1)


def test_tensors_in_tensors_out():
    generator = torch.Generator().manual_seed(0)
    X = torch.randn(300, 2, dtype=torch.float64, generator=generator)
    y = X.sum(1) + 0.1 * torch.randn(300, dtype=torch.float64, generator=generator)
    model = GaussianMixtureRegressor(random_state=0).fit(X, y)
    prediction = model.predict(X[:3])
    assert isinstance(prediction, torch.Tensor) and prediction.shape == (3,)
    torch.testing.assert_close(prediction, X[:3].sum(1), atol=0.05, rtol=0)


def test_bad_sample_count_is_named():
    model = GaussianMixtureRegressor().fit(np.arange(20.0)[:, None], np.arange(20.0))
    with pytest.raises(ValueError, match="n_samples"):
        model.sample_y([[1.0]], n_samples=0)


def test_example_runs_and_draws_land_on_the_branches(tmp_path, capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "mixture_regression.py"
    runpy.run_path(str(path))["main"](tmp_path)
    out = capsys.readouterr().out
    assert (tmp_path / "mixture_regression.png").read_bytes()[:4] == b"\x89PNG"
    gap_ls, gap_draw = (float(part.split()[-1]) for part in out.splitlines()[0].split(","))
    assert gap_draw < 0.15 < 1.0 < gap_ls


def test_inputs_too_far_for_finite_densities_predict_the_limiting_component():
    rng = np.random.default_rng(4)
    X = rng.normal(size=(400, 1))
    y = np.where(X[:, 0] > 0, 3.0 * X[:, 0], -X[:, 0]) + 0.05 * rng.normal(size=400)
    model = GaussianMixtureRegressor(2, random_state=0).fit(X, y)
    near, far = np.array([[1e6], [-1e6]]), np.array([[1e160], [-1e160]])
    mean_near, std_near = model.predict(near, return_std=True)
    mean_far, std_far = model.predict(far, return_std=True)
    assert np.isfinite(mean_far).all() and np.isfinite(std_far).all()
    # Far out, one component's line is followed: the same slope as at 1e6.
    np.testing.assert_allclose(mean_far / far[:, 0], mean_near / near[:, 0], rtol=1e-4)
    np.testing.assert_allclose(std_far, std_near, rtol=1e-4)

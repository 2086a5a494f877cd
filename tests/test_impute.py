"""GaussianMixtureImputer: conditional means and draws, against dense formulas and peers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.experimental import enable_iterative_imputer  # noqa: F401
from sklearn.impute import IterativeImputer
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixtorch import GaussianMixtureImputer


# scikit-learn's toy data can collapse a component onto a few points, which warns
@pytest.mark.filterwarnings("ignore::mixtorch.exceptions.DegenerateComponentWarning")
@parametrize_with_checks([GaussianMixtureImputer(), GaussianMixtureImputer(2, random_state=0)])
def test_sklearn_compatible_imputer(estimator, check):
    check(estimator)


def _opposite_correlations(n: int = 600, missing: float = 0.3, seed: int = 0):
    """Two clusters whose features correlate with opposite signs."""
    rng = np.random.default_rng(seed)
    up = rng.multivariate_normal([0, 0], [[1, 0.95], [0.95, 1]], n // 2)
    down = rng.multivariate_normal([6, 0], [[1, -0.95], [-0.95, 1]], n // 2)
    X = np.concatenate([up, down])
    holes = X.copy()
    rows = rng.random(n) < missing
    holes[rows, 1] = np.nan  # the second feature goes missing in 30% of rows
    return X, holes


def test_conditional_means_match_the_dense_formula_and_beat_chained_regression():
    X, holes = _opposite_correlations()
    imputer = GaussianMixtureImputer(2, random_state=0).fit(holes)
    filled = imputer.transform(holes)
    mask = np.isnan(holes)
    assert not np.isnan(filled).any()
    np.testing.assert_array_equal(filled[~mask], holes[~mask])  # observed entries untouched
    mixture = imputer.mixture_model_.mixture_
    S = mixture.covariance.full_matrices(2).numpy()
    mu, w = mixture.means.numpy(), mixture.weights.numpy()
    for row in np.flatnonzero(mask[:, 1])[:10]:
        x0 = holes[row, 0]
        log_p = np.log(w) - 0.5 * ((x0 - mu[:, 0]) ** 2 / S[:, 0, 0] + np.log(S[:, 0, 0]))
        r = np.exp(log_p - log_p.max())
        r /= r.sum()
        expected = r @ (mu[:, 1] + S[:, 1, 0] / S[:, 0, 0] * (x0 - mu[:, 0]))
        assert filled[row, 1] == pytest.approx(expected, rel=1e-9, abs=1e-12)
    ours = np.sqrt(np.mean((filled - X)[mask] ** 2))
    chained = IterativeImputer(random_state=0).fit_transform(holes)
    theirs = np.sqrt(np.mean((chained - X)[mask] ** 2))
    assert ours < 0.6 * theirs


def test_posterior_draws_vary_and_keep_the_conditional_spread():
    X, holes = _opposite_correlations()
    imputer = GaussianMixtureImputer(2, sample_posterior=True, random_state=0).fit(holes)
    first, second = imputer.transform(holes), imputer.transform(holes)
    np.testing.assert_array_equal(first, second)  # same random_state, same draws
    mask = np.isnan(holes)
    residual = (first - X)[mask]
    # conditional std within a cluster is sqrt(1 - 0.95^2) ~ 0.31; draws add their own
    assert 0.25 < residual.std() < 0.8
    assert not np.isnan(first).any()


def test_rows_with_nothing_observed_get_the_mixture_mean():
    X, holes = _opposite_correlations()
    holes[:3] = np.nan
    imputer = GaussianMixtureImputer(2, random_state=0).fit(holes)
    filled = imputer.transform(holes)
    np.testing.assert_allclose(filled[:3], np.tile(imputer.mixture_model_.mixture_.center, (3, 1)))


def test_tensors_stay_tensors():
    _, holes = _opposite_correlations()
    tensor = torch.as_tensor(holes)
    filled = GaussianMixtureImputer(2, random_state=0).fit(tensor).transform(tensor)
    assert isinstance(filled, torch.Tensor) and not bool(torch.isnan(filled).any())


def test_missing_values_example_runs_and_beats_chained_regression(tmp_path, capsys):
    import runpy
    from pathlib import Path

    path = Path(__file__).parents[1] / "examples" / "missing_values.py"
    runpy.run_path(str(path))["main"](tmp_path)
    lines = capsys.readouterr().out.splitlines()
    ours, chained = (float(line.split()[-1]) for line in lines[1:3])
    assert ours < 0.6 * chained
    assert (tmp_path / "missing_values.png").read_bytes()[:4] == b"\x89PNG"


def test_rows_too_far_for_finite_densities_are_filled_not_left_missing():
    X, _ = _opposite_correlations()
    model = GaussianMixtureImputer(2, random_state=0).fit(X)
    row = np.full((1, X.shape[1]), np.nan)
    row[0, 0] = 1e200
    filled = model.transform(row)
    assert np.isfinite(filled).all() and filled[0, 0] == 1e200


def test_set_output_pandas_keeps_the_column_names():
    pd = pytest.importorskip("pandas")
    X, _ = _opposite_correlations()
    frame = pd.DataFrame(X, columns=[f"f{j}" for j in range(X.shape[1])])
    model = GaussianMixtureImputer(2, random_state=0).set_output(transform="pandas").fit(frame)
    filled = model.transform(frame)
    assert isinstance(filled, pd.DataFrame) and list(filled.columns) == list(frame.columns)
    assert not filled.isna().any().any()
    np.testing.assert_array_equal(model.get_feature_names_out(), frame.columns)
    plain = GaussianMixtureImputer(2, random_state=0).fit(X).transform(X)
    np.testing.assert_allclose(filled.to_numpy(), plain, rtol=1e-12)

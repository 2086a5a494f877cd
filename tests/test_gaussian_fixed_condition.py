"""The single Gaussian's held parameters (``fixed_mean``, ``fixed_covariance``), its
``marginal``/``condition`` and the integration options of ``cdf``/``logcdf``, against
SciPy's ``multivariate_normal`` (``fit``, ``marginal``, ``cdf``) and NumPy closed forms in
float64."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy import stats
from sklearn.base import clone

import mixtorch
from _gloo import join_group, json_results
from mixtorch import Gaussian
from mixtorch.sources import from_tensor

RNG = np.random.default_rng(7)
KINDS = ["full", "tied", "diag", "spherical"]


def correlated(n=400, dim=3, offset=0.0, seed=0):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(dim, dim))
    return offset + rng.normal(size=(n, dim)) @ A.T + rng.normal(size=dim)


def spd(dim=3, seed=1):
    A = np.random.default_rng(seed).normal(size=(dim, dim))
    return A @ A.T + 0.5 * np.eye(dim)


def held_covariance(kind, dim=3):
    """A valid fixed covariance in the layout of ``covariance_`` for ``kind``."""
    full = spd(dim)
    return {"full": full, "tied": full, "diag": np.diag(full), "spherical": 1.7}[kind]


def scatter_about(X, mean, weights, kind):
    """The weighted maximum-likelihood covariance about ``mean``, in ``kind``'s layout."""
    d = X - mean
    full = (weights[:, None] * d).T @ d / weights.sum()
    return {
        "full": full,
        "tied": full,
        "diag": np.diag(full),
        "spherical": np.diag(full).mean(),
    }[kind]


# -- fixed mean and covariance against SciPy's fit ------------------------------------------
def test_fixed_mean_matches_scipy_fit_fix_mean():
    X = correlated()
    mean = np.array([0.3, -1.0, 2.0])
    ref_mean, ref_cov = stats.multivariate_normal.fit(X, fix_mean=mean)
    model = Gaussian(fixed_mean=mean).fit(X)
    np.testing.assert_array_equal(model.mean_, ref_mean)
    np.testing.assert_allclose(model.covariance_, ref_cov, rtol=1e-12)
    free = Gaussian().fit(X)
    assert model.score(X) < free.score(X)  # holding the mean costs likelihood


def test_fixed_covariance_matches_scipy_fit_fix_cov():
    X = correlated()
    cov = spd()
    ref_mean, ref_cov = stats.multivariate_normal.fit(X, fix_cov=cov)
    model = Gaussian(fixed_covariance=cov, reg_covar=0.1).fit(X)
    np.testing.assert_allclose(model.mean_, ref_mean, rtol=1e-13)
    np.testing.assert_array_equal(model.covariance_, ref_cov)  # reg_covar not added
    expected = stats.multivariate_normal(ref_mean, ref_cov).logpdf(X)
    np.testing.assert_allclose(model.score_samples(X), expected, rtol=1e-11)


def test_both_fixed_estimates_nothing_but_checks_x():
    mean, cov = np.array([1.0, 2.0]), np.array([[2.0, 0.5], [0.5, 1.0]])
    model = Gaussian(fixed_mean=mean, fixed_covariance=cov, reg_covar=1.0).fit([[3.0, 3.0]])
    ref_mean, ref_cov = stats.multivariate_normal.fit(np.array([[3.0, 3.0]]), mean, cov)
    np.testing.assert_array_equal(model.mean_, ref_mean)
    np.testing.assert_array_equal(model.covariance_, ref_cov)
    with pytest.raises(ValueError, match="fixed_mean must have shape \\(3,\\)"):
        Gaussian(fixed_mean=mean, fixed_covariance=cov).fit(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="NaN"):
        Gaussian(fixed_mean=mean, fixed_covariance=cov).fit([[np.nan, 1.0]])
    with pytest.raises(ValueError, match="minimum of 1"):
        Gaussian(fixed_mean=mean, fixed_covariance=cov).fit(np.zeros((0, 2)))
    with pytest.raises(ValueError, match="minimum of 2"):
        Gaussian().fit([[3.0, 3.0]])  # nothing held: two rows still needed


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_mean_with_weights_and_reg_covar_is_the_closed_form(kind):
    X = correlated()
    weights = RNG.integers(0, 4, size=len(X)).astype(float)
    mean = np.array([0.5, 0.0, -0.5])
    model = Gaussian(covariance_type=kind, fixed_mean=mean, reg_covar=0.01)
    model.fit(X, sample_weight=weights)
    expected = scatter_about(X, mean, weights, kind)
    expected = expected + 0.01 * (np.eye(3) if np.ndim(expected) == 2 else 1.0)
    np.testing.assert_array_equal(model.mean_, mean)
    np.testing.assert_allclose(model.covariance_, expected, rtol=1e-12)
    repeated = Gaussian(covariance_type=kind, fixed_mean=mean, reg_covar=0.01)
    repeated.fit(np.repeat(X, weights.astype(int), axis=0))  # frequency weights
    np.testing.assert_allclose(repeated.covariance_, model.covariance_, rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_fixed_covariance_of_every_type_with_weights(kind):
    X = correlated()
    weights = RNG.uniform(0.0, 2.0, size=len(X))
    cov = held_covariance(kind)
    model = Gaussian(covariance_type=kind, fixed_covariance=cov, reg_covar=0.5)
    model.fit(X, sample_weight=weights)
    np.testing.assert_array_equal(model.covariance_, cov)
    np.testing.assert_allclose(model.mean_, np.average(X, axis=0, weights=weights), rtol=1e-12)
    full = np.diag(np.broadcast_to(cov, 3)) if np.ndim(cov) < 2 else cov
    expected = stats.multivariate_normal(model.mean_, full).logpdf(X[:5])
    np.testing.assert_allclose(model.logpdf(X[:5]), expected, rtol=1e-11)


def test_float32_fixed_mean_on_offset_data_and_tensors_stay_tensors():
    X64 = 1000.0 + 0.01 * np.random.default_rng(3).normal(size=(20_000, 2))
    X = X64.astype(np.float32)
    mean = np.array([1000.0, 1000.0])
    model = Gaussian(fixed_mean=mean).fit(X)
    assert model.covariance_.dtype == np.float32
    expected = scatter_about(X.astype(np.float64), mean, np.ones(len(X)), "full")
    np.testing.assert_allclose(model.covariance_, expected, rtol=1e-4, atol=1e-9)
    tensor = Gaussian(fixed_covariance=torch.eye(2, dtype=torch.float64)).fit(torch.from_numpy(X))
    assert isinstance(tensor.mean_, torch.Tensor) and tensor.mean_.dtype == torch.float32
    np.testing.assert_allclose(tensor.mean_.numpy(), X64.mean(0), rtol=1e-6)
    assert torch.equal(tensor.covariance_, torch.eye(2))


def test_a_covariance_singular_in_float32_is_refused_with_advice():
    X = np.random.default_rng(0).normal(size=(50, 2)).astype(np.float32)
    nearly = np.array([[1.0, 1.0 - 1e-9], [1.0 - 1e-9, 1.0]])
    with pytest.raises(ValueError, match="fixed_covariance .* float32; fit in float64"):
        Gaussian(fixed_covariance=nearly).fit(X)
    model = Gaussian(fixed_covariance=nearly, dtype="float64").fit(X)
    np.testing.assert_array_equal(model.covariance_, nearly)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_gradient_does_not_move_the_held_part(kind):
    X = correlated(n=300)
    mean = X.mean(0) + 0.2
    model = Gaussian(
        covariance_type=kind, algorithm="gradient", fixed_mean=mean, learning_rate=0.1
    ).fit(X)
    np.testing.assert_array_equal(model.mean_, mean)
    closed = Gaussian(covariance_type=kind, fixed_mean=mean).fit(X)
    np.testing.assert_allclose(model.covariance_, closed.covariance_, rtol=0.02, atol=0.02)
    cov = held_covariance(kind)
    held = Gaussian(
        covariance_type=kind,
        algorithm="gradient",
        fixed_covariance=cov,
        reg_covar=0.5,
        learning_rate=0.1,
    ).fit(X)
    np.testing.assert_array_equal(held.covariance_, cov)  # no reg_covar either
    np.testing.assert_allclose(held.mean_, X.mean(0), atol=0.02)
    both = Gaussian(algorithm="gradient", fixed_mean=mean, fixed_covariance=spd()).fit(X)
    assert both.n_iter_ == 0 and both.converged_
    np.testing.assert_array_equal(both.mean_, mean)


def test_a_data_source_gives_the_in_memory_result():
    X = correlated(n=1000)
    mean, cov = np.array([0.0, 1.0, 2.0]), spd()
    tensor = torch.from_numpy(X)
    for params in (
        {"fixed_mean": mean},
        {"fixed_covariance": cov},
        {"fixed_mean": mean, "fixed_covariance": cov},
    ):
        streamed = Gaussian(**params, chunk_size=128).fit(from_tensor(tensor, chunk_size=96))
        in_memory = Gaussian(**params).fit(X)
        np.testing.assert_allclose(streamed.mean_, in_memory.mean_, rtol=1e-12)
        np.testing.assert_allclose(streamed.covariance_, in_memory.covariance_, rtol=1e-12)


#: What the two gloo ranks hold in :func:`_worker`, by scenario.
HELD_ACROSS_RANKS = {
    "mean": {"fixed_mean": [0.0, 1.0, 2.0]},
    "mean_diag": {"fixed_mean": [0.0, 1.0, 2.0], "covariance_type": "diag"},
    "covariance": {"fixed_covariance": np.diag([1.0, 2.0, 3.0]).tolist()},
    "both": {
        "fixed_mean": [0.0, 1.0, 2.0],
        "fixed_covariance": 2.0,
        "covariance_type": "spherical",
    },
}


def _worker(rank_id: int, port: int, out: Path) -> None:
    """One of two gloo ranks: fits its shard with held values (run as a script)."""
    import torch.distributed as dist

    join_group(rank_id, port, seconds=40)
    try:
        X = correlated(n=600)
        shard = X[:450] if rank_id == 0 else X[450:]  # uneven on purpose
        results: dict[str, object] = {}
        for name, params in HELD_ACROSS_RANKS.items():
            model = Gaussian(**params).fit(shard)
            results[name] = [model.mean_.tolist(), np.asarray(model.covariance_).tolist()]
        try:  # each rank holds its own mean: moments about different points
            Gaussian(fixed_mean=[0.0, 0.0, float(rank_id)]).fit(shard)
            results["error"] = None
        except ValueError as error:
            results["error"] = str(error)
        (out / f"rank{rank_id}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


def test_across_two_ranks_the_fit_is_the_single_process_fit(tmp_path):
    X = correlated(n=600)
    ranks = json_results(__file__, tmp_path, timeout=150)
    for name, params in HELD_ACROSS_RANKS.items():
        single = Gaussian(**params).fit(X)
        for result in ranks:
            mean, covariance = result[name]
            np.testing.assert_allclose(mean, single.mean_, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(covariance, single.covariance_, rtol=1e-12)
    first, second = (result["error"] for result in ranks)
    assert first is not None and first == second and "fixed_mean/fixed_covariance" in first


# -- bad values ----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"fixed_mean": np.zeros((3, 3))}, "fixed_mean must have shape \\(3,\\).*\\(3, 3\\)"),
        ({"fixed_mean": np.zeros(4)}, "fixed_mean must have shape \\(3,\\)"),
        ({"fixed_mean": [0.0, np.inf, 0.0]}, "fixed_mean must be finite, it contains infinity"),
        ({"fixed_mean": [0.0, np.nan, 0.0]}, "fixed_mean must be finite, it contains NaN"),
        ({"fixed_mean": ["a", "b", "c"]}, "fixed_mean must be an array of numbers"),
        ({"fixed_mean": [1j, 0.0, 0.0]}, "fixed_mean must be real numbers"),
        ({"fixed_covariance": np.eye(2)}, "fixed_covariance must have shape \\(3, 3\\)"),
        ({"fixed_covariance": np.ones(3)}, "shape \\(3, 3\\) for covariance_type='full'"),
        ({"fixed_covariance": np.eye(3)[:, :2]}, "fixed_covariance must have shape"),
        ({"fixed_covariance": np.full((3, 3), np.nan)}, "fixed_covariance must be finite"),
        (
            {"fixed_covariance": np.array([[1.0, 0.5, 0], [0.0, 1, 0], [0, 0, 1]])},
            "fixed_covariance must be symmetric",
        ),
        (
            {"fixed_covariance": np.diag([1.0, -1.0, 1.0])},
            "fixed_covariance must be symmetric positive definite; its smallest eigenvalue is -1",
        ),
        ({"fixed_covariance": np.ones((3, 3))}, "symmetric positive definite"),
        (
            {"covariance_type": "diag", "fixed_covariance": [1.0, 0.0, 1.0]},
            "fixed_covariance must be positive \\(variances\\)",
        ),
        (
            {"covariance_type": "diag", "fixed_covariance": np.eye(3)},
            "shape \\(3,\\) for covariance_type='diag'",
        ),
        (
            {"covariance_type": "spherical", "fixed_covariance": [1.0]},
            "shape \\(\\) for covariance_type='spherical'",
        ),
        ({"covariance_type": "spherical", "fixed_covariance": -2.0}, "must be positive"),
    ],
)
def test_bad_fixed_values_are_value_errors_naming_the_parameter(params, message):
    X = correlated(n=20)
    model = Gaussian(**params)
    with pytest.raises(ValueError, match=message):
        model.fit(X)
    assert not hasattr(model, "mixture_")


def test_fixed_values_of_the_wrong_kind_are_refused_by_the_constraints():
    X = correlated(n=20)
    with pytest.raises(ValueError, match="'fixed_mean' parameter of Gaussian"):
        Gaussian(fixed_mean="zero").fit(X)
    with pytest.raises(ValueError, match="'fixed_covariance' parameter of Gaussian"):
        Gaussian(fixed_covariance="identity").fit(X)
    with pytest.raises(TypeError, match="fixed_mean must be an array of numbers"):
        Gaussian(fixed_mean=[None, object(), 1.0]).fit(X)


def test_a_failed_fit_keeps_the_previous_model():
    X = correlated(n=50)
    model = Gaussian().fit(X)
    before = model.mean_.copy()
    with pytest.raises(ValueError, match="fixed_mean"):
        model.set_params(fixed_mean=np.zeros(5)).fit(X)
    np.testing.assert_array_equal(model.mean_, before)


# -- parameters, clone and model files ---------------------------------------------------
@pytest.mark.parametrize(
    ("kind", "params"),
    [
        ("full", {"fixed_mean": np.array([0.0, 1.0, 2.0]), "fixed_covariance": spd()}),
        ("diag", {"fixed_covariance": [1.0, 2.0, 3.0]}),
        ("spherical", {"fixed_covariance": 2.5, "fixed_mean": [0.0, 0.0, 0.0]}),
        ("full", {"fixed_mean": torch.tensor([0.5, 0.5, 0.5], dtype=torch.float64)}),
    ],
)
def test_get_params_clone_save_and_load_keep_the_fixed_values(kind, params, tmp_path):
    X = correlated(n=100)
    model = Gaussian(covariance_type=kind, **params).fit(X)
    for name, value in params.items():
        assert model.get_params()[name] is value
    copy = clone(model).fit(X)
    np.testing.assert_array_equal(copy.covariance_, model.covariance_)
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "held.mixtorch"))
    for name, value in params.items():
        stored = loaded.get_params()[name]
        np.testing.assert_array_equal(np.asarray(stored), np.asarray(value))
    np.testing.assert_array_equal(loaded.score_samples(X), model.score_samples(X))
    refitted = loaded.fit(X)
    np.testing.assert_array_equal(refitted.mean_, model.mean_)
    np.testing.assert_array_equal(refitted.covariance_, model.covariance_)


# -- marginal and condition -----------------------------------------------------------------
def fitted(kind="full", dim=4, **params):
    X = correlated(n=500, dim=dim, seed=5)
    return Gaussian(covariance_type=kind, **params).fit(X), X


@pytest.mark.parametrize(
    "features", [[2], [-1, 0], [3, 1, 0], np.array([True, False, True, False])]
)
def test_marginal_matches_scipy_marginal(features):
    model, X = fitted()
    reference = stats.multivariate_normal(model.mean_, model.covariance_)
    dims = np.flatnonzero(features) if np.asarray(features).dtype == bool else features
    expected = reference.marginal(dims)
    marginal = model.marginal(features)
    assert isinstance(marginal, Gaussian) and marginal.n_features_in_ == len(dims)
    points = X[:7][:, dims]
    np.testing.assert_allclose(marginal.logpdf(points), expected.logpdf(points), rtol=1e-12)
    np.testing.assert_allclose(marginal.cov, expected.cov, rtol=1e-14)


@pytest.mark.parametrize("kind", ["diag", "spherical", "tied"])
def test_marginal_keeps_the_covariance_type(kind):
    model, X = fitted(kind)
    marginal = model.marginal([3, 1])
    assert marginal.covariance_type == kind
    expected = stats.multivariate_normal(model.mean[[3, 1]], model.cov[np.ix_([3, 1], [3, 1])])
    np.testing.assert_allclose(marginal.logpdf(X[:5, [3, 1]]), expected.logpdf(X[:5, [3, 1]]))


def schur_conditional(mean, cov, given, values):
    """The float64 Gaussian conditional of the other features given ``x[given] = values``."""
    free = [i for i in range(len(mean)) if i not in given]
    gain = cov[np.ix_(free, given)] @ np.linalg.inv(cov[np.ix_(given, given)])
    cond_mean = mean[free] + gain @ (np.asarray(values) - mean[given])
    cond_cov = cov[np.ix_(free, free)] - gain @ cov[np.ix_(given, free)]
    return cond_mean, cond_cov


@pytest.mark.parametrize("given", [[1], [3, 0], [-2, 0]])
def test_condition_is_the_schur_complement(given):
    model, X = fitted()
    values = [0.7, -1.3][: len(given)]
    positive = [g % 4 for g in given]
    mean, cov = schur_conditional(model.mean_, model.covariance_, positive, values)
    conditional = model.condition(given, values)
    assert isinstance(conditional, Gaussian)
    np.testing.assert_allclose(conditional.mean_, mean, rtol=1e-12)
    np.testing.assert_allclose(conditional.covariance_, cov, rtol=1e-11)
    free = [i for i in range(4) if i not in positive]
    expected = stats.multivariate_normal(mean, cov).logpdf(X[:5, free])
    np.testing.assert_allclose(conditional.logpdf(X[:5, free]), expected, rtol=1e-11)


def test_condition_of_a_diagonal_gaussian_is_its_marginal():
    model, _ = fitted("diag")
    conditional = model.condition([0, 2], [5.0, -5.0])
    assert conditional.covariance_type == "diag"
    np.testing.assert_allclose(conditional.mean_, model.mean_[[1, 3]], rtol=1e-14)
    np.testing.assert_allclose(conditional.covariance_, model.covariance_[[1, 3]], rtol=1e-14)


def test_float32_condition_stays_close_to_the_float64_schur_complement():
    model, X = fitted(dtype="float32")
    assert model.mean_.dtype == np.float32
    mean, cov = schur_conditional(
        model.mean_.astype(float), model.covariance_.astype(float), [0, 1], [0.2, 0.4]
    )
    conditional = model.condition([0, 1], [0.2, 0.4])
    assert conditional.mean_.dtype == np.float32
    np.testing.assert_allclose(conditional.mean_, mean, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(conditional.covariance_, cov, rtol=1e-4, atol=1e-5)


def test_marginal_and_condition_reset_the_fixed_values_and_keep_the_rest():
    model, X = fitted(fixed_mean=np.zeros(4), reg_covar=1e-3, random_state=3)
    for derived in (model.marginal([0, 1]), model.condition([0], [1.0])):
        params = derived.get_params()
        assert params["fixed_mean"] is None and params["fixed_covariance"] is None
        assert params["reg_covar"] == 1e-3 and params["random_state"] == 3
        derived.fit(X[:, : derived.n_features_in_])  # refits without a wrongly shaped mean


def test_dataframe_names_select_and_label_values():
    pd = pytest.importorskip("pandas")
    X = correlated(n=300, dim=3, seed=2)
    frame = pd.DataFrame(X, columns=["a", "b", "c"])
    model = Gaussian().fit(frame)
    marginal = model.marginal(["c", "a"])
    assert list(marginal.feature_names_in_) == ["c", "a"]
    np.testing.assert_allclose(marginal.mean_, X.mean(0)[[2, 0]], rtol=1e-12)
    by_position = model.condition([0, 2], [1.0, -1.0])
    for values in (pd.Series({"c": -1.0, "b": 99.0, "a": 1.0}), {"a": 1.0, "c": -1.0}):
        by_name = model.condition(["a", "c"], values)
        np.testing.assert_allclose(by_name.mean_, by_position.mean_, rtol=1e-14)
        assert list(by_name.feature_names_in_) == ["b"]
    with pytest.raises(ValueError, match="lacks the features \\['c'\\]"):
        model.condition(["a", "c"], pd.Series({"a": 1.0, "b": 2.0}))
    with pytest.raises(ValueError, match="not columns the model was fitted on"):
        model.marginal(["a", "z"])


def test_bad_features_and_values_are_refused():
    model, _ = fitted()
    with pytest.raises(ValueError):
        model.marginal([4])
    with pytest.raises(ValueError):
        model.marginal([1, 1])
    with pytest.raises(TypeError, match="fitted without them"):
        model.marginal(["a"])
    with pytest.raises(ValueError):
        model.condition([0, 1, 2, 3], [0.0, 0.0, 0.0, 0.0])  # nothing left free
    with pytest.raises(ValueError):
        model.condition([0, 1], [0.0])
    with pytest.raises(TypeError, match="mapping"):
        model.condition([0], {"a": 1.0})


# -- cdf integration options ---------------------------------------------------------------
def three_features():
    return fitted(dim=3)[0]


@pytest.mark.parametrize("method", ["cdf", "logcdf"])
@pytest.mark.parametrize(
    "options",
    [{}, {"maxpts": 3000}, {"abseps": 1e-2, "releps": 0.0}, {"maxpts": 50_000, "abseps": 0.0}],
)
def test_cdf_options_give_scipys_result(method, options):
    model = three_features()
    points = model.mean_ + np.array([[0.0, 0.0, 0.0], [1.0, -0.5, 2.0], [-1.0, 1.0, 0.3]])
    reference = stats.multivariate_normal(model.mean_, model.covariance_, **options)
    expected = getattr(reference, method)(points, rng=np.random.default_rng(11))
    ours = getattr(model, method)(points, rng=np.random.default_rng(11), **options)
    np.testing.assert_allclose(ours, expected, rtol=1e-12)


def test_the_options_change_the_integration_where_it_is_numerical():
    model = three_features()
    point = model.mean_ + np.array([0.3, -0.2, 0.5])
    precise = model.cdf(point, rng=0, abseps=1e-7, maxpts=2_000_000)
    coarse = [model.cdf(point, rng=seed, maxpts=3, abseps=0.0) for seed in range(5)]
    assert len(set(coarse)) > 1  # a handful of points: the random shifts show
    assert max(abs(c - precise) for c in coarse) < 0.05
    loose = [model.cdf(point, rng=seed, abseps=0.5) for seed in range(3)]
    assert all(abs(value - precise) < 0.05 for value in loose)
    assert min(abs(value - precise) for value in loose) > 0.0  # stopped early


def test_options_are_accepted_where_the_cdf_is_exact():
    model = Gaussian().fit(RNG.normal(2.0, 3.0, size=(400, 1)))
    scale = np.sqrt(model.covariance_[0, 0])
    x = np.array([-1.0, 2.0, 8.0])
    ours = model.cdf(x, maxpts=1, abseps=0.5, releps=0.5)
    np.testing.assert_allclose(ours, stats.norm(model.mean_[0], scale).cdf(x), rtol=1e-12)


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"maxpts": 0}, ValueError, "maxpts must be a positive integer"),
        ({"maxpts": -10}, ValueError, "maxpts must be a positive integer"),
        ({"maxpts": 1.5}, TypeError, "maxpts must be an integer"),
        ({"abseps": -1e-3}, ValueError, "abseps must be a finite number >= 0"),
        ({"abseps": np.nan}, ValueError, "abseps must be a finite number >= 0"),
        ({"releps": np.inf}, ValueError, "releps must be a finite number >= 0"),
        ({"releps": "0.1"}, TypeError, "releps must be a real number"),
        ({"abseps": True}, TypeError, "abseps must be a real number"),
    ],
)
@pytest.mark.parametrize("dim", [1, 3])
def test_bad_cdf_options(options, error, message, dim):
    model = fitted(dim=dim)[0] if dim > 1 else Gaussian().fit(RNG.normal(size=(50, 1)))
    for method in (model.cdf, model.logcdf):
        with pytest.raises(error, match=message):
            method(np.zeros(dim), **options)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

"""``sample_weight`` of the mixture estimators and of their k-means starts.

References: the fit of the rows repeated ``w_i`` times (NumPy's ``np.repeat``), the fit
of the rows of positive weight alone, scikit-learn's ``KMeans.fit(X, sample_weight=...)``
from given centres, and NumPy's weighted average of ``score_samples``. Integer weights
equal repeated rows only from the same start, so fits that draw their start are compared
on data whose k-means partition does not depend on the draws, or from given parameters.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.cluster import KMeans

from _gloo import join_group, json_results
from mixtorch import BayesianGaussianMixture, GaussianMixture, Mixture
from mixtorch.covariance import covariance_class
from mixtorch.fit.init import initial_responsibilities
from mixtorch.fit.kmeans import kmeans, kmeans_plusplus, lloyd
from mixtorch.fit.missing import _missing_pass, fill_column_means
from mixtorch.fit.variational import (
    VariationalPrior,
    data_prior_moments,
    fit_variational,
    posterior_from_responsibilities,
    weighted_prior_moments,
)
from mixtorch.sources import as_source

COVARIANCE_TYPES = ("full", "tied", "diag", "spherical")
CENTRES = np.array([[0.0, 0.0], [5.0, 5.0], [0.0, 6.0]])
PRECISIONS = {
    "full": np.stack([np.eye(2)] * 3),
    "tied": np.eye(2),
    "diag": np.ones((3, 2)),
    "spherical": np.ones(3),
}
#: Settings that run exactly ``max_iter`` steps from parameters given in full.
EXACT_STEPS = {"tol": 0.0, "max_iter": 8, "weights_init": [0.3, 0.3, 0.4], "means_init": CENTRES}
NOT_CONVERGED = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")


def blobs(separation: float = 1.0, n_per: int = 40, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = np.concatenate([rng.normal(c * separation, 1.0, size=(n_per, 2)) for c in CENTRES])
    return X[rng.permutation(len(X))]


def integer_weights(n: int, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 4, size=n)  # 0, 1, 2 or 3


def fitted(model, canonical: bool = False) -> dict[str, np.ndarray]:
    """The fitted parameters; ``canonical``: components ordered by their means (fits whose
    starts were drawn may number the same components differently)."""
    means = np.asarray(model.means_)
    order = np.argsort(means[:, 0] + 3 * means[:, 1]) if canonical else np.arange(len(means))
    covariances = np.asarray(model.covariances_)
    return {
        "weights": np.asarray(model.weights_)[order],
        "means": means[order],
        "covariances": covariances if model.covariance_type == "tied" else covariances[order],
        "lower_bound": np.asarray(model.lower_bound_),
    }


def assert_same_fit(got, expected, rtol=1e-10, atol=1e-12, canonical=False) -> None:
    mine = fitted(got, canonical)
    for name, value in fitted(expected, canonical).items():
        np.testing.assert_allclose(mine[name], value, rtol=rtol, atol=atol, err_msg=name)


# -- (1) integer weights are repeated rows --------------------------------------------------
@NOT_CONVERGED
@pytest.mark.parametrize("algorithm", ["em", "gradient"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_are_repeated_rows_from_a_given_start(covariance_type, algorithm):
    X = blobs()
    w = integer_weights(len(X))
    settings = {
        **EXACT_STEPS,
        "covariance_type": covariance_type,
        "precisions_init": PRECISIONS[covariance_type],
        "algorithm": algorithm,
    }
    if algorithm == "gradient":  # full batch: the weighted mean NLL is the repeated rows'
        settings.update(max_iter=5, learning_rate=0.05)
    weighted = GaussianMixture(3, **settings).fit(X, sample_weight=w)
    repeated = GaussianMixture(3, **settings).fit(np.repeat(X, w, axis=0))
    assert weighted.n_iter_ == repeated.n_iter_ == settings["max_iter"]
    assert_same_fit(weighted, repeated)
    # and the step moved the parameters: the comparison is not of the start with itself
    assert np.abs(np.asarray(weighted.means_) - CENTRES).max() > 1e-3


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++"])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_integer_weights_are_repeated_rows_from_a_drawn_start(covariance_type, init_params):
    # far-apart clusters: k-means ends in the true partition whatever its seeds, and EM
    # from one seed per cluster converges to it; both fits then reach the same optimum
    X = blobs(separation=4.0)
    w = integer_weights(len(X))
    settings = {"covariance_type": covariance_type, "init_params": init_params, "tol": 1e-12}
    settings.update(random_state=0, max_iter=500)
    weighted = GaussianMixture(3, **settings).fit(X, sample_weight=w)
    repeated = GaussianMixture(3, **settings).fit(np.repeat(X, w, axis=0))
    assert_same_fit(weighted, repeated, rtol=1e-7, atol=1e-9, canonical=True)


@NOT_CONVERGED
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_bayesian_integer_weights_are_repeated_rows(covariance_type):
    # far-apart clusters (the same k-means partition); the default mean_prior and
    # covariance_prior are the weighted moments too
    X = blobs(separation=4.0)
    w = integer_weights(len(X))
    settings = {
        "covariance_type": covariance_type,
        "weight_concentration_prior_type": "dirichlet_distribution",
        "random_state": 0,
        "tol": 0.0,
        "max_iter": 10,
    }
    weighted = BayesianGaussianMixture(3, **settings).fit(X, sample_weight=w)
    repeated = BayesianGaussianMixture(3, **settings).fit(np.repeat(X, w, axis=0))
    assert_same_fit(weighted, repeated, rtol=1e-9, canonical=True)
    np.testing.assert_allclose(weighted.mean_prior_, repeated.mean_prior_, rtol=1e-12)
    np.testing.assert_allclose(weighted.covariance_prior_, repeated.covariance_prior_, rtol=1e-12)
    np.testing.assert_allclose(
        np.sort(weighted.degrees_of_freedom_, axis=None),
        np.sort(repeated.degrees_of_freedom_, axis=None),
        rtol=1e-12,
    )


@pytest.mark.parametrize("process", [True, False])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_variational_updates_of_weighted_chunks_are_repeated_rows(covariance_type, process):
    # from one given posterior (components in a fixed order, which the stick-breaking
    # prior needs), (chunk, weight) pairs against the rows repeated
    X = torch.from_numpy(blobs())
    w = torch.from_numpy(integer_weights(len(X)).astype(float))
    repeated = X.repeat_interleave(w.long(), 0)
    kind = covariance_class(covariance_type)
    mean, covariance = weighted_prior_moments(X, w, kind, rows=50)
    expected_mean, expected_covariance, _ = data_prior_moments(lambda: [repeated], kind)
    torch.testing.assert_close(mean, expected_mean, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(covariance, expected_covariance, rtol=1e-12, atol=1e-12)
    prior = VariationalPrior(0.1, process, 1.0, mean, 2.0, covariance)
    labels = torch.from_numpy(np.argmin(((blobs()[:, None] - CENTRES) ** 2).sum(2), 1))
    hard = torch.nn.functional.one_hot(labels, 3).double()
    start = posterior_from_responsibilities(X, hard * w[:, None], prior, kind, 1e-6, rows=50)
    repeated_start = posterior_from_responsibilities(
        repeated, hard.repeat_interleave(w.long(), 0), prior, kind, 1e-6, rows=50
    )
    settings = {"tol": 0.0, "max_iter": 5}
    split = list(zip(X.split(50), w.split(50), strict=True))
    weighted, trace = fit_variational(lambda: split, start, prior, **settings)
    expected, expected_trace = fit_variational(
        lambda: [repeated], repeated_start, prior, **settings
    )
    for name in ("means", "mean_precision", "degrees_of_freedom"):
        torch.testing.assert_close(
            getattr(weighted, name), getattr(expected, name), rtol=1e-10, atol=1e-12
        )
    torch.testing.assert_close(
        weighted.covariance.covariances, expected.covariance.covariances, rtol=1e-10, atol=1e-12
    )
    np.testing.assert_allclose(trace.lower_bounds, expected_trace.lower_bounds, rtol=1e-10)


def test_partial_fit_batches_with_integer_weights_are_repeated_batches():
    X, w = blobs(), integer_weights(120)
    start = {"weights_init": [0.3, 0.3, 0.4], "means_init": CENTRES}
    start["precisions_init"] = PRECISIONS["full"]
    weighted, repeated = GaussianMixture(3, **start), GaussianMixture(3, **start)
    for rows in np.array_split(np.arange(len(X)), 4):
        weighted.partial_fit(X[rows], sample_weight=w[rows])
        repeated.partial_fit(np.repeat(X[rows], w[rows], axis=0))
    assert_same_fit(weighted, repeated)


# -- (2) weighted k-means against scikit-learn ---------------------------------------------
@pytest.mark.parametrize("max_iter", [1, 2, 300])
def test_weighted_lloyd_matches_scikit_learn(max_iter):
    X = blobs(n_per=80, seed=3)
    w = np.random.default_rng(4).uniform(0.0, 3.0, size=len(X))
    w[::7] = 0.0
    centres = X[[0, 1, 2]]
    reference = KMeans(3, init=centres, n_init=1, tol=0.0, max_iter=max_iter)
    reference.fit(X, sample_weight=w)
    ours = lloyd(
        torch.from_numpy(X), torch.from_numpy(centres), max_iter=max_iter, tol=0.0,
        sample_weight=torch.from_numpy(w),
    )  # fmt: skip
    np.testing.assert_allclose(ours.centers.numpy(), reference.cluster_centers_, rtol=1e-12)
    assert ours.n_iter == reference.n_iter_
    if max_iter == 300:  # converged: the last assignment is scikit-learn's final one
        np.testing.assert_allclose(ours.inertia, reference.inertia_, rtol=1e-10)
        np.testing.assert_array_equal(ours.labels.numpy(), reference.labels_)


def test_weighted_lloyd_refills_an_empty_cluster_as_scikit_learn():
    X = blobs(n_per=30, seed=5)
    w = np.random.default_rng(6).uniform(0.5, 2.0, size=len(X))
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [100.0, 100.0]])  # the last one gets no row
    reference = KMeans(3, init=centres, n_init=1, tol=0.0).fit(X, sample_weight=w)
    ours = lloyd(torch.from_numpy(X), torch.from_numpy(centres), sample_weight=torch.from_numpy(w))
    np.testing.assert_allclose(ours.centers.numpy(), reference.cluster_centers_, rtol=1e-12)


def test_weighted_kmeans_is_the_repeated_rows_and_keeps_float32_accuracy():
    X = blobs(separation=4.0, seed=7)
    w = integer_weights(len(X), seed=8)
    centres = torch.from_numpy(X[np.flatnonzero(w)[:3]])
    weighted = lloyd(torch.from_numpy(X), centres, sample_weight=torch.from_numpy(w), tol=0.0)
    repeated = lloyd(torch.from_numpy(np.repeat(X, w, axis=0)), centres, tol=0.0)
    np.testing.assert_allclose(weighted.centers.numpy(), repeated.centers.numpy(), rtol=1e-12)
    np.testing.assert_allclose(weighted.inertia, repeated.inertia, rtol=1e-12)
    offset = torch.from_numpy(X + 1e4).float()  # a large offset, a small spread
    single = lloyd(offset, centres.float() + 1e4, sample_weight=torch.from_numpy(w), tol=0.0)
    np.testing.assert_allclose(single.centers.double().numpy() - 1e4, weighted.centers, atol=2e-3)


def test_weighted_seeding_draws_in_proportion_to_weight_and_never_zero_weight_rows():
    X = torch.tensor([[0.0], [1.0], [2.0], [50.0]], dtype=torch.float64)
    w = torch.tensor([1.0, 2.0, 7.0, 0.0], dtype=torch.float64)
    generator = torch.Generator().manual_seed(0)
    first = [int(kmeans_plusplus(X, 1, generator, sample_weight=w)[1]) for _ in range(4000)]
    np.testing.assert_allclose(
        np.bincount(first, minlength=4) / 4000, [0.1, 0.2, 0.7, 0], atol=0.02
    )
    # the second seed: proportional to w D^2 from the first, a row of weight 0 never
    for _ in range(50):
        centres, indices = kmeans_plusplus(X, 3, generator, n_local_trials=1, sample_weight=w)
        assert sorted(indices.tolist()) == [0, 1, 2]
    result = kmeans(X, 2, generator, sample_weight=w)
    assert 50.0 not in result.centers.flatten().tolist()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_unit_weights_draw_the_unweighted_seeds_and_integer_weights_are_repeated_rows(dtype):
    X = torch.from_numpy(blobs(n_per=900, seed=11)).to(dtype)  # several sampling blocks
    ones = torch.full((X.shape[0],), 2.5, dtype=torch.float64)  # equal: scaled to 1
    for seed in range(5):
        plain = kmeans_plusplus(X, 6, torch.Generator().manual_seed(seed))
        weighted = kmeans_plusplus(X, 6, torch.Generator().manual_seed(seed), sample_weight=ones)
        torch.testing.assert_close(weighted[1], plain[1], rtol=0, atol=0)
        torch.testing.assert_close(weighted[0], plain[0], rtol=0, atol=0)
    # weighted Lloyd (the chunked path with bounds) against plain Lloyd on repeated rows
    X64 = X.double()
    w = integer_weights(X.shape[0], seed=12)
    centres = X64[np.flatnonzero(w)[[0, 700, 1400, 2000]]]
    weighted = lloyd(X64, centres, sample_weight=torch.from_numpy(w), tol=0.0, rows=256)
    repeated_X = torch.from_numpy(np.repeat(X64.numpy(), w, axis=0))
    repeated = lloyd(repeated_X, centres, tol=0.0, rows=256)
    assert weighted.n_iter == repeated.n_iter > 2
    torch.testing.assert_close(weighted.centers, repeated.centers, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(weighted.inertia, repeated.inertia, rtol=1e-12)
    np.testing.assert_array_equal(np.repeat(weighted.labels.numpy(), w), repeated.labels.numpy())
    brute = ((X64 - weighted.centers[weighted.labels]) ** 2).sum(1).numpy() @ w
    np.testing.assert_allclose(weighted.inertia, brute, rtol=1e-10)


def test_random_from_data_draws_distinct_rows_in_proportion_to_weight():
    X = torch.arange(5.0, dtype=torch.float64)[:, None]
    w = torch.tensor([1.0, 0.0, 3.0, 0.0, 6.0], dtype=torch.float64)
    generator, firsts = torch.Generator().manual_seed(0), []
    for _ in range(3000):
        _, centres = initial_responsibilities(X, 2, "random_from_data", generator, 5, w)
        rows = centres[:, 0].long().tolist()
        assert len(set(rows)) == 2 and set(rows) <= {0, 2, 4}
        firsts.append(rows[0])
    np.testing.assert_allclose(np.bincount(firsts, minlength=5) / 3000, w / 10, atol=0.02)
    with pytest.raises(ValueError, match="positive sample_weight"):
        initial_responsibilities(X, 4, "random_from_data", generator, 5, w)


# -- (3) only relative weights matter to maximum likelihood ------------------------------------
@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random", "random_from_data"])
def test_scaled_weights_change_nothing(init_params):
    X, w = blobs(), integer_weights(120).astype(float)
    settings = {"init_params": init_params, "random_state": 0, "n_init": 2}
    base = GaussianMixture(3, **settings).fit(X, sample_weight=w)
    for scale in (1e-200, 0.3, 7.0, 1e200):
        assert_same_fit(GaussianMixture(3, **settings).fit(X, sample_weight=w * scale), base)
    # equal weights are no weights: the same draws, the same fit
    plain = GaussianMixture(3, **settings).fit(X)
    assert_same_fit(GaussianMixture(3, **settings).fit(X, sample_weight=np.full(120, 2.5)), plain)


@NOT_CONVERGED
def test_bayesian_weights_count_evidence():
    # frequency weights: doubling every weight is the data seen twice, not once
    X = blobs(separation=4.0)
    settings = {"random_state": 0, "tol": 0.0, "max_iter": 10, "covariance_type": "diag"}
    settings["weight_concentration_prior_type"] = "dirichlet_distribution"
    doubled = BayesianGaussianMixture(3, **settings).fit(X, sample_weight=np.full(120, 2.0))
    twice = BayesianGaussianMixture(3, **settings).fit(np.concatenate([X, X]))
    once = BayesianGaussianMixture(3, **settings).fit(X)
    assert_same_fit(doubled, twice, rtol=1e-9, canonical=True)
    assert np.sort(doubled.mean_precision_) == pytest.approx(
        np.sort(once.mean_precision_) * 2, rel=0.05
    )
    assert not np.allclose(
        np.sort(doubled.mean_precision_), np.sort(once.mean_precision_), rtol=0.5
    )


# -- (4) a row of weight 0 is a removed row ---------------------------------------------------
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_zero_weight_is_a_removed_row(covariance_type):
    X = blobs()
    w = integer_weights(len(X)).astype(float)
    keep = w > 0
    X[~keep] += 1e6  # far away: any effect of these rows would show
    settings = {"covariance_type": covariance_type, "random_state": 0}
    weighted = GaussianMixture(3, **settings).fit(X, sample_weight=w)
    removed = GaussianMixture(3, **settings).fit(X[keep], sample_weight=w[keep])
    assert_same_fit(weighted, removed, rtol=0, atol=0)
    ones = GaussianMixture(3, **settings).fit(X, sample_weight=keep.astype(float))
    assert_same_fit(ones, GaussianMixture(3, **settings).fit(X[keep]), rtol=0, atol=0)
    labels = GaussianMixture(3, **settings).fit_predict(X, sample_weight=w)
    np.testing.assert_array_equal(labels, weighted.predict(X))  # every row is labelled
    settings["max_iter"] = 300
    bayes = BayesianGaussianMixture(3, **settings).fit(X, sample_weight=w)
    bayes_removed = BayesianGaussianMixture(3, **settings).fit(X[keep], sample_weight=w[keep])
    assert_same_fit(bayes, bayes_removed, rtol=0, atol=0)


def test_zero_weight_rows_of_a_batch_are_removed_rows():
    X, w = blobs(), integer_weights(120).astype(float)
    weighted, removed = (GaussianMixture(3, random_state=0) for _ in range(2))
    for rows in np.array_split(np.arange(len(X)), 3):
        weighted.partial_fit(X[rows], sample_weight=w[rows])
        kept = rows[w[rows] > 0]
        removed.partial_fit(X[kept], sample_weight=w[kept])
    assert_same_fit(weighted, removed, rtol=0, atol=0)


# -- (5) weighted score -----------------------------------------------------------------------
def test_weighted_score_is_the_weighted_mean_of_score_samples():
    X, w = blobs(), integer_weights(120).astype(float)
    for model in (
        GaussianMixture(3, random_state=0).fit(X),
        GaussianMixture(3, covariance_type="diag", random_state=0, dtype="float32").fit(X),
        BayesianGaussianMixture(3, random_state=0, max_iter=300).fit(X),
    ):
        expected = np.average(np.asarray(model.score_samples(X), dtype=np.float64), weights=w)
        np.testing.assert_allclose(model.score(X, sample_weight=w), expected, rtol=1e-12)
        np.testing.assert_allclose(model.score(X, sample_weight=np.ones(120)), model.score(X))
    model = GaussianMixture(3, random_state=0).fit(X, sample_weight=w)
    np.testing.assert_allclose(model.lower_bound_, model.score(X, sample_weight=w), atol=1e-3)
    far = np.concatenate([X, [[1e300, -1e300]]])  # a density of 0 with weight 0: no part
    assert model.score_samples(far)[-1] == -np.inf
    weighted_far = model.score(far, sample_weight=np.append(w, 0.0))
    np.testing.assert_allclose(weighted_far, model.score(X, sample_weight=w), rtol=1e-14)


# -- (6) bad weights ---------------------------------------------------------------------------
BAD_WEIGHTS = [
    (np.ones(119), ValueError, "sample_weight has 119 entries"),
    (np.ones((120, 1)), ValueError, "1-D"),
    (np.r_[np.ones(119), -1.0], ValueError, "non-negative"),
    (np.r_[np.ones(119), np.nan], ValueError, "sample_weight.*NaN"),
    (np.r_[np.ones(119), np.inf], ValueError, "sample_weight.*infinity"),
    (np.zeros(120), ValueError, "sample_weight sums to zero"),
    (["a"] * 120, ValueError, "sample_weight"),
    (print, TypeError, "callback="),
]


@pytest.mark.parametrize(("weights", "error", "message"), BAD_WEIGHTS)
def test_bad_weights_are_refused_naming_sample_weight(weights, error, message):
    X = blobs()
    fitted_model = GaussianMixture(3, random_state=0).fit(X)
    calls = [
        lambda: GaussianMixture(3).fit(X, sample_weight=weights),
        lambda: GaussianMixture(3, algorithm="gradient").fit(X, sample_weight=weights),
        lambda: GaussianMixture(3).fit_predict(X, sample_weight=weights),
        lambda: GaussianMixture(3).partial_fit(X, sample_weight=weights),
        lambda: BayesianGaussianMixture(3).fit(X, sample_weight=weights),
    ]
    if error is ValueError:
        calls.append(lambda: fitted_model.score(X, sample_weight=weights))
    for call in calls:
        with pytest.raises(error, match=message):
            call()
    assert not hasattr(GaussianMixture(3), "mixture_")


def test_too_few_rows_of_positive_weight_and_data_sources():
    X = blobs()
    w = np.zeros(120)
    w[:2] = 1.0
    with pytest.raises(ValueError, match=r"n_samples = 2 \(rows of positive sample_weight\)"):
        GaussianMixture(3).fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="positive sample_weight"):
        GaussianMixture(3).partial_fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="positive sample_weight"):
        BayesianGaussianMixture(3).fit(X, sample_weight=w)
    with pytest.raises(ValueError, match="sum to more than 1"):
        BayesianGaussianMixture(1).fit(X, sample_weight=np.full(120, 1e-3))
    with pytest.raises(ValueError, match="chunk sources carry no weights"):
        GaussianMixture(3).fit(as_source(X), sample_weight=np.ones(120))
    # a weight of 0 on the only incomplete row removes it: the rest is complete
    holes = X.copy()
    holes[0, 1] = np.nan
    w = np.ones(120)
    w[0] = 0.0
    model = GaussianMixture(3, missing_values=np.nan, random_state=0)
    complete = GaussianMixture(3, random_state=0).fit(X[1:])
    assert_same_fit(model.fit(holes, sample_weight=w), complete, rtol=0, atol=0)


# -- missing entries ---------------------------------------------------------------------------
def with_holes(X: np.ndarray, seed: int = 11) -> np.ndarray:
    """``X`` with a sixth of its entries NaN (and one row with none observed)."""
    holes = X.copy()
    holes[np.random.default_rng(seed).uniform(size=X.shape) < 1 / 6] = np.nan
    holes[5] = np.nan
    return holes


@NOT_CONVERGED
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_missing_entries_with_integer_weights_are_repeated_rows(covariance_type):
    X = with_holes(blobs())
    w = integer_weights(len(X))
    settings = {**EXACT_STEPS, "covariance_type": covariance_type, "missing_values": np.nan}
    settings["precisions_init"] = PRECISIONS[covariance_type]
    weighted = GaussianMixture(3, **settings).fit(X, sample_weight=w)
    repeated = GaussianMixture(3, **settings).fit(np.repeat(X, w, axis=0))
    assert_same_fit(weighted, repeated)
    batched, plain = GaussianMixture(3, **settings), GaussianMixture(3, **settings)
    for rows in np.array_split(np.arange(len(X)), 3):
        batched.partial_fit(X[rows], sample_weight=w[rows])
        plain.partial_fit(np.repeat(X[rows], w[rows], axis=0))
    assert_same_fit(batched, plain)
    # the drawn start fills NaN with the weighted column means: the repeated rows' ones
    filled = fill_column_means(torch.from_numpy(X), torch.from_numpy(w).double())
    expected = np.nanmean(np.repeat(X, w, axis=0), axis=0)
    np.testing.assert_allclose(
        filled[np.isnan(X)].numpy(), np.broadcast_to(expected, X.shape)[np.isnan(X)]
    )


@pytest.mark.parametrize("batched", [True, False])
@pytest.mark.parametrize("covariance_type", COVARIANCE_TYPES)
def test_weighted_missing_statistics_are_the_repeated_rows(covariance_type, batched):
    # both E-step paths (many patterns at a time, one at a time), with a row too far for a
    # finite density (the per-pattern limit) and a row with nothing observed
    X = with_holes(blobs(n_per=20))
    X[7] = [1e160, np.nan]
    w = integer_weights(len(X), seed=12)
    w[[5, 7]] = [2, 3]
    mixture = Mixture.from_parameters(
        [0.3, 0.3, 0.4], CENTRES, covariance_class(covariance_type).from_precisions(
            torch.from_numpy(PRECISIONS[covariance_type]), 2
        ).covariances, covariance_type=covariance_type, dtype=torch.float64,
    )  # fmt: skip
    data, weights = torch.from_numpy(X), torch.from_numpy(w).double()
    pairs = list(zip(data.split(16), weights.split(16), strict=True))
    got = _missing_pass(mixture, pairs, batched=batched)
    expected = _missing_pass(mixture, [data.repeat_interleave(weights.long(), 0)], batched=batched)
    for name in ("counts", "sums", "scatter", "log_likelihood", "n_samples"):
        torch.testing.assert_close(
            getattr(got, name), getattr(expected, name), rtol=1e-12, atol=1e-9
        )


# -- distributed partial_fit --------------------------------------------------------------------
START = {
    "weights_init": [0.3, 0.3, 0.4],
    "means_init": CENTRES,
    "precisions_init": PRECISIONS["full"],
}
SIZES = [(30, 25), (20, 31), (35, 12)]  # rows per batch on ranks 0 and 1


def rank_batches(rank_id: int) -> list[tuple[np.ndarray, np.ndarray | None]]:
    """Rank ``rank_id``'s batches and weights: rank 1's second batch weighs all rows 0
    (it adds nothing), its third is unweighted (its rows weigh 1)."""
    X, w, out, start = blobs(n_per=60, seed=9), integer_weights(180, seed=10), [], 0
    for step, sizes in enumerate(SIZES):
        first = start + (0 if rank_id == 0 else sizes[0])
        rows = slice(first, first + sizes[rank_id])
        weights = w[rows].astype(float)
        if rank_id == 1 and step == 1:
            weights = np.zeros_like(weights)
        out.append((X[rows], None if rank_id == 1 and step == 2 else weights))
        start += sum(sizes)
    return out


def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    join_group(rank_id, port, seconds=60)
    try:
        given, drawn = GaussianMixture(3, **START), GaussianMixture(3, random_state=rank_id)
        for X, weights in rank_batches(rank_id):
            given.partial_fit(X, sample_weight=weights)
            drawn.partial_fit(X, sample_weight=weights)
        results = {name: {key: value.tolist() for key, value in fitted(model).items()}
                   for name, model in (("given", given), ("drawn", drawn))}  # fmt: skip
        try:
            GaussianMixture(3).fit(X, sample_weight=np.ones(len(X)))
        except ValueError as error:
            results["fit_refused"] = str(error)
        (out / f"rank{rank_id}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_partial_fit_across_ranks_sums_the_weights_of_the_union(tmp_path):
    results = json_results(__file__, tmp_path, timeout=150)
    single = GaussianMixture(3, **START)
    for (X0, w0), (X1, w1) in zip(rank_batches(0), rank_batches(1), strict=True):
        w1 = np.ones(len(X1)) if w1 is None else w1
        single.partial_fit(np.concatenate([X0, X1]), sample_weight=np.concatenate([w0, w1]))
    for result in results:
        for name, value in fitted(single).items():
            np.testing.assert_allclose(result["given"][name], value, rtol=1e-10, atol=1e-12)
        assert "chunk sources carry no weights" in result["fit_refused"]
    assert results[0]["drawn"] == results[1]["drawn"]  # one start, drawn from the union


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

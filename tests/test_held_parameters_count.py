"""BIC and AIC count only the parameters a fit estimated: groups held fixed are given."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from mixtorch import GaussianMixture, Mixture
from mixtorch.mixture import parameter_count

KINDS = ("full", "tied", "diag", "spherical")


def _data(n: int = 400, d: int = 3, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.concatenate([rng.normal(-2.0, 1.0, (n // 2, d)), rng.normal(2.0, 0.7, (n // 2, d))])


@pytest.mark.parametrize("kind", KINDS)
def test_free_count_matches_scikit_learn(kind: str) -> None:
    X = _data()
    ours = GaussianMixture(3, covariance_type=kind, random_state=0).fit(X)
    theirs = SkGaussianMixture(3, covariance_type=kind, random_state=0).fit(X)
    assert ours._n_parameters() == theirs._n_parameters()
    assert parameter_count(3, 3, kind) == theirs._n_parameters()


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("held", [("means",), ("weights",), ("covariances",), ("weights", "means")])
def test_held_groups_are_not_counted(kind: str, held: tuple[str, ...]) -> None:
    X = _data()
    K, D = 2, X.shape[1]
    reference = SkGaussianMixture(K, covariance_type=kind, random_state=0).fit(X)
    init = {
        "weights_init": reference.weights_,
        "means_init": reference.means_,
        "precisions_init": reference.precisions_,
    }
    model = GaussianMixture(K, covariance_type=kind, fixed=held, random_state=0, **init).fit(X)
    free = reference._n_parameters()  # scikit-learn's count of the whole model
    sizes = {
        "weights": K - 1,
        "means": K * D,
        "covariances": free - (K - 1) - K * D,
    }
    expected = free - sum(sizes[group] for group in held)
    assert model._n_parameters() == expected
    n = X.shape[0]
    log_likelihood = float(np.sum(model.score_samples(X)))
    assert model.bic(X) == pytest.approx(-2.0 * log_likelihood + expected * math.log(n), rel=1e-9)
    assert model.aic(X) == pytest.approx(-2.0 * log_likelihood + 2.0 * expected, rel=1e-9)


def test_everything_held_counts_nothing() -> None:
    X = _data()
    reference = SkGaussianMixture(2, random_state=0).fit(X)
    model = GaussianMixture(
        2,
        fixed=("weights", "means", "covariances"),
        weights_init=reference.weights_,
        means_init=reference.means_,
        precisions_init=reference.precisions_,
    ).fit(X)
    assert model._n_parameters() == 0
    assert model.aic(X) == pytest.approx(-2.0 * float(np.sum(model.score_samples(X))), rel=1e-9)


def test_mixture_n_parameters_held() -> None:
    mixture = Mixture.from_parameters(
        [0.2, 0.3, 0.5], np.zeros((3, 4)), np.ones((3, 4)), "diag"
    )  # 2 weights, 12 means, 12 variances
    assert mixture.n_parameters() == 26
    assert mixture.n_parameters(("means",)) == 14
    assert mixture.n_parameters(["weights", "covariances"]) == 12


@pytest.mark.parametrize("kind", KINDS)
def test_gaussian_held_mean_or_covariance_not_counted(kind: str) -> None:
    from mixtorch import Gaussian

    X = _data(d=4)
    D = X.shape[1]
    covariance = {
        "full": np.cov(X.T, bias=True),
        "tied": np.cov(X.T, bias=True),
        "diag": X.var(0),
        "spherical": float(X.var(0).mean()),
    }[kind]
    free = Gaussian(covariance_type=kind).fit(X)._n_parameters()
    covariance_count = parameter_count(1, D, kind, frozenset({"means"}))
    assert free == D + covariance_count
    held_mean = Gaussian(covariance_type=kind, fixed_mean=np.zeros(D)).fit(X)
    assert held_mean._n_parameters() == covariance_count
    held_covariance = Gaussian(covariance_type=kind, fixed_covariance=covariance).fit(X)
    assert held_covariance._n_parameters() == D
    both = Gaussian(covariance_type=kind, fixed_mean=np.zeros(D), fixed_covariance=covariance)
    both.fit(X)
    assert both._n_parameters() == 0
    log_likelihood = float(np.sum(held_mean.score_samples(X)))
    expected = -2.0 * log_likelihood + covariance_count * math.log(X.shape[0])
    assert held_mean.bic(X) == pytest.approx(expected, rel=1e-9)


def test_gaussian_fixed_mean_series_read_by_label() -> None:
    import pandas as pd

    from mixtorch import Gaussian

    X = pd.DataFrame(_data(d=3), columns=["a", "b", "c"])
    given = pd.Series({"c": 3.0, "a": 1.0, "b": 2.0})
    model = Gaussian(fixed_mean=given).fit(X)
    np.testing.assert_array_equal(model.mean_, [1.0, 2.0, 3.0])
    centred = X.to_numpy() - [1.0, 2.0, 3.0]
    np.testing.assert_allclose(model.covariance_, centred.T @ centred / len(X), rtol=1e-12)
    # default labels 0..n-1 are positions
    positional = Gaussian(fixed_mean=pd.Series([3.0, 1.0, 2.0])).fit(X)
    np.testing.assert_array_equal(positional.mean_, [3.0, 1.0, 2.0])
    with pytest.raises(ValueError, match=r"missing: \['b'\], unknown: \['d'\]"):
        Gaussian(fixed_mean=pd.Series({"c": 3.0, "a": 1.0, "d": 2.0})).fit(X)
    with pytest.raises(ValueError, match="X has no column names"):
        Gaussian(fixed_mean=given).fit(X.to_numpy())


def test_cdf_takes_whole_float_maxpts_as_scipy() -> None:
    from scipy.stats import multivariate_normal

    from mixtorch import Gaussian

    X = _data(d=3)
    model = Gaussian().fit(X)
    point = [0.0, 0.5, -0.5]
    ours = model.cdf(point, maxpts=1e5, rng=0)
    frozen = multivariate_normal(model.mean_, model.covariance_, maxpts=1e5)
    theirs = frozen.cdf(point, rng=np.random.default_rng(0))
    assert ours == pytest.approx(theirs, abs=1e-4)
    with pytest.raises(TypeError, match="maxpts must be an integer"):
        model.cdf(point, maxpts=1.5)


def test_select_counts_the_candidates_free_parameters() -> None:
    from mixtorch import select

    X = _data(d=2)
    means = [[-2.0, -2.0], [2.0, 2.0]]
    result = select(
        X,
        n_components=[2],
        covariance_types=["full", "diag"],
        fixed=("means",),
        means_init=means,
        random_state=0,
    )
    rows = {row["covariance_type"]: row for row in result.table}
    # scikit-learn's count for the whole model, less the 2 x 2 held means
    for kind in ("full", "diag"):
        whole = SkGaussianMixture(2, covariance_type=kind).fit(X)._n_parameters()
        assert rows[kind]["n_parameters"] == whole - 4
        fitted = GaussianMixture(
            2, covariance_type=kind, fixed=("means",), means_init=means, random_state=0
        ).fit(X)
        assert rows[kind]["bic"] == pytest.approx(fitted.bic(X), rel=1e-6)


def test_select_points_covariance_type_to_covariance_types() -> None:
    from mixtorch import select

    with pytest.raises(TypeError, match=r"covariance_types=\[\.\.\.\]"):
        select(_data(d=2), n_components=[1, 2], covariance_type="diag")

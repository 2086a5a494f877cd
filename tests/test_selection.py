"""Model selection: BIC/AIC agree with scikit-learn's own numbers and pick the true K."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from mixtorch import GaussianMixture, select
from mixtorch.selection import SelectionTable


@pytest.fixture(scope="module")
def three_blobs() -> np.ndarray:
    """300 points from a known, well separated 3-component mixture in 2-D."""
    rng = np.random.default_rng(0)
    means = np.array([[0.0, 0.0], [7.0, 0.0], [0.0, 7.0]])
    scales = [np.array([[1.0, 0.3], [0.3, 0.6]]), np.eye(2) * 0.8, np.diag([0.5, 1.4])]
    blocks = [rng.multivariate_normal(m, s, size=100) for m, s in zip(means, scales, strict=True)]
    return np.concatenate(blocks)


def test_bic_table_matches_scikit_learn(three_blobs):
    result = select(three_blobs, range(1, 6), ("full",), criterion="bic", random_state=0)
    assert result.best_params_ == {"n_components": 3, "covariance_type": "full"}
    assert isinstance(result.best_estimator_, GaussianMixture)
    assert result.best_estimator_.n_components == 3
    n = three_blobs.shape[0]
    for row in result.table:
        ours = GaussianMixture(row["n_components"], random_state=0).fit(three_blobs)
        # scikit-learn scores our parameters: its own BIC formula and parameter count.
        reference = _sklearn_with_parameters(ours)
        assert row["n_parameters"] == reference._n_parameters()
        assert row["bic"] == pytest.approx(reference.bic(three_blobs), rel=1e-10)
        if row["n_components"] <= 3:  # unique optimum: an independent sklearn fit agrees
            fitted = SkGaussianMixture(row["n_components"], random_state=0).fit(three_blobs)
            by_hand = -2 * n * fitted.score(three_blobs) + fitted._n_parameters() * math.log(n)
            assert row["bic"] == pytest.approx(by_hand, rel=1e-4)
    best_row = min(result.table, key=lambda row: row["bic"])
    assert result.best_score_ == best_row["bic"]
    assert result.best_score_ == pytest.approx(result.best_estimator_.bic(three_blobs))


def _sklearn_with_parameters(model: GaussianMixture) -> SkGaussianMixture:
    reference = SkGaussianMixture(model.n_components, covariance_type=model.covariance_type)
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_", "precisions_"):
        setattr(reference, name, getattr(model, name))
    reference.n_features_in_ = model.n_features_in_
    reference.converged_ = True
    return reference


def test_all_covariance_types_choose_three(three_blobs):
    result = select(three_blobs, range(1, 6), random_state=0)
    assert len(result.table) == 20
    assert result.best_params_["n_components"] == 3
    for kind in ("full", "diag", "spherical", "tied"):
        ks, values = result.table.column("bic", kind)
        assert ks == [1, 2, 3, 4, 5]
        assert ks[int(np.argmin(values))] == 3, kind


def test_aic_matches_estimator_aic(three_blobs):
    result = select(three_blobs, [2, 3], ("diag",), criterion="aic", random_state=0)
    assert result.best_params_["n_components"] == 3
    assert result.best_score_ == pytest.approx(result.best_estimator_.aic(three_blobs))
    reference = _sklearn_with_parameters(result.best_estimator_)
    assert result.best_score_ == pytest.approx(reference.aic(three_blobs), rel=1e-10)
    sk = SkGaussianMixture(3, covariance_type="diag", random_state=0).fit(three_blobs)
    assert result.best_score_ == pytest.approx(sk.aic(three_blobs), rel=1e-4)


def test_cross_validation_mode(three_blobs):
    result = select(three_blobs, [1, 2, 3, 4], ("full",), criterion="cv", cv=3, random_state=0)
    assert result.best_params_["n_components"] == 3
    values = result.table.column("cv_log_likelihood")[1]
    assert result.best_score_ == max(values)
    # Independent check of one entry: scikit-learn's folds and held-out scores.
    from sklearn.model_selection import KFold

    folds = KFold(3, shuffle=True, random_state=0).split(three_blobs)
    total = sum(
        SkGaussianMixture(3, random_state=0).fit(three_blobs[train]).score(three_blobs[test])
        * len(test)
        for train, test in folds
    )
    assert values[2] == pytest.approx(total / len(three_blobs), rel=1e-3)
    # The winner is refitted on all the data.
    assert result.best_estimator_.n_features_in_ == 2
    assert result.best_estimator_.means_.shape == (3, 2)


def test_torch_input_gives_torch_model(three_blobs):
    X = torch.as_tensor(three_blobs)
    result = select(X, [2, 3], ("spherical",), random_state=0)
    assert isinstance(result.best_estimator_.means_, torch.Tensor)
    cv_result = select(X, [3], ("spherical",), criterion="cv", cv=2, random_state=0)
    assert math.isfinite(cv_result.best_score_)


def test_failed_candidates_are_recorded(three_blobs):
    # 4 points cannot hold 6 components: recorded as a failed row, not an exception.
    result = select(three_blobs[:5], [1, 6], ("diag",), random_state=0)
    failed = [row for row in result.table if row["n_components"] == 6][0]
    assert math.isnan(failed["bic"]) and "n_samples" in failed["note"]
    assert result.best_params_["n_components"] == 1


def test_progress_and_printing(three_blobs):
    seen = []
    result = select(
        three_blobs, [1, 2], ("full", "tied"), random_state=0, progress=lambda *a: seen.append(a)
    )
    assert [(done, total) for done, total, _ in seen] == [(1, 4), (2, 4), (3, 4), (4, 4)]
    text = str(result)
    assert "covariance_type" in text and "best by bic" in text
    assert len(str(result.table).splitlines()) == 5
    assert str(SelectionTable()) == "(empty selection table)"


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"criterion": "likelihood"}, "criterion"),
        ({"criterion": "cv", "cv": 1}, "cv must be"),
        ({"n_components": []}, "n_components"),
        ({"n_components": [0, 1]}, "n_components"),
        ({"covariance_types": ("round",)}, "round"),
    ],
)
def test_bad_arguments(three_blobs, kwargs, message):
    with pytest.raises(ValueError, match=message):
        select(three_blobs, **kwargs)


def test_reserved_parameters_and_bad_shape(three_blobs):
    with pytest.raises(TypeError, match="covariance_type is swept"):
        select(three_blobs, [1], covariance_type="full")
    with pytest.raises(ValueError, match="2-D"):
        select(three_blobs[:, 0], [1])

"""scikit-learn's own estimator checks, so the estimators can replace sklearn's."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils import get_tags
from sklearn.utils.estimator_checks import parametrize_with_checks

from mixtorch import Gaussian, GaussianMixture

#: Random starts: the weighted fit draws its k-means++ seeds with other numbers than the fit
#: of the repeated rows, and on the check's 15 points in 30 dimensions the two runs end in
#: different optima. scikit-learn marks its KMeans the same way; equivalence from a given
#: start (and of the weighted k-means) is tested in tests/test_sample_weight_mixture.py.
RANDOM_START = {
    "check_sample_weight_equivalence_on_dense_data": (
        "sample_weight is equivalent to repeated rows only from the same start"
    )
}


def expected_failures(estimator):
    return RANDOM_START if isinstance(estimator, GaussianMixture) else {}


@parametrize_with_checks(
    [
        GaussianMixture(n_components=2, random_state=0, max_iter=200),
        GaussianMixture(n_components=2, covariance_type="diag", random_state=0, max_iter=200),
        GaussianMixture(n_components=2, covariance_type="tied", random_state=0, max_iter=200),
        GaussianMixture(2, covariance_type="spherical", random_state=0, max_iter=200),
        GaussianMixture(n_components=2, missing_values=np.nan, random_state=0, max_iter=200),
        Gaussian(reg_covar=1e-9),
    ],
    expected_failed_checks=expected_failures,
)
# scikit-learn's generic checks fit 2 components to tiny toy data (duplicated rows), where a
# component really does collapse onto a point; the warning is tested in test_collapse.py.
@pytest.mark.filterwarnings("ignore::mixtorch.exceptions.DegenerateComponentWarning")
def test_sklearn_compatible_estimator(estimator, check):
    check(estimator)


def test_pipeline_and_grid_search_pick_the_true_number_of_components():
    rng = np.random.default_rng(0)
    centers = np.array([[0.0, 0.0], [8.0, 0.0], [0.0, 8.0]])
    X = rng.permutation(np.concatenate([rng.normal(c, 1.0, size=(150, 2)) for c in centers]))
    pipeline = make_pipeline(StandardScaler(), GaussianMixture(random_state=0))
    search = GridSearchCV(pipeline, {"gaussianmixture__n_components": [1, 2, 3]}, cv=3)
    search.fit(X)
    assert search.best_params_ == {"gaussianmixture__n_components": 3}
    assert np.isfinite(search.best_score_)


def test_the_nan_tag_follows_missing_values():
    # scikit-learn reads the tag (its NaN/inf check skips NaN for such estimators; meta-
    # estimators pass NaN through); infinity stays an error either way.
    assert not get_tags(GaussianMixture()).input_tags.allow_nan
    model = GaussianMixture(2, missing_values=np.nan, random_state=0)
    assert get_tags(model).input_tags.allow_nan
    X = np.random.default_rng(0).normal(size=(60, 2))
    X[3, 1] = np.nan
    assert np.isfinite(model.fit(X).score_samples(X)).all()
    X[4, 0] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        model.fit(X)

"""Warnings name the user's file and line, whichever path inside mixtorch raised them."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from sklearn.exceptions import ConvergenceWarning

from mixtorch import (
    BayesianGaussianMixture,
    DegenerateComponentWarning,
    GaussianKDE,
    GaussianMixture,
)
from mixtorch._warnings import user_stacklevel
from mixtorch.kde import DuplicatePointsWarning

X = np.random.default_rng(0).normal(size=(200, 2)) + np.repeat([[0.0, 0.0], [6.0, 0.0]], 100, 0)
OUTLIER = np.concatenate([np.random.default_rng(0).normal(size=200), [5.0]])[:, None]


def _caught(call):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return caught


@pytest.mark.parametrize(
    ("call", "category"),
    [
        (lambda: GaussianMixture(2, max_iter=1, random_state=0).fit(X), ConvergenceWarning),
        (lambda: GaussianMixture(2, max_iter=1, random_state=0).fit_predict(X), ConvergenceWarning),
        (
            lambda: GaussianMixture(2, max_iter=2, algorithm="gradient", random_state=0).fit(X),
            ConvergenceWarning,
        ),
        (lambda: BayesianGaussianMixture(2, max_iter=1, random_state=0).fit(X), ConvergenceWarning),
        (
            lambda: GaussianMixture(
                2, init_params="random_from_data", random_state=3, tol=0.0, max_iter=300
            ).fit(OUTLIER),
            DegenerateComponentWarning,
        ),
        (lambda: GaussianKDE("loo").fit(np.r_[X, X[:30]]), DuplicatePointsWarning),
    ],
    ids=["em-fit", "em-fit_predict", "gradient", "variational", "collapse", "duplicates"],
)
def test_warnings_point_at_the_callers_line(call, category):
    caught = [w for w in _caught(call) if issubclass(w.category, category)]
    assert caught, f"no {category.__name__}"
    assert {w.filename for w in caught} == {__file__}


def test_user_stacklevel_outside_the_package_is_the_caller():
    assert user_stacklevel() == 1

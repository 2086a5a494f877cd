"""A component collapsing onto one point is reported (DegenerateComponentWarning)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from sklearn.mixture import GaussianMixture as SklearnGaussianMixture

import mixtorch
from conftest import make_modes_1d
from mixtorch import DegenerateComponentWarning, GaussianMixture, Mixture
from mixtorch.fit.collapse import collapsed_components


def _normal_plus_one_outlier() -> np.ndarray:
    return np.concatenate([np.random.default_rng(0).normal(size=200), [5.0]])[:, None]


START = dict(
    weights_init=[0.5, 0.5], means_init=[[0.0], [5.0]], precisions_init=[[[1.0]], [[100.0]]]
)


def test_component_on_a_single_point_warns():
    X = _normal_plus_one_outlier()
    with pytest.warns(DegenerateComponentWarning, match=r"Component\(s\) \[1\].*reg_covar=1e-06"):
        model = GaussianMixture(2, **START).fit(X)
    # The same start in scikit-learn collapses the same way, silently.
    reference = SklearnGaussianMixture(2, **START).fit(X)
    np.testing.assert_allclose(model.weights_, reference.weights_, rtol=1e-6)
    assert model.weights_[1] == pytest.approx(1 / 201, rel=1e-6)
    assert model.covariances_[1, 0, 0] == pytest.approx(1e-6, rel=1e-6)
    assert mixtorch.exceptions.DegenerateComponentWarning is DegenerateComponentWarning
    assert issubclass(DegenerateComponentWarning, UserWarning)


def test_well_separated_clusters_do_not_warn():
    X = make_modes_1d([(0, 1, 200), (6, 0.5, 100)], seed=1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        GaussianMixture(2, random_state=0).fit(X)


@pytest.mark.parametrize(
    "covariances, kind, expected",
    [
        ([1.0, 1.5e-6], "spherical", [1]),
        ([[1.0, 1.0], [1e-6, 1e-6]], "diag", [1]),
        ([[1.0, 1.0], [1e-6, 1.0]], "diag", []),  # flat in one direction only
        ([[[1.0, 0.0], [0.0, 1.0]], [[1e-6, 0.0], [0.0, 1e-6]]], "full", [1]),
        ([[1e-6, 0.0], [0.0, 1e-6]], "tied", [0, 1]),
    ],
)
def test_collapsed_components_per_covariance_kind(covariances, kind, expected):
    mixture = Mixture.from_parameters([0.5, 0.5], [[0.0, 0.0], [1.0, 1.0]], covariances, kind)
    assert collapsed_components(mixture, 1e-6) == expected
    assert collapsed_components(mixture, 0.0) == []
    assert collapsed_components(mixture.to(dtype=torch.float32), 1e-6) == expected

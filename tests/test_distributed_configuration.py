"""Ranks that disagree or hold nothing: two gloo processes on the loopback interface.

A rank with 0 rows contributes nothing (the fit equals the single-process fit on the other
rank's rows); ranks with different dtypes, n_components or covariance_type raise the
same clear ValueError on every rank instead of aborting or hanging in a collective.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from _gloo import join_group, json_results
from mixtorch import Gaussian, GaussianMixture

START = {
    "weights_init": np.full(2, 0.5),
    "means_init": np.array([[0.5, 0.0], [5.0, 5.5]]),
    "precisions_init": np.stack([np.eye(2)] * 2),
}
MISMATCHES = {
    "n_components": ({"n_components": 2}, {"n_components": 3}),
    "covariance_type": ({"covariance_type": "full"}, {"covariance_type": "diag"}),
    "dtype": ({"dtype": "float64"}, {"dtype": "float32"}),
}


def make_data() -> np.ndarray:
    rng = np.random.default_rng(3)
    return np.concatenate([rng.normal(0, 1, (150, 2)), rng.normal(5, 0.7, (150, 2))])


# -- worker (runs in the child processes) ---------------------------------------------
def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    join_group(rank_id, port, seconds=40)
    try:
        X = make_data()
        shard = X if rank_id == 0 else X[:0]  # rank 1 has no rows at all
        model = GaussianMixture(2, tol=1e-10, max_iter=200, **START).fit(shard)
        default = GaussianMixture(2, random_state=0, tol=1e-10).fit(shard)
        gaussian = Gaussian().fit(shard)
        results: dict[str, object] = {
            "means": np.asarray(model.means_).tolist(),
            "covariances": np.asarray(model.covariances_).tolist(),
            "lower_bound": model.lower_bound_,
            "default_means": np.asarray(default.means_).tolist(),
            "gaussian_mean": np.asarray(gaussian.mean_).tolist(),
            "gaussian_covariance": np.asarray(gaussian.covariance_).tolist(),
        }
        for name, settings in MISMATCHES.items():
            params = {"n_components": 2, **settings[rank_id]}
            try:
                GaussianMixture(random_state=0, **params).fit(X[rank_id::2])
                results[f"error_{name}"] = None
            except ValueError as error:
                results[f"error_{name}"] = str(error)
        refusing = {
            "gradient_mixture": GaussianMixture(2, algorithm="gradient"),
            "gradient_gaussian": Gaussian(algorithm="gradient"),
        }
        for name, estimator in refusing.items():
            try:
                estimator.fit(X[rank_id::2])
                results[f"refused_{name}"] = None
            except ValueError as error:
                results[f"refused_{name}"] = str(error)
        (out / f"rank{rank_id}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


# -- the test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return json_results(__file__, tmp_path_factory.mktemp("gloo_configuration"), timeout=150)


def test_a_rank_without_rows_contributes_nothing(rank_results):
    X = make_data()
    single = GaussianMixture(2, tol=1e-10, max_iter=200, **START).fit(X)
    for result in rank_results:
        np.testing.assert_allclose(result["means"], single.means_, rtol=1e-10)
        np.testing.assert_allclose(result["covariances"], single.covariances_, rtol=1e-10)
        assert result["lower_bound"] == pytest.approx(single.lower_bound_, abs=1e-12)
        np.testing.assert_allclose(result["gaussian_mean"], X.mean(0), rtol=1e-13)
        np.testing.assert_allclose(
            result["gaussian_covariance"], np.cov(X.T, bias=True), rtol=1e-12
        )
    np.testing.assert_array_equal(
        rank_results[0]["default_means"], rank_results[1]["default_means"]
    )
    reference = np.sort(np.asarray(single.means_)[:, 0])
    np.testing.assert_allclose(
        np.sort(np.asarray(rank_results[0]["default_means"])[:, 0]), reference, atol=1e-6
    )


@pytest.mark.parametrize("name", sorted(MISMATCHES))
def test_mismatched_configuration_is_the_same_error_on_every_rank(rank_results, name):
    first, second = (result[f"error_{name}"] for result in rank_results)
    assert first is not None and first == second
    assert name in first and "rank 0" in first and "rank 1" in first


@pytest.mark.parametrize("name", ["gradient_mixture", "gradient_gaussian"])
def test_fits_that_cannot_span_ranks_refuse_on_every_rank(rank_results, name):
    first, second = (result[f"refused_{name}"] for result in rank_results)
    assert first is not None and first == second
    assert "algorithm='gradient'" in first and "process group" in first


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

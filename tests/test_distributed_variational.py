"""BayesianGaussianMixture and CAVI on two gloo ranks against single-process fits.

As in ``test_distributed.py``, the test launches this file twice as a script (rank 0 and
rank 1); each rank joins a gloo group on 127.0.0.1, fits its own shard in several
settings and saves what it got, and the test compares both ranks with a single-process
fit on the concatenated data.
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from _gloo import run_two_ranks
from mixtorch import BayesianGaussianMixture
from mixtorch.fit.variational import (
    VariationalPrior,
    fit_variational,
    posterior_from_responsibilities,
)

N_ROWS = 1200
SHARD_SPLIT = 500  # uneven shards on purpose
SETTINGS = [  # (covariance_type, weight_concentration_prior_type, init_params)
    ("full", "dirichlet_process", "kmeans"),
    ("full", "dirichlet_distribution", "kmeans"),
    ("diag", "dirichlet_process", "kmeans"),
    ("diag", "dirichlet_distribution", "kmeans"),
    ("tied", "dirichlet_process", "kmeans"),
    ("spherical", "dirichlet_distribution", "kmeans"),
    ("full", "dirichlet_process", "k-means++"),
    ("diag", "dirichlet_distribution", "random"),
    ("full", "dirichlet_process", "random_from_data"),
]
ATTRIBUTES = ("weights_", "means_", "covariances_", "mean_precision_", "lower_bound_")


def make_data() -> np.ndarray:
    """Two well separated clusters in 3-D with an offset (float32 would need care)."""
    rng = np.random.default_rng(11)
    first = rng.normal(size=(N_ROWS // 2, 3)) @ np.array([[1.0, 0.3, 0], [0, 0.7, 0], [0, 0, 1.5]])
    second = rng.normal(size=(N_ROWS // 2, 3)) * [0.6, 1.2, 0.9] + [8.0, -3.0, 2.0]
    X = np.concatenate([first, second]) + 50.0
    return X[rng.permutation(len(X))]


def model(setting: tuple[str, str, str]) -> BayesianGaussianMixture:
    covariance_type, prior_type, init_params = setting
    return BayesianGaussianMixture(
        n_components=2,
        covariance_type=covariance_type,
        weight_concentration_prior_type=prior_type,
        init_params=init_params,
        random_state=0,
        tol=1e-9,
        max_iter=500,
    )


def explicit_prior(X: np.ndarray) -> VariationalPrior:
    return VariationalPrior(
        weight_concentration=0.5,
        process=True,
        mean_precision=1.0,
        mean=torch.as_tensor(X.mean(0)),
        degrees_of_freedom=3.0,
        covariance=torch.as_tensor(np.cov(X.T)),
    )


def cavi_from_labels(X: np.ndarray, prior: VariationalPrior, start: int = 0):
    """CAVI from responsibilities given by a fixed rule (x_0 > 51: a rough split)."""
    tensor = torch.as_tensor(X)
    labels = torch.as_tensor(X[:, 0] > 51.0).long()
    responsibilities = torch.nn.functional.one_hot(labels, 2).double()
    reference = torch.tensor([[50.0, 50.0, 50.0], [58.0, 47.0, 52.0]], dtype=torch.float64)
    initial = posterior_from_responsibilities(
        tensor, responsibilities, prior, "full", 1e-6, rows=97, mean_guess=reference
    )
    return fit_variational(lambda: list(tensor.split(97)), initial, prior, tol=1e-10, max_iter=300)


# -- worker (runs in the child processes) ---------------------------------------------
def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    warnings.simplefilter("ignore")  # ConvergenceWarning is not what is tested here
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank_id, world_size=2
    )
    try:
        X = make_data()
        shard = X[:SHARD_SPLIT] if rank_id == 0 else X[SHARD_SPLIT:]
        results: dict[str, np.ndarray] = {}
        for index, setting in enumerate(SETTINGS):
            fitted = model(setting).fit(shard)
            for name in ATTRIBUTES:
                results[f"{index}_{name}"] = np.asarray(getattr(fitted, name))
            results[f"{index}_n_iter"] = np.array(fitted.n_iter_)
            results[f"{index}_labels"] = fitted.predict(shard)
        posterior, trace = cavi_from_labels(shard, explicit_prior(X))
        results["cavi_means"] = posterior.means.numpy()
        results["cavi_covariances"] = posterior.covariance.covariances.numpy()
        results["cavi_bounds"] = np.array(trace.lower_bounds)
        bad = shard.copy()
        if rank_id == 1:
            bad[3, 1] = np.nan  # only this rank's shard is unusable
        try:
            model(SETTINGS[0]).fit(bad)
            results["error"] = np.array("")
        except ValueError as error:
            results["error"] = np.array(str(error))
        np.savez(out / f"rank{rank_id}.npz", **results)
    finally:
        dist.destroy_process_group()


# -- the test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("gloo_vb")
    run_two_ranks(__file__, out, timeout=240, PYTHONWARNINGS="default")
    return [dict(np.load(out / f"rank{rank_id}.npz")) for rank_id in range(2)]


@pytest.mark.parametrize("index", range(len(SETTINGS)))
def test_ranks_agree_exactly_and_match_the_single_process_fit(rank_results, index):
    first, second = rank_results
    for name in (*ATTRIBUTES, "n_iter"):
        np.testing.assert_array_equal(first[f"{index}_{name}"], second[f"{index}_{name}"])
    single = model(SETTINGS[index]).fit(make_data())
    assert single.converged_
    # k-means starts where the single process starts: equal to round-off. The other
    # methods draw their start differently and reach the same clusters, possibly in the
    # other order (which moves stick-breaking weights by about 1e-3).
    exact = SETTINGS[index][2] == "kmeans"
    rtol = 1e-8 if exact else 1e-4
    order = np.argsort(first[f"{index}_means_"][:, 0])
    single_order = np.argsort(single.means_[:, 0])
    np.testing.assert_allclose(
        first[f"{index}_means_"][order], single.means_[single_order], rtol=rtol
    )
    np.testing.assert_allclose(
        first[f"{index}_weights_"][order],
        single.weights_[single_order],
        rtol=rtol if exact else 0.0,
        atol=0.0 if exact else 2e-3,
    )
    covariances = first[f"{index}_covariances_"]
    single_covariances = single.covariances_
    if SETTINGS[index][0] != "tied":
        covariances, single_covariances = covariances[order], single_covariances[single_order]
    np.testing.assert_allclose(covariances, single_covariances, rtol=rtol)
    bound = float(first[f"{index}_lower_bound_"])
    assert bound == pytest.approx(single.lower_bound_, rel=1e-10 if exact else 1e-3)
    labels = np.concatenate([first[f"{index}_labels"], second[f"{index}_labels"]])
    assert labels.shape == (N_ROWS,)


@pytest.mark.parametrize("index", [0, 1, 2, 3, 4, 5])
def test_kmeans_start_is_the_single_process_start(rank_results, index):
    # With k-means the shards start where the single process starts (Lloyd converges to
    # the same partition), so even the iteration count agrees.
    single = model(SETTINGS[index]).fit(make_data())
    assert int(rank_results[0][f"{index}_n_iter"]) == single.n_iter_


def test_cavi_on_two_shards_equals_cavi_on_the_union(rank_results):
    X = make_data()
    posterior, trace = cavi_from_labels(X, explicit_prior(X))
    assert trace.n_iter > 2
    for result in rank_results:
        np.testing.assert_allclose(result["cavi_bounds"], trace.lower_bounds, rtol=1e-12)
        np.testing.assert_allclose(result["cavi_means"], posterior.means.numpy(), rtol=1e-12)
        np.testing.assert_allclose(
            result["cavi_covariances"], posterior.covariance.covariances.numpy(), rtol=1e-10
        )


def test_a_bad_shard_stops_every_rank_with_an_error(rank_results):
    first, second = rank_results
    assert "other rank" in str(first["error"])
    assert "NaN" in str(second["error"])


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

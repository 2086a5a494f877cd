"""Two-process gloo runs on the loopback interface against single-process fits.

The test launches this file twice as a script (rank 0 and rank 1). Each rank joins a gloo
process group on 127.0.0.1, fits its own shard in several scenarios and saves what it got;
the test then compares both ranks with a single-process fit on the concatenated data.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from _gloo import run_two_ranks
from mixtorch import Gaussian, GaussianMixture
from mixtorch.distributed import all_reduce_sum, gather_rows, is_distributed, rank, world_size

N_ROWS = 1500
SHARD_SPLIT = 1100  # uneven shards on purpose
TINY_SHARD = 2  # fewer rows than components: the n_samples check must be global


def make_data() -> np.ndarray:
    rng = np.random.default_rng(7)
    centers = np.array([[0.0, 0.0, 0.0], [7.0, 1.0, 0.0], [1.0, 7.0, 3.0]])
    scales = [np.diag([1.0, 0.5, 2.0]), np.array([[1, 0.6, 0], [0, 1, 0], [0, 0, 0.4]])]
    blocks = [rng.normal(size=(N_ROWS // 3, 3)) @ scale for scale in (*scales, np.eye(3))]
    X = np.concatenate([block + center for block, center in zip(blocks, centers, strict=True)])
    return X[rng.permutation(len(X))]


def start_parameters(covariance_type: str) -> dict[str, np.ndarray]:
    """Deliberately rough starting values shared by every fit that must match exactly."""
    means = np.array([[0.5, 0.5, 0.0], [6.0, 0.0, 0.5], [0.0, 6.0, 2.0]])
    precisions = {
        "full": np.stack([np.eye(3)] * 3),
        "diag": np.ones((3, 3)),
        "spherical": np.ones(3),
        "tied": np.eye(3),
    }[covariance_type]
    return {"weights_init": np.full(3, 1 / 3), "means_init": means, "precisions_init": precisions}


def fitted_parameters(model: GaussianMixture) -> dict[str, np.ndarray]:
    return {
        "weights": np.asarray(model.weights_),
        "means": np.asarray(model.means_),
        "covariances": np.asarray(model.covariances_),
        "lower_bound": np.array(model.lower_bound_),
        "n_iter": np.array(model.n_iter_),
    }


# -- worker (runs in the child processes) ---------------------------------------------
def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank_id, world_size=2
    )
    try:
        X = make_data()
        shard = X[:SHARD_SPLIT] if rank_id == 0 else X[SHARD_SPLIT:]
        results: dict[str, np.ndarray] = {}
        for kind in ("full", "diag", "tied"):
            model = GaussianMixture(
                3, covariance_type=kind, tol=1e-9, max_iter=300, **start_parameters(kind)
            )
            results.update(_prefixed(f"exact_{kind}", fitted_parameters(model.fit(shard))))
        # the same through a file source on each rank, as a tensor of float64
        path = out / f"shard{rank_id}.npy"
        np.save(path, shard)
        model = GaussianMixture(3, tol=1e-9, max_iter=300, **start_parameters("full"))
        results.update(_prefixed("exact_npy", fitted_parameters(model.fit(str(path)))))
        tiny = X[: N_ROWS - TINY_SHARD] if rank_id == 0 else X[N_ROWS - TINY_SHARD :]
        model = GaussianMixture(3, random_state=0, tol=1e-9, max_iter=300)
        labels = model.fit_predict(torch.as_tensor(tiny))
        results.update(_prefixed("default", fitted_parameters(model)))
        results["default_labels"] = labels.numpy()
        gaussian = Gaussian().fit(shard)
        results["gaussian_mean"], results["gaussian_covariance"] = (
            gaussian.mean_,
            gaussian.covariance_,
        )
        results["helpers"] = np.array(
            [
                is_distributed(),
                rank(),
                world_size(),
                float(all_reduce_sum(torch.tensor(float(rank_id + 1)))),
                len(gather_rows(torch.zeros(rank_id + 1, 2))),
            ]
        )
        np.savez(out / f"rank{rank_id}.npz", **results)
    finally:
        dist.destroy_process_group()


def _prefixed(prefix: str, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {f"{prefix}_{key}": value for key, value in values.items()}


# -- the test ---------------------------------------------------------------------------
def _launch(tmp_path: Path) -> list[dict[str, np.ndarray]]:
    run_two_ranks(__file__, tmp_path, timeout=120)
    return [dict(np.load(tmp_path / f"rank{rank_id}.npz")) for rank_id in range(2)]


@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    return _launch(tmp_path_factory.mktemp("gloo"))


@pytest.mark.parametrize("scenario", ["full", "diag", "tied", "npy"])
def test_two_ranks_match_the_concatenated_fit_to_round_off(rank_results, scenario):
    kind = "full" if scenario == "npy" else scenario
    single = GaussianMixture(
        3, covariance_type=kind, tol=1e-9, max_iter=300, **start_parameters(kind)
    ).fit(make_data())
    expected = fitted_parameters(single)
    for result in rank_results:
        for name in ("weights", "means", "covariances", "lower_bound"):
            np.testing.assert_allclose(
                result[f"exact_{scenario}_{name}"], expected[name], rtol=1e-10, atol=1e-12
            )
        assert int(result[f"exact_{scenario}_n_iter"]) == single.n_iter_
    assert single.n_iter_ > 3  # the rough start really needed EM


def test_default_init_gives_one_model_on_every_rank(rank_results):
    first, second = rank_results
    for name in ("weights", "means", "covariances", "lower_bound"):
        np.testing.assert_array_equal(first[f"default_{name}"], second[f"default_{name}"])
    X = make_data()
    single = GaussianMixture(3, random_state=0, tol=1e-9, max_iter=300).fit(X)
    assert float(first["default_lower_bound"]) == pytest.approx(single.lower_bound_, abs=1e-7)
    order = np.argsort(first["default_means"][:, 0])
    reference = np.asarray(single.means_)[np.argsort(np.asarray(single.means_)[:, 0])]
    np.testing.assert_allclose(first["default_means"][order], reference, atol=1e-5)
    # each rank labelled its own rows, consistently with the shared model
    labels = np.concatenate([first["default_labels"], second["default_labels"]])
    assert labels.shape == (N_ROWS,)
    assert len(second["default_labels"]) == TINY_SHARD


def test_gaussian_on_two_ranks_is_the_union_estimate(rank_results):
    X = make_data()
    for result in rank_results:
        np.testing.assert_allclose(result["gaussian_mean"], X.mean(0), rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(
            result["gaussian_covariance"], np.cov(X.T, bias=True), rtol=1e-12, atol=1e-14
        )


def test_collective_helpers_on_two_ranks(rank_results):
    for rank_id, result in enumerate(rank_results):
        distributed, own_rank, size, total, gathered = result["helpers"]
        assert (distributed, own_rank, size, total, gathered) == (1, rank_id, 2, 3.0, 2)


def test_helpers_without_a_process_group():
    assert not is_distributed() and rank() == 0 and world_size() == 1
    value = torch.arange(3.0)
    assert all_reduce_sum(value) is value
    assert len(gather_rows(value)) == 1


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

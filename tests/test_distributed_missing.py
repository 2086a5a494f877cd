"""Missing entries across two gloo ranks: the union of the shards, as in one process.

The test launches this file twice as a script (rank 0 and rank 1). Each rank fits its
own shard (rows with NaN entries, a row with nothing observed, shards of unequal size)
in memory and from a CSV file with empty cells; the test compares both ranks with the
single-process in-memory fit on the concatenated data from the same start, and checks
a float32 fit and a default (k-means) start across ranks.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from _gloo import run_two_ranks
from mixtorch import GaussianMixture

SPLIT = 420  # uneven shards on purpose
KINDS = ("full", "diag", "tied", "spherical")


def make_data() -> np.ndarray:
    rng = np.random.default_rng(11)
    mixing = np.array([[1.0, 0.3, 0.0], [0.0, 0.8, 0.4], [0.0, 0.0, 1.2]])
    centres = ([0.0, 0.0, 0.0], [6.0, -2.0, 3.0])
    X = np.concatenate([rng.normal(size=(300, 3)) @ mixing + c for c in centres])
    X = X[rng.permutation(len(X))]
    X[rng.random(X.shape) < 0.3] = np.nan
    X[SPLIT + 5] = np.nan  # nothing observed, on rank 1
    return X


def start(kind: str) -> dict[str, np.ndarray]:
    precisions = {
        "full": np.stack([np.eye(3)] * 2),
        "tied": np.eye(3),
        "diag": np.ones((2, 3)),
        "spherical": np.ones(2),
    }[kind]
    means = np.array([[1.0, 0.5, 0.0], [5.0, -1.0, 2.0]])
    return {"weights_init": np.full(2, 0.5), "means_init": means, "precisions_init": precisions}


def model(kind: str, **options: object) -> GaussianMixture:
    settings = {"missing_values": np.nan, "tol": 1e-10, "max_iter": 400, **options}
    return GaussianMixture(2, covariance_type=kind, **start(kind), **settings)


def fitted(estimator: GaussianMixture, prefix: str) -> dict[str, np.ndarray]:
    return {
        f"{prefix}_weights": np.asarray(estimator.weights_),
        f"{prefix}_means": np.asarray(estimator.means_),
        f"{prefix}_covariances": np.asarray(estimator.covariances_),
        f"{prefix}_lower_bound": np.array(estimator.lower_bound_),
        f"{prefix}_n_iter": np.array(estimator.n_iter_),
    }


def write_csv(path: Path, X: np.ndarray) -> None:
    lines = [",".join("" if np.isnan(v) else repr(float(v)) for v in row) for row in X]
    path.write_text("x,y,z\n" + "\n".join(lines) + "\n")


# -- worker (runs in the child processes) ---------------------------------------------
def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank_id, world_size=2
    )
    try:
        X = make_data()
        shard = X[:SPLIT] if rank_id == 0 else X[SPLIT:]
        results: dict[str, np.ndarray] = {}
        for kind in KINDS:
            results.update(fitted(model(kind).fit(shard), kind))
        path = out / f"shard{rank_id}.csv"
        write_csv(path, shard)
        results.update(fitted(model("full", chunk_size=50).fit(str(path)), "csv"))
        # float32 cannot resolve tol=1e-10: the mean log-likelihood moves by rounding
        single = model("full", dtype="float32", tol=1e-6).fit(shard.astype(np.float32))
        results.update(fitted(single, "float32"))
        default = GaussianMixture(2, missing_values=np.nan, random_state=0, tol=1e-8)
        results["default_labels"] = np.asarray(default.fit_predict(shard))
        results.update(fitted(default, "default"))
        complete = shard[~np.isnan(shard).any(1)]  # finite rows, so only the setting differs
        try:
            GaussianMixture(2, missing_values=np.nan if rank_id == 0 else None).fit(complete)
            results["mismatch"] = np.array("")
        except ValueError as error:
            results["mismatch"] = np.array(str(error))
        np.savez(out / f"rank{rank_id}.npz", **results)
    finally:
        dist.destroy_process_group()


# -- the test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, np.ndarray]]:
    out = tmp_path_factory.mktemp("gloo_missing")
    run_two_ranks(__file__, out, timeout=150)
    return [dict(np.load(out / f"rank{rank_id}.npz")) for rank_id in range(2)]


@pytest.mark.parametrize("scenario", [*KINDS, "csv"])
def test_two_ranks_match_the_single_process_fit_on_the_union(rank_results, scenario):
    kind = "full" if scenario == "csv" else scenario
    single = model(kind).fit(make_data())
    assert single.n_iter_ > 3  # the rough start really needed EM
    for result in rank_results:
        for name in ("weights", "means", "covariances", "lower_bound"):
            np.testing.assert_allclose(
                result[f"{scenario}_{name}"], getattr(single, f"{name}_"), rtol=1e-9, atol=1e-10
            )
        assert int(result[f"{scenario}_n_iter"]) == single.n_iter_


def test_float32_across_ranks_is_finite_and_close_to_float64(rank_results):
    single = model("full").fit(make_data())
    for result in rank_results:
        assert result["float32_means"].dtype == np.float32
        assert np.isfinite(result["float32_covariances"]).all()
        np.testing.assert_allclose(result["float32_means"], single.means_, atol=1e-3)
        np.testing.assert_allclose(result["float32_covariances"], single.covariances_, atol=1e-3)


def test_default_start_gives_one_model_on_every_rank(rank_results):
    first, second = rank_results
    for name in ("weights", "means", "covariances", "lower_bound"):
        np.testing.assert_array_equal(first[f"default_{name}"], second[f"default_{name}"])
    X = make_data()
    reference = GaussianMixture(2, missing_values=np.nan, random_state=0, tol=1e-8).fit(X)
    assert float(first["default_lower_bound"]) == pytest.approx(reference.lower_bound_, abs=1e-6)
    labels = np.concatenate([first["default_labels"], second["default_labels"]])
    expected = reference.predict(X)
    agreement = max((labels == expected).mean(), (labels != expected).mean())
    assert agreement == 1.0


def test_ranks_that_disagree_on_missing_values_stop_with_the_same_error(rank_results):
    messages = [str(result["mismatch"]) for result in rank_results]
    assert messages[0] == messages[1]
    assert "same missing_values" in messages[0]


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

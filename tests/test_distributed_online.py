"""``partial_fit`` and ``GaussianKDE.fit`` inside a process group: two gloo processes on the
loopback interface against single-process fits of the concatenated data.

Each rank passes its own batches (of different sizes on the two ranks); every call of
``partial_fit`` takes one stepwise-EM step from the union of the ranks' batches, so both
ranks hold the model that one process gets from the concatenated batches. A KDE fitted
on each rank's shard is the KDE of the union, on every rank. A batch that one rank cannot
use raises on both ranks instead of leaving the other waiting in a collective.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from _gloo import join_group, json_results
from mixtorch import GaussianKDE, GaussianMixture
from mixtorch.sources import as_source

START = {
    "weights_init": np.full(3, 1 / 3),
    "means_init": np.array([[0.5, 0.0], [5.0, 5.5], [-4.0, 3.0]]),
    "precisions_init": np.stack([np.eye(2)] * 3),
}
SIZES = [(40, 25), (30, 31), (50, 7), (22, 40), (35, 35)]  # rows per batch on ranks 0, 1
QUERIES = np.array([[0.0, 0.0], [5.0, 5.0], [-4.0, 3.0], [2.0, 2.0]])


def make_data() -> np.ndarray:
    rng = np.random.default_rng(11)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-4.0, 3.0]])
    rows = sum(a + b for a, b in SIZES)
    return centres[rng.integers(3, size=rows)] + rng.normal(scale=0.8, size=(rows, 2))


def batches(rank_id: int | None) -> list[np.ndarray]:
    """Rank ``rank_id``'s batches, or (None) each step's union in rank order."""
    X, out, start = make_data(), [], 0
    for first, second in SIZES:
        ranks = [X[start : start + first], X[start + first : start + first + second]]
        out.append(np.concatenate(ranks) if rank_id is None else ranks[rank_id])
        start += first + second
    return out


def weights_of(rows: int, offset: int) -> np.ndarray:
    return 1.0 + (np.arange(rows) + offset) % 3


def state(model: GaussianMixture) -> dict[str, object]:
    return {
        "weights": np.asarray(model.weights_).tolist(),
        "means": np.asarray(model.means_).tolist(),
        "covariances": np.asarray(model.covariances_).tolist(),
        "lower_bound": float(model.lower_bound_),
        "n_iter": int(model.n_iter_),
    }


# -- worker (runs in the child processes) ---------------------------------------------
def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    join_group(rank_id, port, seconds=60)
    try:
        results: dict[str, object] = {}
        explicit = GaussianMixture(3, **START)
        default = GaussianMixture(3, covariance_type="diag", random_state=rank_id)
        for batch in batches(rank_id):
            explicit.partial_fit(batch)
            default.partial_fit(batch)
        results["explicit"], results["default"] = state(explicit), state(default)
        bad = batches(rank_id)[0].copy()
        if rank_id == 1:
            bad[3, 1] = np.nan
        try:
            explicit.partial_fit(bad)
            results["bad_batch"] = None
        except ValueError as error:
            results["bad_batch"] = str(error)
        results["after_bad_batch"] = state(explicit)
        # a data source on one rank (refused before any collective on that rank only)
        try:
            explicit.partial_fit(as_source(bad) if rank_id == 1 else batches(rank_id)[0])
            results["source_batch"] = None
        except (TypeError, ValueError) as error:
            results["source_batch"] = str(error)
        # ranks given different starts would each step their own model
        shifted = {**START, "means_init": START["means_init"] + 0.5 * rank_id}
        try:
            GaussianMixture(3, **shifted).partial_fit(batches(rank_id)[0])
            results["different_starts"] = None
        except ValueError as error:
            results["different_starts"] = str(error)
        shard = np.concatenate(batches(rank_id))
        one_row = GaussianKDE().fit(shard[:1] if rank_id == 1 else shard)
        results["kde_one_row_n"] = int(one_row.n_samples_fit_)
        offset = 0 if rank_id == 0 else sum(len(b) for b in batches(0))
        weighted = GaussianKDE().fit(shard, sample_weight=weights_of(len(shard), offset))
        plain = GaussianKDE(bandwidth=0.5).fit(shard)
        results["kde_weighted"] = weighted.score_samples(QUERIES).tolist()
        results["kde_weighted_bandwidth"] = np.asarray(weighted.bandwidth_).tolist()
        results["kde_plain"] = plain.score_samples(QUERIES).tolist()
        results["kde_n"] = int(plain.n_samples_fit_)
        (out / f"rank{rank_id}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


# -- the test ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return json_results(__file__, tmp_path_factory.mktemp("gloo_online"), timeout=150)


def test_partial_fit_on_two_ranks_is_the_concatenated_batches_step(rank_results):
    single = GaussianMixture(3, **START)
    for batch in batches(None):
        single.partial_fit(batch)
    expected = state(single)
    for result in rank_results:
        got = result["explicit"]
        for name in ("weights", "means", "covariances", "lower_bound"):
            np.testing.assert_allclose(got[name], expected[name], rtol=1e-10, atol=1e-12)
        assert got["n_iter"] == expected["n_iter"] == len(SIZES)


def test_partial_fit_default_start_is_one_model_on_every_rank(rank_results):
    first, second = (result["default"] for result in rank_results)
    assert first == second  # the same seed (rank 0's) and the same union: bit for bit
    means = np.sort(np.asarray(first["means"]), axis=0)
    np.testing.assert_allclose(means, [[-4.0, 0.0], [0.0, 3.0], [5.0, 5.0]], atol=0.3)


def test_a_batch_one_rank_cannot_use_raises_on_both_and_changes_nothing(rank_results):
    first, second = rank_results
    assert "NaN" in second["bad_batch"]
    assert "1 other rank(s) could not use their data" in first["bad_batch"]
    for result in rank_results:
        assert result["after_bad_batch"] == result["explicit"]


def test_errors_that_one_rank_meets_first_are_raised_on_both(rank_results):
    first, second = rank_results
    assert "partial_fit takes one in-memory batch" in second["source_batch"]
    assert "1 other rank(s) could not use their data" in first["source_batch"]
    for result in rank_results:  # refused before either rank took a step
        assert "ranks hold different ones" in result["different_starts"]
        assert result["after_bad_batch"] == result["explicit"]


def test_a_shard_of_one_row_counts_toward_the_union(rank_results):
    total = sum(len(batch) for batch in batches(0)) + 1
    assert [result["kde_one_row_n"] for result in rank_results] == [total, total]


def test_kde_on_two_ranks_is_the_kde_of_the_union(rank_results):
    X = np.concatenate([*batches(0), *batches(1)])  # the shards in rank order
    weighted = GaussianKDE().fit(X, sample_weight=weights_of(len(X), 0))
    plain = GaussianKDE(bandwidth=0.5).fit(X)
    for result in rank_results:
        assert result["kde_n"] == len(X)
        np.testing.assert_allclose(
            result["kde_weighted_bandwidth"], weighted.bandwidth_, rtol=1e-12
        )
        np.testing.assert_allclose(
            result["kde_weighted"], weighted.score_samples(QUERIES), rtol=1e-12
        )
        np.testing.assert_allclose(result["kde_plain"], plain.score_samples(QUERIES), rtol=1e-12)


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

"""Ranks that hold nothing (or nothing of weight) inside a process group: two gloo
processes on the loopback interface against single-process fits of the union.

- ``partial_fit`` with a batch of no rows on one rank, on the first call and on later
  ones: the rank contributes zero statistics and both ranks hold the model one process
  gets from the concatenated batches (a start given in full, and a start drawn from the
  union with rank 0's seed); a union too small for the start, or empty later on, is the
  same ValueError on both ranks.
- A start given in full (``weights_init``, ``means_init``, ``precisions_init``) gathers
  no rows; ranks whose starts differ stop with an error on both ranks.
- ``GaussianKDE.fit`` with all-zero sample weights (or no rows) on one rank is the KDE of
  the union, whose zero-weight points are dropped as in one process; weights that are
  zero on every rank are an error on both ranks.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from _gloo import join_group, json_results
from mixtorch import GaussianKDE, GaussianMixture
from mixtorch.distributed import synchronised_generator

START = {
    "weights_init": np.array([0.3, 0.3, 0.4]),
    "means_init": np.array([[0.5, 0.0], [5.0, 5.5], [-4.0, 3.0]]),
    "precisions_init": np.stack([np.eye(2), 2.0 * np.eye(2), np.eye(2)]),
}
#: Rows per partial_fit batch on ranks 0 and 1: one rank is empty in three of the steps.
SIZES = [(40, 0), (30, 25), (0, 35), (22, 18), (0, 30)]
QUERIES = np.array([[0.0, 0.0], [5.0, 5.0], [-4.0, 3.0], [2.0, 2.0], [9.0, -3.0]])
#: How close the ranks' models are to the single-process ones: float64 summation order.
RTOL = 1e-11


def make_data() -> np.ndarray:
    rng = np.random.default_rng(5)
    centres = np.array([[0.0, 0.0], [5.0, 5.0], [-4.0, 3.0]])
    rows = sum(a + b for a, b in SIZES)
    return centres[rng.integers(3, size=rows)] + rng.normal(scale=0.8, size=(rows, 2))


def with_holes(X: np.ndarray) -> np.ndarray:
    """``X`` with about one entry in six missing (never a whole row)."""
    holes = X.copy()
    mask = np.random.default_rng(6).random(X.shape) < 1 / 6
    mask[mask.all(axis=1), 0] = False
    holes[mask] = np.nan
    return holes


def batches(rank_id: int | None, X: np.ndarray) -> list[np.ndarray]:
    """Rank ``rank_id``'s batches of ``X``, or (None) each step's union in rank order."""
    out, start = [], 0
    for first, second in SIZES:
        ranks = [X[start : start + first], X[start + first : start + first + second]]
        out.append(np.concatenate(ranks) if rank_id is None else ranks[rank_id])
        start += first + second
    return out


def kde_shards(rank_id: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Rows and sample weights of rank ``rank_id`` (rank 1's weights are all zero), or
    (None) their union in rank order."""
    X = make_data()[:120]
    weights = np.concatenate([1.0 + np.arange(70) % 4, np.zeros(50)])
    if rank_id is None:
        return X, weights
    return (X[:70], weights[:70]) if rank_id == 0 else (X[70:], weights[70:])


def state(model: GaussianMixture) -> dict[str, Any]:
    return {
        "weights": np.asarray(model.weights_).tolist(),
        "means": np.asarray(model.means_).tolist(),
        "covariances": np.asarray(model.covariances_).tolist(),
        "lower_bound": float(model.lower_bound_),
        "n_iter": int(model.n_iter_),
        "n_features_in": int(model.n_features_in_),
    }


def kde_state(kde: GaussianKDE) -> dict[str, Any]:
    return {
        "log_density": kde.score_samples(QUERIES).tolist(),
        "bandwidth": np.asarray(kde.bandwidth_).tolist(),
        "n": int(kde.n_samples_fit_),
    }


def error_of(fit: Any) -> str | None:
    try:
        fit()
    except ValueError as error:
        return str(error)
    return None


# -- worker (runs in the child processes) ---------------------------------------------
def _worker(rank_id: int, port: int, out: Path) -> None:
    import torch.distributed as dist

    import mixtorch._online as online

    gathered: list[int] = []  # rows gathered by partial_fit's start, one entry per gather
    real_gather = online.gather_rows

    def counting_gather(rows: torch.Tensor) -> list[torch.Tensor]:
        gathered.append(int(rows.shape[0]))
        return real_gather(rows)

    online.gather_rows = counting_gather
    join_group(rank_id, port, seconds=60)
    try:
        X, results = make_data(), {}
        given = GaussianMixture(3, **START)
        holes = GaussianMixture(3, covariance_type="diag", missing_values=np.nan, **START)
        holes.set_params(precisions_init=np.ones((3, 2)))
        for batch, holey in zip(batches(rank_id, X), batches(rank_id, with_holes(X)), strict=True):
            given.partial_fit(batch)
            holes.partial_fit(holey)
        results["given"], results["holes"] = state(given), state(holes)
        results["given_gathers"] = list(gathered)
        drawn = GaussianMixture(3, covariance_type="diag", random_state=0)
        for batch in batches(rank_id, X):
            drawn.partial_fit(batch)
        results["drawn"], results["drawn_gathers"] = (
            state(drawn),
            gathered[len(results["given_gathers"]) :],
        )
        # errors, the same on both ranks (none may leave the other waiting)
        results["too_small"] = error_of(
            lambda: GaussianMixture(3, **START).partial_fit(X[:2] if rank_id == 0 else X[:0])
        )
        results["all_empty_later"] = error_of(lambda: given.partial_fit(X[:0]))
        results["after_errors"] = state(given)
        del gathered[:]
        shifted = {**START, "means_init": START["means_init"] + 0.25 * rank_id}
        results["different_starts"] = error_of(
            lambda: GaussianMixture(3, **shifted).partial_fit(X[rank_id::2])
        )
        partial = START if rank_id == 0 else {}
        results["given_on_one_rank"] = error_of(
            lambda: GaussianMixture(3, **partial).partial_fit(X[rank_id::2])
        )
        results["error_gathers"] = list(gathered)
        wrong = {**START, "means_init": START["means_init"][:2]} if rank_id == 1 else START
        results["bad_init_on_one_rank"] = error_of(
            lambda: GaussianMixture(3, **wrong).partial_fit(X[rank_id::2])
        )
        # KDE: rank 1's weights are all zero; then every weight zero; then no rows on rank 1
        rows, weights = kde_shards(rank_id)
        results["kde_scott"] = kde_state(GaussianKDE().fit(rows, sample_weight=weights))
        results["kde_float"] = kde_state(GaussianKDE(0.7).fit(rows, sample_weight=weights))
        results["kde_zero_union"] = error_of(
            lambda: GaussianKDE().fit(rows, sample_weight=np.zeros(len(rows)))
        )
        kept = slice(None) if rank_id == 0 else slice(0)
        results["kde_empty_rank"] = kde_state(
            GaussianKDE().fit(rows[kept], sample_weight=weights[kept])
        )
        (out / f"rank{rank_id}.json").write_text(json.dumps(results))
    finally:
        dist.destroy_process_group()


# -- the tests --------------------------------------------------------------------------
@pytest.fixture(scope="module")
def rank_results(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    return json_results(__file__, tmp_path_factory.mktemp("gloo_leftovers"), timeout=150)


def assert_same_model(got: dict[str, Any], expected: dict[str, Any]) -> None:
    for name in ("weights", "means", "covariances", "lower_bound"):
        np.testing.assert_allclose(got[name], expected[name], rtol=RTOL, atol=1e-13)
    assert got["n_iter"] == expected["n_iter"] == len(SIZES)
    assert got["n_features_in"] == expected["n_features_in"] == 2


def single_process(model: GaussianMixture, X: np.ndarray) -> dict[str, Any]:
    for batch in batches(None, X):
        model.partial_fit(batch)
    return state(model)


def test_an_empty_rank_takes_part_in_partial_fit_from_a_given_start(rank_results):
    expected = single_process(GaussianMixture(3, **START), make_data())
    for result in rank_results:
        assert_same_model(result["given"], expected)


def test_an_empty_rank_takes_part_with_missing_values(rank_results):
    model = GaussianMixture(3, covariance_type="diag", missing_values=np.nan, **START)
    model.set_params(precisions_init=np.ones((3, 2)))
    expected = single_process(model, with_holes(make_data()))
    for result in rank_results:
        assert_same_model(result["holes"], expected)


def test_an_empty_rank_takes_part_in_a_start_drawn_from_the_union(rank_results):
    # The ranks draw with a seed taken from rank 0's generator; one process does the same
    # when given that generator (synchronised_generator draws it outside a group too).
    seeded = synchronised_generator(torch.Generator().manual_seed(0), "cpu")
    expected = single_process(
        GaussianMixture(3, covariance_type="diag", random_state=seeded), make_data()
    )
    first, second = (result["drawn"] for result in rank_results)
    assert first == second  # the same start and steps on both ranks, bit for bit
    assert_same_model(first, expected)
    assert np.ptp(np.asarray(first["means"])[:, 0]) > 8  # the three groups were found


def test_a_given_start_gathers_no_rows_and_a_drawn_one_gathers_once(rank_results):
    for result in rank_results:
        assert result["given_gathers"] == []
        assert result["error_gathers"] == []
    assert [result["drawn_gathers"] for result in rank_results] == [[40], [0]]


def test_a_union_too_small_or_empty_is_an_error_on_both_ranks(rank_results):
    for result in rank_results:
        assert "max(2, n_components) = 3 rows (all ranks together), got 2" in (result["too_small"])
        assert "every rank passed an empty batch" in result["all_empty_later"]
        assert result["after_errors"] == result["given"]  # the model was left as it was


def test_ranks_with_different_given_starts_stop_on_both(rank_results):
    for result in rank_results:
        assert "ranks hold different ones" in result["different_starts"]
        assert "same given_init" in result["given_on_one_rank"]
    first, second = (result["bad_init_on_one_rank"] for result in rank_results)
    assert "1 other rank(s) could not use their data" in first
    assert "means_init must have shape (3, 2)" in second


def test_a_kde_rank_with_all_zero_weights_adds_nothing(rank_results):
    X, weights = kde_shards(None)
    scott = GaussianKDE().fit(X, sample_weight=weights)
    fixed = GaussianKDE(0.7).fit(X, sample_weight=weights)
    assert scott.n_samples_fit_ == fixed.n_samples_fit_ == 70  # zero-weight points dropped
    for result in rank_results:
        for name, reference in (("kde_scott", scott), ("kde_float", fixed)):
            got = result[name]
            assert got["n"] == 70
            np.testing.assert_allclose(got["bandwidth"], reference.bandwidth_, rtol=1e-13)
            np.testing.assert_allclose(
                got["log_density"], reference.score_samples(QUERIES), rtol=1e-13
            )


def test_a_kde_rank_without_rows_adds_nothing(rank_results):
    X, weights = kde_shards(0)
    reference = GaussianKDE().fit(X, sample_weight=weights)
    for result in rank_results:
        got = result["kde_empty_rank"]
        assert got["n"] == 70
        np.testing.assert_allclose(got["bandwidth"], reference.bandwidth_, rtol=1e-13)
        np.testing.assert_allclose(got["log_density"], reference.score_samples(QUERIES), rtol=1e-13)


def test_kde_weights_zero_on_every_rank_are_an_error_on_both(rank_results):
    for result in rank_results:
        assert "sample_weight sums to zero over the union" in result["kde_zero_union"]


if __name__ == "__main__":
    _worker(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]))

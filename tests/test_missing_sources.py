"""Missing entries in chunk sources and files: the same exact EM as in memory."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from scipy.stats import multivariate_normal

from mixtorch import GaussianMixture
from mixtorch.sources import from_callable, from_directory, from_tensor

KINDS = ["full", "tied", "diag", "spherical"]


def _holes(seed: int = 0, n: int = 700, missing: float = 0.25) -> np.ndarray:
    rng = np.random.default_rng(seed)
    mixing = np.array([[1.0, 0.4, 0.0], [0.0, 1.0, 0.3], [0.0, 0.0, 0.8]])
    centres = ([0.0, 0.0, 0.0], [5.0, 4.0, -3.0])
    X = np.concatenate([rng.normal(size=(n // 2, 3)) @ mixing + c for c in centres])
    X = X[rng.permutation(len(X))]
    X[rng.random(X.shape) < missing] = np.nan
    X[3] = np.nan  # a row with nothing observed
    return X


def _start(kind: str) -> dict[str, np.ndarray]:
    precisions = {
        "full": np.stack([np.eye(3)] * 2),
        "tied": np.eye(3),
        "diag": np.ones((2, 3)),
        "spherical": np.ones(2),
    }[kind]
    means = np.array([[1.0, 1.0, 0.0], [4.0, 3.0, -2.0]])
    return {
        "weights_init": np.array([0.5, 0.5]),
        "means_init": means,
        "precisions_init": precisions,
    }


def _model(kind: str, **options: object) -> GaussianMixture:
    settings = {"missing_values": np.nan, "tol": 1e-10, "max_iter": 500, **options}
    return GaussianMixture(2, covariance_type=kind, **_start(kind), **settings)


def _observed_log_likelihood(model: GaussianMixture, X: np.ndarray) -> float:
    """Brute force: the mean over rows of log sum_k w_k N(x_o | mu_ko, S_koo) (SciPy)."""
    covariances = model.mixture_.covariance.full_matrices(2).numpy()
    total = 0.0
    for row in X:
        seen = ~np.isnan(row)
        if seen.any():
            parts = [
                np.log(model.weights_[k])
                + multivariate_normal(
                    model.means_[k][seen], covariances[k][np.ix_(seen, seen)]
                ).logpdf(row[seen])
                for k in range(2)
            ]
            total += logsumexp(parts)
    return total / len(X)


def _assert_same_fit(ours: GaussianMixture, reference: GaussianMixture, rtol: float) -> None:
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(
            getattr(ours, name), getattr(reference, name), rtol=rtol, atol=rtol
        )
    assert ours.n_iter_ == reference.n_iter_
    assert ours.lower_bound_ == pytest.approx(reference.lower_bound_, rel=rtol)


def _write_csv(path: Path, X: np.ndarray, marker: str, header: bool) -> None:
    lines = ["a,b,c"] if header else []
    lines += [",".join(marker if np.isnan(v) else repr(float(v)) for v in row) for row in X]
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("kind", KINDS)
def test_a_chunk_generator_gives_the_in_memory_fit(kind):
    X = _holes()
    memory = _model(kind).fit(X)
    assert memory.n_iter_ > 3
    blocks = [X[i : i + 97] for i in range(0, len(X), 97)]
    streamed = _model(kind).fit(from_callable(lambda: (block for block in blocks)))
    _assert_same_fit(streamed, memory, 1e-9)
    # both are the maximum of the observed-data likelihood (brute force with SciPy)
    assert streamed.lower_bound_ == pytest.approx(_observed_log_likelihood(streamed, X), rel=1e-7)


def test_a_csv_directory_with_empty_and_na_cells_gives_the_in_memory_fit(tmp_path):
    X = _holes(seed=1)
    _write_csv(tmp_path / "part-0.csv", X[:300], "", header=True)
    _write_csv(tmp_path / "part-1.csv", X[300:], "NA", header=False)
    memory = _model("full").fit(X)
    from_files = _model("full", chunk_size=64).fit(str(tmp_path))
    _assert_same_fit(from_files, memory, 1e-9)
    labels = _model("full").fit_predict(str(tmp_path))
    np.testing.assert_array_equal(labels, memory.predict(X))


def test_files_with_missing_cells_stay_an_error_without_missing_values(tmp_path):
    X = _holes(seed=2, n=40)
    _write_csv(tmp_path / "data.csv", X, "", header=False)
    with pytest.raises(ValueError, match="missing_values=np.nan"):
        GaussianMixture(2).fit(str(tmp_path))
    complete_first = np.concatenate([np.ones((1, 3)), X])
    _write_csv(tmp_path / "data.csv", complete_first, "NA", header=False)
    with pytest.raises(ValueError, match=r"line \d+ of .*data.csv has a missing or infinite"):
        GaussianMixture(2).fit(str(tmp_path))
    np.save(tmp_path / "data.npy", X)
    with pytest.raises(ValueError, match=r"contains NaN; GaussianMixture\(missing_values=np.nan"):
        GaussianMixture(2).fit(str(tmp_path / "data.npy"))
    with pytest.raises(ValueError, match="contains NaN"):
        list(from_directory(tmp_path, "*.npy")())
    # with missing values every row is read, none dropped
    source = from_directory(tmp_path, "*.csv").with_missing_values(np.nan)
    read = torch.cat(list(source()))
    np.testing.assert_array_equal(np.isnan(read.numpy()), np.isnan(complete_first))


def test_infinity_in_a_source_stays_an_error():
    X = _holes(n=40)
    X[5, 1] = np.inf
    with pytest.raises(ValueError, match="infinity"):
        _model("diag").fit(from_tensor(X, 16))


def test_a_feature_never_observed_in_a_stream_is_refused_like_in_memory():
    # In memory such a column was already a ValueError; from a source it was fitted as
    # mean 0, variance reg_covar. A column empty in one chunk only is fine.
    X = _holes(n=400)
    X[:, 1] = np.nan
    model = GaussianMixture(2, missing_values=np.nan, random_state=0)
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] have no observed value") as streamed:
        model.fit(from_tensor(X, 64))
    with pytest.raises(ValueError) as in_memory:
        GaussianMixture(2, missing_values=np.nan, random_state=0).fit(X)
    assert str(streamed.value) == str(in_memory.value)
    X = _holes(n=400)
    X[:64, 1] = np.nan  # the whole first chunk lacks feature 1
    fitted = GaussianMixture(2, missing_values=np.nan, random_state=0, max_iter=300)
    assert np.isfinite(fitted.fit(from_tensor(X, 64)).covariances_).all()


def test_default_start_on_a_source_fits_rows_with_missing_entries():
    X = _holes(seed=4)
    model = GaussianMixture(2, missing_values=np.nan, random_state=0, tol=1e-8, max_iter=300)
    labels = model.fit_predict(from_tensor(X, 128))
    assert model.converged_
    np.testing.assert_array_equal(labels, model.predict(X))
    assert np.allclose(np.sort(model.means_[:, 0]), [0.0, 5.0], atol=0.3)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_float32_source_fit_on_offset_data_is_close_to_float64(kind):
    X = _holes(seed=5) + 1e4
    start = _start(kind)
    start["means_init"] = start["means_init"] + 1e4
    options = {"covariance_type": kind, "missing_values": np.nan, "tol": 1e-6, "max_iter": 50}
    double = GaussianMixture(2, **options, **start).fit(from_tensor(X, 128))
    single = GaussianMixture(2, dtype="float32", **options, **start).fit(
        from_tensor(X.astype(np.float32), 128)
    )
    assert single.means_.dtype == np.float32
    assert np.isfinite(single.covariances_).all() and np.isfinite(single.lower_bound_)
    np.testing.assert_allclose(single.means_, double.means_, rtol=0, atol=2e-2)
    np.testing.assert_allclose(single.covariances_, double.covariances_, rtol=2e-2, atol=2e-2)
    scores = single.score_samples(X.astype(np.float32))
    assert np.isfinite(scores).all()


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_partial_fit_at_the_exact_em_fixed_point_leaves_the_model_in_place(kind):
    # With no running state, partial_fit on X is one EM step on X from the fitted model:
    # at exact EM's fixed point (with missing entries) nothing may move.
    X = _holes(seed=6)
    model = _model(kind, tol=1e-13, max_iter=2000).fit(X)
    means, covariances = model.means_.copy(), model.covariances_.copy()
    model.partial_fit(X)
    np.testing.assert_allclose(model.means_, means, rtol=0, atol=1e-7)
    np.testing.assert_allclose(model.covariances_, covariances, rtol=0, atol=1e-7)


def test_partial_fit_over_batches_with_missing_entries_finds_the_clusters():
    X = _holes(seed=7, n=4000)
    model = GaussianMixture(2, missing_values=np.nan, random_state=0)
    for batch in np.array_split(X, 20):
        model.partial_fit(batch)
    exact = _model("full").fit(X)
    order = np.argsort(model.means_[:, 0])
    np.testing.assert_allclose(
        model.means_[order], exact.means_[np.argsort(exact.means_[:, 0])], atol=0.15
    )
    assert np.isfinite(model.score_samples(X)).all()
    with pytest.raises(ValueError, match="NaN"):
        GaussianMixture(2).partial_fit(X)


def test_a_feature_unobserved_in_the_first_partial_fit_batch_is_refused():
    X = _holes(seed=9, n=400)
    first = X[:100].copy()
    first[:, 1] = np.nan
    model = GaussianMixture(2, missing_values=np.nan, random_state=0)
    with pytest.raises(ValueError, match=r"Feature\(s\) \[1\] have no observed value in the first"):
        model.partial_fit(first)
    assert not hasattr(model, "means_")
    # Once started, a batch that misses a feature entirely only leaves it to the others.
    model.partial_fit(X[100:300])
    model.partial_fit(first)
    assert np.isfinite(model.means_).all() and np.isfinite(model.covariances_).all()
    assert np.isfinite(model.score_samples(X)).all()


@pytest.mark.parametrize("kind", ["full", "spherical"])
def test_sparse_holes_buffered_over_many_chunks_give_the_in_memory_fit(kind):
    # 2% of the rows have a hole: incomplete rows wait in a buffer across chunks
    X = _holes(seed=8, missing=0.0)
    rng = np.random.default_rng(8)
    rows = np.flatnonzero(rng.random(len(X)) < 0.02)
    X[rows, rng.integers(0, 3, size=len(rows))] = np.nan
    memory = _model(kind).fit(X)
    streamed = _model(kind).fit(from_tensor(X, 25))
    _assert_same_fit(streamed, memory, 1e-9)
    assert streamed.lower_bound_ == pytest.approx(_observed_log_likelihood(streamed, X), rel=1e-7)


def test_parquet_nulls_are_missing_entries_only_with_missing_values(tmp_path):
    pa = pytest.importorskip("pyarrow")
    pq = pytest.importorskip("pyarrow.parquet")
    X = _holes(seed=9)
    columns = {name: pa.array(X[:, j], mask=np.isnan(X[:, j])) for j, name in enumerate("abc")}
    pq.write_table(pa.table(columns), tmp_path / "data.parquet")
    with pytest.raises(ValueError, match="has missing values"):
        GaussianMixture(2).fit(str(tmp_path / "data.parquet"))
    memory = _model("diag").fit(X)
    from_parquet = _model("diag", chunk_size=100).fit(str(tmp_path / "data.parquet"))
    _assert_same_fit(from_parquet, memory, 1e-9)

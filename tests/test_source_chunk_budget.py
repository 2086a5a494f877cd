"""Sources' default chunk length: a byte budget, not a fixed row count.

With ``chunk_size=None`` a source reads ``SOURCE_CHUNK_BYTES // (n_features * itemsize)``
rows, clamped to [MIN_SOURCE_CHUNK_ROWS, MAX_SOURCE_CHUNK_ROWS], where ``itemsize`` is that
of the dtype the chunks are delivered in. The expected row counts below are worked out by
hand from that rule; memory is measured with tracemalloc (NumPy reports its buffers to it).
"""

from __future__ import annotations

import tracemalloc

import numpy as np
import pytest
import torch

import mixtorch._chunk_budget as chunk_budget
from mixtorch import Gaussian, GaussianMixture
from mixtorch.sources import (
    DEFAULT_SOURCE_CHUNK_ROWS,
    MAX_SOURCE_CHUNK_ROWS,
    MIN_SOURCE_CHUNK_ROWS,
    SOURCE_CHUNK_BYTES,
    as_source,
    from_directory,
    from_npy,
    from_tensor,
    source_chunk_rows,
)

#: (n_features, bytes per delivered value) -> rows, worked out by hand:
#: 8 MiB = 8388608 bytes; 8388608 // (1000 * 8) = 1048, // (1000 * 4) = 2097,
#: // (2000 * 8) = 524, // (4000 * 8) = 262, // (4000 * 4) = 524; 16 float64 columns are
#: exactly 8 MiB at 65536 rows; 5000 float64 columns would give 209, raised to 256.
HAND_WORKED = {
    (1, 8): 65_536,
    (16, 8): 65_536,
    (16, 4): 65_536,
    (32, 4): 65_536,
    (17, 8): 61_680,
    (33, 4): 63_550,
    (1000, 8): 1048,
    (1000, 4): 2097,
    (2000, 8): 524,
    (4000, 8): 262,
    (4000, 4): 524,
    (4096, 8): 256,
    (5000, 8): 256,
    (100_000, 4): 256,
}

#: dtype of the stored data -> bytes per value of the delivered chunk (float32 stays,
#: float64 stays, half precision becomes float32, integers become float64)
DELIVERED = {
    np.float64: 8,
    np.float32: 4,
    np.float16: 4,
    np.int32: 8,
    np.int64: 8,
    np.uint8: 8,
    torch.float64: 8,
    torch.float32: 4,
    torch.float16: 4,
    torch.bfloat16: 4,
    torch.int64: 8,
}


def _lengths(source):
    return [len(chunk) for chunk in source()]


def _split(n_samples, rows):
    return [rows] * (n_samples // rows) + ([n_samples % rows] if n_samples % rows else [])


def test_the_constants_say_what_the_docs_say():
    assert SOURCE_CHUNK_BYTES == 8 * 2**20
    assert (MIN_SOURCE_CHUNK_ROWS, MAX_SOURCE_CHUNK_ROWS) == (256, 65_536)
    assert DEFAULT_SOURCE_CHUNK_ROWS == MAX_SOURCE_CHUNK_ROWS  # the old name still works


@pytest.mark.parametrize(("n_features", "itemsize"), sorted(HAND_WORKED))
def test_rows_match_the_hand_worked_values(n_features, itemsize):
    dtypes = [dtype for dtype, size in DELIVERED.items() if size == itemsize]
    for dtype in dtypes:
        assert source_chunk_rows(n_features, dtype) == HAND_WORKED[n_features, itemsize], dtype


@pytest.mark.parametrize("dtype", list(DELIVERED), ids=str)
@pytest.mark.parametrize("n_features", [1, 3, 16, 31, 100, 999, 2000, 4097, 50_000])
def test_rows_follow_the_formula_for_every_dtype(n_features, dtype):
    expected = SOURCE_CHUNK_BYTES // (n_features * DELIVERED[dtype])
    expected = min(MAX_SOURCE_CHUNK_ROWS, max(MIN_SOURCE_CHUNK_ROWS, expected))
    assert source_chunk_rows(n_features, dtype) == expected
    assert source_chunk_rows(np.int64(n_features), dtype) == expected


@pytest.mark.parametrize("n_features", [0, -3])  # non-integers: test_leftovers_round2
def test_a_bad_width_is_refused(n_features):
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        source_chunk_rows(n_features)


# -- every source applies the rule to its own width and dtype ---------------------------
@pytest.mark.parametrize(
    ("n_samples", "n_features", "dtype", "rows"),
    [
        (70_000, 16, np.float64, 65_536),  # narrow: the former default, unchanged
        (70_000, 16, np.float32, 65_536),
        (3_000, 1000, np.float64, 1048),  # wide: 8 MiB of rows
        (5_000, 1000, np.float32, 2097),
    ],
)
def test_tensor_and_npy_sources_read_budget_sized_chunks(
    tmp_path, n_samples, n_features, dtype, rows
):
    X = np.random.default_rng(0).normal(size=(n_samples, n_features)).astype(dtype)
    np.save(tmp_path / "data.npy", X)
    sources = {
        "from_tensor (numpy)": from_tensor(X),
        "from_tensor (torch)": from_tensor(torch.from_numpy(X)),
        "as_source (array)": as_source(X),
        "from_npy": from_npy(tmp_path / "data.npy"),
        "from_npy (no mmap)": from_npy(tmp_path / "data.npy", mmap=False),
        "from_directory": from_directory(tmp_path),
        "as_source (path)": as_source(tmp_path / "data.npy"),
    }
    expected = _split(n_samples, rows)
    for name, source in sources.items():
        chunks = list(source())
        assert [len(chunk) for chunk in chunks] == expected, name
        assert _lengths(source) == expected, name  # every pass: the same chunks
        assert all(chunk.dtype == torch.from_numpy(X).dtype for chunk in chunks), name
        assert max(chunk.nbytes for chunk in chunks) <= max(
            SOURCE_CHUNK_BYTES, MAX_SOURCE_CHUNK_ROWS * X[0].nbytes
        )
        np.testing.assert_array_equal(torch.cat(chunks).numpy(), X, err_msg=name)


@pytest.mark.parametrize(
    ("dtype", "rows"),
    [(np.int32, 1048), (np.int16, 1048), (np.float16, 2097)],
    ids=["int32", "int16", "float16"],
)
def test_npy_rows_count_the_delivered_dtype_not_the_stored_one(tmp_path, dtype, rows):
    # integers are delivered as float64 (8 bytes), half precision as float32 (4 bytes)
    X = (np.arange(2200 * 1000) % 1000).reshape(2200, 1000).astype(dtype)
    np.save(tmp_path / "data.npy", X)
    chunks = list(from_npy(tmp_path / "data.npy")())
    assert [len(chunk) for chunk in chunks] == _split(2200, rows)
    assert len(chunks) == (3 if rows == 1048 else 2)
    assert chunks[0].nbytes == rows * 1000 * (8 if np.dtype(dtype).kind == "i" else 4)


def test_directory_sizes_each_shard_by_its_own_width_and_dtype(tmp_path):
    rng = np.random.default_rng(1)
    wide64 = rng.normal(size=(1100, 1000))
    wide32 = rng.normal(size=(2100, 1000)).astype(np.float32)
    np.save(tmp_path / "a.npy", wide64)
    np.save(tmp_path / "b.npy", wide32)
    assert _lengths(from_directory(tmp_path)) == [1048, 52, 2097, 3]


def test_an_explicit_chunk_size_is_kept_as_it_was(tmp_path):
    wide = np.zeros((1100, 1000))
    narrow = np.zeros((70_000, 2), dtype=np.float32)
    np.save(tmp_path / "wide.npy", wide)
    assert _lengths(from_npy(tmp_path / "wide.npy", chunk_size=300)) == [300, 300, 300, 200]
    assert _lengths(from_directory(tmp_path, chunk_size=1100)) == [1100]  # over the budget
    assert _lengths(from_tensor(narrow, chunk_size=70_000)) == [70_000]  # over the maximum
    assert _lengths(as_source(narrow[:500], chunk_size=1)) == [1] * 500
    with pytest.raises(ValueError, match="None picks 65536 rows, fewer for rows over 128 bytes"):
        from_tensor(narrow, chunk_size=0)


def test_a_source_without_columns_still_fails_on_its_chunk():
    source = from_tensor(np.zeros((5, 0)))  # the width is not a chunk-size error
    with pytest.raises(ValueError, match="chunk 0 of tensor has no columns"):
        list(source())


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_csv_and_parquet_shards_size_float64_chunks_by_their_width(tmp_path, monkeypatch, suffix):
    # a small budget keeps the files small: 4096 bytes / (10 columns * 8 bytes) = 51 rows
    monkeypatch.setattr(chunk_budget, "SOURCE_CHUNK_BYTES", 4096)
    monkeypatch.setattr(chunk_budget, "MIN_SOURCE_CHUNK_ROWS", 1)
    X = np.round(np.random.default_rng(2).normal(size=(120, 10)), 6)
    if suffix == ".csv":
        np.savetxt(tmp_path / "part.csv", X, delimiter=",", fmt="%.6f")
    else:
        pa = pytest.importorskip("pyarrow")
        pq = pytest.importorskip("pyarrow.parquet")
        table = pa.table({f"x{j}": X[:, j].astype(np.float32) for j in range(10)})
        pq.write_table(table, tmp_path / "part.parquet")
    source = as_source(tmp_path / f"part{suffix}")
    chunks = list(source())
    assert [len(chunk) for chunk in chunks] == [51, 51, 18]
    assert all(chunk.dtype == torch.float64 for chunk in chunks)  # read as float64
    np.testing.assert_allclose(torch.cat(chunks).numpy(), X, rtol=1e-6)
    assert _lengths(from_directory(tmp_path)) == [51, 51, 18]
    assert _lengths(from_directory(tmp_path, chunk_size=100)) == [100, 20]


# -- memory --------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def wide_file(tmp_path_factory):
    """20,000 x 2000 float64 (320 MB), written through a memory map: only the rows set
    here take disk blocks, the rest are zeros the file system need not store."""
    path = tmp_path_factory.mktemp("wide") / "wide.npy"
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.float64, shape=(20_000, 2000))
    data[::997] = np.random.default_rng(3).normal(size=(len(range(0, 20_000, 997)), 2000))
    data.flush()
    del data
    return path


def _peak_while_iterating(source):
    """The most bytes NumPy held at once while a pass dropped each chunk after use, and the
    largest chunk's bytes."""
    largest, rows = 0, 0
    tracemalloc.start()
    try:
        for chunk in source():
            largest, rows = max(largest, chunk.nbytes), rows + len(chunk)
            del chunk
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return peak, largest, rows


@pytest.mark.parametrize("how", ["mmap", "file reads", "directory"])
def test_a_wide_npy_pass_holds_about_one_chunk(wide_file, how):
    source = {
        "mmap": lambda: from_npy(wide_file),
        "file reads": lambda: from_npy(wide_file, mmap=False),
        "directory": lambda: from_directory(wide_file.parent),
    }[how]()
    peak, largest, rows = _peak_while_iterating(source)
    assert rows == 20_000
    # 8388608 // 16000 = 524 rows a chunk: 8,384,000 bytes (the old default of 65536 rows
    # read all 20,000 rows, 320 MB, as one chunk)
    assert largest == 524 * 2000 * 8 == 8_384_000
    assert largest <= SOURCE_CHUNK_BYTES
    # one chunk and small change: the previous chunk is freed before the next is read
    assert largest <= peak < 1.05 * largest, peak


def test_the_source_frees_the_previous_chunk_before_reading_the_next(wide_file):
    # a source over chunks the factory creates: two alive at once would double the peak
    def factory():
        for _ in range(4):
            yield np.ones((524, 2000))

    peak, largest, rows = _peak_while_iterating(as_source(factory))
    assert rows == 4 * 524
    assert largest <= peak < 1.05 * largest, peak


# -- fits: narrow data sees the same chunks, so the same model ------------------------------
@pytest.fixture(scope="module")
def narrow():
    rng = np.random.default_rng(4)
    first = rng.normal(loc=-2.0, scale=0.5, size=(35_000, 3))
    second = rng.normal(loc=[2.0, 1.0, 0.0], scale=1.0, size=(35_003, 3))
    return np.concatenate([first, second])


def test_a_narrow_fit_through_a_source_is_the_model_of_the_old_chunks(narrow):
    assert _lengths(from_tensor(narrow)) == [65_536, 4467]  # as with the fixed default
    options = {"covariance_type": "full", "max_iter": 50, "random_state": 0}
    default = GaussianMixture(2, **options).fit(from_tensor(narrow))
    fixed = GaussianMixture(2, **options).fit(from_tensor(narrow, chunk_size=65_536))
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(default, name), getattr(fixed, name), name)
    assert default.lower_bound_ == fixed.lower_bound_
    assert default.n_iter_ == fixed.n_iter_ and default.converged_


def test_a_narrow_gaussian_through_a_source_matches_numpy(tmp_path, narrow):
    np.save(tmp_path / "narrow.npy", narrow)
    model = Gaussian().fit(from_npy(tmp_path / "narrow.npy"))
    np.testing.assert_allclose(model.mean_, narrow.mean(0), rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(model.covariance_, np.cov(narrow.T, bias=True), rtol=1e-10)


def test_a_wide_fit_through_a_budget_sized_source_matches_numpy(tmp_path):
    # 3000 x 1000: chunks of 1048 rows (the old default read one chunk of 3000)
    X = np.random.default_rng(5).normal(loc=3.0, size=(3000, 1000))
    np.save(tmp_path / "wide.npy", X)
    source = from_npy(tmp_path / "wide.npy")
    assert _lengths(source) == [1048, 1048, 904]
    model = Gaussian(covariance_type="diag").fit(source)
    np.testing.assert_allclose(model.mean_, X.mean(0), rtol=1e-12)
    np.testing.assert_allclose(model.covariance_, X.var(0), rtol=1e-10)

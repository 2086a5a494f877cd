"""Chunk sources: every constructor yields exactly the rows it was given, re-iterably,
and bad shards fail with a message naming them."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from mixtorch.sources import (
    ChunkSource,
    as_source,
    from_callable,
    from_dataloader,
    from_directory,
    from_npy,
    from_tensor,
    is_source,
)


@pytest.fixture
def data() -> np.ndarray:
    return np.random.default_rng(0).normal(size=(1003, 4))


def collect(source: ChunkSource) -> np.ndarray:
    return torch.cat(list(source())).numpy()


@pytest.mark.parametrize("mmap", [True, False])
@pytest.mark.parametrize("chunk_size", [1, 100, 1003, 5000])
def test_npy_source_reads_every_row_once(tmp_path, data, mmap, chunk_size):
    path = tmp_path / "x.npy"
    np.save(path, data)
    source = from_npy(path, mmap=mmap, chunk_size=chunk_size)
    assert (source.n_samples, source.n_features) == (1003, 4)
    sizes = [len(chunk) for chunk in source()]
    assert max(sizes) == min(chunk_size, 1003) and sum(sizes) == 1003
    np.testing.assert_array_equal(collect(source), data)
    np.testing.assert_array_equal(collect(source), data)  # re-iterable


def test_npy_source_keeps_float32_and_reads_fortran_order(tmp_path, data):
    np.save(tmp_path / "c.npy", data.astype(np.float32))
    np.save(tmp_path / "f.npy", np.asfortranarray(data))
    chunks = list(from_npy(tmp_path / "c.npy", chunk_size=500)())
    assert chunks[0].dtype == torch.float32
    np.testing.assert_array_equal(collect(from_npy(tmp_path / "f.npy", chunk_size=300)), data)


def test_directory_of_mixed_shards_in_name_order(tmp_path, data):
    np.save(tmp_path / "a.npy", data[:300])
    pq.write_table(pa.table({f"c{j}": data[300:700, j] for j in range(4)}), tmp_path / "b.parquet")
    np.savetxt(tmp_path / "c.csv", data[700:], delimiter=",", header="p,q,r,s", comments="")
    (tmp_path / "notes.txt").write_text("ignored")
    source = from_directory(tmp_path, chunk_size=128)
    np.testing.assert_allclose(collect(source), data, rtol=1e-15)
    assert source.n_features == 4
    only_npy = from_directory(tmp_path, "*.npy")
    np.testing.assert_array_equal(collect(only_npy), data[:300])
    np.testing.assert_array_equal(collect(as_source(tmp_path / "a.npy")), data[:300])
    np.testing.assert_allclose(collect(as_source(str(tmp_path / "c.csv"))), data[700:])


def test_dataloader_and_callable_sources(data):
    loader = DataLoader(TensorDataset(torch.as_tensor(data), torch.zeros(len(data))), 256)
    source = from_dataloader(loader)
    assert source.n_samples == 1003
    np.testing.assert_array_equal(collect(source), data)
    np.testing.assert_array_equal(collect(as_source(loader)), data)

    def chunks():
        return (data[i : i + 400] for i in range(0, len(data), 400))

    np.testing.assert_array_equal(collect(from_callable(chunks)), data)
    np.testing.assert_array_equal(collect(as_source(chunks)), data)
    np.testing.assert_array_equal(collect(from_tensor(torch.as_tensor(data), 7)), data)


def test_integer_chunks_become_float64_and_row_lists_are_chunks():
    source = from_callable(lambda: [np.arange(6).reshape(3, 2)])
    assert next(source()).dtype == torch.float64
    rows = from_callable(lambda: [[[1.0, 2.0], [3.0, 4.0]], ([5.0, 6.0],)])
    np.testing.assert_array_equal(collect(rows), [[1, 2], [3, 4], [5, 6]])


def test_is_source_tells_arrays_from_sources(tmp_path):
    assert not is_source(np.zeros((2, 2)))
    assert not is_source(torch.zeros(2, 2))
    assert not is_source([[1.0, 2.0]])
    assert is_source(str(tmp_path)) and is_source(tmp_path) and is_source(lambda: [])
    assert is_source(DataLoader(TensorDataset(torch.zeros(2, 2))))


def test_shard_with_nan_is_named(tmp_path, data):
    bad = data[:50].copy()
    bad[10, 2] = np.nan
    np.save(tmp_path / "a.npy", data[:50])
    np.save(tmp_path / "b.npy", bad)
    with pytest.raises(ValueError, match=r"shard .*b\.npy contains NaN"):
        collect(from_directory(tmp_path))


def test_inconsistent_columns_and_shapes_are_rejected(data):
    mixed = from_callable(lambda: [data[:10], data[:10, :3]])
    with pytest.raises(ValueError, match="chunk 1 .* 3 columns, expected 4"):
        collect(mixed)
    with pytest.raises(ValueError, match="must be 2-D"):
        collect(from_callable(lambda: [np.zeros(5)]))
    with pytest.raises(ValueError, match="numeric"):
        collect(from_callable(lambda: [np.array([["a", "b"]])]))
    with pytest.raises(ValueError, match="contains infinity"):
        collect(from_callable(lambda: [np.array([[1.0, np.inf]])]))
    with pytest.raises(ValueError, match="no chunks"):
        from_callable(lambda: []).first_chunk()


def test_bad_paths_and_objects(tmp_path):
    with pytest.raises(ValueError, match="No such"):
        from_npy(tmp_path / "missing.npy")
    with pytest.raises(ValueError, match="No .npy, .parquet or .csv"):
        from_directory(tmp_path)
    np.save(tmp_path / "three.npy", np.zeros((2, 2, 2)))
    with pytest.raises(ValueError, match="2-D"):
        from_npy(tmp_path / "three.npy")
    (tmp_path / "junk.npy").write_bytes(b"not a numpy file")
    with pytest.raises(ValueError, match="not a valid .npy"):
        from_npy(tmp_path / "junk.npy")
    with pytest.raises(ValueError, match="chunk_size"):
        from_npy(tmp_path / "three.npy", chunk_size=0)
    with pytest.raises(TypeError, match="ChunkSource"):
        as_source(42)
    with pytest.raises(ValueError, match="neither a directory"):
        as_source(tmp_path / "file.txt")


# -- issue 13: no silently dropped rows, clear errors for broken sources --------------
def test_header_less_csv_shard_keeps_its_first_row(tmp_path, data):
    np.savetxt(tmp_path / "a.csv", data[:300], delimiter=",")  # no header
    np.savetxt(tmp_path / "b.csv", data[300:], delimiter=",", header="p,q,r,s", comments="")
    np.testing.assert_allclose(collect(from_directory(tmp_path, chunk_size=64)), data, rtol=1e-15)


def test_csv_shard_with_bom_or_na_first_row(tmp_path, data):
    body = "\n".join(",".join(repr(float(v)) for v in row) for row in data[:20])
    (tmp_path / "bom.csv").write_text("\ufeff" + body + "\n", encoding="utf-8")
    np.testing.assert_allclose(collect(from_directory(tmp_path, "bom.csv")), data[:20])
    (tmp_path / "na.csv").write_text("1,NA,3,4\n" + body + "\n")
    with pytest.raises(ValueError, match=r"na\.csv.*header or data"):
        collect(from_directory(tmp_path, "na.csv"))
    with pytest.raises(ValueError, match=r"line 1 of .*na\.csv.*'NA'"):
        collect(from_directory(tmp_path, "na.csv", header=False))


def test_gzipped_csv_shard(tmp_path, data):
    import gzip

    text = "p,q,r,s\n" + "\n".join(",".join(repr(float(v)) for v in row) for row in data)
    (tmp_path / "x.csv.gz").write_bytes(gzip.compress(text.encode()))
    np.testing.assert_allclose(collect(as_source(tmp_path / "x.csv.gz", 100)), data)


def test_truncated_npy_names_the_file(tmp_path, data):
    path = tmp_path / "cut.npy"
    np.save(path, data)
    path.write_bytes(path.read_bytes()[:-64])
    with pytest.raises(ValueError, match=r"cut\.npy is truncated"):
        from_npy(path)


def test_same_one_shot_generator_twice_is_a_clear_error(data):
    generator = (data[i : i + 100] for i in range(0, len(data), 100))
    source = from_callable(lambda: generator)
    assert collect(source).shape == data.shape
    with pytest.raises(ValueError, match="same iterator .* fresh iterable"):
        collect(source)


def test_fit_on_a_one_shot_generator_fails_clearly(data):
    from mixtorch import GaussianMixture

    generator = (data[i : i + 100] for i in range(0, len(data), 100))
    with pytest.raises(ValueError, match="same iterator"):
        GaussianMixture(2, random_state=0).fit(from_callable(lambda: generator))


def test_passes_that_see_different_rows_are_refused(data):
    loader = DataLoader(TensorDataset(torch.as_tensor(data)), 100, shuffle=True, drop_last=True)
    with pytest.raises(ValueError, match="drop_last"):
        from_dataloader(loader)
    sizes = iter([1003, 900])

    def shrinking():
        rows = next(sizes)
        return [data[:rows]]

    source = from_callable(shrinking)
    collect(source)
    with pytest.raises(ValueError, match="900 rows on this pass but 1003 on an earlier"):
        collect(source)
    # a loader that fills its last batch is fine, shuffled or not
    even = DataLoader(TensorDataset(torch.as_tensor(data[:1000])), 100, True, drop_last=True)
    assert collect(from_dataloader(even)).shape == (1000, 4)


def test_missing_pyarrow_is_reported_when_the_source_is_built(tmp_path, data, monkeypatch):
    import importlib.util

    pq.write_table(pa.table({"a": data[:, 0]}), tmp_path / "a.parquet")
    real = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "pyarrow" else real(name)
    )
    with pytest.raises(ImportError, match=r"a\.parquet needs pyarrow: pip install"):
        from_directory(tmp_path)

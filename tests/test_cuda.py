"""CUDA code paths: fit, score, predict, sample, KDE, k-means and save/load on the device.

Every test compares the device result with the same computation on the CPU (float64
where the comparison must be tight). They run wherever a CUDA device exists and are
skipped, with that reason, elsewhere.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import mixtorch
from conftest import make_overlapping_blobs
from mixtorch import GaussianKDE, GaussianMixture
from mixtorch.fit.kmeans import kmeans

pytestmark = [
    pytest.mark.skipif(
        not torch.cuda.is_available(), reason="needs a CUDA device (torch.cuda.is_available())"
    ),
    # Short fits on purpose: what is compared is the device against the CPU.
    pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning"),
]

KINDS = ["full", "tied", "diag", "spherical"]


def _blobs(n: int = 4000, d: int = 3, seed: int = 0) -> np.ndarray:
    return make_overlapping_blobs(n, d, 4, seed)


def _model(kind: str, **params) -> GaussianMixture:
    return GaussianMixture(
        4, covariance_type=kind, init_params="random_from_data", random_state=0, **params
    )


@pytest.mark.parametrize("kind", KINDS)
def test_fit_and_scoring_stay_on_the_device_and_match_the_cpu(kind):
    X = _blobs()
    on_cpu = _model(kind, max_iter=20).fit(torch.tensor(X))
    on_gpu = _model(kind, max_iter=20).fit(torch.tensor(X, device="cuda"))
    for name in ("weights_", "means_", "covariances_", "precisions_cholesky_"):
        value = getattr(on_gpu, name)
        assert value.is_cuda, name
        torch.testing.assert_close(value.cpu(), getattr(on_cpu, name), rtol=1e-7, atol=1e-9)
    Xg = torch.tensor(X, device="cuda")
    for method in ("score_samples", "predict_proba", "predict"):
        result = getattr(on_gpu, method)(Xg)
        assert result.is_cuda, method
        torch.testing.assert_close(result.cpu(), getattr(on_cpu, method)(torch.tensor(X)))
    assert on_gpu.score(Xg) == pytest.approx(on_cpu.score(torch.tensor(X)), rel=1e-10)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_float32_on_the_device_agrees_with_float64(kind):
    X = _blobs(seed=1)
    reference = _model(kind, max_iter=10).fit(torch.tensor(X))
    model = GaussianMixture.from_parameters(
        reference.weights_.numpy(),
        reference.means_.numpy(),
        reference.covariances_.numpy(),
        covariance_type=kind,
        dtype="float32",
        device="cuda",
    )
    log_density = model.score_samples(torch.tensor(X, dtype=torch.float32, device="cuda"))
    assert log_density.is_cuda and log_density.dtype == torch.float32
    expected = reference.score_samples(torch.tensor(X))
    torch.testing.assert_close(log_density.cpu().double(), expected, atol=2e-3, rtol=0)


def test_numpy_input_with_device_cuda_gives_numpy_back():
    X = _blobs(seed=2)
    model = _model("full", max_iter=10, device="cuda").fit(X)
    assert model.mixture_.device.type == "cuda"
    labels = model.predict(X)
    assert isinstance(labels, np.ndarray)
    reference = _model("full", max_iter=10).fit(X)
    np.testing.assert_allclose(model.score_samples(X), reference.score_samples(X), atol=1e-8)


def test_sampling_on_the_device_has_the_model_moments():
    X = _blobs(seed=3)
    model = _model("full", max_iter=20).fit(torch.tensor(X, device="cuda"))
    samples, labels = model.sample(200_000)
    assert samples.is_cuda and labels.is_cuda
    means = model.means_
    for component in range(4):
        chosen = samples[labels == component]
        torch.testing.assert_close(chosen.mean(0), means[component], atol=0.05, rtol=0)


def test_overflowing_rows_on_the_device_score_minus_infinity():
    X = _blobs(n=800, d=2, seed=4)
    model = _model("full", max_iter=10).fit(torch.tensor(X, device="cuda"))
    far = torch.tensor([[1e300, -1e300], [0.0, 0.0]], dtype=torch.float64, device="cuda")
    log_density = model.score_samples(far)
    assert log_density[0].item() == -np.inf and bool(torch.isfinite(log_density[1]))
    assert bool(torch.isfinite(model.predict_proba(far)).all())


def test_scoring_syncs_do_not_grow_with_the_chunk_count():
    X = torch.tensor(_blobs(n=20_000, seed=5), device="cuda")
    counts = []
    for chunk_size in (5000, 500):
        model = _model("full", max_iter=5, chunk_size=chunk_size).fit(X)
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            torch.cuda.set_sync_debug_mode("warn")
            try:
                model.score_samples(X)
                model.predict(X)
            finally:
                torch.cuda.set_sync_debug_mode("default")
        counts.append(len(caught))
    assert counts[1] == counts[0]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_exact_kde_on_the_device_matches_the_cpu(dtype):
    X = _blobs(n=3000, d=2, seed=6)
    queries = _blobs(n=500, d=2, seed=7)
    on_cpu = GaussianKDE(bandwidth=0.4).fit(torch.tensor(X, dtype=torch.float64))
    on_gpu = GaussianKDE(bandwidth=0.4).fit(torch.tensor(X, dtype=dtype, device="cuda"))
    result = on_gpu.score_samples(torch.tensor(queries, dtype=dtype, device="cuda"))
    assert result.is_cuda
    expected = on_cpu.score_samples(torch.tensor(queries))
    tolerance = 1e-10 if dtype == torch.float64 else 1e-4
    torch.testing.assert_close(result.cpu().double(), expected, atol=tolerance, rtol=0)


def test_kmeans_on_the_device_reaches_the_cpu_inertia():
    X = torch.tensor(_blobs(n=20_000, d=4, seed=8))
    on_cpu = kmeans(X, 4, torch.Generator().manual_seed(0))
    on_gpu = kmeans(X.cuda(), 4, torch.Generator(device="cuda").manual_seed(0))
    assert on_gpu.centers.is_cuda and on_gpu.labels.is_cuda
    assert on_gpu.inertia == pytest.approx(on_cpu.inertia, rel=1e-3)


def test_save_and_load_keep_a_device_model(tmp_path):
    X = torch.tensor(_blobs(seed=9), device="cuda")
    model = _model("diag", max_iter=10).fit(X)
    path = mixtorch.save(model, tmp_path / "model.mixtorch")
    loaded = mixtorch.load(path, device="cuda")
    assert loaded.mixture_.device.type == "cuda"
    torch.testing.assert_close(loaded.score_samples(X), model.score_samples(X))
    on_cpu = mixtorch.load(path, device="cpu")
    torch.testing.assert_close(on_cpu.score_samples(X.cpu()), model.score_samples(X).cpu())

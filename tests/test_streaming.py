"""Fitting from chunk sources and stepwise EM, against in-memory fits and scikit-learn."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from sklearn.exceptions import ConvergenceWarning
from sklearn.mixture import GaussianMixture as SkGaussianMixture

from mixtorch import Gaussian, GaussianMixture
from mixtorch.fit.streaming import reservoir_sample
from mixtorch.sources import from_callable, from_npy, from_tensor

KINDS = ["full", "tied", "diag", "spherical"]


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """These problems are tiny; on a busy 2-core machine extra intra-op threads only
    contend (a 3x3 Cholesky then costs milliseconds)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def X() -> np.ndarray:
    rng = np.random.default_rng(3)
    centers = np.array([[0.0, 0.0, 0.0], [6.0, 1.0, -1.0], [1.0, 6.0, 2.0]])
    mixing = [np.eye(3), np.array([[1.0, 0.5, 0], [0, 0.7, 0], [0, 0, 1.5]]), np.eye(3) * 0.6]
    blocks = [rng.normal(size=(700, 3)) @ m + c for m, c in zip(mixing, centers, strict=True)]
    data = np.concatenate(blocks)
    return data[rng.permutation(len(data))]


@pytest.fixture(scope="module")
def npy_path(X, tmp_path_factory) -> str:
    path = tmp_path_factory.mktemp("stream") / "x.npy"
    np.save(path, X)
    return str(path)


def rough_start(kind: str) -> dict:
    precisions = {
        "full": np.stack([np.eye(3)] * 3),
        "tied": np.eye(3),
        "diag": np.ones((3, 3)),
        "spherical": np.ones(3),
    }[kind]
    means = np.array([[1.0, 1.0, 0.0], [5.0, 0.0, 0.0], [0.0, 5.0, 1.0]])
    return {"weights_init": [0.2, 0.3, 0.5], "means_init": means, "precisions_init": precisions}


@pytest.mark.parametrize("kind", KINDS)
def test_exact_em_over_a_file_equals_the_in_memory_fit(X, npy_path, kind):
    options = dict(covariance_type=kind, tol=1e-10, max_iter=500, **rough_start(kind))
    in_memory = GaussianMixture(3, **options).fit(X)
    streamed = GaussianMixture(3, **options).fit(from_npy(npy_path, chunk_size=211))
    assert streamed.n_iter_ == in_memory.n_iter_ > 3
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_allclose(
            getattr(streamed, name), getattr(in_memory, name), rtol=1e-10, atol=1e-12
        )
    assert isinstance(streamed.means_, np.ndarray)
    # and both are scikit-learn's answer from the same start
    reference = SkGaussianMixture(3, **options).fit(X)
    np.testing.assert_allclose(streamed.means_, reference.means_, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("init_params", ["kmeans", "k-means++", "random_from_data"])
def test_default_inits_on_a_stream_reach_scikit_learns_optimum(X, npy_path, init_params):
    model = GaussianMixture(
        3,
        init_params=init_params,
        random_state=0,
        tol=1e-8,
        max_iter=500,
        init_sample_size=300,
        n_init=2,
    )
    labels = model.fit_predict(npy_path)
    reference = SkGaussianMixture(3, random_state=0, tol=1e-8, max_iter=500).fit(X)
    assert model.lower_bound_ == pytest.approx(reference.lower_bound_, abs=1e-6)
    assert model.score(X) == pytest.approx(reference.score(X), abs=1e-6)
    np.testing.assert_array_equal(labels, model.predict(X))


def test_random_init_on_a_stream_gives_a_valid_model(X, npy_path):
    model = GaussianMixture(
        3, init_params="random", random_state=0, max_iter=500, covariance_type="diag"
    ).fit(npy_path)
    assert np.isfinite(model.lower_bound_)
    assert model.weights_.sum() == pytest.approx(1.0)


def test_same_seed_same_stream_fit(npy_path):
    first = GaussianMixture(3, random_state=5, init_sample_size=200).fit(npy_path)
    second = GaussianMixture(3, random_state=5, init_sample_size=200).fit(npy_path)
    np.testing.assert_array_equal(first.means_, second.means_)


def test_float32_file_gives_a_float32_model(X, tmp_path):
    path = tmp_path / "x32.npy"
    np.save(path, (X + 1e4).astype(np.float32))  # offset data: moments must be centred
    model = GaussianMixture(3, random_state=0, tol=1e-6).fit(str(path))
    reference = SkGaussianMixture(3, random_state=0, tol=1e-6).fit(X + 1e4)
    assert model.means_.dtype == np.float32
    assert model.lower_bound_ == pytest.approx(reference.lower_bound_, abs=2e-3)


def test_progress_is_reported_per_pass(npy_path, capsys):
    GaussianMixture(3, random_state=0, verbose=2, verbose_interval=1).fit(npy_path)
    lines = [line for line in capsys.readouterr().out.splitlines() if "Pass" in line]
    assert lines and all("2100 rows in" in line for line in lines)
    assert lines[0].strip().startswith("Pass 1:")


def test_warm_start_and_convergence_warning_on_a_stream(npy_path, X):
    model = GaussianMixture(3, random_state=0, max_iter=1, warm_start=True)
    with pytest.warns(ConvergenceWarning):
        model.fit(npy_path)
    first_bound = model.lower_bound_
    model.set_params(max_iter=500)
    model.fit(npy_path)
    assert model.lower_bound_ >= first_bound
    with pytest.raises(ValueError, match="features"):
        model.fit(from_tensor(X[:, :2]))


def test_stream_errors(X):
    with pytest.raises(ValueError, match="n_samples"):
        GaussianMixture(5).fit(from_tensor(X[:4]))
    with pytest.raises(ValueError, match="init_sample_size"):
        GaussianMixture(2, init_sample_size=0).fit(from_tensor(X))
    with pytest.raises(ValueError, match="algorithm='em'"):
        GaussianMixture(2, algorithm="gradient").fit(from_tensor(X))
    bad = X[:100].copy()
    bad[3, 0] = np.inf
    with pytest.raises(ValueError, match="chunk 1 .* contains infinity"):
        GaussianMixture(2).fit(from_callable(lambda: [X[:100], bad]))


def test_reservoir_sample_is_uniform_and_complete():
    rows = torch.arange(60.0)[:, None]
    chunks = from_tensor(rows, 7)
    hits = torch.zeros(60)
    generator = torch.Generator().manual_seed(0)
    for _ in range(600):
        sample, count = reservoir_sample(chunks, 12, generator)
        assert count == 60 and sample.shape == (12, 1)
        assert len(set(sample[:, 0].tolist())) == 12
        hits[sample[:, 0].long()] += 1
    expected = 600 * 12 / 60  # 120 per row, binomial sd ~ 9.8
    assert float((hits - expected).abs().max()) < 45
    chi_square = float(((hits - expected) ** 2 / expected).sum())
    assert chi_square < 110  # 59 degrees of freedom, far tail
    everything, _ = reservoir_sample(chunks, 1000, generator)
    assert sorted(everything[:, 0].tolist()) == list(range(60))


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_gaussian_from_a_stream_matches_numpy(X, kind):
    model = Gaussian(covariance_type=kind).fit(from_tensor(X + 1e6, 97))
    np.testing.assert_allclose(model.mean_, X.mean(0) + 1e6, rtol=1e-14)
    covariance = np.cov(X.T, bias=True)
    expected = covariance if kind == "full" else np.diag(covariance)
    np.testing.assert_allclose(model.covariance_, expected, rtol=1e-9)
    with pytest.raises(ValueError, match="sample_weight"):
        Gaussian().fit(from_tensor(X), sample_weight=np.ones(len(X)))


def test_partial_fit_converges_to_the_batch_answer(X):
    rng = np.random.default_rng(1)
    reference = SkGaussianMixture(3, random_state=0, tol=1e-8).fit(X)
    model = GaussianMixture(3, random_state=0)
    for _ in range(600):
        model.partial_fit(X[rng.integers(0, len(X), 200)])
    order = [int(np.argmin(((reference.means_ - m) ** 2).sum(1))) for m in model.means_]
    assert sorted(order) == [0, 1, 2]
    np.testing.assert_allclose(model.weights_, reference.weights_[order], atol=0.02)
    np.testing.assert_allclose(model.means_, reference.means_[order], atol=0.05)
    np.testing.assert_allclose(
        model.covariances_, reference.covariances_[order], rtol=0.05, atol=0.03
    )
    assert model.score(X) == pytest.approx(reference.score(X), abs=0.01)
    assert model.n_iter_ == 600


def test_partial_fit_continues_a_fitted_model_and_validates(X):
    model = GaussianMixture(3, random_state=0, tol=1e-8).fit(X)
    before = model.score(X)
    model.partial_fit(X[:500])
    assert model.n_iter_ == 1 and model.score(X) == pytest.approx(before, abs=0.06)
    with pytest.raises(ValueError, match="features"):
        model.partial_fit(X[:10, :2])
    with pytest.raises(ValueError, match="at least"):
        GaussianMixture(3).partial_fit(X[:2])
    with pytest.raises(ValueError, match="step_size_decay"):
        GaussianMixture(3, step_size_decay=0.5).partial_fit(X)
    tensor_model = GaussianMixture(2, random_state=0).partial_fit(torch.as_tensor(X))
    assert isinstance(tensor_model.means_, torch.Tensor)


@pytest.mark.parametrize("covariance_type", ["full", "tied", "diag", "spherical"])
@pytest.mark.parametrize("init_params", ["k-means++", "random_from_data"])
def test_seed_row_inits_on_a_stream_start_at_data_rows(X, npy_path, covariance_type, init_params):
    """scikit-learn's k-means++ / random_from_data start: means are the seed rows."""
    model = GaussianMixture(
        3, covariance_type=covariance_type, init_params=init_params, max_iter=0, random_state=0
    ).fit(npy_path)
    distances = ((model.means_[:, None, :] - X[None, :, :]) ** 2).sum(-1)
    np.testing.assert_allclose(distances.min(1), 0.0, atol=1e-20)
    np.testing.assert_allclose(model.weights_, 1 / 3)

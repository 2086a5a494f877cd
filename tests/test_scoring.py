"""Scoring passes: agreement with scikit-learn, overflowing rows, thread independence."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch
from scipy.special import logsumexp
from sklearn.mixture import GaussianMixture as SkGaussianMixture
from sklearn.utils import check_array

from conftest import make_overlapping_blobs
from mixtorch import GaussianMixture
from mixtorch._validation import nan_message
from mixtorch.estep._products import onednn_products
from mixtorch.mixture import Mixture

KINDS = ["full", "tied", "diag", "spherical"]


CPU = torch.device("cpu")


def _blobs(n: int = 3000, d: int = 3, seed: int = 0) -> np.ndarray:
    return make_overlapping_blobs(n, d, 4, seed)


def _twins(X: np.ndarray, kind: str, dtype: str, **params):
    reference = SkGaussianMixture(4, covariance_type=kind, random_state=0, max_iter=20).fit(X)
    ours = GaussianMixture.from_parameters(
        reference.weights_,
        reference.means_,
        reference.covariances_,
        covariance_type=kind,
        dtype=dtype,
        **params,
    )
    return reference, ours


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("chunk_size", [None, 97])
def test_scoring_matches_scikit_learn_in_float64(kind, chunk_size):
    X = _blobs()
    reference, ours = _twins(X, kind, "float64", chunk_size=chunk_size)
    np.testing.assert_allclose(ours.score_samples(X), reference.score_samples(X), atol=1e-10)
    np.testing.assert_allclose(ours.predict_proba(X), reference.predict_proba(X), atol=1e-10)
    np.testing.assert_array_equal(ours.predict(X), reference.predict(X))
    assert ours.score(X) == pytest.approx(reference.score(X), rel=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_scoring_in_float32_stays_within_the_e_step_tolerance(kind):
    X = _blobs(seed=1)
    reference, ours = _twins(X, kind, "float32", chunk_size=256)
    X32 = X.astype(np.float32)
    log_density = ours.score_samples(X32)
    assert log_density.dtype == np.float32
    np.testing.assert_allclose(log_density, reference.score_samples(X32), atol=2e-3)
    np.testing.assert_allclose(ours.predict_proba(X32), reference.predict_proba(X32), atol=1e-3)
    assert ours.score(X32) == pytest.approx(reference.score(X32), abs=1e-4)


def test_predict_proba_rows_sum_to_one_and_labels_are_their_argmax():
    X = _blobs(seed=2)
    _, ours = _twins(X, "full", "float64", chunk_size=100)
    proba = ours.predict_proba(X)
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-12)
    np.testing.assert_array_equal(ours.predict(X), proba.argmax(1))


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_overflowing_rows_score_minus_infinity_never_nan(kind, dtype):
    X = _blobs(n=600, d=2, seed=3)
    _, ours = _twins(X, kind, dtype)
    far = np.array([[1e300, -1e300], [0.0, 0.0], [-1e300, 1e299]])
    log_density = ours.score_samples(far)
    assert log_density[0] == -np.inf and log_density[2] == -np.inf
    assert np.isfinite(log_density[1])
    assert ours.score(far) == -np.inf
    proba = ours.predict_proba(far)
    assert np.isfinite(proba).all()
    np.testing.assert_allclose(proba.sum(1), 1.0, atol=1e-6)
    # The limit along the ray: the label a float64 brute force gives at a distance where
    # every term is still finite (1e6 in the same direction).
    model64 = Mixture.from_parameters(
        ours.weights_, ours.means_, ours.covariances_, kind, dtype=torch.float64
    )
    for row in (0, 2):
        direction = far[row] / np.abs(far[row]).max()
        point = torch.tensor(model64.center.numpy() + 1e6 * direction)[None]
        brute = model64.covariance.log_gaussian(
            point - model64.center, model64.centred_means, model64.log_weights
        )
        assert int(ours.predict(far)[row]) == int(brute.argmax())
        assert int(proba[row].argmax()) == int(brute.argmax())


def test_log_density_matches_a_brute_force_sum_over_components():
    X = _blobs(n=500, seed=4)
    _, ours = _twins(X, "full", "float64")
    mixture = ours.mixture_
    shifted = torch.as_tensor(X) - mixture.center
    terms = mixture.covariance.log_gaussian(shifted, mixture.centred_means, mixture.log_weights)
    np.testing.assert_allclose(ours.score_samples(X), logsumexp(terms.numpy(), axis=1), rtol=1e-13)


def _in_threads(fn, n_threads: int) -> list:
    results: list = [None] * n_threads
    barrier = threading.Barrier(n_threads)

    def run(index: int) -> None:
        # Two intra-op threads each, as the caller asked: a new thread's count otherwise
        # comes from PyTorch's process default, which running passes may have set to one.
        torch.set_num_threads(2)
        barrier.wait()
        results[index] = fn()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n_threads)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return results


@pytest.mark.parametrize("kind", ["full", "diag"])
@pytest.mark.parametrize(
    ("n", "K", "chunk_size", "seed"),
    # small chunks (torch.mm's products), default chunks, whose products are large enough
    # for oneDNN's (mixtorch.estep._products), and one chunk (computed in the caller)
    [(20_000, 5, 1000, 5), (40_000, 8, None, 6), (3000, 8, None, 7)],
)
def test_float32_results_do_not_depend_on_threads(kind, n, K, chunk_size, seed):
    rng = np.random.default_rng(seed)
    X = (rng.normal(size=(n, 8)) * 2 + rng.integers(0, K, (n, 1)) * 3).astype(np.float32)
    reference = SkGaussianMixture(K, covariance_type=kind, random_state=0, max_iter=5).fit(X)
    ours = GaussianMixture.from_parameters(
        reference.weights_,
        reference.means_,
        reference.covariances_,
        covariance_type=kind,
        dtype="float32",
        chunk_size=chunk_size,
    )
    assert ours.mixture_.e_step_kernel.onednn == onednn_products(torch.float32, CPU)

    def results():
        return (ours.score_samples(X), ours.predict_proba(X), ours.predict(X), ours.score(X))

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        sequential = results()
        torch.set_num_threads(2)
        two = results()
        concurrent = _in_threads(results, 4)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    for result in [two, *concurrent]:
        for ours_other, ours_one in zip(result[:3], sequential[:3], strict=True):
            np.testing.assert_array_equal(ours_other, ours_one)
        assert result[3] == sequential[3]
    np.testing.assert_allclose(sequential[0], reference.score_samples(X), rtol=1e-5, atol=1e-3)


def test_concurrent_passes_leave_the_thread_count_as_found():
    X = _blobs(n=4000)
    _, ours = _twins(X, "full", "float64", chunk_size=100)
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        _in_threads(lambda: ours.score_samples(X), 4)
        assert torch.get_num_threads() == 2
        seen: list[int] = []
        thread = threading.Thread(target=lambda: seen.append(torch.get_num_threads()))
        thread.start()
        thread.join()
        assert seen == [2]  # threads created later get the caller's setting back
    finally:
        torch.set_num_threads(before)


def test_tensors_that_require_grad_are_scored_as_detached_values():
    X = torch.tensor(_blobs(n=1000, seed=6))
    _, ours = _twins(X.numpy(), "full", "float64", chunk_size=300)
    needs_grad = X.clone().requires_grad_()
    for method in ("score_samples", "predict_proba", "predict"):
        result = getattr(ours, method)(needs_grad)
        assert not result.requires_grad
        torch.testing.assert_close(result, getattr(ours, method)(X), rtol=0, atol=0)
    assert ours.score(needs_grad) == ours.score(X)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("n_components", [3, 300])
def test_labels_are_the_first_maximal_component_against_a_brute_force(n_components, dtype):
    rng = np.random.default_rng(7)
    means = rng.normal(0, 2.0, size=(n_components, 2))
    # Two identical components: a tie everywhere, which argmax breaks to the first.
    means[1] = means[0]
    variances = np.full((n_components, 2), 0.8)
    weights = np.full(n_components, 1.0 / n_components)
    X = rng.normal(0, 2.0, size=(400, 2))
    ours = GaussianMixture.from_parameters(
        weights, means, variances, covariance_type="diag", dtype=dtype
    )
    X = X.astype(dtype)
    brute = (
        np.log(weights)
        - 0.5 * (((X[:, None, :] - means) ** 2) / variances).sum(-1)
        - 0.5 * np.log(2 * np.pi * variances).sum(-1)
    )
    expected = brute.argmax(1)
    assert not (expected == 1).any()  # the tie goes to component 0
    np.testing.assert_array_equal(ours.predict(X), expected)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("tensor", [False, True])
def test_non_finite_input_is_refused_with_the_validators_message(kind, bad, tensor):
    # The check for NaN and infinity runs inside the scoring pass (the data are read
    # once); the error must be the one validating first gives, for every method.
    X = _blobs(n=2000)
    _, ours = _twins(X, kind, "float32")
    X = X.astype(np.float32)
    X[1234, 1] = bad
    data = torch.from_numpy(X) if tensor else X
    if np.isnan(bad):  # mixtorch's advice (scikit-learn's points to supervised models)
        expected = nan_message(ours)
        assert expected.startswith("Input X contains NaN. GaussianMixture takes rows")
    elif tensor:
        expected = "Input X contains infinity."
    else:
        with pytest.raises(ValueError) as validator:
            check_array(X, estimator=ours, input_name="X")
        expected = str(validator.value)
    for method in ("score_samples", "score", "predict", "predict_proba", "bic", "aic"):
        with pytest.raises(ValueError) as error:
            getattr(ours, method)(data)
        assert str(error.value) == expected, method


@pytest.mark.parametrize("kind", KINDS)
def test_finite_float64_input_beyond_float32_range_is_scored_not_refused(kind):
    # 1e300 is finite in the caller's float64 array; a float32 model sees +inf after the
    # conversion and gives that row its limiting values, as before the check moved.
    X = _blobs(n=500)
    _, ours = _twins(X, kind, "float32")
    far = X.copy()
    far[3] = 1e300
    log_density = ours.score_samples(far)
    assert log_density[3] == -np.inf
    np.testing.assert_allclose(log_density[4:], ours.score_samples(X[4:]), rtol=0, atol=0)
    proba = ours.predict_proba(far)
    assert sorted(proba[3]) == [0.0] * 3 + [1.0]
    assert ours.predict(far)[3] == proba[3].argmax()
    assert ours.score(far) == -np.inf


@pytest.mark.parametrize("precision", ["highest", "medium"])
def test_responsibilities_do_not_depend_on_the_float32_matmul_precision(precision):
    # The (K, rows) -> (rows, K) step is a product with the identity only while float32
    # products are exact; at lower matmul precision it is a copy, so the answer is the
    # same either way (bitwise: the transpose itself does no arithmetic).
    X = _blobs(n=3000)
    _, ours = _twins(X, "diag", "float32")
    X = X.astype(np.float32)
    before = torch.get_float32_matmul_precision()
    try:
        torch.set_float32_matmul_precision("highest")
        reference = ours.predict_proba(X)
        torch.set_float32_matmul_precision(precision)
        np.testing.assert_array_equal(ours.predict_proba(X), reference)
    finally:
        torch.set_float32_matmul_precision(before)


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_a_small_batch_is_scored_without_starting_a_thread(kind, monkeypatch):
    # One chunk runs in the calling thread (starting a thread cost more than the pass);
    # the answers are those of the threaded pass over more rows (to the last bits, which
    # depend on the product's shape).
    X = _blobs(n=40_000, d=4, seed=8)
    _, ours = _twins(X, kind, "float64")
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        expected = ours.score_samples(X), ours.predict(X), ours.predict_proba(X)

        def refuse(self):
            raise AssertionError("a one-chunk scoring pass started a thread")

        monkeypatch.setattr(threading.Thread, "start", refuse)
        small = X[:100]
        got = ours.score_samples(small), ours.predict(small), ours.predict_proba(small)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)
    np.testing.assert_allclose(got[0], expected[0][:100], rtol=1e-13)
    np.testing.assert_array_equal(got[1], expected[1][:100])
    np.testing.assert_allclose(got[2], expected[2][:100], rtol=1e-12, atol=1e-15)

"""The batched missing-value E-step and its cache of pattern groupings.

References: a float64 NumPy E-step written row by row from the textbook formulas
(marginal Gaussian over each row's observed entries, conditional means and covariances
of the missing ones), and the per-pattern path the batched one replaced.
"""

from __future__ import annotations

import functools
import gc

import numpy as np
import pytest
import torch
from scipy.special import logsumexp

import mixtorch.fit.missing as missing
from mixtorch import GaussianMixture, Mixture
from mixtorch.fit.em import fit_em
from mixtorch.fit.missing import _LayoutCache, _missing_pass, missing_statistics

KINDS = ["full", "tied", "diag", "spherical"]


def _holes(n: int, d: int, k: int, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=4.0, size=(k, d))
    mixing = rng.normal(size=(d, d)) / np.sqrt(d) + np.eye(d)
    X = centres[rng.integers(0, k, n)] + rng.normal(size=(n, d)) @ mixing
    X[rng.random(X.shape) < fraction] = np.nan
    X[1] = np.nan  # nothing observed
    return X


def _start(kind: str, X: np.ndarray, k: int) -> Mixture:
    model = GaussianMixture(k, covariance_type=kind, max_iter=1, tol=0, random_state=0)
    with pytest.warns(Warning):  # one iteration does not converge
        return model.fit(np.nan_to_num(X)).mixture_


def _reference(mixture: Mixture, X: np.ndarray) -> dict[str, np.ndarray]:
    """Expected sufficient statistics about the means, one row at a time in float64."""
    K, D = mixture.n_components, mixture.n_features
    S = mixture.covariance.full_matrices(K).double().numpy()
    mu, w = mixture.means.double().numpy(), mixture.weights.double().numpy()
    counts, sums = np.zeros(K), np.zeros((K, D))
    scatter, total = np.zeros((K, D, D)), 0.0
    for row in X:
        o, m = ~np.isnan(row), np.isnan(row)
        log_prob, filled, conditional = np.log(w), np.empty((K, D)), np.zeros((K, D, D))
        for c in range(K):
            S_oo, S_mo = S[c][np.ix_(o, o)], S[c][np.ix_(m, o)]
            y = row[o] - mu[c][o]
            if o.any():
                _, log_det = np.linalg.slogdet(S_oo)
                quadratic = y @ np.linalg.solve(S_oo, y)
                log_prob[c] += -0.5 * (o.sum() * np.log(2 * np.pi) + log_det + quadratic)
            filled[c, o] = row[o]
            filled[c, m] = mu[c][m] + (S_mo @ np.linalg.solve(S_oo, y) if o.any() else 0.0)
            block = S[c][np.ix_(m, m)]
            if o.any():
                block = block - S_mo @ np.linalg.solve(S_oo, S_mo.T)
            conditional[c][np.ix_(m, m)] = block
        evidence = logsumexp(log_prob)
        r = np.exp(log_prob - evidence)
        differences = filled - mu
        counts += r
        sums += r[:, None] * differences
        outer = differences[:, :, None] * differences[:, None, :]
        scatter += r[:, None, None] * (outer + conditional)
        total += evidence
    if mixture.covariance.kind in ("diag", "spherical"):
        scatter = np.diagonal(scatter, axis1=1, axis2=2)
    return {"counts": counts, "sums": sums, "scatter": scatter, "log_likelihood": total}


def _assert_statistics(stats, expected: dict[str, np.ndarray], rtol: float) -> None:
    for name, value in expected.items():
        ours = getattr(stats, name).double().numpy()
        scale = np.abs(value).max()
        np.testing.assert_allclose(ours, value, rtol=rtol, atol=rtol * scale, err_msg=name)


CASES = [(300, 3, 2, 0.3, 0), (400, 5, 3, 0.15, 1), (250, 8, 2, 0.5, 2)]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("n", "d", "k", "fraction", "seed"), CASES)
def test_statistics_match_a_float64_numpy_e_step(kind, n, d, k, fraction, seed):
    X = _holes(n, d, k, fraction, seed)
    start = _start(kind, X, k)
    tensor = torch.as_tensor(X)
    chunks = [tensor[:100], tensor[100:170], tensor[170:]]
    stats = missing_statistics(start, chunks).about(start.means)
    expected = _reference(start, X)
    _assert_statistics(stats, expected, rtol=1e-12)
    assert float(stats.n_samples) == n


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("n", "d", "k", "fraction", "seed"), CASES)
def test_em_agrees_with_the_per_pattern_path_to_rounding(kind, n, d, k, fraction, seed):
    X = _holes(n, d, k, fraction, seed)
    start = _start(kind, X, k)
    tensor = torch.as_tensor(X)
    chunks = [tensor[: n // 2], tensor[n // 2 :]]
    per_pattern = functools.partial(_missing_pass, batched=False)
    # 10 iterations: long enough for rounding differences to compound; the per-pattern
    # path is the slow one (about 1 s per iteration for the 250 x 8, 50% missing case).
    old, old_trace = fit_em(lambda: chunks, start, statistics=per_pattern, max_iter=10, tol=0)
    new, new_trace = fit_em(
        lambda: chunks, start, statistics=missing_statistics, max_iter=10, tol=0
    )
    np.testing.assert_allclose(new_trace.lower_bounds, old_trace.lower_bounds, rtol=1e-12)
    np.testing.assert_allclose(new.weights, old.weights, rtol=1e-12)
    scale = float(old.means.abs().max())
    np.testing.assert_allclose(new.means, old.means, rtol=1e-12, atol=1e-12 * scale)
    covariances = old.covariance.covariances
    scale = float(covariances.abs().max())
    np.testing.assert_allclose(
        new.covariance.covariances, covariances, rtol=1e-12, atol=1e-12 * scale
    )


@pytest.mark.parametrize("kind", ["full", "diag"])
def test_kept_groupings_give_the_same_bits_as_grouping_anew(kind):
    X = _holes(500, 6, 3, 0.25, 3)
    start = _start(kind, X, 3)
    tensor = torch.as_tensor(X)
    chunks = [tensor[:200], tensor[200:]]
    layouts = _LayoutCache(1 << 30)
    fresh = _missing_pass(start, chunks, layouts=None)
    for _ in range(3):  # the first pass groups, the others reuse
        kept = _missing_pass(start, chunks, layouts=layouts)
        for name in ("counts", "sums", "scatter", "log_likelihood", "n_samples"):
            assert torch.equal(getattr(kept, name), getattr(fresh, name)), name
    assert len(layouts) == 2


def _count_groupings(monkeypatch) -> list[int]:
    calls = []
    original = missing._segments

    def counted(observed):
        calls.append(observed.shape[0])
        return original(observed)

    monkeypatch.setattr(missing, "_segments", counted)
    return calls


def test_in_memory_fit_groups_once_per_run(monkeypatch):
    X = _holes(600, 4, 3, 0.1, 4)
    calls = _count_groupings(monkeypatch)
    model = GaussianMixture(3, missing_values=np.nan, max_iter=8, tol=0, random_state=0)
    with pytest.warns(Warning):  # stopped by max_iter
        model.fit(X)
    assert model.n_iter_ == 8
    assert len(calls) == 1  # one buffer of incomplete rows, grouped in the first iteration
    assert calls[0] == int(np.isnan(X).any(1).sum())


def test_a_refilled_chunk_is_grouped_anew(monkeypatch):
    # A source that reads every chunk into the same tensor: same identity, other NaN.
    X = _holes(400, 5, 2, 0.3, 5)
    start = _start("full", X, 2)
    blocks = [torch.as_tensor(X[:200]), torch.as_tensor(X[200:])]
    buffer = torch.empty(200, 5, dtype=torch.float64)
    layouts = _LayoutCache(1 << 30)

    def refilled(block):
        buffer.copy_(block)
        return [buffer]

    calls = _count_groupings(monkeypatch)
    for block in blocks + blocks:
        stats = _missing_pass(start, refilled(block), layouts=layouts).about(start.means)
        _assert_statistics(stats, _reference(start, block.numpy()), rtol=1e-12)
    assert len(calls) == 4  # the NaN moved every time

    # Same NaN, new values: the grouping is kept, the values are read afresh.
    moved = blocks[0].clone()
    moved[~torch.isnan(moved)] += 0.5
    for block in (blocks[0], moved):
        stats = _missing_pass(start, refilled(block), layouts=layouts).about(start.means)
        _assert_statistics(stats, _reference(start, block.numpy()), rtol=1e-12)
    assert len(calls) == 5


def test_the_cache_is_bounded_and_lets_go_of_dead_chunks():
    X = _holes(1000, 6, 2, 0.3, 6)
    start = _start("full", X, 2)
    tensor = torch.as_tensor(X)
    chunks = [tensor[i : i + 100] for i in range(0, 1000, 100)]
    one = missing._ChunkLayout.of(torch.isnan(chunks[0])).nbytes
    layouts = _LayoutCache(int(3.5 * one))
    expected = _missing_pass(start, chunks, layouts=None)
    for _ in range(2):
        stats = _missing_pass(start, chunks, layouts=layouts)
        assert 0 < layouts.nbytes <= layouts.max_bytes
        assert 1 <= len(layouts) <= 3
        torch.testing.assert_close(stats.scatter, expected.scatter, rtol=1e-13, atol=0)
    del chunks, stats
    gc.collect()
    assert len(layouts) == 0
    assert layouts.nbytes == 0


def test_streamed_chunks_leave_nothing_behind():
    X = _holes(600, 4, 2, 0.2, 7)
    start = _start("tied", X, 2)
    layouts = _LayoutCache(1 << 30)

    def stream():  # a fresh tensor for every chunk of every pass
        for i in range(0, 600, 150):
            yield torch.tensor(X[i : i + 150])

    for _ in range(2):
        stats = _missing_pass(start, stream(), layouts=layouts).about(start.means)
        _assert_statistics(stats, _reference(start, X), rtol=1e-12)
    gc.collect()
    assert len(layouts) == 0 and layouts.nbytes == 0


@pytest.mark.parametrize("kind", KINDS)
def test_rows_too_far_for_a_density_take_the_per_pattern_path(kind):
    X = _holes(300, 3, 2, 0.3, 8)
    start = _start(kind, X, 2)
    X[5] = [1e200, np.nan, 3.0]
    X[7] = [np.nan, -1e200, np.nan]
    tensor = torch.as_tensor(X)
    old = _missing_pass(start, [tensor], batched=False)
    new = _missing_pass(start, [tensor], layouts=_LayoutCache(1 << 30))
    assert float(new.log_likelihood) == -np.inf
    assert float(new.n_samples) == 300
    for name in ("counts", "sums", "scatter"):
        torch.testing.assert_close(getattr(new, name), getattr(old, name), rtol=1e-12, atol=0)
    assert torch.isfinite(new.counts).all()


@pytest.mark.parametrize("kind", KINDS)
def test_float32_on_offset_data_is_as_accurate_as_the_per_pattern_path(kind):
    # Rows 1e4 from the origin: float32 resolves them to about 1e-3.
    X = _holes(400, 4, 2, 0.3, 9) + 1e4
    start = _start(kind, X, 2)
    tensor = torch.as_tensor(X)
    reference = missing_statistics(start, [tensor])
    kind_type = type(start.covariance)
    exact = reference.m_step(kind_type, 1e-6, torch.float64)
    errors = []
    for statistics in (functools.partial(_missing_pass, batched=False), missing_statistics):
        stats = statistics(start.to(dtype=torch.float32), [tensor.float()])
        fitted = stats.m_step(kind_type, 1e-6, torch.float32)
        covariances = exact.covariance.covariances
        errors.append(
            [
                float((fitted.means.double() - exact.means).abs().max()),
                float((fitted.covariance.covariances.double() - covariances).abs().max())
                / float(covariances.abs().max()),
                abs(float(stats.log_likelihood / reference.log_likelihood) - 1),
            ]
        )
    old, new = errors
    assert new[0] < 1e-2 and new[1] < 1e-5 and new[2] < 1e-6
    assert new[0] < 3 * old[0] + 1e-3 and new[1] < 3 * old[1] + 1e-5


def test_estimator_fit_is_the_same_without_the_cache(monkeypatch):
    X = _holes(600, 5, 3, 0.2, 10)
    settings = {"missing_values": np.nan, "max_iter": 20, "tol": 0, "random_state": 0}
    with pytest.warns(Warning):
        kept = GaussianMixture(3, **settings).fit(X)
    monkeypatch.setattr(missing, "_LAYOUTS", _LayoutCache(0))
    with pytest.warns(Warning):
        fresh = GaussianMixture(3, **settings).fit(X)
    np.testing.assert_array_equal(kept.means_, fresh.means_)
    np.testing.assert_array_equal(kept.covariances_, fresh.covariances_)
    assert kept.lower_bound_ == fresh.lower_bound_

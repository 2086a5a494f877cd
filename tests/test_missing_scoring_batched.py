"""Scoring rows with missing entries, many patterns at a time.

References: a float64 NumPy computation row by row (``log w_k`` plus the log-density of
the marginal Gaussian over the row's observed entries, by ``slogdet`` and ``solve``), and
the per-pattern path the batched one replaced (one ``Mixture.marginal`` per pattern),
copied here as it was.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mixtorch.fit._missing_layout as layout_module
from mixtorch import GaussianMixture, Mixture
from mixtorch.fit._missing_layout import _patterns
from mixtorch.fit.missing import observed_weighted_log_prob, patterns

KINDS = ["full", "tied", "diag", "spherical"]


def _mixture(kind: str, k: int, d: int, seed: int) -> Mixture:
    rng = np.random.default_rng(seed)
    weights = rng.dirichlet(np.ones(k)).tolist()
    means = rng.normal(scale=3.0, size=(k, d)).tolist()
    if kind == "full":
        a = rng.normal(size=(k, d, d))
        covariances = (a @ a.transpose(0, 2, 1) + 0.3 * np.eye(d)).tolist()
    elif kind == "tied":
        a = rng.normal(size=(d, d))
        covariances = (a @ a.T + 0.3 * np.eye(d)).tolist()
    elif kind == "diag":
        covariances = rng.uniform(0.3, 3.0, size=(k, d)).tolist()
    else:
        covariances = rng.uniform(0.3, 3.0, size=k).tolist()
    return Mixture.from_parameters(weights, means, covariances, kind).to(dtype=torch.float64)


def _holes(n: int, d: int, fraction: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    X = rng.normal(scale=3.0, size=(n, d))
    X[rng.random(X.shape) < fraction] = np.nan
    X[3] = np.nan  # nothing observed
    X[5] = rng.normal(size=d)  # complete
    return X


def _reference(mixture: Mixture, X: np.ndarray) -> np.ndarray:
    """``log w_k + log N(x_o | mu_ko, S_koo)`` (n, K), row by row in float64."""
    K = mixture.n_components
    S = mixture.covariance.full_matrices(K).double().numpy()
    mu, w = mixture.means.double().numpy(), mixture.weights.double().numpy()
    result = np.tile(np.log(w), (len(X), 1))
    for i, row in enumerate(X):
        o = ~np.isnan(row)
        if not o.any():
            continue
        for c in range(K):
            S_oo, y = S[c][np.ix_(o, o)], row[o] - mu[c][o]
            _, log_det = np.linalg.slogdet(S_oo)
            quadratic = y @ np.linalg.solve(S_oo, y)
            result[i, c] -= 0.5 * (o.sum() * np.log(2 * np.pi) + log_det + quadratic)
    return result


def _per_pattern(mixture: Mixture, X: torch.Tensor) -> torch.Tensor:
    """The per-pattern path ``observed_weighted_log_prob`` had before it was batched."""
    X = X.to(mixture.dtype)
    result = torch.empty(X.shape[0], mixture.n_components, dtype=X.dtype)
    unique, inverse = patterns(X)
    for index, pattern in enumerate(unique):
        rows = torch.nonzero(inverse == index).flatten()
        given = torch.nonzero(pattern).flatten()
        if given.numel() == mixture.n_features:
            result[rows] = mixture.weighted_log_prob(X[rows])
        elif given.numel() == 0:
            result[rows] = mixture.log_weights
        else:
            result[rows] = mixture.marginal(given).weighted_log_prob(X[rows][:, given])
    return result


def _assert_close(ours: torch.Tensor, expected: np.ndarray, rtol: float) -> None:
    ours_values = ours.double().numpy()
    scale = np.abs(expected).max()
    np.testing.assert_allclose(ours_values, expected, rtol=rtol, atol=rtol * scale)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(("n", "d", "k", "fraction"), [(300, 6, 3, 0.3), (200, 3, 1, 0.5)])
def test_float64_matches_numpy_and_the_per_pattern_path(kind, n, d, k, fraction):
    X = _holes(n, d, fraction, seed=d)
    mixture = _mixture(kind, k, d, seed=k)
    tensor = torch.as_tensor(X)
    ours = observed_weighted_log_prob(mixture, tensor)
    assert ours.shape == (n, k) and ours.dtype == torch.float64
    n_patterns = len(np.unique(np.isnan(X), axis=0))
    assert n_patterns > (20 if d == 6 else 6)  # many patterns, one pass
    _assert_close(ours, _reference(mixture, X), rtol=1e-12)
    _assert_close(ours, _per_pattern(mixture, tensor).numpy(), rtol=1e-12)
    # Nothing observed: exactly the log-weights, as before; complete rows: the kernel's.
    assert torch.equal(ours[3], mixture.log_weights)
    complete = ~torch.isnan(tensor).any(1)
    assert torch.equal(ours[complete], mixture.weighted_log_prob(tensor[complete]))


@pytest.mark.parametrize("kind", KINDS)
def test_float32_is_as_accurate_as_the_per_pattern_path(kind):
    # An offset of 100 and unit spread: float32 cancellation would show.
    X = _holes(400, 5, 0.3, seed=11) + 100.0
    mixture = _mixture(kind, 3, 5, seed=12)
    mixture = Mixture.from_parameters(
        mixture.weights, mixture.means + 100.0, mixture.covariance.covariances, kind
    ).to(dtype=torch.float64)
    expected = _reference(mixture, X)
    single = mixture.to(dtype=torch.float32)
    ours = observed_weighted_log_prob(single, torch.as_tensor(X))
    assert ours.dtype == torch.float32
    old = _per_pattern(single, torch.as_tensor(X))
    incomplete = np.isnan(X).any(1)  # complete rows take the mixture's kernel either way
    expected = expected[incomplete]
    scale = np.abs(expected).max()
    error = np.abs(ours.double().numpy()[incomplete] - expected).max() / scale
    old_error = np.abs(old.double().numpy()[incomplete] - expected).max() / scale
    assert error < 1e-5
    assert error < 3 * old_error + 1e-6


@pytest.mark.parametrize("kind", ["full", "tied"])
def test_split_and_padded_segments_score_every_row_once(kind, monkeypatch):
    # Segments of 8 rows at most: the 61 rows of one pattern are split (seven of 8, one
    # padded to 8) and patterns of 3 rows are padded; padding must write nothing wrong.
    monkeypatch.setattr(layout_module, "_SEGMENT_ROWS", 8)
    rng = np.random.default_rng(3)
    X = rng.normal(size=(120, 4))
    X[:61, 1] = np.nan
    X[61:64, 2] = np.nan
    X[64:90][rng.random((26, 4)) < 0.4] = np.nan
    mixture = _mixture(kind, 2, 4, seed=4)
    ours = observed_weighted_log_prob(mixture, torch.as_tensor(X))
    _assert_close(ours, _reference(mixture, X), rtol=1e-12)


@pytest.mark.parametrize("kind", KINDS)
def test_rows_too_far_for_a_density_score_minus_infinity(kind):
    X = _holes(50, 3, 0.3, seed=5)
    X[7] = [1e200, np.nan, 3.0]
    X[8] = [np.nan, -1e200, np.nan]
    X[9] = [1e300, -1e300, np.nan]  # the per-pattern path gave NaN here (full, tied)
    mixture = _mixture(kind, 2, 3, seed=6)
    tensor = torch.as_tensor(X)
    ours = observed_weighted_log_prob(mixture, tensor)
    old = _per_pattern(mixture, tensor)
    assert bool(torch.isneginf(ours[7:10]).all())
    assert bool(torch.isneginf(old[7:9]).all())
    assert not bool(torch.isnan(ours).any())
    rest = np.r_[0:7, 10:50]
    assert bool(torch.isfinite(ours[rest]).all())
    _assert_close(ours[rest], _reference(mixture, X[rest]), rtol=1e-12)


def test_no_rows_and_no_incomplete_rows():
    mixture = _mixture("full", 2, 3, seed=7)
    empty = observed_weighted_log_prob(mixture, torch.empty(0, 3, dtype=torch.float64))
    assert empty.shape == (0, 2)
    X = torch.as_tensor(np.random.default_rng(8).normal(size=(20, 3)))
    assert torch.equal(observed_weighted_log_prob(mixture, X), mixture.weighted_log_prob(X))


@pytest.mark.parametrize("d", [5, 63, 64, 130])
def test_pattern_grouping_matches_numpy_unique(d):
    # Rows packed into 63-bit words: one word, exactly one, and two or three words.
    rng = np.random.default_rng(d)
    base = rng.random((12, d)) < 0.7
    observed = base[rng.integers(0, 12, 500)]
    unique, order, counts = _patterns(torch.as_tensor(observed))
    expected, inverse, tallies = np.unique(
        observed, axis=0, return_inverse=True, return_counts=True
    )
    assert len(unique) == len(expected)
    rows = order.numpy()
    assert sorted(rows.tolist()) == list(range(500))
    starts = np.concatenate([[0], np.cumsum(counts.numpy())])
    for index, pattern in enumerate(unique.numpy()):
        members = rows[starts[index] : starts[index + 1]]
        assert (np.diff(members) > 0).all()  # a pattern's rows in order
        assert (observed[members] == pattern).all()
        assert len(members) == tallies[inverse.ravel()[members[0]]]


@pytest.mark.parametrize("kind", KINDS)
def test_estimator_scoring_matches_numpy(kind):
    rng = np.random.default_rng(9)
    X = np.concatenate([rng.normal(size=(150, 4)) + c for c in (0.0, 6.0)])
    X[rng.random(X.shape) < 0.25] = np.nan
    X[0] = np.nan
    settings = {"missing_values": np.nan, "max_iter": 500, "random_state": 0}
    model = GaussianMixture(2, covariance_type=kind, **settings).fit(X)
    expected = _reference(model.mixture_, X)
    totals = np.logaddexp.reduce(expected, axis=1)
    np.testing.assert_allclose(model.score_samples(X), totals, rtol=1e-12, atol=1e-13)
    np.testing.assert_allclose(model.score(X), totals.mean(), rtol=1e-12)
    probabilities = np.exp(expected - totals[:, None])
    np.testing.assert_allclose(model.predict_proba(X), probabilities, rtol=1e-9, atol=1e-12)
    np.testing.assert_array_equal(model.predict(X)[1:], expected[1:].argmax(1))
    np.testing.assert_allclose(model.predict_proba(X)[0], model.weights_, rtol=1e-12)

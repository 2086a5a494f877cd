"""Streamed passes hold one source chunk at a time: each chunk (and what was derived from
it) is released before the source is asked for the next one."""

from __future__ import annotations

import gc
import weakref

import torch

from mixtorch import GaussianMixture
from mixtorch._online import _counting_observed, _start_data
from mixtorch.fit.streaming import stream_lloyd, stream_mean
from mixtorch.sources import from_callable

CHUNK = 50


def _data(missing: bool = False) -> torch.Tensor:
    generator = torch.Generator().manual_seed(3)
    X = torch.randn(300, 2, generator=generator, dtype=torch.float64)
    X[150:] += torch.tensor([6.0, -4.0], dtype=torch.float64)
    if missing:
        X[::7, 0] = float("nan")
        X[3::11, 1] = float("nan")
    return X


def _checked(X: torch.Tensor, passes: list[list[bool]], as_numpy: bool = False):
    """A chunk factory that records, on every request after the first of a pass, whether
    the chunk it handed out before is still referenced anywhere (one list per pass).

    With ``as_numpy``, chunks are NumPy arrays: tensors made from them (and their views,
    e.g. the pieces a pass splits them into) keep the array alive, so the weak reference
    tracks the chunk's memory, not only one Python object wrapping it."""

    def factory():
        alive: list[bool] = []
        passes.append(alive)
        previous = None
        for start in range(0, X.shape[0], CHUNK):
            if previous is not None:
                gc.collect()
                alive.append(previous() is not None)
            chunk = X[start : start + CHUNK].clone()  # a fresh tensor, owned by the pass
            if as_numpy:
                chunk = chunk.numpy()
            previous = weakref.ref(chunk)
            yield chunk
            del chunk

    return factory


def _drain(chunks, keep):
    """``keep(chunk)`` for every chunk, dropping each chunk before the next is read."""
    kept = []
    while (chunk := next(chunks, None)) is not None:
        kept.append(keep(chunk))
        del chunk
    return kept


def test_stream_mean_and_lloyd_release_each_chunk() -> None:
    X, passes = _data(), []
    chunks = _checked(X, passes)
    mean = stream_mean(chunks, 2, torch.float64, "cpu")
    start = torch.tensor([[0.0, 0.0], [5.0, -3.0]], dtype=torch.float64)
    centers = stream_lloyd(chunks, start, X)
    assert passes and all(alive == [False] * 5 for alive in passes)
    torch.testing.assert_close(mean, X.mean(0), rtol=1e-14, atol=1e-14)
    in_memory = stream_lloyd(lambda: list(X.split(CHUNK)), start, X)
    torch.testing.assert_close(centers, in_memory, rtol=1e-14, atol=1e-14)
    # and the closed form: each centre is the mean of its half
    torch.testing.assert_close(centers[0], X[:150].mean(0), rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(centers[1], X[150:].mean(0), rtol=1e-12, atol=1e-12)


def test_missing_value_start_passes_release_each_chunk() -> None:
    X, passes = _data(missing=True), []
    observed = torch.zeros(2, dtype=torch.float64)
    holes = _drain(_counting_observed(_checked(X, passes), observed)(), torch.isnan)
    torch.testing.assert_close(observed, (~torch.isnan(X)).sum(0).double())
    assert torch.equal(torch.cat(holes), X.isnan())
    sample = X[:100]
    filled, filled_sample = _start_data(_checked(X, passes), sample, True)
    blocks = _drain(filled(), torch.clone)
    expected = torch.where(X.isnan(), torch.nanmean(sample, 0), X)  # the sample's means
    torch.testing.assert_close(torch.cat(blocks), expected, rtol=1e-14, atol=1e-14)
    torch.testing.assert_close(filled_sample, expected[:100], rtol=1e-14, atol=1e-14)
    assert passes == [[False] * 5, [False] * 5]


def _fit() -> GaussianMixture:
    init = dict(
        weights_init=[0.5, 0.5],
        means_init=[[0.5, 0.5], [5.5, -3.5]],
        precisions_init=[[[1.0, 0.0], [0.0, 1.0]]] * 2,
    )
    return GaussianMixture(2, tol=1e-10, max_iter=50, **init)


def test_fit_predict_label_pass_releases_each_chunk() -> None:
    X, passes = _data(), []
    streamed = _fit()
    labels = streamed.fit_predict(from_callable(_checked(X, passes, as_numpy=True), n_features=2))
    assert passes[-1] == [False] * 5  # the labelling pass after the fit
    in_memory = _fit()
    expected = in_memory.fit_predict(X)
    assert (labels == expected).all()
    for name in ("weights_", "means_", "covariances_"):
        torch.testing.assert_close(
            torch.as_tensor(getattr(streamed, name)),
            torch.as_tensor(getattr(in_memory, name)),
            rtol=1e-10,
            atol=1e-12,
        )


def test_em_passes_release_each_chunk() -> None:
    X, passes = _data(), []
    _fit().fit(from_callable(_checked(X, passes, as_numpy=True), n_features=2))
    assert all(not any(alive) for alive in passes)

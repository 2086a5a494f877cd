"""Stepwise (online) EM: its state is a value object that survives save/load, and
``partial_fit`` chunks its batches as ``fit`` does."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import mixtorch
from mixtorch import GaussianMixture
from mixtorch._chunks import chunk_rows
from mixtorch.covariance import DiagCovariance
from mixtorch.fit.stepwise import StepwiseState


@pytest.fixture
def batches():
    rng = np.random.default_rng(4)
    centers = np.array([[0.0, 0.0], [5.0, 1.0], [1.0, 6.0]])
    X = np.concatenate([rng.normal(c, 0.8, size=(400, 2)) for c in centers])
    return np.array_split(X[rng.permutation(len(X))], 4)


@pytest.mark.parametrize("covariance_type", ["full", "diag"])
def test_saved_stepwise_state_continues_the_stream(tmp_path, batches, covariance_type):
    model = GaussianMixture(3, covariance_type=covariance_type, random_state=0)
    for batch in batches[:3]:
        model.partial_fit(batch)
    assert model.stepwise_state_.step == 2
    loaded = mixtorch.load(mixtorch.save(model, tmp_path / "online.mixtorch"))
    assert loaded.stepwise_state_.step == 2
    model.partial_fit(batches[3])
    loaded.partial_fit(batches[3])
    # The loaded model blends the 4th batch into the same running statistics with the
    # same step (t = 2): bit-for-bit the model that never went through a file.
    for name in ("weights_", "means_", "covariances_"):
        np.testing.assert_array_equal(getattr(loaded, name), getattr(model, name))
    assert loaded.n_iter_ == model.n_iter_ == 4
    assert loaded.lower_bound_ == model.lower_bound_


def test_refit_restarts_the_running_statistics(batches):
    model = GaussianMixture(3, random_state=0).partial_fit(batches[0]).partial_fit(batches[1])
    assert model.stepwise_state_.step == 1
    model.fit(np.concatenate(batches))
    assert not hasattr(model, "stepwise_state_")
    model.partial_fit(batches[2])
    assert model.stepwise_state_.step == 0 and model.n_iter_ == 1


def test_state_round_trips_through_tensors(batches):
    state = GaussianMixture(3, random_state=0).partial_fit(batches[0]).stepwise_state_
    tensors, meta = state.to_tensors()
    again = StepwiseState.from_tensors(tensors, meta)
    assert again.step == state.step
    for name, value in tensors.items():
        assert torch.equal(getattr(again.statistics, name), value)
    with pytest.raises(ValueError, match="stepwise state"):
        StepwiseState.from_tensors({}, meta)
    with pytest.raises(ValueError, match="stepwise state"):
        StepwiseState.from_tensors(tensors, {"step": -1})


def test_partial_fit_and_fit_choose_the_same_default_chunk(batches, monkeypatch):
    """chunk_size is rows, resolved once by the covariance type: a diag model's
    partial_fit works in the same (long) chunks as its fit."""
    seen = []
    import mixtorch.fit.stepwise as stepwise

    original = stepwise.chunk_list

    def spy(X, rows):
        seen.append(rows)
        return original(X, rows)

    monkeypatch.setattr(stepwise, "chunk_list", spy)
    GaussianMixture(3, covariance_type="diag", random_state=0).partial_fit(batches[0])
    assert seen == [chunk_rows(3, 2, None, DiagCovariance)]
    assert seen[0] > chunk_rows(3, 2, None, mixtorch.FullCovariance)

"""Leftovers, second round: ``source_chunk_rows``'s integer check, a scalar held mean and
covariance for one feature, one finiteness check for held parameters, one symmetry rule,
the estimators' joint-mixture hook for ``io``, and the Pyro estimators' shared notes."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mixtorch.sources import source_chunk_rows


# -- 1. source_chunk_rows refuses a non-integer with a TypeError, as integer checks do ----
@pytest.mark.parametrize("n_features", ["3", 3.0, True, np.bool_(True), None, [3]])
def test_source_chunk_rows_refuses_a_non_integer_type(n_features):
    with pytest.raises(TypeError, match="n_features must be an integer"):
        source_chunk_rows(n_features)


@pytest.mark.parametrize("n_features", [0, -1, np.int64(-3), torch.tensor(0)])
def test_source_chunk_rows_refuses_a_non_positive_integer(n_features):
    with pytest.raises(ValueError, match="n_features must be a positive integer"):
        source_chunk_rows(n_features)


@pytest.mark.parametrize("n_features", [np.int32(1000), np.array(1000), torch.tensor(1000)])
def test_source_chunk_rows_takes_integer_scalars(n_features):
    # 2**23 // (1000 * 8) rows of float64, worked by hand
    assert source_chunk_rows(n_features, np.float64) == 1048

"""Detect components that collapsed onto a point (the likelihood's singularity).

The likelihood of a Gaussian mixture has no maximum: a component sitting on one data
point (or on a few identical points) has a density there that grows without limit as its
variance shrinks. ``reg_covar`` keeps the numbers finite, so EM and gradient descent end
at the floor without an error, with a component that describes a single point. This
module finds such components so that estimators can say so. The fitters (``fit_em``,
``fit_gradient``) stay silent: with ``n_init`` restarts only the kept run matters, so the
estimator calls :func:`warn_if_collapsed` on the mixture it keeps.
"""

from __future__ import annotations

import math
import warnings

import torch

from .._warnings import user_stacklevel
from ..exceptions import DegenerateComponentWarning
from ..mixture import Mixture

__all__ = ["collapsed_components", "warn_if_collapsed"]

#: A component counts as collapsed when the geometric mean of its variances (its
#: determinant to the power 1/D) is within this factor of ``reg_covar``.
FLOOR_FACTOR = 2.0


def collapsed_components(mixture: Mixture, reg_covar: float) -> list[int]:
    """Indices of components whose covariance sits at the ``reg_covar`` floor.

    The test is ``log|Sigma_k| / D <= log(FLOOR_FACTOR * reg_covar)``: the geometric mean
    of the variances is at most twice ``reg_covar``, so the component has (nearly) no
    spread of its own in most directions. O(K) from the factored covariance; a component
    flat in only a few directions (data on a line) is not reported. With
    ``reg_covar = 0`` nothing is reported (a zero variance already fails to factor).

    Parameters
    ----------
    mixture : Mixture
    reg_covar : float

    Returns
    -------
    list of int
    """
    if not reg_covar > 0:
        return []
    log_det = mixture.covariance.log_det().to(torch.float64)
    per_feature = (log_det / mixture.n_features).expand(mixture.n_components)
    threshold = math.log(FLOOR_FACTOR * reg_covar)
    return [int(k) for k in torch.nonzero(per_feature <= threshold).flatten()]


def warn_if_collapsed(mixture: Mixture, reg_covar: float) -> list[int]:
    """Warn with :class:`~mixtorch.exceptions.DegenerateComponentWarning` when
    :func:`collapsed_components` finds any; returns them."""
    collapsed = collapsed_components(mixture, reg_covar)
    if collapsed:
        weights = ", ".join(f"{float(mixture.weights[k]):.3g}" for k in collapsed[:5])
        warnings.warn(
            f"Component(s) {collapsed[:10]} (weights {weights}) collapsed onto a point: "
            f"their variance is at the reg_covar={reg_covar:g} floor, so they describe a "
            "single value rather than a cluster and their density there is set by "
            "reg_covar. Use fewer components, a larger reg_covar or de-duplicated data, "
            "or BayesianGaussianMixture.",
            DegenerateComponentWarning,
            stacklevel=user_stacklevel(),
        )
    return collapsed

"""Covariance structures of a Gaussian mixture, one small type per kind.

Each type knows its own log-determinant, Mahalanobis term, M-step estimate, parameter
count, sampling transform and scikit-learn layout, so no other module dispatches on the
``covariance_type`` string except :func:`covariance_class`.

Layouts follow scikit-learn: ``full`` (K, D, D), ``tied`` (D, D), ``diag`` (K, D),
``spherical`` (K,).

The variational-Bayes (Normal-Wishart) behaviour of each kind is inherited from its
mixin in :mod:`mixtorch._wishart`.

Accuracy: :meth:`Covariance.log_gaussian` and :meth:`Covariance.moments` for ``full`` and
``tied`` work from explicit per-component differences, which stay accurate in float32
however far the components sit from each other. ``diag`` and ``spherical`` use matrix
products (the O(N*K*D) formulation); callers pass data shifted by a central point so that
float32 cancellation only depends on how far a component lies from that point in units of
its own standard deviation. The E-step used by EM lives in :mod:`mixtorch.estep`
(:meth:`Covariance.e_step_kernel`), which chooses between the two formulations for full
and tied covariances.

Layout of the package: :mod:`._kinds` (the classmethods asked of a kind), :mod:`._base`
(:class:`Covariance`, :class:`CovarianceError` and the shared factoring helpers),
:mod:`._full` (full and tied) and :mod:`._diagonal` (diag and spherical); this module
re-exports them and maps ``covariance_type`` strings to types.
"""

from __future__ import annotations

from .._wishart import NormalWishartPrior
from ._base import Covariance
from ._diagonal import DiagCovariance, SphericalCovariance
from ._factoring import CovarianceError
from ._factoring import gaussian_log_normaliser as gaussian_log_normaliser
from ._full import FullCovariance, TiedCovariance

__all__ = [
    "COVARIANCE_TYPES",
    "Covariance",
    "CovarianceError",
    "DiagCovariance",
    "FullCovariance",
    "NormalWishartPrior",
    "SphericalCovariance",
    "TiedCovariance",
    "covariance_class",
]


COVARIANCE_TYPES: dict[str, type[Covariance]] = {
    cls.kind: cls for cls in (FullCovariance, TiedCovariance, DiagCovariance, SphericalCovariance)
}


def covariance_class(covariance_type: str) -> type[Covariance]:
    """The covariance type for a scikit-learn ``covariance_type`` string.

    Parameters
    ----------
    covariance_type : {'full', 'tied', 'diag', 'spherical'}
        The name, as estimators take it.

    Returns
    -------
    type
        :class:`FullCovariance`, :class:`TiedCovariance`, :class:`DiagCovariance` or
        :class:`SphericalCovariance`.

    Raises
    ------
    ValueError
        For any other string, listing the valid ones.

    See Also
    --------
    COVARIANCE_TYPES : The mapping it reads.

    Examples
    --------
    >>> from mixtorch.covariance import covariance_class
    >>> covariance_class("diag").__name__
    'DiagCovariance'
    """
    try:
        return COVARIANCE_TYPES[covariance_type]
    except KeyError:
        raise ValueError(
            f"covariance_type must be one of {sorted(COVARIANCE_TYPES)}, got {covariance_type!r}."
        ) from None

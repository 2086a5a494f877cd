"""What a :class:`~mixtorch.Gaussian` is given instead of estimating it: a whole fitted
model from a ``torch.distributions`` Gaussian (:meth:`~GaussianTorchMixin.from_torch`, a
base of the estimator), or a mean and/or covariance held fixed while the rest is fitted
(the ``fixed_mean`` and ``fixed_covariance`` parameters: :func:`check_fixed` reads them,
:func:`fit_with_fixed` fits what they leave free)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from torch import Tensor

from ._estimator import MixtureEstimator
from ._mixture_checks import as_parameter, check_symmetric
from ._torch_interop import estimator_options
from .covariance import Covariance, CovarianceError
from .fit.em import m_step
from .mixture import Mixture
from .stats import ResponsibilityFn, statistics_from_responsibilities

if TYPE_CHECKING:
    from .gaussian import Gaussian

__all__ = [
    "FixedParameters",
    "GaussianTorchMixin",
    "check_fixed",
    "fit_with_fixed",
    "held_digest",
]

#: Ends a shape error for a scalar given where D > 1 values are needed.
_SINGLE_VALUE_HINT = "; a single value is taken only for data of one feature."


class GaussianTorchMixin(MixtureEstimator):
    """``from_torch`` for :class:`~mixtorch.Gaussian`."""

    @classmethod
    def from_torch(cls, distribution: Any, **params: Any) -> Gaussian:
        """A fitted model with the parameters of a torch distribution.

        Parameters
        ----------
        distribution : torch.distributions.MultivariateNormal or Independent
            A ``MultivariateNormal`` (gives ``covariance_type='full'``) or an
            ``Independent(Normal, 1)`` (gives ``'diag'``), of empty batch shape.
        **params
            Further constructor parameters. The model computes on the distribution's device
            and in its dtype, unless ``device`` or ``dtype`` is given: the parameters are
            then converted there. It hands tensors back.

        Returns
        -------
        model : Gaussian
            A fitted estimator, as if :meth:`fit` had found the distribution's parameters.

        Raises
        ------
        TypeError
            If ``distribution`` is neither of the two kinds above.
        ValueError
            If its batch shape is not empty, or ``dtype`` is not float32 or float64.

        See Also
        --------
        mixtorch.GaussianMixture.from_torch : The same for ``MixtureSameFamily``.
        mixtorch.Mixture.to_torch : The way back, for a mixture.

        Examples
        --------
        >>> import torch
        >>> from mixtorch import Gaussian
        >>> from torch.distributions import MultivariateNormal
        >>> distribution = MultivariateNormal(torch.ones(2), 2 * torch.eye(2))
        >>> model = Gaussian.from_torch(distribution)
        >>> model.covariance_.tolist()
        [[2.0, 0.0], [0.0, 2.0]]
        >>> x = torch.zeros(1, 2)
        >>> torch.allclose(model.score_samples(x), distribution.log_prob(x))
        True
        """
        mixture, output, options = estimator_options(distribution, params, allow_mixture=False)
        return cls.from_mixture(mixture, output=output, **options)


@dataclass(frozen=True)
class FixedParameters:
    """The mean (D,) and covariance a fit holds at given values; None where estimated.

    Built by :func:`check_fixed` in the fit's dtype and on its device.
    """

    mean: Tensor | None = None
    covariance: Covariance | None = None

    @property
    def groups(self) -> frozenset[str]:
        """The held parameter groups, named as :func:`mixtorch.fit.em.m_step` names them."""
        held = {"means": self.mean, "covariances": self.covariance}
        return frozenset(name for name, value in held.items() if value is not None)

    def start(self, kind: type[Covariance], n_features: int, dtype: Any, device: Any) -> Mixture:
        """One component with the held values, and mean 0 or unit covariance where free
        (the start of a gradient fit: a deliberately poor guess)."""
        mean = self.mean
        if mean is None:
            mean = torch.zeros(n_features, dtype=dtype, device=device)
        covariance = self.covariance
        if covariance is None:
            identity = kind.identity_values(1, n_features, dtype, device)
            covariance = kind(identity, n_features=n_features)
        return Mixture(torch.ones(1, dtype=dtype, device=device), mean[None], covariance)

    def impose(self, mixture: Mixture) -> Mixture:
        """``mixture`` with the held values put back as given: a gradient fit hands them
        back through its parametrisation (a Cholesky factor), rounded."""
        means = mixture.means if self.mean is None else self.mean[None]
        covariance = mixture.covariance if self.covariance is None else self.covariance
        return Mixture(mixture.weights, means, covariance)


def check_fixed(
    fixed_mean: Any,
    fixed_covariance: Any,
    kind: type[Covariance],
    n_features: int,
    dtype: torch.dtype,
    device: Any,
) -> FixedParameters:
    """``Gaussian``'s ``fixed_mean`` and ``fixed_covariance``, checked and converted.

    Parameters
    ----------
    fixed_mean : array-like of shape (n_features,), float or None
        The mean to hold; a scalar only for one feature.
    fixed_covariance : array-like, float or None
        The covariance to hold, in the layout of ``Gaussian.covariance_`` for ``kind``:
        (D, D) for full and tied, (D,) for diag, a scalar for spherical. For one feature,
        any single value (a scalar, shape (1,) or (1, 1)) whatever ``kind``.
    kind : type of Covariance
        The covariance type of the fit.
    n_features : int
        D, the number of features of the data.
    dtype, device
        The fit's dtype and device; the values are converted there.

    Returns
    -------
    FixedParameters
        The held values (None where not given).

    Raises
    ------
    ValueError
        Naming the parameter: a wrong shape, NaN or infinity (None in a list reads as
        NaN), complex numbers or strings, a covariance that is not symmetric positive
        definite (full, tied) or not positive (diag, spherical), or one that is positive
        definite in float64 but cannot be factored in the fit's float32.
    TypeError
        For values that are not numbers (objects, mappings).
    """
    mean = None
    if fixed_mean is not None:
        values = as_parameter(fixed_mean, "fixed_mean", torch.float64, "cpu", numbers_only=False)
        if values.ndim == 0 and n_features == 1:  # the mean of one feature, as SciPy's fit
            values = values.reshape(1)
        if tuple(values.shape) != (n_features,):
            raise ValueError(
                f"fixed_mean must have shape ({n_features},), one value per feature of X, "
                f"got shape {tuple(values.shape)}"
                + (_SINGLE_VALUE_HINT if values.ndim == 0 else ".")
            )
        mean = values.to(dtype=dtype, device=device)
    covariance = None
    if fixed_covariance is not None:
        covariance = _fixed_covariance(fixed_covariance, kind, n_features, dtype, device)
    return FixedParameters(mean, covariance)


def _fixed_covariance(
    value: Any, kind: type[Covariance], n_features: int, dtype: torch.dtype, device: Any
) -> Covariance:
    """``fixed_covariance`` as a one-component Covariance of ``kind`` (see :func:`check_fixed`)."""
    given = as_parameter(value, "fixed_covariance", None, "cpu", numbers_only=False)
    values = given.to(torch.float64)
    layout = kind.layout(1, n_features)
    expected = tuple(kind.component_values(torch.zeros(layout), 0).shape)
    if n_features == 1 and values.numel() == 1 and values.ndim <= 2:
        values = values.reshape(expected)  # one variance: every layout holds the same value
    if tuple(values.shape) != expected:
        single = values.ndim == 0  # (a spherical layout, (), would have matched)
        raise ValueError(
            f"fixed_covariance must have shape {expected} for covariance_type="
            f"'{kind.kind}' and {n_features} features (the layout of covariance_), got shape "
            f"{tuple(values.shape)}" + (_SINGLE_VALUE_HINT if single else ".")
        )
    if kind.is_triangular():
        # to the rounding of the precision it was computed in, which may be coarser than
        # the fit's (a float32 matrix held in a float64 fit)
        check_symmetric(values.to(given.dtype), "fixed_covariance")
        values = (values + values.mT) / 2
        smallest, wanted = torch.linalg.eigvalsh(values).min(), "symmetric positive definite"
    else:
        smallest, wanted = values.min(), "positive (variances)"
    try:
        kind(values.reshape(layout), n_features=n_features)
    except CovarianceError:
        raise ValueError(
            f"fixed_covariance must be {wanted}; its smallest eigenvalue is "
            f"{float(smallest):.6g}. A singular Gaussian has no density, so mixtorch does not "
            "hold one; add a small positive value to the diagonal if it is meant to be "
            "nearly singular."
        ) from None
    try:
        return kind(values.reshape(layout).to(dtype=dtype, device=device), n_features=n_features)
    except CovarianceError:
        name = str(dtype).removeprefix("torch.")
        raise ValueError(
            f"fixed_covariance is positive definite in float64, but too close to singular to "
            f"be factored in {name}; fit in float64 (dtype='float64')."
        ) from None


def fit_with_fixed(
    fixed: FixedParameters,
    kind: type[Covariance],
    reg_covar: float,
    chunks: Callable[[], Iterable[Tensor]],
    responsibilities: ResponsibilityFn,
    sample_mean: Callable[[], Tensor],
) -> Mixture:
    """The maximum-likelihood Gaussian given the held values in ``fixed`` (not empty).

    With the mean held, the covariance is the weighted scatter about it, ``sum_i w_i (x_i
    - m)(x_i - m)^T / sum_i w_i`` in ``kind``'s structure, plus ``reg_covar`` on its
    diagonal (one pass over ``chunks()``, summed across ranks). With the covariance held,
    the mean is the weighted sample mean, ``sample_mean()``: it does not depend on the
    covariance. With both held nothing is estimated. A held covariance never gets
    ``reg_covar``.

    Parameters
    ----------
    fixed : FixedParameters
        The held values, at least one of them.
    kind : type of Covariance
        The covariance type of the fit.
    reg_covar : float
        Added to the diagonal of an estimated covariance.
    chunks : callable
        Returns a fresh iterable of row chunks (on the fit's device, in its dtype).
    responsibilities : callable
        ``fn(chunk, start)``: the (rows, 1) weights of the chunk's rows.
    sample_mean : callable
        Computes the (weighted) sample mean, shape (D,).

    Returns
    -------
    Mixture
        One component.
    """
    if fixed.mean is None and fixed.covariance is not None:
        mean = sample_mean()
        return Mixture(mean.new_ones(1), mean[None], fixed.covariance)
    if fixed.mean is None:
        raise ValueError("fit_with_fixed needs a held mean or covariance; none is held.")
    dtype, device, D = fixed.mean.dtype, fixed.mean.device, fixed.mean.shape[0]
    held = fixed.start(kind, D, dtype, device)
    if fixed.covariance is not None:
        return held
    stats = statistics_from_responsibilities(chunks(), responsibilities, kind, held.means)
    return m_step(stats.all_reduce(), held, reg_covar, fixed.groups)


def held_digest(fixed_mean: Any, fixed_covariance: Any) -> str:
    """A short SHA-256 of the values given as ``fixed_mean`` and ``fixed_covariance``,
    unchecked, so that ranks can compare them before any of them checks (and perhaps
    refuses) its own: moments about different held means must not be summed."""
    digest = hashlib.sha256()
    for value in (fixed_mean, fixed_covariance):
        if value is None:
            digest.update(b"None|")
            continue
        try:
            if isinstance(value, Tensor):
                value = value.detach().cpu()
            array = np.asarray(value, dtype=np.float64)
            digest.update(f"{array.shape}|".encode() + array.tobytes())
        except (TypeError, ValueError, RuntimeError, NotImplementedError):
            digest.update(repr(value).encode())
    return digest.hexdigest()[:16]

"""The parametrisation behind :mod:`mixtorch.nn`: differentiable Gaussian and
Gaussian-mixture densities as ``torch.nn.Module`` objects with unconstrained parameters
(see :mod:`mixtorch.nn` for the parametrisation and ``reg_covar``). It sits below the
estimators; :mod:`mixtorch.nn` adds the conversions to and from fitted estimators.

The single Gaussian is :mod:`mixtorch._gaussian_module`; the size checks and the
unconstrained parametrisation's conversions are in :mod:`mixtorch._module_parameters`;
sampling and the conversions to and from a :class:`~mixtorch.Mixture` are bases of the
module class, in :mod:`mixtorch._module_sampling` and :mod:`mixtorch._module_conversion`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._module_conversion import ModuleConversionMixin
from ._module_parameters import check_options, check_reg_covar, check_sizes, lower_from_raw
from ._module_sampling import ModuleSamplingMixin
from .covariance import covariance_class, gaussian_log_normaliser
from .mixture import Mixture

__all__ = ["GaussianMixtureModule"]


class GaussianMixtureModule(ModuleSamplingMixin, ModuleConversionMixin, nn.Module):
    """A mixture of K Gaussians in D dimensions with unconstrained parameters.

    Documented, with parameters and examples, as :class:`mixtorch.nn.GaussianMixtureModule`.
    """

    #: Whether modules built with ``validate_args=None`` check that ``x`` is finite; as
    #: for ``torch.distributions``, on unless Python runs with ``-O``.
    _default_validate_args: bool = __debug__

    def __init__(
        self,
        n_components: int,
        n_features: int,
        covariance_type: str = "full",
        *,
        reg_covar: float = 0.0,
        dtype: torch.dtype | None = None,
        device: Any = None,
        generator: torch.Generator | None = None,
        validate_args: bool | None = None,
    ) -> None:
        super().__init__()
        n_components, n_features = check_sizes(n_components, n_features)
        check_options(dtype, device, generator)
        structure = covariance_class(covariance_type)  # validates the name
        self.covariance_type = covariance_type
        self._structure = structure
        self.reg_covar = reg_covar  # checked by the property
        self.validate_args = validate_args  # checked by the property
        options: dict[str, Any] = {"dtype": dtype, "device": device}
        self.logits = nn.Parameter(torch.zeros(n_components, **options))
        means = torch.randn(n_components, n_features, generator=generator, **options)
        self.means = nn.Parameter(means)
        raw = nn.Parameter(torch.zeros(structure.layout(n_components, n_features), **options))
        if structure.is_triangular():
            self.raw_cholesky = raw
        else:
            self.log_scale = raw

    # -- sizes -----------------------------------------------------------------------
    @property
    def reg_covar(self) -> float:
        """The constant added to every covariance diagonal (non-negative, finite)."""
        return self._reg_covar

    @reg_covar.setter
    def reg_covar(self, value: float) -> None:
        self._reg_covar = check_reg_covar(value)  # -1 or NaN would break every density

    @property
    def validate_args(self) -> bool:
        """Whether the methods taking ``x`` check that it holds only finite values.

        Assign True or False to decide for this module, or None to follow the default
        (:meth:`set_default_validate_args`).
        """
        own = self.__dict__.get("_validate_args")  # absent from modules pickled before it
        return type(self)._default_validate_args if own is None else own

    @validate_args.setter
    def validate_args(self, value: bool | None) -> None:
        if value is not None and not isinstance(value, bool):
            raise TypeError(f"validate_args must be True, False or None, got {value!r}.")
        self._validate_args = value

    @staticmethod
    def set_default_validate_args(value: bool) -> None:
        """Switch the finiteness check of ``x`` on or off for every module that was built
        with ``validate_args=None`` (and has not been given a value since).

        Parameters
        ----------
        value : bool
            The new default; it starts as True (False under ``python -O``), as for
            ``torch.distributions.Distribution.set_default_validate_args``.

        Raises
        ------
        TypeError
            If ``value`` is not a bool.

        See Also
        --------
        GaussianMixtureModule.validate_args : The setting of one module.
        torch.distributions.Distribution.set_default_validate_args : The same switch
            for torch's distributions.
        """
        if not isinstance(value, bool):
            raise TypeError(f"set_default_validate_args takes True or False, got {value!r}.")
        GaussianMixtureModule._default_validate_args = value

    def __setstate__(self, state: dict[str, Any]) -> None:
        if "reg_covar" in state:  # pickled when reg_covar was a plain attribute
            state["_reg_covar"] = state.pop("reg_covar")
        super().__setstate__(state)

    @property
    def n_components(self) -> int:
        return int(self.means.shape[0])

    @property
    def n_features(self) -> int:
        return int(self.means.shape[1])

    @property
    def dtype(self) -> torch.dtype:
        return self.means.dtype

    def extra_repr(self) -> str:
        return (
            f"n_components={self.n_components}, n_features={self.n_features}, "
            f"covariance_type={self.covariance_type!r}, reg_covar={self.reg_covar:g}"
        )

    # -- constrained views of the parameters -----------------------------------------
    def log_weights(self) -> Tensor:
        """log pi_k, the normalised log-weights (``log_softmax(logits)``).

        Returns
        -------
        Tensor of shape (K,)
            Differentiable in ``logits``.

        See Also
        --------
        GaussianMixtureModule.covariances
        """
        return torch.log_softmax(self.logits, dim=0)

    def cholesky_factor(self) -> Tensor:
        """Lower-triangular L with ``L L^T`` the covariance before ``reg_covar``.

        Returns
        -------
        Tensor of shape (K, D, D) for 'full', (D, D) for 'tied'
            Positive diagonal; differentiable in ``raw_cholesky``.

        Raises
        ------
        AttributeError
            For 'diag' and 'spherical' covariances, which have ``log_scale`` instead.

        See Also
        --------
        GaussianMixtureModule.covariances
        """
        if not self._structure.is_triangular():
            raise AttributeError(f"'{self.covariance_type}' covariances have no Cholesky factor.")
        return lower_from_raw(self.raw_cholesky)

    def covariances(self) -> Tensor:
        """Covariances in scikit-learn's layout, including ``reg_covar`` (differentiable).

        Returns
        -------
        Tensor
            (K, D, D) for 'full', (D, D) for 'tied', (K, D) for 'diag', (K,) for 'spherical'.

        See Also
        --------
        GaussianMixtureModule.cholesky_factor
        """
        if self._structure.is_triangular():
            factor = self.cholesky_factor()
            return self._structure.add_reg_covar(factor @ factor.mT, self.reg_covar)
        return self._structure.add_reg_covar(torch.exp(2.0 * self.log_scale), self.reg_covar)

    def _linalg_dtype(self) -> torch.dtype:
        """The dtype of the triangular solves and factorisations: float32 for float16 and
        bfloat16 modules (torch has no such kernels in reduced precision)."""
        return self.dtype if self.dtype in (torch.float32, torch.float64) else torch.float32

    def _scale_tril(self) -> tuple[Tensor, Tensor]:
        """The factor of the regularised covariance and its log-diagonal, in
        :meth:`_linalg_dtype`.

        With ``reg_covar > 0`` the factor of ``L L^T + reg_covar I`` is the R of a QR
        factorisation of ``[L^T; sqrt(reg_covar) I]``, so ``L L^T`` is never formed. A
        Cholesky factorisation of the sum loses the small directions in float32 when
        ``L`` holds entries of very different sizes (after large optimiser steps, but
        also for moderate factors: a log-density off by hundreds of nats, with no
        failure reported), and fails outright for larger spreads; QR does neither.
        """
        raw = self.raw_cholesky.to(self._linalg_dtype())
        factor = lower_from_raw(raw)
        if self.reg_covar == 0.0:
            return factor, torch.diagonal(raw, dim1=-2, dim2=-1)
        ridge = math.sqrt(self.reg_covar) * torch.eye(
            self.n_features, dtype=raw.dtype, device=raw.device
        )
        stacked = torch.cat([factor.mT, ridge.expand_as(factor)], dim=-2)  # (..., 2D, D)
        upper = torch.linalg.qr(stacked).R  # R^T R = L L^T + reg_covar I
        diagonal = torch.diagonal(upper, dim1=-2, dim2=-1)
        factor = upper.mT * torch.sign(diagonal).unsqueeze(-2)  # a positive diagonal
        return factor, torch.log(diagonal.abs())

    def _log_variances(self) -> Tensor:
        """log of the (regularised) variances, (K, D) or (K,)."""
        if self.reg_covar == 0.0:
            return 2.0 * self.log_scale
        floor = torch.full_like(self.log_scale, math.log(self.reg_covar))
        return torch.logaddexp(2.0 * self.log_scale, floor)

    # -- densities -------------------------------------------------------------------
    def component_log_prob(self, x: Tensor) -> Tensor:
        """log N(x | mu_k, Sigma_k) for every component.

        Parameters
        ----------
        x : Tensor of shape (..., D)
            Points; any leading batch shape (TypeError for a non-tensor, ValueError for a
            last axis not of length D, as for every method taking ``x``).

        Returns
        -------
        Tensor of shape (..., K)
            Per-component log-densities, without the weights.

        See Also
        --------
        GaussianMixtureModule.log_prob, GaussianMixtureModule.weighted_log_prob
        """
        rows = self._rows(x)
        if self._structure.is_triangular():
            mahalanobis, log_det = self._triangular_terms(rows)
        else:
            mahalanobis, log_det = self._diagonal_terms(rows)
        log_prob = -0.5 * (mahalanobis + log_det + gaussian_log_normaliser(self.n_features))
        return log_prob.reshape(*x.shape[:-1], self.n_components)

    def _triangular_terms(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        factor, log_diagonal = self._scale_tril()
        means = self.means.to(factor.dtype)
        differences = rows.to(factor.dtype).unsqueeze(0) - means.unsqueeze(1)  # (K, n, D)
        if factor.ndim == 2:
            factor = factor.expand(self.n_components, -1, -1)
            log_diagonal = log_diagonal.expand(self.n_components, -1)
        whitened = torch.linalg.solve_triangular(factor, differences.mT, upper=False)
        mahalanobis = whitened.square().sum(1).T
        return mahalanobis.to(self.dtype), (2.0 * log_diagonal.sum(-1)).to(self.dtype)

    def _diagonal_terms(self, rows: Tensor) -> tuple[Tensor, Tensor]:
        log_variances = self._log_variances()
        log_variances = self._structure.per_feature(log_variances, self.n_features)
        inverse_scales = torch.exp(-0.5 * log_variances)  # (K, D)
        whitened = (rows.unsqueeze(1) - self.means) * inverse_scales  # (n, K, D)
        return whitened.square().sum(-1), log_variances.sum(-1)

    def weighted_log_prob(self, x: Tensor) -> Tensor:
        """log pi_k + log N(x | mu_k, Sigma_k).

        Parameters
        ----------
        x : Tensor of shape (..., D)
            Points; any leading batch shape.

        Returns
        -------
        Tensor of shape (..., K)
            Its ``logsumexp`` over the last axis is :meth:`log_prob`.

        See Also
        --------
        GaussianMixtureModule.responsibilities, GaussianMixtureModule.log_prob
        """
        return self.component_log_prob(x) + self.log_weights()

    def log_prob(self, x: Tensor) -> Tensor:
        """log p(x) by logsumexp over components (differentiable; also ``module(x)``).

        Parameters
        ----------
        x : Tensor of shape (..., D)
            Points; any leading batch shape.

        Returns
        -------
        Tensor of shape (...)
            Log-densities; ``-log_prob(x).mean()`` is the loss to minimise.

        See Also
        --------
        GaussianMixtureModule.responsibilities, GaussianMixtureModule.component_log_prob
        mixtorch.GaussianMixture.score_samples : The same for a fitted estimator.
        """
        return torch.logsumexp(self.weighted_log_prob(x), dim=-1)

    def forward(self, x: Tensor) -> Tensor:
        """Same as :meth:`log_prob`.

        Parameters
        ----------
        x : Tensor of shape (..., D)
            Points.

        Returns
        -------
        Tensor of shape (...)
            Log-densities.

        See Also
        --------
        GaussianMixtureModule.log_prob
        """
        return self.log_prob(x)

    def responsibilities(self, x: Tensor) -> Tensor:
        """p(z = k | x), the posterior probability of every component.

        Parameters
        ----------
        x : Tensor of shape (..., D)
            Points.

        Returns
        -------
        Tensor of shape (..., K)
            Sums to one over the last axis.

        See Also
        --------
        GaussianMixtureModule.weighted_log_prob, mixtorch.Mixture.responsibilities
        """
        return torch.softmax(self.weighted_log_prob(x), dim=-1)

    def _rows(self, x: Tensor) -> Tensor:
        if not isinstance(x, Tensor):
            raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}.")
        if x.ndim < 1 or x.shape[-1] != self.n_features:
            raise ValueError(f"x must have shape (..., {self.n_features}), got {tuple(x.shape)}.")
        if x.is_complex():
            raise ValueError(f"x must hold real numbers, got dtype {x.dtype}.")
        if x.device != self.means.device:
            raise ValueError(
                f"x is on device {x.device} but the module's parameters are on "
                f"{self.means.device}; move one of them (x.to(...) or module.to(...))."
            )
        if self.validate_args and x.device.type != "meta":
            _check_finite(x)
        return x.reshape(-1, self.n_features).to(self.dtype)

    @classmethod
    def _blank(cls, mixture: Mixture, reg_covar: float) -> GaussianMixtureModule:
        return cls(
            mixture.n_components,
            mixture.n_features,
            mixture.covariance_type,
            reg_covar=reg_covar,
            dtype=mixture.dtype,
            device=mixture.device,
        )


def _check_finite(x: Tensor) -> None:
    """ValueError for NaN or infinity in ``x``: its log-density would be NaN (or a
    meaningless -inf), and the loss of a whole batch with it."""
    finite = torch.isfinite(x)
    if not bool(finite.all()):  # the host sync that validate_args=False avoids
        rows = (~finite).reshape(-1, x.shape[-1]).any(-1)
        first = int(rows.nonzero()[0])
        raise ValueError(
            f"x holds NaN or infinity in {int(rows.sum())} of its {rows.numel()} points "
            f"(the first is row {first} of x.reshape(-1, {x.shape[-1]})); their "
            "log-densities, and any loss over them, would be NaN or -inf. Drop or impute "
            "them first. To skip this check (one host sync per call on a GPU), build the "
            "module with validate_args=False or set module.validate_args = False."
        )

"""The parametrisation behind :mod:`mixtorch.nn`: differentiable Gaussian and
Gaussian-mixture densities as ``torch.nn.Module`` objects with unconstrained parameters
(see :mod:`mixtorch.nn` for the parametrisation and ``reg_covar``). It sits below the
estimators; :mod:`mixtorch.nn` adds the conversions to and from fitted estimators.

The single Gaussian is :mod:`mixtorch._gaussian_module`; the size checks and the
unconstrained parametrisation's conversions are in :mod:`mixtorch._module_parameters`.
"""

from __future__ import annotations

import math
from typing import Any

import torch
from torch import Tensor, nn

from ._mixture_checks import check_n_samples
from ._module_parameters import (
    check_options,
    check_reg_covar,
    check_sizes,
    log_scale,
    lower_from_raw,
    raw_cholesky,
)
from .covariance import covariance_class, gaussian_log_normaliser
from .mixture import Mixture

__all__ = ["GaussianMixtureModule"]


class GaussianMixtureModule(nn.Module):
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

    # -- generation ------------------------------------------------------------------
    def sample(
        self, n_samples: int, generator: torch.Generator | None = None
    ) -> tuple[Tensor, Tensor]:
        """Draw points: z ~ Categorical(weights), then x = mu_z + L_z eps.

        The draw is reparameterised: the samples are differentiable with respect to the
        means and covariance parameters (not the weights, which enter through a discrete
        choice).

        Parameters
        ----------
        n_samples : int
            Number of points, at least 1.
        generator : torch.Generator, default=None
            Source of randomness on the module's device; None uses torch's global one.

        Returns
        -------
        samples : Tensor of shape (n_samples, D)
            The points, in draw order.
        labels : Tensor of shape (n_samples,)
            Their components.

        Raises
        ------
        ValueError
            If ``n_samples`` is less than 1.
        TypeError
            If ``n_samples`` is not an integer (a float, a string, a bool) or ``generator``
            is not a ``torch.Generator``.
        MemoryError
            If the draws would not fit in the memory free on the device.

        See Also
        --------
        GaussianMixtureModule.to_torch : ``rsample`` of the distribution, the same draws' law.

        Examples
        --------
        >>> import torch
        >>> from mixtorch.nn import GaussianMixtureModule
        >>> module = GaussianMixtureModule(2, 3, dtype=torch.float64)
        >>> samples, labels = module.sample(4, generator=torch.Generator().manual_seed(0))
        >>> samples.shape, labels.shape, samples.requires_grad
        (torch.Size([4, 3]), torch.Size([4]), True)
        """
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(
                f"generator must be a torch.Generator or None, got {type(generator).__name__}."
            )
        # Per draw: the label, the noise, the scaled noise and the result (D values each).
        itemsize = torch.finfo(self.dtype).bits // 8
        row_bytes = 8 + 3 * itemsize * self.n_features
        n_samples = check_n_samples(n_samples, row_bytes, self.means.device)
        device = self.means.device
        with torch.no_grad():
            weights = torch.softmax(self.logits.to(torch.float64), 0)
            labels = torch.multinomial(weights, n_samples, replacement=True, generator=generator)
        noise = torch.randn(
            n_samples, self.n_features, dtype=self.dtype, device=device, generator=generator
        )
        return self.means[labels] + self._scale_noise(noise, labels), labels

    def _scale_noise(self, noise: Tensor, labels: Tensor) -> Tensor:
        if self._structure.is_triangular():
            factor = self._scale_tril()[0].to(self.dtype)
            factor = factor if factor.ndim == 2 else factor[labels]
            return (factor @ noise.unsqueeze(-1)).squeeze(-1)
        scales = torch.exp(0.5 * self._log_variances())
        scales = scales[labels]
        return noise * (scales if scales.ndim == 2 else scales[:, None])

    # -- conversion ------------------------------------------------------------------
    def to_mixture(self) -> Mixture:
        """The current parameters as a (detached) :class:`~mixtorch.Mixture`.

        Returns
        -------
        Mixture
            Weights, means and covariances (``reg_covar`` included), detached copies, in
            the module's dtype, or in float32 for a float16 or bfloat16 module (a
            :class:`~mixtorch.Mixture` computes in float32 or float64).

        Raises
        ------
        ValueError
            If the parameters hold NaN or infinity, or the module is on the 'meta'
            device (shapes without values).

        See Also
        --------
        GaussianMixtureModule.from_mixture : The way back.
        GaussianMixtureModule.to_torch : A differentiable distribution instead.
        """
        self._check_materialised("to_mixture")
        dtype = self._linalg_dtype()
        with torch.no_grad():
            weights = torch.softmax(self.logits.to(dtype), 0).detach().clone()
            covariances = self.covariances().to(dtype).detach().clone()
            means = self.means.to(dtype).detach().clone()
            values = (weights, means, covariances)
            if not all(bool(torch.isfinite(value).all()) for value in values):
                raise ValueError(
                    "The module's parameters hold NaN or infinity (the training diverged), so "
                    "they are not a mixture; restart from finite parameters, e.g. with a "
                    "smaller learning rate or a positive reg_covar."
                )
            covariance = self._structure(covariances, n_features=self.n_features)
            return Mixture(weights, means, covariance)

    def _check_materialised(self, method: str) -> None:
        """ValueError naming ``method`` for a module on the 'meta' device."""
        if self.means.device.type == "meta":
            raise ValueError(
                f"{method} needs parameter values, but the module is on the 'meta' device, "
                "which holds shapes only; materialise it first, e.g. "
                "module.to_empty(device='cpu') followed by module.load_state_dict(...)."
            )

    def _load_from_state_dict(
        self, state_dict: dict[str, Any], prefix: str, *args: Any, **kwargs: Any
    ) -> None:
        """Refuse NaN or infinite parameters before ``load_state_dict`` copies them: every
        density of the module would be NaN. A logit of ``-inf`` (a component switched
        off, weight 0) is allowed while some logit is finite."""
        for name in ("logits", "means", "raw_cholesky", "log_scale"):
            value = state_dict.get(prefix + name)
            if (
                not isinstance(value, Tensor)
                or value.device.type == "meta"
                or not value.is_floating_point()
            ):
                continue
            finite = torch.isfinite(value)
            if name == "logits":
                valid = bool((finite | (value == -math.inf)).all() and finite.any())
            else:
                valid = bool(finite.all())
            if not valid:
                raise ValueError(
                    f"state_dict entry {prefix + name!r} holds NaN or infinity (saved from a "
                    "diverged training?); load a checkpoint with finite values (logits may "
                    "be -inf for components switched off)."
                )
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)

    @classmethod
    def from_mixture(cls, mixture: Mixture, *, reg_covar: float = 0.0) -> GaussianMixtureModule:
        """A module holding ``mixture``'s parameters (same dtype and device).

        Parameters
        ----------
        mixture : Mixture
            The parameters to hold (its number of components, features and covariance type).
        reg_covar : float, default=0.0
            The module's ``reg_covar``. It is subtracted from the covariance diagonals before
            they are stored, so that the module's covariances equal the mixture's; where the
            difference would not be positive definite the covariance is stored as is.

        Returns
        -------
        GaussianMixtureModule
            A module whose :meth:`to_mixture` gives ``mixture`` back.

        See Also
        --------
        GaussianMixtureModule.to_mixture, GaussianMixtureModule.from_estimator
        """
        module = cls._blank(mixture, reg_covar)
        with torch.no_grad():
            tiny = torch.finfo(mixture.dtype).tiny
            module.logits.copy_(torch.log(mixture.weights.clamp_min(tiny)))
            module.means.copy_(mixture.means)
            covariances = mixture.covariance.covariances
            if module._structure.is_triangular():
                module.raw_cholesky.copy_(raw_cholesky(covariances, float(reg_covar)))
            else:
                module.log_scale.copy_(log_scale(covariances, float(reg_covar)))
        return module

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
